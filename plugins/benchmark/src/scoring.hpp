// Numbers of a benchmark result: Wilson intervals for accuracies, latency percentiles, and the
// points of the configured sections (how suite accuracies become the round's benchmark points).
#pragma once

#include <evald/value.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace evald::bench {

// 95% Wilson score interval for x successes out of n (n > 0): it stays inside [0, 1] and is
// sensible at 0 and n, unlike the normal approximation.
std::pair<double, double> wilson_interval(double x, double n, double z = 1.959963984540054);

// Nearest-rank percentile (p in (0, 100]) of values; 0 for an empty list.
double percentile(std::vector<double> values, double p);

enum class Normalisation { Absolute, RelativeToTarget, RelativeToBest, MinMax };
const char* normalisation_name(Normalisation n);

struct SectionSpec {
  std::string name;
  double points = 0;
  std::vector<std::string> suites;  // suite names
  Normalisation normalisation = Normalisation::Absolute;
  std::map<std::string, double> targets;  // relative_to_target: suite -> target accuracy (a submission's targets win)
};

// Parses config.sections: [{name, points, suites: [...], normalisation?, targets?}]; errors
// name the entry and key.
Result<std::vector<SectionSpec>> sections_from(const Value& list);

// Whether a section needs every entrant's accuracies (relative_to_best, min_max).
bool needs_round(const SectionSpec& s);

// Points of one entrant. accuracy: suite name -> accuracy in [0, 1]. targets: the entrant's
// submission.targets (suite -> accuracy). round: suite name -> accuracies of every entrant of
// the round, or null in a per-entrant job, where sections that need the round come out
// pending. Returns {points, complete, reason, sections: [...]}.
Value score_sections(const std::vector<SectionSpec>& sections, const std::map<std::string, double>& accuracy,
                     const std::map<std::string, double>& targets,
                     const std::map<std::string, std::vector<double>>* round);

}  // namespace evald::bench
