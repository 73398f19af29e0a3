// evald-worker: runs one pipeline stage's plugin in a process of its own, started by the
// daemon for stages with `isolation: process`. It speaks the same worker protocol as a
// worker thread, over ipc; plugin state goes through the daemon, which holds the store.
#include "plugin_registry.hpp"
#include "worker.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <zmq.hpp>

#include <csignal>
#include <deque>
#include <fstream>
#include <sstream>

using namespace evald;
using namespace evald::daemon;

namespace {

const char* kUsage = R"(evald-worker - runs one stage's plugin for evald in its own process

Started by evald for stages with `isolation: process`; not meant to be run by hand.

Usage: evald-worker --endpoint ENDPOINT --id ID --run RUN --stage STAGE --plugin LIBRARY
                    --config FILE --data-dir DIR [--log-level LEVEL]

  --endpoint   the daemon's worker socket (ipc://DATA/workers.sock)
  --id         this worker's routing id, given by the daemon
  --plugin     the plugin library to load
  --config     the stage config as msgpack (removed once read)
)";

// Plugin state through the daemon: a KV request, then frames until its reply; JOB and
// STOP frames that arrive meanwhile wait in a queue for the worker loop.
class ProcessServices : public WorkerServices {
 public:
  explicit ProcessServices(zmq::socket_t& sock) : sock_(sock) {}

  Result<std::optional<std::string>> kv_get(const std::string& key) override {
    auto r = call("get", key, nullptr);
    if (!r) return r.status();
    auto* v = r->find("value");
    if (!v || !v->is_binary()) return std::optional<std::string>();
    return std::optional<std::string>(std::string(v->as_binary().begin(), v->as_binary().end()));
  }
  Status kv_put(const std::string& key, std::string_view value) override {
    auto r = call("put", key, &value);
    return r ? Status() : r.status();
  }
  Status kv_del(const std::string& key) override {
    auto r = call("del", key, nullptr);
    return r ? Status() : r.status();
  }
  Status intake_scan(const std::string& prefix, const std::function<bool(std::string_view)>& fn) override {
    std::string from;
    while (true) {
      auto r = call("intake_scan", prefix, nullptr, from);
      if (!r) return r.status();
      if (auto* vs = r->find("values"); vs && vs->is_array())
        for (auto& v : vs->as_array()) {
          if (!v.is_binary()) return Status::error("intake_scan reply holds a value that is not bytes");
          if (!fn(std::string_view(reinterpret_cast<const char*>(v.as_binary().data()), v.as_binary().size()))) return {};
        }
      from = r->get_string("next");
      if (from.empty()) return {};
    }
  }
  // The daemon ends a process whose job timed out; a drain ends it with SIGTERM.
  bool cancelled(uint64_t) override { return terminating_ != 0; }

  bool next_frame(zmq::socket_t& sock, zmq::message_t& out) override {
    if (!pending_.empty()) {
      out = std::move(pending_.front());
      pending_.pop_front();
      return true;
    }
    return WorkerServices::next_frame(sock, out);
  }

  static volatile std::sig_atomic_t terminating_;

 private:
  Result<Value> call(const char* op, const std::string& key, const std::string_view* value, const std::string& from = {}) {
    Value f;
    f.set("t", "KV");
    f.set("op", op);
    f.set("key", key);
    if (!from.empty()) f.set("from", from);
    f.set("n", ++n_);
    if (value) f.set("value", Bytes(value->begin(), value->end()));
    Bytes b = msgpack::encode(f);
    try {
      sock_.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none);
      while (true) {
        zmq::message_t m;
        if (!sock_.recv(m)) continue;
        auto r = msgpack::decode(static_cast<const uint8_t*>(m.data()), m.size(), kWorkerFrameLimits);
        if (r && r->get_string("t") == "KV_REPLY" && r->get_int("n") == n_) {
          if (!r->get_bool("ok")) return Status::error(r->get_string("error", "kv request failed"));
          return std::move(*r);
        }
        pending_.push_back(std::move(m));
      }
    } catch (const zmq::error_t& e) {
      return Status::error(std::string("daemon unreachable: ") + e.what());
    }
  }

  zmq::socket_t& sock_;
  int64_t n_ = 0;
  std::deque<zmq::message_t> pending_;
};

volatile std::sig_atomic_t ProcessServices::terminating_ = 0;

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "evald-worker: bad argument \"%s\" (see --help)\n", k.c_str());
      return 2;
    }
    a[k.substr(2)] = argv[++i];
  }
  for (auto* need : {"endpoint", "id", "run", "stage", "plugin", "config", "data-dir"})
    if (!a.count(need)) {
      std::fprintf(stderr, "evald-worker: --%s is required (see --help)\n", need);
      return 2;
    }
  auto logger = spdlog::stderr_color_mt("evald-worker");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l worker=" + a["id"] + " pid=%P %v");
  logger->set_level(spdlog::level::from_str(a.count("log-level") ? a["log-level"] : "info"));
  spdlog::set_default_logger(logger);
  std::signal(SIGTERM, [](int) { ProcessServices::terminating_ = 1; });

  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::routing_id, a["id"]);
  sock.set(zmq::sockopt::linger, 1000);
  sock.connect(a["endpoint"]);
  auto broken = [&](const std::string& why) {
    Value f;
    f.set("t", "BROKEN");
    f.set("error", why);
    Bytes b = msgpack::encode(f);
    sock.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none);
    spdlog::error("{}", why);
    return 1;
  };

  std::ifstream in(a["config"], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::error_code ec;
  std::filesystem::remove(a["config"], ec);
  auto config = msgpack::decode(ss.str());
  if (!in || !config) return broken(a["config"] + ": cannot read the stage config");
  auto lib = load_plugin_library(a["plugin"]);
  if (!lib) return broken(lib.error());

  ProcessServices services(sock);
  run_worker(sock, {a["id"], a["run"], a["stage"]}, std::move(*lib), *config, a["data-dir"], services);
  return 0;
}
