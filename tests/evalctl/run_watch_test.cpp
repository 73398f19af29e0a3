// The view `evalctl run watch` draws, from run.status answers as the daemon gives them.
#include "run_watch.hpp"

#include <gtest/gtest.h>

using evald::Value;
using evalctl::RunWatch;

namespace {

Value job(const std::string& stage, const std::string& unit, const std::string& state, int attempt = 1, double done = -1,
          double total = 0, const std::string& error = {}) {
  Value j;
  j.set("stage", stage);
  j.set("unit", unit);
  j.set("state", state);
  j.set("attempt", int64_t(attempt));
  if (!error.empty()) j.set("error", error);
  if (done >= 0) {
    Value p;
    p.set("done", done);
    p.set("total", total);
    j.set("progress", p);
  }
  return j;
}

Value status(const std::string& state, std::vector<Value> jobs) {
  Value s;
  s.set("id", "run-000002");
  s.set("state", state);
  s.set("competition", "sample");
  s.set("round", "round-2");
  Value c;
  c.set("stage", "bench");
  c.set("jobs", int64_t(jobs.size()));
  c.set("running", int64_t(1));
  s.set("stage_counters", Value(evald::Array{c}));
  s.set("jobs", Value(evald::Array(jobs.begin(), jobs.end())));
  return s;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace

TEST(RunWatch, ShowsStateChangesAndProgressWithRateAndTimeLeft) {
  RunWatch w;
  auto first = w.update(status("running", {job("bench", "team-a", "running", 1, 10, 100), job("bench", "team-b", "pending")}), 0.0);
  EXPECT_EQ(joined(first), "bench/team-a running\nbench/team-b queued\n");
  auto second = w.update(status("running", {job("bench", "team-a", "running", 1, 60, 100), job("bench", "team-b", "pending")}), 1.0);
  ASSERT_EQ(second.size(), 1u) << joined(second);
  EXPECT_NE(second[0].find("[############........]  60% 60/100  50.0/s  left 0:01"), std::string::npos) << second[0];
  EXPECT_TRUE(w.update(status("running", {job("bench", "team-a", "running", 1, 61, 100), job("bench", "team-b", "pending")}), 1.1).empty())
      << "no line until progress crosses the next tenth";

  auto frame = joined(w.frame(120, 10));
  EXPECT_NE(frame.find("run run-000002  running  sample/round-2  0/2 jobs final"), std::string::npos) << frame;
  EXPECT_NE(frame.find("  bench: 2 jobs, 1 running"), std::string::npos) << frame;
  EXPECT_LT(frame.find("bench/team-a"), frame.find("bench/team-b")) << "running jobs first:\n" << frame;
}

TEST(RunWatch, AFailureShowsItsErrorAndARetryStartsItsProgressOver) {
  RunWatch w;
  w.update(status("running", {job("scan", "team-e", "running", 1, 50, 100)}), 0.0);
  w.update(status("running", {job("scan", "team-e", "running", 1, 90, 100)}), 2.0);
  auto failed = w.update(status("running", {job("scan", "team-e", "pending", 2)}), 3.0);
  EXPECT_EQ(joined(failed), "scan/team-e queued (attempt 2)\n");
  auto again = w.update(status("running", {job("scan", "team-e", "running", 2, 5, 100)}), 4.0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], "scan/team-e running (attempt 2)");
  auto frame = joined(w.frame(200, 10));
  EXPECT_NE(frame.find("running #2 [#...................]   5% 5/100\n"), std::string::npos) << "no rate until half a second has passed:\n" << frame;
  auto end = w.update(status("failed", {job("scan", "team-e", "failed", 3, -1, 0, "cannot open model.safetensors")}), 5.0);
  EXPECT_EQ(joined(end), "scan/team-e failed (attempt 3): cannot open model.safetensors\n");
  EXPECT_EQ(w.state(), "failed");
}

TEST(RunWatch, ManyJobsAreCutToTheLimitWithACount) {
  RunWatch w;
  std::vector<Value> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(job("tally", "e" + std::to_string(i), i == 0 ? "running" : "done"));
  w.update(status("running", jobs), 0.0);
  auto frame = w.frame(80, 3);
  ASSERT_GE(frame.size(), 2u);
  EXPECT_EQ(frame.back(), "  ... 3 more (3 done)");
  for (auto& l : frame) EXPECT_LE(l.size(), 80u) << l;
  EXPECT_EQ(evalctl::format_duration(3725), "1:02:05");
  EXPECT_EQ(evalctl::format_duration(65), "1:05");
}
