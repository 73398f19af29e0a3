// The control API: msgpack requests {op, actor, ...} answered with {ok, result} or
// {ok: false, error}. ControlApi holds the logic (thread-safe, testable without sockets);
// ControlServer serves it on a ZeroMQ REP socket that only the daemon's user (and an
// optional group) can reach. Every state-changing request is written to the audit log with
// its actor.
#pragma once

#include "audit.hpp"
#include "config.hpp"
#include "engine.hpp"
#include "intake.hpp"
#include "pipeline.hpp"
#include "plugin_registry.hpp"
#include "store.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace zmq {
class context_t;
class socket_t;
}

namespace evald::daemon {

// Who made a request, for the audit log: the verified user of an ipc peer (uid and pid
// from the kernel) with the declared actor, or the declared actor and the peer address.
std::string describe_actor(const std::string& declared, const std::string& peer);

class ControlApi {
 public:
  ControlApi(const DaemonConfig& config, Store& store, AuditLog& audit, const PluginRegistry& plugins,
             Engine& engine, std::function<void()> request_shutdown);

  // Loads the pipelines stored by earlier `pipeline.load` requests and those the config
  // names. Problems are logged and returned, one per line; valid pipelines still load.
  Status load_pipelines();
  // Re-reads every pipeline that came from a file (SIGHUP). Invalid files keep the
  // previous definition; the errors are logged and returned.
  Status reload_pipelines(const std::string& actor);

  // Starts the runs of schedules that are due at now_ms (see schedule.hpp) and moves each to
  // its next time. Called every second by the daemon; returns the runs started.
  std::vector<std::string> fire_due_schedules(int64_t now_ms);

  // Answers one request. Never throws. peer is what the transport says about the client
  // (ZeroMQ's Peer-Address: "host:uid:gid:pid" over ipc, the address over tcp); the audit
  // log records it beside the actor the request declares.
  Value handle(const Value& request, const std::string& peer = {});
  // Decodes (with size and depth limits), handles and encodes. Malformed input gets an
  // error reply naming the offset.
  Bytes handle_bytes(const uint8_t* data, size_t size, const std::string& peer = {});

 private:
  Result<Value> dispatch(const std::string& op, const Value& req, const std::string& actor);
  Result<Value> pipeline_load(const Value& req, const std::string& actor);
  Result<Value> run_start(const Value& req, const std::string& actor);
  Status plan_reuse(const Value& req, const std::string& from, const PipelineSpec& spec, RunRequest& rr) const;
  Result<Value> round_create(const Value& req, const std::string& actor);
  Result<Value> entrant_add(const Value& req, const std::string& actor);
  // call.open / call.close: an additional call for a later round.
  Result<Value> call_open_close(const std::string& op, const Value& req, const std::string& actor);
  Result<Value> round_decide(const Value& req, const std::string& actor);
  Result<Value> competition_report(const Value& req);
  Result<Value> schedule_add(const Value& req, const std::string& actor);
  Result<Value> competition_define(const Value& req, const std::string& actor);
  // Creates round `id` of a defined competition (roster from the advancers of its `from`
  // round, rules and schedule from the definition) unless it exists; adds its schedule if a
  // restart came between the two. Caller holds no lock.
  Result<Value> ensure_defined_round(const std::string& comp, const Value& round_def, const std::string& actor);
  Status commit(Store::Batch& b, const std::string& actor, const std::string& action, const Value& detail);
  std::shared_ptr<const PipelineSpec> pipeline(const std::string& name) const;

  const DaemonConfig& config_;
  Store& store_;
  AuditLog& audit_;
  const PluginRegistry& plugins_;
  Engine& engine_;
  std::function<void()> request_shutdown_;
  int64_t started_ms_;
  mutable std::mutex mu_;  // pipelines_ and read-modify-write of entity records
  std::map<std::string, std::shared_ptr<const PipelineSpec>> pipelines_;
  Intake intake_;
};

class ControlServer {
 public:
  ControlServer(ControlApi& api, const DaemonConfig& config);
  ~ControlServer();
  // Binds the endpoint and restricts the ipc socket file; fails with the reason.
  Status start();
  // Safe without start and twice.
  void stop();

 private:
  void serve();
  ControlApi& api_;
  const DaemonConfig& config_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::unique_ptr<zmq::socket_t> sock_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace evald::daemon
