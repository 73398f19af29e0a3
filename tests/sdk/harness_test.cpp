// Plugins run through the SDK's PluginHarness, without a daemon, as a plugin author would.
#include <evald/testing.hpp>

#include <gtest/gtest.h>

#include "../common/test_util.hpp"

using namespace evald;
using evald::testing::PluginHarness;

namespace {
std::string plugin(const char* dir, const char* name) { return std::string(dir) + "/" + name + ".so"; }
}  // namespace

TEST(Harness, FileValueReadsAndHashes) {
  test::TempDir tmp;
  test::write_file(tmp / "v.txt", "\n  2.5 \n\n");
  PluginHarness h(plugin(EVALD_PLUGIN_DIR, "file-value"));
  Value cfg;
  cfg.set("scale", 4);
  ASSERT_TRUE(h.configure(cfg).ok());
  Value sub;
  sub.set("value_file", tmp / "v.txt");
  auto out = h.process(PluginHarness::entrant_job("team-a", sub));
  ASSERT_TRUE(out.ok()) << out.error();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].kind, "value");
  EXPECT_DOUBLE_EQ((*out)[0].payload.get_double("value"), 10.0);
  EXPECT_EQ((*out)[0].payload.get_string("sha256").size(), 64u);
}

TEST(Harness, FileValueErrorsNameFileAndLine) {
  test::TempDir tmp;
  test::write_file(tmp / "bad.txt", "1\n2\n");
  test::write_file(tmp / "word.txt", "\nseven\n");
  PluginHarness h(plugin(EVALD_PLUGIN_DIR, "file-value"));
  ASSERT_TRUE(h.configure(Value()).ok());
  Value sub;
  sub.set("value_file", tmp / "bad.txt");
  auto r = h.process(PluginHarness::entrant_job("a", sub));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("bad.txt:2:"), std::string::npos) << r.error();
  sub.set("value_file", tmp / "word.txt");
  r = h.process(PluginHarness::entrant_job("a", sub));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("word.txt:2: expected a number"), std::string::npos) << r.error();
  r = h.process(PluginHarness::entrant_job("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("no \"value_file\""), std::string::npos);
}

TEST(Harness, ConfigIsCheckedAgainstTheSchema) {
  PluginHarness h(plugin(EVALD_PLUGIN_DIR, "file-value"));
  Value cfg;
  cfg.set("scael", 2);
  auto st = h.configure(cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("config.scael: unknown key"), std::string::npos) << st.message();
}

TEST(Harness, SumIsABarrierAndReportsMissing) {
  PluginHarness h(plugin(EVALD_PLUGIN_DIR, "sum"));
  ASSERT_TRUE(h.configure(Value()).ok());
  std::vector<Message> in;
  for (auto [e, v] : {std::pair{"a", 1.5}, std::pair{"b", 2.0}}) {
    Value p;
    p.set("value", v);
    in.push_back(PluginHarness::message("read", e, "value", p));
  }
  auto job = PluginHarness::round_job(in);
  job.failed_upstream.push_back({"read", "c", "failed: broken file"});
  auto out = h.finish(job);
  ASSERT_TRUE(out.ok()) << out.error();
  ASSERT_EQ(out->size(), 1u);
  auto& p = (*out)[0].payload;
  EXPECT_DOUBLE_EQ(p.get_double("total"), 3.5);
  EXPECT_EQ(p.get_int("count"), 2);
  EXPECT_EQ(p.find("missing")->as_array().size(), 1u);
  // A per-entrant job is refused: sum only runs as a barrier.
  EXPECT_FALSE(h.process(PluginHarness::entrant_job("a")).ok());
}

TEST(Harness, ExceptionsBecomeErrorsAtTheBoundary) {
  PluginHarness h(plugin(EVALD_TEST_PLUGIN_DIR, "test-behave"));
  Value cfg;
  cfg.set("mode", "throw");
  ASSERT_TRUE(h.configure(cfg).ok());
  auto r = h.process(PluginHarness::entrant_job("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("plugin threw: behave: thrown on purpose"), std::string::npos) << r.error();
}

TEST(Harness, KeyValueStateAndProgress) {
  PluginHarness h(plugin(EVALD_TEST_PLUGIN_DIR, "test-behave"));
  Value cfg;
  cfg.set("mode", "flaky");
  cfg.set("emit", 3);
  ASSERT_TRUE(h.configure(cfg).ok());
  auto job = PluginHarness::entrant_job("a");
  EXPECT_FALSE(h.process(job).ok());
  EXPECT_EQ(h.kv().size(), 1u);
  auto r = h.process(job);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(h.progress().back(), std::make_pair(3.0, 3.0));
}

TEST(Harness, PluginOwnValidationRuns) {
  PluginHarness h(plugin(EVALD_TEST_PLUGIN_DIR, "test-behave"));
  Value cfg;
  cfg.set("mode", "hang_hard");
  auto st = h.configure(cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("needs sleep_ms"), std::string::npos);
}

TEST(Harness, RefusesANonPlugin) {
  EXPECT_THROW(PluginHarness(plugin(EVALD_BAD_PLUGIN_DIR, "test-no-entry")), std::runtime_error);
  EXPECT_THROW(PluginHarness(plugin(EVALD_BAD_PLUGIN_DIR, "test-abi-major")), std::runtime_error);
}
