// fuzz_daemon_config: evald::daemon::apply_config_yaml over the embedded defaults, then
// finalize_config. Properties: errors name the source; a config that finalizes has a
// control endpoint of ipc:// or tcp://, a known log level and a bounded drain timeout, and
// finalizing it again changes nothing.
#include "fuzz_common.hpp"

#include "config.hpp"

#include <set>
#include <string>

using evald::daemon::DaemonConfig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const DaemonConfig defaults = [] {
    DaemonConfig c;
    auto st = evald::daemon::apply_config_yaml(c, evald::daemon::embedded_defaults_yaml("/opt/evald/bin"), "<defaults>");
    FUZZ_CHECK(st.ok(), "embedded defaults do not apply: %s", st.message().c_str());
    return c;
  }();
  std::string yaml(reinterpret_cast<const char*>(data), size);

  DaemonConfig cfg = defaults;
  auto st = evald::daemon::apply_config_yaml(cfg, yaml, "fuzz.yaml");
  if (!st) {
    FUZZ_CHECK(st.message().rfind("fuzz.yaml", 0) == 0, "config error does not name the source: %s",
               st.message().c_str());
    return 0;
  }
  (void)cfg.to_value();
  st = evald::daemon::finalize_config(cfg);
  if (!st) {
    FUZZ_CHECK(!st.message().empty(), "finalize_config failed without a message");
    return 0;
  }
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
  FUZZ_CHECK(levels.count(cfg.log_level), "finalized with log_level \"%s\"", cfg.log_level.c_str());
  FUZZ_CHECK(!cfg.data_dir.empty(), "finalized with an empty data_dir");
  FUZZ_CHECK(cfg.drain_timeout_s >= 0 && cfg.drain_timeout_s <= 86400, "drain_timeout_s %d", cfg.drain_timeout_s);
  FUZZ_CHECK(cfg.control.rfind("ipc://", 0) == 0 || cfg.control.rfind("tcp://", 0) == 0, "control \"%s\"",
             cfg.control.c_str());
  DaemonConfig again = cfg;
  st = evald::daemon::finalize_config(again);
  FUZZ_CHECK(st.ok(), "finalize_config is not idempotent: %s", st.message().c_str());
  FUZZ_CHECK(evald::fuzz::same_value(cfg.to_value(), again.to_value()), "finalize_config changed a final config");
  return 0;
}
