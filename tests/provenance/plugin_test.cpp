// The provenance plugin as the daemon loads it (a real shared library through the SDK harness),
// the evald-provenance tool as a process, and a round run by a real evald with the plugin as a
// pipeline stage.
#include <evald/testing.hpp>

#include "../common/test_util.hpp"
#include "hash.hpp"
#include "library.hpp"

using namespace evald::test;
using evald::Value;
namespace prov = evald::prov;

namespace {

const std::string kFixtures = EVALD_PROVENANCE_FIXTURES;
const std::string kPlugin = std::string(EVALD_PLUGIN_DIR) + "/provenance.so";
const std::string kTool = EVALD_PROVENANCE_TOOL;

// A library holding the two fixture references, built with the tool as an operator would.
void build_library(const std::string& dir) {
  for (const char* ref : {"open_P", "open_Q"}) {
    auto r = run(kTool + " add -q --library " + quote(dir) + " --name " + ref + " --revision v1 " + quote(kFixtures + "/" + ref));
    ASSERT_EQ(r.code, 0) << r.out;
  }
}

Value config(const std::string& lib) {
  Value c;
  c.set("library", lib);
  return c;
}

const Value* component(const Value& msg, const std::string& name) {
  for (const Value& c : msg.find("components")->as_array())
    if (c.get_string("component") == name) return &c;
  return nullptr;
}

TEST(ProvenancePlugin, EmitsVerdictsEvidenceAndGate) {
  TempDir tmp;
  build_library(tmp / "lib");
  evald::testing::PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(tmp / "lib")));
  Value sub;
  sub.set("model", kFixtures + "/vlm_reuse_Q");
  auto out = h.process(evald::testing::PluginHarness::entrant_job("team-v", sub));
  ASSERT_TRUE(out) << out.error();
  ASSERT_EQ(out->size(), 1u);
  const evald::Message& m = (*out)[0];
  EXPECT_EQ(m.kind, "provenance");
  EXPECT_EQ(m.payload.find("gate")->get_string("result"), "fail");
  EXPECT_EQ(component(m.payload, "vision")->get_string("verdict"), "derived");
  EXPECT_EQ(component(m.payload, "vision")->get_string("source"), "open_Q@v1");
  EXPECT_EQ(component(m.payload, "llm")->get_string("verdict"), "independent");
  // Per-layer evidence for a heatmap, and the full report as an artifact with its digest.
  const Value* layers = component(m.payload, "vision")->find("layers");
  ASSERT_GE(layers->as_array().size(), 12u);
  EXPECT_TRUE(layers->as_array()[0].find("effect"));
  std::string file = m.payload.get_string("report_file");
  ASSERT_TRUE(fs::exists(file)) << file;
  EXPECT_NE(read_file(file).find("\"weak_evidence\""), std::string::npos);
  EXPECT_EQ(m.payload.get_string("report_sha256").size(), 64u);
  EXPECT_FALSE(h.progress().empty()) << "long scans report progress";
  // The exact weights judged, for a report's manifest.
  auto& inputs = m.payload.find("inputs")->as_array();
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_EQ(inputs[0].get_string("path"), kFixtures + "/vlm_reuse_Q/model.safetensors");
  EXPECT_EQ(inputs[0].get_string("sha256"), evald::text::sha256_file(kFixtures + "/vlm_reuse_Q/model.safetensors").sha256);
}

TEST(ProvenancePlugin, ChecksACheckpointTrajectory) {
  TempDir tmp;
  build_library(tmp / "lib");
  evald::testing::PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(config(tmp / "lib")));
  Value sub;
  sub.set("checkpoints", kFixtures + "/trajectory_forged");
  auto out = h.process(evald::testing::PluginHarness::entrant_job("team-f", sub));
  ASSERT_TRUE(out) << out.error();
  const Value& p = (*out)[0].payload;
  EXPECT_EQ(p.get_string("kind"), "trajectory");
  EXPECT_EQ(p.find("consistent")->as_bool(), false);
  EXPECT_EQ(p.get_string("break"), "step_0000->step_0300");
  EXPECT_EQ(p.find("gate")->get_string("result"), "fail");
  EXPECT_EQ(component(p, "llm")->get_string("source"), "open_P@v1");
}

TEST(ProvenancePlugin, ConfigErrorsNameTheKey) {
  TempDir tmp;
  evald::testing::PluginHarness h(kPlugin);
  auto missing = h.configure(config(tmp / "nope"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find(tmp / "nope"), std::string::npos) << missing.message();
  ASSERT_TRUE(prov::FingerprintLibrary::open(tmp / "empty", false, true));
  auto empty = evald::testing::PluginHarness(kPlugin).configure(config(tmp / "empty"));
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.message().find("holds no reference model"), std::string::npos) << empty.message();
  build_library(tmp / "lib");
  Value bad = config(tmp / "lib");
  Value rule;
  rule.set("pattern", "([");
  rule.set("component", "vision");
  bad.set("component_rules", Value(evald::Array{rule}));
  auto r = evald::testing::PluginHarness(kPlugin).configure(bad);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("component_rules"), std::string::npos) << r.message();
  Value alpha = config(tmp / "lib");
  alpha.set("alpha", 2.0);
  EXPECT_FALSE(evald::testing::PluginHarness(kPlugin).configure(alpha));
  evald::testing::PluginHarness ok(kPlugin);
  ASSERT_TRUE(ok.configure(config(tmp / "lib")));
  auto none = ok.process(evald::testing::PluginHarness::entrant_job("team-x", Value(evald::Map{})));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("team-x"), std::string::npos);
}

TEST(ProvenanceTool, AddListScanInspectAndExitCodes) {
  TempDir tmp;
  build_library(tmp / "lib");
  auto list = run(kTool + " list --library " + quote(tmp / "lib"));
  EXPECT_EQ(list.code, 0);
  EXPECT_NE(list.out.find("open_P@v1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("open_Q@v1"), std::string::npos);
  auto derived = run(kTool + " scan -q --library " + quote(tmp / "lib") + " " + quote(kFixtures + "/pruned_ft_P"));
  EXPECT_EQ(derived.code, 1) << derived.out;
  EXPECT_NE(derived.out.find("llm: derived from open_P@v1"), std::string::npos) << derived.out;
  EXPECT_NE(derived.out.find("thresholds: alpha 0.01"), std::string::npos) << "thresholds are printed";
  auto indep = run(kTool + " scan -q --json --library " + quote(tmp / "lib") + " " + quote(kFixtures + "/reinit_then_train"));
  EXPECT_EQ(indep.code, 0) << indep.out;
  EXPECT_NE(indep.out.find("\"result\":\"pass\""), std::string::npos);
  // Malformed: a header that claims more bytes than the file has.
  write_file(tmp / "bad/model.safetensors", std::string("\xff\xff\x00\x00\x00\x00\x00\x00{}", 10));
  auto bad = run(kTool + " scan -q --library " + quote(tmp / "lib") + " " + quote(tmp / "bad"));
  EXPECT_EQ(bad.code, 3) << bad.out;
  EXPECT_NE(bad.out.find("[rule header-length]"), std::string::npos) << bad.out;
  auto traj = run(kTool + " trajectory -q --library " + quote(tmp / "lib") + " " + quote(kFixtures + "/trajectory_honest"));
  EXPECT_EQ(traj.code, 0) << traj.out;
  EXPECT_NE(traj.out.find("step_0000 -> "), std::string::npos);
  auto inspect = run(kTool + " inspect " + quote(kFixtures + "/open_Q"));
  EXPECT_EQ(inspect.code, 0);
  EXPECT_NE(inspect.out.find("vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight"), std::string::npos);
  EXPECT_EQ(run(kTool + " --help").code, 0);
  EXPECT_EQ(run(kTool + " scan " + quote(kFixtures + "/ft_P")).code, 2) << "no --library";
  EXPECT_EQ(run(kTool + " frob --library x").code, 2);
  // A library of known-independent models only: nothing to compare with, a usage error, not a pass.
  auto null_add = run(kTool + " add -q --independent --library " + quote(tmp / "nulls") + " --name indep " + quote(kFixtures + "/indep_same_data"));
  ASSERT_EQ(null_add.code, 0) << null_add.out;
  EXPECT_NE(null_add.out.find("(known independent)"), std::string::npos) << null_add.out;
  EXPECT_NE(run(kTool + " list --library " + quote(tmp / "nulls")).out.find("independent"), std::string::npos);
  auto no_ref = run(kTool + " scan -q --library " + quote(tmp / "nulls") + " " + quote(kFixtures + "/ft_P"));
  EXPECT_EQ(no_ref.code, 2) << no_ref.out;
  EXPECT_NE(no_ref.out.find("holds no reference model"), std::string::npos) << no_ref.out;
  // A fingerprint travels between libraries as one checked record.
  auto ex = run(kTool + " export --library " + quote(tmp / "lib") + " open_Q@v1 " + quote(tmp / "q.msgpack"));
  ASSERT_EQ(ex.code, 0) << ex.out;
  auto im = run(kTool + " import --library " + quote(tmp / "lib2") + " " + quote(tmp / "q.msgpack"));
  ASSERT_EQ(im.code, 0) << im.out;
  EXPECT_NE(run(kTool + " list --library " + quote(tmp / "lib2")).out.find("open_Q@v1"), std::string::npos);
  // Under another name: the same fingerprint, a second entry.
  auto renamed = run(kTool + " import --library " + quote(tmp / "lib2") + " --name shared-Q --revision office-b " + quote(tmp / "q.msgpack"));
  ASSERT_EQ(renamed.code, 0) << renamed.out;
  auto listed = run(kTool + " list --library " + quote(tmp / "lib2")).out;
  EXPECT_NE(listed.find("shared-Q@office-b"), std::string::npos) << listed;
  EXPECT_NE(listed.find("open_Q@v1"), std::string::npos) << listed;
  EXPECT_EQ(run(kTool + " import --library " + quote(tmp / "lib2") + " --revision r " + quote(tmp / "q.msgpack")).code, 2);
  write_file(tmp / "junk.msgpack", "\x81\xa1x\x01");
  auto junk = run(kTool + " import --library " + quote(tmp / "lib2") + " " + quote(tmp / "junk.msgpack"));
  EXPECT_EQ(junk.code, 2);
  EXPECT_NE(junk.out.find("fingerprint.version: missing"), std::string::npos) << junk.out;
  auto rm = run(kTool + " remove --library " + quote(tmp / "lib") + " open_Q@v1");
  EXPECT_EQ(rm.code, 0) << rm.out;
  EXPECT_EQ(run(kTool + " list --library " + quote(tmp / "lib")).out.find("open_Q"), std::string::npos);
}

// A round with the plugin as a pipeline stage in a real evald: verdicts per entrant land in the
// run's outputs; a malformed submission is inconclusive, not a failed job and never a pass.
TEST(ProvenanceDaemon, GatesARound) {
  TempDir tmp;
  build_library(tmp / "lib");
  write_file(tmp / "prov.yaml",
             "name: provenance-check\nstages:\n  - id: provenance\n    plugin: provenance\n    per: entrant\n    config:\n      library: " +
                 (tmp / "lib") + "\n      threads: 1\n");
  write_file(tmp / "broken/model.safetensors", std::string(7, 'x'));
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "prov.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create c1").code, 0);
  ASSERT_EQ(d.ctl("round create c1 r1 --pipeline provenance-check").code, 0);
  ASSERT_EQ(d.ctl("entrant add c1 team-ft --round r1 --set model=" + quote(kFixtures + "/ft_P")).code, 0);
  ASSERT_EQ(d.ctl("entrant add c1 team-ok --round r1 --set model=" + quote(kFixtures + "/indep_same_data")).code, 0);
  ASSERT_EQ(d.ctl("entrant add c1 team-bad --round r1 --set model=" + quote(tmp / "broken")).code, 0);
  auto r = d.ctl("run start c1 r1 --wait");
  EXPECT_EQ(r.code, 0) << r.out;
  auto out = d.ctl("--json run outputs run-000001 --stage provenance");
  ASSERT_EQ(out.code, 0) << out.out;
  auto at = [&](const std::string& team) { return out.out.find("\"entrant\":\"" + team + "\""); };
  ASSERT_NE(at("team-ft"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("\"result\":\"fail\""), std::string::npos);
  EXPECT_NE(out.out.find("\"result\":\"pass\""), std::string::npos);
  EXPECT_NE(out.out.find("\"result\":\"inconclusive\""), std::string::npos);
  EXPECT_NE(out.out.find("header-too-small"), std::string::npos) << "the reason names the rule";
  EXPECT_EQ(d.ctl("shutdown").code, 0);
  EXPECT_EQ(d.wait_exit(), 0);
}

}  // namespace
