#include "lineage.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_map>

namespace evald::prov {

namespace {

constexpr int K = kSketchWidth;
constexpr int H = K / 2;
constexpr int G = kGramWidth;

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// Off-diagonal Gram entries, centred and scaled to unit norm, so that the Pearson correlation of
// two Grams is one dot product. The diagonal holds squared norms, which are positive for any two
// models and would make unrelated ones look alike.
std::vector<float> gram_profile(const std::vector<float>& gram) {
  std::vector<float> out;
  if (gram.empty()) return out;
  out.reserve(G * (G - 1) / 2);
  size_t idx = 0;
  for (int r = 0; r < G; ++r)
    for (int c = r; c < G; ++c, ++idx)
      if (c != r) out.push_back(gram[idx]);
  double mean = 0, norm = 0;
  for (float x : out) mean += x;
  mean /= double(out.size());
  for (float& x : out) x = float(x - mean), norm += double(x) * x;
  float inv = norm > 0 ? float(1 / std::sqrt(norm)) : 0.0f;
  for (float& x : out) x *= inv;
  return out;
}

double profile_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return nan();
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += double(a[i]) * b[i];
  return d;
}

// Centred, unit-norm halves (even and odd coordinates) of each unit sketch.
struct Halves {
  std::vector<float> even, odd;  // n x H each
  size_t n = 0;
};
Halves split(const UnitSketch& s) {
  Halves h;
  h.n = s.ids.size();
  h.even.resize(h.n * H);
  h.odd.resize(h.n * H);
  for (size_t i = 0; i < h.n; ++i) {
    const float* y = s.data.data() + i * K;
    for (int part = 0; part < 2; ++part) {
      float* out = (part ? h.odd.data() : h.even.data()) + i * H;
      double mean = 0;
      for (int k = 0; k < H; ++k) mean += y[2 * k + part];
      mean /= H;
      double norm = 0;
      for (int k = 0; k < H; ++k) {
        out[k] = float(y[2 * k + part] - mean);
        norm += double(out[k]) * out[k];
      }
      float inv = norm > 0 ? float(1.0 / std::sqrt(norm)) : 0.0f;
      for (int k = 0; k < H; ++k) out[k] *= inv;
    }
  }
  return h;
}

float dot(const float* a, const float* b) {
  float s = 0;
  for (int k = 0; k < H; ++k) s += a[k] * b[k];
  return s;
}

// For each reference unit: the best candidate unit on one half, with its sign.
void match(const std::vector<float>& ref, size_t nr, const std::vector<float>& cand, size_t nc,
           std::vector<uint32_t>* best, std::vector<float>* sign) {
  best->assign(nr, 0);
  sign->assign(nr, 1.0f);
  for (size_t i = 0; i < nr; ++i) {
    const float* b = ref.data() + i * H;
    float top = -1;
    for (size_t j = 0; j < nc; ++j) {
      float d = dot(b, cand.data() + j * H);
      float a = std::fabs(d);
      if (a > top) top = a, (*best)[i] = uint32_t(j), (*sign)[i] = d < 0 ? -1.0f : 1.0f;
    }
  }
}

struct UnitTest {
  double effect, null_mean, null_sd, z, p;
  uint32_t draws;  // permutations drawn
};

// The permutation null of one test: how often a relabelling scored at least the observed effect,
// and the null's mean and spread.
class NullTally {
 public:
  static constexpr uint64_t kStopAfter = 10;
  explicit NullTally(double observed) : observed_(observed) {}
  void add(double t) {
    sum_ += t, sumsq_ += t * t, ++n_;
    if (t >= observed_) ++exceed_;
  }
  // Besag and Clifford's sequential test: once kStopAfter relabellings have scored at least the
  // observed effect the p-value is clearly large, and kStopAfter / draws is a valid p-value.
  // Unrelated pairs stop after a few dozen draws; related ones run every permutation.
  bool settled() const { return exceed_ >= kStopAfter; }
  UnitTest result() const {
    UnitTest u{};
    u.effect = observed_;
    u.p = settled() ? double(exceed_) / double(n_) : (1.0 + exceed_) / (1.0 + n_);
    u.draws = uint32_t(n_);
    u.null_mean = n_ ? sum_ / n_ : 0;
    u.null_sd = n_ ? std::sqrt(std::max(0.0, sumsq_ / n_ - u.null_mean * u.null_mean)) : 0;
    u.z = u.null_sd > 0 ? (u.effect - u.null_mean) / u.null_sd : 0;
    return u;
  }

 private:
  double observed_, sum_ = 0, sumsq_ = 0;
  uint64_t n_ = 0, exceed_ = 0;
};

// Two folds: match on even coordinates and score on odd ones, and the reverse.
UnitTest unit_test(const UnitSketch& cand, const UnitSketch& ref, uint32_t permutations, uint64_t seed) {
  Halves c = split(cand), r = split(ref);
  std::vector<uint32_t> b1, b2;
  std::vector<float> s1, s2;
  match(r.even, r.n, c.even, c.n, &b1, &s1);
  match(r.odd, r.n, c.odd, c.n, &b2, &s2);
  // Matched candidate units, each listed once; fold f of reference unit i uses slot[f][i].
  std::vector<uint32_t> distinct;
  std::vector<uint32_t> slot1(r.n), slot2(r.n);
  {
    std::vector<int64_t> where(c.n, -1);
    auto slot_of = [&](uint32_t j) {
      if (where[j] < 0) where[j] = int64_t(distinct.size()), distinct.push_back(j);
      return uint32_t(where[j]);
    };
    for (size_t i = 0; i < r.n; ++i) slot1[i] = slot_of(b1[i]), slot2[i] = slot_of(b2[i]);
  }
  auto score = [&](const std::vector<uint32_t>& unit) {
    double t = 0;
    for (size_t i = 0; i < r.n; ++i) {
      t += s1[i] * dot(r.odd.data() + i * H, c.odd.data() + size_t(unit[slot1[i]]) * H);
      t += s2[i] * dot(r.even.data() + i * H, c.even.data() + size_t(unit[slot2[i]]) * H);
    }
    return t / double(2 * r.n);
  };
  NullTally tally(score(distinct));
  // Null: the same matched structure with candidate units relabelled by a random permutation;
  // only the matched units' images are drawn (a partial Fisher-Yates shuffle, undone after).
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> pool(c.n), image(distinct.size());
  std::iota(pool.begin(), pool.end(), 0u);
  std::vector<std::pair<size_t, size_t>> swaps;
  for (uint32_t k = 0; k < permutations; ++k) {
    swaps.clear();
    for (size_t d = 0; d < distinct.size(); ++d) {
      size_t pick = d + size_t(rng() % (c.n - d));
      std::swap(pool[d], pool[pick]);
      swaps.emplace_back(d, pick);
      image[d] = pool[d];
    }
    for (auto it = swaps.rbegin(); it != swaps.rend(); ++it) std::swap(pool[it->first], pool[it->second]);
    tally.add(score(image));
    if (tally.settled()) break;
  }
  return tally.result();
}

// Units paired in advance (by index, or by token text), compared on all coordinates: the mean
// centred correlation of the pairs. Null: the same pairs with the candidate side shuffled.
// pairs: (index into ref.ids, candidate unit). False when fewer than 16 pairs exist.
bool paired_test(const UnitSketch& cand, const UnitSketch& ref, const std::vector<std::pair<size_t, uint32_t>>& pairs,
                 uint32_t permutations, uint64_t seed, UnitTest* out) {
  if (pairs.size() < 16) return false;
  auto unit = [](const float* y, std::vector<float>* dst) {
    double mean = 0, norm = 0;
    for (int k = 0; k < K; ++k) mean += y[k];
    mean /= K;
    size_t at = dst->size();
    for (int k = 0; k < K; ++k) dst->push_back(float(y[k] - mean)), norm += double(dst->back()) * dst->back();
    float inv = norm > 0 ? float(1 / std::sqrt(norm)) : 0.0f;
    for (int k = 0; k < K; ++k) (*dst)[at + k] *= inv;
  };
  std::vector<float> a, b;
  for (const auto& [ri, cu] : pairs) {
    unit(ref.data.data() + ri * K, &b);
    unit(cand.data.data() + size_t(cu) * K, &a);
  }
  size_t n = pairs.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  auto score = [&] {
    double t = 0;
    for (size_t i = 0; i < n; ++i) {
      const float *x = b.data() + i * K, *y = a.data() + size_t(order[i]) * K;
      float d = 0;
      for (int k = 0; k < K; ++k) d += x[k] * y[k];
      t += d;
    }
    return t / double(n);
  };
  NullTally tally(score());
  std::mt19937_64 rng(seed);
  for (uint32_t k = 0; k < permutations; ++k) {
    std::shuffle(order.begin(), order.end(), rng);
    tally.add(score());
    if (tally.settled()) break;
  }
  *out = tally.result();
  return true;
}

// Reference units paired with the candidate unit of the same index (candidates keep all units).
std::vector<std::pair<size_t, uint32_t>> index_pairs(const UnitSketch& cand, const UnitSketch& ref) {
  std::vector<std::pair<size_t, uint32_t>> pairs;
  if (cand.units != ref.units || cand.ids.size() != cand.units) return pairs;
  for (size_t i = 0; i < ref.ids.size(); ++i) pairs.emplace_back(i, ref.ids[i]);
  return pairs;
}

// Embedding rows paired by token text (not id).
std::vector<std::pair<size_t, uint32_t>> token_pairs(const UnitSketch& cand, const UnitSketch& ref, const std::vector<std::string>& ref_vocab,
                                                     const std::unordered_map<std::string, uint32_t>& cand_ids) {
  std::vector<std::pair<size_t, uint32_t>> pairs;
  for (size_t i = 0; i < ref.ids.size(); ++i) {
    uint32_t id = ref.ids[i];
    if (id >= ref_vocab.size() || ref_vocab[id].empty()) continue;
    auto it = cand_ids.find(ref_vocab[id]);
    if (it == cand_ids.end() || it->second >= cand.ids.size() || cand.ids[it->second] != it->second) continue;
    pairs.emplace_back(i, it->second);
  }
  return pairs;
}

double pearson(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.size() < 3) return nan();
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= double(a.size()), mb /= double(b.size());
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double x = a[i] - ma, y = b[i] - mb;
    ab += x * y, aa += x * x, bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

std::string verbatim_kind(const TensorPrint& c, const TensorPrint& r) {
  if (c.hashes.trivial || r.hashes.trivial || !c.analysable || !r.analysable) return {};
  if (c.shape == r.shape) {
    if (c.hashes.exact == r.hashes.exact) return "exact";
    if (c.hashes.bf16 == r.hashes.bf16) return "bf16";
    if (c.hashes.f16 == r.hashes.f16) return "f16";
    if (c.hashes.rows == r.hashes.rows) return "row-permuted";
    if (c.hashes.cols == r.hashes.cols) return "col-permuted";
  }
  return {};
}

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

const UnitSketch* sketch_for(const TensorPrint& t, bool by_col) { return by_col ? &t.by_col : &t.by_row; }

struct RefIndex {
  const Fingerprint* fp;
  std::string label;
  std::unordered_map<std::string, std::vector<const TensorPrint*>> by_role;  // component|role
  std::unordered_map<const UnitSketch*, std::vector<float>> profiles;         // gram_profile of each sketch
};

}  // namespace

double fisher_log10(const std::vector<double>& ps, double* chi2_out) {
  if (ps.empty()) {
    if (chi2_out) *chi2_out = 0;
    return 0;
  }
  double x = 0;
  for (double p : ps) x -= std::log(std::max(p, 1e-300));
  if (chi2_out) *chi2_out = 2 * x;
  // Chi-square survival with 2n degrees of freedom: e^-x * sum_{k<n} x^k / k!, in logs.
  size_t n = ps.size();
  double lse = -std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < n; ++k) {
    double term = double(k) * std::log(std::max(x, 1e-300)) - std::lgamma(double(k) + 1);
    double hi = std::max(lse, term);
    lse = hi + std::log(std::exp(lse - hi) + std::exp(term - hi));
  }
  return std::min(0.0, (-x + lse) / std::log(10.0));
}

std::vector<double> holm_log10(const std::vector<double>& lp) {
  size_t m = lp.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lp[a] < lp[b]; });
  std::vector<double> out(m);
  double running = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < m; ++i) {
    double adj = std::min(0.0, lp[order[i]] + std::log10(double(m - i)));
    running = std::max(running, adj);
    out[order[i]] = running;
  }
  return out;
}

Value DecisionConfig::to_value() const {
  Value v;
  v.set("alpha", alpha);
  v.set("min_effect", min_effect);
  v.set("permutations", uint64_t(permutations));
  v.set("screen", screen);
  v.set("always_test", uint64_t(always_test));
  v.set("seed", seed);
  return v;
}

ScanResult scan_model(const Model& m, const std::vector<const Fingerprint*>& refs, const ComponentRules& rules,
                      const DecisionConfig& cfg, const ProgressFn& progress,
                      const std::function<bool()>& cancelled) {
  using clock = std::chrono::steady_clock;
  std::vector<RefIndex> index;
  for (const Fingerprint* f : refs) {
    RefIndex ri{f, f->name + (f->revision.empty() ? "" : "@" + f->revision), {}, {}};
    for (const TensorPrint& t : f->tensors) {
      ri.by_role[t.role.component + "|" + t.role.role].push_back(&t);
      for (const UnitSketch* sk : {&t.by_row, &t.by_col})
        if (!sk->empty()) ri.profiles[sk] = gram_profile(sk->gram);
    }
    index.push_back(std::move(ri));
  }
  const size_t R = index.size();
  std::unordered_map<std::string, uint32_t> cand_ids;
  for (size_t i = 0; i < m.vocab.size(); ++i)
    if (!m.vocab[i].empty()) cand_ids.emplace(m.vocab[i], uint32_t(i));
  // results[component][ref]
  std::map<std::string, std::vector<ReferenceResult>> per;
  std::map<std::string, std::pair<uint32_t, uint32_t>> counts;  // component -> tensors, analysable
  for (const char* c : kComponents) {
    per[c].resize(R);
    for (size_t r = 0; r < R; ++r) per[c][r].reference = index[r].label;
  }
  std::mutex mu;
  std::atomic<int64_t> compare_ns{0};

  auto each = [&](TensorPrint&& cp) {
    const std::string& comp = cp.role.component;
    if (!per.count(comp)) return;
    auto tc = clock::now();
    bool two_d = !cp.by_row.empty() || !cp.by_col.empty();
    std::vector<TensorTest> tests(R);
    std::vector<std::vector<WeakEvidence>> weak(R);
    std::vector<double> best_gram(R, nan());
    std::vector<const TensorPrint*> best_ref(R, nullptr);
    std::vector<bool> best_by_col(R, false);
    std::vector<bool> comparable(R, false);
    std::vector<float> cand_prof[2];  // by_row, by_col
    for (size_t r = 0; r < R; ++r) {
      auto it = index[r].by_role.find(comp + "|" + cp.role.role);
      if (it == index[r].by_role.end()) continue;
      TensorTest& tt = tests[r];
      tt.tensor = cp.name;
      tt.role = cp.role.role;
      tt.layer = cp.role.layer;
      for (const TensorPrint* rt : it->second) {
        if (!two_d) {
          if (!cp.vec.empty() && rt->vec.size() == cp.vec.size() && (rt->role.layer == cp.role.layer || cp.role.layer < 0))
            weak[r].push_back({cp.name, rt->name, pearson(cp.vec, rt->vec)});
          continue;
        }
        if (std::string v = verbatim_kind(cp, *rt); !v.empty() && tt.verbatim.empty()) {
          tt.verbatim = v;
          tt.ref_tensor = rt->name;
          tt.ref_layer = rt->role.layer;
        }
        for (bool by_col : {false, true}) {
          const UnitSketch *cs = sketch_for(cp, by_col), *rs = sketch_for(*rt, by_col);
          if (cs->empty() || rs->empty() || cs->length != rs->length) continue;
          comparable[r] = true;
          ++tt.choices;
          std::vector<float>& cprof = by_col ? cand_prof[1] : cand_prof[0];
          if (cprof.empty()) cprof = gram_profile(cs->gram);
          double g = profile_similarity(cprof, index[r].profiles.at(rs));
          if (std::isnan(best_gram[r]) || g > best_gram[r]) best_gram[r] = g, best_ref[r] = rt, best_by_col[r] = by_col;
        }
      }
      tt.gram = best_gram[r];
    }
    // Unit tests: references similar enough, and always the most similar ones.
    std::vector<size_t> order;
    for (size_t r = 0; r < R; ++r)
      if (best_ref[r]) order.push_back(r);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return best_gram[a] > best_gram[b]; });
    for (size_t k = 0; k < order.size(); ++k) {
      size_t r = order[k];
      if (k >= cfg.always_test && best_gram[r] < cfg.screen) continue;
      TensorTest& tt = tests[r];
      const TensorPrint* rt = best_ref[r];
      bool by_col = best_by_col[r];
      uint64_t seed = cfg.seed ^ name_hash(cp.name) ^ (name_hash(rt->name) * 31) ^ name_hash(index[r].label);
      // Three pairings of units. Embedding rows are tokens: with both vocabularies known, pair
      // them by token text. Otherwise units at the same index (copies that kept their order,
      // the most powerful test) and units matched by content (copies whose units were
      // reordered); the better of these two is taken, its p-value doubled for the choice.
      const UnitSketch &cs = *sketch_for(cp, by_col), &rs = *sketch_for(*rt, by_col);
      UnitTest u{};
      std::string pairing;
      uint32_t compared = uint32_t(rs.ids.size());
      if ((cp.role.role == "embed" || cp.role.role == "head") && !by_col && !cand_ids.empty()) {
        auto pairs = token_pairs(cs, rs, index[r].fp->vocab, cand_ids);
        if (paired_test(cs, rs, pairs, cfg.permutations, seed, &u)) pairing = "tokens", compared = uint32_t(pairs.size());
      }
      if (pairing.empty()) {
        // Matching by content costs units x units work; it runs where the order-free Gram
        // similarity says the tensors may be related (a permuted copy keeps its Gram).
        bool match = best_gram[r] >= cfg.screen;
        UnitTest by_index{};
        bool indexed = paired_test(cs, rs, index_pairs(cs, rs), cfg.permutations, seed + 1, &by_index);
        UnitTest matched = match || !indexed ? unit_test(cs, rs, cfg.permutations, seed) : UnitTest{};
        if (indexed && (!match || by_index.p <= matched.p)) {
          u = by_index;
          pairing = "index";
        } else {
          u = matched;
          pairing = "matched";
        }
        if (indexed && match) u.p = std::min(1.0, 2 * u.p);
      }
      tt.tested = true;
      tt.effect = u.effect;
      tt.null_mean = u.null_mean;
      tt.null_sd = u.null_sd;
      tt.z = u.z;
      tt.p = std::min(1.0, u.p * std::max<uint32_t>(1, tt.choices));
      tt.permutations = u.draws;
      tt.units = by_col ? "cols" : "rows";
      tt.pairing = pairing;
      tt.units_compared = compared;
      if (tt.verbatim.empty()) {
        tt.ref_tensor = rt->name;
        tt.ref_layer = rt->role.layer;
      }
    }
    compare_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - tc).count();
    std::lock_guard lock(mu);
    auto& cnt = counts[comp];
    ++cnt.first;
    if (cp.analysable) ++cnt.second;
    for (size_t r = 0; r < R; ++r) {
      ReferenceResult& rr = per[comp][r];
      for (auto& w : weak[r]) rr.weak.push_back(std::move(w));
      if (comparable[r]) ++rr.comparable;
      if (!tests[r].tensor.empty() && two_d && (comparable[r] || !tests[r].verbatim.empty())) rr.tests.push_back(std::move(tests[r]));
    }
  };
  ScanResult out;
  auto tf = clock::now();
  fingerprint_tensors(m, rules, 0, cfg.threads, false, each, progress, cancelled);
  out.cancelled = cancelled && cancelled();
  out.bytes = m.weights.total_bytes;
  double total_s = std::chrono::duration<double>(clock::now() - tf).count();
  out.seconds_compare = double(compare_ns.load()) / 1e9 / std::max(1u, cfg.threads);
  out.seconds_fingerprint = std::max(0.0, total_s - out.seconds_compare);

  for (const char* comp : kComponents) {
    ComponentResult cr;
    cr.component = comp;
    cr.tensors = counts[comp].first;
    cr.analysable = counts[comp].second;
    auto& rrs = per[comp];
    std::vector<double> lps(R, 0.0);
    for (size_t r = 0; r < R; ++r) {
      ReferenceResult& rr = rrs[r];
      std::sort(rr.tests.begin(), rr.tests.end(), [](const TensorTest& a, const TensorTest& b) {
        return a.layer != b.layer ? a.layer < b.layer : a.tensor < b.tensor;
      });
      // Tensors arrive from the scanning threads in any order; the report must not.
      std::sort(rr.weak.begin(), rr.weak.end(), [](const WeakEvidence& a, const WeakEvidence& b) {
        return a.tensor != b.tensor ? a.tensor < b.tensor : a.ref_tensor < b.ref_tensor;
      });
      std::vector<double> ps;
      double eff = 0, gsum = 0;
      uint32_t gn = 0;
      for (const TensorTest& t : rr.tests) {
        if (!t.verbatim.empty()) ++rr.verbatim;
        if (!std::isnan(t.gram)) gsum += t.gram, ++gn;
        if (t.tested) ps.push_back(t.p), eff += t.effect, ++rr.tested;
      }
      if (gn) rr.gram_mean = gsum / gn;
      if (rr.tested) rr.effect = eff / rr.tested;
      rr.log10_p = rr.verbatim ? -300.0 : fisher_log10(ps, &rr.chi2);
      rr.p = std::pow(10.0, rr.log10_p);
      lps[r] = rr.log10_p;
    }
    std::vector<double> holm = holm_log10(lps);
    for (size_t r = 0; r < R; ++r) {
      rrs[r].log10_p_holm = holm[r];
      rrs[r].p_holm = std::pow(10.0, holm[r]);
    }
    // Best first: verbatim copies, then by effect among the significant, then by p-value.
    std::vector<size_t> order(R);
    std::iota(order.begin(), order.end(), 0);
    auto qualifies = [&](const ReferenceResult& rr) {
      return rr.verbatim > 0 || (rr.p_holm <= cfg.alpha && !std::isnan(rr.effect) && rr.effect >= cfg.min_effect);
    };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const auto &x = rrs[a], &y = rrs[b];
      if (qualifies(x) != qualifies(y)) return qualifies(x);
      if (x.verbatim != y.verbatim) return x.verbatim > y.verbatim;
      if (x.log10_p_holm != y.log10_p_holm) return x.log10_p_holm < y.log10_p_holm;
      return (std::isnan(x.effect) ? -1 : x.effect) > (std::isnan(y.effect) ? -1 : y.effect);
    });
    uint32_t comparable = 0;
    for (const auto& rr : rrs) comparable = std::max(comparable, rr.comparable);
    char buf[512];
    if (cr.tensors == 0) {
      cr.verdict = "absent";
      cr.reason = "the model has no tensors of this component";
    } else if (cr.analysable == 0) {
      cr.verdict = "inconclusive";
      cr.reason = "no tensor of this component could be analysed (unsupported value types)";
    } else if (R > 0 && qualifies(rrs[order[0]])) {
      const ReferenceResult& b = rrs[order[0]];
      cr.verdict = "derived";
      cr.source = b.reference;
      cr.p_holm = b.p_holm;
      cr.log10_p_holm = b.log10_p_holm;
      cr.effect = b.verbatim ? 1.0 : b.effect;
      if (b.verbatim)
        snprintf(buf, sizeof buf, "%u of %u tensors are verbatim copies (value hashes match) of %s", b.verbatim, cr.tensors, b.reference.c_str());
      else
        snprintf(buf, sizeof buf, "units correspond to %s: mean matched correlation %.3f >= %.2f over %u tensors, Holm-corrected p = 10^%.1f <= %g",
                 b.reference.c_str(), b.effect, cfg.min_effect, b.tested, b.log10_p_holm, cfg.alpha);
      cr.reason = buf;
    } else if (comparable == 0) {
      cr.verdict = "independent";
      cr.reason = R == 0 ? "the reference library is empty"
                         : "no reference has tensors of this component with matching dimensions, so none can have been copied or tuned into it";
    } else {
      cr.verdict = "independent";
      const ReferenceResult& b = rrs[order[0]];
      if (b.p_holm <= cfg.alpha)
        snprintf(buf, sizeof buf, "closest reference %s: dependence is significant (Holm p = 10^%.1f) but the mean matched correlation %.3f is below %.2f: "
                 "consistent with training against a shared or copied basis, not with inherited weights", b.reference.c_str(), b.log10_p_holm,
                 std::isnan(b.effect) ? 0.0 : b.effect, cfg.min_effect);
      else
        snprintf(buf, sizeof buf, "no reference is significant: closest %s with Holm p = %.3g and mean matched correlation %.3f",
                 b.reference.c_str(), b.p_holm, std::isnan(b.effect) ? 0.0 : b.effect);
      cr.reason = buf;
      cr.p_holm = b.p_holm;
      cr.log10_p_holm = b.log10_p_holm;
      cr.effect = b.effect;
    }
    for (size_t r : order) cr.references.push_back(std::move(rrs[r]));
    out.components.push_back(std::move(cr));
  }
  return out;
}

namespace {
Value num(double d) { return std::isnan(d) ? Value() : Value(d); }
}  // namespace

Value to_value(const ComponentResult& c, bool detail) {
  Value v;
  v.set("component", c.component);
  v.set("verdict", c.verdict);
  v.set("source", c.source.empty() ? Value() : Value(c.source));
  v.set("p_holm", c.p_holm);
  v.set("log10_p_holm", c.log10_p_holm);
  v.set("effect", num(c.effect));
  v.set("reason", c.reason);
  v.set("tensors", uint64_t(c.tensors));
  v.set("analysable", uint64_t(c.analysable));
  Value refs = Value(Array{});
  for (const ReferenceResult& r : c.references) {
    Value rv;
    rv.set("reference", r.reference);
    rv.set("tested", uint64_t(r.tested));
    rv.set("verbatim", uint64_t(r.verbatim));
    rv.set("comparable", uint64_t(r.comparable));
    rv.set("gram_mean", num(r.gram_mean));
    rv.set("chi2", r.chi2);
    rv.set("log10_p", r.log10_p);
    rv.set("log10_p_holm", r.log10_p_holm);
    rv.set("p_holm", r.p_holm);
    rv.set("effect", num(r.effect));
    if (detail) {
      Value tests = Value(Array{});
      for (const TensorTest& t : r.tests) {
        Value tv;
        tv.set("tensor", t.tensor);
        tv.set("role", t.role);
        tv.set("layer", t.layer);
        tv.set("ref_tensor", t.ref_tensor);
        tv.set("ref_layer", t.ref_layer);
        tv.set("units", t.units);
        tv.set("pairing", t.pairing);
        tv.set("gram", num(t.gram));
        tv.set("choices", uint64_t(t.choices));
        tv.set("verbatim", t.verbatim.empty() ? Value() : Value(t.verbatim));
        tv.set("tested", t.tested);
        tv.set("effect", num(t.effect));
        tv.set("null_mean", t.null_mean);
        tv.set("null_sd", t.null_sd);
        tv.set("z", t.z);
        tv.set("p", t.p);
        tv.set("units_compared", uint64_t(t.units_compared));
        tv.set("permutations", uint64_t(t.permutations));
        tests.push_back(tv);
      }
      rv.set("tensors", tests);
      Value weak = Value(Array{});
      for (const WeakEvidence& w : r.weak) {
        Value wv;
        wv.set("tensor", w.tensor);
        wv.set("ref_tensor", w.ref_tensor);
        wv.set("pearson", num(w.pearson));
        weak.push_back(wv);
      }
      rv.set("weak_evidence", weak);
    }
    refs.push_back(rv);
  }
  v.set("references", refs);
  return v;
}

}  // namespace evald::prov
