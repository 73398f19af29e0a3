// evald-bench-pipeline: what durability costs the pipeline engine.
//
// Pushes N messages through a 3-stage per-entrant pipeline (source -> relay -> sink) three
// ways and reports them side by side:
//   (a) durable   the real Engine with Store, AuditLog and the bench-relay plugin: every
//                 message and job transition goes to RocksDB with a synced WAL (group
//                 commit) before it is routed on;
//   (b) raw-zmq   the same 3-stage flow over inproc ZeroMQ sockets between three threads,
//                 the same msgpack-encoded messages, nothing persisted;
//   (c) rocksdb   the ceiling: one synced WriteBatch per message, holding the records the
//                 engine writes for it (a message record and a job record).
// (a) and (b) run twice: a throughput pass with all N messages released at once, and a
// closed-loop latency pass with a few messages in flight, so the latency is not queueing.
// See tools/bench/README.md.
#include "audit.hpp"
#include "engine.hpp"
#include "pipeline.hpp"
#include "plugin_registry.hpp"
#include "store.hpp"
#include "util.hpp"

#include <evald/message.hpp>
#include <evald/value.hpp>

#include <dlfcn.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

// Records every fdatasync/fsync of the process (RocksDB's WAL syncs go through these) with
// its duration, so each pass can say how many messages share a sync, what a sync cost while
// it ran and how much of its wall time went into syncing. The executable's definitions
// interpose the C library's for librocksdb (CMakeLists.txt exports them).
#include "bench_cli.hpp"

using evald::bench::cpu_model;
using evald::bench::median;
using evald::bench::die;
using evald::bench::parse_u64;

namespace {
std::mutex g_sync_mu;
std::vector<int64_t> g_sync_ns;  // one entry per sync call, in order

int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <class F>
int timed_sync(F real, int fd) {
  int64_t a = mono_ns();
  int rc = real(fd);
  int64_t d = mono_ns() - a;
  std::lock_guard lock(g_sync_mu);
  g_sync_ns.push_back(d);
  return rc;
}
}  // namespace

extern "C" int fdatasync(int fd) {
  static auto real = reinterpret_cast<int (*)(int)>(dlsym(RTLD_NEXT, "fdatasync"));
  return timed_sync(real, fd);
}
extern "C" int fsync(int fd) {
  static auto real = reinterpret_cast<int (*)(int)>(dlsym(RTLD_NEXT, "fsync"));
  return timed_sync(real, fd);
}

namespace {
// The syncs between begin() and end().
struct SyncWindow {
  size_t from = 0;
  uint64_t count = 0;
  double total_s = 0, p50_us = NAN;
  void begin() {
    std::lock_guard lock(g_sync_mu);
    from = g_sync_ns.size();
  }
  void end() {
    std::vector<int64_t> d;
    {
      std::lock_guard lock(g_sync_mu);
      d.assign(g_sync_ns.begin() + std::ptrdiff_t(from), g_sync_ns.end());
    }
    count = d.size();
    for (auto x : d) total_s += double(x) / 1e9;
    if (!d.empty()) {
      std::nth_element(d.begin(), d.begin() + std::ptrdiff_t(d.size() / 2), d.end());
      p50_us = double(d[d.size() / 2]) / 1000.0;
    }
  }
};
}  // namespace

namespace fs = std::filesystem;
using namespace evald;
using namespace evald::daemon;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------------
// Options

struct Options {
  uint64_t messages = 20000;        // N: entrants = messages per stage
  int repeat = 3;                   // R: report the median of R
  uint64_t latency_messages = 0;    // closed-loop pass size; 0: min(N, 2000)
  int inflight = 4;                 // closed-loop: messages (runs) in flight
  int workers = 1;                  // engine workers per stage
  size_t pad = 64;                  // payload padding: ~100-byte payload with 64
  double ceiling_seconds = 20;      // the ceiling pass stops after this long
  bool json = false;
  bool progress = true;
  bool verbose = false;
  bool keep = false;
  fs::path dir;                     // parent of the temp data dirs
  fs::path plugin_dir;
  std::set<std::string> only;       // durable, zmq, rocksdb; empty: all
  bool want(const std::string& what) const { return only.empty() || only.count(what); }
};

const char* kUsage = R"(usage: evald-bench-pipeline [options]

Measures the cost of durability in the evald pipeline engine: N messages through a 3-stage
pipeline (source -> relay -> sink, one message per entrant per stage), three ways:
  (a) durable  the real Engine + RocksDB store (synced WAL, group commit) + bench-relay plugin
  (b) raw-zmq  the same 3-stage flow over inproc ZeroMQ between threads, no persistence
  (c) rocksdb  ceiling: one synced WriteBatch (message record + job record) per message
Each repeat runs (a) throughput and (c) back to back: fsync cost on a shared disk drifts.
(a) and (b) also run a closed-loop pass (a few messages in flight) for unqueued latency.

options:
  --messages N          messages per stage = entrants (default 20000); 3N messages in all
  --repeat R            run everything R times, report the median of each figure (default 3)
  --latency-messages L  messages in the closed-loop latency pass (default min(N, 2000))
  --inflight K          closed-loop pass: messages in flight (default 4); in the durable
                        pass each is a run of one entrant
  --workers W           engine worker threads per stage (default 1, as the engine defaults)
  --pad B               payload padding in bytes (default 64: a ~100-byte payload)
  --ceiling-seconds S   the rocksdb pass writes N batches or stops after S s (default 20);
                        a rate needs no more, and a slow disk would make N batches take long
  --only LIST           comma-separated subset of durable,zmq,rocksdb
  --dir DIR             where the temporary data dirs go (default: $TMPDIR or /tmp);
                        durability costs what this file system's fsync costs
  --plugin-dir DIR      where bench-relay.so is (default <bin>/../lib/evald/bench-plugins)
  --json                print one JSON object on stdout instead of the table
  --no-progress         no progress lines on stderr
  --keep                keep the data dirs
  --verbose             engine logs (info) on stderr
  --help                this text
)";

fs::path self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p.parent_path();
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool latency_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) die(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--messages") {
      o.messages = parse_u64(a, val(), 1, 10'000'000);
    } else if (a == "--repeat") {
      o.repeat = int(parse_u64(a, val(), 1, 1000));
    } else if (a == "--latency-messages") {
      o.latency_messages = parse_u64(a, val(), 1, 10'000'000);
      latency_set = true;
    } else if (a == "--inflight") {
      o.inflight = int(parse_u64(a, val(), 1, 1000));
    } else if (a == "--workers") {
      o.workers = int(parse_u64(a, val(), 1, 64));
    } else if (a == "--ceiling-seconds") {
      o.ceiling_seconds = double(parse_u64(a, val(), 1, 3600));
    } else if (a == "--pad") {
      o.pad = size_t(parse_u64(a, val(), 0, 1 << 20));
    } else if (a == "--only") {
      std::string list = val();
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item != "durable" && item != "zmq" && item != "rocksdb")
          die("--only: unknown \"" + item + "\" (known: durable, zmq, rocksdb)");
        o.only.insert(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (a == "--dir") {
      o.dir = val();
    } else if (a == "--plugin-dir") {
      o.plugin_dir = val();
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--no-progress") {
      o.progress = false;
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else {
      die("unknown option \"" + a + "\" (see --help)");
    }
  }
  if (!latency_set) o.latency_messages = std::min<uint64_t>(o.messages, 2000);
  if (o.dir.empty()) o.dir = fs::temp_directory_path();
  if (o.plugin_dir.empty()) {
    fs::path near = self_dir() / ".." / "lib" / "evald" / "bench-plugins";
    std::error_code ec;
    o.plugin_dir = fs::exists(near / "bench-relay.so", ec) ? near.lexically_normal() : fs::path(EVALD_BENCH_PLUGIN_DIR);
  }
  return o;
}

// ---------------------------------------------------------------------------------------
// Small helpers

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string entrant_id(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "e%07llu", static_cast<unsigned long long>(i));
  return buf;
}

// Nearest-rank percentile (p in [0, 1]) of v, in microseconds; v is sorted in place.
double percentile_us(std::vector<int64_t>& v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(std::ceil(p * double(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return double(v[rank - 1]) / 1000.0;
}

// A fresh directory under parent, removed by the destructor unless keep.
class TempDir {
 public:
  TempDir(const fs::path& parent, const std::string& tag, bool keep) : keep_(keep) {
    std::string tmpl = (parent / ("evald-bench-" + tag + "-XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) die("cannot create a temp dir under " + parent.string() + ": " + std::strerror(errno));
    path_ = buf.data();
  }
  ~TempDir() {
    if (keep_) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool keep_;
};

// Prints "label: done/total (rate)" on stderr once a second while a phase runs.
class Progress {
 public:
  Progress(bool on, std::string label, uint64_t total, std::function<uint64_t()> count)
      : on_(on), label_(std::move(label)), total_(total), count_(std::move(count)), start_(Clock::now()) {
    if (on_) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (printed_ && tty_) std::fputc('\n', stderr);
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) {
      uint64_t n = count_ ? count_() : 0;
      double s = seconds_since(start_);
      std::fprintf(stderr, "%s  %s: %llu/%llu messages, %.1f s%s", tty_ ? "\r" : "", label_.c_str(),
                   static_cast<unsigned long long>(n), static_cast<unsigned long long>(total_), s, tty_ ? "   " : "\n");
      std::fflush(stderr);
      printed_ = true;
    }
  }
  bool on_;
  std::string label_;
  uint64_t total_;
  std::function<uint64_t()> count_;
  Clock::time_point start_;
  bool tty_ = isatty(2);
  bool printed_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

void phase_note(const Options& o, const std::string& what) {
  if (o.progress) std::fprintf(stderr, "%s\n", what.c_str()), std::fflush(stderr);
}

// The payload the source stage emits (bench-relay and the raw-zmq flow build the same one).
Value source_payload(const std::string& entrant, size_t pad, int64_t t0) {
  Value p;
  p.set("entrant", entrant);
  p.set("pad", std::string(pad, 'x'));
  p.set("t0", t0);
  return p;
}

// ---------------------------------------------------------------------------------------
// Results

struct PassResult {
  uint64_t messages = 0;  // delivered through all 3 stages, each counted 3 times
  double wall_s = 0;
  double msgs_per_s = 0;
  double p50_us = NAN, p99_us = NAN, max_us = NAN;
  double syncs_per_msg = NAN;  // fdatasync/fsync calls during the pass / messages
  double sync_p50_us = NAN;    // median duration of those calls
  double sync_share = NAN;     // their summed duration / wall time
};

PassResult finish_pass(uint64_t messages, double wall_s, std::vector<int64_t>& lat_ns, const SyncWindow* sw) {
  PassResult r;
  r.messages = messages;
  if (sw) {
    r.syncs_per_msg = messages ? double(sw->count) / double(messages) : NAN;
    r.sync_p50_us = sw->p50_us;
    r.sync_share = wall_s > 0 ? sw->total_s / wall_s : NAN;
  }
  r.wall_s = wall_s;
  r.msgs_per_s = wall_s > 0 ? double(messages) / wall_s : 0;
  r.p50_us = percentile_us(lat_ns, 0.50);
  r.p99_us = percentile_us(lat_ns, 0.99);
  r.max_us = lat_ns.empty() ? NAN : double(lat_ns.back()) / 1000.0;
  return r;
}

struct CeilingResult {
  uint64_t batches = 0;
  double wall_s = 0;
  double msgs_per_s = 0;     // = synced batches per second
  double records_per_s = 0;  // 2 records per batch
  double bytes_per_batch = 0;
  double p50_us = NAN, p99_us = NAN;  // one synced Write() call
  double syncs_per_msg = NAN;
  double sync_p50_us = NAN, sync_share = NAN;
  bool capped = false;  // stopped at the time cap before N batches
};

struct RepeatResult {
  std::optional<PassResult> durable_tput, durable_lat, zmq_tput, zmq_lat;
  std::optional<CeilingResult> ceiling;
  // durable throughput over the others, from this repeat's own passes (run back to back).
  double ratio_zmq() const { return durable_tput && zmq_tput ? durable_tput->msgs_per_s / zmq_tput->msgs_per_s : NAN; }
  double ratio_ceiling() const { return durable_tput && ceiling ? durable_tput->msgs_per_s / ceiling->msgs_per_s : NAN; }
};

// ---------------------------------------------------------------------------------------
// (a) durable: the real engine

const char* kPipelineYaml = R"(name: bench3
description: evald-bench-pipeline, 3 per-entrant relay stages
stages:
  - id: s1
    plugin: bench-relay
    per: entrant
    workers: {W}
    config: {role: source, pad: {PAD}}
  - id: s2
    plugin: bench-relay
    per: entrant
    after: [s1]
    workers: {W}
    config: {role: relay}
  - id: s3
    plugin: bench-relay
    per: entrant
    after: [s2]
    workers: {W}
    config: {role: sink}
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

struct Plugins {
  PluginRegistry registry;
  std::shared_ptr<const PipelineSpec> pipeline;
  uint64_t (*sunk)() = nullptr;  // bench-relay's sink counter, for progress
};

void load_plugins(const Options& o, Plugins& p) {
  p.registry.scan({o.plugin_dir});
  if (!p.registry.find("bench-relay")) {
    std::string why;
    for (auto& e : p.registry.errors()) why += "\n  " + e.path.string() + ": " + e.error;
    die("plugin bench-relay not found in " + o.plugin_dir.string() + " (build the bench-relay target, or pass --plugin-dir)" + why);
  }
  std::string yaml = replace_all(replace_all(kPipelineYaml, "{W}", std::to_string(o.workers)), "{PAD}", std::to_string(o.pad));
  auto spec = parse_pipeline(yaml, "evald-bench-pipeline", p.registry);
  if (!spec) die("bench pipeline does not validate: " + spec.error());
  p.pipeline = std::make_shared<const PipelineSpec>(std::move(*spec));
  // The registry has the library open; RTLD_NOLOAD just finds that same handle.
  std::string so = p.registry.find("bench-relay")->path.string();
  if (void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
    p.sunk = reinterpret_cast<uint64_t (*)()>(dlsym(h, "evald_bench_relay_sunk"));
    dlclose(h);  // drops only the reference RTLD_NOLOAD added
  }
}

// One engine on a fresh data dir, with a finished-runs queue.
class EngineBench {
 public:
  EngineBench(const Options& o, const Plugins& plugins, const std::string& tag)
      : opt_(o), plugins_(plugins), dir_(o.dir, tag, o.keep) {
    auto store = Store::open(dir_.path());
    if (!store) die(store.error());
    store_ = std::move(*store);
    auto audit = AuditLog::open(*store_);
    if (!audit) die(audit.error());
    audit_ = std::move(*audit);
    engine_ = std::make_unique<Engine>(*store_, *audit_, plugins_.registry, EngineOptions{dir_.path(), 5, {}});
    engine_->on_run_finished([this](const std::string& id) {
      {
        std::lock_guard lock(mu_);
        finished_.push_back(id);
      }
      cv_.notify_all();
    });
    if (auto st = engine_->start(); !st) die("engine start: " + st.message());
  }
  ~EngineBench() {
    engine_->stop(false);
    engine_->wait();
    engine_.reset();
    audit_.reset();
    store_.reset();
  }

  RunRequest request(uint64_t first_entrant, uint64_t count) const {
    RunRequest r;
    r.competition = "bench";
    r.round = "r1";
    Value ri;
    ri.set("id", "r1");
    ri.set("competition", "bench");
    ri.set("pipeline", plugins_.pipeline->name);
    r.round_info = ri;
    r.entrants.reserve(count);
    for (uint64_t i = first_entrant; i < first_entrant + count; ++i) {
      Value e;
      e.set("id", entrant_id(i));
      e.set("name", "entrant " + std::to_string(i));
      e.set("submission", Map{});
      r.entrants.push_back(std::move(e));
    }
    r.pipeline = plugins_.pipeline;
    r.actor = "bench";
    return r;
  }

  std::string start_run(RunRequest req) {
    auto id = engine_->start_run(std::move(req));
    if (!id) die("start_run: " + id.error());
    return *id;
  }

  // Blocks until some run finishes; returns its id.
  std::string wait_finished() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::minutes(10), [this] { return !finished_.empty(); }))
      die("no run finished within 10 minutes (engine stuck?)");
    std::string id = finished_.front();
    finished_.pop_front();
    return id;
  }

  // Checks that run `id` is done with every one of its `entrants` through all 3 stages, and
  // appends the sink's lat_ns values to lat.
  void verify_and_collect(const std::string& id, uint64_t entrants, std::vector<int64_t>& lat) {
    auto status = engine_->run_status(id);
    if (!status) die("run_status " + id + ": " + status.error());
    if (status->get_string("state") != "done")
      die("run " + id + " ended " + status->get_string("state") + ", not done: " + to_json(*status).substr(0, 2000));
    if (auto* sc = status->find("stage_counters"); sc && sc->is_array()) {
      if (sc->as_array().size() != 3) die("run " + id + ": expected 3 stages in stage_counters");
      for (auto& c : sc->as_array())
        if (uint64_t(c.get_int("done")) != entrants || uint64_t(c.get_int("out")) != entrants || c.get_int("failed") ||
            c.get_int("retried"))
          die("run " + id + " stage " + c.get_string("stage") + ": counters " + to_json(c) + ", expected done = out = " +
              std::to_string(entrants));
    } else {
      die("run " + id + ": run_status has no stage_counters");
    }
    auto all = engine_->run_outputs(id);
    if (!all) die("run_outputs " + id + ": " + all.error());
    if (all->size() != 3 * entrants)
      die("run " + id + ": " + std::to_string(all->size()) + " messages stored, expected " + std::to_string(3 * entrants));
    uint64_t sunk = 0;
    for (auto& m : *all) {
      if (m.envelope.stage != "s3") continue;
      auto* l = m.payload.find("lat_ns");
      if (!l || !l->is_int() || l->as_int() < 0) die("run " + id + ": sink message " + m.envelope.job + " lacks lat_ns");
      lat.push_back(l->as_int());
      ++sunk;
    }
    if (sunk != entrants) die("run " + id + ": " + std::to_string(sunk) + " messages reached s3, expected " + std::to_string(entrants));
  }

 private:
  const Options& opt_;
  const Plugins& plugins_;
  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Engine> engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> finished_;
};

// All N entrants in one run, released at once.
PassResult durable_throughput(const Options& o, const Plugins& plugins) {
  EngineBench eb(o, plugins, "durable");
  RunRequest req = eb.request(0, o.messages);  // built before the clock starts
  uint64_t base = plugins.sunk ? plugins.sunk() : 0;
  Progress prog(o.progress, "durable, throughput", o.messages,
                [&]() -> uint64_t { return plugins.sunk ? plugins.sunk() - base : 0; });
  SyncWindow sw;
  sw.begin();
  auto t0 = Clock::now();
  std::string id = eb.start_run(std::move(req));
  std::string done = eb.wait_finished();
  double wall = seconds_since(t0);
  sw.end();
  prog.stop();
  if (done != id) die("unexpected run " + done + " finished");
  std::vector<int64_t> lat;
  lat.reserve(o.messages);
  eb.verify_and_collect(id, o.messages, lat);
  return finish_pass(3 * o.messages, wall, lat, &sw);
}

// Closed loop: K runs of one entrant each in flight; a new one starts when one finishes.
PassResult durable_closed_loop(const Options& o, const Plugins& plugins) {
  EngineBench eb(o, plugins, "durable-lat");
  uint64_t total = o.latency_messages, started = 0, finished = 0;
  std::atomic<uint64_t> finished_a{0};
  Progress prog(o.progress, "durable, closed loop", total, [&] { return finished_a.load(); });
  std::vector<std::string> ids;
  ids.reserve(total);
  SyncWindow sw;
  sw.begin();
  auto t0 = Clock::now();
  uint64_t inflight = 0;
  while (finished < total) {
    while (inflight < uint64_t(o.inflight) && started < total) {
      ids.push_back(eb.start_run(eb.request(started, 1)));
      ++started;
      ++inflight;
    }
    eb.wait_finished();
    --inflight;
    ++finished;
    finished_a = finished;
  }
  double wall = seconds_since(t0);
  sw.end();
  prog.stop();
  std::vector<int64_t> lat;
  lat.reserve(total);
  for (auto& id : ids) eb.verify_and_collect(id, 1, lat);
  return finish_pass(3 * total, wall, lat, &sw);
}

// ---------------------------------------------------------------------------------------
// (b) raw ZeroMQ: three threads, inproc PUSH/PULL, the same Message encoding, no store

Message make_message(const std::string& run, const std::string& entrant, const std::string& stage, Value payload) {
  Message m;
  m.envelope = {run, "r1", entrant, stage, run + "/" + stage + "/" + entrant, 1};
  m.kind = "relay";
  m.schema_version = 1;
  m.seq = 0;
  m.payload = std::move(payload);
  return m;
}

void send_message(zmq::socket_t& s, const Message& m) {
  Bytes b = msgpack::encode(m.to_value());
  s.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none);
}

Message recv_message(zmq::socket_t& s) {
  zmq::message_t msg;
  if (!s.recv(msg)) die("raw-zmq: recv failed");
  auto v = msgpack::decode(static_cast<const uint8_t*>(msg.data()), msg.size());
  if (!v) die("raw-zmq: corrupt frame: " + v.error());
  auto m = Message::from_value(*v);
  if (!m) die("raw-zmq: bad message: " + m.error());
  return std::move(*m);
}

// closed_loop = 0: all N sent at once (send blocks at the high-water mark); otherwise at most
// closed_loop messages between s1's send and s3's receipt.
PassResult raw_zmq(const Options& o, uint64_t n, int closed_loop) {
  static std::atomic<int> serial{0};
  std::string tag = std::to_string(serial++);
  zmq::context_t ctx(1);
  zmq::socket_t s2_in(ctx, zmq::socket_type::pull), s3_in(ctx, zmq::socket_type::pull), credit_in(ctx, zmq::socket_type::pull);
  s2_in.bind("inproc://bench-s2-" + tag);
  s3_in.bind("inproc://bench-s3-" + tag);
  credit_in.bind("inproc://bench-credit-" + tag);
  zmq::socket_t s1_out(ctx, zmq::socket_type::push), s2_out(ctx, zmq::socket_type::push), s3_credit(ctx, zmq::socket_type::push);
  s1_out.connect("inproc://bench-s2-" + tag);
  s2_out.connect("inproc://bench-s3-" + tag);
  s3_credit.connect("inproc://bench-credit-" + tag);
  for (auto* s : {&s2_in, &s3_in, &credit_in, &s1_out, &s2_out, &s3_credit}) s->set(zmq::sockopt::linger, 0);

  const std::string run = "run-000001";
  std::vector<int64_t> lat(n, -1);
  std::atomic<uint64_t> received{0};
  Clock::time_point end;

  std::thread t3([&] {
    for (uint64_t i = 0; i < n; ++i) {
      Message in = recv_message(s3_in);
      int64_t now = now_ns();
      Value p = std::move(in.payload);
      p.set("lat_ns", now - p.get_int("t0"));
      Message out = make_message(run, in.envelope.entrant, "s3", std::move(p));
      Bytes b = msgpack::encode(out.to_value());  // the sink's output, encoded like an emit
      lat[i] = out.payload.get_int("lat_ns");
      received.store(i + 1, std::memory_order_relaxed);
      if (closed_loop) s3_credit.send(zmq::str_buffer("c"), zmq::send_flags::none);
    }
    end = Clock::now();
  });
  std::thread t2([&] {
    for (uint64_t i = 0; i < n; ++i) {
      Message in = recv_message(s2_in);
      send_message(s2_out, make_message(run, in.envelope.entrant, "s2", std::move(in.payload)));
    }
  });

  Progress prog(o.progress, closed_loop ? "raw-zmq, closed loop" : "raw-zmq, throughput", n, [&] { return received.load(); });
  auto start = Clock::now();
  std::thread t1([&] {
    uint64_t inflight = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (closed_loop) {
        while (inflight >= uint64_t(closed_loop)) {
          zmq::message_t c;
          if (!credit_in.recv(c)) die("raw-zmq: credit recv failed");
          --inflight;
        }
        ++inflight;
      }
      std::string e = entrant_id(i);
      send_message(s1_out, make_message(run, e, "s1", source_payload(e, o.pad, now_ns())));
    }
  });
  t1.join();
  t2.join();
  t3.join();
  prog.stop();
  double wall = std::chrono::duration<double>(end - start).count();
  if (received.load() != n) die("raw-zmq: " + std::to_string(received.load()) + " of " + std::to_string(n) + " reached s3");
  for (auto l : lat)
    if (l < 0) die("raw-zmq: a message reached s3 without a latency");
  return finish_pass(3 * n, wall, lat, nullptr);
}

// ---------------------------------------------------------------------------------------
// (c) RocksDB ceiling: one synced WriteBatch per message, holding a message record and a job
// record shaped like the engine's (Message::to_value, and JobRt's fields with state done).

Value job_record(const std::string& run, const std::string& stage, const std::string& unit, const std::string& ts) {
  Value v;
  v.set("run", run);
  v.set("stage", stage);
  v.set("unit", unit);
  v.set("state", "done");
  v.set("attempt", 1);
  v.set("failures", 0);
  v.set("restarts", 0);
  v.set("inputs", stage == "s1" ? 0 : 1);
  v.set("outputs", 1);
  v.set("error", "");
  v.set("errors", Array{});
  v.set("created", ts);
  v.set("started", ts);
  v.set("finished", ts);
  v.set("failed_upstream", Array{});
  return v;
}

CeilingResult rocksdb_ceiling(const Options& o) {
  TempDir dir(o.dir, "rocksdb", o.keep);
  // The same DB options and column families the Store uses.
  rocksdb::DBOptions opts = Store::db_options();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  cfs.emplace_back("jobs", rocksdb::ColumnFamilyOptions());
  cfs.emplace_back("messages", rocksdb::ColumnFamilyOptions());
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  auto st = rocksdb::DB::Open(opts, (dir.path() / "db").string(), cfs, &h, &raw);
  if (!st.ok()) die("rocksdb open: " + st.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);

  // N messages' records, as the engine's 3-stage run writes them (stages interleaved, as
  // the pipelined engine does), encoded up front so the loop times RocksDB alone.
  const std::string run = "run-000001", ts = now_iso8601();
  const char* stages[] = {"s1", "s2", "s3"};
  uint64_t n = o.messages;
  struct Rec {
    std::string mkey, mval, jkey, jval;
  };
  std::vector<Rec> recs;
  recs.reserve(n);
  double bytes = 0;
  for (uint64_t i = 0; i < n; ++i) {
    std::string stage = stages[i % 3], e = entrant_id(i / 3);
    Value p = source_payload(e, o.pad, now_ns());
    if (stage == "s3") p.set("lat_ns", int64_t(123456));
    Message m = make_message(run, e, stage, std::move(p));
    Bytes mb = msgpack::encode(m.to_value()), jb = msgpack::encode(job_record(run, stage, e, ts));
    Rec r{run + "/" + stage + "/" + e + "/" + zero_pad(0, 8), std::string(mb.begin(), mb.end()),
          run + "/" + stage + "/" + e, std::string(jb.begin(), jb.end())};
    bytes += double(r.mkey.size() + r.mval.size() + r.jkey.size() + r.jval.size());
    recs.push_back(std::move(r));
  }

  std::atomic<uint64_t> done{0};
  Progress prog(o.progress, "rocksdb ceiling", n, [&] { return done.load(); });
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::vector<int64_t> lat;
  lat.reserve(n);
  const auto cap = std::chrono::duration<double>(o.ceiling_seconds);
  bool capped = false;
  SyncWindow sw;
  sw.begin();
  auto t0 = Clock::now();
  for (auto& r : recs) {
    if ((lat.size() & 63) == 0 && Clock::now() - t0 > cap) {
      capped = true;
      break;
    }
    int64_t a = now_ns();
    rocksdb::WriteBatch b;
    b.Put(h[2], r.mkey, r.mval);
    b.Put(h[1], r.jkey, r.jval);
    auto s = db->Write(wo, &b);
    if (!s.ok()) die("rocksdb write: " + s.ToString());
    lat.push_back(now_ns() - a);
    done.fetch_add(1, std::memory_order_relaxed);
  }
  double wall = seconds_since(t0);
  sw.end();
  prog.stop();
  n = lat.size();
  // Sanity: everything is readable back.
  uint64_t count = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h[2]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  if (count != n) die("rocksdb ceiling: " + std::to_string(count) + " message records read back, expected " + std::to_string(n));
  it.reset();
  for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
  db->Close();

  CeilingResult c;
  c.batches = n;
  c.wall_s = wall;
  c.msgs_per_s = double(n) / wall;
  c.records_per_s = 2 * double(n) / wall;
  c.bytes_per_batch = bytes / double(recs.size());
  c.p50_us = percentile_us(lat, 0.50);
  c.p99_us = percentile_us(lat, 0.99);
  c.syncs_per_msg = double(sw.count) / double(n);
  c.sync_p50_us = sw.p50_us;
  c.sync_share = sw.total_s / wall;
  c.capped = capped;
  return c;
}

// ---------------------------------------------------------------------------------------
// Report

struct Summary {
  std::optional<PassResult> durable_tput, durable_lat, zmq_tput, zmq_lat;
  std::optional<CeilingResult> ceiling;
  double ratio_zmq = NAN, ratio_ceiling = NAN;  // medians of the per-repeat ratios
};

PassResult median_pass(const std::vector<RepeatResult>& rs, std::optional<PassResult> RepeatResult::*f) {
  std::vector<double> rate, wall, p50, p99, mx, sy, sp, ss;
  PassResult out;
  for (auto& r : rs)
    if (auto& p = r.*f) {
      rate.push_back(p->msgs_per_s), wall.push_back(p->wall_s), p50.push_back(p->p50_us), p99.push_back(p->p99_us),
          mx.push_back(p->max_us), sy.push_back(p->syncs_per_msg), sp.push_back(p->sync_p50_us),
          ss.push_back(p->sync_share);
      out.messages = p->messages;
    }
  out.syncs_per_msg = median(sy);
  out.sync_p50_us = median(sp);
  out.sync_share = median(ss);
  out.msgs_per_s = median(rate);
  out.wall_s = median(wall);
  out.p50_us = median(p50);
  out.p99_us = median(p99);
  out.max_us = median(mx);
  return out;
}

Summary summarize(const std::vector<RepeatResult>& rs) {
  Summary s;
  if (rs.front().durable_tput) s.durable_tput = median_pass(rs, &RepeatResult::durable_tput);
  if (rs.front().durable_lat) s.durable_lat = median_pass(rs, &RepeatResult::durable_lat);
  if (rs.front().zmq_tput) s.zmq_tput = median_pass(rs, &RepeatResult::zmq_tput);
  if (rs.front().zmq_lat) s.zmq_lat = median_pass(rs, &RepeatResult::zmq_lat);
  if (rs.front().ceiling) {
    std::vector<double> rate, rec, wall, p50, p99, sy, batches, sp, ss;
    CeilingResult c = *rs.front().ceiling;
    for (auto& r : rs) {
      rate.push_back(r.ceiling->msgs_per_s), rec.push_back(r.ceiling->records_per_s), wall.push_back(r.ceiling->wall_s),
          p50.push_back(r.ceiling->p50_us), p99.push_back(r.ceiling->p99_us), sy.push_back(r.ceiling->syncs_per_msg),
          batches.push_back(double(r.ceiling->batches)), sp.push_back(r.ceiling->sync_p50_us),
          ss.push_back(r.ceiling->sync_share);
      c.capped = c.capped || r.ceiling->capped;
    }
    c.batches = uint64_t(median(batches));
    c.syncs_per_msg = median(sy);
    c.sync_p50_us = median(sp);
    c.sync_share = median(ss);
    c.msgs_per_s = median(rate);
    c.records_per_s = median(rec);
    c.wall_s = median(wall);
    c.p50_us = median(p50);
    c.p99_us = median(p99);
    s.ceiling = c;
  }
  std::vector<double> rz, rc;
  for (auto& r : rs) rz.push_back(r.ratio_zmq()), rc.push_back(r.ratio_ceiling());
  s.ratio_zmq = median(rz);
  s.ratio_ceiling = median(rc);
  return s;
}

const char* kLatTput =
    "time from the s1 plugin stamping t0 (just before its emit) to the s3 plugin starting its job: 2 hops "
    "(s1->s2, s2->s3); all N released at once, so mostly time spent queued behind other messages";
const char* kLatClosedDurable =
    "same 2 hops (s1 emit -> s3 job start) with only K messages in the system (K runs of 1 entrant, a new run "
    "when one finishes); run creation, worker start-up and run completion are outside the measured interval";
const char* kLatClosedZmq = "same 2 hops (s1 stamp before send -> s3 receipt) with at most K messages between s1 and s3";
const char* kCeilingLat = "one synced db->Write() of a 2-record batch (WAL fsync)";

Value pass_value(const PassResult& p, const char* measures) {
  Value v;
  v.set("messages", int64_t(p.messages));
  v.set("wall_s", p.wall_s);
  v.set("msgs_per_s", p.msgs_per_s);
  v.set("latency_p50_us", p.p50_us);
  v.set("latency_p99_us", p.p99_us);
  v.set("latency_max_us", p.max_us);
  v.set("syncs_per_msg", p.syncs_per_msg);
  v.set("sync_p50_us", p.sync_p50_us);
  v.set("sync_share_of_wall", p.sync_share);
  v.set("latency_measures", measures);
  return v;
}

Value ceiling_value(const CeilingResult& c) {
  Value v;
  v.set("batches", int64_t(c.batches));
  v.set("wall_s", c.wall_s);
  v.set("msgs_per_s", c.msgs_per_s);
  v.set("records_per_s", c.records_per_s);
  v.set("bytes_per_batch", c.bytes_per_batch);
  v.set("write_p50_us", c.p50_us);
  v.set("write_p99_us", c.p99_us);
  v.set("syncs_per_msg", c.syncs_per_msg);
  v.set("sync_p50_us", c.sync_p50_us);
  v.set("sync_share_of_wall", c.sync_share);
  v.set("stopped_at_time_cap", c.capped);
  v.set("latency_measures", kCeilingLat);
  return v;
}

std::string fs_type(const fs::path& p) {
  // The mount whose point is the longest prefix of p.
  std::ifstream f("/proc/mounts");
  std::string dev, mnt, type, rest, best_type = "?";
  size_t best = 0;
  std::string path = fs::weakly_canonical(p).string();
  while (f >> dev >> mnt >> type && std::getline(f, rest))
    if (path.rfind(mnt, 0) == 0 && mnt.size() >= best && (path.size() == mnt.size() || mnt == "/" || path[mnt.size()] == '/'))
      best = mnt.size(), best_type = type + " (" + dev + " on " + mnt + ")";
  return best_type;
}

// 12345.6 -> "12,346"
std::string fmt_rate(double v) {
  if (std::isnan(v)) return "-";
  std::string s = std::to_string(std::llround(v)), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string fmt_us(double us) {
  if (std::isnan(us)) return "-";
  char buf[32];
  if (us >= 10000) std::snprintf(buf, sizeof buf, "%.0f ms", us / 1000);
  else if (us >= 1000) std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000);
  else std::snprintf(buf, sizeof buf, "%.0f us", us);
  return buf;
}


}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  const std::string started = now_iso8601();
  auto logger = spdlog::stderr_color_mt("evald");
  spdlog::set_default_logger(logger);
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::warn);

  Plugins plugins;
  if (o.want("durable")) load_plugins(o, plugins);

  std::vector<RepeatResult> reps;
  for (int r = 0; r < o.repeat; ++r) {
    RepeatResult rr;
    std::string of = o.repeat > 1 ? " (repeat " + std::to_string(r + 1) + "/" + std::to_string(o.repeat) + ")" : "";
    // (a) and (c) back to back: the disk's sync cost drifts with what else runs on it.
    if (o.want("durable")) {
      phase_note(o, "durable engine, throughput: " + std::to_string(o.messages) + " entrants in one run" + of);
      rr.durable_tput = durable_throughput(o, plugins);
    }
    if (o.want("rocksdb")) {
      phase_note(o, "rocksdb ceiling: " + std::to_string(o.messages) + " synced batches" + of);
      rr.ceiling = rocksdb_ceiling(o);
    }
    if (o.want("zmq")) {
      phase_note(o, "raw zmq, throughput: " + std::to_string(o.messages) + " messages" + of);
      rr.zmq_tput = raw_zmq(o, o.messages, 0);
    }
    if (o.want("durable")) {
      phase_note(o, "durable engine, closed loop: " + std::to_string(o.latency_messages) + " runs of 1 entrant, " +
                        std::to_string(o.inflight) + " in flight" + of);
      rr.durable_lat = durable_closed_loop(o, plugins);
    }
    if (o.want("zmq")) {
      phase_note(o, "raw zmq, closed loop: " + std::to_string(o.latency_messages) + " messages, " +
                        std::to_string(o.inflight) + " in flight" + of);
      rr.zmq_lat = raw_zmq(o, o.latency_messages, o.inflight);
    }
    reps.push_back(std::move(rr));
  }
  Summary s = summarize(reps);

  double r_zmq = s.ratio_zmq, r_ceil = s.ratio_ceiling;
  std::optional<bool> target_ceiling, target_abs;
  if (s.durable_tput && s.ceiling) target_ceiling = r_ceil >= 0.5;
  if (s.durable_tput) target_abs = s.durable_tput->msgs_per_s >= 20000;

  struct utsname un{};
  uname(&un);
  unsigned cores = std::thread::hardware_concurrency();

  if (o.json) {
    Value out;
    out.set("benchmark", "evald-bench-pipeline");
    out.set("started", started);
    out.set("finished", now_iso8601());
    Value host;
    host.set("cpu", cpu_model());
    host.set("cores", int64_t(cores));
    host.set("kernel", std::string(un.release));
    host.set("data_fs", fs_type(o.dir));
    out.set("host", host);
    Value params;
    params.set("messages_per_stage", int64_t(o.messages));
    params.set("stages", 3);
    params.set("repeat", o.repeat);
    params.set("latency_messages", int64_t(o.latency_messages));
    params.set("inflight", o.inflight);
    params.set("workers_per_stage", o.workers);
    params.set("pad", int64_t(o.pad));
    params.set("data_dir_parent", o.dir.string());
    params.set("aggregate", "median of repeats, per figure");
    out.set("params", params);
    if (s.durable_tput || s.durable_lat) {
      Value d;
      if (s.durable_tput) d.set("throughput", pass_value(*s.durable_tput, kLatTput));
      if (s.durable_lat) d.set("closed_loop", pass_value(*s.durable_lat, kLatClosedDurable));
      out.set("durable", d);
    }
    if (s.zmq_tput || s.zmq_lat) {
      Value z;
      if (s.zmq_tput) z.set("throughput", pass_value(*s.zmq_tput, kLatTput));
      if (s.zmq_lat) z.set("closed_loop", pass_value(*s.zmq_lat, kLatClosedZmq));
      out.set("raw_zmq", z);
    }
    if (s.ceiling) out.set("rocksdb_ceiling", ceiling_value(*s.ceiling));
    Value ratios;
    ratios.set("durable_over_raw_zmq", r_zmq);
    ratios.set("durable_over_rocksdb_ceiling", r_ceil);
    ratios.set("how", "median over repeats of each repeat's own ratio; a repeat runs durable throughput and the ceiling back to back");
    out.set("ratios", ratios);
    Value targets;
    if (target_ceiling) targets.set("durable_at_least_half_of_ceiling", *target_ceiling);
    if (target_abs) targets.set("durable_at_least_20000_msgs_per_s", *target_abs);
    out.set("targets", targets);
    Array per;
    for (auto& r : reps) {
      Value v;
      if (r.durable_tput) v.set("durable_throughput", pass_value(*r.durable_tput, ""));
      if (r.durable_lat) v.set("durable_closed_loop", pass_value(*r.durable_lat, ""));
      if (r.zmq_tput) v.set("raw_zmq_throughput", pass_value(*r.zmq_tput, ""));
      if (r.zmq_lat) v.set("raw_zmq_closed_loop", pass_value(*r.zmq_lat, ""));
      if (r.ceiling) v.set("rocksdb_ceiling", ceiling_value(*r.ceiling));
      for (auto& [k, e] : v.as_map()) e.as_map().erase("latency_measures");
      v.set("ratio_durable_over_raw_zmq", r.ratio_zmq());
      v.set("ratio_durable_over_rocksdb_ceiling", r.ratio_ceiling());
      per.push_back(std::move(v));
    }
    out.set("repeats", std::move(per));
    std::printf("%s\n", to_json(out).c_str());
    return 0;
  }

  std::printf("evald-bench-pipeline  started %s, finished %s\n", started.c_str(), now_iso8601().c_str());
  std::printf("host: %s, %u cores, kernel %s; data dirs under %s: %s\n", cpu_model().c_str(), cores, un.release,
              o.dir.c_str(), fs_type(o.dir).c_str());
  std::printf("N = %llu messages per stage, 3 stages (3N = %llu messages), payload pad %zu B, %d engine worker(s) per stage;\n"
              "closed loop: %llu messages, %d in flight; median of %d repeat(s)\n\n",
              static_cast<unsigned long long>(o.messages), static_cast<unsigned long long>(3 * o.messages), o.pad,
              o.workers, static_cast<unsigned long long>(o.latency_messages), o.inflight, o.repeat);
  std::printf("%-33s %9s %9s %9s %9s %9s %7s %8s\n", "", "msgs/s", "lat p50", "lat p99", "syncs/msg", "sync p50",
              "in sync", "wall");
  auto line = [](const char* name, double rate, double p50, double p99, double spm, double sp50, double share,
                 double wall_s) {
    char spm_s[32], share_s[32], wall[32];
    std::snprintf(spm_s, sizeof spm_s, std::isnan(spm) ? "-" : "%.3f", spm);
    std::snprintf(share_s, sizeof share_s, std::isnan(share) ? "-" : "%.0f%%", share * 100);
    std::snprintf(wall, sizeof wall, "%.2f s", wall_s);
    std::printf("%-33s %9s %9s %9s %9s %9s %7s %8s\n", name, fmt_rate(rate).c_str(), fmt_us(p50).c_str(),
                fmt_us(p99).c_str(), spm_s, fmt_us(sp50).c_str(), share_s, wall);
  };
  auto row = [&](const char* name, const std::optional<PassResult>& p) {
    if (p) line(name, p->msgs_per_s, p->p50_us, p->p99_us, p->syncs_per_msg, p->sync_p50_us, p->sync_share, p->wall_s);
  };
  row("(a) durable engine, throughput", s.durable_tput);
  if (s.ceiling)
    line("(c) rocksdb ceiling, 1 batch/msg", s.ceiling->msgs_per_s, s.ceiling->p50_us, s.ceiling->p99_us,
         s.ceiling->syncs_per_msg, s.ceiling->sync_p50_us, s.ceiling->sync_share, s.ceiling->wall_s);
  row("(b) raw zmq, throughput", s.zmq_tput);
  row("(a) durable engine, closed loop", s.durable_lat);
  row("(b) raw zmq, closed loop", s.zmq_lat);
  std::printf("\nmsgs/s     (a), (b): 3N / wall time, every message counted once per stage it leaves. (c): synced\n"
              "           WriteBatches per second, one per message: a message record and a job record, %.0f bytes\n"
              "           (%s records/s; %llu batches%s).\n",
              s.ceiling ? s.ceiling->bytes_per_batch : NAN, s.ceiling ? fmt_rate(s.ceiling->records_per_s).c_str() : "-",
              static_cast<unsigned long long>(s.ceiling ? s.ceiling->batches : 0),
              s.ceiling && s.ceiling->capped ? " (median); a repeat stopped at the --ceiling-seconds cap" : "");
  std::printf("syncs/msg  fdatasync+fsync calls in the process during the pass / messages (WAL syncs, mostly);\n"
              "           the engine's group commit shows as < 1. sync p50: median duration of those calls, i.e. what\n"
              "           the disk charged while the pass ran; in sync: their summed duration / wall time.\n");
  std::printf("latency    throughput rows: %s.\n", kLatTput);
  std::printf("           closed-loop rows: %s (durable); %s (raw zmq).\n"
              "           Closed-loop msgs/s is not a throughput figure.\n",
              kLatClosedDurable, kLatClosedZmq);
  std::printf("           (c): %s.\n\n", kCeilingLat);
  auto pr = [](double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, std::isnan(r) ? "-" : "%.3f", r);
    return std::string(buf);
  };
  if (o.repeat > 1 && (s.durable_tput || s.ceiling)) {
    std::printf("per repeat, throughput in msgs/s (sync p50 during the pass):\n");
    std::printf("  %-4s %22s %22s %16s %10s\n", "", "(a) durable", "(c) rocksdb ceiling", "(a)/(c)", "(b) zmq");
    for (size_t i = 0; i < reps.size(); ++i) {
      auto& r = reps[i];
      auto cell = [&](double rate, double sp50) { return fmt_rate(rate) + " (" + fmt_us(sp50) + ")"; };
      std::printf("  %-4zu %22s %22s %16s %10s\n", i + 1,
                  r.durable_tput ? cell(r.durable_tput->msgs_per_s, r.durable_tput->sync_p50_us).c_str() : "-",
                  r.ceiling ? cell(r.ceiling->msgs_per_s, r.ceiling->sync_p50_us).c_str() : "-", pr(r.ratio_ceiling()).c_str(),
                  r.zmq_tput ? fmt_rate(r.zmq_tput->msgs_per_s).c_str() : "-");
    }
    std::printf("\n");
  }
  std::printf("ratio durable / raw zmq:          %s\n", pr(r_zmq).c_str());
  std::printf("ratio durable / rocksdb ceiling:  %s\n", pr(r_ceil).c_str());
  if (o.repeat > 1) std::printf("(ratios: median over repeats of each repeat's own ratio)\n");
  if (target_ceiling) std::printf("target durable >= 0.5 x ceiling:  %s\n", *target_ceiling ? "met" : "NOT met");
  if (target_abs) std::printf("target durable >= 20,000 msgs/s:  %s\n", *target_abs ? "met" : "NOT met");
  return 0;
}
