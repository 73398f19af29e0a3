// Pairwise user votes aggregated with the Bradley-Terry model: P(i beats j) = p_i / (p_i + p_j).
// A tie counts as half a win for each side. Votes reduce to counts per pair and outcome, so a
// bootstrap resample is a multinomial draw over those cells, not a pass over every vote.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evald::scores {

enum class Outcome { A, B, Tie };

// Vote counts between n entrants: wins[i][j] = times i beat j; ties[i][j] (i < j used).
class PairCounts {
 public:
  explicit PairCounts(size_t n) : n_(n), wins_(n * n, 0), ties_(n * n, 0) {}
  void add(size_t a, size_t b, Outcome o, uint64_t times = 1);
  size_t size() const { return n_; }
  uint64_t wins(size_t i, size_t j) const { return wins_[i * n_ + j]; }
  uint64_t ties(size_t i, size_t j) const { return ties_[std::min(i, j) * n_ + std::max(i, j)]; }
  uint64_t total() const;

 private:
  size_t n_;
  std::vector<uint64_t> wins_, ties_;
};

struct BtFit {
  std::vector<double> strength;  // log p_i, centred to mean 0
  int iterations = 0;
  bool converged = false;
};

// Maximum likelihood by minorisation-maximisation (Hunter 2004). `prior` adds that many
// virtual ties between every pair (0: the plain MLE, which exists only when every entrant has
// beaten and lost to someone, through a connected comparison graph). nullopt when it does not.
std::optional<BtFit> fit_bradley_terry(const PairCounts& c, double prior = 0.0, double tol = 1e-10, int max_iter = 10000);

struct BtInterval {
  std::vector<double> lo, hi;  // 2.5% and 97.5% percentiles of each strength
  uint32_t resamples = 0, failed = 0;
};

// Percentile bootstrap: `resamples` multinomial resamples of the votes (fixed seed), refitted.
BtInterval bootstrap_bradley_terry(const PairCounts& c, uint32_t resamples, uint64_t seed, double prior = 0.0);

// The bootstrap's refitted strengths themselves, one vector per resample that has an MLE, so
// that intervals can be taken on functions of them (win probabilities, points). keep_going,
// when given, is called after every resample with the number done; false stops the loop early
// (cancellation) and sets `stopped`. bootstrap_bradley_terry is this plus percentile_interval.
struct BtDraws {
  std::vector<std::vector<double>> strength;
  uint32_t resamples = 0, failed = 0;
  bool stopped = false;
};
BtDraws bootstrap_draws(const PairCounts& c, uint32_t resamples, uint64_t seed, double prior = 0.0,
                        const std::function<bool(uint32_t)>& keep_going = {});

// The 2.5% and 97.5% percentiles of v by the nearest-rank rule the bootstrap uses (95% level;
// `level` picks another). NaN both when v is empty.
std::pair<double, double> percentile_interval(std::vector<double> v, double level = 0.95);

// Win rate of i over j (ties half), NaN when they never met.
double win_rate(const PairCounts& c, size_t i, size_t j);

}  // namespace evald::scores
