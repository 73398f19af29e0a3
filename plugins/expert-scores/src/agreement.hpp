// Inter-rater reliability for the expert panel: Krippendorff's alpha (any number of raters,
// missing ratings allowed) and the intraclass correlations of Shrout and Fleiss (1979).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace evald::scores {

// What a difference between two scores means for alpha.
enum class Metric { Nominal, Ordinal, Interval, Ratio };
const char* metric_name(Metric m);

// ratings[unit][rater]: nullopt where the rater did not score the unit. Units with fewer than
// two scores are not pairable and do not count. Returns nullopt when alpha is undefined (fewer
// than two pairable values, or no variation at all: expected disagreement 0). Thread-safe.
std::optional<double> krippendorff_alpha(const std::vector<std::vector<std::optional<double>>>& ratings, Metric metric);

struct Icc {
  double icc1_1, icc2_1, icc3_1;  // single rater: one-way random, two-way random (absolute agreement), two-way mixed (consistency)
  double icc1_k, icc2_k, icc3_k;  // the mean of k raters
  size_t targets, raters;
};

// scores[target][rater], complete (every rater scored every target). nullopt with fewer than
// two targets or raters, or ragged rows.
std::optional<Icc> intraclass_correlation(const std::vector<std::vector<double>>& scores);

}  // namespace evald::scores
