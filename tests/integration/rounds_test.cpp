// Two rounds through a real daemon: round 1 is decided from its tally, round 2's roster is
// the advancers plus an additional call (an eliminated team re-applying), and round 2 picks
// the finalists. Points come from file-value so the decisions are known in advance.
#include <evald/time.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "../common/test_util.hpp"

using namespace evald::test;

namespace {

const char* kPipeline = R"(name: scored
stages:
  - id: read
    plugin: file-value
    per: entrant
    config: {out_of: 100}
  - id: tally
    plugin: tally
    per: round
    after: [read]
    config:
      components: [{name: score, kind: value, stage: read, field: value, scale: 100}]
      advance_top: ADVANCE
)";

std::string with_top(int k) {
  std::string s = kPipeline;
  return s.replace(s.find("ADVANCE"), 7, std::to_string(k));
}

}  // namespace

TEST(Rounds, AdvancersAndAnAdditionalCallMakeTheNextRoster) {
  TempDir tmp;
  write_file(tmp / "r1.yaml", with_top(3));
  std::string r2 = with_top(2);
  write_file(tmp / "r2.yaml", r2.replace(r2.find("name: scored"), 12, "name: final"));
  const std::pair<const char*, const char*> scores[] = {{"a", "90"}, {"b", "80"}, {"c", "70"}, {"d", "60"}, {"e", "50"}};
  for (auto [t, v] : scores) write_file(tmp / (std::string(t) + ".txt"), std::string(v) + "\n");
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "r1.yaml")).code, 0);
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "r2.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline scored").code, 0);
  for (auto [t, v] : scores)
    ASSERT_EQ(d.ctl(std::string("entrant add k-ai team-") + t + " --round round-1 --set value_file=" + quote(tmp / (std::string(t) + ".txt"))).code, 0);

  auto early = d.ctl("round decide k-ai round-1");
  EXPECT_EQ(early.code, 1);
  EXPECT_NE(early.out.find("no finished run"), std::string::npos) << early.out;
  auto not_yet = d.ctl("round create k-ai round-2 --pipeline final --from-round round-1");
  EXPECT_EQ(not_yet.code, 1);
  EXPECT_NE(not_yet.out.find("round-1 is not decided yet"), std::string::npos) << not_yet.out;

  ASSERT_EQ(d.ctl("run start k-ai round-1 --wait").code, 0);
  auto decided = d.ctl("round decide k-ai round-1");
  ASSERT_EQ(decided.code, 0) << decided.out;
  EXPECT_NE(decided.out.find("advance:      [\"team-a\",\"team-b\",\"team-c\"]"), std::string::npos) << decided.out;
  EXPECT_NE(decided.out.find("eliminated:   [\"team-d\",\"team-e\"]"), std::string::npos) << decided.out;
  EXPECT_EQ(d.ctl("round decide k-ai round-1").code, 0) << "deciding again from the same run changes nothing";

  // Round 2: the three advancers, plus team-f from the additional call and team-d re-applying
  // with a new submission; team-c resubmits for round 2.
  auto r2create = d.ctl("round create k-ai round-2 --pipeline final --from-round round-1");
  ASSERT_EQ(r2create.code, 0) << r2create.out;
  write_file(tmp / "f.txt", "85\n");
  write_file(tmp / "d2.txt", "95\n");
  write_file(tmp / "c2.txt", "99\n");
  auto uncalled = d.ctl("entrant add k-ai team-f --round round-2 --set value_file=" + quote(tmp / "f.txt"));
  EXPECT_EQ(uncalled.code, 1);
  EXPECT_NE(uncalled.out.find("round-2's roster is round-1's advancers; others join it through an additional call"), std::string::npos)
      << uncalled.out;
  EXPECT_NE(d.ctl("call open k-ai round-1").out.find("round-1 is a first round"), std::string::npos);
  EXPECT_EQ(d.ctl("call open k-ai round-2 --closes 2020-01-01T00:00:00Z").code, 1) << "a closing time already past";
  auto call = d.ctl("call open k-ai round-2");
  ASSERT_EQ(call.code, 0) << call.out;
  ASSERT_EQ(d.ctl("entrant add k-ai team-f --round round-2 --set value_file=" + quote(tmp / "f.txt")).code, 0);
  auto reapply = d.ctl("entrant add k-ai team-d --round round-2 --set value_file=" + quote(tmp / "d2.txt"));
  ASSERT_EQ(reapply.code, 0) << reapply.out;
  EXPECT_NE(reapply.out.find("additional call (re-applied after elimination in round-1)"), std::string::npos) << reapply.out;
  ASSERT_EQ(d.ctl("call close k-ai round-2").code, 0);
  EXPECT_EQ(d.ctl("entrant add k-ai team-g --round round-2").code, 1) << "the call is closed";
  auto resubmit = d.ctl("entrant add k-ai team-c --round round-2 --set value_file=" + quote(tmp / "c2.txt"));
  ASSERT_EQ(resubmit.code, 0) << "an entrant on the roster resubmits without a call: " << resubmit.out;
  EXPECT_NE(resubmit.out.find("resubmitted"), std::string::npos) << resubmit.out;
  auto show = d.ctl("--json round show k-ai round-2");
  EXPECT_NE(show.out.find("\"entrants\":[\"team-a\",\"team-b\",\"team-c\",\"team-f\",\"team-d\"]"), std::string::npos) << show.out;
  auto history = d.ctl("--json entrant list k-ai");
  EXPECT_NE(history.out.find("\"round\":\"round-2\""), std::string::npos) << "every submission is kept:\n" << history.out;

  // Killed and restarted between the rounds: the decision and the roster are in the store.
  d.kill(SIGKILL);
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("run start k-ai round-2 --wait").code, 0);
  auto finals = d.ctl("round decide k-ai round-2");
  ASSERT_EQ(finals.code, 0) << finals.out;
  EXPECT_NE(finals.out.find("advance:      [\"team-c\",\"team-d\"]"), std::string::npos) << "the finalists:\n" << finals.out;
  auto report = d.ctl("--json competition report k-ai");
  ASSERT_EQ(report.code, 0) << report.out;
  EXPECT_NE(report.out.find("\"finalists\":[\"team-c\",\"team-d\"]"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("\"id\":\"team-f\",\"joined\""), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("\"via\":\"additional call\""), std::string::npos) << report.out;
  EXPECT_NE(d.ctl("round show k-ai round-2").out.find("additional call: closed"), std::string::npos);
  EXPECT_NE(report.out.find("\"via\":\"advanced from round-1\""), std::string::npos) << report.out;
  auto text = d.ctl("competition report k-ai");
  EXPECT_NE(text.out.find("finalists: [\"team-c\",\"team-d\"]"), std::string::npos) << text.out;
  auto r1 = d.ctl("round show k-ai round-1");
  EXPECT_NE(r1.out.find("decided from run-000001"), std::string::npos) << r1.out;

  // A second run of round 1 may decide it again only with a reason, kept beside the first.
  ASSERT_EQ(d.ctl("run start k-ai round-1 --wait").code, 0);
  auto again = d.ctl("round decide k-ai round-1");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("needs --reason"), std::string::npos) << again.out;
  auto redecided = d.ctl("round decide k-ai round-1 --reason 'rerun after a corrected score file'");
  EXPECT_EQ(redecided.code, 0) << redecided.out;
  EXPECT_NE(redecided.out.find("advance:      [\"team-a\",\"team-b\",\"team-c\"]"), std::string::npos)
      << "round 1 is evaluated on round 1's submissions, not on those sent for round 2:\n" << redecided.out;
  auto audit = d.ctl("--json audit list --limit 200");
  EXPECT_NE(audit.out.find("rerun after a corrected score file"), std::string::npos);
  EXPECT_EQ(d.ctl("audit verify").code, 0);
}

// A round started by its schedule; the schedule is stored, so a daemon killed before the time
// still starts the run once after its restart.
TEST(Schedules, StartRoundsAtTheirTimeAcrossARestart) {
  TempDir tmp;
  write_file(tmp / "p.yaml", "name: read\nstages:\n  - id: read\n    plugin: file-value\n");
  write_file(tmp / "a.txt", "1\n");
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "p.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline read").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --round round-1 --set value_file=" + quote(tmp / "a.txt")).code, 0);
  auto in = [](int ms) {
    return evald::format_utc_time(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() + ms);
  };
  EXPECT_NE(d.ctl("round schedule k-ai round-1 --cron '61 * * * *'").out.find("minute field"), std::string::npos);
  EXPECT_EQ(d.ctl("round schedule k-ai round-1 --at 2020-01-01T00:00:00Z").code, 1) << "a time already past is refused";
  auto first = d.ctl("round schedule k-ai round-1 --at " + in(1500));
  ASSERT_EQ(first.code, 0) << first.out;
  auto runs = [&] {
    auto r = d.ctl("--json run list");
    size_t n = 0;
    for (size_t at = r.out.find("\"round\":\"round-1\""); at != std::string::npos; at = r.out.find("\"round\":\"round-1\"", at + 1)) ++n;
    return n;
  };
  for (int i = 0; i < 100 && runs() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(runs(), 1u) << "started by the schedule";

  // Killed before the second schedule's time; restarted after it: the run starts once.
  ASSERT_EQ(d.ctl("round schedule k-ai round-1 --at " + in(1500)).code, 0);
  d.kill(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_TRUE(d.start()) << d.log();
  for (int i = 0; i < 100 && runs() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(runs(), 2u) << "once, not again at every check";
  auto list = d.ctl("--json schedule list");
  EXPECT_NE(list.out.find("\"id\":\"s-000002\""), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("\"state\":\"active\""), std::string::npos) << "both one-off schedules are done:\n" << list.out;
  auto audit = d.ctl("--json audit list --limit 200");
  EXPECT_NE(audit.out.find("schedule:s-000002"), std::string::npos) << "runs started by a schedule name it as their actor";
}

// A competition from its definition: round 1 exists at once, round 2 appears with the
// advancers when round 1 is decided, with the schedule the definition gives it.
TEST(Rounds, ACompetitionDefinitionCreatesEachRoundInTurn) {
  TempDir tmp;
  write_file(tmp / "r1.yaml", with_top(2));
  std::string r2 = with_top(1);
  write_file(tmp / "r2.yaml", r2.replace(r2.find("name: scored"), 12, "name: final"));
  write_file(tmp / "comp.yaml",
             "id: k-ai\nname: 독자 AI 파운데이션 모델 (SAMPLE)\nrounds:\n"
             "  - {id: round-1, pipeline: scored}\n"
             "  - {id: round-2, pipeline: scored, from: round-1, weights: {score: 50}, advance: {top: 1}, additional_call: false,\n"
             "     schedule: {cron: '0 9 * * 1', catch_up: skip}}\n");
  write_file(tmp / "bad.yaml", "id: k2\nrounds:\n  - {id: r1, pipeline: scored, from: r0}\n");
  write_file(tmp / "bad-weights.yaml", "id: k3\nrounds:\n  - {id: r1, pipeline: scored, weights: {benchmark: 40}}\n");
  write_file(tmp / "bad-advance.yaml", "id: k4\nrounds:\n  - {id: r1, pipeline: scored, advance: {top: -1}}\n");
  for (auto [t, v] : {std::pair{"a", "90"}, {"b", "80"}, {"c", "70"}}) write_file(tmp / (std::string(t) + ".txt"), std::string(v) + "\n");
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "r1.yaml")).code, 0);
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "r2.yaml")).code, 0);
  auto bad = d.ctl("competition define " + quote(tmp / "bad.yaml"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("rounds[0].from: the first round has no earlier round"), std::string::npos) << bad.out;
  auto bad_weights = d.ctl("competition define " + quote(tmp / "bad-weights.yaml"));
  EXPECT_NE(bad_weights.out.find("rounds[0].weights.benchmark: pipeline scored's tally has no component \"benchmark\" (score)"), std::string::npos)
      << bad_weights.out;
  EXPECT_NE(d.ctl("competition define " + quote(tmp / "bad-advance.yaml")).out.find("rounds[0].advance.top: a whole number of at least 0"),
            std::string::npos);
  auto def = d.ctl("competition define " + quote(tmp / "comp.yaml"));
  ASSERT_EQ(def.code, 0) << def.out;
  EXPECT_NE(def.out.find("created now: [\"round-1\"]"), std::string::npos) << def.out;
  EXPECT_EQ(d.ctl("competition define " + quote(tmp / "comp.yaml")).code, 0) << "the same definition again changes nothing (it finishes an interrupted one)";
  write_file(tmp / "comp2.yaml", read_file(tmp / "comp.yaml") + "# edited\n");
  auto other = d.ctl("competition define " + quote(tmp / "comp2.yaml"));
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.out.find("already exists (defined from"), std::string::npos) << other.out;
  for (auto t : {"a", "b", "c"})
    ASSERT_EQ(d.ctl(std::string("entrant add k-ai team-") + t + " --round round-1 --set value_file=" + quote(tmp / (std::string(t) + ".txt"))).code, 0);
  EXPECT_EQ(d.ctl("round show k-ai round-2").code, 1) << "round 2 waits for round 1's decision";
  ASSERT_EQ(d.ctl("run start k-ai round-1 --wait").code, 0);
  auto decided = d.ctl("round decide k-ai round-1");
  ASSERT_EQ(decided.code, 0) << decided.out;
  EXPECT_NE(decided.out.find("next round: round-2"), std::string::npos) << decided.out;
  auto show = d.ctl("--json round show k-ai round-2");
  EXPECT_NE(show.out.find("\"entrants\":[\"team-a\",\"team-b\"]"), std::string::npos) << show.out;
  EXPECT_NE(d.ctl("call open k-ai round-2").out.find("allows no additional call for round round-2"), std::string::npos);
  // Round 2 reuses round 1's pipeline with its own weight and cut from the definition.
  ASSERT_EQ(d.ctl("run start k-ai round-2 --wait").code, 0);
  auto finals = d.ctl("round decide k-ai round-2");
  EXPECT_NE(finals.out.find("advance:      [\"team-a\"]"), std::string::npos) << finals.out;
  auto tally = d.ctl("--json run outputs run-000002 --stage tally");
  EXPECT_NE(tally.out.find("\"total_scale\":50"), std::string::npos) << tally.out;
  EXPECT_NE(tally.out.find("\"from\":\"competition definition\""), std::string::npos) << tally.out;
  EXPECT_NE(tally.out.find("\"total\":45"), std::string::npos) << "90 of 100 on a scale of 50:\n" << tally.out;
  auto sched = d.ctl("--json schedule list k-ai");
  EXPECT_NE(sched.out.find("\"cron\":\"0 9 * * 1\""), std::string::npos) << sched.out;
  EXPECT_NE(sched.out.find("\"round\":\"round-2\""), std::string::npos) << sched.out;
  EXPECT_EQ(d.ctl("audit verify").code, 0);
}

// An operator's decision after the round has run: only the tally (and what depends on it)
// runs again; every other stage's results are taken from the earlier run, not recomputed.
TEST(Rounds, AnOperatorsDecisionRerunsOnlyTheTally) {
  TempDir tmp;
  write_file(tmp / "r1.yaml", with_top(3));
  const std::pair<const char*, const char*> scores[] = {{"a", "90"}, {"b", "80"}, {"c", "70"}, {"d", "60"}, {"e", "50"}};
  for (auto [t, v] : scores) write_file(tmp / (std::string(t) + ".txt"), std::string(v) + "\n");
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "r1.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline scored").code, 0);
  for (auto [t, v] : scores)
    ASSERT_EQ(d.ctl(std::string("entrant add k-ai team-") + t + " --round round-1 --set value_file=" + quote(tmp / (std::string(t) + ".txt"))).code, 0);
  ASSERT_EQ(d.ctl("run start k-ai round-1 --wait").code, 0);
  ASSERT_EQ(d.ctl("round decide k-ai round-1").code, 0);

  // team-b's file changes on disk after scoring: a full rerun would read 10, a reuse keeps 80.
  write_file(tmp / "b.txt", "10\n");
  ASSERT_EQ(d.ctl("decision record k-ai round-1 team-d advance --reason 'appeal upheld (SAMPLE)'").code, 0);
  EXPECT_EQ(d.ctl("run start k-ai round-1 --reuse run-000001").code, 2) << "--reuse needs --rerun";
  EXPECT_NE(d.ctl("run start k-ai round-1 --reuse run-000001 --rerun nosuch").out.find("pipeline scored has no stage \"nosuch\""), std::string::npos);
  EXPECT_NE(d.ctl("run start k-ai round-1 --reuse run-000009 --rerun tally").out.find("no run \"run-000009\""), std::string::npos);
  auto again = d.ctl("run start k-ai round-1 --reuse run-000001 --rerun tally --wait");
  ASSERT_EQ(again.code, 0) << again.out << d.log();
  auto jobs = d.ctl("--json run status run-000002");
  EXPECT_NE(jobs.out.find("\"reused_from\":\"run-000001\",\"run\":\"run-000002\",\"stage\":\"read\""), std::string::npos) << jobs.out;
  EXPECT_NE(jobs.out.find("\"reused_from\":\"\",\"run\":\"run-000002\",\"stage\":\"tally\""), std::string::npos) << jobs.out;
  auto decided = d.ctl("round decide k-ai round-1 --reason 'appeal upheld'");
  ASSERT_EQ(decided.code, 0) << decided.out;
  EXPECT_NE(decided.out.find("decided from run-000002"), std::string::npos) << decided.out;
  EXPECT_NE(decided.out.find("advance:      [\"team-a\",\"team-b\",\"team-c\",\"team-d\"]"), std::string::npos)
      << "team-b keeps the 80 it was scored with; team-d advances by the operator's decision:\n" << decided.out;
  auto tally = d.ctl("--json run outputs run-000002 --stage tally");
  EXPECT_NE(tally.out.find("\"job\":\"run-000001/read/team-b\""), std::string::npos) << "a reused result names the job that made it";

  EXPECT_NE(d.ctl("entrant add k-ai team-a --round round-1 --set value_file=" + quote(tmp / "b.txt")).out.find("round round-1 is decided"),
            std::string::npos)
      << "a decided round's submissions are final";

  // A submission changed since: reusing would give another result than a full run.
  ASSERT_EQ(d.ctl("round create k-ai trial --pipeline scored").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --round trial --set value_file=" + quote(tmp / "a.txt")).code, 0);
  ASSERT_EQ(d.ctl("run start k-ai trial --wait").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --round trial --set value_file=" + quote(tmp / "c.txt")).code, 0);
  auto changed = d.ctl("run start k-ai trial --reuse run-000003 --rerun tally");
  EXPECT_EQ(changed.code, 1);
  EXPECT_NE(changed.out.find("team-a's submission changed since run-000003"), std::string::npos) << changed.out;
  EXPECT_NE(d.ctl("run start k-ai trial --reuse run-000002 --rerun tally").out.find("run-000002 is a run of k-ai/round-1, not of k-ai/trial"),
            std::string::npos);
  EXPECT_EQ(d.ctl("audit verify").code, 0);
}
