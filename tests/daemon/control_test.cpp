// The control API's logic without sockets: requests in, replies out.
#include "control.hpp"

#include <gtest/gtest.h>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::daemon;

namespace {

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugins_.scan({EVALD_PLUGIN_DIR});
    config_.data_dir = tmp_.path().string();
    store_ = std::move(*Store::open(tmp_.path()));
    audit_ = std::move(*AuditLog::open(*store_));
    engine_ = std::make_unique<Engine>(*store_, *audit_, plugins_, EngineOptions{tmp_.path(), 5, EVALD_WORKER_BIN});
    api_ = std::make_unique<ControlApi>(config_, *store_, *audit_, plugins_, *engine_, [this] { shutdown_ = true; });
  }
  Value call(std::initializer_list<std::pair<const char*, Value>> kv) {
    Value req;
    req.set("actor", "tester");
    for (auto& [k, v] : kv) req.set(k, v);
    return api_->handle(req);
  }

  test::TempDir tmp_;
  DaemonConfig config_;
  PluginRegistry plugins_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ControlApi> api_;
  bool shutdown_ = false;
};

}  // namespace

TEST_F(ControlTest, MalformedRequestsGetErrors) {
  Bytes garbage = {0xdd, 0xff, 0xff, 0xff, 0xff};
  auto r = msgpack::decode(api_->handle_bytes(garbage.data(), garbage.size()));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_NE(r->get_string("error").find("malformed request"), std::string::npos);
  EXPECT_FALSE(api_->handle(Value(5)).get_bool("ok"));
  auto u = call({{"op", "launch-missiles"}});
  EXPECT_NE(u.get_string("error").find("unknown op \"launch-missiles\""), std::string::npos);
  auto m = call({{"op", "competition.create"}});
  EXPECT_NE(m.get_string("error").find("\"id\" (string) is required"), std::string::npos);
  auto bad = call({{"op", "competition.create"}, {"id", "../etc"}});
  EXPECT_NE(bad.get_string("error").find("not a valid id"), std::string::npos);
}

// Found by fuzz_control_request: 60 bytes that crashed the daemon (a YAML alias cycle).
TEST_F(ControlTest, AliasCycleInAPipelineIsAnErrorReply) {
  const char* hex =
      "82a26f70b1706970656c696e652e76616c6964617465a479616d6cd9366e616d653a20610a7374616765733a0a20202d2026"
      "73207b69643a20732c20706c7567696e3a20702c20636f6e6669673a202a737d0a";
  Bytes in;
  for (const char* p = hex; p[0] && p[1]; p += 2) in.push_back(uint8_t(std::stoi(std::string(p, 2), nullptr, 16)));
  auto r = msgpack::decode(api_->handle_bytes(in.data(), in.size()));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_NE(r->get_string("error").find("nested deeper"), std::string::npos) << r->get_string("error");
  EXPECT_NE(call({{"op", "entrant.add"}, {"competition", "c"}, {"id", "e"}, {"round", "../r"}}).get_string("error").find("not a valid id"),
            std::string::npos);
}

TEST_F(ControlTest, StateChangesAreAuditedWithTheirActor) {
  EXPECT_TRUE(call({{"op", "competition.create"}, {"id", "k-ai"}, {"name", "독자 AI 파운데이션 모델"}}).get_bool("ok"));
  auto dup = call({{"op", "competition.create"}, {"id", "k-ai"}});
  EXPECT_FALSE(dup.get_bool("ok"));
  auto yaml = "name: demo\nstages:\n  - id: read\n    plugin: file-value\n";
  EXPECT_TRUE(call({{"op", "pipeline.load"}, {"yaml", yaml}, {"source", "demo.yaml"}}).get_bool("ok"));
  EXPECT_TRUE(call({{"op", "round.create"}, {"competition", "k-ai"}, {"id", "r1"}, {"pipeline", "demo"}}).get_bool("ok"));
  Value sub;
  sub.set("value_file", "/x");
  EXPECT_TRUE(call({{"op", "entrant.add"}, {"competition", "k-ai"}, {"id", "t1"}, {"round", "r1"}, {"submission", sub}}).get_bool("ok"));
  EXPECT_TRUE(call({{"op", "entrant.add"}, {"competition", "k-ai"}, {"id", "t1"}, {"round", "r1"}}).get_bool("ok"));
  auto round = call({{"op", "round.show"}, {"competition", "k-ai"}, {"id", "r1"}});
  EXPECT_EQ(round.find("result")->find("entrants")->as_array().size(), 1u) << "added once";
  auto audit = call({{"op", "audit.list"}});
  auto& entries = audit.find("result")->as_array();
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[0].get_string("action"), "competition.create");
  EXPECT_EQ(entries[0].get_string("actor"), "tester");
  EXPECT_TRUE(call({{"op", "audit.verify"}}).find("result")->get_bool("ok"));
}

TEST_F(ControlTest, RunStartNeedsARunningEngineAndAKnownRound) {
  auto r = call({{"op", "run.start"}, {"competition", "nope"}, {"round", "r1"}});
  EXPECT_NE(r.get_string("error").find("no round"), std::string::npos);
  auto v = call({{"op", "pipeline.validate"}, {"yaml", "name: x\nstages:\n  - id: a\n    plugin: ghost\n"}});
  EXPECT_NE(v.get_string("error").find("unknown plugin \"ghost\""), std::string::npos);
}

TEST(DescribeActor, VerifiedPeerBesideTheDeclaredActor) {
  EXPECT_EQ(describe_actor("alice@evalctl", ""), "alice@evalctl");
  EXPECT_EQ(describe_actor("alice@evalctl", "localhost:0:0:4242"), "root (uid 0, pid 4242) via alice@evalctl");
  EXPECT_EQ(describe_actor("bob@evalctl", "10.0.0.7"), "bob@evalctl from 10.0.0.7");
}

TEST_F(ControlTest, ShutdownIsRecordedThenRequested) {
  EXPECT_TRUE(call({{"op", "shutdown"}}).get_bool("ok"));
  EXPECT_TRUE(shutdown_);
}

TEST_F(ControlTest, IntakeStoresEachRecordOnceWhileItsWindowIsOpen) {
  ASSERT_TRUE(call({{"op", "competition.create"}, {"id", "k"}}).get_bool("ok"));
  ASSERT_TRUE(call({{"op", "pipeline.load"}, {"yaml", "name: demo\nstages:\n  - id: read\n    plugin: file-value\n"}}).get_bool("ok"));
  ASSERT_TRUE(call({{"op", "round.create"}, {"competition", "k"}, {"id", "r1"}, {"pipeline", "demo"}}).get_bool("ok"));
  auto vote = [](const std::string& id, const std::string& outcome) {
    Value v;
    v.set("id", id);
    v.set("user", "u1");
    v.set("a", "t1");
    v.set("b", "t2");
    v.set("outcome", outcome);
    return v;
  };
  auto submit = [&](Array recs) {
    return call({{"op", "intake.submit"}, {"competition", "k"}, {"round", "r1"}, {"channel", "votes"}, {"records", Value(std::move(recs))}});
  };
  auto never = submit({vote("v1", "A")});
  EXPECT_NE(never.get_string("error").find("was never opened"), std::string::npos) << to_json(never);
  EXPECT_NE(call({{"op", "intake.open"}, {"competition", "k"}, {"round", "r9"}, {"channel", "votes"}}).get_string("error").find("no round"),
            std::string::npos);
  EXPECT_NE(call({{"op", "intake.open"}, {"competition", "k"}, {"round", "r1"}, {"channel", "votes"}, {"closes", "2020-01-01T00:00:00Z"}})
                .get_string("error").find("already past"), std::string::npos);
  ASSERT_TRUE(call({{"op", "intake.open"}, {"competition", "k"}, {"round", "r1"}, {"channel", "votes"}}).get_bool("ok"));
  EXPECT_NE(call({{"op", "intake.open"}, {"competition", "k"}, {"round", "r1"}, {"channel", "votes"}}).get_string("error").find("already open"),
            std::string::npos);

  Value no_id;
  no_id.set("user", "u1");
  Value spoofed = vote("v4", "B");
  spoofed.set("received_at", "2020-01-01T00:00:00Z");
  auto r = submit({vote("v1", "A"), vote("v2", "tie"), vote("v1", "A"), vote("v2", "B"), no_id, Value(3), spoofed, vote("bad/id", "A")});
  ASSERT_TRUE(r.get_bool("ok")) << to_json(r);
  auto& res = *r.find("result");
  EXPECT_EQ(res.get_int("accepted"), 2);
  EXPECT_EQ(res.get_int("duplicates"), 1) << "v1 again with the same content";
  auto& rej = res.find("rejected")->as_array();
  ASSERT_EQ(rej.size(), 5u) << to_json(res);
  EXPECT_EQ(rej[0].get_int("index"), 3);
  EXPECT_NE(rej[0].get_string("reason").find("other content"), std::string::npos);
  EXPECT_NE(rej[1].get_string("reason").find("no string \"id\""), std::string::npos);
  EXPECT_NE(rej[2].get_string("reason").find("not a map"), std::string::npos);
  EXPECT_NE(rej[3].get_string("reason").find("set by the daemon"), std::string::npos);
  EXPECT_NE(rej[4].get_string("reason").find("printable ASCII"), std::string::npos);

  // A resent batch changes nothing; a changed record under a used id is refused.
  auto again = submit({vote("v1", "A"), vote("v2", "tie"), vote("v2", "A")});
  EXPECT_EQ(again.find("result")->get_int("accepted"), 0);
  EXPECT_EQ(again.find("result")->get_int("duplicates"), 2);
  EXPECT_EQ(again.find("result")->get_int("count"), 2);
  auto stored = store_->get_value(Family::Intake, intake_record_prefix("k", "r1", "votes") + "v2");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->get_string("outcome"), "tie");
  EXPECT_FALSE((*stored)->get_string("received_at").empty());

  auto st = call({{"op", "intake.status"}, {"competition", "k"}, {"round", "r1"}});
  ASSERT_EQ(st.find("result")->as_array().size(), 1u);
  EXPECT_EQ(st.find("result")->as_array()[0].get_int("count"), 2);
  EXPECT_EQ(st.find("result")->as_array()[0].get_string("state"), "open");

  ASSERT_TRUE(call({{"op", "intake.close"}, {"competition", "k"}, {"round", "r1"}, {"channel", "votes"}}).get_bool("ok"));
  auto late = submit({vote("v3", "A")});
  EXPECT_NE(late.get_string("error").find("is closed"), std::string::npos) << to_json(late);
  EXPECT_NE(call({{"op", "intake.close"}, {"competition", "k"}, {"round", "r1"}, {"channel", "votes"}}).get_string("error").find("not open"),
            std::string::npos);

  std::string actions;
  (void)store_->scan(Family::Audit, "", [&](std::string_view, std::string_view raw) {
    if (auto v = msgpack::decode(raw)) actions += v->get_string("action") + " ";
    return true;
  });
  EXPECT_NE(actions.find("intake.open intake.submit intake.close"), std::string::npos)
      << "one audited submit (the resend stored nothing): " << actions;
  EXPECT_TRUE(audit_->verify().ok);
}

// A restarted daemon found its stored pipelines under an empty name (the spec was moved
// from before its name was read), so no round could start after a restart.
TEST_F(ControlTest, StoredPipelinesComeBackUnderTheirNames) {
  ASSERT_TRUE(call({{"op", "pipeline.load"}, {"yaml", "name: demo\nstages:\n  - id: read\n    plugin: file-value\n"}}).get_bool("ok"));
  ControlApi again(config_, *store_, *audit_, plugins_, *engine_, [] {});
  ASSERT_TRUE(again.load_pipelines().ok());
  Value req;
  req.set("op", "pipeline.list");
  auto r = again.handle(req);
  ASSERT_EQ(r.find("result")->as_array().size(), 1u) << to_json(r);
  EXPECT_EQ(r.find("result")->as_array()[0].get_string("name"), "demo");
}

TEST_F(ControlTest, OperatorDecisionsAreRecordedWithTheirReasonInTheAuditLog) {
  ASSERT_TRUE(call({{"op", "competition.create"}, {"id", "k"}}).get_bool("ok"));
  ASSERT_TRUE(call({{"op", "pipeline.load"}, {"yaml", "name: demo\nstages:\n  - id: read\n    plugin: file-value\n"}}).get_bool("ok"));
  ASSERT_TRUE(call({{"op", "round.create"}, {"competition", "k"}, {"id", "r1"}, {"pipeline", "demo"}}).get_bool("ok"));
  ASSERT_TRUE(call({{"op", "entrant.add"}, {"competition", "k"}, {"id", "team-c"}, {"round", "r1"}}).get_bool("ok"));
  auto decide = [&](const char* entrant, const char* decision, const char* reason) {
    return call({{"op", "decision.record"}, {"competition", "k"}, {"round", "r1"}, {"entrant", entrant}, {"decision", decision}, {"reason", reason}});
  };
  EXPECT_NE(decide("team-c", "promote", "x").get_string("error").find("is not advance"), std::string::npos);
  EXPECT_NE(decide("team-c", "advance", "  ").get_string("error").find("needs a reason"), std::string::npos);
  EXPECT_NE(decide("team-z", "advance", "x").get_string("error").find("not in the roster"), std::string::npos);
  auto first = decide("team-c", "count_missing_as_zero", "user evaluation not held for team-c");
  ASSERT_TRUE(first.get_bool("ok")) << to_json(first);
  EXPECT_EQ(first.find("result")->get_string("id"), "d-000001");
  auto second = decide("team-c", "advance", "appeal upheld, committee minutes 2026-12-02");
  EXPECT_EQ(second.find("result")->get_string("id"), "d-000002");
  auto stored = store_->get_value(Family::Intake, intake_record_prefix("k", "r1", "decisions") + "d-000002");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->get_string("by"), "tester");
  bool audited = false;
  (void)store_->scan(Family::Audit, "", [&](std::string_view, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (v && v->get_string("action") == "decision.record" && to_json(*v).find("appeal upheld") != std::string::npos) audited = true;
    return true;
  });
  EXPECT_TRUE(audited) << "the reason is in the audit log";
}
