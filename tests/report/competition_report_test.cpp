// The whole competition's page for the public (evalctl competition report --out), from the
// daemon's competition.report answer.
#include "round_fixture.hpp"

#include "competition.hpp"
#include "json.hpp"

using namespace report_test;
namespace rpt = evald::report;

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

Value who(const char* id, const std::string& name, const char* via) {
  Value w;
  w.set("id", id);
  w.set("name", name);
  w.set("via", via);
  w.set("joined", "2026-11-20T09:00:00.000Z");
  return w;
}

Value row(const char* id, const std::string& name, int64_t rank, double bench, const char* decision) {
  Value r;
  r.set("entrant", id);
  r.set("name", name);
  r.set("rank", rank);
  r.set("total", bench);
  r.set("decision", decision);
  r.set("decision_reason", std::string("rank ") + std::to_string(rank));
  Value c;
  c.set("benchmark", bench);
  r.set("components", c);
  return r;
}

// Two rounds: round 2 from round 1's advancers plus an additional call; decided.
Value competition() {
  Value comp;
  comp.set("id", "k-ai");
  comp.set("name", kHostile);
  Value r1;
  r1.set("id", "round-1");
  r1.set("pipeline", "round-1");
  r1.set("entrants", Array{who("team-a", "한빛팀", "registered"), who("team-b", "바다팀", "registered")});
  Value rules;
  rules.set("weights", Value(evald::Map{{"benchmark", Value(40.0)}}));
  rules.set("advance", Value(evald::Map{{"top", Value(int64_t(1))}}));
  r1.set("rules", rules);
  Value board;
  board.set("total_scale", 40.0);
  Value comp_b;
  comp_b.set("name", "benchmark");
  comp_b.set("scale", 40.0);
  comp_b.set("label", Value(evald::Map{{"en", Value("benchmark")}, {"ko", Value("벤치마크")}}));
  board.set("components", Array{comp_b});
  board.set("entrants", Array{row("team-a", "한빛팀", 1, 33.6, "advance"), row("team-b", "바다팀", 2, 30.25, "eliminated")});
  r1.set("scoreboard", board);
  Value dec;
  dec.set("run", "run-000001");
  dec.set("tally_sha256", std::string(64, 'a'));
  dec.set("decided_by", "operator");
  dec.set("decided_at", "2026-11-21T09:00:00.000Z");
  dec.set("advance", Array{Value("team-a")});
  dec.set("eliminated", Array{Value("team-b")});
  dec.set("disqualified", Array{});
  r1.set("decision", dec);
  Value rep;
  rep.set("html", "/data/artifacts/run-000001/report/_round/report.html");
  rep.set("public_key", std::string(64, 'b'));
  rep.set("manifest_sha256", std::string(64, 'c'));
  r1.set("report", rep);
  Value r2;
  r2.set("id", "round-2");
  r2.set("pipeline", "round-2");
  r2.set("from_round", "round-1");
  r2.set("entrants", Array{who("team-a", "한빛팀", "advanced from round-1"), who("team-b", "바다팀", "additional call (re-applied after elimination in round-1)")});
  Value call;
  call.set("state", "closed");
  call.set("opened", "2026-11-22T09:00:00.000Z");
  call.set("closed", "2026-11-29T09:00:00.000Z");
  r2.set("call", call);
  Value d;
  d.set("competition", comp);
  d.set("rounds", Array{r1, r2});
  d.set("finalists", Value());  // round 2 not decided yet
  Value e;
  e.set("id", "team-a");
  e.set("name", "한빛팀");
  e.set("registered", "2026-11-20T09:00:00.000Z");
  Value sub;
  sub.set("round", "round-1");
  sub.set("at", "2026-11-20T09:00:00.000Z");
  sub.set("sha256", std::string(64, 'd'));
  e.set("submissions", Array{sub});
  d.set("entrants", Array{e});
  return d;
}

}  // namespace

TEST(CompetitionReport, ShowsEachRoundsRulesRosterScoreboardDecisionAndSignedReport) {
  TempDir tmp;
  auto w = rpt::write_competition_report(competition(), tmp / "out", rpt::Lang::Ko, "2026-12-01T00:00:00Z");
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_EQ(w->find("files")->as_array().size(), 3u);
  for (auto& f : w->find("files")->as_array()) EXPECT_EQ(evald::text::sha256_hex(slurp(f.get_string("path"))), f.get_string("sha256"));

  std::string html = slurp(tmp / "out/competition.html");
  EXPECT_FALSE(has(html, "<script>")) << "the competition's name is escaped";
  EXPECT_TRUE(has(html, "&lt;script&gt;"));
  EXPECT_TRUE(has(html, "default-src 'none'"));
  EXPECT_TRUE(has(html, "아직 없음: 마지막 라운드가 확정되지 않았습니다")) << "no finalists while the last round is open";
  EXPECT_TRUE(has(html, "<dt>배점</dt><dd>benchmark 40.0</dd>"));
  EXPECT_TRUE(has(html, "<dt>진출 기준</dt><dd>상위 1</dd>"));
  EXPECT_TRUE(has(html, "<th>벤치마크 (40.0)</th>"));
  EXPECT_TRUE(has(html, "<td class=\"n\">30.3</td>")) << "points with the tally's one decimal, half away from zero";
  EXPECT_TRUE(has(html, "additional call (re-applied after elimination in round-1)"));
  EXPECT_TRUE(has(html, "closed (2026-11-22T09:00:00.000Z – 2026-11-29T09:00:00.000Z)"));
  EXPECT_TRUE(has(html, "run-000001 · tally sha256 " + std::string(64, 'a')));
  EXPECT_TRUE(has(html, "<dt>서명된 라운드 보고서</dt><dd>/data/artifacts/run-000001/report/_round/report.html</dd>"));
  EXPECT_TRUE(has(html, "manifest.json sha256 " + std::string(64, 'c')));
  EXPECT_TRUE(has(html, "round-1 · 2026-11-20T09:00:00.000Z · <span class=\"hash\">" + std::string(64, 'd')));

  std::string md = slurp(tmp / "out/competition.md");
  EXPECT_TRUE(has(md, "| 1 | 한빛팀 (team-a) | 33.6 | 33.6 | 진출 |")) << md;
  EXPECT_TRUE(has(md, "- **진출:** 한빛팀 (team-a)")) << md;
  EXPECT_FALSE(has(md, "<script>")) << md;

  evald::text::Json j;
  evald::text::JsonError err;
  ASSERT_TRUE(evald::text::parse_json(slurp(tmp / "out/competition.json"), &j, &err)) << err.message;
  EXPECT_EQ(j.find("schema")->str(), "evald.competition-report/1");
  EXPECT_EQ(j.find("report")->find("rounds")->items().size(), 2u);
}

TEST(CompetitionReport, AnEmptyAnswerStillGivesAPageAndABadDirectoryIsNamed) {
  TempDir tmp;
  auto w = rpt::write_competition_report(Value(), tmp / "empty", rpt::Lang::En, "2026-12-01T00:00:00Z");
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_TRUE(has(slurp(tmp / "empty/competition.html"), "not yet: the last round is not decided"));
  write(tmp / "file", "x");
  auto bad = rpt::write_competition_report(competition(), tmp / "file/sub", rpt::Lang::En, "2026-12-01T00:00:00Z");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(has(bad.error(), tmp / "file/sub")) << bad.error();
}
