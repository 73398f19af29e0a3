// The pipeline engine in-process: real RocksDB, ZeroMQ inproc sockets, plugin libraries.
#include "engine.hpp"
#include "intake.hpp"

#include <gtest/gtest.h>

#include "test_plugins.hpp"

#include <condition_variable>
#include <set>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::daemon;

namespace {

using test::plugins;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { close(); }

  void open(std::vector<int> gpus = {}, bool gpu_share = false) {
    store_ = std::move(*Store::open(tmp_.path()));
    audit_ = std::move(*AuditLog::open(*store_));
    engine_ = std::make_unique<Engine>(*store_, *audit_, plugins(), EngineOptions{tmp_.path(), 5, EVALD_WORKER_BIN});
    engine_->set_gpu_pool(std::move(gpus), gpu_share, "test pool");
    engine_->on_run_finished([this](const std::string& id) {
      std::lock_guard lock(mu_);
      finished_.insert(id);
      cv_.notify_all();
    });
    ASSERT_TRUE(engine_->start().ok());
  }
  void close() {
    if (engine_) {
      engine_->stop(false);
      engine_->wait();
    }
    engine_.reset();
    audit_.reset();
    store_.reset();
  }

  std::string start(const std::string& yaml, std::vector<std::string> entrants) {
    auto spec = parse_pipeline(yaml, "test.yaml", plugins());
    EXPECT_TRUE(spec.ok()) << spec.error();
    RunRequest rq;
    rq.competition = "c";
    rq.round = "r1";
    rq.round_info.set("id", "r1");
    rq.pipeline = std::make_shared<const PipelineSpec>(std::move(*spec));
    rq.actor = "test";
    for (auto& e : entrants) {
      Value v;
      v.set("id", e);
      v.set("name", e);
      v.set("submission", Map{});
      rq.entrants.push_back(v);
    }
    auto id = engine_->start_run(std::move(rq));
    EXPECT_TRUE(id.ok()) << id.error();
    return id.ok() ? *id : "";
  }

  bool wait(const std::string& run, int seconds = 30) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(seconds), [&] { return finished_.count(run) > 0; });
  }

  Value status(const std::string& run) {
    auto s = engine_->run_status(run);
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? *s : Value();
  }

  Value job(const Value& st, const std::string& stage, const std::string& unit) {
    for (auto& j : st.find("jobs")->as_array())
      if (j.get_string("stage") == stage && j.get_string("unit") == unit) return j;
    ADD_FAILURE() << "no job " << stage << "/" << unit;
    return {};
  }

  Value counters(const Value& st, const std::string& stage) {
    for (auto& c : st.find("stage_counters")->as_array())
      if (c.get_string("stage") == stage) return c;
    return {};
  }

  test::TempDir tmp_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Engine> engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> finished_;
};

const char* kThreeStages = R"(name: three
stages:
  - id: s1
    plugin: test-behave
    workers: 2
  - id: s2
    plugin: test-behave
    after: [s1]
  - id: total
    plugin: test-behave
    per: round
    after: [s2]
)";

}  // namespace

TEST_F(EngineTest, RunsAPipelineToTheEnd) {
  auto run = start(kThreeStages, {"a", "b", "c"});
  ASSERT_TRUE(wait(run));
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "done");
  EXPECT_EQ(counters(st, "s1").get_int("done"), 3);
  EXPECT_EQ(counters(st, "s2").get_int("in"), 3);
  EXPECT_EQ(counters(st, "total").get_int("in"), 3);
  auto out = engine_->run_outputs(run, "total");
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  // s1 emits 1, s2 emits 1+1=2 per entrant, total = 3*2 + 1.
  EXPECT_DOUBLE_EQ((*out)[0].payload.get_double("value"), 7.0);
  EXPECT_EQ((*out)[0].envelope.job, run + "/total/_round");
  EXPECT_TRUE(audit_->verify().ok);
}

TEST_F(EngineTest, ThrowingPluginFailsItsJobNotTheRun) {
  auto run = start(R"(name: p
stages:
  - id: s1
    plugin: test-behave
    retries: 1
    config: {mode: throw, only: [b]}
  - id: s2
    plugin: test-behave
    after: [s1]
  - id: total
    plugin: test-behave
    per: round
    after: [s2]
)",
                   {"a", "b", "c"});
  ASSERT_TRUE(wait(run));
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "failed");
  auto b1 = job(st, "s1", "b");
  EXPECT_EQ(b1.get_string("state"), "failed");
  EXPECT_EQ(b1.get_int("attempt"), 2) << "one retry";
  EXPECT_NE(b1.get_string("error").find("plugin threw: behave: thrown on purpose for b"), std::string::npos);
  EXPECT_EQ(job(st, "s2", "b").get_string("state"), "skipped");
  EXPECT_EQ(job(st, "s2", "a").get_string("state"), "done");
  auto t = job(st, "total", "_round");
  EXPECT_EQ(t.get_string("state"), "done") << "the barrier still runs";
  EXPECT_EQ(counters(st, "total").get_int("in"), 2);
  auto out = engine_->run_outputs(run, "total");
  EXPECT_EQ((*out)[0].payload.get_int("failed_upstream"), 1) << "the barrier sees what is missing";
  EXPECT_EQ(counters(st, "s1").get_int("retried"), 1);
}

TEST_F(EngineTest, FlakyJobSucceedsOnRetry) {
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    config: {mode: flaky}\n", {"a", "b"});
  ASSERT_TRUE(wait(run));
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "done");
  auto a = job(st, "s1", "a");
  EXPECT_EQ(a.get_int("attempt"), 2);
  EXPECT_EQ(a.get_int("failures"), 1);
  EXPECT_EQ(counters(st, "s1").get_int("retried"), 2);
  EXPECT_EQ(counters(st, "s1").get_int("out"), 2) << "the failed attempt left no output";
}

TEST_F(EngineTest, HungPluginTimesOutWithoutStallingOthers) {
  auto run = start(R"(name: p
stages:
  - id: s1
    plugin: test-behave
    timeout_s: 1
    retries: 0
    config: {mode: hang_hard, sleep_ms: 4000, only: [slow]}
  - id: s2
    plugin: test-behave
    after: [s1]
)",
                   {"slow", "a", "b"});
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait(run));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4)) << "did not wait for the hung plugin";
  auto st = status(run);
  auto slow = job(st, "s1", "slow");
  EXPECT_EQ(slow.get_string("state"), "failed");
  EXPECT_EQ(slow.get_string("error"), "timed out after 1 s");
  EXPECT_EQ(job(st, "s2", "a").get_string("state"), "done");
  EXPECT_EQ(job(st, "s2", "b").get_string("state"), "done");
}

TEST_F(EngineTest, CooperativeHangIsCancelledAndRetried) {
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    timeout_s: 1\n    retries: 1\n    config: {mode: hang}\n", {"a"});
  ASSERT_TRUE(wait(run, 20));
  auto a = job(status(run), "s1", "a");
  EXPECT_EQ(a.get_string("state"), "failed");
  EXPECT_EQ(a.get_int("attempt"), 2);
}

TEST_F(EngineTest, RoundWithoutEntrantsStillReachesItsBarrier) {
  auto run = start(kThreeStages, {});
  ASSERT_TRUE(wait(run));
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "done");
  EXPECT_EQ(counters(st, "total").get_int("done"), 1);
}

TEST_F(EngineTest, ManyMessagesPerJobAreStoredOnceInOrder) {
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    config: {emit: 500}\n  - id: s2\n    plugin: test-behave\n    after: [s1]\n", {"a", "b"});
  ASSERT_TRUE(wait(run));
  auto out = engine_->run_outputs(run, "s1");
  ASSERT_EQ(out->size(), 1000u);
  for (size_t i = 0; i < 500; ++i) EXPECT_EQ((*out)[i].payload.get_int("i"), int64_t(i));
  EXPECT_EQ(counters(status(run), "s2").get_int("in"), 1000);
}

TEST_F(EngineTest, LargeOutputsTravelInSeveralFramesAndKeepTheirOrder) {
  // ~20,000 small messages: more than one EMIT frame's worth before DONE.
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    config: {emit: 20000}\n", {"a"});
  ASSERT_TRUE(wait(run, 60));
  auto out = engine_->run_outputs(run, "s1");
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 20000u);
  for (size_t i = 0; i < out->size(); i += 997) {
    EXPECT_EQ((*out)[i].payload.get_int("i"), int64_t(i));
    EXPECT_EQ((*out)[i].seq, int64_t(i));
  }
}

TEST_F(EngineTest, RunsResumeAfterEngineRestart) {
  auto run = start(R"(name: p
stages:
  - id: s1
    plugin: test-behave
    config: {sleep_ms: 30}
  - id: total
    plugin: test-behave
    per: round
    after: [s1]
)",
                   {"a", "b", "c", "d", "e", "f"});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  close();  // abrupt: no drain; running jobs stay "running" in the store
  open();
  ASSERT_TRUE(wait(run));
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "done");
  auto out = engine_->run_outputs(run, "total");
  ASSERT_EQ(out->size(), 1u);
  EXPECT_DOUBLE_EQ((*out)[0].payload.get_double("value"), 7.0);
  EXPECT_EQ(engine_->run_outputs(run, "s1")->size(), 6u);
}

TEST_F(EngineTest, PluginThatCannotStartFailsItsStage) {
  // Not a schema problem: file-value starts fine but every job lacks its file.
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: file-value\n    retries: 0\n", {"a"});
  ASSERT_TRUE(wait(run));
  auto a = job(status(run), "s1", "a");
  EXPECT_EQ(a.get_string("state"), "failed");
  EXPECT_NE(a.get_string("error").find("submission has no \"value_file\""), std::string::npos);
}

TEST_F(EngineTest, ShutdownDoesNotWaitForAHungPlugin) {
  auto run = start(R"(name: p
stages:
  - id: s1
    plugin: test-behave
    timeout_s: 1
    retries: 0
    config: {mode: hang_hard, sleep_ms: 120000}
)",
                   {"a"});
  ASSERT_TRUE(wait(run, 20));
  EXPECT_EQ(job(status(run), "s1", "a").get_string("error"), "timed out after 1 s");
  auto t0 = std::chrono::steady_clock::now();
  close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30)) << "stop hung on the stuck plugin thread";
}

TEST(EngineLifecycle, StopIsSafeWithoutStartAndTwice) {
  test::TempDir tmp;
  auto store = std::move(*Store::open(tmp.path()));
  auto audit = std::move(*AuditLog::open(*store));
  PluginRegistry none;
  {
    Engine e(*store, *audit, none, EngineOptions{tmp.path(), 1, EVALD_WORKER_BIN});
    e.stop();
    e.stop(false);
    e.wait();
  }
  Engine e(*store, *audit, none, EngineOptions{tmp.path(), 1, EVALD_WORKER_BIN});
  ASSERT_TRUE(e.start().ok());
  EXPECT_FALSE(e.start().ok()) << "a second start is refused";
  e.stop();
  e.stop();
  e.wait();
  EXPECT_FALSE(e.running());
}

TEST_F(EngineTest, ProcessIsolationTurnsAPluginCrashIntoAFailedJob) {
  auto run = start(R"(name: p
stages:
  - id: s1
    plugin: test-behave
    isolation: process
    retries: 1
    config: {mode: crash, only: [b]}
  - id: total
    plugin: test-behave
    per: round
    after: [s1]
)",
                   {"a", "b", "c"});
  ASSERT_TRUE(wait(run, 60));
  auto st = status(run);
  auto b = job(st, "s1", "b");
  EXPECT_EQ(b.get_string("state"), "failed");
  EXPECT_EQ(b.get_int("attempt"), 2) << "retried in a fresh process";
  EXPECT_NE(b.get_string("error").find("died: signal 6"), std::string::npos) << b.get_string("error");
  EXPECT_EQ(job(st, "s1", "a").get_string("state"), "done");
  EXPECT_EQ(job(st, "s1", "c").get_string("state"), "done");
  EXPECT_EQ(job(st, "total", "_round").get_string("state"), "done");
}

TEST_F(EngineTest, ProcessWorkersKeepPluginStateThroughTheDaemon) {
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    isolation: process\n    config: {mode: flaky}\n", {"a", "b"});
  ASSERT_TRUE(wait(run, 60));
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "done");
  EXPECT_EQ(job(st, "s1", "a").get_int("attempt"), 2) << "the first attempt's state was kept";
  auto s = store_->get(Family::PluginState, "test-behave/attempts/" + run + "/s1/a");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->has_value()) << "written by the worker process into the daemon's store";
}

// Records streamed in through the control API reach plugins through the host, in id order,
// from a thread and from a worker process (over the broker, in several pages).
TEST_F(EngineTest, PluginsReadTheRoundsIntakeRecords) {
  const std::string blob(60000, 'x');
  for (int i = 0; i < 100; ++i) {
    Value rec;
    rec.set("id", "v" + std::to_string(1000 + i));
    rec.set("blob", blob);
    Bytes b = msgpack::encode(rec);
    ASSERT_TRUE(store_->put(Family::Intake, intake_record_prefix("c", "r1", "votes") + rec.get_string("id"),
                            std::string_view(reinterpret_cast<const char*>(b.data()), b.size())).ok());
  }
  Value other;
  other.set("id", "elsewhere");
  Bytes ob = msgpack::encode(other);
  ASSERT_TRUE(store_->put(Family::Intake, intake_record_prefix("c", "r2", "votes") + "elsewhere",
                          std::string_view(reinterpret_cast<const char*>(ob.data()), ob.size())).ok());
  for (const char* isolation : {"thread", "process"}) {
    auto run = start(std::string("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    per: round\n    isolation: ") + isolation +
                         "\n    config: {intake: votes}\n",
                     {"a"});
    ASSERT_TRUE(wait(run, 60)) << isolation;
    auto st = status(run);
    ASSERT_EQ(st.get_string("state"), "done") << isolation << " " << evald::to_json(st);
    auto outs = engine_->run_outputs(run);
    ASSERT_TRUE(outs.ok()) << outs.error();
    ASSERT_EQ(outs->size(), 1u);
    auto& p = (*outs)[0].payload;
    auto& ids = p.find("intake_ids")->as_array();
    ASSERT_EQ(ids.size(), 100u) << isolation << ": only round r1's records, all of them";
    EXPECT_EQ(ids.front().as_string(), "v1000");
    EXPECT_EQ(ids.back().as_string(), "v1099");
    EXPECT_EQ(p.get_int("intake_bytes"), 100 * 60000) << isolation;
  }
}

// Jobs of a stage with `gpus: 1` lease GPUs from the daemon's pool: never the same GPU at
// once unless sharing is on, and a stage needing more than the pool fails clearly.
TEST_F(EngineTest, GpuJobsLeaseFromThePoolWithoutSharing) {
  close();
  open({0, 1});
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    workers: 4\n    gpus: 1\n    config: {sleep_ms: 60}\n",
                   {"a", "b", "c", "d", "e", "f"});
  ASSERT_TRUE(wait(run, 60));
  EXPECT_EQ(status(run).get_string("state"), "done");
  auto outs = engine_->run_outputs(run);
  ASSERT_TRUE(outs.ok());
  ASSERT_EQ(outs->size(), 6u);
  std::set<int64_t> used;
  for (auto& m : *outs) {
    auto& g = m.payload.find("gpus")->as_array();
    ASSERT_EQ(g.size(), 1u);
    used.insert(g[0].as_int());
    EXPECT_FALSE(m.payload.get_bool("gpu_overlap")) << "job " << m.envelope.job << " found its GPU in use";
  }
  EXPECT_EQ(used, (std::set<int64_t>{0, 1}));

  auto big = start("name: q\nstages:\n  - id: s1\n    plugin: test-behave\n    retries: 3\n    gpus: 3\n", {"a"});
  ASSERT_TRUE(wait(big, 60));
  auto st = status(big);
  EXPECT_EQ(job(st, "s1", "a").get_string("state"), "failed");
  EXPECT_EQ(job(st, "s1", "a").get_int("attempt"), 1) << "no retry: waiting cannot make the pool bigger";
  EXPECT_NE(job(st, "s1", "a").get_string("error").find("needs 3 GPU(s); the daemon's pool has 2 (test pool)"), std::string::npos)
      << job(st, "s1", "a").get_string("error");
}

TEST_F(EngineTest, SharedGpusAreLeasedToConcurrentJobs) {
  close();
  open({3}, true);
  auto run = start("name: p\nstages:\n  - id: s1\n    plugin: test-behave\n    workers: 3\n    gpus: 1\n    config: {sleep_ms: 200}\n",
                   {"a", "b", "c"});
  ASSERT_TRUE(wait(run, 60));
  auto outs = engine_->run_outputs(run);
  ASSERT_TRUE(outs.ok());
  for (auto& m : *outs) EXPECT_EQ(m.payload.find("gpus")->as_array()[0].as_int(), 3);
  auto st = status(run);
  EXPECT_EQ(st.get_string("state"), "done");
}

TEST_F(EngineTest, ProcessWorkerPastItsTimeoutIsKilled) {
  auto run = start(R"(name: p
stages:
  - id: s1
    plugin: test-behave
    isolation: process
    timeout_s: 1
    retries: 0
    config: {mode: hang_hard, sleep_ms: 120000, only: [slow]}
)",
                   {"slow", "a"});
  ASSERT_TRUE(wait(run, 30));
  auto st = status(run);
  EXPECT_EQ(job(st, "s1", "slow").get_string("error"), "timed out after 1 s");
  EXPECT_EQ(job(st, "s1", "a").get_string("state"), "done");
  auto t0 = std::chrono::steady_clock::now();
  close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}
