#include "config.hpp"
#include "gpus.hpp"

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

TEST(Config, GpuPoolKeys) {
  DaemonConfig c;
  c.data_dir = "d";
  c.log_level = "info";
  ASSERT_TRUE(apply_config_yaml(c, "gpus: \"0,2\"\ngpu_share: true\n", "c.yaml").ok());
  EXPECT_EQ(c.gpus, "0,2");
  EXPECT_TRUE(c.gpu_share);
  EXPECT_TRUE(finalize_config(c).ok());
  c.gpus = "0,x";
  EXPECT_NE(finalize_config(c).message().find("gpus: \"0,x\""), std::string::npos);
  EXPECT_NE(apply_config_yaml(c, "gpu_share: maybe\n", "c.yaml").message().find("c.yaml:1:12: gpu_share: expected true or false"),
            std::string::npos);
  auto none = resolve_gpu_pool("", "x");
  EXPECT_TRUE(none.gpus.empty());
  auto listed = resolve_gpu_pool("1,3", "x");
  EXPECT_EQ(listed.gpus, (std::vector<int>{1, 3}));
  // No NVML here (or a wrong library): an empty pool that says why, not an error.
  auto missing = resolve_gpu_pool("auto", "/nonexistent/libnvidia-ml.so.1");
  EXPECT_TRUE(missing.gpus.empty());
  EXPECT_NE(missing.note.find("NVML is not available"), std::string::npos) << missing.note;
}
