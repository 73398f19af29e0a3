// bench-relay: the one plugin behind evald-bench-pipeline's durable pipeline. Three roles,
// picked by config, make a source -> relay -> sink chain of per-entrant stages:
//
//   source  emits one message per entrant: {entrant, pad: <pad bytes>, t0: steady_clock ns}
//           (about 100 bytes of msgpack with the default pad of 64)
//   relay   emits its single input's payload unchanged
//   sink    emits its single input's payload plus lat_ns = now - t0, the time from the
//           source's emit to the moment this job started running
//
// steady_clock is the same clock in the plugin and in the benchmark (same process), so the
// latency is meaningful. Not installed and not built into the daemon's plugin directory.
#include <evald/plugin.hpp>

#include <atomic>
#include <chrono>

namespace {

std::atomic<uint64_t> g_sunk{0};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// Number of sink jobs run since the library was loaded. The benchmark looks it up with
// dlsym for its progress line; nothing else uses it.
extern "C" __attribute__((visibility("default"))) uint64_t evald_bench_relay_sunk() {
  return g_sunk.load(std::memory_order_relaxed);
}

class Relay : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("role", "source (emit a timestamped message), relay (forward the input) or sink (forward it and add lat_ns)")
        .choices({"source", "relay", "sink"})
        .required()
        .integer("pad", "source only: bytes of padding in the payload").def(64).min(0).max(1 << 20)
        .string("kind", "kind of the emitted messages").def("relay").min(1);
  }

  Relay(const evald::Value& config, evald::Context&)
      : role_(config.get_string("role")), pad_(size_t(config.get_int("pad", 64))), kind_(config.get_string("kind", "relay")) {}

  evald::Status process(const evald::Job& job, evald::Context& ctx) override {
    int64_t now = now_ns();
    if (role_ == "source") {
      evald::Value p;
      p.set("entrant", job.envelope.entrant);
      p.set("pad", std::string(pad_, 'x'));
      p.set("t0", now_ns());
      return ctx.emit(kind_, p);
    }
    if (job.inputs.size() != 1)
      return evald::Status::error("expected exactly one input, got " + std::to_string(job.inputs.size()));
    evald::Value p = job.inputs.front().payload;
    if (role_ == "sink") {
      auto* t0 = p.find("t0");
      if (!t0 || !t0->is_int()) return evald::Status::error("input payload has no integer t0");
      p.set("lat_ns", now - t0->as_int());
      g_sunk.fetch_add(1, std::memory_order_relaxed);
    }
    return ctx.emit(kind_, p);
  }

 private:
  std::string role_;
  size_t pad_;
  std::string kind_;
};

EVALD_PLUGIN(Relay, "bench-relay", "1.0.0", "Benchmark relay: source, relay or sink of timestamped messages")
