// evald: the competition daemon. See `evald --help`.
#include "audit.hpp"
#include "config.hpp"
#include "control.hpp"
#include "engine.hpp"
#include "gpus.hpp"
#include "pipeline.hpp"
#include "plugin_registry.hpp"
#include "store.hpp"
#include "util.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace evald;
using namespace evald::daemon;

namespace {

const char* kUsage = R"(evald - runs AI model competitions: plugins chained into pipelines, state in RocksDB

Usage: evald [options]

Options (each overrides the config file, which overrides the embedded defaults):
  --config FILE          YAML config file (keys as in --print-config)
  --data-dir DIR         where the store, artifacts and control socket live
  --plugin-dir DIR       a directory of plugin libraries; repeat for more (replaces the list)
  --control ENDPOINT     control API endpoint (ipc://PATH or tcp://HOST:PORT)
  --control-group GROUP  also let this group use the ipc control socket
  --log-level LEVEL      trace, debug, info, warn or error
  --log-file FILE        log to FILE instead of stderr
  --drain-timeout S      seconds SIGTERM waits for in-flight jobs
  --pipeline FILE        load this pipeline at start; repeat for more
  --gpus LIST            GPUs stages with `gpus: N` lease: "auto" (NVML) or "0,1,3"
  --gpu-share            let concurrent jobs lease the same GPUs
  --nvml-library PATH    the NVML library for --gpus auto (default libnvidia-ml.so.1)

Commands that print and exit:
  --validate FILE        check a pipeline file exactly as a start would; exit 1 if invalid
  --list-plugins         load the plugins and list them with versions and load errors
  --plugin-help NAME     a plugin's description and config keys
  --print-config         the effective configuration
  --verify-audit         check the audit log's hash chain of a stopped daemon's data dir
                         (for a running daemon: evalctl audit verify)
  --json                 machine-readable output for the commands above
  --version              version and plugin ABI
  --help                 this text

Signals: SIGTERM/SIGINT drain in-flight jobs and exit; SIGHUP reloads pipeline files.
Exit codes: 0 ok, 1 invalid input or config, 2 usage, 3 data dir unusable or in use.
)";

std::string exe_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return std::filesystem::path(buf).parent_path().string();
}

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = bool(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void setup_logging(const DaemonConfig& cfg) {
  std::shared_ptr<spdlog::logger> logger;
  if (cfg.log_file.empty())
    logger = spdlog::stderr_color_mt("evald");
  else
    logger = spdlog::basic_logger_mt("evald", cfg.log_file);
  // key=value fields after the level, so logs can be grepped and parsed.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");
  logger->set_level(spdlog::level::from_str(cfg.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

struct Args {
  DaemonConfig cfg;
  std::string validate, plugin_help;
  bool list_plugins = false, print_config = false, json = false, verify_audit = false;
};

// Exit code, or -1 to go on.
int parse_args(int argc, char** argv, Args& a) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto apply = [&](const std::string& yaml, const std::string& source) {
    if (auto st = apply_config_yaml(a.cfg, yaml, source); !st) {
      std::fprintf(stderr, "evald: %s\n", st.message().c_str());
      return false;
    }
    return true;
  };
  if (!apply(embedded_defaults_yaml(exe_dir()), "<embedded defaults>")) return 1;
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "evald: --config needs a file\n");
        return 2;
      }
      bool ok;
      std::string text = read_file(args[i + 1], ok);
      if (!ok) {
        std::fprintf(stderr, "evald: %s: cannot read config file\n", args[i + 1].c_str());
        return 1;
      }
      if (!apply(text, args[i + 1])) return 1;
    }
  bool plugin_dirs_reset = false, pipelines_reset = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    auto value = [&]() -> const std::string* {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "evald: %s needs a value (see --help)\n", f.c_str());
        return nullptr;
      }
      return &args[++i];
    };
    if (f == "--help" || f == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (f == "--version") {
      std::printf("evald %s (plugin ABI %d.%d)\n", EVALD_VERSION, EVALD_ABI_MAJOR, EVALD_ABI_MINOR);
      return 0;
    }
    if (f == "--list-plugins") a.list_plugins = true;
    else if (f == "--print-config") a.print_config = true;
    else if (f == "--verify-audit") a.verify_audit = true;
    else if (f == "--json") a.json = true;
    else if (f == "--gpu-share") a.cfg.gpu_share = true;
    else if (f == "--config") ++i;
    else if (f == "--data-dir" || f == "--plugin-dir" || f == "--control" || f == "--control-group" ||
             f == "--log-level" || f == "--log-file" || f == "--drain-timeout" || f == "--pipeline" ||
             f == "--validate" || f == "--plugin-help" || f == "--gpus" || f == "--nvml-library") {
      auto* v = value();
      if (!v) return 2;
      if (f == "--data-dir") a.cfg.data_dir = *v;
      else if (f == "--plugin-dir") {
        if (!plugin_dirs_reset) a.cfg.plugin_dirs.clear(), plugin_dirs_reset = true;
        a.cfg.plugin_dirs.push_back(*v);
      } else if (f == "--control") a.cfg.control = *v;
      else if (f == "--control-group") a.cfg.control_group = *v;
      else if (f == "--log-level") a.cfg.log_level = *v;
      else if (f == "--log-file") a.cfg.log_file = *v;
      else if (f == "--pipeline") {
        if (!pipelines_reset) a.cfg.pipelines.clear(), pipelines_reset = true;
        a.cfg.pipelines.push_back(*v);
      } else if (f == "--validate") a.validate = *v;
      else if (f == "--gpus") a.cfg.gpus = *v;
      else if (f == "--nvml-library") a.cfg.nvml_library = *v;
      else if (f == "--plugin-help") a.plugin_help = *v;
      else {
        try {
          a.cfg.drain_timeout_s = std::stoi(*v);
        } catch (...) {
          std::fprintf(stderr, "evald: --drain-timeout: \"%s\" is not a number\n", v->c_str());
          return 2;
        }
      }
    } else {
      std::fprintf(stderr, "evald: unknown option \"%s\" (see --help)\n", f.c_str());
      return 2;
    }
  }
  if (auto st = finalize_config(a.cfg); !st) {
    std::fprintf(stderr, "evald: config: %s\n", st.message().c_str());
    return 1;
  }
  return -1;
}

void print_plugins(const PluginRegistry& reg, bool json) {
  if (json) {
    std::printf("%s\n", to_json(reg.to_value()).c_str());
    return;
  }
  std::printf("%-20s %-10s %s\n", "PLUGIN", "VERSION", "DESCRIPTION");
  for (auto& p : reg.list()) std::printf("%-20s %-10s %s\n", p->name.c_str(), p->version.c_str(), p->description.c_str());
  for (auto& e : reg.errors()) std::printf("not loaded: %s\n", e.error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (int rc = parse_args(argc, argv, a); rc >= 0) return rc;

  if (a.print_config) {
    std::printf("%s\n", to_json(a.cfg.to_value()).c_str());
    return 0;
  }
  setup_logging(a.cfg);

  std::vector<std::filesystem::path> dirs(a.cfg.plugin_dirs.begin(), a.cfg.plugin_dirs.end());
  PluginRegistry plugins;
  plugins.scan(dirs);

  if (a.list_plugins) {
    print_plugins(plugins, a.json);
    return 0;
  }
  if (!a.plugin_help.empty()) {
    auto p = plugins.find(a.plugin_help);
    if (!p) {
      std::fprintf(stderr, "evald: no plugin \"%s\" in %zu plugin dir(s)\n", a.plugin_help.c_str(), dirs.size());
      return 1;
    }
    if (a.json) {
      std::printf("%s\n", to_json(p->schema.to_value()).c_str());
    } else {
      std::printf("%s %s - %s\n\nConfig keys:\n%s", p->name.c_str(), p->version.c_str(), p->description.c_str(),
                  p->schema.help().c_str());
    }
    return 0;
  }
  if (!a.validate.empty()) {
    // The same loader a real start uses for every pipeline.
    auto spec = load_pipeline_file(a.validate, plugins);
    if (!spec) {
      if (a.json) {
        Value v;
        v.set("ok", false);
        v.set("error", spec.error());
        std::printf("%s\n", to_json(v).c_str());
      } else {
        std::fprintf(stderr, "%s\n", spec.error().c_str());
      }
      return 1;
    }
    if (a.json) {
      Value v;
      v.set("ok", true);
      v.set("name", spec->name);
      v.set("sha256", spec->sha256);
      std::printf("%s\n", to_json(v).c_str());
    } else {
      std::printf("%s: pipeline \"%s\" is valid: %zu stage(s):", a.validate.c_str(), spec->name.c_str(), spec->stages.size());
      for (auto& s : spec->stages) std::printf(" %s", s.id.c_str());
      std::printf("\n");
    }
    return 0;
  }

  for (auto& e : plugins.errors()) spdlog::warn("plugin not loaded: {}", e.error);
  for (auto& p : plugins.list()) spdlog::info("plugin={} version={} path={}", p->name, p->version, p->path.string());

  auto store = Store::open(a.cfg.data_dir);
  if (!store && a.verify_audit) {
    std::fprintf(stderr, "evald: %s\n(for a running daemon use: evalctl audit verify)\n", store.error().c_str());
    return 3;
  }
  if (!store) {
    spdlog::error("{}", store.error());
    std::fprintf(stderr, "evald: %s\n", store.error().c_str());
    return 3;
  }
  // Only the owner (and the control group) may enter the data dir, control socket included.
  chmod(a.cfg.data_dir.c_str(), a.cfg.control_group.empty() ? 0700 : 0750);
  if (!a.cfg.control_group.empty())
    if (auto* g = getgrnam(a.cfg.control_group.c_str()); g && chown(a.cfg.data_dir.c_str(), uid_t(-1), g->gr_gid) != 0)
      spdlog::warn("cannot give data dir to group {}", a.cfg.control_group);
  auto audit = AuditLog::open(**store);
  if (!audit) {
    spdlog::error("{}", audit.error());
    return 3;
  }
  if (a.verify_audit) {
    auto v = (*audit)->verify();
    if (a.json) {
      Value r;
      r.set("ok", v.ok);
      r.set("entries", int64_t(v.entries));
      r.set("head", v.head);
      if (!v.ok) r.set("problem", v.problem);
      std::printf("%s\n", to_json(r).c_str());
    } else if (v.ok) {
      std::printf("audit log intact: %llu entries, head %s\n", (unsigned long long)v.entries, v.head.c_str());
    } else {
      std::printf("AUDIT LOG BROKEN after %llu good entries: %s\n", (unsigned long long)v.entries, v.problem.c_str());
    }
    return v.ok ? 0 : 1;
  }

  boost::asio::io_context io;
  Engine engine(**store, **audit, plugins, {a.cfg.data_dir, a.cfg.drain_timeout_s, std::filesystem::path(exe_dir()) / "evald-worker"});
  GpuPool gpu_pool = resolve_gpu_pool(a.cfg.gpus, a.cfg.nvml_library);
  spdlog::info("gpu pool: {} GPU(s){} ({})", gpu_pool.gpus.size(), a.cfg.gpu_share ? ", shared" : "", gpu_pool.note);
  engine.set_gpu_pool(gpu_pool.gpus, a.cfg.gpu_share, gpu_pool.note);
  bool stopping = false;
  auto begin_stop = [&] {
    if (stopping) return;
    stopping = true;
    engine.stop(true);
  };
  ControlApi api(a.cfg, **store, **audit, plugins, engine, [&] { boost::asio::post(io, begin_stop); });
  (void)api.load_pipelines();
  ControlServer control(api, a.cfg);
  if (auto st = control.start(); !st) {
    spdlog::error("{}", st.message());
    std::fprintf(stderr, "evald: %s\n", st.message().c_str());
    return 3;
  }
  {
    auto b = (*store)->batch();
    Value d;
    d.set("pid", int64_t(getpid()));
    d.set("version", EVALD_VERSION);
    d.set("plugins", int64_t(plugins.list().size()));
    if (auto st = (*audit)->commit(b, "evald", "daemon.start", d); !st) {
      spdlog::error("{}", st.message());
      return 3;
    }
  }
  if (auto st = engine.start(); !st) {
    spdlog::error("{}", st.message());
    return 3;
  }
  spdlog::info("evald {} started: data_dir={} control={} pid={}", EVALD_VERSION, a.cfg.data_dir, a.cfg.control, getpid());

  // Schedules are checked every second; one that came due while the daemon was down is
  // caught up (or skipped) at the first check.
  boost::asio::steady_timer schedule_timer(io);
  std::function<void(const boost::system::error_code&)> on_tick = [&](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    api.fire_due_schedules(now_ms());
    schedule_timer.expires_after(std::chrono::seconds(1));
    schedule_timer.async_wait(on_tick);
  };
  schedule_timer.expires_after(std::chrono::milliseconds(0));
  schedule_timer.async_wait(on_tick);

  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading pipeline files");
      (void)api.reload_pipelines("signal:SIGHUP");
    } else {
      spdlog::info("{}: draining and stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      begin_stop();
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  boost::asio::steady_timer watch(io);
  std::function<void(const boost::system::error_code&)> poll_engine = [&](const boost::system::error_code&) {
    if (!engine.running()) {
      io.stop();
      return;
    }
    watch.expires_after(std::chrono::milliseconds(50));
    watch.async_wait(poll_engine);
  };
  watch.expires_after(std::chrono::milliseconds(50));
  watch.async_wait(poll_engine);
  io.run();

  engine.wait();
  control.stop();
  spdlog::info("evald stopped");
  spdlog::shutdown();
  return 0;
}
