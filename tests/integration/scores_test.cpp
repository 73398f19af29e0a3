// Panel score rows and user votes streamed in through evalctl while a round's intake window is
// open, kept by a real daemon across kill -9, then scored by the expert-scores plugin.
#include <gtest/gtest.h>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::test;

namespace {

const char* kPipeline = R"(name: panel
description: the expert panel from a sheet and from rows streamed in
stages:
  - id: experts
    plugin: expert-scores
    per: round
    retries: 0
    config:
      sheets: [SHEET]
      intake: panel
      scale: 35
      criteria:
        - {name: utility, label: 활용성, weight: 0.5, min: 0, max: 10}
        - {name: efficiency, label: 효율성, weight: 0.3, min: 0, max: 10}
        - {name: ripple, label: 파급효과, weight: 0.2, min: 0, max: 10}
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  return s.replace(s.find(from), from.size(), to);
}

}  // namespace

TEST(Scores, IntakeSurvivesKillAndFeedsThePanel) {
  TempDir tmp;
  write_file(tmp / "r1.csv",
             "\xEF\xBB\xBFrater,entrant,criterion,score,comment\n"
             "r1,한빛팀,utility,8,\"문서화 우수, 재현 가능\"\nr1,한빛팀,efficiency,7,\nr1,한빛팀,ripple,6,\n"
             "r1,team-b,utility,6,\nr1,team-b,efficiency,5,\nr1,team-b,ripple,5,\n");
  write_file(tmp / "panel.yaml", replace(kPipeline, "SHEET", quote(tmp / "r1.csv")));
  // r2's rows as a panel member's tool would send them: JSON Lines with ids.
  std::string r2;
  const char* crit[] = {"utility", "efficiency", "ripple"};
  const int s[2][3] = {{9, 8, 7}, {7, 6, 5}};
  for (int e = 0; e < 2; ++e)
    for (int c = 0; c < 3; ++c)
      r2 += std::string("{\"id\": \"r2-") + (e ? "b" : "a") + "-" + crit[c] + "\", \"rater\": \"r2\", \"entrant\": \"" +
            (e ? "team-b" : "team-a") + "\", \"criterion\": \"" + crit[c] + "\", \"score\": " + std::to_string(s[e][c]) + "}\n";
  write_file(tmp / "r2.jsonl", r2 + "{\"id\": \"r2-bad\", \"rater\": \"r2\"}\n");

  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "panel.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create k-ai").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline panel").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-a --name 한빛팀 --round round-1").code, 0);
  ASSERT_EQ(d.ctl("entrant add k-ai team-b --name 바다팀 --round round-1").code, 0);

  auto closed = d.ctl("intake submit k-ai round-1 panel " + quote(tmp / "r2.jsonl"));
  EXPECT_EQ(closed.code, 1);
  EXPECT_NE(closed.out.find("was never opened"), std::string::npos) << closed.out;
  ASSERT_EQ(d.ctl("intake open k-ai round-1 panel").code, 0);
  auto first = d.ctl("intake submit k-ai round-1 panel " + quote(tmp / "r2.jsonl"));
  EXPECT_EQ(first.code, 0) << "the record without a score is the plugin's to reject, not the intake's:\n" << first.out;
  EXPECT_NE(first.out.find("7 accepted, 0 duplicates (already stored), 0 rejected; 7 records in panel"), std::string::npos) << first.out;

  d.kill(SIGKILL);
  ASSERT_TRUE(d.start()) << d.log();
  auto again = d.ctl("intake submit k-ai round-1 panel " + quote(tmp / "r2.jsonl"));
  EXPECT_NE(again.out.find("0 accepted, 7 duplicates"), std::string::npos) << "stored once, across a kill -9:\n" << again.out;
  auto status = d.ctl("--json intake status k-ai round-1");
  EXPECT_NE(status.out.find("\"count\":7"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"state\":\"open\""), std::string::npos) << status.out;
  ASSERT_EQ(d.ctl("intake close k-ai round-1 panel").code, 0);
  auto late = d.ctl("intake submit k-ai round-1 panel " + quote(tmp / "r2.jsonl"));
  EXPECT_EQ(late.code, 1);
  EXPECT_NE(late.out.find("is closed"), std::string::npos) << late.out;

  auto run = d.ctl("run start k-ai round-1 --wait");
  ASSERT_EQ(run.code, 0) << run.out << d.log();
  auto out = d.ctl("--json run outputs run-000001");
  ASSERT_EQ(out.code, 0);
  // team-a: r1 (8,7,6) and r2 (9,8,7): means (8.5, 7.5, 6.5) -> 0.425 + 0.225 + 0.13 = 0.78 -> 27.3.
  EXPECT_NE(out.out.find("\"points\":27.3"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("intake:panel#r2-bad"), std::string::npos) << "the incomplete record is rejected by name:\n" << out.out;
  EXPECT_NE(out.out.find("\"name\":\"한빛팀\""), std::string::npos) << out.out;
  auto audit = d.ctl("--json audit list --limit 100");
  EXPECT_NE(audit.out.find("intake.submit"), std::string::npos);
  EXPECT_NE(audit.out.find("intake.close"), std::string::npos);
  EXPECT_EQ(d.ctl("audit verify").code, 0);
}
