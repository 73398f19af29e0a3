// sum: a barrier stage that adds up the values every entrant produced upstream. Entrants
// whose upstream job failed are listed as missing, never counted as zero.
#include <evald/plugin.hpp>

#include <filesystem>
#include <fstream>

class Sum : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("input_kind", "kind of the upstream messages to add").def("value").min(1)
        .string("field", "payload field holding the number").def("value").min(1)
        .string("output", "also write the result as JSON to this file; a relative path is inside the job's artifact directory (empty: only emit it)").def("");
  }

  Sum(const evald::Value& config, evald::Context&)
      : kind_(config.get_string("input_kind")), field_(config.get_string("field")), output_(config.get_string("output")) {}

  evald::Status finish(const evald::Job& job, evald::Context& ctx) override {
    double total = 0;
    evald::Value per;
    per = evald::Map{};
    evald::Array sources;
    for (auto* m : job.inputs_of(kind_)) {
      auto* v = m->payload.find(field_);
      if (!v || !v->is_number())
        return evald::Status::error("message " + m->envelope.job + " has no number in field \"" + field_ + "\"");
      total += v->as_double();
      per.set(m->envelope.entrant.empty() ? m->envelope.job : m->envelope.entrant, v->as_double());
      sources.push_back(m->envelope.job);
    }
    evald::Array missing;
    for (auto& f : job.failed_upstream) {
      evald::Value e;
      e.set("stage", f.stage);
      e.set("entrant", f.entrant);
      e.set("error", f.error);
      missing.push_back(std::move(e));
    }
    evald::Value out;
    out.set("total", total);
    out.set("count", int64_t(sources.size()));
    out.set("per_entrant", per);
    out.set("missing", std::move(missing));
    out.set("sources", std::move(sources));
    out.set("run", job.envelope.run);
    if (!output_.empty()) {
      std::filesystem::path path(output_);
      if (path.is_relative()) path = std::filesystem::path(ctx.artifact_dir()) / path;
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f << evald::to_json(out) << "\n";
      if (!f) return evald::Status::error(path.string() + ": cannot write result");
      out.set("output", path.string());
      ctx.info("wrote " + path.string());
    }
    return ctx.emit("sum", out);
  }

 private:
  std::string kind_, field_, output_;
};

EVALD_PLUGIN(Sum, "sum", "1.0.0", "Barrier: sums the values all entrants produced upstream")
