// expert-scores: a per-round stage that reads the expert panel's score sheets (CSV, JSON or
// JSONL files, and rows streamed in through intake), scores every entrant of the round on the
// configured criteria and scale, and reports the panel's agreement, outlying raters and every
// rejected row with its file, line and reason.
#include <evald/plugin.hpp>

#include "panel.hpp"
#include "records.hpp"

#include <fstream>

using evald::Status;
using evald::Value;
namespace scores = evald::scores;

namespace {

constexpr size_t kListedRejections = 1000;

std::vector<scores::RosterEntry> roster_of(const evald::Job& job) {
  std::vector<scores::RosterEntry> out;
  if (auto* r = job.round.find("roster"); r && r->is_array()) {
    for (auto& e : r->as_array()) out.push_back({e.get_string("id"), e.get_string("name")});
  } else if (auto* ids = job.round.find("entrants"); ids && ids->is_array()) {
    for (auto& e : ids->as_array())
      if (e.is_string()) out.push_back({e.as_string(), e.as_string()});
  }
  return out;
}

}  // namespace

class ExpertScores : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .list("sheets", "score sheet files: CSV with a header (rater, entrant, criterion, score, comment), a JSON array of such objects, or JSONL").def(Value(evald::Array{}))
        .string("intake", "also read rows streamed in on this intake channel of the round (evalctl intake submit); empty: none").def("")
        .list("criteria", "the criteria: [{name, weight, min, max, label?}]; every rater scores every criterion of an entrant").required()
        .number("scale", "points of the panel in the round (35 in the programme's round 1)").def(35.0).min(0.001).max(1e6)
        .string("aggregation", "per entrant and criterion over raters: mean, median or trimmed_mean").def("mean").choices({"mean", "median", "trimmed_mean"})
        .integer("trim", "scores dropped at each end for trimmed_mean").def(1).min(1).max(100)
        .boolean("standardise", "turn each rater's scores into z-scores before aggregating (removes lenient and strict raters' offsets)").def(false)
        .list("conflicts", "conflicts of interest: [{rater, entrant}] pairs whose rows are excluded").def(Value(evald::Array{}))
        .number("flag_min_correlation", "flag a rater whose totals correlate with the rest of the panel below this").def(0.0).min(-1).max(1)
        .number("flag_max_deviation", "flag a rater whose totals sit further than this share of the scale from the rest of the panel, on average").def(0.2).min(0).max(1)
        .integer("min_raters", "an entrant with fewer raters (after rejections and conflicts) gets no points and is marked incomplete").def(1).min(1).max(1000)
        .string("kind", "kind of the per-entrant messages").def("expert-score").min(1);
  }

  static Status validate(const Value& config) {
    auto cfg = scores::panel_config_from(config);
    if (!cfg) return cfg.status();
    auto* sheets = config.find("sheets");
    for (auto& s : sheets->as_array())
      if (!s.is_string() || s.as_string().empty()) return Status::error("sheets: every entry must be a file path");
    if (sheets->as_array().empty() && config.get_string("intake").empty())
      return Status::error("no input: name score sheets in sheets, an intake channel in intake, or both");
    if (std::string ch = config.get_string("intake"); !ch.empty() && (ch.size() > 64 || ch.find_first_not_of(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos))
      return Status::error("intake: \"" + ch + "\" is not a channel name (1-64 of A-Z a-z 0-9 . _ -)");
    return {};
  }

  ExpertScores(const Value& config, evald::Context&) : config_(config), cfg_(*scores::panel_config_from(config)) {}

  Status finish(const evald::Job& job, evald::Context& ctx) override {
    auto roster = roster_of(job);
    std::vector<scores::SheetRow> rows;
    evald::Array inputs;
    for (auto& s : config_.find("sheets")->as_array()) {
      auto file = evald::text::read_records(s.as_string());
      if (!file) return file.status();
      Value in;
      in.set("path", file->path);
      in.set("sha256", file->sha256);
      in.set("format", file->format);
      in.set("rows", int64_t(file->records.size()));
      inputs.push_back(std::move(in));
      for (auto& r : file->records) rows.push_back({file->path, r.line, "", r.fields, r.defect});
      if (ctx.cancelled()) return Status::error("cancelled");
    }
    Value intake;
    if (std::string ch = config_.get_string("intake"); !ch.empty()) {
      int64_t n = 0;
      auto st = ctx.intake(ch, [&](const Value& rec) {
        rows.push_back({"intake:" + ch, 0, rec.get_string("id"), rec, ""});
        ++n;
        return Status();
      });
      if (!st) return st;
      intake.set("channel", ch);
      intake.set("records", n);
    }
    ctx.progress(0, 1);
    Value result = scores::score_panel(cfg_, roster, rows);
    result.set("inputs", inputs);
    result.set("intake", intake);
    result.set("round", job.envelope.round);
    result.set("run", job.envelope.run);

    std::string path = ctx.artifact_dir() + "/expert-scores.json";
    std::string json = evald::to_json(result);
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f << json << "\n";
      if (!f) return Status::error(path + ": cannot write the panel result");
    }
    const std::string kind = config_.get_string("kind");
    for (auto& e : result.find("entrants")->as_array()) {
      Value p = e;
      p.set("panel", "expert-panel");
      if (auto st = ctx.emit(kind, p); !st) return st;
    }
    Value summary;
    for (const char* k : {"method", "agreement", "raters", "counts", "excluded", "inputs", "intake"}) summary.set(k, *result.find(k));
    auto& rej = result.find("rejected")->as_array();
    summary.set("rejected", evald::Array(rej.begin(), rej.begin() + std::ptrdiff_t(std::min(rej.size(), kListedRejections))));
    summary.set("rejected_total", int64_t(rej.size()));
    summary.set("artifact", path);
    summary.set("artifact_sha256", evald::text::sha256_hex(json + "\n"));
    ctx.progress(1, 1);
    ctx.info("panel scored: " + std::to_string(roster.size()) + " entrants, " + std::to_string(rows.size()) + " rows, " +
             std::to_string(rej.size()) + " rejected");
    return ctx.emit("expert-panel", summary);
  }

 private:
  Value config_;
  scores::PanelConfig cfg_;
};

EVALD_PLUGIN(ExpertScores, "expert-scores", "1.0.0", "Per round: the expert panel's score sheets as points, with inter-rater agreement and rejected rows")
