// The benchmark plugin in a real daemon: per-entrant jobs against two toy servers, the
// per-round stage for min_max points, and item answers kept in the daemon's store across a
// kill -9, so a later run of the same models sends no request.
#include "../common/test_util.hpp"
#include "toy_server.hpp"

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
