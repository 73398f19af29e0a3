#include "plugin_registry.hpp"

#include <gtest/gtest.h>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::daemon;

TEST(PluginRegistry, LoadsPluginsWithVersionsAndSchemas) {
  PluginRegistry r;
  r.scan({EVALD_PLUGIN_DIR, EVALD_TEST_PLUGIN_DIR});
  EXPECT_TRUE(r.errors().empty()) << r.errors()[0].error;
  auto fv = r.find("file-value");
  ASSERT_TRUE(fv);
  EXPECT_EQ(fv->version, "1.0.0");
  EXPECT_EQ(fv->sha256.size(), 64u);
  EXPECT_TRUE(fv->schema.find("scale"));
  EXPECT_TRUE(r.find("sum"));
  EXPECT_TRUE(r.find("test-behave"));
}

TEST(PluginRegistry, BadLibrariesAreReportedAndSkipped) {
  test::TempDir tmp;
  test::write_file(tmp / "garbage.so", std::string("\x7f" "ELF this is not really a shared object", 40));
  PluginRegistry r;
  r.scan({EVALD_BAD_PLUGIN_DIR, tmp.path(), tmp / "does-not-exist", EVALD_PLUGIN_DIR});
  EXPECT_TRUE(r.find("file-value")) << "good plugins still load";
  std::string all;
  for (auto& e : r.errors()) all += e.error + "\n";
  EXPECT_NE(all.find("test-abi-major.so: plugin is built for evald SDK ABI 2.0, this daemon speaks ABI 1.1"), std::string::npos) << all;
  EXPECT_NE(all.find("test-abi-minor.so: plugin is built for evald SDK ABI 1.2, newer than this daemon's ABI 1.1"), std::string::npos) << all;
  EXPECT_NE(all.find("test-no-entry.so: missing symbol evald_plugin_entry"), std::string::npos) << all;
  EXPECT_NE(all.find("garbage.so: cannot load shared library"), std::string::npos) << all;
  EXPECT_NE(all.find("does-not-exist: plugin directory does not exist"), std::string::npos) << all;
}

TEST(PluginRegistry, DuplicateNamesKeepTheFirst) {
  PluginRegistry r;
  r.scan({EVALD_PLUGIN_DIR, EVALD_PLUGIN_DIR});
  ASSERT_TRUE(r.find("sum"));
  EXPECT_EQ(r.find("sum")->path.parent_path(), std::filesystem::path(EVALD_PLUGIN_DIR));
  std::string all;
  for (auto& e : r.errors()) all += e.error + "\n";
  EXPECT_NE(all.find("duplicate plugin \"sum\""), std::string::npos) << all;
}

TEST(PluginRegistry, LibraryStaysLoadedWhileInUse) {
  std::shared_ptr<const PluginLibrary> kept;
  {
    PluginRegistry r;
    r.scan({EVALD_PLUGIN_DIR});
    kept = r.find("sum");
  }
  // The registry is gone; the descriptor still points into a mapped library.
  ASSERT_TRUE(kept);
  EXPECT_STREQ(kept->api->name, "sum");
}
