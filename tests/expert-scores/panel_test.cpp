// The expert panel's scoring: hand-checked points, every rejection reason, conflicts of
// interest, standardisation, trimming, agreement and rater flags; then the plugin itself on
// real files through the SDK harness.
#include "agreement.hpp"
#include "panel.hpp"
#include "records.hpp"

#include <evald/testing.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "../common/test_util.hpp"

using evald::Array;
using evald::Value;
using namespace evald::scores;

namespace {

const std::vector<RosterEntry> kRoster = {{"t1", "한빛팀"}, {"t2", "바다팀"}, {"t3", "산팀"}};

Value criteria_value() {
  Array cs;
  for (auto [name, label, w] : {std::tuple{"utility", "활용성", 0.5}, {"efficiency", "효율성", 0.3}, {"ripple", "파급효과", 0.2}}) {
    Value c;
    c.set("name", name);
    c.set("label", label);
    c.set("weight", w);
    c.set("min", 0);
    c.set("max", 10);
    cs.push_back(c);
  }
  return Value(cs);
}

PanelConfig config(std::string aggregation = "mean") {
  Value v;
  v.set("criteria", criteria_value());
  v.set("scale", 35.0);
  v.set("aggregation", aggregation);
  auto c = panel_config_from(v);
  EXPECT_TRUE(c.ok()) << c.error();
  return *c;
}

SheetRow row(const std::string& rater, const std::string& entrant, const std::string& criterion, Value score, uint64_t line = 0) {
  Value f;
  f.set("rater", rater);
  f.set("entrant", entrant);
  f.set("criterion", criterion);
  f.set("score", std::move(score));
  return {"sheet.csv", line, "", f, ""};
}

// Three raters, three entrants, three criteria: the table of the hand calculation below.
std::vector<SheetRow> panel_rows() {
  const double s[3][3][3] = {{{8, 7, 6}, {6, 5, 5}, {4, 4, 3}}, {{9, 8, 7}, {7, 6, 5}, {5, 3, 4}}, {{7, 7, 8}, {5, 6, 4}, {3, 4, 2}}};
  const char* crit[] = {"utility", "efficiency", "ripple"};
  std::vector<SheetRow> rows;
  uint64_t line = 2;
  for (int r = 0; r < 3; ++r)
    for (int e = 0; e < 3; ++e)
      for (int c = 0; c < 3; ++c) rows.push_back(row("r" + std::to_string(r + 1), kRoster[size_t(e)].id, crit[c], s[r][e][c], line++));
  return rows;
}

const Value& entrant(const Value& result, const std::string& id) {
  for (auto& e : result.find("entrants")->as_array())
    if (e.get_string("entrant") == id) return e;
  throw std::runtime_error("no entrant " + id);
}

std::string reasons(const Value& result) {
  std::string s;
  for (auto& r : result.find("rejected")->as_array()) s += r.get_string("where") + " " + r.get_string("reason") + "\n";
  return s;
}

}  // namespace

// Mean per criterion, normalised and weighted 0.5/0.3/0.2 onto 35 points:
// t1: (8, 7.333, 7) -> 0.4 + 0.22 + 0.14 = 0.76 -> 26.6
// t2: (6, 5.667, 4.667) -> 0.3 + 0.17 + 0.09333 = 0.56333 -> 19.71667
// t3: (4, 3.667, 3) -> 0.2 + 0.11 + 0.06 = 0.37 -> 12.95
TEST(Panel, HandCheckedMeanPoints) {
  auto r = score_panel(config(), kRoster, panel_rows());
  EXPECT_NEAR(entrant(r, "t1").get_double("points"), 26.6, 1e-9);
  EXPECT_NEAR(entrant(r, "t2").get_double("points"), 19.716666666666667, 1e-9);
  EXPECT_NEAR(entrant(r, "t3").get_double("points"), 12.95, 1e-9);
  EXPECT_EQ(entrant(r, "t1").get_int("raters"), 3);
  EXPECT_TRUE(entrant(r, "t1").get_bool("complete"));
  EXPECT_EQ(entrant(r, "t1").get_string("name"), "한빛팀");
  // Spread: each rater's own points for t1: r1 (0.4+0.21+0.12)=0.73 -> 25.55, r2 (0.45+0.24+0.14)=0.83 -> 29.05,
  // r3 (0.35+0.21+0.16)=0.72 -> 25.2; sd = sqrt((1.05^2 + 2.45^2 + 1.4^2) / 2).
  auto& spread = *entrant(r, "t1").find("spread");
  EXPECT_NEAR(spread.get_double("min"), 25.2, 1e-9);
  EXPECT_NEAR(spread.get_double("max"), 29.05, 1e-9);
  EXPECT_NEAR(spread.get_double("sd"), std::sqrt(4.5325), 1e-9);
  auto& crit = entrant(r, "t2").find("criteria")->as_array();
  EXPECT_EQ(crit[1].get_string("criterion"), "efficiency");
  EXPECT_NEAR(crit[1].get_double("score"), 17.0 / 3, 1e-12);
  EXPECT_EQ(r.find("counts")->get_int("used"), 27);
  EXPECT_EQ(r.find("counts")->get_int("rejected"), 0);
  EXPECT_NE(r.find("method")->get_string("rule").find("mean over raters"), std::string::npos);
}

// Median t1: (8, 7, 7) -> 0.4 + 0.21 + 0.14 = 0.75 -> 26.25.
TEST(Panel, MedianAndTrimmedMean) {
  auto med = score_panel(config("median"), kRoster, panel_rows());
  EXPECT_NEAR(entrant(med, "t1").get_double("points"), 26.25, 1e-9);
  // Four raters, trim 1: utility of t1 from {8, 9, 7, 1} drops 9 and 1 -> 7.5.
  auto rows = panel_rows();
  for (auto [c, v] : {std::pair{"utility", 1.0}, {"efficiency", 7.0}, {"ripple", 7.0}}) rows.push_back(row("r4", "t1", c, v));
  auto cfg = config("trimmed_mean");
  auto tr = score_panel(cfg, kRoster, rows);
  auto& crit = entrant(tr, "t1").find("criteria")->as_array();
  EXPECT_NEAR(crit[0].get_double("score"), 7.5, 1e-12);
  EXPECT_NEAR(crit[1].get_double("score"), 7.0, 1e-12);  // {7, 8, 7, 7} -> 7, 7
  // t2 has three raters: trimming two at each end is impossible, so the median is used and
  // the result says so.
  cfg.trim = 2;
  auto tr2 = score_panel(cfg, kRoster, rows);
  EXPECT_NE(entrant(tr2, "t2").get_string("note").find("median used"), std::string::npos);
  EXPECT_NEAR(entrant(tr2, "t2").find("criteria")->as_array()[0].get_double("score"), 6.0, 1e-12);
  EXPECT_NEAR(entrant(tr2, "t1").find("criteria")->as_array()[0].get_double("score"), 7.5, 1e-12) << "median of 1, 7, 8, 9";
}

TEST(Panel, EveryBadRowIsRejectedWithItsPlaceAndReason) {
  auto rows = panel_rows();
  rows.push_back(row("r1", "t9", "utility", 5.0, 40));
  rows.push_back(row("r1", "t1", "beauty", 5.0, 41));
  rows.push_back(row("r1", "t1", "utility", Value("abc"), 42));
  rows.push_back(row("r1", "t1", "utility", 11.0, 43));
  rows.push_back(row("r1", "t1", "utility", 8.0, 44));   // identical repeat of line 2
  rows.push_back(row("r2", "t2", "utility", 3.0, 45));   // differs from r2's 7 at line 14
  rows.push_back(row("r5", "t3", "utility", 5.0, 46));   // r5 scores t3 on one criterion only
  rows.push_back(row("", "t3", "utility", 5.0, 47));
  SheetRow bad = row("r6", "t1", "utility", 1.0, 48);
  bad.defect = "row has 6 fields, the header 5";
  rows.push_back(bad);
  auto r = score_panel(config(), kRoster, rows);
  std::string why = reasons(r);
  EXPECT_NE(why.find("sheet.csv:40 unknown entrant \"t9\""), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:41 unknown criterion \"beauty\""), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:42 field \"score\" is not a number: \"abc\""), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:43 score 11 outside 0..10 for criterion utility"), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:44 duplicate of sheet.csv:2"), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:45 conflicts with sheet.csv:14"), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:14 conflicts with sheet.csv:45"), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:46 rater r5 scored entrant t3 on 1 of 3 criteria (missing: efficiency, ripple)"), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:47 field \"rater\" is missing"), std::string::npos) << why;
  EXPECT_NE(why.find("sheet.csv:48 row has 6 fields"), std::string::npos) << why;
  // r2's sheet for t2 lost utility to the conflict, so its other two rows go too.
  EXPECT_NE(why.find("sheet.csv:15 rater r2 scored entrant t2 on 2 of 3 criteria (missing: utility)"), std::string::npos) << why;
  EXPECT_EQ(r.find("counts")->get_int("rejected"), 12) << why;
  EXPECT_EQ(r.find("counts")->get_int("used"), 24);
  EXPECT_EQ(entrant(r, "t2").get_int("raters"), 2);
  // Nothing else moved: t1 and t3 keep the hand-checked points.
  EXPECT_NEAR(entrant(r, "t1").get_double("points"), 26.6, 1e-9);
  EXPECT_NEAR(entrant(r, "t3").get_double("points"), 12.95, 1e-9);
}

TEST(Panel, ConflictsOfInterestAreExcludedByIdOrName) {
  Value v;
  v.set("criteria", criteria_value());
  Value c1, c2;
  c1.set("rater", "r2");
  c1.set("entrant", "한빛팀");
  c2.set("rater", "r3");
  c2.set("entrant", "t3");
  v.set("conflicts", Array{c1, c2});
  auto cfg = panel_config_from(v);
  ASSERT_TRUE(cfg.ok()) << cfg.error();
  auto r = score_panel(*cfg, kRoster, panel_rows());
  EXPECT_EQ(r.find("counts")->get_int("excluded_conflict"), 6);
  EXPECT_EQ(r.find("counts")->get_int("rejected"), 0);
  EXPECT_EQ(entrant(r, "t1").get_int("raters"), 2);
  // t1 from r1 and r3 only: (7.5, 7, 7) -> 0.375 + 0.21 + 0.14 = 0.725 -> 25.375.
  EXPECT_NEAR(entrant(r, "t1").get_double("points"), 25.375, 1e-9);
  // ICC needs raters who scored every entrant: only r1 is left, so it is unavailable, said so.
  EXPECT_TRUE(r.find("agreement")->find("icc")->is_null());
  EXPECT_NE(r.find("agreement")->get_string("icc_unavailable").find("1 rater(s)"), std::string::npos);
}

// Two raters rank alike, one lenient (9, 7, 5) and one strict (6, 4, 2). Standardised, both
// give z = (1, 0, -1), mapped back with the pooled mean 5.5 and sd sqrt(29.5 / 5).
TEST(Panel, StandardisationRemovesRaterOffsets) {
  Value v;
  Value c;
  c.set("name", "overall");
  c.set("weight", 1);
  c.set("min", 0);
  c.set("max", 10);
  v.set("criteria", Array{c});
  v.set("scale", 10.0);
  v.set("standardise", true);
  auto cfg = panel_config_from(v);
  ASSERT_TRUE(cfg.ok());
  std::vector<SheetRow> rows = {row("a", "t1", "overall", 9.0), row("a", "t2", "overall", 7.0), row("a", "t3", "overall", 5.0),
                                row("b", "t1", "overall", 6.0), row("b", "t2", "overall", 4.0), row("b", "t3", "overall", 2.0)};
  auto r = score_panel(*cfg, kRoster, rows);
  const double S = std::sqrt(29.5 / 5);
  EXPECT_NEAR(entrant(r, "t1").get_double("points"), 5.5 + S, 1e-9);
  EXPECT_NEAR(entrant(r, "t2").get_double("points"), 5.5, 1e-9);
  EXPECT_NEAR(entrant(r, "t3").get_double("points"), 5.5 - S, 1e-9);
  EXPECT_NEAR(entrant(r, "t1").find("spread")->get_double("sd"), 0.0, 1e-9) << "the raters agree once offsets are gone";
  cfg->standardise = false;
  auto plain = score_panel(*cfg, kRoster, rows);
  EXPECT_NEAR(entrant(plain, "t1").get_double("points"), 7.5, 1e-9);
}

TEST(Panel, AgreementAndOutlyingRaters) {
  auto rows = panel_rows();
  // r4 ranks the teams the other way round.
  const char* crit[] = {"utility", "efficiency", "ripple"};
  for (int c = 0; c < 3; ++c) {
    rows.push_back(row("r4", "t1", crit[c], 2.0));
    rows.push_back(row("r4", "t2", crit[c], 5.0));
    rows.push_back(row("r4", "t3", crit[c], 9.0));
  }
  auto r = score_panel(config(), kRoster, rows);
  std::map<std::string, Value> by;
  for (auto& x : r.find("raters")->as_array()) by[x.get_string("rater")] = x;
  EXPECT_TRUE(by["r4"].get_bool("flagged"));
  EXPECT_LT(by["r4"].get_double("loo_correlation"), -0.9);
  EXPECT_FALSE(by["r1"].get_bool("flagged")) << evald::to_json(by["r1"]);
  EXPECT_GT(by["r1"].get_double("loo_correlation"), 0.5);
  EXPECT_EQ(r.find("counts")->get_int("flagged_raters"), 1);

  // Alpha over (entrant, criterion) units with raters as columns, exactly as the library computes it.
  const double s[3][3][3] = {{{8, 7, 6}, {6, 5, 5}, {4, 4, 3}}, {{9, 8, 7}, {7, 6, 5}, {5, 3, 4}}, {{7, 7, 8}, {5, 6, 4}, {3, 4, 2}}};
  std::vector<std::vector<std::optional<double>>> units;
  for (int e = 0; e < 3; ++e)
    for (int c = 0; c < 3; ++c) units.push_back({s[0][e][c], s[1][e][c], s[2][e][c], e == 0 ? 2.0 : e == 1 ? 5.0 : 9.0});
  auto& ag = *r.find("agreement");
  EXPECT_NEAR(ag.get_double("alpha_interval"), *krippendorff_alpha(units, Metric::Interval), 1e-12);
  EXPECT_NEAR(ag.get_double("alpha_ordinal"), *krippendorff_alpha(units, Metric::Ordinal), 1e-12);
  EXPECT_LT(ag.get_double("alpha_interval"), 0.3) << "a contrarian rater drags agreement down";
  auto clean = score_panel(config(), kRoster, panel_rows());
  EXPECT_GT(clean.find("agreement")->get_double("alpha_interval"), 0.7);
  EXPECT_EQ(clean.find("agreement")->find("icc")->get_int("raters"), 3);
  EXPECT_GT(clean.find("agreement")->find("icc")->get_double("icc2_k"), 0.9);
}

TEST(Panel, EntrantWithoutRatersIsIncompleteNotZero) {
  auto rows = panel_rows();
  std::vector<RosterEntry> roster = kRoster;
  roster.push_back({"t4", "늦은팀"});
  auto r = score_panel(config(), roster, rows);
  EXPECT_FALSE(entrant(r, "t4").get_bool("complete"));
  EXPECT_TRUE(entrant(r, "t4").find("points")->is_null());
  EXPECT_NE(entrant(r, "t4").get_string("reason").find("0 rater(s)"), std::string::npos);
}

TEST(Panel, ConfigErrorsNameTheKey) {
  auto bad = [](Value crit) {
    Value v;
    v.set("criteria", Array{crit});
    auto c = panel_config_from(v);
    return c.ok() ? std::string() : c.error();
  };
  Value c;
  c.set("name", "u");
  c.set("weight", 1);
  c.set("min", 5);
  c.set("max", 5);
  EXPECT_NE(bad(c).find("criteria[0]: max must be above min"), std::string::npos);
  c.set("max", 10);
  c.set("weight", 0);
  EXPECT_NE(bad(c).find("criteria[0].weight"), std::string::npos);
  c.set("weight", 1);
  c.set("colour", "red");
  EXPECT_NE(bad(c).find("unknown key \"colour\""), std::string::npos);
  Value empty;
  empty.set("criteria", Array{});
  EXPECT_FALSE(panel_config_from(empty).ok());
}

// --- the plugin, on files ---------------------------------------------------------------

namespace {

const std::string kPlugin = std::string(EVALD_PLUGIN_DIR) + "/expert-scores.so";

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

evald::Job round_job() {
  auto job = evald::testing::PluginHarness::round_job({});
  Array roster;
  for (auto& e : kRoster) {
    Value x;
    x.set("id", e.id);
    x.set("name", e.name);
    roster.push_back(x);
  }
  job.round.set("roster", roster);
  return job;
}

Value plugin_config(const std::vector<std::string>& sheets, const std::string& intake = "") {
  Value v;
  Array s;
  for (auto& p : sheets) s.push_back(p);
  v.set("sheets", s);
  v.set("intake", intake);
  v.set("criteria", criteria_value());
  return v;
}

// The hand-checked panel, split over a CSV with a BOM and Korean header and names, a JSON
// file and rows streamed in through intake.
void write_panel(const std::filesystem::path& dir) {
  write(dir / "r1.csv",
        "\xEF\xBB\xBF평가위원,참가팀,평가항목,점수,의견\n"
        "r1,한빛팀,활용성,8,\"탁월함, 특히 문서화\"\n"
        "r1,한빛팀,효율성,7,\n"
        "r1,한빛팀,파급효과,6,\n"
        "r1,t2,utility,6,\nr1,t2,efficiency,5,\nr1,t2,ripple,5,\n"
        "r1,t3,utility,4,\nr1,t3,efficiency,4,\nr1,t3,ripple,3,\n");
  write(dir / "r2.json",
        R"({"scores": [
  {"rater": "r2", "entrant": "t1", "criterion": "utility", "score": 9},
  {"rater": "r2", "entrant": "t1", "criterion": "efficiency", "score": 8},
  {"rater": "r2", "entrant": "t1", "criterion": "ripple", "score": 7},
  {"rater": "r2", "entrant": "t2", "criterion": "utility", "score": 7},
  {"rater": "r2", "entrant": "t2", "criterion": "efficiency", "score": 6},
  {"rater": "r2", "entrant": "t2", "criterion": "ripple", "score": 5},
  {"rater": "r2", "entrant": "t3", "criterion": "utility", "score": 5},
  {"rater": "r2", "entrant": "t3", "criterion": "efficiency", "score": 3},
  {"rater": "r2", "entrant": "t3", "criterion": "ripple", "score": 4},
  {"rater": "r2", "entrant": "t3", "criterion": "ripple", "score": 99}
]})");
}

void add_r3_intake(evald::testing::PluginHarness& h) {
  const double s[3][3] = {{7, 7, 8}, {5, 6, 4}, {3, 4, 2}};
  const char* crit[] = {"utility", "efficiency", "ripple"};
  for (int e = 0; e < 3; ++e)
    for (int c = 0; c < 3; ++c) {
      Value rec;
      rec.set("id", "r3-" + kRoster[size_t(e)].id + "-" + crit[c]);
      rec.set("rater", "r3");
      rec.set("entrant", kRoster[size_t(e)].id);
      rec.set("criterion", crit[c]);
      rec.set("score", std::to_string(int(s[e][c])));  // as text, the way a CSV sends it
      rec.set("received_at", "2026-11-26T10:00:00.000Z");
      h.add_intake("panel", rec);
    }
}

}  // namespace

TEST(ExpertScoresPlugin, ScoresSheetsFromFilesAndIntake) {
  evald::test::TempDir tmp;
  write_panel(tmp.path());
  evald::testing::PluginHarness h(kPlugin);
  add_r3_intake(h);
  ASSERT_TRUE(h.configure(plugin_config({(tmp.path() / "r1.csv").string(), (tmp.path() / "r2.json").string()}, "panel")).ok());
  auto out = h.finish(round_job());
  ASSERT_TRUE(out.ok()) << out.error();
  ASSERT_EQ(out->size(), 4u);
  std::map<std::string, double> points;
  for (auto& m : *out)
    if (m.kind == "expert-score") points[m.payload.get_string("entrant")] = m.payload.get_double("points");
  EXPECT_NEAR(points["t1"], 26.6, 1e-9);
  EXPECT_NEAR(points["t2"], 19.716666666666667, 1e-9);
  EXPECT_NEAR(points["t3"], 12.95, 1e-9);
  const auto& panel = out->back();
  ASSERT_EQ(panel.kind, "expert-panel");
  EXPECT_EQ(panel.payload.get_int("rejected_total"), 1);
  auto& rej = panel.payload.find("rejected")->as_array()[0];
  EXPECT_EQ(rej.get_string("where"), (tmp.path() / "r2.json").string() + ":11");
  EXPECT_NE(rej.get_string("reason").find("score 99 outside 0..10"), std::string::npos);
  auto& inputs = panel.payload.find("inputs")->as_array();
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].get_string("sha256"), evald::text::sha256_hex(evald::test::read_file(tmp.path() / "r1.csv")));
  EXPECT_EQ(panel.payload.find("intake")->get_int("records"), 9);
  std::string artifact = panel.payload.get_string("artifact");
  std::string saved = evald::test::read_file(artifact);
  EXPECT_EQ(evald::text::sha256_hex(saved), panel.payload.get_string("artifact_sha256"));
  EXPECT_NE(saved.find("한빛팀"), std::string::npos) << "Korean names survive into the result";
}

TEST(ExpertScoresPlugin, BrokenFilesFailTheJobNamingFileAndLine) {
  evald::test::TempDir tmp;
  write(tmp.path() / "bad.csv", "rater,entrant,criterion,score\nr1,t1,utility,\"8\nr1,t1,ripple,5\n");
  evald::testing::PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(plugin_config({(tmp.path() / "bad.csv").string(), (tmp.path() / "none.csv").string()})).ok());
  auto out = h.finish(round_job());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("bad.csv:2: quoted field opened on line 2 is never closed"), std::string::npos) << out.error();

  evald::testing::PluginHarness h2(kPlugin);
  ASSERT_TRUE(h2.configure(plugin_config({(tmp.path() / "none.csv").string()})).ok());
  auto missing = h2.finish(round_job());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("none.csv: cannot open"), std::string::npos) << missing.error();
}

TEST(ExpertScoresPlugin, ConfigIsValidated) {
  evald::testing::PluginHarness h(kPlugin);
  Value v;
  v.set("criteria", criteria_value());
  auto st = h.configure(v);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no input"), std::string::npos) << st.message();
  evald::testing::PluginHarness h2(kPlugin);
  Value w = plugin_config({"x.csv"});
  w.set("aggregation", "mode");
  EXPECT_FALSE(h2.configure(w).ok());
}
