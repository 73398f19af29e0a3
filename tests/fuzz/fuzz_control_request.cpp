// fuzz_control_request: evald::daemon::ControlApi::handle_bytes on arbitrary bytes, over a
// real Store (RocksDB in a temporary directory, on /dev/shm when there is one; removed at
// exit, or by the next run when this one crashed), AuditLog, an empty PluginRegistry and an
// Engine that is never started (run.start answers an error). "shutdown" calls a no-op.
// With EVALD_FUZZ_PLUGIN_DIR=<dir> set, the registry scans that directory (e.g.
// <build>/lib/evald/plugins), so pipelines can load and rounds be created. Properties: every request gets a reply that decodes to a map
// with a bool "ok"; an error reply carries a non-empty message and is not a caught exception
// ("internal error: ..."); the audit chain still verifies after state changes.
//
// A request "pipeline.load" with a "path" makes the daemon read that file; inputs naming a
// path that exists and is not a small regular file (/dev/zero, a FIFO, /proc/...) are skipped
// so the fuzzer does not block or exhaust memory reading them.
#include "fuzz_common.hpp"

#include "audit.hpp"
#include "config.hpp"
#include "control.hpp"
#include "engine.hpp"
#include "plugin_registry.hpp"
#include "store.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <sys/types.h>
#include <unistd.h>

namespace fs = std::filesystem;
using evald::Value;
namespace mp = evald::msgpack;
namespace ed = evald::daemon;

namespace {

// Same limits as the control server's own (control.cpp, kRequestLimits).
const mp::Limits kRequestLimits{16u << 20, 32, 16u << 20, 1u << 16};

struct World {
  fs::path dir;
  ed::DaemonConfig config;
  std::unique_ptr<ed::Store> store;
  std::unique_ptr<ed::AuditLog> audit;
  ed::PluginRegistry plugins;
  std::unique_ptr<ed::Engine> engine;
  std::unique_ptr<ed::ControlApi> api;
  int shutdowns = 0;
  uint64_t changes = 0;  // state-changing requests answered ok
};

constexpr uint64_t kChangesPerStore = 20000;

World* g_world = nullptr;

void teardown() {
  if (!g_world) return;
  World* w = g_world;
  g_world = nullptr;
  w->api.reset();
  w->engine.reset();
  w->audit.reset();
  w->store.reset();
  std::error_code ec;
  fs::remove_all(w->dir, ec);
  delete w;
}

World& world() {
  if (g_world) return *g_world;
  spdlog::set_level(spdlog::level::off);
  auto w = std::make_unique<World>();
  std::error_code ec;
  fs::path base = fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                                                                                    : fs::temp_directory_path();
  // A crash or timeout exits without teardown(): sweep what dead fuzzers left behind.
  for (auto& e : fs::directory_iterator(base, ec)) {
    std::string name = e.path().filename().string();
    long pid = 0;
    if (name.rfind("evald-fuzz-control-", 0) == 0 && std::sscanf(name.c_str(), "evald-fuzz-control-%ld-", &pid) == 1 &&
        pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH)
      fs::remove_all(e.path(), ec);
  }
  std::string tmpl = (base / ("evald-fuzz-control-" + std::to_string(getpid()) + "-XXXXXX")).string();
  FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp %s failed", tmpl.c_str());
  w->dir = tmpl;
  w->config.data_dir = w->dir.string();
  w->config.log_level = "error";
  w->config.control = "ipc://" + (w->dir / "control.sock").string();
  if (const char* plugin_dir = std::getenv("EVALD_FUZZ_PLUGIN_DIR")) w->plugins.scan({plugin_dir});
  auto store = ed::Store::open(w->dir / "store");
  FUZZ_CHECK(store.ok(), "Store::open: %s", store.error().c_str());
  w->store = std::move(*store);
  auto audit = ed::AuditLog::open(*w->store);
  FUZZ_CHECK(audit.ok(), "AuditLog::open: %s", audit.error().c_str());
  w->audit = std::move(*audit);
  ed::EngineOptions eo;
  eo.data_dir = w->dir;
  eo.drain_timeout_s = 1;
  w->engine = std::make_unique<ed::Engine>(*w->store, *w->audit, w->plugins, eo);
  World* raw = w.get();
  w->api = std::make_unique<ed::ControlApi>(w->config, *w->store, *w->audit, w->plugins, *w->engine,
                                            [raw] { ++raw->shutdowns; });
  (void)w->api->load_pipelines();
  g_world = w.release();
  static bool registered = false;
  if (!registered) registered = std::atexit(teardown) == 0;
  return *g_world;
}

// True when the request would make the daemon read a file the fuzzer should not touch.
bool reads_unsafe_file(const Value& req) {
  if (req.get_string("op") != "pipeline.load") return false;
  if (auto* y = req.find("yaml"); y && y->is_string()) return false;
  auto* p = req.find("path");
  if (!p || !p->is_string()) return false;
  const std::string& path = p->as_string();
  if (path.find('\0') != std::string::npos) return true;
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return false;
  if (!fs::is_regular_file(st)) return true;
  auto n = fs::file_size(path, ec);
  return ec || n > (1u << 20);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  auto req = mp::decode(data, size, kRequestLimits);
  if (req && req->is_map() && reads_unsafe_file(*req)) return 0;

  evald::Bytes reply = w.api->handle_bytes(data, size);
  auto r = mp::decode(reply);
  FUZZ_CHECK(r.ok(), "reply is not msgpack: %s", r.error().c_str());
  FUZZ_CHECK(r->is_map(), "reply is a %s, not a map", evald::type_name(r->type()));
  auto* ok = r->find("ok");
  FUZZ_CHECK(ok && ok->is_bool(), "reply lacks a bool \"ok\": %s", evald::to_json(*r).c_str());
  if (!ok->as_bool()) {
    FUZZ_CHECK(!r->get_string("error").empty(), "error reply without a message: %s", evald::to_json(*r).c_str());
    FUZZ_CHECK(r->get_string("error").rfind("internal error", 0) != 0, "op threw: %s",
               r->get_string("error").c_str());
  } else {
    FUZZ_CHECK(r->find("result") != nullptr, "ok reply without a result");
  }
  if (!req) {
    FUZZ_CHECK(!ok->as_bool(), "malformed request answered ok");
  } else if (ok->as_bool()) {
    std::string op = req->get_string("op");
    // verify() walks the whole chain: check after the 1st, 2nd, 4th, 8th... change only.
    bool changed = op == "competition.create" || op == "entrant.add" || op == "shutdown" ||
                   op == "pipeline.load" || op == "round.create";
    if (changed) ++w.changes;
    if (changed && (w.changes & (w.changes - 1)) == 0) {
      auto verdict = w.audit->verify();
      FUZZ_CHECK(verdict.ok, "audit chain broken after %s: %s", op.c_str(), verdict.problem.c_str());
    }
    // Every state change grows the store (and its memtables): start over with an empty one
    // now and then, so that long runs stay within -rss_limit_mb.
    if (w.changes >= kChangesPerStore) teardown();
  }
  return 0;
}
