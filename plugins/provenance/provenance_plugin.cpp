// provenance: per entrant, decides for each component of the submitted model (LLM blocks,
// embeddings and output head, vision encoder with its projector) whether its weights derive from
// a model in the reference fingerprint library, and emits the verdicts, the evidence and a gate
// result ("fail" when a gated component is derived, "inconclusive" when the weights could not be
// read or analysed: never a pass). With a checkpoint series it also checks the claimed training
// history. The full report is also written as JSON into the job's artifact directory.
#include <evald/plugin.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "library.hpp"
#include "records.hpp"
#include "report.hpp"

namespace fs = std::filesystem;
using evald::Status;
using evald::Value;

namespace {

// Every weight file a report names ("files" of the model, of each checkpoint and of the final
// model), once each, in the order met.
void collect_files(const Value& v, std::vector<std::string>& out) {
  if (v.is_map()) {
    for (auto& [k, x] : v.as_map()) {
      if (k == "files" && x.is_array()) {
        for (auto& f : x.as_array())
          if (f.is_string() && std::find(out.begin(), out.end(), f.as_string()) == out.end()) out.push_back(f.as_string());
      } else {
        collect_files(x, out);
      }
    }
  } else if (v.is_array()) {
    for (auto& x : v.as_array()) collect_files(x, out);
  }
}

// The verdicts without per-tensor detail, for the message; the detail is in the artifact.
Value summary(const Value& report) {
  Value out;
  for (const char* k : {"kind", "model", "gate", "thresholds", "gate_components", "library", "declared_lineage", "consistent", "break", "checkpoints"})
    if (const Value* v = report.find(k)) out.set(k, *v);
  const Value* comps = report.find("components");
  if (const Value* fin = report.find("final")) comps = fin->find("components");
  Value cs = Value(evald::Array{});
  if (comps)
    for (const Value& c : comps->as_array()) {
      Value s;
      for (const char* k : {"component", "verdict", "source", "p_holm", "log10_p_holm", "effect", "reason"})
        if (const Value* v = c.find(k)) s.set(k, *v);
      // Per-layer evidence against the decisive reference: enough to draw a heatmap.
      Value layers = Value(evald::Array{});
      const Value* refs = c.find("references");
      if (refs && !refs->as_array().empty())
        if (const Value* tensors = refs->as_array()[0].find("tensors"))
          for (const Value& t : tensors->as_array()) {
            Value l;
            for (const char* k : {"tensor", "role", "layer", "ref_tensor", "ref_layer", "effect", "z", "p", "verbatim"})
              if (const Value* v = t.find(k)) l.set(k, *v);
            layers.push_back(l);
          }
      if (refs && !refs->as_array().empty()) s.set("reference", refs->as_array()[0].get_string("reference"));
      s.set("layers", layers);
      cs.push_back(s);
    }
  out.set("components", cs);
  if (const Value* links = report.find("links")) {
    Value ls = Value(evald::Array{});
    for (const Value& l : links->as_array()) {
      Value s;
      for (const char* k : {"from", "to", "descends", "not_descending"})
        if (const Value* v = l.find(k)) s.set(k, *v);
      ls.push_back(s);
    }
    out.set("links", ls);
  }
  if (const Value* e = report.find("error")) out.set("error", *e);
  return out;
}

}  // namespace

class Provenance : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("library", "fingerprint library directory (RocksDB) built with evald-provenance add").required().min(1)
        .string("model_key", "submission field holding the model directory or weight file").def("model").min(1)
        .string("checkpoints_key", "submission field holding a run directory of checkpoints (optional per entrant)").def("checkpoints").min(1)
        .number("alpha", "family-wise error rate per component; Holm correction across the library").def(0.01).min(1e-12).max(0.5)
        .number("min_effect", "mean matched unit correlation required to call a component derived").def(0.2).min(0.01).max(1)
        .number("screen", "Gram similarity below which a reference tensor is only index-tested, not matched by content").def(0.1).min(0).max(1)
        .integer("min_null_models", "known-independent models the library must hold before calibrated evidence decides").def(3).min(1).max(1000000)
        .number("null_z", "standard deviations above the known-independent models' mean that calibrated evidence needs").def(3.0).min(0).max(100)
        .number("max_unassigned_share", "share of the parameters in tensors placed in no component above which the gate is inconclusive").def(0.05).min(0).max(1)
        .integer("permutations", "permutations per unit-matching test (p-value floor 1/(n+1))").def(999).min(19).max(1000000)
        .integer("seed", "permutation seed; equal seeds give equal reports").def(1).min(0)
        .integer("threads", "threads per job").def(2).min(1).max(256)
        .list("component_rules", "extra {pattern: regex, component: llm|embeddings|vision|other} rules, tried before the built-in ones").def(Value(evald::Array{}))
        .list("gate_components", "components whose derivation fails the gate").def(Value(evald::Array{Value("llm"), Value("embeddings"), Value("vision")}))
        .boolean("hash_inputs", "sha256 every weight file scanned and list them as the result's inputs, so a report can name exactly the weights judged (one more read of the files)").def(true)
        .string("kind", "kind of the emitted message").def("provenance").min(1);
  }

  // Checks that the library opens and lists, without reading the fingerprints (start does).
  static Status validate(const Value& config) {
    auto opt = evald::prov::scan_options_from(config);
    if (!opt) return opt.status();
    std::string dir = config.get_string("library");
    if (!fs::is_directory(dir)) return Status::error("library: " + dir + " is not a directory (build one with evald-provenance add)");
    auto lib = evald::prov::FingerprintLibrary::open(dir, true, false);
    if (!lib) return lib.status();
    auto entries = (*lib)->entries();
    if (!entries) return entries.status();
    if (std::none_of(entries->begin(), entries->end(), [](const evald::prov::LibraryEntry& e) { return e.kind == "reference"; }))
      return Status::error("library: " + dir + " holds no reference model (" + std::to_string(entries->size()) +
                           " known-independent): nothing to compare with");
    return {};
  }

  Provenance(const Value& config, evald::Context&) : config_(config) {}

  Status start() override {
    auto opt = evald::prov::scan_options_from(config_);
    if (!opt) return opt.status();
    opt_ = *opt;
    auto lib = evald::prov::open_references(config_.get_string("library"));
    if (!lib) return lib.status();
    library_ = std::move(*lib);
    return {};
  }

  Status process(const evald::Job& job, evald::Context& ctx) override {
    const Value* sub = job.entrant.find("submission");
    const Value* model = sub ? sub->find(config_.get_string("model_key")) : nullptr;
    const Value* run = sub ? sub->find(config_.get_string("checkpoints_key")) : nullptr;
    if ((!model || !model->is_string()) && (!run || !run->is_string()))
      return Status::error("entrant " + job.envelope.entrant + ": submission has neither \"" + config_.get_string("model_key") + "\" nor \"" +
                           config_.get_string("checkpoints_key") + "\"");
    evald::prov::ScanOptions opt = opt_;
    opt.cancelled = [&ctx] { return ctx.cancelled(); };
    auto progress = [&ctx](uint64_t done, uint64_t total) { ctx.progress(double(done), double(total)); };
    Value report;
    if (run && run->is_string()) {
      std::vector<std::string> ckpts = evald::prov::checkpoint_dirs(run->as_string());
      if (model && model->is_string() && (ckpts.empty() || fs::path(ckpts.back()) != fs::path(model->as_string())))
        ckpts.push_back(model->as_string());
      ctx.info("trajectory of " + std::to_string(ckpts.size()) + " checkpoints in " + run->as_string());
      report = evald::prov::trajectory_report(ckpts, *library_, opt, progress);
    } else {
      ctx.info("scanning " + model->as_string() + " against " + std::to_string(library_->size()) + " reference fingerprints");
      report = evald::prov::scan_report(model->as_string(), *library_, opt, progress);
    }
    if (ctx.cancelled()) return Status::error("cancelled");
    report.set("entrant", job.envelope.entrant);
    evald::Array inputs;
    if (config_.get_bool("hash_inputs")) {
      std::vector<std::string> files;
      collect_files(report, files);
      for (size_t i = 0; i < files.size(); ++i) {
        if (ctx.cancelled()) return Status::error("cancelled");
        auto hashed = evald::text::sha256_file(files[i]);
        if (hashed.sha256.empty())
          return Status::error(hashed.error.empty() ? files[i] + ": cannot read it to hash it (it is gone)" : hashed.error);
        const std::string& sha = hashed.sha256;
        Value in;
        in.set("path", files[i]);
        in.set("sha256", sha);
        in.set("format", "weights");
        inputs.push_back(std::move(in));
      }
      report.set("inputs", inputs);
    }
    std::string json = evald::to_json(report);
    fs::path file = fs::path(ctx.artifact_dir()) / ("provenance-" + job.envelope.entrant + ".json");
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << json;
    out.close();
    if (!out) return Status::error("cannot write " + file.string());
    Value msg = summary(report);
    msg.set("entrant", job.envelope.entrant);
    msg.set("report_file", file.string());
    msg.set("report_sha256", evald::text::sha256_hex(json));
    if (!inputs.empty()) msg.set("inputs", std::move(inputs));
    const Value* g = report.find("gate");
    ctx.info("gate " + (g ? g->get_string("result") : std::string("?")) + ": " + (g ? g->get_string("reason") : std::string()));
    return ctx.emit(config_.get_string("kind"), msg);
  }

 private:
  Value config_;
  evald::prov::ScanOptions opt_;
  // The library's fingerprint heads; sketches are read from it per tensor.
  std::unique_ptr<evald::prov::ReferenceSet> library_;
};

EVALD_PLUGIN(Provenance, "provenance", "1.0.0",
             "Decides per component whether a submitted model derives from a known open model (weights provenance gate)")
