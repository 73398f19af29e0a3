// Student t quantiles against published table values, and the running mean against a direct
// two-pass computation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "bradley_terry.hpp"
#include "stats.hpp"

using namespace evald::scores;

namespace {

// Two-sided 95% critical values t_{0.975, df} (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
TEST(StudentT, QuantilesMatchTheTable) {
  struct Row {
    double df, t;
  } rows[] = {{1, 12.7062047361747}, {2, 4.30265272974946}, {3, 3.18244630528371}, {5, 2.57058183563631},
              {10, 2.22813885198627}, {30, 2.04227245630124}, {100, 1.98397151852355}, {1000, 1.96233908082641}};
  for (auto& r : rows) EXPECT_NEAR(student_t_quantile(0.975, r.df), r.t, 1e-9) << "df " << r.df;
  EXPECT_NEAR(student_t_quantile(0.995, 4), 4.60409487134999, 1e-9);
  EXPECT_NEAR(student_t_quantile(0.025, 10), -2.22813885198627, 1e-9);
  EXPECT_EQ(student_t_quantile(0.5, 7), 0.0);
  EXPECT_TRUE(std::isnan(student_t_quantile(1.0, 3)));
  EXPECT_TRUE(std::isnan(student_t_quantile(0.9, 0)));
  // df = 1 is the Cauchy distribution: cdf(t) = 1/2 + atan(t)/pi.
  for (double t : {-3.0, -0.5, 0.2, 1.0, 7.0}) EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / M_PI, 1e-12) << t;
}

TEST(RunningMean, MatchesTwoPassAndIsUndefinedBelowTwo) {
  RunningMean one;
  one.add(4);
  EXPECT_EQ(one.mean(), 4);
  EXPECT_TRUE(std::isnan(one.sd()));
  EXPECT_TRUE(std::isnan(one.half_width())) << "one rating says nothing about spread: undefined, not zero";

  // By hand: 3, 4, 5 -> mean 4, sd 1, half-width t_{0.975,2} / sqrt(3).
  RunningMean three;
  for (double x : {3.0, 5.0, 4.0}) three.add(x);
  EXPECT_DOUBLE_EQ(three.mean(), 4);
  EXPECT_DOUBLE_EQ(three.sd(), 1);
  EXPECT_NEAR(three.half_width(), 4.30265272974946 / std::sqrt(3.0), 1e-9);

  // Large offsets where the naive sum of squares cancels.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> d(1e9, 2.0);
  std::vector<double> xs;
  RunningMean rm;
  for (int i = 0; i < 10000; ++i) {
    xs.push_back(d(rng));
    rm.add(xs.back());
  }
  double mean = 0;
  for (double x : xs) mean += x;
  mean /= double(xs.size());
  double ss = 0;
  for (double x : xs) ss += (x - mean) * (x - mean);
  EXPECT_NEAR(rm.mean(), mean, 1e-4) << "within rounding of 1e9 (ulp 1.2e-7)";
  EXPECT_NEAR(rm.sd(), std::sqrt(ss / double(xs.size() - 1)), 1e-6);
}

// bootstrap_bradley_terry is bootstrap_draws plus percentiles; both must see the same resamples.
TEST(BootstrapDraws, AgreeWithTheIntervalFunctionAndStopWhenAsked) {
  PairCounts c(3);
  c.add(0, 1, Outcome::A, 30);
  c.add(0, 1, Outcome::B, 20);
  c.add(1, 2, Outcome::A, 25);
  c.add(1, 2, Outcome::B, 15);
  c.add(0, 2, Outcome::Tie, 10);
  c.add(0, 2, Outcome::A, 12);
  c.add(0, 2, Outcome::B, 4);
  BtInterval iv = bootstrap_bradley_terry(c, 300, 9);
  BtDraws d = bootstrap_draws(c, 300, 9);
  ASSERT_EQ(d.strength.size(), 300u);
  EXPECT_EQ(d.resamples, 300u);
  for (size_t i = 0; i < 3; ++i) {
    std::vector<double> s;
    for (auto& x : d.strength) s.push_back(x[i]);
    auto [lo, hi] = percentile_interval(s);
    EXPECT_EQ(lo, iv.lo[i]);
    EXPECT_EQ(hi, iv.hi[i]);
  }
  std::vector<uint32_t> seen;
  BtDraws stopped = bootstrap_draws(c, 300, 9, 0.0, [&](uint32_t done) {
    seen.push_back(done);
    return done < 7;
  });
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.resamples, 7u);
  EXPECT_EQ(seen, (std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7}));
  for (size_t r = 0; r < 7; ++r) EXPECT_EQ(stopped.strength[r], d.strength[r]) << "the same stream of resamples";
  auto nan = percentile_interval({});
  EXPECT_TRUE(std::isnan(nan.first) && std::isnan(nan.second));
}

}  // namespace
