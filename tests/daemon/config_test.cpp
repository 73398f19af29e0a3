#include "config.hpp"

#include <gtest/gtest.h>

using namespace evald::daemon;

TEST(DaemonConfig, EmbeddedDefaultsThenFileThenFinalize) {
  DaemonConfig c;
  ASSERT_TRUE(apply_config_yaml(c, embedded_defaults_yaml("/opt/evald/bin"), "<defaults>").ok());
  EXPECT_EQ(c.data_dir, "evald-data");
  ASSERT_EQ(c.plugin_dirs.size(), 1u);
  EXPECT_EQ(c.plugin_dirs[0], "/opt/evald/bin/../lib/evald/plugins");
  ASSERT_TRUE(apply_config_yaml(c, "data_dir: /srv/evald\nlog_level: debug\n", "evald.yaml").ok());
  ASSERT_TRUE(finalize_config(c).ok());
  EXPECT_EQ(c.control, "ipc:///srv/evald/control.sock");
  EXPECT_EQ(c.log_level, "debug");
}

TEST(DaemonConfig, ErrorsNameFileLineAndKey) {
  DaemonConfig c;
  auto st = apply_config_yaml(c, "data_dir: x\nlog_levle: debug\n", "evald.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("evald.yaml:2:1: unknown key \"log_levle\""), std::string::npos) << st.message();
  st = apply_config_yaml(c, "plugin_dirs: {a: 1}\n", "evald.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("plugin_dirs: expected a list"), std::string::npos) << st.message();
  st = apply_config_yaml(c, "data_dir: [unclosed\n", "evald.yaml");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("malformed YAML"), std::string::npos) << st.message();
  c.log_level = "loud";
  c.data_dir = "d";
  EXPECT_FALSE(finalize_config(c).ok());
  c.log_level = "info";
  c.control = "http://x";
  EXPECT_FALSE(finalize_config(c).ok());
}
