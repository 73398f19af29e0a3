#include "pipeline.hpp"

#include <gtest/gtest.h>

#include "test_plugins.hpp"

using namespace evald;
using namespace evald::daemon;

namespace {
using test::plugins;
Result<PipelineSpec> parse(const std::string& y) { return parse_pipeline(y, "p.yaml", plugins()); }
void expect_error(const std::string& yaml, const std::string& needle) {
  auto r = parse(yaml);
  ASSERT_FALSE(r.ok()) << "accepted:\n" << yaml;
  EXPECT_NE(r.error().find(needle), std::string::npos) << r.error();
}
}  // namespace

TEST(Pipeline, ValidPipelineIsOrderedTopologically) {
  auto r = parse(R"(name: demo
description: two stages
stages:
  - id: total
    plugin: sum
    per: round
    after: [read]
    timeout_s: 30
  - id: read
    plugin: file-value
    config:
      scale: 2
      kind: "value"
)");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->stages.size(), 2u);
  EXPECT_EQ(r->stages[0].id, "read");
  EXPECT_EQ(r->stages[1].id, "total");
  EXPECT_EQ(r->stages[1].timeout_s, 30);
  EXPECT_DOUBLE_EQ(r->stages[0].config.get_double("scale"), 2.0);
  EXPECT_EQ(r->stages[0].config.get_string("submission_key"), "value_file") << "default filled in";
  EXPECT_EQ(r->sha256.size(), 64u);
  EXPECT_EQ(r->downstream("read").size(), 1u);
}

TEST(Pipeline, MalformedYamlNamesLine) {
  expect_error("name: x\nstages:\n  - id: [a\n", "p.yaml:");
  expect_error("name: x\nstages:\n  - id: [a\n", "malformed YAML");
}

TEST(Pipeline, UnknownPluginNamesFileLineField) {
  expect_error("name: x\nstages:\n  - id: a\n    plugin: nope\n",
               "p.yaml:4:13: stages[0] (a).plugin: unknown plugin \"nope\" (loaded: ");
  // The loaded plugins are listed in name order (which ones depends on what the build made).
  expect_error("name: x\nstages:\n  - id: a\n    plugin: nope\n", "file-value, provenance, ");
  expect_error("name: x\nstages:\n  - id: a\n    plugin: nope\n", "sum, tally, test-behave");
}

TEST(Pipeline, UnknownStageInAfter) {
  expect_error("name: x\nstages:\n  - id: a\n    plugin: sum\n    per: round\n    after: [ghost]\n",
               "p.yaml:6:12: stage a.after: unknown stage \"ghost\"");
}

TEST(Pipeline, CycleIsReportedWithItsPath) {
  expect_error(R"(name: x
stages:
  - id: a
    plugin: test-behave
    after: [c]
  - id: b
    plugin: test-behave
    after: [a]
  - id: c
    plugin: test-behave
    after: [b]
)",
               "cycle: a -> c -> b -> a");
  expect_error("name: x\nstages:\n  - id: a\n    plugin: sum\n    after: [a]\n", "cannot run after itself");
}

TEST(Pipeline, BadConfigPerPluginSchemaPointsAtTheKey) {
  expect_error("name: x\nstages:\n  - id: a\n    plugin: file-value\n    config:\n      scale: lots\n",
               "p.yaml:6:14: stages[0] (a).config.scale: expected number, got string");
  expect_error("name: x\nstages:\n  - id: a\n    plugin: file-value\n    config:\n      scael: 1\n",
               "config.scael: unknown key");
  expect_error("name: x\nstages:\n  - id: a\n    plugin: test-behave\n    config: {mode: hang_hard}\n",
               "rejected by plugin test-behave: mode hang_hard needs sleep_ms");
}

TEST(Pipeline, StructuralErrorsAreAllReported) {
  auto r = parse(R"(name: x
colour: blue
stages:
  - id: a
    plugin: sum
    per: sometimes
    retries: -1
    workres: 2
  - id: a
    plugin: sum
  - plugin: sum
)");
  ASSERT_FALSE(r.ok());
  for (auto* needle : {"p.yaml:2:1: colour: unknown field", "per: expected entrant or round",
                       "retries: expected an integer from 0 to 100", "workres: unknown field",
                       "duplicate stage id (first at line 4)", "stages[2].id: required string missing"})
    EXPECT_NE(r.error().find(needle), std::string::npos) << needle << "\n" << r.error();
  expect_error("stages: []\nname: x\n", "stages: required non-empty list missing");
  expect_error("- a\n- b\n", "a pipeline must be a YAML map");
  expect_error("name: 'bad name'\nstages:\n  - id: a\n    plugin: sum\n", "not a valid id");
}

TEST(Pipeline, YamlScalarsAreTyped) {
  auto v = yaml_to_value("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: text\ng: [1, x]\n", "t.yaml");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->find("a")->is_int());
  EXPECT_TRUE(v->find("b")->is_double());
  EXPECT_TRUE(v->find("c")->is_bool());
  EXPECT_TRUE(v->find("d")->is_null());
  EXPECT_TRUE(v->find("e")->is_string());
  EXPECT_EQ(v->get_string("f"), "text");
  EXPECT_EQ(v->find("g")->as_array().size(), 2u);
}

// Found by fuzz_pipeline_yaml: alias cycles and exponential alias expansion.
TEST(Pipeline, YamlAliasBombsAreRefusedNotFollowed) {
  auto cyc = yaml_to_value("a: &a {b: *a}\n", "t.yaml");
  ASSERT_FALSE(cyc.ok());
  EXPECT_NE(cyc.error().find("nested deeper than 64 levels"), std::string::npos) << cyc.error();
  expect_error("name: a\nstages:\n  - &s {id: s, plugin: p, config: *s}\n", "nested deeper than 64 levels");
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int k = 0; k < 9; ++k) laughs += ", " + prev;
    laughs += "]\n";
  }
  auto bomb = yaml_to_value(laughs, "t.yaml");
  ASSERT_FALSE(bomb.ok());
  EXPECT_NE(bomb.error().find("too many nodes"), std::string::npos) << bomb.error();
}

// Found by fuzz_pipeline_yaml: a config key with line breaks broke error reporting.
TEST(Pipeline, OddConfigKeysAreReportedNotThrown) {
  expect_error("name: d\nstages:\n  - id: s\n    plugin: file-value\n    config: {\"x\\n\\ny\": 1}\n", "unknown key");
}
