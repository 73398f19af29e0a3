#include "agreement.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace evald::scores {

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::Nominal: return "nominal";
    case Metric::Ordinal: return "ordinal";
    case Metric::Interval: return "interval";
    case Metric::Ratio: return "ratio";
  }
  return "?";
}

std::optional<double> krippendorff_alpha(const std::vector<std::vector<std::optional<double>>>& ratings, Metric metric) {
  // Distinct values and the coincidence matrix o[c][k]: each ordered pair of scores within a
  // unit, weighted 1 / (m_u - 1) where m_u is the unit's number of scores.
  std::map<double, size_t> index;
  for (const auto& unit : ratings)
    for (const auto& v : unit)
      if (v) index.emplace(*v, 0);
  size_t V = 0;
  std::vector<double> values;
  for (auto& [v, i] : index) i = V++, values.push_back(v);
  std::vector<double> o(V * V, 0.0);
  for (const auto& unit : ratings) {
    std::vector<size_t> present;
    for (const auto& v : unit)
      if (v) present.push_back(index[*v]);
    size_t m = present.size();
    if (m < 2) continue;
    for (size_t a = 0; a < m; ++a)
      for (size_t b = 0; b < m; ++b)
        if (a != b) o[present[a] * V + present[b]] += 1.0 / double(m - 1);
  }
  std::vector<double> nc(V, 0.0);
  double n = 0;
  for (size_t c = 0; c < V; ++c)
    for (size_t k = 0; k < V; ++k) nc[c] += o[c * V + k];
  for (double x : nc) n += x;
  if (n < 2) return std::nullopt;
  auto delta2 = [&](size_t c, size_t k) -> double {
    if (c == k) return 0;
    double a = values[c], b = values[k];
    switch (metric) {
      case Metric::Nominal: return 1;
      case Metric::Interval: return (a - b) * (a - b);
      case Metric::Ratio: return a + b == 0 ? 0 : ((a - b) / (a + b)) * ((a - b) / (a + b));
      case Metric::Ordinal: {
        // Ranks by the marginal frequencies of the values between c and k.
        size_t lo = std::min(c, k), hi = std::max(c, k);
        double s = 0;
        for (size_t g = lo; g <= hi; ++g) s += nc[g];
        s -= (nc[c] + nc[k]) / 2;
        return s * s;
      }
    }
    return 0;
  };
  double observed = 0, expected = 0;
  for (size_t c = 0; c < V; ++c)
    for (size_t k = 0; k < V; ++k) {
      double d = delta2(c, k);
      observed += o[c * V + k] * d;
      expected += nc[c] * nc[k] * d;
    }
  observed /= n;
  expected /= n * (n - 1);
  if (expected <= 0) return std::nullopt;
  return 1.0 - observed / expected;
}

std::optional<Icc> intraclass_correlation(const std::vector<std::vector<double>>& x) {
  size_t n = x.size();
  if (n < 2) return std::nullopt;
  size_t k = x[0].size();
  if (k < 2) return std::nullopt;
  for (const auto& row : x)
    if (row.size() != k) return std::nullopt;
  double grand = 0;
  std::vector<double> row_mean(n, 0.0), col_mean(k, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < k; ++j) grand += x[i][j], row_mean[i] += x[i][j], col_mean[j] += x[i][j];
  grand /= double(n * k);
  for (double& m : row_mean) m /= double(k);
  for (double& m : col_mean) m /= double(n);
  // Two-way ANOVA sums of squares: targets (rows), raters (columns), residual.
  double ss_rows = 0, ss_cols = 0, ss_total = 0;
  for (size_t i = 0; i < n; ++i) ss_rows += (row_mean[i] - grand) * (row_mean[i] - grand);
  ss_rows *= double(k);
  for (size_t j = 0; j < k; ++j) ss_cols += (col_mean[j] - grand) * (col_mean[j] - grand);
  ss_cols *= double(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < k; ++j) ss_total += (x[i][j] - grand) * (x[i][j] - grand);
  double ss_err = ss_total - ss_rows - ss_cols;
  double ms_rows = ss_rows / double(n - 1);                       // BMS
  double ms_within = (ss_cols + ss_err) / double(n * (k - 1));    // WMS (one-way)
  double ms_cols = ss_cols / double(k - 1);                       // JMS
  double ms_err = ss_err / double((n - 1) * (k - 1));             // EMS
  double kk = double(k), nn = double(n);
  Icc r{};
  r.targets = n;
  r.raters = k;
  r.icc1_1 = (ms_rows - ms_within) / (ms_rows + (kk - 1) * ms_within);
  r.icc2_1 = (ms_rows - ms_err) / (ms_rows + (kk - 1) * ms_err + kk * (ms_cols - ms_err) / nn);
  r.icc3_1 = (ms_rows - ms_err) / (ms_rows + (kk - 1) * ms_err);
  r.icc1_k = (ms_rows - ms_within) / ms_rows;
  r.icc2_k = (ms_rows - ms_err) / (ms_rows + (ms_cols - ms_err) / nn);
  r.icc3_k = (ms_rows - ms_err) / ms_rows;
  return r;
}

}  // namespace evald::scores
