// RoundTally: closes a round. From every upstream result of a run it takes each entrant's
// points per component (benchmark, expert panel, user evaluation, ...) and gate verdicts
// (provenance, ...), adds up the totals, ranks, applies the round's advancement rule and
// decides per entrant: advance, eliminated (by score), disqualified (by a gate), or pending.
// A missing or incomplete result is never counted as zero: the entrant is pending and the
// round undecided until the job is rerun or the operator records a decision (read from the
// round's intake, so it is stored, audited and traceable like any other input).
//
// The result ("evald.tally/1"), which the report plugin reads:
// {
//   schema: "evald.tally/1", competition, round, run,
//   decided: bool, undecided: [reason...],
//   rule: {advance: {top?, min_total?}, tie_breaks: [component...], decimals, text,
//          from: pipeline | competition definition},
//   components: [{name, label: {en, ko}, kind, stage, field, scale}],
//   gates: [{name, label: {en, ko}, kind, stage, inconclusive}],
//   total_scale,
//   entrants: [{                      // in rank order, then disqualified, then pending
//     entrant, name,
//     components: {<name>: {points (rounded), exact, scale, complete, reason?,
//                           source: {stage, job, seq}}},
//     gates: {<name>: {result: pass|fail|inconclusive|missing, reason, source?}},
//     total (rounded), total_exact, rank (null unless ranked), tied: bool,
//     would_be_rank (disqualified only: the rank the total would have had),
//     status: complete|incomplete|disqualified,
//     decision: advance|eliminated|disqualified|pending, decision_reason,
//     operator_decision?: {id, decision, reason, by, received_at}
//   }],
//   operator_decisions: [...], ignored_decisions: [{id, reason}]
// }
#pragma once

#include <evald/message.hpp>
#include <evald/value.hpp>

#include <map>
#include <string>
#include <vector>

namespace evald::tally {

struct Label {
  std::string en, ko;
};

struct Component {
  std::string name;
  Label label;
  std::string kind;   // message kind carrying the points (e.g. expert-score)
  std::string stage;  // only messages of this stage (empty: any stage)
  std::string field = "points";
  double scale = 0;
};

enum class Inconclusive { Hold, Fail, Pass };

struct Gate {
  std::string name;
  Label label;
  std::string kind;
  std::string stage;
  std::string field = "gate";  // {result, reason} or a plain result string
  Inconclusive inconclusive = Inconclusive::Hold;
};

struct TallyConfig {
  std::vector<Component> components;
  std::vector<Gate> gates;
  std::vector<std::string> tie_breaks;  // component names, higher first
  int top = 0;              // advance the best `top` (0: no limit)
  double min_total = -1;    // advance only with a total at least this (<0: no minimum)
  int decimals = 1;
  // Where the weights and the cut come from: the stage's config, or the round's rules.
  std::string rules_from = "pipeline";
};

// From a plugin config (checked against the schema); errors name the key.
Result<TallyConfig> tally_config_from(const Value& config);

// The round's own rules, set by its competition definition and passed with the job
// (job.round.rules: {weights?: {component: points}, advance?: {top?, min_total?}}), over the
// stage's config: one pipeline serves rounds with different weights or cuts. Null rules
// change nothing. Errors name the component or field.
Result<TallyConfig> apply_round_rules(TallyConfig cfg, const Value& rules);

// An operator's decision about one entrant, as an intake record:
// {id, entrant, decision: advance|eliminate|disqualify|count_missing_as_zero|accept_inconclusive,
//  reason, by?}. The latest record per entrant (by id order) wins.
struct OperatorDecision {
  std::string id, entrant, decision, reason, by, received_at;
};

// Tallies the round. `job` supplies the roster (job.round.roster), the upstream messages and
// the failed upstream jobs. Never fails: problems make entrants pending, with reasons.
Value tally_round(const TallyConfig& cfg, const Job& job, const std::vector<OperatorDecision>& decisions);

// The rule the result applies, in words (English), for the report.
std::string rule_text(const TallyConfig& cfg);

// Rounds half away from zero to `decimals` places, as printed (so 0.05 -> 0.1).
double round_points(double x, int decimals);

}  // namespace evald::tally
