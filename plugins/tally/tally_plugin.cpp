// tally: the barrier stage that closes a round (see src/round_tally.hpp for the rules and
// the result). Operators' decisions about entrants come from the round's intake, so each is
// stored once, audited and listed in the result beside what it changed.
#include <evald/plugin.hpp>

#include "records.hpp"
#include "round_tally.hpp"

#include <fstream>

using evald::Status;
using evald::Value;

class Tally : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .list("components", "scored components: [{name, kind, scale, stage?, field? (points), label_en?, label_ko?}]").required()
        .list("gates", "gates: [{name, kind, stage?, field? (gate), inconclusive? (hold|fail|pass), label_en?, label_ko?}]").def(Value(evald::Array{}))
        .list("tie_breaks", "component names breaking equal totals, in order (higher first)").def(Value(evald::Array{}))
        .integer("advance_top", "the best N not disqualified advance (0: no limit)").def(0).min(0).max(100000)
        .number("advance_min_total", "advance only with a total at least this (-1: no minimum)").def(-1.0).min(-1)
        .integer("decimals", "decimals points are shown with (totals are computed from unrounded values)").def(1).min(0).max(4)
        .string("decisions_intake", "intake channel of operators' decisions (evalctl intake submit); empty: none").def("decisions")
        .string("kind", "kind of the emitted message").def("tally").min(1);
  }

  static Status validate(const Value& config) {
    auto c = evald::tally::tally_config_from(config);
    return c ? Status() : c.status();
  }

  Tally(const Value& config, evald::Context&) : config_(config), cfg_(*evald::tally::tally_config_from(config)) {}

  Status finish(const evald::Job& job, evald::Context& ctx) override {
    std::vector<evald::tally::OperatorDecision> decisions;
    if (std::string ch = config_.get_string("decisions_intake"); !ch.empty()) {
      auto st = ctx.intake(ch, [&](const Value& r) {
        decisions.push_back({r.get_string("id"), evald::text::field_text(r, "entrant"), evald::text::field_text(r, "decision"),
                             evald::text::field_text(r, "reason"), evald::text::field_text(r, "by"), r.get_string("received_at")});
        return Status();
      });
      if (!st) return st;
    }
    auto cfg = evald::tally::apply_round_rules(cfg_, job.round.find("rules") ? *job.round.find("rules") : Value());
    if (!cfg) return cfg.status();
    Value result = evald::tally::tally_round(*cfg, job, decisions);
    std::string json = evald::to_json(result) + "\n";
    std::string path = ctx.artifact_dir() + "/tally.json";
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f << json;
      if (!f) return Status::error(path + ": cannot write the tally");
    }
    result.set("artifact", path);
    result.set("artifact_sha256", evald::text::sha256_hex(json));
    int64_t advance = 0, pending = 0;
    for (auto& e : result.find("entrants")->as_array()) {
      advance += e.get_string("decision") == "advance";
      pending += e.get_string("decision") == "pending";
    }
    ctx.info("round " + job.envelope.round + (result.get_bool("decided") ? " decided: " : " undecided: ") + std::to_string(advance) +
             " advance, " + std::to_string(pending) + " pending");
    return ctx.emit(config_.get_string("kind"), result);
  }

 private:
  Value config_;
  evald::tally::TallyConfig cfg_;
};

EVALD_PLUGIN(Tally, "tally", "1.0.0", "Per round: weighted totals, gates, ranking with tie-breaks and who advances")
