#include "lineage.hpp"

#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_map>

namespace evald::prov {

namespace {

constexpr int K = kSketchWidth;
constexpr int H = K / 2;
static_assert(H % 8 == 0, "dot() sums eight lanes");

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

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

// Eight partial sums, which the compiler keeps in vector lanes (one running sum would have to be
// added in order): unit matching is units x units of these.
float dot(const float* a, const float* b) {
  float s[8] = {};
  for (int k = 0; k < H; k += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[k + l] * b[k + l];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
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

// Where unit `id` sits among a sketch's kept (sorted) ids, or -1.
int64_t slot_of(const UnitSketch& s, uint32_t id) {
  auto it = std::lower_bound(s.ids.begin(), s.ids.end(), id);
  return it != s.ids.end() && *it == id ? it - s.ids.begin() : -1;
}

// Token rows paired by token text (not id): (reference slot, candidate slot).
std::vector<std::pair<size_t, uint32_t>> token_pairs(const UnitSketch& cand, const UnitSketch& ref, const ReferenceSet& set, size_t r,
                                                     const std::unordered_map<std::string, uint32_t>& cand_ids) {
  std::vector<std::pair<size_t, uint32_t>> pairs;
  for (size_t i = 0; i < ref.ids.size(); ++i) {
    const std::string* text = set.sampled_token(r, ref.ids[i]);
    if (!text) continue;
    auto it = cand_ids.find(*text);
    if (it == cand_ids.end()) continue;
    if (int64_t slot = slot_of(cand, it->second); slot >= 0) pairs.emplace_back(i, uint32_t(slot));
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
  v.set("min_null_models", uint64_t(min_null_models));
  v.set("null_z", null_z);
  v.set("permutations", uint64_t(permutations));
  v.set("screen", screen);
  v.set("always_test", uint64_t(always_test));
  v.set("seed", seed);
  return v;
}

namespace {

// A reference as a scan reads it: its head (the set's), tensors by role and by shape class.
struct RefIndex {
  const Fingerprint* fp;  // the head: sketches without data
  size_t r;               // index in the ReferenceSet
  std::string label;
  bool independent = false;
  // For each of the reference's anchors, the candidate's anchor of the same token (or -1); empty
  // when they share none, so token-basis profiles cannot be compared.
  std::vector<int> coord;
  bool coord_identity = false;
  std::unordered_map<std::string, std::vector<size_t>> by_role;   // component|role -> tensor indices
  std::unordered_map<std::string, std::vector<size_t>> by_class;  // class_key -> tensor indices
};

bool token_role(const TensorRole& r) { return r.shape_class == "token"; }

// Token matrices compare on their width only: a vocabulary may have been extended or pruned.
std::string class_key(const std::string& cls, uint64_t rows, uint64_t cols) {
  if (cls.empty()) return {};
  return cls == "token" ? "token|" + std::to_string(cols) : cls + "|" + std::to_string(rows) + "x" + std::to_string(cols);
}

// Every 2-D reference tensor by each of its value hashes, whatever its name or role, so that a
// renamed verbatim copy is found.
class HashIndex {
 public:
  struct Hit {
    size_t ref;
    const TensorPrint* t;
    std::string kind;
  };
  void add(size_t ref, const TensorPrint& t) {
    if (t.hashes.trivial || !t.analysable || (t.by_row.empty() && t.by_col.empty())) return;
    for (int k = 0; k < 5; ++k) map_[key(k, field(t.hashes, k))].push_back({ref, &t});
  }
  // The first verbatim match in each reference that has one.
  std::vector<Hit> find(const TensorPrint& c) const {
    std::vector<Hit> out;
    if (c.hashes.trivial || !c.analysable) return out;
    for (int k = 0; k < 5; ++k) {
      auto it = map_.find(key(k, field(c.hashes, k)));
      if (it == map_.end()) continue;
      for (const auto& entry : it->second) {
        size_t ref = entry.first;
        const TensorPrint* t = entry.second;
        if (t->shape != c.shape || field(t->hashes, k) != field(c.hashes, k)) continue;
        if (std::none_of(out.begin(), out.end(), [&](const Hit& h) { return h.ref == ref; })) out.push_back({ref, t, kKinds[k]});
      }
    }
    return out;
  }

 private:
  static constexpr const char* kKinds[5] = {"exact", "bf16", "f16", "row-permuted", "col-permuted"};
  static uint64_t field(const Hashes& h, int k) {
    const uint64_t v[5] = {h.exact, h.bf16, h.f16, h.rows, h.cols};
    return v[k];
  }
  static uint64_t key(int k, uint64_t h) { return mix64(h + uint64_t(k) * 0x9e3779b97f4a7c15ull); }
  std::unordered_map<uint64_t, std::vector<std::pair<size_t, const TensorPrint*>>> map_;
};

std::vector<RefIndex> index_library(const ReferenceSet& set, HashIndex* hashes) {
  std::vector<RefIndex> index;
  for (size_t r = 0; r < set.size(); ++r) {
    const Fingerprint* f = &set.head(r);
    RefIndex ri{f, r, library_key(*f), f->kind == "independent", {}, false, {}, {}};
    for (size_t i = 0; i < f->tensors.size(); ++i) {
      const TensorPrint& t = f->tensors[i];
      ri.by_role[t.role.component + "|" + t.role.role].push_back(i);
      if (std::string k = class_key(t.role.shape_class, t.rows, t.cols); !k.empty() && t.role.component != "vision")
        ri.by_class[k].push_back(i);
      hashes->add(r, t);
    }
    index.push_back(std::move(ri));
  }
  return index;
}

// The reference tensors a candidate tensor may be a copy of: those of its role when names
// established one, else those of its shape class and dimensions (any name, any layer).
const std::vector<size_t>* counterparts(const RefIndex& ri, const TensorPrint& cp) {
  if (cp.role.known || cp.role.component == "vision") {
    auto it = ri.by_role.find(cp.role.component + "|" + cp.role.role);
    if (it != ri.by_role.end()) return &it->second;
  }
  auto it = ri.by_class.find(class_key(cp.role.shape_class, cp.rows, cp.cols));
  return it == ri.by_class.end() ? nullptr : &it->second;
}

// Reference token rows paired with the candidate's rows of the same id (vocabularies unknown).
std::vector<std::pair<size_t, uint32_t>> id_pairs(const UnitSketch& cand, const UnitSketch& ref) {
  std::vector<std::pair<size_t, uint32_t>> pairs;
  for (size_t i = 0; i < ref.ids.size(); ++i)
    if (int64_t slot = slot_of(cand, ref.ids[i]); slot >= 0) pairs.emplace_back(i, uint32_t(slot));
  return pairs;
}

// How units are paired: by token identity (token matrices), the better of index and content
// matching (Auto), or one of the two alone.
enum class Pairing { Auto, Index, Matched };

// False when the pairing asked for is impossible (index pairing of differently sized tensors).
bool test_units(const UnitSketch& cs, const UnitSketch& rs, bool tokens, Pairing mode, bool content_match, const ReferenceSet& set,
                const RefIndex& ri, const std::unordered_map<std::string, uint32_t>& cand_ids, const DecisionConfig& cfg, uint64_t seed,
                std::string* pairing, uint32_t* compared, UnitTest* out) {
  UnitTest& u = *out;
  u = UnitTest{};
  *compared = uint32_t(rs.ids.size());
  // Token matrices are judged by token identity only: text when both vocabularies are known,
  // else id. Matching rows by content would find a residual basis shared with copied neighbours,
  // not copied token vectors.
  if (tokens) {
    bool texts = !cand_ids.empty() && set.vocab_size(ri.r) > 0;
    auto pairs = texts ? token_pairs(cs, rs, set, ri.r, cand_ids) : id_pairs(cs, rs);
    *pairing = texts ? "tokens" : "ids";
    if (!paired_test(cs, rs, pairs, cfg.permutations, seed, &u)) u = UnitTest{0, 0, 0, 0, 1, 0};
    *compared = uint32_t(pairs.size());
    return true;
  }
  if (mode == Pairing::Index) {
    *pairing = "index";
    return paired_test(cs, rs, index_pairs(cs, rs), cfg.permutations, seed + 1, &u);
  }
  if (mode == Pairing::Matched) {
    *pairing = "matched";
    u = unit_test(cs, rs, cfg.permutations, seed);
    return true;
  }
  // Units at the same index (copies that kept their order, the most powerful test) and units
  // matched by content (copies whose units were reordered); the better of the two is taken, its
  // p-value doubled for the choice. Matching by content costs units x units work: it runs where
  // the order-free Gram similarity says the tensors may be related (a permuted copy keeps it).
  UnitTest by_index{};
  bool indexed = paired_test(cs, rs, index_pairs(cs, rs), cfg.permutations, seed + 1, &by_index);
  UnitTest matched = content_match || !indexed ? unit_test(cs, rs, cfg.permutations, seed) : UnitTest{};
  if (indexed && (!content_match || by_index.p <= matched.p)) u = by_index, *pairing = "index";
  else u = matched, *pairing = "matched";
  if (indexed && content_match) u.p = std::min(1.0, 2 * u.p);
  return true;
}


// A candidate's token-basis profiles with their coordinates put in a reference's anchor order.
UnitSketch reorder(const UnitSketch& s, const std::vector<int>& coord) {
  UnitSketch o;
  if (s.empty()) return o;
  o.units = s.units, o.length = s.length, o.ids = s.ids;
  o.data.assign(s.data.size(), 0.0f);
  o.gram.assign(s.gram.size(), 0.0f);
  for (size_t i = 0; i < s.ids.size(); ++i) {
    const float* in = s.data.data() + i * K;
    float* out = o.data.data() + i * K;
    for (size_t j = 0; j < coord.size() && j < size_t(K); ++j)
      if (coord[j] >= 0) out[j] = in[coord[j]];
    add_gram(o.gram, out);
  }
  return o;
}

// One counterpart of a candidate tensor in one reference, after the Gram screen: its Gram
// similarity per sketch kind (NaN where the kind does not compare).
struct Screened {
  size_t t;  // tensor index in the reference's head
  std::array<double, 4> g{nan(), nan(), nan(), nan()};
};

struct BasisTest {
  bool tested = false;
  UnitTest u{};
  std::string pairing;
  // Token basis only: units matched by content. Independent models trained on similar text have
  // units that answer the same tokens alike, so this evidence decides only against the library's
  // known-independent models (ReferenceResult::calibrated_*).
  bool cal_tested = false;
  UnitTest cal{};
  uint32_t compared = 0, choices = 0;
  int kind = kByRow;
  const TensorPrint* rt = nullptr;  // the reference tensor's head
  double gram = nan();
};

// What one candidate tensor contributes: per reference, its test and weak evidence.
struct TensorOutcome {
  std::string component;
  std::vector<TensorTest> tests;
  std::vector<std::vector<WeakEvidence>> weak;
  std::vector<bool> comparable;
  std::string error;  // a reference could not be read: the scan's result must not be used
};

// The candidate sketch of a kind as reference r sees it (token-basis coordinates in its order).
struct CandidateView {
  const TensorPrint& cp;
  const std::vector<std::vector<UnitSketch>>& views;
  const UnitSketch& sketch(size_t r, int kind) const {
    if (kind < kTokRows || views[r].empty()) return sketch_of(cp, kind);
    return views[r][size_t(kind - kTokRows)];
  }
};

// The Gram screen: every counterpart's similarity to the candidate, per kind. Reads each
// counterpart's profiles once, one at a time, so memory does not grow with the library.
std::vector<std::vector<Screened>> screen(const CandidateView& cv, const std::vector<RefIndex>& index, const ReferenceSet& set,
                                          std::vector<bool>* comparable, std::string* error) {
  const TensorPrint& cp = cv.cp;
  const size_t R = index.size();
  std::vector<std::vector<Screened>> out(R);
  std::array<std::vector<float>, 4> base;
  for (int kind = 0; kind < 4; ++kind) base[size_t(kind)] = gram_profile(sketch_of(cp, kind).gram);
  for (size_t r = 0; r < R; ++r) {
    const std::vector<size_t>* list = counterparts(index[r], cp);
    if (!list) continue;
    std::array<std::vector<float>, 2> tok;  // token kinds in this reference's anchor order
    if (!cv.views[r].empty())
      for (int k = 0; k < 2; ++k) tok[size_t(k)] = gram_profile(cv.views[r][size_t(k)].gram);
    for (size_t t : *list) {
      const TensorPrint& rt = index[r].fp->tensors[t];
      Screened sc{t};
      bool any = false;
      for (int kind = 0; kind < 4; ++kind) {
        bool tokens_basis = kind >= kTokRows;
        if ((kind == kByCol || kind == kTokCols) && token_role(cp.role)) continue;
        if (tokens_basis && index[r].coord.empty()) continue;
        const UnitSketch &cs = cv.sketch(r, kind), &rs = sketch_of(rt, kind);
        // Token-basis profiles have one coordinate per anchor whatever the residual width, so a
        // copy whose width was pruned still compares there.
        if (cs.empty() || rs.empty() || (!tokens_basis && cs.length != rs.length)) continue;
        any = true;
        sc.g[size_t(kind)] = 0;  // filled below from the stored profile
      }
      if (!any) continue;
      (*comparable)[r] = true;
      auto prof = set.profiles(r, t);
      if (!prof) {
        if (error->empty()) *error = prof.error();
        continue;
      }
      for (int kind = 0; kind < 4; ++kind) {
        if (std::isnan(sc.g[size_t(kind)])) continue;
        const std::vector<float>& c = kind >= kTokRows && !cv.views[r].empty() ? tok[size_t(kind - kTokRows)] : base[size_t(kind)];
        sc.g[size_t(kind)] = profile_similarity(c, prof->kind[size_t(kind)]);
      }
      out[r].push_back(sc);
    }
  }
  return out;
}

// One basis's tests of a candidate tensor against every reference: the best counterpart per
// reference by Gram similarity, then unit tests where the screen lets them through.
std::vector<BasisTest> basis_tests(const CandidateView& cv, bool tokens_basis, const std::vector<RefIndex>& index, const ReferenceSet& set,
                                   const std::vector<std::vector<Screened>>& screened,
                                   const std::unordered_map<std::string, uint32_t>& cand_ids, const DecisionConfig& cfg,
                                   std::string* error) {
  const TensorPrint& cp = cv.cp;
  const size_t R = index.size();
  std::vector<BasisTest> out(R);
  std::vector<size_t> best_t(R);
  for (size_t r = 0; r < R; ++r) {
    BasisTest& bt = out[r];
    for (const Screened& sc : screened[r])
      for (int kind : tokens_basis ? std::array<int, 2>{kTokRows, kTokCols} : std::array<int, 2>{kByRow, kByCol}) {
        double g = sc.g[size_t(kind)];
        if (std::isnan(g)) continue;
        ++bt.choices;
        if (!bt.rt || g > bt.gram) bt.gram = g, bt.rt = &index[r].fp->tensors[sc.t], bt.kind = kind, best_t[r] = sc.t;
      }
  }
  std::vector<size_t> order;
  for (size_t r = 0; r < R; ++r)
    if (out[r].rt) order.push_back(r);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return out[a].gram > out[b].gram; });
  for (size_t k = 0; k < order.size(); ++k) {
    size_t r = order[k];
    BasisTest& bt = out[r];
    if (k >= cfg.always_test && bt.gram < cfg.screen && !index[r].independent) continue;
    auto full = set.tensor(r, best_t[r]);
    if (!full) {
      if (error->empty()) *error = full.error();
      continue;
    }
    uint64_t seed = cfg.seed ^ text_hash64(cp.name) ^ (text_hash64(bt.rt->name) * 31) ^ text_hash64(index[r].label) ^ (tokens_basis ? 0x7f4a7c15u : 0);
    const UnitSketch &cs = cv.sketch(r, bt.kind), &rs = sketch_of(**full, bt.kind);
    bool tokens = token_role(cp.role);
    bt.tested = test_units(cs, rs, tokens, tokens_basis ? Pairing::Index : Pairing::Auto, bt.gram >= cfg.screen, set, index[r], cand_ids,
                           cfg, seed, &bt.pairing, &bt.compared, &bt.u);
    bt.u.p = std::min(1.0, bt.u.p * std::max<uint32_t>(1, bt.choices));
    if (tokens_basis && !tokens && bt.gram >= cfg.screen) {
      std::string ignored;
      uint32_t n = 0;
      bt.cal_tested = test_units(cs, rs, false, Pairing::Matched, true, set, index[r], cand_ids, cfg, seed + 2, &ignored, &n, &bt.cal);
      bt.cal.p = std::min(1.0, bt.cal.p * std::max<uint32_t>(1, bt.choices));
    }
  }
  return out;
}

void record(const BasisTest& b, const char* basis, TensorTest* tt) {
  tt->gram = b.gram;
  tt->choices = b.choices;
  if (!b.tested) return;
  tt->tested = true;
  tt->basis = basis;
  tt->effect = b.u.effect;
  tt->null_mean = b.u.null_mean;
  tt->null_sd = b.u.null_sd;
  tt->z = b.u.z;
  tt->p = b.u.p;
  tt->permutations = b.u.draws;
  tt->units = b.kind == kByCol || b.kind == kTokCols ? "cols" : "rows";
  tt->pairing = b.pairing;
  tt->units_compared = b.compared;
  if (tt->verbatim.empty()) tt->ref_tensor = b.rt->name, tt->ref_layer = b.rt->role.layer;
}

TensorOutcome compare_tensor(const TensorPrint& cp, const std::vector<RefIndex>& index, const ReferenceSet& set, const HashIndex& hashes,
                             const std::unordered_map<std::string, uint32_t>& cand_ids, const DecisionConfig& cfg) {
  const size_t R = index.size();
  TensorOutcome o{cp.role.component, std::vector<TensorTest>(R), std::vector<std::vector<WeakEvidence>>(R), std::vector<bool>(R, false), {}};
  std::vector<HashIndex::Hit> hits = hashes.find(cp);
  // A tensor no rule or shape placed still counts when it is a verbatim copy of a reference tensor.
  if (o.component == "other" && !hits.empty()) o.component = hits[0].t->role.component;
  bool two_d = !cp.by_row.empty() || !cp.by_col.empty();
  for (size_t r = 0; r < R; ++r) {
    TensorTest& tt = o.tests[r];
    tt.tensor = cp.name, tt.role = cp.role.role, tt.layer = cp.role.layer;
    for (const HashIndex::Hit& h : hits)
      if (h.ref == r) tt.verbatim = h.kind, tt.ref_tensor = h.t->name, tt.ref_layer = h.t->role.layer;
    const std::vector<size_t>* list = counterparts(index[r], cp);
    if (two_d || !list || cp.vec.empty()) continue;
    for (size_t t : *list) {
      const TensorPrint& rt = index[r].fp->tensors[t];
      if (!rt.by_row.empty() || !rt.by_col.empty() || rt.cols != cp.vec.size() || (rt.role.layer != cp.role.layer && cp.role.layer >= 0))
        continue;
      auto full = set.tensor(r, t);
      if (!full) {
        if (o.error.empty()) o.error = full.error();
        continue;
      }
      if ((*full)->vec.size() == cp.vec.size()) o.weak[r].push_back({cp.name, rt.name, pearson(cp.vec, (*full)->vec)});
    }
  }
  if (!two_d) {
    for (TensorTest& tt : o.tests) tt.tensor.clear();
    return o;
  }
  // The token-basis profiles as each reference's anchors order them.
  std::vector<std::vector<UnitSketch>> views(R);
  bool has_tok = !cp.tok_rows.empty() || !cp.tok_cols.empty();
  for (size_t r = 0; r < R && has_tok; ++r)
    if (!index[r].coord.empty() && !index[r].coord_identity) views[r] = {reorder(cp.tok_rows, index[r].coord), reorder(cp.tok_cols, index[r].coord)};
  CandidateView cv{cp, views};
  std::vector<std::vector<Screened>> screened = screen(cv, index, set, &o.comparable, &o.error);
  std::vector<BasisTest> residual = basis_tests(cv, false, index, set, screened, cand_ids, cfg, &o.error);
  std::vector<BasisTest> tokens = has_tok ? basis_tests(cv, true, index, set, screened, cand_ids, cfg, &o.error) : std::vector<BasisTest>(R);
  for (size_t r = 0; r < R; ++r) {
    TensorTest& tt = o.tests[r];
    const BasisTest &a = residual[r], &b = tokens[r];
    if (token_role(cp.role)) {
      // A token matrix's profiles are its token-token similarities, which independent models
      // trained on similar text share: calibrated evidence only.
      record(a, "residual", &tt);
      if (b.tested) tt.calibrated_effect = b.u.effect, tt.calibrated_p = b.u.p, tt.calibrated_kind = "token-similarity";
    } else {
      if (b.cal_tested) tt.calibrated_effect = b.cal.effect, tt.calibrated_p = b.cal.p, tt.calibrated_kind = "token-basis-matched";
      if (a.tested && b.tested) {
        record(a.u.p <= b.u.p ? a : b, a.u.p <= b.u.p ? "residual" : "tokens", &tt);
        tt.p = std::min(1.0, 2 * tt.p);
      } else {
        record(b.tested ? b : a, b.tested ? "tokens" : "residual", &tt);
      }
    }
    if (!o.comparable[r] && tt.verbatim.empty()) tt.tensor.clear();
  }
  return o;
}

// Which layers carry the evidence: one copied layer among fresh ones is named, not blurred into
// the component's mean.
std::vector<LayerResult> layer_results(const ReferenceResult& rr, const DecisionConfig& cfg) {
  std::map<int, std::vector<const TensorTest*>> by_layer;
  for (const TensorTest& t : rr.tests)
    if (t.layer >= 0) by_layer[t.layer].push_back(&t);
  std::vector<LayerResult> out;
  double bonferroni = std::log10(double(std::max<size_t>(1, by_layer.size())));
  for (const auto& [layer, tests] : by_layer) {
    LayerResult l;
    l.layer = layer;
    std::vector<double> ps;
    double eff = 0;
    for (const TensorTest* t : tests) {
      ++l.tensors;
      if (!t->verbatim.empty()) ++l.verbatim;
      if (t->tested) ps.push_back(t->p), eff += t->effect, ++l.tested;
    }
    if (l.tested) l.effect = eff / l.tested;
    l.log10_p = l.verbatim ? -300.0 : std::min(0.0, fisher_log10(ps) + bonferroni);
    l.derived = l.verbatim > 0 || (l.log10_p <= std::log10(cfg.alpha) && !std::isnan(l.effect) && l.effect >= cfg.min_effect);
    out.push_back(l);
  }
  return out;
}

// Fisher's combination per reference, Holm's correction across the references (not across the
// known-independent models, which are never a source), for the decisive and the calibrated
// evidence alike.
void combine(std::vector<ReferenceResult>& rrs, const std::vector<RefIndex>& index, const DecisionConfig& cfg) {
  std::vector<double> lps, cal_lps;
  for (size_t r = 0; r < rrs.size(); ++r) {
    ReferenceResult& rr = rrs[r];
    rr.independent = index[r].independent;
    std::sort(rr.tests.begin(), rr.tests.end(), [](const TensorTest& a, const TensorTest& b) {
      return a.layer != b.layer ? a.layer < b.layer : a.tensor < b.tensor;
    });
    // Tensors arrive from the scanning threads in any order; the report must not.
    std::sort(rr.weak.begin(), rr.weak.end(), [](const WeakEvidence& a, const WeakEvidence& b) {
      return a.tensor != b.tensor ? a.tensor < b.tensor : a.ref_tensor < b.ref_tensor;
    });
    std::vector<double> ps, cal_ps;
    double eff = 0, cal_eff = 0, gsum = 0;
    uint32_t gn = 0;
    for (const TensorTest& t : rr.tests) {
      if (!t.verbatim.empty()) ++rr.verbatim;
      if (!std::isnan(t.gram)) gsum += t.gram, ++gn;
      if (t.tested) ps.push_back(t.p), eff += t.effect, ++rr.tested;
      if (!t.calibrated_kind.empty()) cal_ps.push_back(t.calibrated_p), cal_eff += t.calibrated_effect, ++rr.calibrated_tested;
    }
    if (gn) rr.gram_mean = gsum / gn;
    if (rr.tested) rr.effect = eff / rr.tested;
    if (rr.calibrated_tested) rr.calibrated_effect = cal_eff / rr.calibrated_tested;
    rr.log10_p = rr.verbatim ? -300.0 : fisher_log10(ps, &rr.chi2);
    rr.decisive = rr.effect;
    rr.layers = layer_results(rr, cfg);
    if (!rr.verbatim && rr.layers.size() > 1) {
      // Two tests, the whole component and its strongest layer (already Bonferroni-corrected
      // over the layers): the better decides, its p-value doubled.
      auto best = std::min_element(rr.layers.begin(), rr.layers.end(), [](const LayerResult& a, const LayerResult& b) { return a.log10_p < b.log10_p; });
      if (best->log10_p < rr.log10_p) rr.log10_p = best->log10_p, rr.partial_layer = best->layer, rr.decisive = best->effect;
      rr.log10_p = std::min(0.0, rr.log10_p + std::log10(2.0));
    }
    rr.p = std::pow(10.0, rr.log10_p);
    rr.calibrated_log10_p = fisher_log10(cal_ps);
    if (!rr.independent) lps.push_back(rr.log10_p), cal_lps.push_back(rr.calibrated_log10_p);
  }
  std::vector<double> holm = holm_log10(lps), cal_holm = holm_log10(cal_lps);
  size_t k = 0;
  for (ReferenceResult& rr : rrs) {
    rr.log10_p_holm = rr.independent ? rr.log10_p : holm[k];
    rr.calibrated_log10_p_holm = rr.independent ? rr.calibrated_log10_p : cal_holm[k];
    if (!rr.independent) ++k;
    rr.p_holm = std::pow(10.0, rr.log10_p_holm);
  }
  // The empirical null: where each reference's effects fall among the known-independent models'.
  std::vector<double> nulls, cal_nulls;
  auto value = [](double e) { return std::isnan(e) ? 0.0 : e; };
  for (const ReferenceResult& rr : rrs) {
    if (!rr.independent) continue;
    if (rr.comparable > 0 || rr.verbatim > 0) nulls.push_back(value(rr.decisive));
    if (rr.calibrated_tested > 0) cal_nulls.push_back(value(rr.calibrated_effect));
  }
  auto at_or_above = [](const std::vector<double>& v, double e) {
    return uint32_t(std::count_if(v.begin(), v.end(), [&](double x) { return x >= e; }));
  };
  for (ReferenceResult& rr : rrs) {
    rr.null_models = uint32_t(nulls.size());
    rr.calibrated_null_models = uint32_t(cal_nulls.size());
    rr.null_at_or_above = at_or_above(nulls, value(rr.decisive));
    rr.calibrated_null_at_or_above = at_or_above(cal_nulls, value(rr.calibrated_effect));
    if (!nulls.empty()) rr.null_max_effect = *std::max_element(nulls.begin(), nulls.end());
    if (!cal_nulls.empty()) {
      rr.calibrated_null_max = *std::max_element(cal_nulls.begin(), cal_nulls.end());
      double mean = 0, ss = 0;
      for (double x : cal_nulls) mean += x;
      mean /= double(cal_nulls.size());
      for (double x : cal_nulls) ss += (x - mean) * (x - mean);
      double sd = cal_nulls.size() > 1 ? std::sqrt(ss / double(cal_nulls.size() - 1)) : 0.0;
      rr.calibrated_null_z = sd > 0 ? (value(rr.calibrated_effect) - mean) / sd : nan();
    }
  }
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[768];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string layer_list(const std::vector<LayerResult>& ls) {
  std::string derived;
  size_t n = 0;
  for (const LayerResult& l : ls)
    if (l.derived) derived += (n++ ? ", " : "") + std::to_string(l.layer);
  if (ls.empty()) return {};
  if (n == ls.size()) return "; every layer (" + std::to_string(n) + ") derived";
  return n ? "; derived layer" + std::string(n > 1 ? "s " : " ") + derived + " of " + std::to_string(ls.size()) : "; no single layer is derived on its own";
}

ComponentResult decide(const char* comp, std::vector<ReferenceResult> rrs, uint32_t tensors, uint32_t analysable, const DecisionConfig& cfg) {
  ComponentResult cr;
  cr.component = comp;
  cr.tensors = tensors;
  cr.analysable = analysable;
  // Statistics alone, and beyond every known-independent model: a verdict needs both.
  auto significant = [&](const ReferenceResult& rr) {
    return rr.verbatim > 0 || (rr.p_holm <= cfg.alpha && !std::isnan(rr.decisive) && rr.decisive >= cfg.min_effect);
  };
  auto qualifies = [&](const ReferenceResult& rr) {
    return !rr.independent && significant(rr) && (rr.verbatim > 0 || rr.null_at_or_above == 0);
  };
  // Calibrated evidence decides only against enough known-independent models, above all of them.
  auto cal_significant = [&](const ReferenceResult& rr) {
    return rr.calibrated_tested > 0 && rr.calibrated_log10_p_holm <= std::log10(cfg.alpha) && rr.calibrated_effect >= cfg.min_effect;
  };
  auto cal_qualifies = [&](const ReferenceResult& rr) {
    return !rr.independent && cal_significant(rr) && rr.calibrated_null_models >= cfg.min_null_models && rr.calibrated_null_at_or_above == 0 &&
           !std::isnan(rr.calibrated_null_z) && rr.calibrated_null_z >= cfg.null_z;
  };
  auto eff = [](double e) { return std::isnan(e) ? -1.0 : e; };
  std::vector<size_t> order(rrs.size());
  std::iota(order.begin(), order.end(), 0);
  // Best first: qualifying references (verbatim copies, then the largest effect), then by
  // p-value and effect; known-independent models last.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto &x = rrs[a], &y = rrs[b];
    if (x.independent != y.independent) return !x.independent;
    if (qualifies(x) != qualifies(y)) return qualifies(x);
    if (cal_qualifies(x) != cal_qualifies(y)) return cal_qualifies(x);
    if (x.verbatim != y.verbatim) return x.verbatim > y.verbatim;
    if (qualifies(x) && eff(x.decisive) != eff(y.decisive)) return eff(x.decisive) > eff(y.decisive);
    if (cal_qualifies(x) && eff(x.calibrated_effect) != eff(y.calibrated_effect)) return eff(x.calibrated_effect) > eff(y.calibrated_effect);
    if (x.log10_p_holm != y.log10_p_holm) return x.log10_p_holm < y.log10_p_holm;
    return eff(x.effect) > eff(y.effect);
  });
  uint32_t comparable = 0;
  size_t references = 0;
  for (const auto& rr : rrs)
    if (!rr.independent) comparable = std::max(comparable, rr.comparable), ++references;
  auto calibration = [&](const ReferenceResult& b) {
    if (b.null_models == 0) return std::string("; no known-independent model in the library could be compared with this component, so the effect is not calibrated");
    return fmt("; %u of %u known-independent models reach that effect (highest %.3f)", b.null_at_or_above, b.null_models,
               std::isnan(b.null_max_effect) ? 0.0 : b.null_max_effect);
  };
  if (cr.tensors == 0) {
    cr.verdict = "absent";
    cr.reason = "the model has no tensors of this component";
  } else if (cr.analysable == 0) {
    cr.verdict = "inconclusive";
    cr.reason = "no tensor of this component could be analysed (unsupported value types)";
  } else if (references == 0) {
    cr.verdict = "inconclusive";
    cr.reason = "the reference library holds no reference model to compare with";
  } else if (qualifies(rrs[order[0]])) {
    const ReferenceResult& b = rrs[order[0]];
    cr.verdict = "derived";
    cr.evidence = b.verbatim ? "verbatim" : "units";
    cr.source = b.reference;
    cr.p_holm = b.p_holm;
    cr.log10_p_holm = b.log10_p_holm;
    cr.effect = b.verbatim ? 1.0 : b.decisive;
    cr.layers = b.layers;
    if (b.verbatim)
      cr.reason = fmt("%u of %u tensors are verbatim copies (value hashes match) of %s", b.verbatim, cr.tensors, b.reference.c_str());
    else if (b.partial_layer >= 0)
      cr.reason = fmt("units of layer %d correspond to %s: mean matched correlation %.3f >= %.2f, Holm-corrected p = 10^%.1f <= %g "
                      "(the whole component: mean %.3f over %u tensors)", b.partial_layer, b.reference.c_str(), b.decisive, cfg.min_effect,
                      b.log10_p_holm, cfg.alpha, b.effect, b.tested) + calibration(b);
    else
      cr.reason = fmt("units correspond to %s: mean matched correlation %.3f >= %.2f over %u tensors, Holm-corrected p = 10^%.1f <= %g",
                      b.reference.c_str(), b.effect, cfg.min_effect, b.tested, b.log10_p_holm, cfg.alpha) + calibration(b);
    cr.reason += layer_list(cr.layers);
  } else if (cal_qualifies(rrs[order[0]])) {
    const ReferenceResult& b = rrs[order[0]];
    cr.verdict = "derived";
    cr.evidence = "calibrated";
    cr.source = b.reference;
    cr.log10_p_holm = b.calibrated_log10_p_holm;
    cr.p_holm = std::pow(10.0, b.calibrated_log10_p_holm);
    cr.effect = b.calibrated_effect;
    cr.reason = fmt("transform-invariant evidence: units correspond to %s in the token basis, mean correlation %.3f over %u tensors "
                    "(Holm p = 10^%.1f), above all %u known-independent models (highest %.3f; %.1f standard deviations above their mean)",
                    b.reference.c_str(), b.calibrated_effect, b.calibrated_tested, b.calibrated_log10_p_holm, b.calibrated_null_models, b.calibrated_null_max,
                    b.calibrated_null_z);
  } else if (comparable == 0) {
    cr.verdict = "independent";
    cr.reason = "no reference has tensors of this component with matching dimensions, so none can have been copied or tuned into it";
  } else {
    cr.verdict = "independent";
    const ReferenceResult& b = rrs[order[0]];
    if (significant(b))
      cr.reason = fmt("closest reference %s: dependence is significant (Holm p = 10^%.1f, mean matched correlation %.3f) but not beyond the "
                      "known-independent models", b.reference.c_str(), b.log10_p_holm, b.effect) + calibration(b);
    else if (b.p_holm <= cfg.alpha)
      cr.reason = fmt("closest reference %s: dependence is significant (Holm p = 10^%.1f) but the mean matched correlation %.3f is below %.2f: "
                      "consistent with training against a shared or copied basis, not with inherited weights", b.reference.c_str(), b.log10_p_holm,
                      std::isnan(b.effect) ? 0.0 : b.effect, cfg.min_effect);
    else
      cr.reason = fmt("no reference is significant: closest %s with Holm p = %.3g and mean matched correlation %.3f", b.reference.c_str(),
                      b.p_holm, std::isnan(b.effect) ? 0.0 : b.effect);
    cr.p_holm = b.p_holm;
    cr.log10_p_holm = b.log10_p_holm;
    cr.effect = b.effect;
    if (cal_significant(b))
      cr.reason += b.calibrated_null_models < cfg.min_null_models
                       ? fmt("; in the token basis its units match %s by content (mean %.3f), which independent models trained on similar text "
                             "also do: with %u of the %u known-independent models needed in the library this is not evidence",
                             b.reference.c_str(), b.calibrated_effect, b.calibrated_null_models, cfg.min_null_models)
                       : fmt("; in the token basis its units match %s by content (mean %.3f), %u of %u known-independent models as well or "
                             "better, %.1f standard deviations above their mean (%.1f needed)",
                             b.reference.c_str(), b.calibrated_effect, b.calibrated_null_at_or_above, b.calibrated_null_models,
                             std::isnan(b.calibrated_null_z) ? 0.0 : b.calibrated_null_z, cfg.null_z);
  }
  for (size_t r : order) cr.references.push_back(std::move(rrs[r]));
  return cr;
}

// The token basis is built from the model's own embedding and output-head rows. When the llm is
// derived only in that basis (its residual stream was transformed), and those rows' token
// similarities match the same source, the embeddings were either copied and transformed with it
// or trained afresh around copied blocks; without known-independent models to calibrate the
// similarity, that is inconclusive, not independent.
ComponentResult* find_component(std::vector<ComponentResult>& comps, const char* name) {
  for (ComponentResult& c : comps)
    if (c.component == name) return &c;
  return nullptr;
}

void implicate_token_matrices(std::vector<ComponentResult>& comps, const DecisionConfig& cfg) {
  ComponentResult *llm = find_component(comps, "llm"), *emb = find_component(comps, "embeddings");
  if (!llm || !emb || llm->verdict != "derived" || llm->evidence != "units" || emb->verdict != "independent") return;
  const ReferenceResult& src = llm->references.front();
  size_t tokens = size_t(std::count_if(src.tests.begin(), src.tests.end(), [](const TensorTest& t) { return t.tested && t.basis == "tokens"; }));
  if (2 * tokens <= src.tested) return;
  for (const ReferenceResult& rr : emb->references) {
    if (rr.reference != llm->source || rr.calibrated_tested == 0) continue;
    if (!(rr.calibrated_log10_p_holm <= std::log10(cfg.alpha) && rr.calibrated_effect >= cfg.min_effect)) return;
    emb->verdict = "inconclusive";
    emb->reason = fmt("the llm derives from %s only in the token basis, which this model's own embedding and output-head rows define, and "
                      "their token similarities match %s's (mean %.3f): copied and transformed with the blocks, or trained afresh around them; "
                      "%u known-independent models in the library (of the %u needed) cannot tell which",
                      llm->source.c_str(), llm->source.c_str(), rr.calibrated_effect, rr.calibrated_null_models, cfg.min_null_models);
    return;
  }
}

// When the embeddings were copied (found in the residual basis), the token basis is the source's
// own token vectors, and fresh blocks trained on them answer those tokens as the source's blocks
// do: content-matched units there are not evidence that the blocks were copied.
void discount_shared_token_basis(std::vector<ComponentResult>& comps) {
  ComponentResult *llm = find_component(comps, "llm"), *emb = find_component(comps, "embeddings");
  if (!llm || !emb || llm->verdict != "derived" || llm->evidence != "calibrated") return;
  if (emb->verdict != "derived" || emb->evidence == "calibrated" || emb->source != llm->source) return;
  llm->verdict = "independent";
  llm->reason = fmt("its units match %s only by content in the token basis (mean %.3f), and that basis is %s's own embedding rows, which "
                    "this model copied: blocks trained afresh on copied embeddings answer their tokens alike, so this is not evidence the "
                    "blocks were copied", llm->source.c_str(), llm->effect, llm->source.c_str());
  llm->source.clear();
  llm->evidence.clear();
}

}  // namespace

ScanResult scan_model(const Model& m, const std::vector<const Fingerprint*>& refs, const ComponentRules& rules,
                      const DecisionConfig& cfg, const ProgressFn& progress,
                      const std::function<bool()>& cancelled) {
  return scan_model(m, *resident_references(refs), rules, cfg, progress, cancelled);
}

ScanResult scan_model(const Model& m, const ReferenceSet& set, const ComponentRules& rules, const DecisionConfig& cfg,
                      const ProgressFn& progress, const std::function<bool()>& cancelled) {
  using clock = std::chrono::steady_clock;
  HashIndex hashes;
  std::vector<RefIndex> index = index_library(set, &hashes);
  const size_t R = index.size();
  std::unordered_map<std::string, uint32_t> cand_ids;
  for (size_t i = 0; i < m.vocab.size(); ++i)
    if (!m.vocab[i].empty()) cand_ids.emplace(m.vocab[i], uint32_t(i));
  Layout layout = layout_of(m, rules);
  AnchorBasis basis = AnchorBasis::of(m, layout);
  for (RefIndex& ri : index) {
    std::vector<int> coord = anchor_map(ri.fp->anchors, basis.anchors());
    size_t shared = size_t(std::count_if(coord.begin(), coord.end(), [](int c) { return c >= 0; }));
    // Fewer than 16 shared anchors cannot carry a unit profile.
    if (shared < 16) continue;
    ri.coord_identity = coord.size() == basis.anchors().size();
    for (size_t j = 0; j < coord.size(); ++j) ri.coord_identity &= coord[j] == int(j);
    ri.coord = std::move(coord);
  }
  ScanResult out;
  out.width = layout.width;
  // The candidate's token rows that pair with a reference's sampled ones: all a token matrix
  // needs to keep, however large the vocabulary.
  std::vector<uint32_t> token_rows;
  for (const RefIndex& ri : index) {
    bool texts = !cand_ids.empty() && set.vocab_size(ri.r) > 0;
    for (const TensorPrint& t : ri.fp->tensors) {
      if (t.role.shape_class != "token") continue;
      for (uint32_t id : t.by_row.ids) {
        if (!texts) {
          token_rows.push_back(id);
        } else if (const std::string* text = set.sampled_token(ri.r, id)) {
          auto it = cand_ids.find(*text);
          if (it != cand_ids.end()) token_rows.push_back(it->second);
        }
      }
    }
  }
  std::sort(token_rows.begin(), token_rows.end());
  token_rows.erase(std::unique(token_rows.begin(), token_rows.end()), token_rows.end());
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
    auto tc = clock::now();
    TensorOutcome o = compare_tensor(cp, index, set, hashes, cand_ids, cfg);
    compare_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - tc).count();
    std::lock_guard lock(mu);
    if (!o.error.empty() && out.library_error.empty()) out.library_error = o.error;
    out.total_params += cp.rows * cp.cols;
    if (!per.count(o.component)) {
      out.unassigned.push_back({cp.name, cp.rows * cp.cols});
      return;
    }
    auto& cnt = counts[o.component];
    ++cnt.first;
    if (cp.analysable) ++cnt.second;
    for (size_t r = 0; r < R; ++r) {
      ReferenceResult& rr = per[o.component][r];
      for (auto& w : o.weak[r]) rr.weak.push_back(std::move(w));
      if (o.comparable[r]) ++rr.comparable;
      if (!o.tests[r].tensor.empty()) rr.tests.push_back(std::move(o.tests[r]));
    }
  };
  auto tf = clock::now();
  fingerprint_tensors(m, layout, basis, 0, cfg.threads, false, each, progress, cancelled, &token_rows);
  out.cancelled = cancelled && cancelled();
  out.bytes = m.weights.total_bytes;
  double total_s = std::chrono::duration<double>(clock::now() - tf).count();
  out.seconds_compare = double(compare_ns.load()) / 1e9 / std::max(1u, cfg.threads);
  out.seconds_fingerprint = std::max(0.0, total_s - out.seconds_compare);
  std::sort(out.unassigned.begin(), out.unassigned.end(), [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  for (const auto& u : out.unassigned) out.unassigned_params += u.second;
  for (const char* comp : kComponents) {
    combine(per[comp], index, cfg);
    out.components.push_back(decide(comp, std::move(per[comp]), counts[comp].first, counts[comp].second, cfg));
  }
  implicate_token_matrices(out.components, cfg);
  discount_shared_token_basis(out.components);
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
  v.set("evidence", c.evidence.empty() ? Value() : Value(c.evidence));
  v.set("p_holm", c.p_holm);
  v.set("log10_p_holm", c.log10_p_holm);
  v.set("effect", num(c.effect));
  v.set("reason", c.reason);
  v.set("tensors", uint64_t(c.tensors));
  v.set("analysable", uint64_t(c.analysable));
  Value layers = Value(Array{});
  for (const LayerResult& l : c.layers) {
    Value lv;
    lv.set("layer", l.layer);
    lv.set("tensors", uint64_t(l.tensors));
    lv.set("tested", uint64_t(l.tested));
    lv.set("verbatim", uint64_t(l.verbatim));
    lv.set("effect", num(l.effect));
    lv.set("log10_p", l.log10_p);
    lv.set("derived", l.derived);
    layers.push_back(lv);
  }
  v.set("layers", layers);
  Value refs = Value(Array{});
  for (const ReferenceResult& r : c.references) {
    Value rv;
    rv.set("reference", r.reference);
    rv.set("independent", r.independent);
    rv.set("tested", uint64_t(r.tested));
    rv.set("verbatim", uint64_t(r.verbatim));
    rv.set("comparable", uint64_t(r.comparable));
    rv.set("gram_mean", num(r.gram_mean));
    rv.set("chi2", r.chi2);
    rv.set("log10_p", r.log10_p);
    rv.set("log10_p_holm", r.log10_p_holm);
    rv.set("p_holm", r.p_holm);
    rv.set("effect", num(r.effect));
    rv.set("partial_layer", r.partial_layer >= 0 ? Value(int64_t(r.partial_layer)) : Value());
    rv.set("decisive_effect", num(r.decisive));
    rv.set("null_models", uint64_t(r.null_models));
    rv.set("null_at_or_above", uint64_t(r.null_at_or_above));
    rv.set("null_max_effect", num(r.null_max_effect));
    Value cal;
    cal.set("tested", uint64_t(r.calibrated_tested));
    cal.set("effect", num(r.calibrated_effect));
    cal.set("log10_p", r.calibrated_log10_p);
    cal.set("log10_p_holm", r.calibrated_log10_p_holm);
    cal.set("null_models", uint64_t(r.calibrated_null_models));
    cal.set("null_at_or_above", uint64_t(r.calibrated_null_at_or_above));
    cal.set("null_max_effect", num(r.calibrated_null_max));
    cal.set("null_z", num(r.calibrated_null_z));
    rv.set("calibrated", cal);
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
        tv.set("basis", t.basis);
        if (!t.calibrated_kind.empty()) {
          Value cv;
          cv.set("kind", t.calibrated_kind);
          cv.set("effect", num(t.calibrated_effect));
          cv.set("p", t.calibrated_p);
          tv.set("calibrated", cv);
        }
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
