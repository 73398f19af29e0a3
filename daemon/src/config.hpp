// DaemonConfig: evald's settings. Embedded defaults, then a YAML file, then command-line
// flags, each overriding the one before. One code path checks them for both `--validate`
// and a real start.
#pragma once

#include <evald/value.hpp>

#include <string>
#include <vector>

namespace evald::daemon {

struct DaemonConfig {
  std::string data_dir;
  std::vector<std::string> plugin_dirs;
  std::string control;        // ZeroMQ endpoint; default ipc://<data_dir>/control.sock
  std::string control_group;  // a group also allowed to use the ipc control socket
  std::string log_level;      // trace, debug, info, warn, error
  std::string log_file;       // empty: stderr
  int drain_timeout_s = 30;
  std::vector<std::string> pipelines;  // pipeline files loaded at start
  // The GPUs stages with `gpus: N` lease from: "" none, "auto" every GPU NVML finds, or a list
  // of indices "0,1,3". gpu_share lets concurrent jobs hold the same GPUs.
  std::string gpus;
  bool gpu_share = false;
  std::string nvml_library = "libnvidia-ml.so.1";

  Value to_value() const;
};

// The defaults compiled into the binary, as YAML. exe_dir locates the plugins installed
// beside the binary (<exe_dir>/../lib/evald/plugins).
std::string embedded_defaults_yaml(const std::string& exe_dir);

// Applies the YAML text (named source in errors) over cfg; unknown keys and bad values
// are errors naming file, line and key.
Status apply_config_yaml(DaemonConfig& cfg, const std::string& yaml, const std::string& source);

// Fills derived values (control endpoint from data_dir) and checks the whole.
Status finalize_config(DaemonConfig& cfg);

}  // namespace evald::daemon
