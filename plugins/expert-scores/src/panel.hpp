// The expert panel's score sheets turned into points: rows validated one by one (each
// rejection names its file, line and reason), conflicts of interest excluded, per-rater
// standardisation when asked, then mean, median or trimmed mean per criterion, weighted
// across criteria onto the round's scale, with the panel's agreement and outlying raters.
#pragma once

#include <evald/value.hpp>

#include <string>
#include <vector>

namespace evald::scores {

struct Criterion {
  std::string name;
  std::string label;  // how sheets may also name it (e.g. 활용성); empty: only the name
  double weight = 1;
  double min = 0, max = 10;
};

enum class Aggregation { Mean, Median, TrimmedMean };

struct PanelConfig {
  std::vector<Criterion> criteria;
  double scale = 35;
  Aggregation aggregation = Aggregation::Mean;
  int trim = 1;               // scores dropped at each end for the trimmed mean
  bool standardise = false;   // per-rater z-scores before aggregation
  std::vector<std::pair<std::string, std::string>> conflicts;  // (rater, entrant id or name)
  double flag_min_correlation = 0.0;  // flag a rater below this leave-one-out correlation
  double flag_max_deviation = 0.2;    // or further than this share of the scale from the others
  int min_raters = 1;
};

// From a plugin config (already checked against the schema); errors name the key.
Result<PanelConfig> panel_config_from(const Value& config);

struct RosterEntry {
  std::string id, name;
};

// One row of a sheet as read: where it came from and its fields (rater, entrant, criterion,
// score, comment; Korean header names 평가위원, 참가팀, 평가항목, 점수, 의견 too).
struct SheetRow {
  std::string source;  // file path, or intake:<channel>
  uint64_t line = 0;   // 0 for intake records
  std::string id;      // intake record id
  Value fields;
  std::string defect;  // a malformed row: rejected with this reason
};

// Scores the panel. Never fails on bad rows: they are rejected with reasons in the result.
// Result layout: see the expert-scores section of the README.
Value score_panel(const PanelConfig& cfg, const std::vector<RosterEntry>& roster, const std::vector<SheetRow>& rows);

// The documented rule the result applies, in words, for the report.
std::string panel_rule(const PanelConfig& cfg);

}  // namespace evald::scores
