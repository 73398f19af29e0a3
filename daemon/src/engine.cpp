#include "engine.hpp"

#include "worker.hpp"

#include "util.hpp"

#include <spdlog/spdlog.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.hpp>

#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <set>

extern char** environ;

namespace evald::daemon {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kRoundUnit = "_round";
constexpr size_t kMaxFramesPerTurn = 4096;

// Wire frames between broker and workers are msgpack maps; these limits bound what a
// corrupt or hostile frame can make the decoder allocate.
const msgpack::Limits& kFrameLimits = kWorkerFrameLimits;

enum class JobState { Pending, Running, Done, Failed, Skipped };

const char* state_name(JobState s) {
  switch (s) {
    case JobState::Pending: return "pending";
    case JobState::Running: return "running";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Skipped: return "skipped";
  }
  return "?";
}

JobState parse_state(const std::string& s) {
  if (s == "running") return JobState::Running;
  if (s == "done") return JobState::Done;
  if (s == "failed") return JobState::Failed;
  if (s == "skipped") return JobState::Skipped;
  return JobState::Pending;
}

bool terminal(JobState s) { return s == JobState::Done || s == JobState::Failed || s == JobState::Skipped; }

void send_frame(zmq::socket_t& s, const Value& v) {
  Bytes b = msgpack::encode(v);
  s.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none);
}

void send_to(zmq::socket_t& router, const std::string& id, const Value& v) {
  Bytes b = msgpack::encode(v);
  router.send(zmq::buffer(id), zmq::send_flags::sndmore);
  router.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none);
}

spdlog::level::level_enum spd_level(int l) {
  switch (l) {
    case EVALD_LOG_TRACE: return spdlog::level::trace;
    case EVALD_LOG_DEBUG: return spdlog::level::debug;
    case EVALD_LOG_INFO: return spdlog::level::info;
    case EVALD_LOG_WARN: return spdlog::level::warn;
    default: return spdlog::level::err;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Worker: one thread, one DEALER, one plugin instance.

struct WorkerRt {
  std::string id;
  std::string run;
  std::string stage;
  std::thread thread;
  std::atomic<uint64_t> cancel_serial{0};
  std::atomic<bool> exited{false};
  zmq::socket_t* router = nullptr;  // the broker socket it is reached on
  pid_t pid = -1;                    // an evald-worker process; -1 for a thread
  // When the process was seen to end: what it sent before dying may still be in flight,
  // so its death is acted on only after a short grace.
  std::optional<Clock::time_point> died_at;
  int exit_status = 0;
  bool ready = false;
  bool lost = false;  // timed out inside the plugin; its thread may never come back
  // Jobs sent and not yet answered, in the order the worker runs them: the front one is
  // running, the others wait in its socket. Prefetching keeps a worker busy while the
  // broker syncs, so one WAL sync covers many jobs.
  struct Sent {
    std::string key;  // stage/unit
    uint64_t serial;
    std::vector<int> gpus;  // leased from the pool while the job is with the worker
  };
  std::deque<Sent> inflight;
};

namespace {

struct HostCtx {
  zmq::socket_t* sock = nullptr;
  WorkerServices* services = nullptr;
  const PluginLibrary* lib = nullptr;
  fs::path data_dir;
  bool in_job = false;
  std::string run, key, log_tag;
  std::string intake_scope;  // "<competition>/<round>/" of the job's run
  int64_t attempt = 0;
  uint64_t serial = 0;
  int64_t emitted = 0;
  // Emitted messages not yet sent: they travel with DONE, or in an EMIT frame once they
  // pass kEmitBatchBytes, so a job with small outputs costs the broker one frame.
  Array unsent;
  size_t unsent_bytes = 0;
  std::string scratch, artifacts;
  Clock::time_point last_progress{};
};

HostCtx& hc(evald_ctx* c) { return *reinterpret_cast<HostCtx*>(c); }
std::string bytes_str(evald_bytes b) { return {reinterpret_cast<const char*>(b.data), b.size}; }

void host_log(evald_ctx* c, int level, const char* msg, size_t len) {
  auto& h = hc(c);
  spdlog::log(spd_level(level), "plugin={} {}msg=\"{}\"", h.lib->name, h.log_tag, std::string_view(msg, len));
}

constexpr size_t kEmitBatchBytes = 1u << 20;

// A frame about the job h runs: {t, run, key, attempt} plus what the caller adds.
Value job_frame(const HostCtx& h, const char* type) {
  Value f;
  f.set("t", type);
  f.set("run", h.run);
  f.set("key", h.key);
  f.set("attempt", h.attempt);
  return f;
}

// Sends the buffered outputs as one EMIT frame.
bool flush_emits(HostCtx& h) {
  if (h.unsent.empty()) return true;
  Value f = job_frame(h, "EMIT");
  f.set("msgs", std::move(h.unsent));
  h.unsent = Array{};
  h.unsent_bytes = 0;
  try {
    send_frame(*h.sock, f);
  } catch (const zmq::error_t&) {
    return false;
  }
  return true;
}

int host_emit(evald_ctx* c, const char* kind, size_t kind_len, uint32_t ver, evald_bytes payload) {
  auto& h = hc(c);
  if (!h.in_job) return EVALD_ERR_INVALID;
  Value m;
  m.set("kind", std::string(kind, kind_len));
  m.set("v", int64_t(ver));
  m.set("payload", Bytes(payload.data, payload.data + payload.size));
  h.unsent.push_back(std::move(m));
  h.unsent_bytes += payload.size + kind_len + 16;
  ++h.emitted;
  if (h.unsent_bytes >= kEmitBatchBytes && !flush_emits(h)) return EVALD_ERR_IO;
  return EVALD_OK;
}

std::string kv_key(const HostCtx& h, evald_bytes key) { return h.lib->name + "/" + bytes_str(key); }

int host_kv_get(evald_ctx* c, evald_bytes key, evald_sink_fn sink, void* sink_ctx) {
  auto& h = hc(c);
  auto v = h.services->kv_get(kv_key(h, key));
  if (!v) return EVALD_ERR_IO;
  if (!*v) return EVALD_NOT_FOUND;
  auto& s = **v;
  sink(sink_ctx, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  return EVALD_OK;
}

int host_kv_put(evald_ctx* c, evald_bytes key, evald_bytes value) {
  auto& h = hc(c);
  return h.services->kv_put(kv_key(h, key), bytes_str(value)) ? EVALD_OK : EVALD_ERR_IO;
}

int host_kv_delete(evald_ctx* c, evald_bytes key) {
  auto& h = hc(c);
  return h.services->kv_del(kv_key(h, key)) ? EVALD_OK : EVALD_ERR_IO;
}

int host_intake_scan(evald_ctx* c, const char* channel, size_t len, evald_sink_fn sink, void* sink_ctx) {
  auto& h = hc(c);
  if (!h.in_job || h.intake_scope.empty()) return EVALD_ERR_INVALID;
  std::string ch(channel, len);
  if (!valid_id(ch)) return EVALD_ERR_INVALID;
  auto st = h.services->intake_scan("r/" + h.intake_scope + ch + "/", [&](std::string_view v) {
    sink(sink_ctx, {reinterpret_cast<const uint8_t*>(v.data()), v.size()});
    return true;
  });
  return st ? EVALD_OK : EVALD_ERR_IO;
}

int host_cancelled(evald_ctx* c) {
  auto& h = hc(c);
  return h.in_job && h.services->cancelled(h.serial) ? 1 : 0;
}

void host_progress(evald_ctx* c, double done, double total) {
  auto& h = hc(c);
  if (!h.in_job) return;
  auto now = Clock::now();
  if (done < total && now - h.last_progress < std::chrono::milliseconds(200)) return;
  h.last_progress = now;
  Value f = job_frame(h, "PROGRESS");
  f.set("done", done);
  f.set("total", total);
  try {
    send_frame(*h.sock, f);
  } catch (const zmq::error_t&) {
  }
}

const char* ensure_dir(std::string& path, const fs::path& want) {
  if (path.empty()) {
    std::error_code ec;
    fs::create_directories(want, ec);
    path = want.string();
  }
  return path.c_str();
}

const char* host_scratch(evald_ctx* c) {
  auto& h = hc(c);
  return ensure_dir(h.scratch, h.data_dir / "scratch" / (h.in_job ? h.run + "/" + h.key : "plugin/" + h.lib->name));
}

const char* host_artifacts(evald_ctx* c) {
  auto& h = hc(c);
  return ensure_dir(h.artifacts, h.data_dir / "artifacts" / (h.in_job ? h.run + "/" + h.key : "plugin/" + h.lib->name));
}

const evald_host_api kHostApi = {EVALD_ABI_MAJOR, EVALD_ABI_MINOR, sizeof(evald_host_api), &host_log,
                                 &host_emit, &host_kv_get, &host_kv_put, &host_kv_delete, &host_cancelled,
                                 &host_progress, &host_scratch, &host_artifacts, &host_intake_scan};

}  // namespace

const msgpack::Limits kWorkerFrameLimits{256u << 20, 64, 128u << 20, 1u << 22};

bool WorkerServices::next_frame(zmq::socket_t& sock, zmq::message_t& out) {
  try {
    while (!sock.recv(out)) {
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;  // context terminated
  }
}

void run_worker(zmq::socket_t& sock, const WorkerIdentity& who, std::shared_ptr<const PluginLibrary> lib,
                const Value& config, const fs::path& data_dir, WorkerServices& services) {
  HostCtx plugin_ctx;
  plugin_ctx.sock = &sock;
  plugin_ctx.services = &services;
  plugin_ctx.lib = lib.get();
  plugin_ctx.data_dir = data_dir;
  plugin_ctx.log_tag = "stage=" + who.stage + " run=" + who.run + " ";

  const evald_plugin_api* api = lib->api;
  Bytes cfg = msgpack::encode(config);
  evald_error err{};
  void* inst = api->create(&kHostApi, reinterpret_cast<evald_ctx*>(&plugin_ctx), {cfg.data(), cfg.size()}, &err);
  bool started = inst && api->start(inst, &err) == EVALD_OK;
  Value hello;
  if (started) {
    hello.set("t", "READY");
    hello.set("plugin", lib->name);
    hello.set("version", lib->version);
    hello.set("capacity", 1);
  } else {
    hello.set("t", "BROKEN");
    hello.set("error", std::string(inst ? "start failed: " : "create failed: ") + err.message);
  }
  send_frame(sock, hello);

  while (true) {
    zmq::message_t msg;
    if (!services.next_frame(sock, msg)) break;
    auto f = msgpack::decode(static_cast<const uint8_t*>(msg.data()), msg.size(), kFrameLimits);
    if (!f) {
      spdlog::error("worker={} dropped a corrupt frame from the broker: {}", who.id, f.error());
      continue;
    }
    std::string t = f->get_string("t");
    if (t == "STOP") break;
    if (t != "JOB" || !started) continue;
    HostCtx job_ctx = plugin_ctx;
    job_ctx.in_job = true;
    job_ctx.run = f->get_string("run");
    job_ctx.key = f->get_string("key");
    job_ctx.intake_scope = f->get_string("scope");
    job_ctx.attempt = f->get_int("attempt");
    job_ctx.serial = uint64_t(f->get_int("serial"));
    job_ctx.scratch.clear();
    job_ctx.artifacts.clear();
    job_ctx.log_tag = "run=" + job_ctx.run + " job=" + job_ctx.key + " attempt=" + std::to_string(job_ctx.attempt) + " ";
    auto* body = f->find("body");
    evald_error jerr{};
    int rc = EVALD_ERR;
    if (body && body->is_binary()) {
      auto& b = body->as_binary();
      auto fn = f->get_bool("barrier") ? api->finish : api->process;
      rc = fn(inst, reinterpret_cast<evald_ctx*>(&job_ctx), {b.data(), b.size()}, &jerr);
    } else {
      std::snprintf(jerr.message, sizeof jerr.message, "job frame without a body");
    }
    if (!job_ctx.scratch.empty()) {
      std::error_code ec;
      fs::remove_all(job_ctx.scratch, ec);
    }
    Value r = job_frame(job_ctx, rc == EVALD_OK ? "DONE" : "FAILED");
    r.set("emitted", job_ctx.emitted);
    if (rc == EVALD_OK) r.set("msgs", std::move(job_ctx.unsent));  // a failed attempt's outputs are dropped
    else r.set("error", std::string(jerr.message[0] ? jerr.message : "plugin failed without a message"));
    try {
      send_frame(sock, r);
    } catch (const zmq::error_t&) {
      break;
    }
  }
  if (inst) {
    api->stop(inst);
    api->destroy(inst);
  }
}

namespace {

// A worker thread of the daemon: plugin state straight from the store, cancellation
// through an atomic the broker sets.
class ThreadServices : public WorkerServices {
 public:
  ThreadServices(Store& store, WorkerRt& w) : store_(store), w_(w) {}
  Result<std::optional<std::string>> kv_get(const std::string& key) override { return store_.get(Family::PluginState, key); }
  // Not synced: a process crash keeps it (the OS has it); plugin caches tolerate losing
  // the last writes to a power failure.
  Status kv_put(const std::string& key, std::string_view value) override { return store_.put(Family::PluginState, key, value, false); }
  Status kv_del(const std::string& key) override { return store_.del(Family::PluginState, key, false); }
  Status intake_scan(const std::string& prefix, const std::function<bool(std::string_view)>& fn) override {
    return store_.scan(Family::Intake, prefix, [&](std::string_view, std::string_view v) { return fn(v); });
  }
  bool cancelled(uint64_t serial) override { return w_.cancel_serial.load() == serial; }

 private:
  Store& store_;
  WorkerRt& w_;
};

void worker_thread(zmq::context_t& zctx, std::string endpoint, WorkerRt* w, Store* store, fs::path data_dir,
                   std::shared_ptr<const PluginLibrary> lib, Value config) {
  {
    zmq::socket_t sock(zctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::routing_id, w->id);
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(endpoint);
    ThreadServices services(*store, *w);
    run_worker(sock, {w->id, w->run, w->stage}, std::move(lib), config, data_dir, services);
  }
  w->exited = true;
}

}  // namespace

// Messages stored under a key prefix, in key order (job order, then seq).
static Result<std::vector<Message>> read_messages(const Store& store, const std::string& prefix) {
  std::vector<Message> out;
  Status bad;
  auto st = store.scan(Family::Messages, prefix, [&](std::string_view key, std::string_view raw) {
    auto v = msgpack::decode(raw);
    auto m = v ? Message::from_value(*v) : Result<Message>(v.status());
    if (!m) {
      bad = Status::error("corrupt message " + std::string(key) + ": " + m.error());
      return false;
    }
    out.push_back(std::move(*m));
    return true;
  });
  if (!st) return st;
  if (!bad) return bad;
  return out;
}

// ---------------------------------------------------------------------------------------
// Broker

struct JobRt {
  std::string stage, unit;
  JobState state = JobState::Pending;
  int64_t attempt = 0;   // dispatches so far; frames of another attempt are stale
  int64_t failures = 0;  // failed or timed-out attempts (restarts do not count)
  int64_t restarts = 0;  // re-dispatches after a daemon restart
  int64_t inputs = 0, outputs = 0;
  std::string error;
  Array errors;
  std::string created, started, finished;
  Array failed_upstream;
  std::string reused_from;  // the run whose outputs this job took instead of running
  // live only
  Clock::time_point deadline;
  std::string worker;
  std::vector<Bytes> pending_out;  // encoded messages of the running attempt
  // Committed outputs (the stored bytes) kept for the downstream jobs, so dispatch need
  // not read them back; absent after a restart, when they come from the store.
  std::shared_ptr<const std::vector<Bytes>> committed_out;

  std::string key() const { return stage + "/" + unit; }

  // The stored job record: the msgpack of a map, written directly (keys in sorted order)
  // because the broker writes one for every transition of every job.
  Bytes encode(const std::string& run) const {
    using namespace msgpack;
    Bytes out;
    out.reserve(256);
    write_map_header(out, 16);
    write_str(out, "attempt"), write_int(out, attempt);
    write_str(out, "created"), write_str(out, created);
    write_str(out, "error"), write_str(out, error);
    write_str(out, "errors"), encode_to(Value(errors), out);
    write_str(out, "failed_upstream"), encode_to(Value(failed_upstream), out);
    write_str(out, "failures"), write_int(out, failures);
    write_str(out, "finished"), write_str(out, finished);
    write_str(out, "inputs"), write_int(out, inputs);
    write_str(out, "outputs"), write_int(out, outputs);
    write_str(out, "restarts"), write_int(out, restarts);
    write_str(out, "reused_from"), write_str(out, reused_from);
    write_str(out, "run"), write_str(out, run);
    write_str(out, "stage"), write_str(out, stage);
    write_str(out, "started"), write_str(out, started);
    write_str(out, "state"), write_str(out, state_name(state));
    write_str(out, "unit"), write_str(out, unit);
    return out;
  }
  static JobRt from_value(const Value& v) {
    JobRt j;
    j.stage = v.get_string("stage");
    j.unit = v.get_string("unit");
    j.state = parse_state(v.get_string("state"));
    j.attempt = v.get_int("attempt");
    j.failures = v.get_int("failures");
    j.restarts = v.get_int("restarts");
    j.inputs = v.get_int("inputs");
    j.outputs = v.get_int("outputs");
    j.error = v.get_string("error");
    if (auto* e = v.find("errors"); e && e->is_array()) j.errors = e->as_array();
    j.created = v.get_string("created");
    j.started = v.get_string("started");
    j.finished = v.get_string("finished");
    if (auto* f = v.find("failed_upstream"); f && f->is_array()) j.failed_upstream = f->as_array();
    j.reused_from = v.get_string("reused_from");
    return j;
  }
};

struct StageRt {
  const StageSpec* spec = nullptr;
  std::deque<std::string> queue;  // job keys (stage/unit) waiting for a worker
  std::vector<std::string> workers;
  int64_t terminal = 0;
  std::string broken;  // plugin could not be created: every job of the stage fails with this
};

struct RunRt {
  std::string id;
  Value record;
  std::shared_ptr<const PipelineSpec> spec;
  std::vector<std::string> entrant_ids;
  std::map<std::string, Value> entrants;
  std::map<std::string, JobRt> jobs;
  std::map<std::string, StageRt> stages;
  int64_t expected = 0, terminal = 0;
  bool finished = false;
  std::string reuse_run;              // see RunRequest
  std::set<std::string> reuse_stages;
};

struct Engine::Broker {
  Engine& eng;
  zmq::context_t& zctx;
  zmq::socket_t router;
  std::string endpoint;
  // evald-worker processes connect here (ipc under the data dir); absent when it cannot bind.
  std::unique_ptr<zmq::socket_t> prouter;
  std::string process_endpoint, process_error;
  int wake_fd = -1;

  std::mutex task_mu;
  std::deque<std::function<void()>> tasks;

  std::map<std::string, std::unique_ptr<RunRt>> runs;
  std::map<std::string, std::unique_ptr<WorkerRt>> workers;
  std::vector<std::unique_ptr<WorkerRt>> retired;
  uint64_t next_worker = 0, next_serial = 0;
  std::map<int, int> gpu_holders;  // GPU index -> jobs holding it now

  Store::Batch batch;
  Store::Batch soft;  // "running" marks: informative only, written without a sync of their own
  std::vector<std::pair<std::string, Value>> audit_pending;  // action, detail
  std::vector<std::string> finished_runs;
  bool draining = false;
  size_t abandoned = 0;  // worker threads stuck in plugin code at shutdown
  Clock::time_point drain_deadline;
  bool quit = false;
  Clock::time_point paused_until{};

  // The last store write error ("" while writes succeed); set by the broker thread, read by
  // the control thread's run status.
  mutable std::mutex store_error_mu;
  std::string store_error;  // guarded by store_error_mu
  void set_store_error(std::string e) {
    std::lock_guard lk(store_error_mu);
    store_error = std::move(e);
  }
  std::string last_store_error() const {
    std::lock_guard lk(store_error_mu);
    return store_error;
  }

  mutable std::mutex progress_mu;
  std::map<std::string, std::pair<double, double>> progress;  // run/stage/unit -> done,total

  Broker(Engine& e, zmq::context_t& z)
      : eng(e), zctx(z), router(z, zmq::socket_type::router), batch(e.store_), soft(e.store_) {
    static std::atomic<int> n{0};
    endpoint = "inproc://evald-broker-" + std::to_string(n++);
    router.set(zmq::sockopt::router_mandatory, 1);
    router.set(zmq::sockopt::linger, 0);
    router.bind(endpoint);
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    std::string path = (e.opt_.data_dir / "workers.sock").string();
    try {
      std::error_code ec;
      fs::remove(path, ec);  // left by a killed daemon; the store lock proves it is ours
      prouter = std::make_unique<zmq::socket_t>(z, zmq::socket_type::router);
      prouter->set(zmq::sockopt::router_mandatory, 1);
      prouter->set(zmq::sockopt::linger, 0);
      prouter->bind("ipc://" + path);
      process_endpoint = "ipc://" + path;
    } catch (const zmq::error_t& err) {
      prouter.reset();
      process_error = "cannot bind " + path + " for worker processes: " + err.what();
    }
  }
  ~Broker() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(task_mu);
      tasks.push_back(std::move(fn));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd, &one, sizeof one);
  }

  // --- run set-up and recovery ------------------------------------------------------

  void install(std::unique_ptr<RunRt> run) {
    for (auto& st : run->spec->stages) {
      auto& rt = run->stages[st.id];
      rt.spec = &st;
      run->expected += st.per == Per::Entrant ? int64_t(run->entrant_ids.size()) : 1;
    }
    for (auto& [k, j] : run->jobs) {
      if (terminal(j.state)) {
        run->stages[j.stage].terminal++;
        run->terminal++;
      } else {
        run->stages[j.stage].queue.push_back(k);
      }
    }
    advance_all(*run);
    auto& r = *run;
    runs[r.id] = std::move(run);
    for (auto& st : r.spec->stages)
      for (int i = 0; i < st.workers; ++i) spawn_worker(r, st);
    check_finished(r);
  }

  void spawn_worker(RunRt& run, const StageSpec& st) {
    auto w = std::make_unique<WorkerRt>();
    w->id = "w" + std::to_string(++next_worker);
    w->run = run.id;
    w->stage = st.id;
    auto* raw = w.get();
    if (st.isolation == Isolation::Process) {
      auto pid = spawn_process(*w, st);
      if (!pid) {
        auto& srt = run.stages[st.id];
        if (srt.broken.empty()) spdlog::error("run={} stage={} {}", run.id, st.id, pid.error());
        srt.broken = pid.error();
        return;
      }
      w->pid = *pid;
      w->router = prouter.get();
    } else {
      w->router = &router;
      w->thread = std::thread(worker_thread, std::ref(zctx), endpoint, raw, &eng.store_, eng.opt_.data_dir, st.library,
                              st.config);
    }
    run.stages[st.id].workers.push_back(w->id);
    workers[w->id] = std::move(w);
  }

  // Starts an evald-worker process for the stage: the plugin then runs outside the daemon,
  // so a crash fails its job instead of the daemon.
  Result<pid_t> spawn_process(const WorkerRt& w, const StageSpec& st) {
    if (!prouter) return Status::error(process_error);
    if (eng.opt_.worker_binary.empty()) return Status::error("no evald-worker binary configured for isolation: process");
    fs::path dir = eng.opt_.data_dir / "workers";
    std::error_code ec;
    fs::create_directories(dir, ec);
    fs::path cfg = dir / (w.id + ".config");
    Bytes b = msgpack::encode(st.config);
    {
      std::ofstream f(cfg, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
      if (!f) return Status::error("cannot write " + cfg.string());
    }
    std::vector<std::string> args = {eng.opt_.worker_binary.string(), "--endpoint", process_endpoint, "--id", w.id,
                                     "--run", w.run, "--stage", w.stage, "--plugin", st.library->path.string(),
                                     "--config", cfg.string(), "--data-dir", eng.opt_.data_dir.string(),
                                     "--log-level", spdlog::level::to_string_view(spdlog::get_level()).data()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
    if (rc != 0) return Status::error("cannot start " + args[0] + ": " + std::strerror(rc));
    return pid;
  }

  static std::string exit_text(int status) {
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
    return "status " + std::to_string(status);
  }

  // A worker process that ended without being asked to: its running job fails (a retry
  // gets a fresh process), the jobs queued behind it go back to their stage.
  void on_process_exit(WorkerRt& w, int status) {
    w.exited = true;
    if (w.lost) return;
    auto rit = runs.find(w.run);
    std::string why = "worker process " + std::to_string(w.pid) + " died: " + exit_text(status);
    if (rit == runs.end()) return;
    RunRt& run = *rit->second;
    auto& srt = run.stages[w.stage];
    auto& ids = srt.workers;
    ids.erase(std::remove(ids.begin(), ids.end(), w.id), ids.end());
    if (!w.ready) {
      // It never got as far as loading the plugin: do not respawn in a loop.
      if (srt.broken.empty()) spdlog::error("run={} stage={} {} before it was ready", run.id, w.stage, why);
      srt.broken = why + " before it was ready";
      return;
    }
    spdlog::error("run={} stage={} {}", run.id, w.stage, why);
    if (!w.inflight.empty()) {
      auto head = w.inflight.front();
      release_gpus(head);
      w.inflight.pop_front();
      requeue(w, run);
      fail_attempt(run, run.jobs.at(head.key), why);
    }
    if (!draining && !run.finished) spawn_worker(run, *srt.spec);
  }

  std::unique_ptr<RunRt> make_run(const std::string& id, const Value& record, std::shared_ptr<const PipelineSpec> spec) {
    auto run = std::make_unique<RunRt>();
    run->id = id;
    run->record = record;
    run->spec = std::move(spec);
    run->record.set("stages", [&] {
      Array a;
      for (auto& s : run->spec->stages) a.push_back(s.id);
      return a;
    }());
    if (auto* es = record.find("entrants"); es && es->is_array())
      for (auto& e : es->as_array()) {
        auto eid = e.get_string("id");
        run->entrant_ids.push_back(eid);
        run->entrants[eid] = e;
      }
    if (auto* reuse = record.find("reuse"); reuse && reuse->is_map()) {
      run->reuse_run = reuse->get_string("run");
      if (auto* st = reuse->find("stages"); st && st->is_array())
        for (auto& x : st->as_array()) run->reuse_stages.insert(x.as_string());
    }
    return run;
  }

  void recover() {
    std::vector<std::pair<std::string, Value>> open;
    auto st = eng.store_.scan(Family::Runs, "", [&](std::string_view key, std::string_view raw) {
      auto v = msgpack::decode(raw);
      if (!v) {
        spdlog::error("run record {} is corrupt and is skipped: {}", key, v.error());
        return true;
      }
      if (v->get_string("state") == "running") open.emplace_back(std::string(key), std::move(*v));
      return true;
    });
    if (!st) spdlog::error("cannot scan runs: {}", st.message());
    for (auto& entry : open) {
      const std::string& id = entry.first;
      Value& record = entry.second;
      auto* pv = record.find("pipeline");
      auto spec = parse_pipeline(pv ? pv->get_string("yaml") : "", pv ? pv->get_string("source") : id, eng.plugins_);
      if (!spec) {
        fail_unrecoverable(id, record, "cannot resume: pipeline no longer validates: " + spec.error());
        continue;
      }
      auto run = make_run(id, record, std::make_shared<const PipelineSpec>(std::move(*spec)));
      (void)eng.store_.scan(Family::Jobs, id + "/", [&](std::string_view, std::string_view raw) {
        auto v = msgpack::decode(raw);
        if (!v) return true;
        JobRt j = JobRt::from_value(*v);
        if (j.state == JobState::Running) {
          j.state = JobState::Pending;
          j.restarts++;
          j.errors.push_back(Value("attempt " + std::to_string(j.attempt) + " interrupted by a daemon restart"));
          Bytes b = j.encode(id);
          batch.put(Family::Jobs, id + "/" + j.key(), std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
        }
        run->jobs[j.key()] = std::move(j);
        return true;
      });
      spdlog::info("run={} resumed: {} jobs in the store", id, run->jobs.size());
      install(std::move(run));
    }
  }

  void fail_unrecoverable(const std::string& id, Value record, const std::string& why) {
    spdlog::error("run={} {}", id, why);
    record.set("state", "failed");
    record.set("error", why);
    record.set("finished", now_iso8601());
    batch.put(Family::Runs, id, record);
  }

  // --- job graph ------------------------------------------------------------------------

  std::string unit_of(const StageSpec& s, const std::string& entrant) const {
    return s.per == Per::Entrant ? entrant : kRoundUnit;
  }

  void put_job(RunRt& run, const JobRt& j, Store::Batch* into = nullptr) {
    Bytes b = j.encode(run.id);
    (into ? *into : batch).put(Family::Jobs, run.id + "/" + j.key(), std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  }

  // Creates job stage/unit if all it depends on is final and it does not exist yet.
  void try_create(RunRt& run, const StageSpec& st, const std::string& unit) {
    std::string key = st.id + "/" + unit;
    if (run.jobs.count(key)) return;
    Array failed;
    for (auto& a : st.after) {
      const StageSpec& up = *run.spec->stage(a);
      if (up.per == Per::Entrant && st.per == Per::Round) {
        if (run.stages[a].terminal < int64_t(run.entrant_ids.size())) return;
        for (auto& e : run.entrant_ids) {
          auto& uj = run.jobs.at(a + "/" + e);
          if (uj.state != JobState::Done) failed.push_back(failure(uj));
        }
      } else {
        auto it = run.jobs.find(a + "/" + (up.per == Per::Entrant ? unit : std::string(kRoundUnit)));
        if (it == run.jobs.end() || !terminal(it->second.state)) return;
        if (it->second.state != JobState::Done) failed.push_back(failure(it->second));
      }
    }
    if (run.reuse_stages.count(st.id) && reuse(run, st, unit)) return;
    JobRt j;
    j.stage = st.id;
    j.unit = unit;
    j.created = now_iso8601();
    j.failed_upstream = failed;
    if (st.per == Per::Entrant && !failed.empty()) {
      auto& f = failed.front();
      j.state = JobState::Skipped;
      j.error = "skipped: upstream " + f.get_string("stage") + "/" + unit + " " + f.get_string("error");
      j.finished = j.created;
      put_job(run, j);
      run.jobs[key] = std::move(j);
      on_terminal(run, run.jobs[key]);
      return;
    }
    put_job(run, j);
    run.jobs[key] = std::move(j);
    run.stages[st.id].queue.push_back(key);
  }

  // Takes job stage/unit as the reuse run finished it: its stored outputs copied under this
  // run, in the same write as the job. False (the job then runs) when that job did not
  // finish there or cannot be read.
  bool reuse(RunRt& run, const StageSpec& st, const std::string& unit) {
    const std::string key = st.id + "/" + unit;
    auto src = eng.store_.get_value(Family::Jobs, run.reuse_run + "/" + key);
    if (!src || !*src || (*src)->get_string("state") != "done") {
      spdlog::warn("run={} job={} runs anew: it did not finish in {}", run.id, key, run.reuse_run);
      return false;
    }
    auto out = std::make_shared<std::vector<Bytes>>();
    std::vector<std::pair<std::string, Bytes>> copies;
    const std::string prefix = run.reuse_run + "/" + key + "/";
    auto st_scan = eng.store_.scan(Family::Messages, prefix, [&](std::string_view k, std::string_view raw) {
      copies.emplace_back(run.id + "/" + key + "/" + std::string(k.substr(prefix.size())), Bytes(raw.begin(), raw.end()));
      return true;
    });
    if (!st_scan) {
      spdlog::warn("run={} job={} runs anew: {}", run.id, key, st_scan.message());
      return false;
    }
    JobRt j = JobRt::from_value(**src);
    j.attempt = j.failures = j.restarts = 0;
    j.errors.clear();
    j.error.clear();
    j.created = j.started = j.finished = now_iso8601();
    j.reused_from = run.reuse_run;
    for (auto& [k, b] : copies) {
      batch.put(Family::Messages, k, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
      out->push_back(std::move(b));
    }
    j.outputs = int64_t(out->size());
    j.committed_out = std::move(out);
    put_job(run, j);
    run.jobs[key] = std::move(j);
    on_terminal(run, run.jobs[key]);
    return true;
  }

  static Value failure(const JobRt& j) {
    Value f;
    f.set("stage", j.stage);
    f.set("entrant", j.unit == kRoundUnit ? std::string() : j.unit);
    f.set("error", std::string(state_name(j.state)) + ": " + j.error);
    return f;
  }

  void advance_all(RunRt& run) {
    for (auto& st : run.spec->stages) {
      if (st.per == Per::Entrant)
        for (auto& e : run.entrant_ids) try_create(run, st, e);
      else
        try_create(run, st, kRoundUnit);
    }
  }

  void on_terminal(RunRt& run, JobRt& j) {
    run.stages[j.stage].terminal++;
    run.terminal++;
    {
      std::lock_guard lock(progress_mu);
      progress.erase(run.id + "/" + j.key());
    }
    std::string stage = j.stage, unit = j.unit;
    for (auto* d : run.spec->downstream(stage)) {
      if (d->per == Per::Round) {
        try_create(run, *d, kRoundUnit);
      } else if (unit == kRoundUnit) {
        for (auto& e : run.entrant_ids) try_create(run, *d, e);
      } else {
        try_create(run, *d, unit);
      }
    }
    check_finished(run);
  }

  void fail_attempt(RunRt& run, JobRt& j, const std::string& error) {
    j.failures++;
    j.errors.push_back(Value("attempt " + std::to_string(j.attempt) + ": " + error));
    j.error = error;
    j.pending_out.clear();
    j.worker.clear();
    const StageSpec& st = *run.spec->stage(j.stage);
    if (j.failures <= st.retries && run.stages[j.stage].broken.empty()) {
      spdlog::warn("run={} job={} attempt={} failed, retrying ({} of {}): {}", run.id, j.key(), j.attempt,
                   j.failures, st.retries, error);
      j.state = JobState::Pending;
      put_job(run, j);
      run.stages[j.stage].queue.push_back(j.key());
      return;
    }
    spdlog::error("run={} job={} failed after {} attempt(s): {}", run.id, j.key(), j.attempt, error);
    j.state = JobState::Failed;
    j.finished = now_iso8601();
    put_job(run, j);
    on_terminal(run, j);
  }

  void check_finished(RunRt& run) {
    if (run.finished || run.terminal < run.expected) return;
    run.finished = true;
    int64_t failed = 0;
    for (auto& [_, j] : run.jobs) failed += j.state != JobState::Done;
    run.record.set("state", failed ? "failed" : "done");
    run.record.set("failed_jobs", failed);
    run.record.set("finished", now_iso8601());
    batch.put(Family::Runs, run.id, run.record);
    Value d;
    d.set("run", run.id);
    d.set("state", run.record.get_string("state"));
    d.set("failed_jobs", failed);
    audit_pending.emplace_back("run.finished", d);
    finished_runs.push_back(run.id);
  }

  // --- frames from workers --------------------------------------------------------------

  WorkerRt* worker(const std::string& id) {
    auto it = workers.find(id);
    return it == workers.end() ? nullptr : it->second.get();
  }

  // Plugin state for a worker process, which cannot open the store itself.
  void serve_kv(WorkerRt& w, zmq::socket_t& from, const Value& f) {
    Value r;
    r.set("t", "KV_REPLY");
    r.set("n", f.get_int("n"));
    std::string op = f.get_string("op"), key = f.get_string("key");
    Status st;
    if (op == "get") {
      auto v = eng.store_.get(Family::PluginState, key);
      st = v.status();
      if (v && *v) r.set("value", Bytes((*v)->begin(), (*v)->end()));
    } else if (op == "put") {
      auto* v = f.find("value");
      st = v && v->is_binary()
               ? eng.store_.put(Family::PluginState, key, std::string_view(reinterpret_cast<const char*>(v->as_binary().data()), v->as_binary().size()), false)
               : Status::error("put without a value");
    } else if (op == "del") {
      st = eng.store_.del(Family::PluginState, key, false);
    } else if (op == "intake_scan") {
      // Paged: a reply carries up to kScanPageBytes; the worker asks again from "next".
      constexpr size_t kScanPageBytes = 4u << 20;
      if (!key.starts_with("r/")) {
        st = Status::error("intake_scan outside the intake records");
      } else {
        Array values;
        size_t bytes = 0;
        std::string next;
        st = eng.store_.scan(Family::Intake, key, [&](std::string_view k, std::string_view v) {
          if (bytes >= kScanPageBytes) {
            next = std::string(k);
            return false;
          }
          values.push_back(Bytes(v.begin(), v.end()));
          bytes += v.size();
          return true;
        }, f.get_string("from"));
        r.set("values", std::move(values));
        if (!next.empty()) r.set("next", next);
      }
    } else {
      st = Status::error("unknown KV op \"" + op + "\"");
    }
    r.set("ok", st.ok());
    if (!st) r.set("error", st.message());
    try {
      send_to(from, w.id, r);
    } catch (const zmq::error_t&) {
    }
  }

  void handle(const std::string& wid, const zmq::message_t& msg, zmq::socket_t& from) {
    auto f = msgpack::decode(static_cast<const uint8_t*>(msg.data()), msg.size(), kFrameLimits);
    if (!f || !f->is_map()) {
      spdlog::error("broker dropped a corrupt frame from {}: {}", wid.empty() ? "?" : wid,
                    f ? "not a map" : f.error());
      return;
    }
    WorkerRt* w = worker(wid);
    if (!w) {
      // A retired worker may have missed its STOP (sent before it connected): say it again.
      for (auto& r : retired)
        if (r->id == wid) send_stop(*r);
      return;
    }
    std::string t = f->get_string("t");
    if (w->router != &from) {
      spdlog::warn("broker dropped a frame for worker {} that came on the wrong socket", wid);
      return;
    }
    if (t == "KV") {
      serve_kv(*w, from, *f);
      return;
    }
    if (t == "READY") {
      if (w->lost) return;
      w->ready = true;
      return;
    }
    if (t == "BROKEN") {
      auto rit = runs.find(w->run);
      if (rit != runs.end()) {
        auto& st = rit->second->stages[w->stage];
        if (st.broken.empty()) spdlog::error("run={} stage={} plugin unusable: {}", w->run, w->stage, f->get_string("error"));
        st.broken = f->get_string("error");
      }
      return;
    }
    auto rit = runs.find(f->get_string("run"));
    if (rit == runs.end()) return;
    RunRt& run = *rit->second;
    auto jit = run.jobs.find(f->get_string("key"));
    if (jit == run.jobs.end()) return;
    JobRt& j = jit->second;
    bool current = j.state == JobState::Running && j.attempt == f->get_int("attempt") && j.worker == wid;
    if (t == "EMIT") {
      if (current) take_outputs(run, j, *f);
      return;
    }
    if (t == "PROGRESS") {
      if (!current) return;
      std::lock_guard lock(progress_mu);
      progress[run.id + "/" + j.key()] = {f->get_double("done"), f->get_double("total")};
      return;
    }
    if (t == "DONE" || t == "FAILED") {
      if (w->lost) {
        // A worker that timed out came back: a replacement already runs, so retire it.
        retire(*w);
        return;
      }
      answered(*w, run, f->get_string("key"));
      if (!current) return;  // late answer of an attempt already given up on
      if (t == "DONE") take_outputs(run, j, *f);
      if (t == "FAILED") {
        fail_attempt(run, j, f->get_string("error"));
        return;
      }
      int64_t seq = 0;
      for (auto& m : j.pending_out) {
        std::string_view raw(reinterpret_cast<const char*>(m.data()), m.size());
        batch.put(Family::Messages, run.id + "/" + j.key() + "/" + zero_pad(uint64_t(seq++), 8), raw);
      }
      j.outputs = int64_t(j.pending_out.size());
      j.committed_out = std::make_shared<const std::vector<Bytes>>(std::move(j.pending_out));
      j.pending_out.clear();
      j.state = JobState::Done;
      j.error.clear();
      j.finished = now_iso8601();
      j.worker.clear();
      put_job(run, j);
      on_terminal(run, j);
    }
  }

  // Appends a frame's emitted messages to the job's outputs. Each payload is checked, then
  // stored as the plugin encoded it: no decode and re-encode.
  void take_outputs(RunRt& run, JobRt& j, const Value& f) {
    auto* msgs = f.find("msgs");
    if (!msgs || !msgs->is_array()) return;
    Envelope env{run.id, run.record.get_string("round"), j.unit == kRoundUnit ? "" : j.unit, j.stage,
                 run.id + "/" + j.key(), j.attempt};
    for (auto& m : msgs->as_array()) {
      auto* p = m.find("payload");
      Status ok = p && p->is_binary() ? msgpack::validate(p->as_binary().data(), p->as_binary().size(), kFrameLimits)
                                      : Status::error("no payload");
      if (!ok) {
        j.errors.push_back(Value("attempt " + std::to_string(j.attempt) + ": dropped malformed emitted payload: " + ok.message()));
        continue;
      }
      auto& payload = p->as_binary();
      j.pending_out.push_back(encode_message(env, m.get_string("kind"), m.get_int("v", 1), int64_t(j.pending_out.size()),
                                             payload.data(), payload.size()));
    }
  }

  // A worker answered (or gave up on) job key: it leaves the worker's queue, and the next
  // one, now running, gets its deadline.
  void answered(WorkerRt& w, RunRt& run, const std::string& key) {
    auto it = std::find_if(w.inflight.begin(), w.inflight.end(), [&](auto& s) { return s.key == key; });
    if (it == w.inflight.end()) return;
    bool was_front = it == w.inflight.begin();
    release_gpus(*it);
    w.inflight.erase(it);
    if (was_front && !w.inflight.empty()) start_clock(run, w.inflight.front().key);
  }

  void start_clock(RunRt& run, const std::string& key) {
    auto jit = run.jobs.find(key);
    if (jit == run.jobs.end()) return;
    jit->second.deadline = Clock::now() + std::chrono::seconds(run.spec->stage(jit->second.stage)->timeout_s);
  }

  // Puts the jobs sent to w back at the front of their stage's queue, in order.
  void requeue(WorkerRt& w, RunRt& run) {
    auto& queue = run.stages[w.stage].queue;
    for (auto it = w.inflight.rbegin(); it != w.inflight.rend(); ++it) {
      release_gpus(*it);
      auto& q = run.jobs.at(it->key);
      q.state = JobState::Pending;
      q.worker.clear();
      put_job(run, q);
      queue.push_front(it->key);
    }
    w.inflight.clear();
  }

  void send_stop(WorkerRt& w) {
    try {
      Value stop;
      stop.set("t", "STOP");
      send_to(*w.router, w.id, stop);
    } catch (const zmq::error_t&) {
      // Not connected yet: its READY will come to a retired id and get the STOP then.
    }
  }

  void retire(WorkerRt& w) {
    send_stop(w);
    auto it = workers.find(w.id);
    if (it != workers.end()) {
      retired.push_back(std::move(it->second));
      workers.erase(it);
    }
  }

  // --- dispatch, timeouts ---------------------------------------------------------------

  // The JOB body: the job's identity and every upstream output, spliced in as stored.
  Result<Bytes> build_job(RunRt& run, JobRt& j, const StageSpec& st, const Value& resources) {
    Envelope env{run.id, run.record.get_string("round"), j.unit == kRoundUnit ? "" : j.unit, j.stage,
                 run.id + "/" + j.key(), j.attempt};
    std::vector<std::shared_ptr<const std::vector<Bytes>>> parts;
    auto add = [&](const std::string& key) -> Status {
      auto it = run.jobs.find(key);
      if (it == run.jobs.end() || it->second.state != JobState::Done) return {};
      if (!it->second.committed_out) {
        auto stored = std::make_shared<std::vector<Bytes>>();
        auto st = eng.store_.scan(Family::Messages, run.id + "/" + key + "/", [&](std::string_view, std::string_view raw) {
          stored->emplace_back(raw.begin(), raw.end());
          return true;
        });
        if (!st) return st;
        it->second.committed_out = std::move(stored);
      }
      parts.push_back(it->second.committed_out);
      return {};
    };
    for (auto& a : st.after) {
      const StageSpec& up = *run.spec->stage(a);
      Status s;
      if (up.per == Per::Round)
        s = add(a + "/" + kRoundUnit);
      else if (st.per == Per::Entrant)
        s = add(a + "/" + j.unit);
      else
        for (auto& e : run.entrant_ids)
          if (s = add(a + "/" + e); !s) break;
      if (!s) return s;
    }
    std::vector<const Bytes*> inputs;
    for (auto& p : parts)
      for (auto& m : *p) inputs.push_back(&m);
    std::vector<FailedUpstream> failed;
    for (auto& f : j.failed_upstream) failed.push_back({f.get_string("stage"), f.get_string("entrant"), f.get_string("error")});
    j.inputs = int64_t(inputs.size());
    static const Value kNull;
    auto* round = run.record.find("round_info");
    return encode_job(env, j.unit == kRoundUnit ? kNull : run.entrants[j.unit], round ? *round : kNull, inputs, failed, resources);
  }

  void dispatch() {
    if (draining || Clock::now() < paused_until) return;
    for (auto& [_, runp] : runs) {
      RunRt& run = *runp;
      for (auto& [sid, srt] : run.stages) {
        while (!srt.queue.empty()) {
          if (!srt.broken.empty()) {
            auto key = srt.queue.front();
            srt.queue.pop_front();
            auto& j = run.jobs.at(key);
            j.attempt++;
            fail_attempt(run, j, "plugin " + srt.spec->plugin + " unusable: " + srt.broken);
            continue;
          }
          WorkerRt* idle = nullptr;
          for (auto& wid : srt.workers) {
            auto* w = worker(wid);
            // A process worker gets one job at a time: when it dies, the job it died on is
            // then certain (an answer it sent just before dying can be lost with it).
            // GPU jobs too: a job sent ahead would hold its GPUs while it waits.
            size_t depth = srt.spec->isolation == Isolation::Process || srt.spec->gpus > 0 ? 1 : size_t(srt.spec->prefetch);
            if (w && w->ready && !w->lost && w->inflight.size() < depth &&
                (!idle || w->inflight.size() < idle->inflight.size()))
              idle = w;
          }
          if (!idle) break;
          std::vector<int> gpus;
          Value resources;
          if (int need = srt.spec->gpus; need > 0) {
            if (size_t(need) > eng.gpus_.size()) {
              auto key = srt.queue.front();
              srt.queue.pop_front();
              auto& j = run.jobs.at(key);
              j.attempt++;
              j.failures = srt.spec->retries;  // waiting cannot help: no retry
              fail_attempt(run, j, "stage " + srt.spec->id + " needs " + std::to_string(need) + " GPU(s); the daemon's pool has " +
                                       std::to_string(eng.gpus_.size()) + " (" + eng.gpu_note_ + ")");
              continue;
            }
            gpus = acquire_gpus(size_t(need));
            if (gpus.empty()) break;  // all leased: the job waits in the queue
            Array g(gpus.begin(), gpus.end());
            resources.set("gpus", std::move(g));
          }
          auto key = srt.queue.front();
          srt.queue.pop_front();
          auto& j = run.jobs.at(key);
          j.attempt++;
          auto body = build_job(run, j, *srt.spec, resources);
          if (!body) {
            release_gpus({key, 0, gpus});
            fail_attempt(run, j, "cannot assemble job inputs: " + body.error());
            continue;
          }
          Value f;
          f.set("t", "JOB");
          f.set("run", run.id);
          f.set("key", key);
          f.set("attempt", j.attempt);
          f.set("serial", int64_t(++next_serial));
          f.set("barrier", srt.spec->per == Per::Round);
          f.set("scope", run.record.get_string("competition") + "/" + run.record.get_string("round") + "/");
          f.set("body", std::move(*body));
          try {
            send_to(*idle->router, idle->id, f);
          } catch (const zmq::error_t& e) {
            spdlog::error("run={} job={} cannot reach worker {}: {}", run.id, key, idle->id, e.what());
            release_gpus({key, 0, gpus});
            j.attempt--;
            srt.queue.push_front(key);
            requeue(*idle, run);
            retire(*idle);
            spawn_worker(run, *srt.spec);
            break;
          }
          if (!gpus.empty()) spdlog::info("run={} job={} leased GPU(s) {}", run.id, key, resources.find("gpus") ? to_json(*resources.find("gpus")) : "");
          idle->inflight.push_back({key, next_serial, std::move(gpus)});
          j.state = JobState::Running;
          j.worker = idle->id;
          j.started = now_iso8601();
          if (idle->inflight.size() == 1) start_clock(run, key);
          put_job(run, j, &soft);
        }
      }
    }
  }

  // GPUs of the pool for one job: the least-held ones when sharing, else only free ones (none
  // when fewer than n are free).
  std::vector<int> acquire_gpus(size_t n) {
    std::vector<int> order = eng.gpus_;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return gpu_holders[a] < gpu_holders[b]; });
    if (!eng.gpu_share_) {
      order.erase(std::remove_if(order.begin(), order.end(), [&](int g) { return gpu_holders[g] > 0; }), order.end());
      if (order.size() < n) return {};
    }
    order.resize(n);
    std::sort(order.begin(), order.end());
    for (int g : order) ++gpu_holders[g];
    return order;
  }
  void release_gpus(const WorkerRt::Sent& s) {
    for (int g : s.gpus)
      if (gpu_holders[g] > 0) --gpu_holders[g];
  }

  void write_soft() {
    if (soft.empty()) return;
    if (auto st = eng.store_.write(soft, false); !st) spdlog::error("{}", st.message());
    soft.clear();
  }

  void check_timeouts() {
    auto now = Clock::now();
    std::vector<WorkerRt*> expired;
    for (auto& [_, w] : workers) {
      if (w->inflight.empty() || w->lost) continue;
      auto rit = runs.find(w->run);
      if (rit == runs.end()) continue;
      auto jit = rit->second->jobs.find(w->inflight.front().key);
      if (jit != rit->second->jobs.end() && jit->second.state == JobState::Running && now > jit->second.deadline)
        expired.push_back(w.get());
    }
    for (auto* w : expired) {
      RunRt& run = *runs.at(w->run);
      auto head = w->inflight.front();
      // A thread stuck in a plugin may still use the GPU; the job is given up on all the same.
      release_gpus(head);
      w->inflight.pop_front();
      JobRt& j = run.jobs.at(head.key);
      const StageSpec& st = *run.spec->stage(j.stage);
      w->cancel_serial = head.serial;  // the plugin sees cancelled() from now on
      w->lost = true;
      if (w->pid > 0) ::kill(w->pid, SIGKILL);  // a process worker is simply ended
      requeue(*w, run);  // jobs queued behind the stuck one never started
      fail_attempt(run, j, "timed out after " + std::to_string(st.timeout_s) + " s");
      // The old thread may never return from the plugin: give the stage a fresh worker.
      auto& ids = run.stages[st.id].workers;
      ids.erase(std::remove(ids.begin(), ids.end(), w->id), ids.end());
      spawn_worker(run, st);
    }
  }

  // --- the loop ---------------------------------------------------------------------------

  bool flush() {
    if (batch.empty() && audit_pending.empty()) return true;
    Status st;
    if (audit_pending.empty()) {
      st = eng.store_.write(batch, true);
    } else {
      for (size_t i = 0; i < audit_pending.size() && st; ++i)
        st = eng.audit_.commit(batch, "engine", audit_pending[i].first, audit_pending[i].second);
    }
    batch.clear();
    audit_pending.clear();
    if (st) {
      set_store_error("");
      for (auto& id : finished_runs) finish_run(id);
      finished_runs.clear();
      return true;
    }
    set_store_error(st.message());
    spdlog::error("{}; pausing dispatch for 5 s, then reloading runs from the store", st.message());
    finished_runs.clear();
    for (auto& [_, w] : workers)
      if (!w->inflight.empty()) w->cancel_serial = w->inflight.front().serial;
    std::vector<WorkerRt*> all;
    for (auto& [_, w] : workers) all.push_back(w.get());
    for (auto* w : all) retire(*w);
    runs.clear();
    paused_until = Clock::now() + std::chrono::seconds(5);
    return false;
  }

  void finish_run(const std::string& id) {
    auto it = runs.find(id);
    if (it == runs.end()) return;
    spdlog::info("run={} finished: {}", id, it->second->record.get_string("state"));
    std::vector<WorkerRt*> ws;
    for (auto& [_, w] : workers)
      if (w->run == id) ws.push_back(w.get());
    for (auto* w : ws) retire(*w);
    runs.erase(it);
    if (eng.finished_cb_) eng.finished_cb_(id);
  }

  bool busy_workers() const {
    for (auto& [_, w] : workers)
      if (!w->inflight.empty() && !w->lost) return true;
    return false;
  }

  void reap() {
    auto now = Clock::now();
    for (auto& [_, w] : workers) {
      if (w->pid <= 0 || w->exited) continue;
      if (!w->died_at && waitpid(w->pid, &w->exit_status, WNOHANG) == w->pid) w->died_at = now;
      if (w->died_at && now - *w->died_at > std::chrono::milliseconds(200)) on_process_exit(*w, w->exit_status);
    }
    for (auto it = workers.begin(); it != workers.end();) {
      if (it->second->pid > 0 && it->second->exited) it = workers.erase(it);
      else ++it;
    }
    for (auto& w : retired) {
      if (w->pid <= 0 || w->exited) continue;
      int status;
      // died_at: already reaped while it was still a live worker.
      if (w->died_at || waitpid(w->pid, &status, WNOHANG) == w->pid) w->exited = true;
    }
    for (auto it = retired.begin(); it != retired.end();) {
      if ((*it)->exited) {
        if ((*it)->thread.joinable()) (*it)->thread.join();
        it = retired.erase(it);
      } else {
        ++it;
      }
    }
  }

  void drain(zmq::socket_t& from) {
    for (size_t i = 0; i < kMaxFramesPerTurn; ++i) {
      zmq::message_t id, body;
      if (!from.recv(id, zmq::recv_flags::dontwait)) break;
      if (!id.more() || !from.recv(body, zmq::recv_flags::dontwait)) {
        spdlog::error("broker dropped a frame without a body");
        continue;
      }
      while (body.more()) {  // extra parts are not part of the protocol
        zmq::message_t extra;
        if (!from.recv(extra, zmq::recv_flags::dontwait)) break;
        body = std::move(extra);
      }
      handle(id.to_string(), body, from);
    }
  }

  void loop() {
    recover();
    bool reload_due = false;
    while (!quit) {
      if (!flush()) reload_due = true;
      if (reload_due && Clock::now() >= paused_until) {
        reload_due = false;
        recover();
        continue;
      }
      dispatch();
      write_soft();
      if (draining && (!busy_workers() || Clock::now() > drain_deadline)) break;
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd, ZMQ_POLLIN, 0},
                                 {prouter ? prouter->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
      long timeout = batch.empty() ? 100 : 0;
      zmq::poll(items, prouter ? 3 : 2, std::chrono::milliseconds(timeout));
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t n;
        [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
      }
      std::deque<std::function<void()>> todo;
      {
        std::lock_guard lock(task_mu);
        todo.swap(tasks);
      }
      for (auto& t : todo) t();
      drain(router);
      if (prouter) drain(*prouter);
      check_timeouts();
      reap();
    }
    flush();
    shutdown_workers();
  }

  void shutdown_workers() {
    std::vector<WorkerRt*> all;
    for (auto& [_, w] : workers) {
      if (!w->inflight.empty()) w->cancel_serial = w->inflight.front().serial;
      all.push_back(w.get());
    }
    for (auto* w : all) retire(*w);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!retired.empty() && Clock::now() < deadline) {
      // A worker that had not connected when its STOP went out says READY now and is told again.
      drain(router);
      if (prouter) drain(*prouter);
      reap();
      if (!retired.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto it = retired.begin(); it != retired.end();) {
      auto& w = *it;
      if (w->pid <= 0) {
        ++it;
        continue;
      }
      spdlog::warn("worker process {} (run={} stage={}) did not stop; killing it", w->pid, w->run, w->stage);
      ::kill(w->pid, SIGKILL);
      waitpid(w->pid, nullptr, 0);
      it = retired.erase(it);
    }
    for (auto& w : retired) {
      spdlog::warn("worker {} (run={} stage={}) did not stop; abandoning its thread", w->id, w->run, w->stage);
      if (w->thread.joinable()) w->thread.detach();
      (void)w.release();  // the detached thread still uses it
      ++abandoned;
    }
    retired.clear();
  }

  // --- tasks from other threads -----------------------------------------------------------

  Result<std::string> create_run(RunRequest& req) {
    auto counter = eng.store_.get(Family::Meta, "next_run");
    if (!counter) return counter.status();
    uint64_t n = *counter ? std::stoull(**counter) : 1;
    std::string id = "run-" + zero_pad(n, 6);
    Value record;
    record.set("id", id);
    record.set("competition", req.competition);
    record.set("round", req.round);
    record.set("round_info", req.round_info);
    record.set("state", "running");
    record.set("created", now_iso8601());
    record.set("actor", req.actor);
    Value p;
    p.set("name", req.pipeline->name);
    p.set("source", req.pipeline->source);
    p.set("sha256", req.pipeline->sha256);
    p.set("yaml", req.pipeline->yaml);
    record.set("pipeline", p);
    Array es(req.entrants.begin(), req.entrants.end());
    record.set("entrants", std::move(es));
    if (!req.reuse_run.empty()) {
      Value reuse;
      reuse.set("run", req.reuse_run);
      reuse.set("stages", Array(req.reuse_stages.begin(), req.reuse_stages.end()));
      record.set("reuse", reuse);
    }

    // The run record, its first jobs and the audit entry land in one write.
    if (!flush()) return Status::error("store unavailable: " + last_store_error());
    batch.put(Family::Meta, std::string_view("next_run"), std::string_view(std::to_string(n + 1)));
    auto run = make_run(id, record, req.pipeline);
    batch.put(Family::Runs, id, run->record);
    install(std::move(run));
    Value d;
    d.set("run", id);
    d.set("competition", req.competition);
    d.set("round", req.round);
    d.set("pipeline", req.pipeline->name);
    d.set("pipeline_sha256", req.pipeline->sha256);
    d.set("entrants", int64_t(req.entrants.size()));
    if (auto* reuse = record.find("reuse")) d.set("reuse", *reuse);
    auto st = eng.audit_.commit(batch, req.actor, "run.start", d);
    batch.clear();
    if (!st) {
      std::vector<WorkerRt*> ws;
      for (auto& [_, w] : workers)
        if (w->run == id) ws.push_back(w.get());
      for (auto* w : ws) retire(*w);
      runs.erase(id);
      audit_pending.clear();
      finished_runs.clear();
      return st;
    }
    spdlog::info("run={} started: competition={} round={} pipeline={} entrants={}", id, req.competition, req.round,
                 req.pipeline->name, req.entrants.size());
    return id;
  }
};

// ---------------------------------------------------------------------------------------

Engine::Engine(Store& store, AuditLog& audit, const PluginRegistry& plugins, EngineOptions options)
    : store_(store), audit_(audit), plugins_(plugins), opt_(std::move(options)), zmq_(std::make_unique<zmq::context_t>(1)) {}

Engine::~Engine() {
  stop(false);
  wait();
  // Terminating the context would wait forever for the sockets of threads stuck in plugin
  // code; the process is ending anyway, so leave it to the OS.
  bool stuck = broker_ && broker_->abandoned > 0;
  broker_.reset();
  if (stuck) (void)zmq_.release();
  zmq_.reset();
}

Engine::Broker* Engine::live_broker() const { return running_ ? broker_.get() : nullptr; }

Status Engine::start() {
  if (running_) return Status::error("engine already started");
  try {
    broker_ = std::make_unique<Broker>(*this, *zmq_);
  } catch (const zmq::error_t& e) {
    return Status::error(std::string("cannot bind the broker socket: ") + e.what());
  }
  running_ = true;
  thread_ = std::thread([this] {
    broker_->loop();
    running_ = false;
  });
  return {};
}

Result<std::string> Engine::start_run(RunRequest request) {
  if (!running_ || stopping_) return Status::error("the engine is not running (shutting down?)");
  auto done = std::make_shared<std::promise<Result<std::string>>>();
  auto fut = done->get_future();
  broker_->post([this, done, req = std::move(request)]() mutable {
    if (broker_->draining) {
      done->set_value(Status::error("the daemon is shutting down; no new runs"));
      return;
    }
    done->set_value(broker_->create_run(req));
  });
  return fut.get();
}

void Engine::stop(bool drain) {
  if (!broker_ || stopping_.exchange(true)) return;
  int timeout = opt_.drain_timeout_s;
  broker_->post([this, drain, timeout] {
    if (drain) {
      broker_->draining = true;
      broker_->drain_deadline = Clock::now() + std::chrono::seconds(timeout);
      spdlog::info("draining: waiting up to {} s for in-flight jobs", timeout);
    } else {
      broker_->quit = true;
    }
  });
}

void Engine::wait() {
  if (thread_.joinable()) thread_.join();
}

Result<Value> Engine::run_status(const std::string& run_id) const {
  auto rec = store_.get_value(Family::Runs, run_id);
  if (!rec) return rec.status();
  if (!*rec) return Status::error("no run \"" + run_id + "\"");
  Value out = **rec;
  out.as_map().erase("pipeline");
  if (auto* p = (**rec).find("pipeline")) {
    Value pi;
    pi.set("name", p->get_string("name"));
    pi.set("source", p->get_string("source"));
    pi.set("sha256", p->get_string("sha256"));
    out.set("pipeline", pi);
  }
  std::map<std::string, Value> counters;
  std::vector<std::string> order;
  if (auto* s = (**rec).find("stages"); s && s->is_array())
    for (auto& id : s->as_array()) order.push_back(id.as_string());
  for (auto& id : order) {
    Value c;
    for (auto* k : {"in", "out", "queued", "running", "done", "failed", "skipped", "retried", "jobs"}) c.set(k, 0);
    counters[id] = c;
  }
  std::map<std::string, std::pair<double, double>> prog;
  if (Broker* b = live_broker()) {
    std::lock_guard lock(b->progress_mu);
    prog = b->progress;
  }
  Array jobs;
  auto st = store_.scan(Family::Jobs, run_id + "/", [&](std::string_view key, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (!v) return true;
    auto& c = counters[v->get_string("stage")];
    auto bump = [&](const char* k, int64_t by = 1) { c.set(k, c.get_int(k) + by); };
    bump("jobs");
    bump("in", v->get_int("inputs"));
    bump("out", v->get_int("outputs"));
    std::string s = v->get_string("state");
    bump(s == "pending" ? "queued" : s.c_str());
    bump("retried", v->get_int("failures") - (s == "failed" ? 1 : 0));
    if (auto it = prog.find(std::string(key)); it != prog.end()) {
      Value p;
      p.set("done", it->second.first);
      p.set("total", it->second.second);
      v->set("progress", p);
    }
    jobs.push_back(std::move(*v));
    return true;
  });
  if (!st) return st;
  Array stages;
  for (auto& id : order) {
    Value c = counters[id];
    c.set("stage", id);
    stages.push_back(std::move(c));
  }
  out.set("stage_counters", std::move(stages));
  out.set("jobs", std::move(jobs));
  if (std::string e = live_broker() ? live_broker()->last_store_error() : ""; !e.empty()) out.set("store_error", e);
  return out;
}

Result<std::vector<Message>> Engine::run_outputs(const std::string& run_id, const std::string& stage) const {
  return read_messages(store_, run_id + "/" + (stage.empty() ? "" : stage + "/"));
}

}  // namespace evald::daemon
