// A synthetic round 1 as the upstream stages would have reported it: five teams, benchmark 40
// + expert panel 35 + user evaluation 25, the provenance gate. team-a wins with
// 33.6 + 31.6 + 25.0 = 90.2; team-e had 90.0 but its vision encoder derives from an open model
// (disqualified, with per-layer evidence); team-d is eliminated; team-c's name is hostile.
// Every input file upstream results name is written into a temporary directory.
#pragma once

#include "records.hpp"
#include "round_tally.hpp"

#include <evald/testing.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace report_test {

using evald::Array;
using evald::Job;
using evald::Message;
using evald::Value;
using evald::testing::PluginHarness;

inline const std::string kHostile = "<script>alert(1)</script> & \"팀\"";
inline const std::string kDqReason = "vision derived from open-vlm@v1 (Holm p 1e-12, effect 0.97)";

class TempDir {
 public:
  TempDir() {
    auto base = std::filesystem::temp_directory_path() / "evald-report-test";
    std::filesystem::create_directories(base);
    std::string t = (base / "XXXXXX").string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& f) const { return (path_ / f).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string write(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  return evald::text::sha256_hex(bytes);
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

struct Team {
  std::string id, name;
  double bench, experts, users;
  const char* gate;
};

inline const std::vector<Team> kTeams = {{"team-a", "한빛팀", 33.6, 31.6, 25.0, "pass"},
                                         {"team-b", "바다팀", 30.1, 28.0, 20.5, "pass"},
                                         {"team-c", kHostile, 28.0, 26.3, 18.2, "pass"},
                                         {"team-d", "들팀", 25.5, 22.0, 15.0, "pass"},
                                         {"team-e", "강팀", 36.0, 30.0, 24.0, "fail"}};

inline Value component(const char* name, const char* kind, double scale, const char* en, const char* ko) {
  Value c;
  c.set("name", name);
  c.set("kind", kind);
  c.set("scale", scale);
  c.set("label_en", en);
  c.set("label_ko", ko);
  return c;
}

inline Value interval(double lo, double hi) { return Value(Array{Value(lo), Value(hi)}); }

// What the round's upstream stages emitted; inputs live under dir.
struct Round {
  Job job;
  std::string sheet, votes, panel_artifact, prov_report, score_file;
};

inline Round make_round(const TempDir& dir) {
  Round r;
  Job& j = r.job = PluginHarness::round_job({});
  j.envelope.stage = "report";
  j.envelope.job = "report/_round";
  j.envelope.round = "round-1";
  j.envelope.run = "run-0001";
  Array roster;
  for (auto& t : kTeams) {
    Value e;
    e.set("id", t.id);
    e.set("name", t.name);
    roster.push_back(e);
  }
  j.round.set("id", "round-1");
  j.round.set("competition", "k-ai");
  j.round.set("roster", roster);
  Value pipe;
  pipe.set("name", "round1");
  pipe.set("source", dir / "round1.yaml");
  pipe.set("sha256", write(dir / "round1.yaml", "name: round1\nstages: []\n"));
  j.round.set("pipeline_info", pipe);
  Value plugin;
  plugin.set("name", "tally");
  plugin.set("version", "1.0.0");
  plugin.set("abi", "1.1");
  plugin.set("path", dir / "lib/tally.so");
  plugin.set("sha256", write(dir / "lib/tally.so", "not really a shared library"));
  j.round.set("plugins", Array{plugin});
  j.round.set("daemon_version", "0.1.0");

  // Input files the upstream stages name, with their real hashes.
  r.sheet = dir / "sheets/panel.csv";
  std::string sheet_sha = write(r.sheet, "rater,entrant,criterion,score\nR1,team-a,활용성,9\n");
  r.votes = dir / "votes/battles.csv";
  std::string votes_sha = write(r.votes, "user,left,right,winner\nu1,team-a,team-b,left\n");
  r.panel_artifact = dir / "artifacts/expert-scores.json";
  std::string panel_sha = write(r.panel_artifact, "{\"panel\":true}\n");
  r.prov_report = dir / "artifacts/provenance-team-e.json";
  std::string prov_sha = write(r.prov_report, "{\"entrant\":\"team-e\"}");

  // team-a's benchmark names its score file the way file-value does: {file, sha256}.
  r.score_file = dir / "scores/team-a.score";
  std::string score_sha = write(r.score_file, "33.6\n");
  for (auto& t : kTeams) {
    Value b;
    b.set("entrant", t.id);
    if (t.id == "team-a") {
      b.set("file", r.score_file);
      b.set("sha256", score_sha);
    }
    b.set("points", t.bench);
    b.set("scale", 40.0);
    Value s1, s2;
    s1.set("name", "KMMLU");
    s1.set("accuracy", t.bench / 40 * 0.9);
    s1.set("ci", interval(t.bench / 40 * 0.9 - 0.03, t.bench / 40 * 0.9 + 0.03));
    s1.set("n", 1000);
    s1.set("points", t.bench / 2);
    s2.set("name", "HAE-RAE");
    s2.set("accuracy", 0.7);
    s2.set("ci", interval(0.66, 0.74));
    s2.set("n", 500);
    s2.set("points", t.bench / 2);
    b.set("suites", Array{s1, s2});
    j.inputs.push_back(PluginHarness::message("bench", t.id, "benchmark-score", b));
  }
  for (auto& t : kTeams) {
    Value e;
    e.set("entrant", t.id);
    e.set("name", t.name);
    e.set("points", t.experts);
    e.set("scale", 35.0);
    e.set("raters", 5);
    e.set("complete", true);
    Value spread;
    spread.set("sd", 1.25);
    spread.set("min", t.experts - 2);
    spread.set("max", t.experts + 1.5);
    e.set("spread", spread);
    Value c1, c2;
    c1.set("criterion", "활용성");
    c1.set("score", 8.5);
    c1.set("sd", 0.5);
    c2.set("criterion", "originality");
    c2.set("score", 7.25);
    c2.set("sd", 1.0);
    e.set("criteria", Array{c1, c2});
    e.set("panel", "expert-panel");
    j.inputs.push_back(PluginHarness::message("experts", "", "expert-score", e));
  }
  {
    Value p, ag, icc, by;
    ag.set("alpha_interval", 0.812);
    ag.set("alpha_ordinal", 0.797);
    by.set("활용성", 0.84);
    by.set("originality", 0.71);
    ag.set("alpha_interval_by_criterion", by);
    icc.set("icc2_1", 0.702);
    icc.set("icc2_k", 0.922);
    ag.set("icc", icc);
    p.set("agreement", ag);
    Value r1, r5;
    r1.set("rater", "R1");
    r1.set("flagged", false);
    r1.set("loo_correlation", 0.91);
    r1.set("mean_deviation", 0.03);
    r1.set("reasons", Array{});
    r5.set("rater", "R5 <b>");
    r5.set("flagged", true);
    r5.set("loo_correlation", -0.2);
    r5.set("mean_deviation", 0.25);
    r5.set("reasons", Array{Value("correlation with the rest of the panel -0.20 is below 0")});
    p.set("raters", Array{r1, r5});
    Value counts;
    counts.set("rows", 50);
    counts.set("used", 49);
    counts.set("rejected", 1);
    p.set("counts", counts);
    p.set("rejected_total", 1);
    Value in;
    in.set("path", r.sheet);
    in.set("sha256", sheet_sha);
    in.set("format", "csv");
    in.set("rows", 1);
    p.set("inputs", Array{in});
    p.set("artifact", r.panel_artifact);
    p.set("artifact_sha256", panel_sha);
    j.inputs.push_back(PluginHarness::message("experts", "", "expert-panel", p));
  }
  double strength = 0.6;
  for (auto& t : kTeams) {
    Value u, b, rt;
    u.set("entrant", t.id);
    u.set("points", t.users);
    u.set("scale", 25.0);
    u.set("points_ci", interval(t.users - 1.5, std::min(25.0, t.users + 1.2)));
    b.set("strength", strength);
    b.set("ci", interval(strength - 0.2, strength + 0.25));
    b.set("win_prob", 0.5 + strength / 4);
    b.set("votes", 120);
    strength -= 0.3;
    u.set("battles", b);
    rt.set("mean", 4.1);
    rt.set("ci", interval(3.9, 4.3));
    rt.set("n", 80);
    u.set("ratings", rt);
    j.inputs.push_back(PluginHarness::message("users", "", "user-score", u));
  }
  {
    Value ue, wr;
    Array ids, matrix;
    for (size_t i = 0; i < kTeams.size(); ++i) {
      ids.push_back(kTeams[i].id);
      Array row;
      for (size_t k = 0; k < kTeams.size(); ++k) row.push_back(i == k ? Value() : Value(i < k ? 0.6 : 0.4));
      matrix.push_back(row);
    }
    wr.set("entrants", ids);
    wr.set("matrix", matrix);
    ue.set("win_rate", wr);
    Value in;
    in.set("path", r.votes);
    in.set("sha256", votes_sha);
    in.set("format", "csv");
    ue.set("inputs", Array{in});
    j.inputs.push_back(PluginHarness::message("users", "", "user-evaluation", ue));
  }
  for (auto& t : kTeams) {
    Value p, g;
    bool fail = std::string(t.gate) == "fail";
    g.set("result", t.gate);
    g.set("reason", fail ? kDqReason : "no component derives from a reference");
    p.set("entrant", t.id);
    p.set("gate", g);
    p.set("model", "/submissions/" + t.id + "/model");
    Array comps;
    for (const char* name : {"llm", "vision"}) {
      Value c;
      bool derived = fail && std::string(name) == "vision";
      c.set("component", name);
      c.set("verdict", derived ? "derived" : "independent");
      c.set("source", derived ? Value("open-vlm@v1") : Value());
      c.set("p_holm", derived ? 1e-12 : 0.84);
      c.set("effect", derived ? 0.97 : 0.02);
      c.set("reason", derived ? "matched units correlate 0.97 across 4 blocks" : "no reference reaches alpha");
      Array layers;
      if (fail)
        for (int layer = -1; layer < 4; ++layer)
          for (const char* role : {"attn.q.weight", "mlp.up.weight"}) {
            Value l;
            l.set("tensor", std::string(name) + "." + std::to_string(layer) + "." + role);
            l.set("role", role);
            l.set("layer", layer);
            l.set("ref_tensor", std::string("ref.") + std::to_string(layer) + "." + role);
            l.set("ref_layer", layer);
            l.set("effect", derived ? 0.9 + 0.02 * layer : 0.01);
            l.set("z", derived ? 25.0 : 0.3);
            l.set("p", derived ? 0.001 : 0.6);
            l.set("verbatim", derived && layer == 0 ? Value("bf16") : Value());
            layers.push_back(l);
          }
      c.set("layers", layers);
      comps.push_back(c);
    }
    p.set("components", comps);
    if (fail) {
      p.set("report_file", r.prov_report);
      p.set("report_sha256", prov_sha);
    }
    j.inputs.push_back(PluginHarness::message("provenance", t.id, "provenance", p));
  }

  // The tally, made by the tally's own library from these messages.
  Value cfg;
  cfg.set("components", Array{component("benchmark", "benchmark-score", 40, "Benchmark", "벤치마크"),
                              component("experts", "expert-score", 35, "Expert panel", "전문가 평가"),
                              component("users", "user-score", 25, "User evaluation", "사용자 평가")});
  Value gate;
  gate.set("name", "independence");
  gate.set("kind", "provenance");
  gate.set("label_ko", "독자성");
  cfg.set("gates", Array{gate});
  cfg.set("tie_breaks", Array{Value("benchmark")});
  cfg.set("advance_top", 3);
  auto tc = evald::tally::tally_config_from(cfg);
  EXPECT_TRUE(tc.ok()) << tc.error();
  Job tj = j;
  tj.envelope.stage = "tally";
  Value tally = evald::tally::tally_round(*tc, tj, {});
  std::string tally_json = evald::to_json(tally) + "\n";
  tally.set("artifact", dir / "artifacts/tally.json");
  tally.set("artifact_sha256", write(dir / "artifacts/tally.json", tally_json));
  j.inputs.push_back(PluginHarness::message("tally", "", "tally", tally));
  return r;
}

}  // namespace report_test
