// benchmark: a per-entrant stage that runs benchmark suites against the entrant's
// OpenAI-compatible endpoint (backend openai) or runs the entrant's harness command (backend
// command), and emits `benchmark-score` with per-suite accuracies and the points of the
// configured sections. As a per-round stage (finish) it turns every entrant's
// `benchmark-score` into `benchmark-total`, which can also apply the normalisations that need
// the whole round (relative_to_best, min_max).
#include <evald/plugin.hpp>

#include "command.hpp"
#include "gpu.hpp"
#include "records.hpp"
#include "runner.hpp"
#include "scoring.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

using evald::Status;
using evald::Value;
namespace bench = evald::bench;

namespace {

class ContextKv : public bench::KvStore {
 public:
  explicit ContextKv(evald::Context& ctx) : ctx_(ctx) {}
  std::optional<evald::Bytes> get(const std::string& key) override { return ctx_.kv_get(key); }
  Status put(const std::string& key, const evald::Bytes& value) override { return ctx_.kv_put(key, value); }

 private:
  evald::Context& ctx_;
};

std::vector<int> int_list(const Value* v) {
  std::vector<int> out;
  if (v && v->is_array())
    for (auto& x : v->as_array())
      if (x.is_int()) out.push_back(int(x.as_int()));
  return out;
}

Status write_artifact(const std::string& path, const Value& v) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << evald::to_json(v) << "\n";
  if (!f) return Status::error(path + ": cannot write");
  return {};
}

std::map<std::string, double> targets_of(const Value& submission) {
  std::map<std::string, double> t;
  if (auto* m = submission.find("targets"); m && m->is_map())
    for (auto& [k, v] : m->as_map())
      if (v.is_number()) t[k] = v.as_double();
  return t;
}

}  // namespace

class Benchmark : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("backend", "openai: run suites against submission.endpoint / submission.model; command: run a harness command").def("openai").choices({"openai", "command"})
        .list("suites", "suite manifests (YAML) for the openai backend; relative paths from the daemon's working directory").def(Value(evald::Array{}))
        .string("api", "completions (/v1/completions) or chat (/v1/chat/completions)").def("completions").choices({"completions", "chat"})
        .string("scoring", "multiple choice: auto (log-likelihood when the endpoint returns prompt logprobs, else generate), logprobs, generate").def("auto").choices({"auto", "logprobs", "generate"})
        .number("temperature", "sampling temperature sent with every request").def(0.0).min(0).max(2)
        .integer("seed", "seed sent with every request").def(1234)
        .integer("max_tokens", "generation budget; 0: each suite's max_tokens").def(0).min(0).max(65536)
        .integer("logprob_max_tokens", "max_tokens of echo (logprob) requests; some servers refuse 0").def(0).min(0).max(16)
        .string("context_tokens", "logprobs: how a context's tokens are counted: auto (the server's tokenize endpoint when one agrees with its echo, else an echo of the context), tokenize, echo").def("auto").choices({"auto", "tokenize", "echo"})
        .number("max_tie_share", "multiple choice: a suite whose best choices tie on more than this share of units is flagged degenerate").def(0.05).min(0).max(1)
        .boolean("accept_degenerate", "accept suites flagged degenerate (ties, one letter for every answer) instead of failing the job").def(false)
        .integer("concurrency", "requests in flight per job").def(8).min(1).max(1024)
        .number("timeout_s", "deadline of one request attempt (connect, send, whole response)").def(120.0).min(0.01).max(86400)
        .integer("retries", "extra attempts after 429, 5xx, timeouts and connection errors").def(3).min(0).max(20)
        .number("backoff_s", "delay before the first retry; doubles each time").def(0.5).min(0).max(600)
        .number("backoff_max_s", "longest delay between retries (also caps Retry-After)").def(30.0).min(0).max(3600)
        .number("rate_limit", "requests started per second per job; 0: no cap").def(0.0).min(0).max(1e6)
        .integer("max_body_bytes", "largest response body accepted").def(int64_t(8) << 20).min(1024).max(int64_t(1) << 31)
        .string("api_key_env", "environment variable of the daemon holding a bearer token for the endpoint; empty: none").def("")
        .list("sections", "points: [{name, points, suites: [suite names], normalisation: absolute|relative_to_target|relative_to_best|min_max, targets?: {suite: accuracy}}]").def(Value(evald::Array{}))
        .string("kind", "kind of the per-entrant message").def("benchmark-score").min(1)
        .string("input_kind", "per-round stage: kind of the upstream per-entrant messages").def("benchmark-score").min(1)
        .string("round_kind", "per-round stage: kind of the per-entrant totals it emits").def("benchmark-total").min(1)
        .list("command", "command backend: argv; placeholders {endpoint} {model} {entrant} {output_dir} {gpus}").def(Value(evald::Array{}))
        .number("command_timeout_s", "command backend: wall-clock limit; past it the process group is killed").def(3600.0).min(0.1).max(7 * 86400.0)
        .string("harness_metric", "command backend: the lm-evaluation-harness metric taken as accuracy").def("acc").min(1)
        .list("gpus", "GPU indices of this machine for jobs (CUDA_VISIBLE_DEVICES of commands, telemetry)").def(Value(evald::Array{}))
        .integer("gpus_per_job", "command backend: GPUs leased to each job (when gpus is empty, commands see no GPU)").def(1).min(0).max(64)
        .boolean("share_gpus", "let concurrent jobs use the same GPUs").def(false)
        .boolean("telemetry", "sample the GPUs in gpus through NVML during a job").def(true)
        .number("telemetry_interval_s", "NVML sampling interval").def(0.5).min(0.01).max(60)
        .string("nvml_library", "NVML shared library loaded at run time").def("libnvidia-ml.so.1").min(1);
  }

  static Status validate(const Value& config) {
    auto sections = bench::sections_from(*config.find("sections"));
    if (!sections) return sections.status();
    std::string backend = config.get_string("backend");
    if (config.get_string("api") == "chat" && config.get_string("scoring") == "logprobs")
      return Status::error("config.scoring: logprobs needs api: completions (chat completions return no prompt logprobs)");
    auto& suites = config.find("suites")->as_array();
    if (backend == "openai") {
      if (suites.empty()) return Status::error("config.suites: the openai backend needs at least one suite manifest");
      std::set<std::string> names;
      for (size_t i = 0; i < suites.size(); ++i) {
        if (!suites[i].is_string()) return Status::error("config.suites[" + std::to_string(i) + "]: expected a path");
        auto s = bench::load_suite(suites[i].as_string());
        if (!s) return Status::error("config.suites[" + std::to_string(i) + "]: " + s.error());
        if (!names.insert(s->name).second) return Status::error("config.suites[" + std::to_string(i) + "]: suite name \"" + s->name + "\" appears twice");
      }
      for (size_t i = 0; i < sections->size(); ++i)
        for (auto& n : (*sections)[i].suites)
          if (!names.count(n))
            return Status::error("config.sections[" + std::to_string(i) + "].suites: \"" + n + "\" is not the name of a configured suite");
    } else {
      auto& cmd = config.find("command")->as_array();
      if (cmd.empty()) return Status::error("config.command: the command backend needs an argv list");
      for (size_t i = 0; i < cmd.size(); ++i)
        if (!cmd[i].is_string()) return Status::error("config.command[" + std::to_string(i) + "]: expected a string");
    }
    auto& gpus = config.find("gpus")->as_array();
    std::set<int64_t> seen;
    for (size_t i = 0; i < gpus.size(); ++i)
      if (!gpus[i].is_int() || gpus[i].as_int() < 0 || !seen.insert(gpus[i].as_int()).second)
        return Status::error("config.gpus[" + std::to_string(i) + "]: expected a distinct GPU index >= 0");
    if (backend == "command" && !gpus.empty() && size_t(config.get_int("gpus_per_job")) > gpus.size())
      return Status::error("config.gpus_per_job: " + std::to_string(config.get_int("gpus_per_job")) + " GPUs per job, config.gpus lists " +
                           std::to_string(gpus.size()));
    return {};
  }

  Benchmark(const Value& config, evald::Context&) : config_(config), sections_(*bench::sections_from(*config.find("sections"))) {
    gpus_ = int_list(config.find("gpus"));
  }

  Status process(const evald::Job& job, evald::Context& ctx) override {
    const Value& sub = job.entrant.find("submission") ? *job.entrant.find("submission") : Value();
    const std::string entrant = job.entrant.get_string("id", job.envelope.entrant);
    auto cancelled = [&ctx] { return ctx.cancelled(); };
    const bool command = config_.get_string("backend") == "command";

    // GPUs: the daemon's lease when the stage asks for `gpus: N` (its pool spans every worker
    // and process); else, without a daemon pool, a command job leases from config.gpus within
    // this process. Telemetry watches what the job uses.
    bench::GpuPool::Lease lease;
    const std::vector<int> leased = job.gpus();
    std::vector<int> watched = leased.empty() ? gpus_ : leased;
    if (command && leased.empty() && !gpus_.empty()) {
      auto l = bench::GpuPool::acquire(gpus_, size_t(config_.get_int("gpus_per_job")), config_.get_bool("share_gpus"), cancelled);
      if (!l) return l.status();
      lease = std::move(*l);
      watched = lease.gpus();
    }
    std::unique_ptr<bench::GpuTelemetry> telemetry;
    Value telemetry_out;
    if (config_.get_bool("telemetry")) {
      telemetry = std::make_unique<bench::GpuTelemetry>(config_.get_string("nvml_library"), watched, config_.get_double("telemetry_interval_s"));
      telemetry->start();
    } else {
      telemetry_out.set("available", false);
      telemetry_out.set("reason", "telemetry is off (config.telemetry)");
    }

    evald::Array suites, full_suites;
    Value backend_info;
    Status st = command ? run_command_backend(job, sub, entrant, leased.empty() ? lease.gpus() : leased, ctx, &suites, &backend_info)
                        : run_openai_backend(sub, ctx, &suites, &full_suites, &backend_info);
    if (telemetry) telemetry_out = telemetry->stop();
    if (!st) return st;
    // Efficiency per 100 items, for the job as a whole (telemetry spans all its suites): GPU
    // time is the wall time times the GPUs watched.
    if (telemetry_out.get_bool("available")) {
      int64_t items = 0;
      for (auto& s : suites) items += s.get_int("n");
      size_t gpus = telemetry_out.find("gpus") ? telemetry_out.find("gpus")->as_array().size() : 0;
      if (items > 0) {
        double gpu_s = telemetry_out.get_double("wall_s") * double(gpus);
        telemetry_out.set("items", items);
        telemetry_out.set("gpu_seconds", gpu_s);
        telemetry_out.set("gpu_seconds_per_100_items", gpu_s * 100.0 / double(items));
        telemetry_out.set("joules_per_100_items", telemetry_out.get_double("energy_j") * 100.0 / double(items));
      }
    }

    std::map<std::string, double> acc;
    for (auto& s : suites) acc[s.get_string("name")] = s.get_double("score");
    auto targets = targets_of(sub);
    Value scored = bench::score_sections(sections_, acc, targets, nullptr);
    // Each suite's share of the points, over the sections it is in (null while a section
    // that holds it has no points yet).
    for (auto& s : suites) {
      Value pts = 0.0;
      bool in_any = false;
      for (auto& sec : scored.find("sections")->as_array())
        for (auto& row : sec.find("suites")->as_array()) {
          if (row.get_string("suite") != s.get_string("name")) continue;
          in_any = true;
          if (auto* p = row.find("points"); p && p->is_number() && pts.is_number()) pts = pts.as_double() + p->as_double();
          else pts = Value();
        }
      s.set("points", in_any ? pts : Value());
    }

    const bool accept = config_.get_bool("accept_degenerate");
    for (auto* list : {&suites, &full_suites})
      for (auto& s : *list)
        if (auto* f = s.find("flags"); f && f->is_array() && !f->as_array().empty()) s.set("flags_accepted", accept);
    Value out;
    out.set("entrant", entrant);
    out.set("backend", config_.get_string("backend"));
    out.set("points", *scored.find("points"));
    out.set("scale", *scored.find("scale"));
    out.set("complete", *scored.find("complete"));
    if (auto* r = scored.find("reason")) out.set("reason", *r);
    out.set("sections", *scored.find("sections"));
    out.set("suites", suites);
    if (!targets.empty()) {
      Value t;
      for (auto& [k, v] : targets) t.set(k, v);
      out.set("targets", t);
    }
    out.set("telemetry", telemetry_out);
    out.set(command ? "command" : "endpoint", backend_info);
    out.set("points_rule",
            "section points = points x mean over its suites of the normalised score; a suite's score is its debiased accuracy when the "
            "suite rotates choices, else its accuracy; absolute: score; relative_to_target: min(1, score / target); relative_to_best "
            "and min_max need the whole round and come from the per-round stage (benchmark-total)");

    // The full result, with every item's record, as an artifact; the message names it.
    Value full = out;
    if (!full_suites.empty()) {
      for (size_t i = 0; i < full_suites.size() && i < suites.size(); ++i) full_suites[i].set("points", *suites[i].find("points"));
      full.set("suites", full_suites);
    }
    std::string path = ctx.artifact_dir() + "/benchmark-" + entrant + ".json";
    if (auto w = write_artifact(path, full); !w) return w;
    std::ifstream f(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // The same names as every other plugin's results, so a report's manifest picks them up.
    out.set("artifact", path);
    out.set("artifact_sha256", evald::text::sha256_hex(bytes));
    evald::Array inputs;
    for (auto& suite : suites) {
      if (auto* files = suite.find("item_files"); files && files->is_array())
        for (auto& f : files->as_array()) inputs.push_back(f);
      if (auto* man = suite.find("manifest"); man && man->is_map() && !man->get_string("path").empty()) {
        Value m = *man;
        m.set("format", "suite manifest");
        inputs.push_back(std::move(m));
      }
    }
    out.set("inputs", std::move(inputs));
    if (auto st = degenerate_gate(suites, path); !st) return st;
    return ctx.emit(config_.get_string("kind"), out);
  }

  Status finish(const evald::Job& job, evald::Context& ctx) override {
    std::map<std::string, const evald::Message*> by_entrant;
    for (auto* m : job.inputs_of(config_.get_string("input_kind"))) by_entrant[m->envelope.entrant] = m;
    std::map<std::string, std::vector<double>> round;
    std::map<std::string, std::map<std::string, double>> acc;
    for (auto& [e, m] : by_entrant) {
      if (auto* s = m->payload.find("suites"); s && s->is_array())
        for (auto& x : s->as_array()) {
          acc[e][x.get_string("name")] = x.get_double("score");
          round[x.get_string("name")].push_back(x.get_double("score"));
        }
    }
    std::vector<std::string> entrants;
    if (auto* r = job.round.find("entrants"); r && r->is_array()) {
      for (auto& e : r->as_array()) {
        if (e.is_string()) entrants.push_back(e.as_string());
        else if (e.is_map()) entrants.push_back(e.get_string("id"));
      }
    }
    for (auto& [e, _] : by_entrant)
      if (std::find(entrants.begin(), entrants.end(), e) == entrants.end()) entrants.push_back(e);
    for (auto& f : job.failed_upstream)
      if (!f.entrant.empty() && std::find(entrants.begin(), entrants.end(), f.entrant) == entrants.end()) entrants.push_back(f.entrant);

    for (auto& e : entrants) {
      Value out;
      out.set("entrant", e);
      auto it = by_entrant.find(e);
      if (it == by_entrant.end()) {
        std::string why = "no " + config_.get_string("input_kind") + " result";
        for (auto& f : job.failed_upstream)
          if (f.entrant == e) why = "upstream " + f.stage + " failed: " + f.error;
        double scale = 0;
        for (auto& s : sections_) scale += s.points;
        out.set("points", Value());
        out.set("scale", scale);
        out.set("complete", false);
        out.set("reason", why);
      } else {
        Value scored = bench::score_sections(sections_, acc[e], targets_of(it->second->payload), &round);
        for (auto& [k, v] : scored.as_map()) out.set(k, v);
      }
      if (auto st = ctx.emit(config_.get_string("round_kind"), out); !st) return st;
    }
    return {};
  }

 private:
  // A suite flagged degenerate fails the job, after its artifact is written for review,
  // unless the operator accepts it.
  Status degenerate_gate(const evald::Array& suites, const std::string& artifact) const {
    if (config_.get_bool("accept_degenerate")) return {};
    std::string msg;
    for (auto& s : suites) {
      auto* flags = s.find("flags");
      if (!flags || !flags->is_array()) continue;
      for (auto& f : flags->as_array()) msg += (msg.empty() ? "" : "; ") + s.get_string("name") + ": " + f.get_string("message");
    }
    if (msg.empty()) return {};
    return Status::error("degenerate benchmark results, not scored: " + msg + ". Every item's record (each choice's tokens and log-likelihood) is in " +
                         artifact + "; check the endpoint with evald-bench-benchmark-client --check, or set accept_degenerate: true to accept");
  }

  Status run_openai_backend(const Value& sub, evald::Context& ctx, evald::Array* suites, evald::Array* full, Value* info) {
    std::string url = sub.get_string("endpoint"), model = sub.get_string("model");
    if (url.empty()) return Status::error("submission.endpoint: required for the openai backend (http://host:port/v1)");
    if (model.empty()) return Status::error("submission.model: required for the openai backend (the model name the server expects)");
    auto ep = bench::parse_endpoint(url);
    if (!ep) return Status::error("submission.endpoint: " + ep.error());
    bench::ClientOptions co;
    co.concurrency = size_t(config_.get_int("concurrency"));
    co.timeout_s = config_.get_double("timeout_s");
    co.retries = int(config_.get_int("retries"));
    co.backoff_s = config_.get_double("backoff_s");
    co.backoff_max_s = config_.get_double("backoff_max_s");
    co.rate_limit = config_.get_double("rate_limit");
    co.max_body_bytes = size_t(config_.get_int("max_body_bytes"));
    if (std::string env = config_.get_string("api_key_env"); !env.empty()) {
      const char* k = std::getenv(env.c_str());
      if (!k) return Status::error("config.api_key_env: environment variable " + env + " is not set");
      co.api_key = k;
    }
    bench::HttpClient client(*ep, co);
    bench::RunOptions ro;
    ro.model = model;
    ro.decoding.api = config_.get_string("api");
    ro.decoding.scoring = config_.get_string("scoring");
    ro.decoding.temperature = config_.get_double("temperature");
    ro.decoding.seed = config_.get_int("seed");
    ro.decoding.max_tokens = int(config_.get_int("max_tokens"));
    ro.decoding.logprob_max_tokens = int(config_.get_int("logprob_max_tokens"));
    ro.context_tokens = config_.get_string("context_tokens");
    ro.max_tie_share = config_.get_double("max_tie_share");
    ro.cancelled = [&ctx] { return ctx.cancelled(); };
    ContextKv kv(ctx);
    auto& list = config_.find("suites")->as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      auto suite = bench::load_suite(list[i].as_string());
      if (!suite) return suite.status();
      ro.progress = [&ctx, i, n = list.size()](size_t done, size_t total) {
        ctx.progress(double(i) + (total ? double(done) / double(total) : 1.0), double(n));
      };
      auto r = bench::run_suite(*suite, client, kv, ro);
      if (!r) return r.status();
      full->push_back(*r);
      r->as_map().erase("records");
      suites->push_back(std::move(*r));
    }
    info->set("url", ep->url());
    info->set("model", model);
    info->set("model_identity", bench::model_identity(ep->url(), model));
    info->set("execution", Value(evald::Map{{"requests_sent", Value(int64_t(client.attempts_sent()))}}));
    return {};
  }

  Status run_command_backend(const evald::Job& job, const Value& sub, const std::string& entrant, const std::vector<int>& gpus,
                             evald::Context& ctx, evald::Array* suites, Value* info) {
    namespace fs = std::filesystem;
    std::string out_dir = ctx.artifact_dir() + "/command-" + entrant;
    std::error_code ec;
    fs::remove_all(out_dir, ec);  // a retried job must not read the results of an earlier attempt
    fs::create_directories(out_dir, ec);
    if (ec) return Status::error(out_dir + ": " + ec.message());
    std::string gpu_list;
    for (int g : gpus) gpu_list += (gpu_list.empty() ? "" : ",") + std::to_string(g);
    std::map<std::string, std::string> vars{{"endpoint", sub.get_string("endpoint")},
                                            {"model", sub.get_string("model")},
                                            {"entrant", entrant},
                                            {"output_dir", out_dir},
                                            {"gpus", gpu_list}};
    bench::CommandSpec spec;
    for (auto& a : config_.find("command")->as_array()) {
      auto x = bench::expand(a.as_string(), vars);
      if (!x) return Status::error("config.command: " + x.error());
      spec.argv.push_back(*x);
    }
    // An empty CUDA_VISIBLE_DEVICES hides every GPU: a job without a lease gets none.
    spec.env["CUDA_VISIBLE_DEVICES"] = gpu_list;
    spec.env["EVALD_OUTPUT_DIR"] = out_dir;
    spec.env["EVALD_ENTRANT"] = entrant;
    spec.env["EVALD_RUN"] = job.envelope.run;
    spec.workdir = out_dir;
    spec.stdout_path = out_dir + "/stdout.txt";
    spec.stderr_path = out_dir + "/stderr.txt";
    spec.timeout_s = config_.get_double("command_timeout_s");
    auto res = bench::run_command(spec, [&ctx] { return ctx.cancelled(); });
    if (!res) return res.status();
    info->set("argv", evald::Array(spec.argv.begin(), spec.argv.end()));
    info->set("cuda_visible_devices", gpu_list);
    info->set("exit_code", res->exit_code);
    info->set("wall_s", res->wall_s);
    info->set("stdout", spec.stdout_path);
    info->set("stderr", spec.stderr_path);
    std::string tail;
    {
      std::ifstream f(spec.stderr_path, std::ios::binary);
      std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      tail = all.substr(all.size() > 300 ? all.size() - 300 : 0);
    }
    std::string what = "command " + spec.argv[0];
    if (res->timed_out)
      return Status::error(what + " ran past command_timeout_s (" + std::to_string(spec.timeout_s) + " s) and was killed; stderr in " + spec.stderr_path);
    if (res->cancelled) return Status::error(what + ": cancelled, process group killed");
    if (res->signal) return Status::error(what + " was killed by signal " + std::to_string(res->signal) + "; stderr tail: " + tail);
    if (res->exit_code != 0)
      return Status::error(what + " exited with status " + std::to_string(res->exit_code) + "; stderr tail: " + tail);
    std::string results = bench::find_results_file(out_dir);
    if (results.empty())
      return Status::error(what + " exited 0 but wrote no results*.json under " + out_dir + " (pass --output_path {output_dir} to lm_eval)");
    auto s = bench::harness_suites(results, config_.get_string("harness_metric"));
    if (!s) return s.status();
    info->set("results_file", results);
    for (auto& v : *s) suites->push_back(std::move(v));
    return {};
  }

  Value config_;
  std::vector<bench::SectionSpec> sections_;
  std::vector<int> gpus_;
};

EVALD_PLUGIN(Benchmark, "benchmark", "1.0.0", "Benchmark suites against an entrant's endpoint or harness: cached, resumable, scored into points")
