// The report plugin through the SDK harness, and its library: every format from a synthetic
// round 1, escaping of hostile names, Korean labels, the key file, determinism and defensive
// rendering of results with missing or mistyped fields.
#include "round_fixture.hpp"

#include "format.hpp"
#include "json.hpp"
#include "labels.hpp"
#include "report.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

using namespace report_test;
namespace rpt = evald::report;

namespace {

const std::string kPlugin = std::string(EVALD_PLUGIN_DIR) + "/report.so";

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

Value config(const std::string& key, const std::string& lang = "en", const std::string& notice = "") {
  Value c;
  c.set("signing_key", key);
  c.set("lang", lang);
  if (!notice.empty()) c.set("notice", notice);
  return c;
}

evald::text::Json parse(const std::string& text) {
  evald::text::Json j;
  evald::text::JsonError err;
  EXPECT_TRUE(evald::text::parse_json(text, &j, &err)) << err.message << " at " << err.offset;
  return j;
}

const evald::text::Json* find_item(const evald::text::Json& list, const char* key, const std::string& value) {
  for (auto& x : list.items())
    if (x.find(key) && x.find(key)->str() == value) return &x;
  return nullptr;
}

mode_t mode_of(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class ReportPlugin : public ::testing::Test {
 protected:
  TempDir tmp;
  Round round = make_round(tmp);
  std::string key = tmp / "keys/deep/report.key";
};

}  // namespace

TEST_F(ReportPlugin, WritesEveryFormatOfTheRoundSigned) {
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(key, "en", "SAMPLE DATA — not the programme's real scores")).ok());
  auto out = h.finish(round.job);
  ASSERT_TRUE(out.ok()) << out.error();
  ASSERT_EQ(out->size(), 1u);
  const Value& p = (*out)[0].payload;
  EXPECT_EQ((*out)[0].kind, "report");
  EXPECT_TRUE(p.get_bool("decided"));
  EXPECT_EQ(p.get_string("public_key").size(), 64u);
  for (const char* f : {"html", "md", "json", "csv", "manifest", "sig", "pub"}) {
    const Value* fmt = p.find("formats")->find(f);
    ASSERT_TRUE(fmt) << f;
    EXPECT_EQ(evald::text::sha256_hex(slurp(fmt->get_string("path"))), fmt->get_string("sha256")) << f;
  }
  std::string dir = h.artifact_dir().string();
  std::string html = slurp(dir + "/report.html");

  // The scoreboard: the winner's components and total, the disqualified team's would-be total,
  // rank and reason, the eliminated team.
  EXPECT_TRUE(has(html, "<html lang=\"en\">"));
  EXPECT_TRUE(has(html, "<meta charset=\"utf-8\">"));
  for (const char* n : {"33.6", "31.6", "25.0", "90.2", "90.0", "62.5"}) EXPECT_TRUE(has(html, n)) << n;
  EXPECT_TRUE(has(html, "independence: " + kDqReason));
  EXPECT_TRUE(has(html, "total it would have had"));
  EXPECT_TRUE(has(html, "would have ranked 2"));
  EXPECT_TRUE(has(html, ">Disqualified<"));
  EXPECT_TRUE(has(html, ">Eliminated<"));
  EXPECT_TRUE(has(html, "rank 4, outside the best 3"));
  EXPECT_TRUE(has(html, "SAMPLE DATA — not the programme&#39;s real scores"));
  // The sections: chart, benchmark with intervals, panel agreement, users, provenance heatmap.
  EXPECT_TRUE(has(html, "id=\"chart\""));
  EXPECT_TRUE(has(html, "KMMLU"));
  EXPECT_TRUE(has(html, "[0.726, 0.786]"));  // team-a's KMMLU interval: 33.6/40*0.9 -+ 0.03
  EXPECT_TRUE(has(html, "Krippendorff"));
  EXPECT_TRUE(has(html, "0.812"));
  EXPECT_TRUE(has(html, "0.922"));
  EXPECT_TRUE(has(html, "R5 &lt;b&gt;"));
  EXPECT_TRUE(has(html, "correlation with the rest of the panel -0.20 is below 0"));
  EXPECT_TRUE(has(html, "Bradley-Terry"));
  EXPECT_TRUE(has(html, "Per-layer evidence"));
  EXPECT_TRUE(has(html, "open-vlm@v1"));
  EXPECT_TRUE(has(html, "vision · attn.q.weight"));
  EXPECT_TRUE(has(html, "The best 3 not disqualified advance"));
  EXPECT_TRUE(has(html, round.sheet));
  EXPECT_TRUE(has(html, p.get_string("public_key")));

  // Self-contained and inert: nothing runs, nothing is fetched.
  std::string l = lower(html);
  for (const char* bad : {"<script", "http://", "https://", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe", "<object", "<embed", "javascript:"})
    EXPECT_FALSE(has(l, bad)) << bad;
  EXPECT_FALSE(has(html, kHostile));
  EXPECT_TRUE(has(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;팀&quot;"));

  std::string md = slurp(dir + "/report.md");
  EXPECT_TRUE(has(md, "## Scoreboard"));
  EXPECT_TRUE(has(md, "| 1 | 한빛팀 (team-a) | 33.6 | 31.6 | 25.0 | **90.2** | Advances |"));
  EXPECT_TRUE(has(md, "**90.0** (total it would have had — not counted)"));
  EXPECT_TRUE(has(md, "**independence: " + kDqReason + "**"));
  EXPECT_TRUE(has(md, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"팀\""));
  EXPECT_FALSE(has(md, "<script"));
  EXPECT_FALSE(has(md, "<svg"));

  std::string csv = slurp(dir + "/scoreboard.csv");
  EXPECT_EQ(csv.rfind("\xEF\xBB\xBFrank,entrant,name,benchmark,experts,users,total,decision,reason\r\n", 0), 0u);
  EXPECT_TRUE(has(csv, "\r\n1,team-a,한빛팀,33.6,31.6,25.0,90.2,advance,rank 1 of 4 within the best 3\r\n"));
  EXPECT_TRUE(has(csv, "\r\n3,team-c,\"<script>alert(1)</script> & \"\"팀\"\"\",28.0,26.3,18.2,72.5,advance,"));
  // The reason holds a comma: quoted.
  EXPECT_TRUE(has(csv, "\r\n,team-e,강팀,36.0,30.0,24.0,90.0,disqualified,\"independence: " + kDqReason + "\"\r\n"));

  auto doc = parse(slurp(dir + "/report.json"));
  EXPECT_EQ(doc.find("schema")->str(), "evald.report/1");
  EXPECT_EQ(doc.find("tally")->find("schema")->str(), "evald.tally/1");
  auto& ents = doc.find("entrants")->items();
  ASSERT_EQ(ents.size(), 5u);
  EXPECT_EQ(ents[0].find("entrant")->str(), "team-a");
  EXPECT_TRUE(ents[0].find("details")->find("expert")->is_object());
  EXPECT_EQ(ents[4].find("details")->find("provenance")->find("gate")->find("result")->str(), "fail");
  EXPECT_EQ(doc.find("manifest")->find("public_key")->str(), p.get_string("public_key"));

  auto man = parse(slurp(dir + "/manifest.json"));
  EXPECT_EQ(man.find("schema")->str(), "evald.report-manifest/1");
  EXPECT_EQ(man.find("daemon_version")->str(), "0.1.0");
  EXPECT_EQ(man.find("pipeline")->find("sha256")->str(), evald::text::sha256_hex(slurp(tmp / "round1.yaml")));
  EXPECT_EQ(man.find("plugins")->items()[0].find("name")->str(), "tally");
  EXPECT_EQ(man.find("signature")->find("public_key")->str(), p.get_string("public_key"));
  auto& ins = *man.find("inputs");
  for (auto& [path, role] : std::vector<std::pair<std::string, std::string>>{{round.sheet, "expert-panel input (csv)"},
                                                                             {round.votes, "user-evaluation input (csv)"},
                                                                             {round.panel_artifact, "expert-panel artifact"},
                                                                             {round.prov_report, "provenance report (team-e)"},
                                                                             {tmp / "artifacts/tally.json", "tally artifact"},
                                                                             {round.score_file, "benchmark-score file (team-a)"}}) {
    auto* in = find_item(ins, "path", path);
    ASSERT_TRUE(in) << path;
    EXPECT_EQ(in->find("role")->str(), role);
    EXPECT_EQ(in->find("sha256")->str(), evald::text::sha256_hex(slurp(path)));
    EXPECT_EQ(in->find("at_report")->str(), "same");
  }
  EXPECT_EQ(ins.items().size(), 6u);
  for (auto& [file, fmt] : std::vector<std::pair<std::string, std::string>>{
           {"report.json", "json"}, {"report.html", "html"}, {"report.md", "md"}, {"scoreboard.csv", "csv"}}) {
    auto* o = find_item(*man.find("outputs"), "file", file);
    ASSERT_TRUE(o) << file;
    EXPECT_EQ(o->find("sha256")->str(), p.find("formats")->find(fmt)->get_string("sha256"));
  }
  EXPECT_EQ(man.find("messages")->items().size(), round.job.inputs.size());
  EXPECT_EQ(slurp(dir + "/report.pub"), p.get_string("public_key") + "\n");
  EXPECT_EQ(slurp(dir + "/report.sig").size(), 129u);
  ASSERT_FALSE(h.progress().empty());
  EXPECT_EQ(h.progress().back().first, h.progress().back().second);
}

TEST_F(ReportPlugin, KoreanLabelsWithLangKo) {
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(key, "ko")).ok());
  auto out = h.finish(round.job);
  ASSERT_TRUE(out.ok()) << out.error();
  std::string html = slurp(h.artifact_dir() / "report.html");
  EXPECT_TRUE(has(html, "<html lang=\"ko\">"));
  for (const char* ko : {"라운드 결과 보고서", "순위표", "순위", "참가팀", "총점", "진출", "탈락", "실격", "실격 전 총점", "실격 전 순위 2", "벤치마크 (40.0)",
                         "전문가 평가 (35.0)", "사용자 평가 (25.0)", "평가위원 간 일치도", "모델 독자성 검증", "계층별 증거", "파생", "전자서명", "한빛팀"})
    EXPECT_TRUE(has(html, ko)) << ko;
  EXPECT_EQ(rpt::clean_utf8(html), html);  // valid UTF-8 throughout
  EXPECT_FALSE(has(html, ">Scoreboard<"));
  std::string md = slurp(h.artifact_dir() / "report.md");
  EXPECT_TRUE(has(md, "## 순위표"));
  EXPECT_TRUE(has(md, "| 1 | 한빛팀 (team-a) | 33.6 | 31.6 | 25.0 | **90.2** | 진출 |"));
}

TEST_F(ReportPlugin, FailsClearlyWithoutTheTally) {
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(key)).ok());
  Job j = round.job;
  j.inputs.erase(std::remove_if(j.inputs.begin(), j.inputs.end(), [](const Message& m) { return m.kind == "tally"; }), j.inputs.end());
  auto out = h.finish(j);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(has(out.error(), "report needs the tally's result: put the tally stage in `after`")) << out.error();

  j.failed_upstream.push_back({"tally", "", "failed: components: at least one component is required"});
  out = h.finish(j);
  EXPECT_TRUE(has(out.error(), "stage tally failed: failed: components")) << out.error();

  Job two = round.job;
  Message again = two.inputs.back();
  again.envelope.stage = "tally-2";
  two.inputs.push_back(again);
  out = h.finish(two);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(has(out.error(), "2 tally results (stages tally, tally-2)")) << out.error();
}

TEST_F(ReportPlugin, ConfigIsChecked) {
  {
    PluginHarness h(kPlugin);
    auto st = h.configure(config(""));
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(has(st.message(), "signing_key")) << st.message();
  }
  {
    PluginHarness h(kPlugin);
    auto st = h.configure(Value(evald::Map{}));
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(has(st.message(), "config.signing_key: required key missing")) << st.message();
  }
  {
    PluginHarness h(kPlugin);
    auto st = h.configure(config(key, "fr"));
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(has(st.message(), "config.lang: \"fr\" is not one of: en, ko")) << st.message();
  }
  {
    // A key file that is not a key fails the start, naming the file.
    write(tmp / "bad.key", "not a key\n");
    PluginHarness h(kPlugin);
    auto st = h.configure(config(tmp / "bad.key"));
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(has(st.message(), tmp / "bad.key")) << st.message();
    EXPECT_TRUE(has(st.message(), "expected 64 hex characters")) << st.message();
  }
}

TEST_F(ReportPlugin, CreatesAnOwnerOnlyKeyOnceAndReusesIt) {
  std::string pub;
  {
    PluginHarness h(kPlugin);
    ASSERT_TRUE(h.configure(config(key)).ok());
    EXPECT_EQ(mode_of(key), 0600u);
    EXPECT_EQ(mode_of(tmp / "keys"), 0700u);
    EXPECT_EQ(mode_of(tmp / "keys/deep"), 0700u);
    std::string seed = slurp(key);
    ASSERT_EQ(seed.size(), 65u);
    EXPECT_TRUE(rpt::from_hex(seed, 32).has_value());
    auto out = h.finish(round.job);
    ASSERT_TRUE(out.ok()) << out.error();
    pub = (*out)[0].payload.get_string("public_key");
    bool logged = false;
    for (auto& l : h.logs()) logged |= has(l, "created signing key " + key) && has(l, pub);
    EXPECT_TRUE(logged);
  }
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(key)).ok());
  auto out = h.finish(round.job);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ((*out)[0].payload.get_string("public_key"), pub);
  // The library agrees, and warns about a key others can read.
  ::chmod(key.c_str(), 0644);
  auto k = rpt::load_or_create_key(key);
  ASSERT_TRUE(k.ok()) << k.error();
  EXPECT_EQ(k->public_hex(), pub);
  EXPECT_FALSE(k->created);
  EXPECT_TRUE(has(k->warning, "mode 0644")) << k->warning;
}

TEST_F(ReportPlugin, NotesAnInputChangedBeforeTheReport) {
  write(round.sheet, "rater,entrant,criterion,score\nR1,team-a,활용성,10\n");
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(key)).ok());
  auto out = h.finish(round.job);
  ASSERT_TRUE(out.ok()) << out.error();
  std::string html = slurp(h.artifact_dir() / "report.html");
  EXPECT_TRUE(has(html, "changed since it was scored"));
  auto doc = parse(slurp(h.artifact_dir() / "report.json"));
  auto* in = find_item(*doc.find("inputs"), "path", round.sheet);
  ASSERT_TRUE(in);
  EXPECT_EQ(in->find("at_report")->str(), "changed");
  bool warned = false;
  for (auto& l : h.logs()) warned |= has(l, "input " + round.sheet + " (expert-panel input (csv)) changed since experts read it");
  EXPECT_TRUE(warned);
}

TEST(ReportLibrary, SameInputsGiveTheSameBytes) {
  TempDir tmp;
  Round round = make_round(tmp);
  auto key = rpt::load_or_create_key(tmp / "k/report.key");
  ASSERT_TRUE(key.ok()) << key.error();
  rpt::Options opt;
  opt.generated_at = "2026-11-27T09:00:00.000Z";
  auto a = rpt::write_report(round.job, opt, *key, tmp / "a");
  auto b = rpt::write_report(round.job, opt, *key, tmp / "b");
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  for (const char* f : {"report.json", "report.html", "report.md", "scoreboard.csv", "manifest.json", "report.sig", "report.pub"})
    EXPECT_EQ(slurp(tmp / (std::string("a/") + f)), slurp(tmp / (std::string("b/") + f))) << f;
  EXPECT_TRUE(has(slurp(tmp / "a/report.html"), "2026-11-27T09:00:00.000Z"));
}

TEST(ReportLibrary, RendersResultsWithMissingOrMistypedFields) {
  TempDir tmp;
  Round round = make_round(tmp);
  Job j = round.job;
  for (auto& m : j.inputs) {
    if (m.kind == "user-score") {
      m.payload.set("battles", "oops");
      m.payload.set("points_ci", Array{Value(1.0)});
      m.payload.set("ratings", Value());
    } else if (m.kind == "provenance") {
      m.payload.set("components", 7);
      m.payload.set("gate", Array{});
    } else if (m.kind == "benchmark-score") {
      m.payload.set("suites", Array{Value(3), Value("x"), Value(evald::Map{})});
    } else if (m.kind == "expert-panel") {
      m.payload.set("agreement", 5);
      m.payload.set("raters", Array{Value(1)});
      m.payload.set("inputs", "none");
    } else if (m.kind == "user-evaluation") {
      Value wr;
      wr.set("entrants", Array{Value("team-a")});
      wr.set("matrix", Array{Value("row")});
      m.payload.set("win_rate", wr);
    }
  }
  auto doc = rpt::gather(j, {}, std::string(64, '0'));
  ASSERT_TRUE(doc.ok()) << doc.error();
  std::string html = rpt::render_html(*doc), md = rpt::render_markdown(*doc), csv = rpt::render_csv(*doc);
  EXPECT_TRUE(has(html, "90.2"));
  EXPECT_TRUE(has(md, "90.2"));
  EXPECT_TRUE(has(csv, "90.2"));
  EXPECT_FALSE(has(html, "Per-layer evidence"));
  EXPECT_FALSE(has(html, "Krippendorff"));

  // Only the tally: the details' sections are left out.
  Job only;
  only.envelope = j.envelope;
  only.round = j.round;
  only.inputs.push_back(j.inputs.back());
  auto bare = rpt::gather(only, {}, std::string(64, '0'));
  ASSERT_TRUE(bare.ok()) << bare.error();
  std::string h2 = rpt::render_html(*bare);
  for (const char* sec : {"id=\"scoreboard\"", "id=\"chart\"", "id=\"rule\"", "id=\"manifest\""}) EXPECT_TRUE(has(h2, sec)) << sec;
  for (const char* sec : {"id=\"benchmark\"", "id=\"panel\"", "id=\"users\"", "id=\"provenance\""}) EXPECT_FALSE(has(h2, sec)) << sec;

  // A tally of a schema the report does not read is refused, not misread.
  Job other = only;
  other.inputs.back().payload.set("schema", "evald.tally/2");
  auto refused = rpt::gather(other, {}, "");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(has(refused.error(), "schema \"evald.tally/2\": this report reads evald.tally/1")) << refused.error();
}

TEST(ReportText, EscapingForEachFormat) {
  EXPECT_EQ(rpt::html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(rpt::md_escape("[x](y) *b* | <i> `c`\nnext"), "\\[x\\](y) \\*b\\* \\| &lt;i&gt; \\`c\\` next");
  EXPECT_EQ(rpt::csv_field("plain", true), "plain");
  EXPECT_EQ(rpt::csv_field("a,b", true), "\"a,b\"");
  EXPECT_EQ(rpt::csv_field("say \"hi\"\r\n", true), "\"say \"\"hi\"\"\n\"");  // control characters but tab and LF are dropped
  EXPECT_EQ(rpt::csv_field("=HYPERLINK(\"x\")", true), "\"'=HYPERLINK(\"\"x\"\")\"");
  EXPECT_EQ(rpt::csv_field("-1.5", false), "-1.5");
  // Invalid UTF-8 (a stray byte, an overlong slash, a surrogate) becomes U+FFFD; Korean stays.
  EXPECT_EQ(rpt::clean_utf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(rpt::clean_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(rpt::clean_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(rpt::clean_utf8("한빛\x01팀"), "한빛팀");
  EXPECT_EQ(rpt::fixed(33.65, 1), "33.7");
  EXPECT_EQ(rpt::fixed(-0.01, 1), "0.0");
  EXPECT_EQ(rpt::fixed(std::nullopt, 1), "");
  EXPECT_EQ(rpt::stat(1e-12), "1.00e-12");
  EXPECT_EQ(rpt::stat(0.8123), "0.812");
}

TEST(ReportText, EveryLabelInBothLanguages) {
  for (size_t i = 0; i < size_t(rpt::L::kCount); ++i) {
    auto l = rpt::L(i);
    std::string en(rpt::label(l, rpt::Lang::En)), ko(rpt::label(l, rpt::Lang::Ko));
    EXPECT_FALSE(en.empty()) << i;
    EXPECT_FALSE(ko.empty()) << i;
    EXPECT_EQ(rpt::clean_utf8(ko), ko) << i;
  }
  EXPECT_EQ(rpt::decision_label("disqualified", rpt::Lang::Ko), "실격");
  EXPECT_EQ(rpt::verdict_label("derived", rpt::Lang::Ko), "파생");
}

TEST(ReportLibrary, AnUndecidedRoundSaysWhatItWaitsFor) {
  TempDir tmp;
  Round round = make_round(tmp);
  // team-c's user score never arrived: the tally holds the round, and the report says so.
  Job j = round.job;
  j.inputs.erase(std::remove_if(j.inputs.begin(), j.inputs.end(),
                                [](const Message& m) { return m.kind == "tally" || (m.kind == "user-score" && m.payload.get_string("entrant") == "team-c"); }),
                 j.inputs.end());
  j.failed_upstream.push_back({"users", "", "failed: votes.csv: cannot open"});
  Value cfg;
  cfg.set("components", Array{component("benchmark", "benchmark-score", 40, "Benchmark", "벤치마크"),
                              component("experts", "expert-score", 35, "Expert panel", "전문가 평가"),
                              component("users", "user-score", 25, "User evaluation", "사용자 평가")});
  cfg.set("advance_top", 3);
  std::vector<evald::tally::OperatorDecision> ops = {
      {"d1", "team-d", "advance", "appeal upheld, minutes 2026-11-20", "committee", "2026-11-26T10:00:00.000Z"}};
  j.inputs.push_back(PluginHarness::message("tally", "", "tally", evald::tally::tally_round(*evald::tally::tally_config_from(cfg), j, ops)));
  auto doc = rpt::gather(j, {}, std::string(64, '0'));
  ASSERT_TRUE(doc.ok()) << doc.error();
  EXPECT_FALSE(doc->get_bool("decided"));
  std::string html = rpt::render_html(*doc), md = rpt::render_markdown(*doc), csv = rpt::render_csv(*doc);
  EXPECT_TRUE(has(html, ">Not decided<"));
  EXPECT_TRUE(has(html, "Waiting for"));
  EXPECT_TRUE(has(html, "team-c: users: no user-score result (stage users failed: votes.csv: cannot open)")) << html;
  EXPECT_TRUE(has(html, ">Pending<"));
  EXPECT_TRUE(has(html, "Failed upstream jobs"));
  EXPECT_TRUE(has(html, "appeal upheld, minutes 2026-11-20"));
  EXPECT_TRUE(has(md, "**Not decided**"));
  EXPECT_TRUE(has(md, "| d1 | 들팀 | advance | appeal upheld, minutes 2026-11-20 | committee |"));
  // The pending entrant: no rank, no total, its reason.
  EXPECT_TRUE(has(csv, "\r\n,team-c,\"<script>alert(1)</script> & \"\"팀\"\"\",28.0,26.3,,,pending,users: no user-score result")) << csv;
}
