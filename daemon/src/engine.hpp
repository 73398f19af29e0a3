// Engine: the pipeline engine. A broker thread owns a ZeroMQ ROUTER and is the only writer of
// run state; stage workers (threads, each a DEALER with its own plugin instance) receive JOB
// frames and answer with EMIT, PROGRESS and one DONE or FAILED per job. Everything a job
// produces is written to the store in one synced batch (several jobs' results share one WAL
// sync) before any of it is routed downstream. After a crash, runs resume from the store.
#pragma once

#include "audit.hpp"
#include "pipeline.hpp"
#include "store.hpp"

#include <evald/message.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zmq {
class context_t;
}

namespace evald::daemon {

struct EngineOptions {
  std::filesystem::path data_dir;
  // How long a drain (SIGTERM) waits for in-flight jobs before leaving them to be
  // re-dispatched at the next start.
  int drain_timeout_s = 30;
  // The evald-worker binary that runs stages with `isolation: process`.
  std::filesystem::path worker_binary;
};

// What a run is started from: resolved by the caller from competition, round and entrants.
struct RunRequest {
  std::string competition;
  std::string round;
  Value round_info;                 // {id, competition, pipeline, ...}
  std::vector<Value> entrants;      // each {id, name, submission}
  std::shared_ptr<const PipelineSpec> pipeline;
  std::string actor;
  // Stages whose finished jobs are taken from reuse_run (same pipeline and submissions,
  // checked by the caller) instead of run again: their stored outputs are copied, each such
  // job recording reused_from. Empty: every stage runs.
  std::string reuse_run;
  std::vector<std::string> reuse_stages;
};

class Engine {
 public:
  Engine(Store& store, AuditLog& audit, const PluginRegistry& plugins, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Resumes unfinished runs from the store and starts the broker thread.
  Status start();
  // Creates a run and its first jobs. Thread-safe; returns the run id.
  Result<std::string> start_run(RunRequest request);
  // Stops dispatching; with drain, waits up to drain_timeout_s for in-flight jobs. Returns
  // at once; wait() blocks until the broker has stopped. Safe without start and twice.
  void stop(bool drain = true);
  void wait();
  bool running() const { return running_.load(); }

  // A run's record with per-stage counters (in, out, queued, running, done, failed,
  // skipped, retried) and its jobs, from the store; live progress of running jobs from
  // memory. Thread-safe.
  Result<Value> run_status(const std::string& run_id) const;
  // Output messages of a run (optionally one stage), in key order. Thread-safe.
  Result<std::vector<Message>> run_outputs(const std::string& run_id, const std::string& stage = {}) const;
  // The GPUs jobs of stages with `gpus: N` lease, each held by one job at a time unless share;
  // note says where the list came from (shown when a stage needs more than there are). Set
  // before start().
  void set_gpu_pool(std::vector<int> gpus, bool share, std::string note) {
    gpus_ = std::move(gpus);
    gpu_share_ = share;
    gpu_note_ = std::move(note);
  }
  // Calls fn when a run reaches a final state (from the broker thread). Set before start().
  void on_run_finished(std::function<void(const std::string& run_id)> fn) { finished_cb_ = std::move(fn); }


  struct Broker;  // implementation, in engine.cpp

 private:
  // The broker, for other threads (the control API): null until start() has published it
  // (running_ is set after broker_) and once its thread has ended.
  Broker* live_broker() const;

  Store& store_;
  AuditLog& audit_;
  const PluginRegistry& plugins_;
  EngineOptions opt_;
  std::unique_ptr<zmq::context_t> zmq_;
  std::unique_ptr<Broker> broker_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::function<void(const std::string&)> finished_cb_;
  std::vector<int> gpus_;
  bool gpu_share_ = false;
  std::string gpu_note_;

  friend struct Broker;
};

}  // namespace evald::daemon
