// Small distribution functions the rating intervals need. Written here rather than pulled in
// from a statistics library: only the Student t quantile is needed, and it is checked against
// published table values in the tests.
#pragma once

#include <cstdint>

namespace evald::scores {

// P(T <= t) for Student's t with df > 0 degrees of freedom.
double student_t_cdf(double t, double df);

// The p-quantile of Student's t (0 < p < 1, df > 0): t_{0.975, df} is the half-width factor of
// a 95% interval on a mean.
double student_t_quantile(double p, double df);

// Mean, sample standard deviation and a two-sided t-interval on the mean of n values, kept
// by Welford's update so a million ratings do not lose precision to cancellation.
class RunningMean {
 public:
  void add(double x) {
    ++n_;
    double d = x - mean_;
    mean_ += d / double(n_);
    m2_ += d * (x - mean_);
  }
  uint64_t n() const { return n_; }
  double mean() const { return mean_; }
  // Undefined (NaN) for n < 2.
  double sd() const;
  // Half-width of the two-sided `level` t-interval; NaN for n < 2 (no spread to estimate).
  double half_width(double level = 0.95) const;

 private:
  uint64_t n_ = 0;
  double mean_ = 0, m2_ = 0;
};

}  // namespace evald::scores
