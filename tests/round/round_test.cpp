// A whole round through a real evald: provenance gates each team's model, the expert panel's
// sheet and the users' votes are scored, and the tally decides, with an operator's decision
// recorded and applied on a rerun. Sample data: tools/demo/round-1 (written by
// tools/demo/make_samples.py) and the provenance fixtures.
#include <gtest/gtest.h>

#include <filesystem>

#include "../benchmark/toy_server.hpp"
#include "../common/test_util.hpp"

using namespace evald::test;

namespace {

const std::string kFixtures = EVALD_PROVENANCE_FIXTURES;
const std::string kSamples = std::string(EVALD_SOURCE_DIR) + "/tools/demo/round-1";
const std::string kSuites = std::string(EVALD_SOURCE_DIR) + "/suites";

// The sample inputs are copied, so the test can change one after the report is signed.
std::string pipeline(const std::string& lib, const std::string& samples, const std::string& key) {
  return R"(name: round-1
description: sample round 1 (benchmark 40, expert panel 35, user evaluation 25, independence gate)
stages:
  - id: provenance
    plugin: provenance
    per: entrant
    config: {library: ')" + lib + R"(', threads: 1, model_key: weights}
  - id: bench
    plugin: benchmark
    per: entrant
    prefetch: 1
    config:
      suites: [')" + kSuites + R"(/sample-ko-general/suite.yaml', ')" + kSuites + R"(/sample-en-reasoning/suite.yaml']
      concurrency: 4
      sections:
        - {name: knowledge, points: 20, suites: [sample-ko-general], normalisation: absolute}
        - {name: reasoning, points: 20, suites: [sample-en-reasoning], normalisation: absolute}
  - id: experts
    plugin: expert-scores
    per: round
    config:
      sheets: [')" + samples + R"(/experts.csv']
      scale: 35
      aggregation: trimmed_mean
      criteria:
        - {name: utility, label: 활용성, weight: 0.4, min: 0, max: 10}
        - {name: efficiency, label: 효율성, weight: 0.3, min: 0, max: 10}
        - {name: ripple, label: 파급효과, weight: 0.3, min: 0, max: 10}
  - id: users
    plugin: user-scores
    per: round
    config:
      battles: [')" + samples + R"(/battles.csv']
      ratings: [')" + samples + R"(/ratings.csv']
      window_opens: 2026-11-01T00:00:00+09:00
      window_closes: 2026-11-15T00:00:00+09:00
      intake: user-votes
      resamples: 200
      scale: 25
  - id: tally
    plugin: tally
    per: round
    after: [provenance, bench, experts, users]
    config:
      components:
        - {name: benchmark, kind: benchmark-score, stage: bench, scale: 40}
        - {name: experts, kind: expert-score, stage: experts, scale: 35}
        - {name: users, kind: user-score, stage: users, scale: 25}
      gates:
        - {name: independence, kind: provenance, stage: provenance}
      tie_breaks: [benchmark, experts]
      advance_top: 3
  - id: report
    plugin: report
    per: round
    after: [tally, provenance, bench, experts, users]
    config:
      signing_key: ')" + key + R"('
      lang: ko
      notice: SAMPLE DATA, not the programme's real scores
)";
}

}  // namespace

TEST(Round, ScoresGatesAndDecides) {
  TempDir tmp;
  for (const char* ref : {"open_P", "open_Q"}) {
    auto r = run(std::string(EVALD_PROVENANCE_TOOL) + " add -q --library " + quote(tmp / "lib") + " --name " + ref + " --revision v1 " +
                 quote(kFixtures + "/" + ref));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  std::filesystem::create_directories(tmp / "samples");
  for (const char* f : {"experts.csv", "battles.csv", "ratings.csv"})
    std::filesystem::copy_file(kSamples + "/" + f, tmp / ("samples/" + std::string(f)));
  write_file(tmp / "round-1.yaml", pipeline(tmp / "lib", tmp / "samples", tmp / "keys/report.key"));
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "round-1.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create k-ai --name '독자 AI 파운데이션 모델 (SAMPLE)'").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline round-1").code, 0);
  const std::vector<std::pair<std::string, std::string>> teams = {
      {"team-a", "한빛 AI"}, {"team-b", "바다 랩스"}, {"team-c", "산들 모델"}, {"team-d", "누리 테크"}, {"team-e", "강산 AI"}};
  const char* weights[] = {"indep_same_data", "indep_diff_width", "reinit_then_train", "indep_same_data", "vlm_reuse_Q"};
  // Each team serves its model on an OpenAI-compatible endpoint: toy models that know 90%,
  // 75% or 50% of the sample suites' items.
  bench_test::ToyServer strong(0.9), middling(0.75), weak(0.5);
  const std::string endpoints[] = {strong.url(), middling.url(), middling.url(), weak.url(), strong.url()};
  for (size_t i = 0; i < teams.size(); ++i)
    ASSERT_EQ(d.ctl("entrant add k-ai " + teams[i].first + " --name " + quote(teams[i].second) + " --round round-1 --set weights=" +
                    quote(kFixtures + "/" + weights[i]) + " --set endpoint=" + endpoints[i] + " --set model=toy").code, 0);

  // Votes from the evaluation site arrive while the window is open, some of them twice.
  std::string votes;
  for (int i = 0; i < 20; ++i)
    votes += "{\"id\": \"site-" + std::to_string(i) + "\", \"type\": \"battle\", \"user\": \"site-user-" + std::to_string(i % 7) +
             "\", \"a\": \"team-a\", \"b\": \"" + teams[1 + i % 3].first + "\", \"outcome\": \"" + (i % 4 ? "A" : "tie") +
             "\", \"time\": \"2026-11-10T12:00:00+09:00\"}\n";
  write_file(tmp / "site.jsonl", votes);
  ASSERT_EQ(d.ctl("intake open k-ai round-1 user-votes").code, 0);
  ASSERT_EQ(d.ctl("intake submit k-ai round-1 user-votes " + quote(tmp / "site.jsonl")).code, 0);
  auto resent = d.ctl("intake submit k-ai round-1 user-votes " + quote(tmp / "site.jsonl"));
  EXPECT_NE(resent.out.find("0 accepted, 20 duplicates"), std::string::npos) << resent.out;
  ASSERT_EQ(d.ctl("intake close k-ai round-1 user-votes").code, 0);

  auto r = d.ctl("run start k-ai round-1 --wait");
  ASSERT_EQ(r.code, 0) << r.out << d.log();
  auto tally = d.ctl("--json run outputs run-000001 --stage tally");
  ASSERT_EQ(tally.code, 0);
  auto decision = [&](const std::string& out, const std::string& team) {
    size_t at = out.find("\"entrant\":\"" + team + "\"");
    if (at == std::string::npos) return std::string("?");
    // Entrant objects are maps in key order: "decision" comes before "entrant".
    size_t obj_start = out.rfind("{\"components\"", at);
    size_t d = out.find("\"decision\":\"", obj_start);
    return out.substr(d + 12, out.find('"', d + 12) - d - 12);
  };
  EXPECT_EQ(decision(tally.out, "team-a"), "advance") << tally.out;
  EXPECT_EQ(decision(tally.out, "team-e"), "disqualified") << tally.out;
  EXPECT_NE(tally.out.find("vision"), std::string::npos) << "the disqualification names the reused component:\n" << tally.out;
  EXPECT_EQ(decision(tally.out, "team-d"), "eliminated") << tally.out;
  EXPECT_NE(tally.out.find("\"decided\":true"), std::string::npos);
  EXPECT_NE(tally.out.find("\"total_scale\":100"), std::string::npos) << "40 + 35 + 25";
  EXPECT_NE(tally.out.find("\"name\":\"한빛 AI\""), std::string::npos);
  auto users = d.ctl("--json run outputs run-000001 --stage users");
  EXPECT_NE(users.out.find("\"intake\":{\"channel\":\"user-votes\",\"records\":20}"), std::string::npos) << users.out.substr(0, 4000);

  // The signed report verifies against the office's key, and names an input edited afterwards.
  auto rep = d.ctl("--json run outputs run-000001 --stage report");
  size_t at = rep.out.find("\"dir\":\"");
  ASSERT_NE(at, std::string::npos) << rep.out;
  std::string dir = rep.out.substr(at + 7, rep.out.find('"', at + 7) - at - 7);
  std::string pub = read_file(dir + "/report.pub").substr(0, 64);
  std::string html = read_file(dir + "/report.html");
  EXPECT_NE(html.find("한빛 AI"), std::string::npos);
  EXPECT_NE(html.find("SAMPLE DATA"), std::string::npos);
  std::string manifest = read_file(dir + "/manifest.json");
  for (const char* input : {"vlm_reuse_Q/model.safetensors", "samples/battles.csv", "samples/experts.csv", "tally.json",
                            "sample-ko-general/items.jsonl", "sample-en-reasoning/suite.yaml"})
    EXPECT_NE(manifest.find(input), std::string::npos) << input << " is in the manifest";
  auto ok = d.ctl("report verify " + quote(dir) + " --key " + pub);
  EXPECT_EQ(ok.code, 0) << ok.out;
  write_file(tmp / "samples/experts.csv", read_file(tmp / "samples/experts.csv") + "expert-11,team-d,utility,10,late\n");
  auto bad = d.ctl("report verify " + quote(dir) + " --key " + pub);
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find(tmp / "samples/experts.csv"), std::string::npos) << bad.out;
  std::filesystem::copy_file(kSamples + "/experts.csv", tmp / "samples/experts.csv", std::filesystem::copy_options::overwrite_existing);

  // The round's decision is recorded from that tally.
  auto decided = d.ctl("--json round decide k-ai round-1");
  ASSERT_EQ(decided.code, 0) << decided.out;
  EXPECT_NE(decided.out.find("\"disqualified\":[\"team-e\"]"), std::string::npos) << decided.out;
  EXPECT_NE(decided.out.find("\"run\":\"run-000001\""), std::string::npos) << decided.out;

  // The operator overrides team-d's elimination with a recorded reason; a rerun applies it.
  EXPECT_EQ(d.ctl("decision record k-ai round-1 team-d advance").code, 2) << "a reason is required";
  auto rec = d.ctl("decision record k-ai round-1 team-d advance --reason 'appeal upheld (SAMPLE)'");
  ASSERT_EQ(rec.code, 0) << rec.out;
  ASSERT_EQ(d.ctl("run start k-ai round-1 --wait").code, 0);
  auto again = d.ctl("--json run outputs run-000002 --stage tally");
  EXPECT_EQ(decision(again.out, "team-d"), "advance") << again.out;
  EXPECT_NE(again.out.find("operator decision d-000001 (appeal upheld (SAMPLE)); by the rule: eliminated"), std::string::npos) << again.out;
  EXPECT_EQ(d.ctl("audit verify").code, 0);
  EXPECT_EQ(d.ctl("shutdown").code, 0);
  EXPECT_EQ(d.wait_exit(), 0);
}
