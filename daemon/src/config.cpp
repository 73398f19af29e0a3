#include "config.hpp"

#include <yaml-cpp/yaml.h>

#include <set>

namespace evald::daemon {

std::string embedded_defaults_yaml(const std::string& exe_dir) {
  return "# evald embedded defaults\n"
         "data_dir: evald-data\n"
         "plugin_dirs:\n"
         "  - " + exe_dir + "/../lib/evald/plugins\n"
         "control: \"\"          # empty: ipc://<data_dir>/control.sock\n"
         "control_group: \"\"    # empty: only the daemon's user may use the control socket\n"
         "log_level: info\n"
         "log_file: \"\"         # empty: stderr\n"
         "drain_timeout_s: 30\n"
         "pipelines: []\n"
         "gpus: \"\"             # GPUs for stages with gpus: N: \"\" none, \"auto\" (NVML), or \"0,1,3\"\n"
         "gpu_share: false      # true: concurrent jobs may lease the same GPUs\n"
         "nvml_library: libnvidia-ml.so.1\n";
}

Value DaemonConfig::to_value() const {
  Value v;
  v.set("data_dir", data_dir);
  Array pd(plugin_dirs.begin(), plugin_dirs.end());
  v.set("plugin_dirs", std::move(pd));
  v.set("control", control);
  v.set("control_group", control_group);
  v.set("log_level", log_level);
  v.set("log_file", log_file);
  v.set("drain_timeout_s", drain_timeout_s);
  Array pl(pipelines.begin(), pipelines.end());
  v.set("pipelines", std::move(pl));
  v.set("gpus", gpus);
  v.set("gpu_share", gpu_share);
  v.set("nvml_library", nvml_library);
  return v;
}

Status apply_config_yaml(DaemonConfig& cfg, const std::string& yaml, const std::string& source) {
  YAML::Node root;
  auto where = [&](const YAML::Mark& m) {
    return source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  };
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Status::error(where(e.mark) + ": malformed YAML: " + e.msg);
  }
  if (root.IsNull()) return {};
  if (!root.IsMap()) return Status::error(source + ": the config must be a YAML map");
  auto str = [&](const YAML::Node& n, const std::string& key, std::string& out) -> Status {
    if (!n.IsScalar()) return Status::error(where(n.Mark()) + ": " + key + ": expected a string");
    out = n.Scalar();
    return {};
  };
  auto list = [&](const YAML::Node& n, const std::string& key, std::vector<std::string>& out) -> Status {
    if (n.IsNull()) {
      out.clear();
      return {};
    }
    if (!n.IsSequence()) return Status::error(where(n.Mark()) + ": " + key + ": expected a list of strings");
    out.clear();
    for (const auto& e : n) {
      if (!e.IsScalar()) return Status::error(where(e.Mark()) + ": " + key + ": expected a list of strings");
      out.push_back(e.Scalar());
    }
    return {};
  };
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& n = kv.second;
    Status st;
    if (key == "data_dir") st = str(n, key, cfg.data_dir);
    else if (key == "control") st = str(n, key, cfg.control);
    else if (key == "control_group") st = str(n, key, cfg.control_group);
    else if (key == "log_level") st = str(n, key, cfg.log_level);
    else if (key == "log_file") st = str(n, key, cfg.log_file);
    else if (key == "plugin_dirs") st = list(n, key, cfg.plugin_dirs);
    else if (key == "pipelines") st = list(n, key, cfg.pipelines);
    else if (key == "gpus") st = str(n, key, cfg.gpus);
    else if (key == "nvml_library") st = str(n, key, cfg.nvml_library);
    else if (key == "gpu_share") {
      try {
        cfg.gpu_share = n.as<bool>();
      } catch (const YAML::Exception&) {
        st = Status::error(where(n.Mark()) + ": gpu_share: expected true or false");
      }
    }
    else if (key == "drain_timeout_s") {
      try {
        cfg.drain_timeout_s = n.as<int>();
      } catch (const YAML::Exception&) {
        st = Status::error(where(n.Mark()) + ": drain_timeout_s: expected an integer");
      }
    } else {
      st = Status::error(where(kv.first.Mark()) + ": unknown key \"" + key +
                         "\" (known: data_dir, plugin_dirs, control, control_group, log_level, log_file, "
                         "drain_timeout_s, pipelines, gpus, gpu_share, nvml_library)");
    }
    if (!st) return st;
  }
  return {};
}

Status finalize_config(DaemonConfig& cfg) {
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
  if (!levels.count(cfg.log_level))
    return Status::error("log_level: \"" + cfg.log_level + "\" is not one of trace, debug, info, warn, error");
  if (cfg.data_dir.empty()) return Status::error("data_dir: must not be empty");
  if (cfg.drain_timeout_s < 0 || cfg.drain_timeout_s > 86400)
    return Status::error("drain_timeout_s: must be between 0 and 86400");
  if (!cfg.gpus.empty() && cfg.gpus != "auto") {
    std::set<int> seen;
    size_t pos = 0;
    while (pos <= cfg.gpus.size()) {
      size_t end = cfg.gpus.find(',', pos);
      if (end == std::string::npos) end = cfg.gpus.size();
      std::string item = cfg.gpus.substr(pos, end - pos);
      if (item.empty() || item.size() > 4 || item.find_first_not_of("0123456789") != std::string::npos || !seen.insert(std::stoi(item)).second)
        return Status::error("gpus: \"" + cfg.gpus + "\" is not \"\", \"auto\" or a list of distinct GPU indices such as \"0,1,3\"");
      pos = end + 1;
    }
  }
  if (cfg.control.empty()) cfg.control = "ipc://" + cfg.data_dir + "/control.sock";
  if (cfg.control.rfind("ipc://", 0) != 0 && cfg.control.rfind("tcp://", 0) != 0)
    return Status::error("control: \"" + cfg.control + "\" must be an ipc:// or tcp:// endpoint");
  if (cfg.control.rfind("ipc://", 0) == 0 && cfg.control.size() - 6 > 100)
    return Status::error("control: ipc path longer than the 100 characters a Unix socket allows: " + cfg.control);
  return {};
}

}  // namespace evald::daemon
