// kill -9 of the daemon at several points of a run, then a restart: the run finishes with
// the same results as an uninterrupted run, no output lost or stored twice.
#define EVALD_TEST_WITH_ZMQ
#include <gtest/gtest.h>

#include <map>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::test;

namespace {

const char* kPipeline = R"(name: resumable
stages:
  - id: s1
    plugin: test-behave
    workers: 2
    config: {sleep_ms: 15, emit: 3}
  - id: s2
    plugin: test-behave
    after: [s1]
    config: {sleep_ms: 15}
  - id: total
    plugin: test-behave
    per: round
    after: [s2]
    config: {sleep_ms: 30}
)";
constexpr int kEntrants = 12;

void prepare(Daemon& d, TempDir& tmp) {
  write_file(tmp / "p.yaml", kPipeline);
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "p.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create c").code, 0);
  ASSERT_EQ(d.ctl("round create c r1 --pipeline resumable").code, 0);
  for (int i = 0; i < kEntrants; ++i) ASSERT_EQ(d.ctl("entrant add c team-" + std::to_string(i) + " --round r1").code, 0);
}

// The run's outputs without what legitimately differs between executions (attempt numbers).
std::string outputs(const std::string& data_dir) {
  Value req;
  req.set("op", "run.outputs");
  req.set("run", "run-000001");
  Value r = control(data_dir, req);
  EXPECT_TRUE(r.get_bool("ok")) << to_json(r);
  std::string out;
  std::map<std::string, int> per_job;
  for (auto& m : r.find("result")->as_array()) {
    Value n = m;
    n.as_map()["envelope"].as_map().erase("attempt");
    out += to_json(n) + "\n";
    per_job[m.find("envelope")->get_string("job")]++;
  }
  for (auto& [job, count] : per_job) EXPECT_EQ(count, job.find("/s1/") != std::string::npos ? 3 : 1) << job;
  EXPECT_EQ(per_job.size(), size_t(2 * kEntrants + 1));
  return out;
}

std::string run_to_end(Daemon& d) {
  auto r = d.ctl("run wait run-000001 --timeout 60");
  EXPECT_EQ(r.code, 0) << r.out << d.log();
  return outputs(d.data_dir());
}

}  // namespace

TEST(Resume, KillNineAtSeveralPointsGivesTheSameResults) {
  TempDir base;
  std::string expected;
  {
    Daemon d(base / "data");
    ASSERT_TRUE(d.start());
    prepare(d, base);
    ASSERT_EQ(d.ctl("run start c r1").code, 0);
    expected = run_to_end(d);
  }
  ASSERT_FALSE(expected.empty());

  for (int delay_ms : {0, 40, 120, 250, 400}) {
    SCOPED_TRACE("kill -9 after " + std::to_string(delay_ms) + " ms");
    TempDir tmp;
    Daemon d(tmp / "data");
    ASSERT_TRUE(d.start());
    prepare(d, tmp);
    ASSERT_EQ(d.ctl("run start c r1").code, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    d.kill(SIGKILL);
    // Twice, to also kill a daemon that is itself resuming.
    Daemon again(tmp / "data");
    ASSERT_TRUE(again.start()) << again.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    again.kill(SIGKILL);
    Daemon last(tmp / "data");
    ASSERT_TRUE(last.start()) << last.log();
    EXPECT_EQ(run_to_end(last), expected);
    EXPECT_EQ(last.ctl("audit verify").code, 0);
  }
}
