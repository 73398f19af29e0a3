#include "bradley_terry.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace evald::scores {

void PairCounts::add(size_t a, size_t b, Outcome o, uint64_t times) {
  if (o == Outcome::A) wins_[a * n_ + b] += times;
  else if (o == Outcome::B) wins_[b * n_ + a] += times;
  else ties_[std::min(a, b) * n_ + std::max(a, b)] += times;
}

uint64_t PairCounts::total() const {
  uint64_t t = 0;
  for (uint64_t w : wins_) t += w;
  for (uint64_t w : ties_) t += w;
  return t;
}

std::optional<BtFit> fit_bradley_terry(const PairCounts& c, double prior, double tol, int max_iter) {
  size_t n = c.size();
  if (n < 2) return std::nullopt;
  // Effective wins w[i][j] (ties and prior split in halves) and games g[i][j].
  std::vector<double> w(n * n, 0.0), g(n * n, 0.0), W(n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) w[i * n + j] = double(c.wins(i, j)) + 0.5 * (double(c.ties(i, j)) + prior);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      g[i * n + j] = w[i * n + j] + w[j * n + i];
      W[i] += w[i * n + j];
    }
  for (size_t i = 0; i < n; ++i)
    if (W[i] <= 0) return std::nullopt;  // never won: strength -infinity
  std::vector<double> p(n, 1.0), next(n);
  BtFit fit;
  for (fit.iterations = 1; fit.iterations <= max_iter; ++fit.iterations) {
    for (size_t i = 0; i < n; ++i) {
      double denom = 0;
      for (size_t j = 0; j < n; ++j)
        if (j != i && g[i * n + j] > 0) denom += g[i * n + j] / (p[i] + p[j]);
      next[i] = denom > 0 ? W[i] / denom : p[i];
    }
    double logmean = 0;
    for (double x : next) logmean += std::log(x);
    logmean /= double(n);
    double change = 0;
    for (size_t i = 0; i < n; ++i) {
      double v = std::exp(std::log(next[i]) - logmean);
      change = std::max(change, std::fabs(std::log(v) - std::log(p[i])));
      p[i] = v;
    }
    if (change < tol) {
      fit.converged = true;
      break;
    }
  }
  // Someone who never lost drives the MM iteration to infinity: not converging means no MLE.
  if (!fit.converged) return std::nullopt;
  for (double x : p) fit.strength.push_back(std::log(x));
  return fit;
}

BtDraws bootstrap_draws(const PairCounts& c, uint32_t resamples, uint64_t seed, double prior,
                        const std::function<bool(uint32_t)>& keep_going) {
  size_t n = c.size();
  // Cells: (i beat j) for i != j, and ties for i < j.
  struct Cell {
    size_t a, b;
    Outcome o;
    uint64_t count;
  };
  std::vector<Cell> cells;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i != j && c.wins(i, j)) cells.push_back({i, j, Outcome::A, c.wins(i, j)});
      if (i < j && c.ties(i, j)) cells.push_back({i, j, Outcome::Tie, c.ties(i, j)});
    }
  uint64_t total = c.total();
  BtDraws out;
  out.strength.reserve(resamples);
  std::mt19937_64 rng(seed);
  for (uint32_t r = 0; r < resamples; ++r) {
    // Multinomial(total, cell shares) as a chain of binomials.
    PairCounts pc(n);
    uint64_t left = total;
    double mass = 1.0;
    for (size_t k = 0; k < cells.size() && left > 0; ++k) {
      double share = double(cells[k].count) / double(total);
      uint64_t x = k + 1 == cells.size() ? left : std::binomial_distribution<uint64_t>(left, std::min(1.0, share / mass))(rng);
      mass -= share;
      left -= x;
      if (x) pc.add(cells[k].a, cells[k].b, cells[k].o, x);
    }
    ++out.resamples;
    if (auto fit = fit_bradley_terry(pc, prior)) out.strength.push_back(std::move(fit->strength));
    else ++out.failed;
    if (keep_going && !keep_going(r + 1)) {
      out.stopped = true;
      break;
    }
  }
  return out;
}

std::pair<double, double> percentile_interval(std::vector<double> d, double level) {
  if (d.empty()) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  std::sort(d.begin(), d.end());
  auto q = [&](double f) { return d[std::min(d.size() - 1, size_t(f * double(d.size() - 1) + 0.5))]; };
  // The default level uses the literals, so the ranks are those bootstrap_bradley_terry always took.
  if (level == 0.95) return {q(0.025), q(0.975)};
  double tail = (1 - level) / 2;
  return {q(tail), q(1 - tail)};
}

BtInterval bootstrap_bradley_terry(const PairCounts& c, uint32_t resamples, uint64_t seed, double prior) {
  BtDraws draws = bootstrap_draws(c, resamples, seed, prior);
  BtInterval out;
  out.resamples = draws.resamples;
  out.failed = draws.failed;
  for (size_t i = 0; i < c.size(); ++i) {
    std::vector<double> d;
    d.reserve(draws.strength.size());
    for (auto& s : draws.strength) d.push_back(s[i]);
    auto [lo, hi] = percentile_interval(std::move(d));
    out.lo.push_back(lo);
    out.hi.push_back(hi);
  }
  return out;
}

double win_rate(const PairCounts& c, size_t i, size_t j) {
  double games = double(c.wins(i, j) + c.wins(j, i) + c.ties(i, j));
  if (games == 0) return std::numeric_limits<double>::quiet_NaN();
  return (double(c.wins(i, j)) + 0.5 * double(c.ties(i, j))) / games;
}

}  // namespace evald::scores
