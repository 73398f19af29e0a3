// The benchmark plugin in a real daemon: per-entrant jobs against two toy servers, the
// per-round stage for min_max points, and item answers kept in the daemon's store across a
// kill -9, so a later run of the same models sends no request; and a round scored on real
// llama.cpp inference.
#include "../common/test_util.hpp"
#include "engine_server.hpp"
#include "json.hpp"

#include <gtest/gtest.h>

namespace {

std::string pipeline(const std::string& suite) {
  std::string cfg = "{suites: [" + suite + "], backoff_s: 0.01, sections: [{name: knowledge, points: 40, suites: [sample-ko-general], normalisation: min_max}]}";
  return "name: bench\nstages:\n"
         "  - id: bench\n    plugin: benchmark\n    per: entrant\n    retries: 0\n    config: " + cfg + "\n"
         "  - id: total\n    plugin: benchmark\n    per: round\n    after: [bench]\n    retries: 0\n    config: " + cfg + "\n";
}

}  // namespace

TEST(BenchmarkDaemon, RoundPointsAndAnswersSurviveKill) {
  using evald::test::quote;
  evald::test::TempDir tmp;
  bench_test::ToyServer strong(0.75), weak(0.25);
  evald::test::write_file(tmp / "bench.yaml", pipeline(quote(bench_test::kSuites + "/sample-ko-general/suite.yaml")));
  evald::test::Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "bench.yaml")).code, 0) << d.log();
  ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline bench").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --round round-1 --set endpoint=" + strong.url() + " --set model=toy").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-b --round round-1 --set endpoint=" + weak.url() + " --set model=toy").code, 0);
  auto run = d.ctl("run start k-ai round-1 --wait");
  ASSERT_EQ(run.code, 0) << run.out << d.log();
  auto out = d.ctl("--json run outputs run-000001");
  ASSERT_EQ(out.code, 0) << out.out;
  EXPECT_NE(out.out.find("\"kind\":\"benchmark-score\""), std::string::npos) << out.out.substr(0, 2000);
  // min_max over two entrants: the stronger gets all 40 points, the weaker none.
  EXPECT_NE(out.out.find("\"entrant\":\"team-a\",\"points\":40"), std::string::npos) << out.out.substr(0, 4000);
  EXPECT_NE(out.out.find("\"entrant\":\"team-b\",\"points\":0"), std::string::npos) << out.out.substr(0, 4000);
  int64_t sent = strong.requests() + weak.requests();
  // Each: the probe (4 echoes, a try of each of the 3 tokenize shapes; the toy has none) and
  // 24 items x 4 rotations x (4 choices + an echo of the context).
  EXPECT_EQ(sent, 2 * (4 + 3 + 24 * 4 * 5));

  d.kill(SIGKILL);
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("round create k-ai round-2 --pipeline bench").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --round round-2 --set endpoint=" + strong.url() + " --set model=toy").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-b --round round-2 --set endpoint=" + weak.url() + " --set model=toy").code, 0);
  auto again = d.ctl("run start k-ai round-2 --wait");
  ASSERT_EQ(again.code, 0) << again.out << d.log();
  EXPECT_EQ(strong.requests() + weak.requests(), sent) << "every answer came from the store";
}

TEST(BenchmarkDaemon, KillNineMidRunLosesOnlyRequestsInFlight) {
  using evald::test::quote;
  evald::test::TempDir tmp;
  bench_test::ToyServer srv(0.75);
  // 60 requests a second, 4 at a time: the 487 requests (the probe's 7, then 96 units of 5)
  // take about 8 s, long enough to kill the daemon in the middle.
  std::string cfg = "{suites: [" + quote(bench_test::kSuites + "/sample-ko-general/suite.yaml") +
                    "], rate_limit: 60, concurrency: 4, sections: [{name: knowledge, points: 40, suites: [sample-ko-general]}]}";
  evald::test::write_file(tmp / "slow.yaml", "name: slow\nstages:\n  - id: bench\n    plugin: benchmark\n    per: entrant\n    config: " + cfg + "\n");
  {
    evald::test::Daemon d(tmp / "data");
    ASSERT_TRUE(d.start()) << d.log();
    ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "slow.yaml")).code, 0) << d.log();
    ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
    ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline slow").code, 0);
    ASSERT_EQ(d.ctl("entrant add k-ai team-a --round round-1 --set endpoint=" + srv.url() + " --set model=toy").code, 0);
    ASSERT_EQ(d.ctl("run start k-ai round-1").code, 0);
    // Kill once about a quarter of the requests were answered (however slow the machine).
    for (int i = 0; i < 400 && srv.requests() < 100; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    d.kill(SIGKILL);
  }
  int64_t before = srv.requests();
  EXPECT_GE(before, 100);
  EXPECT_LT(before, 487) << "the run was meant to be cut in the middle";
  evald::test::Daemon again(tmp / "data");
  ASSERT_TRUE(again.start()) << again.log();
  auto wait = again.ctl("run wait run-000001 --timeout 120");
  ASSERT_EQ(wait.code, 0) << wait.out << again.log();
  // Everything answered before the kill came from the store; at most the 4 requests in flight
  // were asked twice, and the units they belonged to: a unit is stored when all 5 of its
  // requests are answered, so at most 4 units' other answered requests are asked again.
  int64_t total = srv.requests();
  EXPECT_GE(total, 487);
  EXPECT_LE(total, 487 + 4 * 5);
  auto out = again.ctl("--json run outputs run-000001");
  int64_t known = 0;
  auto s = evald::bench::load_suite(bench_test::kSuites + "/sample-ko-general/suite.yaml");
  for (auto& it : s->items) known += bench_test::toy_knows(it.id, 0.75);
  char want[64];
  std::snprintf(want, sizeof want, "\"debiased_correct\":%lld", (long long)known);
  EXPECT_NE(out.out.find(want), std::string::npos) << out.out.substr(0, 3000);
}

// A round scored by log-likelihood on real llama.cpp inference, through the daemon: the score
// says how the echo was read, and the artifact keeps every choice's tokens and log-likelihood.
TEST(BenchmarkDaemon, RoundOnRealLlamaCpp) {
  using evald::test::quote;
  evald::test::TempDir tmp;
  bench_test::EngineServer engine("pieces");
  std::string cfg = "{suites: [" + quote(bench_test::kSuites + "/sample-en-reasoning/suite.yaml") +
                    "], scoring: logprobs, concurrency: 2, sections: [{name: reasoning, points: 40, suites: [sample-en-reasoning]}]}";
  evald::test::write_file(tmp / "real.yaml", "name: real\nstages:\n  - id: bench\n    plugin: benchmark\n    per: entrant\n    retries: 0\n    config: " +
                                               cfg + "\n");
  evald::test::Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "real.yaml")).code, 0) << d.log();
  ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline real").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --round round-1 --set endpoint=" + engine.url() + " --set model=tiny").code, 0);
  auto run = d.ctl("run start k-ai round-1 --wait");
  ASSERT_EQ(run.code, 0) << run.out << d.log();
  auto out = d.ctl("--json run outputs run-000001");
  ASSERT_EQ(out.code, 0) << out.out;
  evald::text::Json j;
  evald::text::JsonError e;
  ASSERT_TRUE(evald::text::parse_json(out.out, &j, &e)) << out.out.substr(0, 500);
  const evald::text::Json* score = nullptr;
  ASSERT_TRUE(j.is_array()) << out.out.substr(0, 500);
  for (auto& m : j.items())
    if (auto* k = m.find("kind"); k && k->str() == "benchmark-score") score = m.find("payload");
  ASSERT_NE(score, nullptr) << out.out.substr(0, 2000);
  auto& suite = score->find("suites")->items()[0];
  EXPECT_EQ(suite.find("method")->str(), "logprobs");
  EXPECT_TRUE(suite.find("flags")->items().empty());
  EXPECT_NE(suite.find("loglikelihood")->find("context_tokens")->str().find("llama.cpp's shape"), std::string::npos);
  // The artifact: 96 units (4 rotations), each choice with its tokens and log-likelihood.
  std::ifstream f(score->find("artifact")->str());
  std::string art((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  evald::text::Json a;
  ASSERT_TRUE(evald::text::parse_json(art, &a, &e)) << e.message;
  auto& records = a.find("suites")->items()[0].find("records")->items();
  ASSERT_EQ(records.size(), 96u);
  for (auto& ch : records[0].find("choices_scored")->items()) {
    EXPECT_EQ(ch.find("tokens")->as_uint(), 1u);
    EXPECT_LT(ch.find("logprob")->as_double(), 0);
  }
}
