// A stage worker: one plugin instance behind one DEALER socket, speaking the worker
// protocol (READY or BROKEN, then JOB in; EMIT, PROGRESS, DONE or FAILED out). The same loop
// runs as a thread of the daemon or as the evald-worker process; WorkerServices is what
// differs between the two.
#pragma once

#include "plugin_registry.hpp"

#include <evald/value.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace zmq {
class socket_t;
class message_t;
}  // namespace zmq

namespace evald::daemon {

// Plugin state and cancellation as a worker reaches them: directly in the daemon's store
// (thread), or through the broker (process).
class WorkerServices {
 public:
  virtual ~WorkerServices() = default;
  // Keys are already scoped to the plugin.
  virtual Result<std::optional<std::string>> kv_get(const std::string& key) = 0;
  virtual Status kv_put(const std::string& key, std::string_view value) = 0;
  virtual Status kv_del(const std::string& key) = 0;
  // Intake records under a full key prefix (see intake.hpp), in key order, until fn returns
  // false.
  virtual Status intake_scan(const std::string& prefix, const std::function<bool(std::string_view value)>& fn) = 0;
  // Whether the job dispatched with this serial should stop.
  virtual bool cancelled(uint64_t serial) = 0;
  // The next frame for the worker loop; false when the socket is gone.
  virtual bool next_frame(zmq::socket_t& sock, zmq::message_t& out);
};

struct WorkerIdentity {
  std::string id;  // the DEALER's routing id
  std::string run;
  std::string stage;
};

// Connects sock (already connected) to the plugin and serves jobs until STOP or the end of
// the socket. Creates, starts, stops and destroys the plugin instance.
void run_worker(zmq::socket_t& sock, const WorkerIdentity& who, std::shared_ptr<const PluginLibrary> lib,
                const Value& config, const std::filesystem::path& data_dir, WorkerServices& services);

// Worker frames are msgpack maps; these bound what a corrupt frame can make a decoder do.
extern const msgpack::Limits kWorkerFrameLimits;

}  // namespace evald::daemon
