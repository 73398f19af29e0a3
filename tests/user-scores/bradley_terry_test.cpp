// Bradley-Terry fitting checked against an independent solver (Newton's method on the
// log-likelihood, written here), hand-checked cases and properties.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "bradley_terry.hpp"

using namespace evald::scores;

namespace {

PairCounts simulate(const std::vector<double>& theta, int votes, double tie_rate, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, theta.size() - 1);
  std::uniform_real_distribution<double> u(0, 1);
  PairCounts c(theta.size());
  for (int v = 0; v < votes; ++v) {
    size_t a = pick(rng), b = pick(rng);
    if (a == b) continue;
    double x = u(rng);
    if (x < tie_rate) c.add(a, b, Outcome::Tie);
    else c.add(a, b, u(rng) < 1 / (1 + std::exp(theta[b] - theta[a])) ? Outcome::A : Outcome::B);
  }
  return c;
}

// Newton-Raphson on the same likelihood (ties as half wins), theta_0 fixed at 0, then centred.
std::vector<double> newton(const PairCounts& c) {
  size_t n = c.size();
  std::vector<double> t(n, 0.0);
  auto w = [&](size_t i, size_t j) { return double(c.wins(i, j)) + 0.5 * double(c.ties(i, j)); };
  for (int it = 0; it < 100; ++it) {
    size_t m = n - 1;  // unknowns theta_1..theta_{n-1}
    std::vector<double> grad(m, 0.0), H(m * m, 0.0);
    for (size_t i = 1; i < n; ++i)
      for (size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        double g = w(i, j) + w(j, i), s = 1 / (1 + std::exp(t[j] - t[i]));
        grad[i - 1] += w(i, j) - g * s;
        H[(i - 1) * m + (i - 1)] -= g * s * (1 - s);
        if (j > 0) H[(i - 1) * m + (j - 1)] += g * s * (1 - s);
      }
    // Solve H d = -grad by Gaussian elimination with partial pivoting.
    std::vector<double> d(m);
    for (size_t i = 0; i < m; ++i) d[i] = -grad[i];
    for (size_t col = 0; col < m; ++col) {
      size_t piv = col;
      for (size_t r = col + 1; r < m; ++r)
        if (std::fabs(H[r * m + col]) > std::fabs(H[piv * m + col])) piv = r;
      for (size_t k = 0; k < m; ++k) std::swap(H[col * m + k], H[piv * m + k]);
      std::swap(d[col], d[piv]);
      for (size_t r = col + 1; r < m; ++r) {
        double f = H[r * m + col] / H[col * m + col];
        for (size_t k = col; k < m; ++k) H[r * m + k] -= f * H[col * m + k];
        d[r] -= f * d[col];
      }
    }
    for (size_t i = m; i-- > 0;) {
      for (size_t k = i + 1; k < m; ++k) d[i] -= H[i * m + k] * d[k];
      d[i] /= H[i * m + i];
    }
    for (size_t i = 1; i < n; ++i) t[i] += d[i - 1];
  }
  double mean = 0;
  for (double x : t) mean += x;
  for (double& x : t) x -= mean / double(n);
  return t;
}

TEST(BradleyTerry, AgreesWithAnIndependentNewtonSolver) {
  PairCounts c = simulate({0.8, 0.3, 0.0, -0.4, -1.1}, 5000, 0.15, 7);
  auto fit = fit_bradley_terry(c);
  ASSERT_TRUE(fit);
  EXPECT_TRUE(fit->converged);
  auto ref = newton(c);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(fit->strength[i], ref[i], 1e-7) << i;
}

// Without ties (which, counted as half wins, pull strengths together) the fit recovers the
// strengths the votes were drawn from.
TEST(BradleyTerry, RecoversGeneratingStrengths) {
  std::vector<double> theta = {0.8, 0.3, 0.0, -0.4, -1.1};
  auto fit = fit_bradley_terry(simulate(theta, 40000, 0.0, 5));
  ASSERT_TRUE(fit);
  for (size_t i = 1; i < 5; ++i) EXPECT_NEAR(fit->strength[0] - fit->strength[i], theta[0] - theta[i], 0.1) << i;
}

// Two entrants: the MLE is log(w_ab / w_ba) apart, by hand.
TEST(BradleyTerry, TwoEntrantsByHand) {
  PairCounts c(2);
  c.add(0, 1, Outcome::A, 30);
  c.add(0, 1, Outcome::B, 10);
  c.add(0, 1, Outcome::Tie, 4);
  auto fit = fit_bradley_terry(c);
  ASSERT_TRUE(fit);
  EXPECT_NEAR(fit->strength[0] - fit->strength[1], std::log(32.0 / 12.0), 1e-9);
  EXPECT_NEAR(fit->strength[0] + fit->strength[1], 0.0, 1e-12);
  EXPECT_NEAR(win_rate(c, 0, 1), 32.0 / 44.0, 1e-12);
  EXPECT_TRUE(std::isnan(win_rate(PairCounts(3), 0, 2)));
}

TEST(BradleyTerry, AWinNeverLowersTheWinner) {
  PairCounts c = simulate({0.5, 0.2, 0.0, -0.3}, 400, 0.1, 11);
  auto base = fit_bradley_terry(c);
  ASSERT_TRUE(base);
  for (size_t a = 0; a < 4; ++a)
    for (size_t b = 0; b < 4; ++b) {
      if (a == b) continue;
      PairCounts more = c;
      more.add(a, b, Outcome::A);
      auto fit = fit_bradley_terry(more);
      ASSERT_TRUE(fit);
      EXPECT_GE(fit->strength[a] - fit->strength[b], base->strength[a] - base->strength[b]) << a << " beat " << b;
      // Relative to everyone else too: the winner's strength minus the mean of the rest rises.
      EXPECT_GT(fit->strength[a], base->strength[a] - 1e-12) << a << " beat " << b;
    }
}

TEST(BradleyTerry, NoMleWithoutWinsUnlessAPrior) {
  PairCounts c(3);
  c.add(0, 1, Outcome::A, 5);
  c.add(1, 2, Outcome::A, 5);
  c.add(0, 2, Outcome::A, 5);  // 2 never wins, 0 never loses
  EXPECT_FALSE(fit_bradley_terry(c));
  auto fit = fit_bradley_terry(c, 0.5);
  ASSERT_TRUE(fit);
  EXPECT_GT(fit->strength[0], fit->strength[1]);
  EXPECT_GT(fit->strength[1], fit->strength[2]);
}

TEST(BradleyTerry, BootstrapIsReproducibleAndCoversTheEstimate) {
  PairCounts c = simulate({0.6, 0.1, -0.2, -0.5}, 3000, 0.1, 3);
  auto fit = fit_bradley_terry(c);
  ASSERT_TRUE(fit);
  BtInterval a = bootstrap_bradley_terry(c, 400, 42), b = bootstrap_bradley_terry(c, 400, 42);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  EXPECT_EQ(a.failed, 0u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_LT(a.lo[i], fit->strength[i]);
    EXPECT_GT(a.hi[i], fit->strength[i]);
    EXPECT_LT(a.hi[i] - a.lo[i], 0.4) << "3000 votes give a narrow interval";
  }
  BtInterval other = bootstrap_bradley_terry(c, 400, 43);
  EXPECT_NE(a.lo, other.lo) << "the seed matters";
}

}  // namespace
