// test-behave: a plugin whose behaviour the test picks by config, to drive the engine
// through success, exceptions, failures, retries, hangs and barriers with a real library.
#include <evald/plugin.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

using evald::Status;
using evald::Value;

class Behave : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("mode", "ok, throw, fail, flaky (fails each job's first attempt), hang (until cancelled), hang_hard (ignores cancellation), crash (aborts the process)")
        .def("ok")
        .choices({"ok", "throw", "fail", "flaky", "hang", "hang_hard", "crash"})
        .list("only", "apply mode only to these entrants (empty: all)")
        .def(evald::Array{})
        .integer("sleep_ms", "sleep this long in every job")
        .def(0)
        .min(0)
        .max(600000)
        .string("intake", "report the ids of the round's intake records on this channel in every output (empty: none)")
        .def("")
        .integer("emit", "messages to emit per job")
        .def(1)
        .min(0)
        .max(100000);
  }
  static Status validate(const Value& config) {
    if (config.get_string("mode") == "hang_hard" && config.get_int("sleep_ms") == 0)
      return Status::error("mode hang_hard needs sleep_ms (how long to hang)");
    return {};
  }

  Behave(const Value& config, evald::Context&)
      : mode_(config.get_string("mode")), intake_(config.get_string("intake")), sleep_ms_(config.get_int("sleep_ms")), emit_(config.get_int("emit")) {
    if (auto* o = config.find("only"))
      for (auto& e : o->as_array()) only_.push_back(e.as_string());
  }

  Status process(const evald::Job& job, evald::Context& ctx) override { return run(job, ctx); }
  Status finish(const evald::Job& job, evald::Context& ctx) override { return run(job, ctx); }

 private:
  // GPUs held by jobs running in this process, to catch two jobs given the same GPU.
  static std::mutex& gpu_mu() {
    static std::mutex m;
    return m;
  }
  static std::map<int, int>& gpu_busy() {
    static std::map<int, int> b;
    return b;
  }

  Status run(const evald::Job& job, evald::Context& ctx) {
    const std::vector<int> gpus = job.gpus();
    bool overlap = false;
    {
      std::lock_guard lock(gpu_mu());
      for (int g : gpus) overlap |= gpu_busy()[g]++ > 0;
    }
    struct Release {
      const std::vector<int>& gpus;
      ~Release() {
        std::lock_guard lock(gpu_mu());
        for (int g : gpus) --gpu_busy()[g];
      }
    } release{gpus};
    if (sleep_ms_ > 0 && mode_ != "hang_hard") std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    bool applies = only_.empty() || std::find(only_.begin(), only_.end(), job.envelope.entrant) != only_.end();
    std::string mode = applies ? mode_ : "ok";
    if (mode == "crash") std::abort();
    if (mode == "throw") throw std::runtime_error("behave: thrown on purpose for " + job.envelope.entrant);
    if (mode == "fail") return Status::error("behave: failed on purpose for " + job.envelope.entrant);
    if (mode == "flaky") {
      std::string key = "attempts/" + job.envelope.job;
      auto seen = ctx.kv_get(key);
      if (!seen) {
        (void)ctx.kv_put(key, std::string_view("1"));
        return Status::error("behave: flaky first attempt of " + job.envelope.job);
      }
    }
    if (mode == "hang") {
      while (!ctx.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Status::error("behave: cancelled");
    }
    if (mode == "hang_hard") std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    // Deterministic output: a function of the job's identity and inputs only.
    evald::Array intake_ids;
    int64_t intake_bytes = 0;
    if (!intake_.empty()) {
      auto st = ctx.intake(intake_, [&](const Value& rec) {
        intake_ids.push_back(rec.get_string("id"));
        intake_bytes += int64_t(rec.get_string("blob").size());
        return Status();
      });
      if (!st) return st;
    }
    double in_sum = 0;
    for (auto& m : job.inputs) in_sum += m.payload.get_double("value");
    for (int64_t i = 0; i < emit_; ++i) {
      Value p;
      p.set("entrant", job.envelope.entrant);
      p.set("stage", job.envelope.stage);
      p.set("i", i);
      p.set("inputs", int64_t(job.inputs.size()));
      p.set("failed_upstream", int64_t(job.failed_upstream.size()));
      p.set("value", in_sum + 1.0);
      if (!gpus.empty()) {
        p.set("gpus", evald::Array(gpus.begin(), gpus.end()));
        p.set("gpu_overlap", overlap);
      }
      if (!intake_.empty()) {
        p.set("intake_ids", intake_ids);
        p.set("intake_bytes", intake_bytes);
      }
      ctx.progress(double(i + 1), double(emit_));
      if (auto st = ctx.emit("value", p); !st) return st;
    }
    return {};
  }

  std::string mode_, intake_;
  int64_t sleep_ms_, emit_;
  std::vector<std::string> only_;
};

EVALD_PLUGIN(Behave, "test-behave", "1.0.0", "Test plugin: behaves as configured (ok, throw, fail, flaky, hang)")
