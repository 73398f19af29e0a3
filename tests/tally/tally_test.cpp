// Closing a round: totals from unrounded points, gates, ranking with tie-breaks, advancement,
// pending entrants and operators' decisions; then the plugin through the SDK harness.
#include "round_tally.hpp"

#include <evald/testing.hpp>

#include <gtest/gtest.h>

using evald::Array;
using evald::Job;
using evald::Message;
using evald::Value;
using evald::testing::PluginHarness;
using namespace evald::tally;

namespace {

Value component(const char* name, const char* kind, double scale, const char* ko) {
  Value c;
  c.set("name", name);
  c.set("kind", kind);
  c.set("scale", scale);
  c.set("label_ko", ko);
  return c;
}

// The programme's round 1: benchmark 40 + expert panel 35 + user evaluation 25, the
// provenance gate, three advance.
Value round1_config() {
  Value v;
  v.set("components", Array{component("benchmark", "benchmark-score", 40, "벤치마크"), component("experts", "expert-score", 35, "전문가 평가"),
                            component("users", "user-score", 25, "사용자 평가")});
  Value g;
  g.set("name", "independence");
  g.set("kind", "provenance");
  v.set("gates", Array{g});
  v.set("tie_breaks", Array{Value("benchmark"), Value("experts")});
  v.set("advance_top", 3);
  return v;
}

TallyConfig config(const Value& v) {
  auto c = tally_config_from(v);
  EXPECT_TRUE(c.ok()) << c.error();
  return *c;
}

Message points(const char* stage, const char* kind, const std::string& entrant, double pts) {
  Value p;
  p.set("entrant", entrant);
  p.set("points", pts);
  return PluginHarness::message(stage, stage == std::string("experts") || stage == std::string("users") ? "" : entrant, kind, p);
}

Message gate(const std::string& entrant, const char* result, const char* reason = "") {
  Value g;
  g.set("result", result);
  g.set("reason", reason);
  Value p;
  p.set("gate", g);
  return PluginHarness::message("provenance", entrant, "provenance", p);
}

struct Team {
  std::string id, name;
  double bench, experts, users;
  const char* gate;
};

Job round_job(const std::vector<Team>& teams) {
  Job j = PluginHarness::round_job({});
  Array roster;
  for (auto& t : teams) {
    Value r;
    r.set("id", t.id);
    r.set("name", t.name);
    roster.push_back(r);
    if (t.bench >= 0) j.inputs.push_back(points("bench", "benchmark-score", t.id, t.bench));
    if (t.experts >= 0) j.inputs.push_back(points("experts", "expert-score", t.id, t.experts));
    if (t.users >= 0) j.inputs.push_back(points("users", "user-score", t.id, t.users));
    if (t.gate) j.inputs.push_back(gate(t.id, t.gate, std::string(t.gate) == "fail" ? "vision derived from open-vlm (Holm p 1e-12, effect 0.97)" : ""));
  }
  j.round.set("roster", roster);
  j.round.set("competition", "k-ai");
  return j;
}

const std::vector<Team> kRound1 = {{"team-a", "한빛팀", 33.6, 31.6, 25.0, "pass"},
                                   {"team-b", "바다팀", 30.1, 28.0, 20.5, "pass"},
                                   {"team-c", "산팀", 28.0, 26.3, 18.2, "pass"},
                                   {"team-d", "들팀", 25.5, 22.0, 15.0, "pass"},
                                   {"team-e", "강팀", 36.0, 30.0, 24.0, "fail"}};

const Value& entrant(const Value& t, const std::string& id) {
  for (auto& e : t.find("entrants")->as_array())
    if (e.get_string("entrant") == id) return e;
  throw std::runtime_error("no entrant " + id);
}

}  // namespace

TEST(Tally, Round1ThreeAdvanceOneDisqualifiedOneEliminated) {
  auto t = tally_round(config(round1_config()), round_job(kRound1), {});
  EXPECT_TRUE(t.get_bool("decided"));
  auto& a = entrant(t, "team-a");
  EXPECT_DOUBLE_EQ(a.get_double("total"), 90.2);
  EXPECT_EQ(a.get_int("rank"), 1);
  EXPECT_EQ(a.get_string("decision"), "advance");
  EXPECT_EQ(entrant(t, "team-b").get_string("decision"), "advance");
  EXPECT_EQ(entrant(t, "team-c").get_string("decision"), "advance");
  auto& d = entrant(t, "team-d");
  EXPECT_EQ(d.get_string("decision"), "eliminated");
  EXPECT_EQ(d.get_int("rank"), 4);
  EXPECT_NE(d.get_string("decision_reason").find("outside the best 3"), std::string::npos);
  // The disqualified team had the best total: the report shows it, and why it does not count.
  auto& e = entrant(t, "team-e");
  EXPECT_EQ(e.get_string("decision"), "disqualified");
  EXPECT_EQ(e.get_string("status"), "disqualified");
  EXPECT_DOUBLE_EQ(e.get_double("total"), 90.0);
  EXPECT_TRUE(e.find("rank")->is_null());
  EXPECT_EQ(e.get_int("would_be_rank"), 2);
  EXPECT_NE(e.get_string("decision_reason").find("independence: vision derived from open-vlm"), std::string::npos);
  // Rank order, then the disqualified.
  auto& order = t.find("entrants")->as_array();
  EXPECT_EQ(order.front().get_string("entrant"), "team-a");
  EXPECT_EQ(order.back().get_string("entrant"), "team-e");
  EXPECT_EQ(a.find("components")->find("benchmark")->find("source")->get_string("stage"), "bench");
  EXPECT_DOUBLE_EQ(t.get_double("total_scale"), 100.0);
  EXPECT_NE(t.find("rule")->get_string("text").find("The best 3 not disqualified advance"), std::string::npos);
}

TEST(Tally, TieBreaksInOrderThenAnHonestTie) {
  // b and c total 80: b has the higher benchmark. d and e total 70 with equal benchmark: experts decide.
  std::vector<Team> teams = {{"a", "a", 35, 30, 20, "pass"}, {"b", "b", 35, 25, 20, "pass"}, {"c", "c", 30, 30, 20, "pass"},
                             {"d", "d", 30, 25, 15, "pass"}, {"e", "e", 30, 20, 20, "pass"}};
  auto t = tally_round(config(round1_config()), round_job(teams), {});
  EXPECT_EQ(entrant(t, "b").get_int("rank"), 2);
  EXPECT_EQ(entrant(t, "c").get_int("rank"), 3);
  EXPECT_EQ(entrant(t, "d").get_int("rank"), 4);
  EXPECT_EQ(entrant(t, "e").get_int("rank"), 5);
  EXPECT_FALSE(entrant(t, "b").get_bool("tied"));
  EXPECT_TRUE(t.get_bool("decided"));

  // Fully equal at the cut: the rule cannot choose, so the round waits for a decision.
  teams[3] = {"d", "d", 30, 30, 20, "pass"};
  auto tie = tally_round(config(round1_config()), round_job(teams), {});
  EXPECT_EQ(entrant(tie, "c").get_int("rank"), 3);
  EXPECT_EQ(entrant(tie, "d").get_int("rank"), 3);
  EXPECT_TRUE(entrant(tie, "d").get_bool("tied"));
  EXPECT_EQ(entrant(tie, "c").get_string("decision"), "pending");
  EXPECT_EQ(entrant(tie, "d").get_string("decision"), "pending");
  EXPECT_NE(entrant(tie, "d").get_string("decision_reason").find("tied at rank 3 across the cut of 3"), std::string::npos);
  EXPECT_FALSE(tie.get_bool("decided"));
  // The operator settles it; the record says what the rule alone would have done.
  std::vector<OperatorDecision> ops = {{"d1", "c", "advance", "drawing of lots, minutes 2026-11-20", "committee", "2026-11-26T10:00:00.000Z"},
                                       {"d2", "d", "eliminate", "drawing of lots, minutes 2026-11-20", "committee", "2026-11-26T10:00:00.000Z"}};
  auto settled = tally_round(config(round1_config()), round_job(teams), ops);
  EXPECT_TRUE(settled.get_bool("decided"));
  EXPECT_EQ(entrant(settled, "c").get_string("decision"), "advance");
  EXPECT_NE(entrant(settled, "c").get_string("decision_reason").find("operator decision d1 (drawing of lots"), std::string::npos);
  EXPECT_EQ(entrant(settled, "d").find("operator_decision")->get_string("by"), "committee");
}

TEST(Tally, MissingResultsAreNeverZero) {
  std::vector<Team> teams = kRound1;
  teams[2].users = -1;  // team-c's user score never arrived
  Job job = round_job(teams);
  job.failed_upstream.push_back({"users", "", "failed: votes.csv: cannot open"});
  auto t = tally_round(config(round1_config()), job, {});
  EXPECT_FALSE(t.get_bool("decided"));
  auto& c = entrant(t, "team-c");
  EXPECT_EQ(c.get_string("decision"), "pending");
  EXPECT_EQ(c.get_string("status"), "incomplete");
  EXPECT_TRUE(c.find("total")->is_null());
  EXPECT_NE(c.get_string("decision_reason").find("users: no user-score result (stage users failed: votes.csv: cannot open)"), std::string::npos)
      << c.get_string("decision_reason");
  // With team-c pending, team-d is third among those complete: but nothing about c is assumed.
  EXPECT_EQ(entrant(t, "team-d").get_int("rank"), 3);
  ASSERT_EQ(t.find("undecided")->as_array().size(), 1u);

  // Decisions without a reason, or about someone else, change nothing and are listed.
  std::vector<OperatorDecision> ops = {{"x1", "team-c", "count_missing_as_zero", "", "op", ""},
                                       {"x2", "team-z", "advance", "why not", "op", ""}};
  auto still = tally_round(config(round1_config()), job, ops);
  EXPECT_FALSE(still.get_bool("decided"));
  EXPECT_EQ(still.find("ignored_decisions")->as_array().size(), 2u);

  ops = {{"x3", "team-c", "count_missing_as_zero", "user evaluation not held for team-c (withdrew consent)", "op", ""}};
  auto done = tally_round(config(round1_config()), job, ops);
  EXPECT_TRUE(done.get_bool("decided"));
  auto& c2 = entrant(done, "team-c");
  EXPECT_DOUBLE_EQ(c2.get_double("total"), 54.3);
  EXPECT_TRUE(c2.find("components")->find("users")->get_bool("counted_as_zero"));
  EXPECT_EQ(c2.get_string("decision"), "eliminated");
  EXPECT_EQ(entrant(done, "team-d").get_string("decision"), "advance");
}

TEST(Tally, IncompletePayloadsAndGatesHoldTheRound) {
  std::vector<Team> teams = kRound1;
  teams[1].gate = "inconclusive";
  teams[3].gate = nullptr;
  Job job = round_job(teams);
  Value p;
  p.set("entrant", "team-a");
  p.set("complete", false);
  p.set("reason", "1 rater(s) with a complete sheet; at least 3 needed");
  p.set("points", Value());
  for (auto& m : job.inputs)
    if (m.kind == "expert-score" && m.payload.get_string("entrant") == "team-a") m.payload = p;
  auto t = tally_round(config(round1_config()), job, {});
  EXPECT_NE(entrant(t, "team-a").get_string("decision_reason").find("experts: incomplete expert-score: 1 rater(s)"), std::string::npos);
  EXPECT_NE(entrant(t, "team-b").get_string("decision_reason").find("independence: inconclusive"), std::string::npos);
  EXPECT_NE(entrant(t, "team-d").get_string("decision_reason").find("independence: no provenance result"), std::string::npos);
  EXPECT_EQ(t.find("undecided")->as_array().size(), 3u);

  std::vector<OperatorDecision> ops = {{"g1", "team-b", "accept_inconclusive", "manual review of the vision tower found it trained from scratch", "panel", ""}};
  auto t2 = tally_round(config(round1_config()), job, ops);
  EXPECT_EQ(entrant(t2, "team-b").get_string("status"), "complete");

  Value strict = round1_config();
  Value g = strict.find("gates")->as_array()[0];
  g.set("inconclusive", "fail");
  strict.set("gates", Array{g});
  auto t3 = tally_round(config(strict), job, {});
  EXPECT_EQ(entrant(t3, "team-b").get_string("decision"), "disqualified");
}

TEST(Tally, TotalsComeFromUnroundedPoints) {
  // 10.04 three times shows as 10.0 each but totals 30.12 -> 30.1, not 30.0.
  std::vector<Team> teams = {{"a", "a", 10.04, 10.04, 10.04, "pass"}, {"b", "b", 33.65, 0, 0, "pass"}};
  Value v = round1_config();
  v.set("advance_top", 1);
  auto t = tally_round(config(v), round_job(teams), {});
  auto& a = entrant(t, "a");
  EXPECT_DOUBLE_EQ(a.find("components")->find("benchmark")->get_double("points"), 10.0);
  EXPECT_DOUBLE_EQ(a.get_double("total"), 30.1);
  EXPECT_NEAR(a.get_double("total_exact"), 30.12, 1e-12);
  EXPECT_DOUBLE_EQ(entrant(t, "b").find("components")->find("benchmark")->get_double("points"), 33.7) << "half away from zero as printed";
  EXPECT_DOUBLE_EQ(round_points(0.05, 1), 0.1);
  EXPECT_DOUBLE_EQ(round_points(-0.05, 1), -0.1);
  EXPECT_DOUBLE_EQ(round_points(2.675, 2), 2.68);
}

TEST(Tally, ScalesRangesAndMinimumTotals) {
  std::vector<Team> teams = {{"a", "a", 30, 30, 20, "pass"}, {"b", "b", 20, 20, 10, "pass"}, {"c", "c", 50, 10, 10, "pass"}};
  Job job = round_job(teams);
  // b's benchmark plugin reports on a 100-point scale: 50 of 100 is 20 of 40.
  for (auto& m : job.inputs)
    if (m.kind == "benchmark-score" && m.payload.get_string("entrant") == "b") {
      m.payload.set("points", 50.0);
      m.payload.set("scale", 100.0);
    }
  Value v = round1_config();
  v.set("advance_top", 0);
  v.set("advance_min_total", 60.0);
  auto t = tally_round(config(v), job, {});
  EXPECT_DOUBLE_EQ(entrant(t, "b").find("components")->find("benchmark")->get_double("points"), 20.0);
  EXPECT_EQ(entrant(t, "a").get_string("decision"), "advance");
  EXPECT_EQ(entrant(t, "b").get_string("decision"), "eliminated");
  EXPECT_NE(entrant(t, "b").get_string("decision_reason").find("below the minimum 60.0"), std::string::npos);
  EXPECT_NE(entrant(t, "c").get_string("decision_reason").find("benchmark-score points 50.000 outside 0..40.0"), std::string::npos)
      << "a plugin's out-of-range points are an error, not clamped";
}

TEST(Tally, ConfigErrorsNameTheKey) {
  auto err = [](Value v) {
    auto c = tally_config_from(v);
    return c.ok() ? std::string() : c.error();
  };
  Value v = round1_config();
  v.set("tie_breaks", Array{Value("speed")});
  EXPECT_NE(err(v).find("tie_breaks: \"speed\" is not a component"), std::string::npos);
  v = round1_config();
  v.set("advance_top", 0);
  EXPECT_NE(err(v).find("advancement"), std::string::npos);
  v = round1_config();
  Value bad = component("x", "k", 0, "x");
  v.set("components", Array{bad});
  EXPECT_NE(err(v).find("components[0].scale"), std::string::npos);
}

TEST(TallyPlugin, ReadsOperatorDecisionsFromIntake) {
  PluginHarness h(std::string(EVALD_PLUGIN_DIR) + "/tally.so");
  ASSERT_TRUE(h.configure(round1_config()).ok());
  std::vector<Team> teams = kRound1;
  teams[2].users = -1;
  Value d;
  d.set("id", "dec-1");
  d.set("entrant", "team-c");
  d.set("decision", "count_missing_as_zero");
  d.set("reason", "withdrew from user evaluation");
  d.set("received_at", "2026-11-26T10:00:00.000Z");
  h.add_intake("decisions", d);
  auto out = h.finish(round_job(teams));
  ASSERT_TRUE(out.ok()) << out.error();
  ASSERT_EQ(out->size(), 1u);
  auto& t = (*out)[0].payload;
  EXPECT_EQ((*out)[0].kind, "tally");
  EXPECT_TRUE(t.get_bool("decided"));
  EXPECT_EQ(t.find("operator_decisions")->as_array()[0].get_string("id"), "dec-1");
  EXPECT_EQ(t.get_string("schema"), "evald.tally/1");
  EXPECT_FALSE(t.get_string("artifact_sha256").empty());
}
