#include "fingerprint.hpp"

#include "hash.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#if defined(__x86_64__) && defined(__GNUC__)
#define EVALD_ROW_AVX2 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace evald::prov {

namespace {

constexpr int K = kSketchWidth;
constexpr int G = kGramWidth;
constexpr int kGramSize = G * (G + 1) / 2;
static_assert(K % G == 0 && K <= 256, "buckets fit a byte; the fold is exact");
static_assert(kTokenGramUnits % kReferenceUnits == 0, "a reference's kept units are among its Gram's");
constexpr uint64_t kSeed = 0x5eed'0f'e7a1d'001ull;  // part of the fingerprint format: never change
constexpr uint64_t kP1 = 0x9e3779b97f4a7c15ull, kP2 = 0xc2b2ae3d27d4eb4full, kP3 = 0x165667b19e3779f9ull;

// Bucket and sign of coordinate i of any unit vector: the same for every tensor and model, so
// sketches of equal-length vectors are comparable.
struct Projection {
  std::vector<uint8_t> bucket;
  std::vector<float> sign;
  explicit Projection(uint64_t n) : bucket(n), sign(n) {
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t h = mix64(i + kSeed);
      bucket[i] = uint8_t(h % K);
      sign[i] = (h >> 40) & 1 ? 1.0f : -1.0f;
    }
  }
};

uint32_t f32_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

// float32 bits (NaN already canonical) to float16 bits, round to nearest even, written with
// selects rather than branches (row_values_avx2 has vcvtps2ph do it).
inline uint16_t f32_to_f16(uint32_t b) {
  uint32_t sign = (b >> 16) & 0x8000u;
  uint32_t a = b & 0x7fffffffu;
  // Normal halves: rebias the exponent and round the 13 dropped mantissa bits to even; a carry
  // into exponent 31 gives infinity, as it should for values from 65520 up.
  uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;  // 0xc8000000 = (15 - 127) << 23
  // Subnormal halves (below 2^-14): adding 0.5 puts the value's 2^-24 multiples in the low bits
  // of the sum, which float addition has already rounded to even.
  float f;
  std::memcpy(&f, &a, 4);
  float g = f + 0.5f;
  uint32_t sub;
  std::memcpy(&sub, &g, 4);
  sub -= 0x3f000000u;
  uint32_t big = a > 0x7f800000u ? 0x7e00u : 0x7c00u;  // NaN, or too large: infinity
  uint32_t r = a >= 0x47800000u ? big : a < 0x38800000u ? sub : normal;
  return uint16_t(sign | r);
}

// A value's canonical bits: -0 as +0, every NaN as one.
inline uint32_t canonical_bits(uint32_t b) {
  bool is_nan = (b & 0x7fffffffu) > 0x7f800000u;
  b = (b & 0x7fffffffu) == 0 ? 0u : b;
  return is_nan ? 0x7fc00000u : b;
}

// Sums of the finite values and of their squares, in four lanes (lane l takes the values at
// indices l mod 4).
struct Moments {
  double sum[4] = {0, 0, 0, 0}, sumsq[4] = {0, 0, 0, 0};
};

// The outputs of row_values and the column multiset state it updates.
struct RowOut {
  uint32_t* bits;
  float* fin;
  uint16_t *b16, *h16;
  uint32_t *col_a, *col_b;
};

// row_values on values [from, C), one at a time.
bool row_values_scalar(const float* buf, size_t from, size_t C, uint32_t first_bits, const RowOut& o, Moments* m) {
  uint32_t differ = 0;
  for (size_t j = from; j < C; ++j) {
    uint32_t b = canonical_bits(f32_bits(buf[j]));
    o.bits[j] = b;
    differ |= b ^ first_bits;
    float f = (b & 0x7f800000u) == 0x7f800000u ? 0.0f : buf[j];
    o.fin[j] = f;
    o.b16[j] = uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);  // round to nearest even
    o.h16[j] = f32_to_f16(b);
    o.col_a[j] = (o.col_a[j] ^ o.b16[j]) * 0x9e3779b1u;
    o.col_b[j] = (o.col_b[j] ^ o.b16[j]) * 0x85ebca77u;
    m->sum[j % 4] += f, m->sumsq[j % 4] += double(f) * f;
  }
  return differ == 0;
}

#ifdef EVALD_ROW_AVX2
// row_values eight values at a time: the same results bit for bit (vcvtps2ph rounds to F16 as
// f32_to_f16 does, checked for every canonical float; no FMA, so the moments add as in the
// scalar code).
__attribute__((target("avx2,f16c"))) bool row_values_avx2(const float* buf, size_t C, uint32_t first_bits, const RowOut& o, Moments* m) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000), qnan = _mm256_set1_epi32(0x7fc00000),
                zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1), round = _mm256_set1_epi32(0x7fff),
                first = _mm256_set1_epi32(int(first_bits)), ka = _mm256_set1_epi32(int(0x9e3779b1u)), kb = _mm256_set1_epi32(int(0x85ebca77u));
  __m256i differ = zero;
  __m256d sum = _mm256_loadu_pd(m->sum), sumsq = _mm256_loadu_pd(m->sumsq);
  size_t j = 0;
  for (; j + 8 <= C; j += 8) {
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(buf + j));
    __m256i a = _mm256_and_si256(x, abs_mask);
    __m256i b = _mm256_andnot_si256(_mm256_cmpeq_epi32(a, zero), x);
    b = _mm256_blendv_epi8(b, qnan, _mm256_cmpgt_epi32(a, inf));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.bits + j), b);
    differ = _mm256_or_si256(differ, _mm256_xor_si256(b, first));
    __m256 f = _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpeq_epi32(_mm256_and_si256(b, inf), inf), x));
    _mm256_storeu_ps(o.fin + j, f);
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, round), _mm256_and_si256(_mm256_srli_epi32(b, 16), one)), 16);
    // packus works within 128-bit lanes: the permute puts the eight halves back in order.
    __m256i r16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o.b16 + j), _mm256_castsi256_si128(r16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o.h16 + j), _mm256_cvtps_ph(_mm256_castsi256_ps(b), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i* ca = reinterpret_cast<__m256i*>(o.col_a + j);
    __m256i* cb = reinterpret_cast<__m256i*>(o.col_b + j);
    _mm256_storeu_si256(ca, _mm256_mullo_epi32(_mm256_xor_si256(_mm256_loadu_si256(ca), r), ka));
    _mm256_storeu_si256(cb, _mm256_mullo_epi32(_mm256_xor_si256(_mm256_loadu_si256(cb), r), kb));
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
    sum = _mm256_add_pd(_mm256_add_pd(sum, lo), hi);
    sumsq = _mm256_add_pd(_mm256_add_pd(sumsq, _mm256_mul_pd(lo, lo)), _mm256_mul_pd(hi, hi));
  }
  _mm256_storeu_pd(m->sum, sum);
  _mm256_storeu_pd(m->sumsq, sumsq);
  bool same = _mm256_testz_si256(differ, differ);
  return row_values_scalar(buf, j, C, first_bits, o, m) && same;
}

// F16C from CPUID: Clang's __builtin_cpu_supports does not know it.
bool have_avx2_f16c() {
  static const bool yes = [] {
    __builtin_cpu_init();
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  }();
  return yes;
}
#endif

// A row's sketch y (y[b] = sum of sign[c] * x[c] over the columns c of bucket b, in column
// order) with the columns grouped by bucket: scattering into y one column at a time stalls on
// each store's reload and was the dearest loop of a scan after the profiles. Eight buckets are
// summed side by side, slot t of each group holding the t-th column of each of its buckets, or
// padding: column C, whose value is 0, with sign -1 (adding -0 leaves any sum as it was), so
// each bucket's sum is the scattered one bit for bit.
class RowSketcher {
 public:
  explicit RowSketcher(const Projection& p) : cols_(p.bucket.size()) {
    std::vector<std::vector<uint32_t>> by_bucket(K);
    for (uint32_t c = 0; c < cols_; ++c) by_bucket[p.bucket[c]].push_back(c);
    for (int g = 0; g < K / 8; ++g) {
      size_t len = 0;
      for (int l = 0; l < 8; ++l) len = std::max(len, by_bucket[g * 8 + l].size());
      len_[g] = uint32_t(len);
      for (size_t t = 0; t < len; ++t)
        for (int l = 0; l < 8; ++l) {
          const std::vector<uint32_t>& b = by_bucket[g * 8 + l];
          col_.push_back(t < b.size() ? b[t] : cols_);
          sign_.push_back(t < b.size() ? p.sign[b[t]] : -1.0f);
        }
    }
  }
  // x: the row's C values and a 0 after them.
  void sketch(const float* x, float* y) const {
#ifdef EVALD_ROW_AVX2
    if (have_avx2_f16c()) return sketch_avx2(x, y);
#endif
    const uint32_t* col = col_.data();
    const float* sign = sign_.data();
    for (int g = 0; g < K / 8; ++g) {
      float acc[8] = {};
      for (uint32_t t = 0; t < len_[g]; ++t, col += 8, sign += 8)
#pragma GCC unroll 8
        for (int l = 0; l < 8; ++l) acc[l] += sign[l] * x[col[l]];
      std::copy(acc, acc + 8, y + g * 8);
    }
  }

#ifdef EVALD_ROW_AVX2
  __attribute__((target("avx2"))) void sketch_avx2(const float* x, float* y) const {
    const uint32_t* col = col_.data();
    const float* sign = sign_.data();
    for (int g = 0; g < K / 8; ++g) {
      __m256 acc = _mm256_setzero_ps();
      for (uint32_t t = 0; t < len_[g]; ++t, col += 8, sign += 8) {
        __m256 v = _mm256_i32gather_ps(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col)), 4);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(sign), v));
      }
      _mm256_storeu_ps(y + g * 8, acc);
    }
  }
#endif

 private:
  uint32_t cols_;
  uint32_t len_[K / 8] = {};
  std::vector<uint32_t> col_;
  std::vector<float> sign_;
};

// One row of C values, element by element: writes their canonical bits, the finite values
// (non-finite ones as 0) and the BF16 and F16 roundings of the bits; adds to the column
// multiset state and the moments. True when every value's bits equal first_bits. After the
// profile GEMMs the hottest loop of a scan, which the compiler leaves scalar: on x86-64 CPUs
// with AVX2 and F16C it runs as intrinsics.
bool row_values(const float* buf, size_t C, uint32_t first_bits, const RowOut& o, Moments* m) {
#ifdef EVALD_ROW_AVX2
  if (have_avx2_f16c()) return row_values_avx2(buf, C, first_bits, o, m);
#endif
  return row_values_scalar(buf, 0, C, first_bits, o, m);
}

// A fast, non-cryptographic hash of a byte run: four independent multiply lanes over 64-bit
// words. Value hashes find copies among models, they do not resist forgery.
uint64_t hash_bytes(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t l[4] = {kP1, kP2, kP3, kP1 ^ kP2};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      l[k] = (l[k] ^ w) * kP1;
      l[k] ^= l[k] >> 29;
    }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    l[0] = (l[0] ^ w) * kP2;
    l[0] ^= l[0] >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, n - i);
  return mix64(mix64(l[0] ^ tail) ^ mix64(l[1] + n) ^ mix64(l[2]) * 3 ^ mix64(l[3]) * 5);
}

// Adds f f^T to the Gram, f being y folded to G buckets (bucket b gathers b, b + G, ...).
void add_outer(std::vector<float>& gram, const float* y) {
  float f[G] = {};
  for (int q = 0; q < K; q += G)
    for (int b = 0; b < G; ++b) f[b] += y[q + b];
  float* g = gram.data();
  for (int a = 0; a < G; ++a) {
    float fa = f[a];
    for (int b = a; b < G; ++b) *g++ += fa * f[b];
  }
}

std::vector<uint32_t> sample_ids(uint64_t units, uint32_t keep) {
  std::vector<uint32_t> ids;
  if (keep == 0 || units <= keep) {
    ids.resize(units);
    for (uint64_t i = 0; i < units; ++i) ids[i] = uint32_t(i);
  } else {
    for (uint32_t i = 0; i < keep; ++i) ids.push_back(uint32_t(uint64_t(i) * units / keep));
  }
  return ids;
}

}  // namespace

void add_gram(std::vector<float>& gram, const float* y) { add_outer(gram, y); }

uint64_t text_hash64(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

std::string hex64(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

namespace {

uint64_t basis_width(const AnchorBasis* b) { return b ? b->width() : 0; }

// Which token-basis profiles a tensor gets: rows for units reading the residual stream (and token
// matrices), columns for units writing it; a square tensor whose role names do not tell gets both.
void token_orientations(const TensorRole& role, bool* rows, bool* cols) {
  *rows = *cols = false;
  const std::string& c = role.shape_class;
  if (c == "token" || c == "in") *rows = true;
  if (c == "out") *cols = true;
  if (c == "square") {
    bool writes = role.known && (role.role.rfind("attn.o.", 0) == 0 || role.role.rfind("mlp.down.", 0) == 0);
    bool reads = role.known && !writes;
    *rows = !writes;
    *cols = !reads;
  }
}

// The units a sketch keeps: an even sample (keep_units > 0), every unit, or the given ones.
std::vector<uint32_t> kept_ids(uint64_t units, uint32_t keep_units, const std::vector<uint32_t>* only) {
  if (!only) return sample_ids(units, keep_units);
  std::vector<uint32_t> ids;
  for (uint32_t id : *only)
    if (id < units) ids.push_back(id);
  return ids;
}

void start_sketch(UnitSketch* s, uint64_t units, uint64_t length, uint32_t keep_units, const std::vector<uint32_t>* only = nullptr) {
  s->units = uint32_t(units);
  s->length = uint32_t(length);
  s->ids = kept_ids(units, keep_units, only);
  s->data.reserve(s->ids.size() * K);
  s->gram.assign(kGramSize, 0.0f);
}

// The units of a sketch whose token-basis profiles are computed, ascending. A candidate
// (keep_units 0) profiles every unit: all are matched. A reference keeps keep_units profiles,
// and its Gram only screens counterparts, so the Gram is taken over an evenly spaced sample of
// kTokenGramUnits units (holding the kept ones, as kReferenceUnits divides it) and
// scaled to the whole: profiling every unit of every tensor was most of `add`'s time.
struct ProfileUnits {
  std::vector<uint32_t> ids;
  std::vector<uint8_t> in_gram, kept;  // per entry of ids
  float gram_scale = 1;
};

ProfileUnits profile_units(const UnitSketch& s, uint32_t keep_units) {
  ProfileUnits u;
  std::vector<uint32_t> gram = sample_ids(s.units, keep_units == 0 ? 0 : kTokenGramUnits);
  size_t g = 0, k = 0;
  while (g < gram.size() || k < s.ids.size()) {
    uint32_t id = std::min(g < gram.size() ? gram[g] : UINT32_MAX, k < s.ids.size() ? s.ids[k] : UINT32_MAX);
    bool in_gram = g < gram.size() && gram[g] == id, kept = k < s.ids.size() && s.ids[k] == id;
    u.ids.push_back(id);
    u.in_gram.push_back(in_gram);
    u.kept.push_back(kept);
    g += in_gram, k += kept;
  }
  if (!gram.empty()) u.gram_scale = float(s.units) / float(gram.size());
  return u;
}

void scale_gram(UnitSketch* s, float by) {
  if (by != 1)
    for (float& x : s->gram) x *= by;
}

// A tensor's token-basis profiles (anchors.hpp), fed its rows in order: tok_rows for the rows
// that read the residual stream, tok_cols for the columns that write it.
class TokenProfiles {
 public:
  TokenProfiles(const TensorRole& role, const std::string& name, bool two_d, uint32_t keep_units, const AnchorBasis* basis,
                const std::vector<uint32_t>* token_rows, TensorPrint* p)
      : basis_(basis), p_(p) {
    const uint64_t R = p->rows, C = p->cols;
    // Only where the tensor has the basis's width on the matching side.
    if (two_d && basis && !basis->empty() && (role.component == "llm" || role.component == "embeddings"))
      token_orientations(role, &rows_, &cols_);
    rows_ &= C == basis_width(basis);
    cols_ &= R == basis_width(basis);
    if (rows_) {
      gain_ = role.shape_class != "token" ? basis->gain_for(role, name) : nullptr;
      start_sketch(&p->tok_rows, R, C, keep_units, role.shape_class == "token" ? token_rows : nullptr);
      ru_ = profile_units(p->tok_rows, keep_units);
      rbatch_.resize(kBatch * C);
      yt_.resize(kBatch * K);
    }
    if (cols_) {
      start_sketch(&p->tok_cols, C, R, keep_units);
      cu_ = profile_units(p->tok_cols, keep_units);
      cbatch_.resize(kBatch * cu_.ids.size());
      acc_.assign(cu_.ids.size() * K, 0.0f);
    }
  }

  // Row i (C finite values); rows come in order.
  void add_row(uint64_t i, const float* x) {
    const uint64_t C = p_->cols;
    if (rows_ && next_row_ < ru_.ids.size() && ru_.ids[next_row_] == i) {
      std::copy(x, x + C, rbatch_.begin() + long(rbatched_ * C));
      ++next_row_;
      if (++rbatched_ == kBatch) flush_rows();
    }
    if (cols_) {
      const size_t S = cu_.ids.size();
      float* dst = cbatch_.data() + cbatched_ * S;
      if (S == C) std::copy(x, x + C, dst);
      else
        for (size_t s = 0; s < S; ++s) dst[s] = x[cu_.ids[s]];
      if (++cbatched_ == kBatch) flush_cols(i);
    }
  }

  // After the last row: the rows still batched, then the columns, whose profiles need every row.
  void finish() {
    if (rows_) {
      flush_rows();
      scale_gram(&p_->tok_rows, ru_.gram_scale);
    }
    if (!cols_) return;
    flush_cols(p_->rows - 1);
    UnitSketch& s = p_->tok_cols;
    for (size_t e = 0; e < cu_.ids.size(); ++e) {
      float* y = acc_.data() + e * K;
      center_profile(y, basis_->anchors().size());
      if (cu_.in_gram[e]) add_outer(s.gram, y);
      if (cu_.kept[e]) s.data.insert(s.data.end(), y, y + K);
    }
    scale_gram(&s, cu_.gram_scale);
  }

 private:
  // Rows wait in a batch so that the anchors are read once per kBatch rows.
  static constexpr size_t kBatch = 64;

  void flush_rows() {
    if (rbatched_ == 0) return;
    basis_->respond_rows(rbatch_.data(), rbatched_, p_->cols, gain_, yt_.data(), K);
    UnitSketch& s = p_->tok_rows;
    for (size_t b = 0; b < rbatched_; ++b, ++rdone_) {
      float* y = yt_.data() + b * K;
      center_profile(y, basis_->anchors().size());
      if (ru_.in_gram[rdone_]) add_outer(s.gram, y);
      if (ru_.kept[rdone_]) s.data.insert(s.data.end(), y, y + K);
    }
    rbatched_ = 0;
  }

  void flush_cols(uint64_t last_row) {
    if (cbatched_ == 0) return;
    const size_t S = cu_.ids.size();
    basis_->accumulate_cols(cbatch_.data(), cbatched_, S, last_row + 1 - cbatched_, S, acc_.data(), K);
    cbatched_ = 0;
  }

  const AnchorBasis* basis_;
  TensorPrint* p_;
  const std::vector<float>* gain_ = nullptr;
  bool rows_ = false, cols_ = false;
  ProfileUnits ru_, cu_;
  std::vector<float> rbatch_, yt_;  // rows to profile, their responses
  size_t rbatched_ = 0, next_row_ = 0, rdone_ = 0;  // rows batched; entries of ru_.ids reached, profiled
  std::vector<float> cbatch_, acc_;  // the profiled columns' values per row; their responses
  size_t cbatched_ = 0;
};

}  // namespace

TensorPrint fingerprint_tensor(const Tensor& t, const TensorRole& role, uint32_t keep_units, const AnchorBasis* basis,
                               const std::vector<uint32_t>* token_rows) {
  TensorPrint p;
  p.name = t.name;
  p.role = role;
  p.dtype = dtype_name(t.dtype);
  p.shape = t.shape;
  p.rows = t.shape.size() >= 2 ? t.rows() : 1;
  p.cols = t.shape.size() >= 2 ? t.cols() : t.numel();
  if (!dtype_analysable(t.dtype)) {
    p.analysable = false;
    p.note = std::string("values of type ") + dtype_name(t.dtype) + " are not converted for analysis";
    return p;
  }
  if (p.rows > UINT32_MAX || p.cols > UINT32_MAX) {
    p.analysable = false;
    p.note = "more than 2^32 rows or columns";
    return p;
  }
  const uint64_t R = p.rows, C = p.cols;
  const bool two_d = t.shape.size() >= 2 && R > 1 && C > 1;
  const bool want_rows = two_d && role.units != TensorRole::Units::Cols;
  const bool want_cols = two_d && role.units != TensorRole::Units::Rows;
  const bool vector = !two_d && t.numel() <= kMaxVector;

  // Per-row buffers: the values, their canonical bits (-0 as +0, one NaN), the finite values
  // (non-finite ones count as 0 in sketches and moments), and the BF16 / F16 roundings.
  std::vector<float> buf(C), fin(C + 1), y(K);  // fin[C] stays 0, RowSketcher's padding
  std::vector<uint32_t> bits(C);
  std::vector<uint16_t> b16(C), h16(C);
  std::vector<uint32_t> col_a(C, uint32_t(kP1)), col_b(C, uint32_t(kP2));  // column multiset state
  const RowOut out{bits.data(), fin.data(), b16.data(), h16.data(), col_a.data(), col_b.data()};
  std::vector<float> zt;  // column sketches, bucket-major (K x C): each row adds to one line
  Projection row_proj(want_cols ? R : 0);
  const RowSketcher row_sketcher(Projection(want_rows ? C : 0));
  std::vector<uint8_t> keep_row;
  if (want_rows) {
    start_sketch(&p.by_row, R, C, keep_units, role.shape_class == "token" ? token_rows : nullptr);
    keep_row.assign(R, 0);
    for (uint32_t id : p.by_row.ids) keep_row[id] = 1;
  }
  if (want_cols) zt.assign(C * K, 0.0f);
  TokenProfiles tokens(role, t.name, two_d, keep_units, basis, token_rows, &p);
  uint64_t he = kP1, hb = kP2, hh = kP3, rows_hash = 0;
  Moments moments;
  uint32_t first_bits = 0;
  bool trivial = true;
  // Pages already read are dropped from this process's mapping as it goes (they stay in the page
  // cache), so resident memory stays near one window per thread whatever the model's size.
  const uint64_t row_bytes = R ? t.nbytes / R : 0;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t released = (reinterpret_cast<uintptr_t>(t.data) + page - 1) & ~(page - 1);
  for (uint64_t i = 0; i < R; ++i) {
    if (!to_float(t, i * C, C, buf.data())) {
      p.analysable = false;
      p.note = "conversion failed";
      return p;
    }
    if (i == 0) first_bits = canonical_bits(f32_bits(buf[0]));
    trivial &= row_values(buf.data(), C, first_bits, out, &moments);
    // Each row is hashed in three forms; the tensor hashes chain the rows in order, the row
    // multiset hash adds them up (order-free).
    uint64_t row_bf16 = hash_bytes(b16.data(), C * 2);
    he = mix64(he ^ hash_bytes(bits.data(), C * 4)) * kP1;
    hb = mix64(hb ^ row_bf16) * kP2;
    hh = mix64(hh ^ hash_bytes(h16.data(), C * 2)) * kP3;
    rows_hash += mix64(row_bf16 ^ C);
    if (want_rows) {
      row_sketcher.sketch(fin.data(), y.data());
      add_outer(p.by_row.gram, y.data());
      if (keep_row[i]) p.by_row.data.insert(p.by_row.data.end(), y.begin(), y.end());
    }
    if (want_cols) {
      float sg = row_proj.sign[i];
      float* z = zt.data() + size_t(row_proj.bucket[i]) * C;
      for (uint64_t c = 0; c < C; ++c) z[c] += sg * fin[c];
    }
    tokens.add_row(i, fin.data());
    if (vector) p.vec.insert(p.vec.end(), buf.begin(), buf.end());
    uintptr_t done = reinterpret_cast<uintptr_t>(t.data) + (i + 1) * row_bytes;
    if (done - released >= (4u << 20) || i + 1 == R) {
      uintptr_t upto = done & ~(page - 1);
      if (upto > released) {
        ::madvise(reinterpret_cast<void*>(released), upto - released, MADV_DONTNEED);
        released = upto;
      }
    }
  }
  uint64_t n = R * C;
  p.hashes.exact = mix64(he ^ n);
  p.hashes.bf16 = mix64(hb ^ n);
  p.hashes.f16 = mix64(hh ^ n);
  p.hashes.rows = mix64(rows_hash ^ n);
  uint64_t cols_hash = 0;
  for (uint64_t c = 0; c < C; ++c) cols_hash += mix64((uint64_t(col_a[c]) << 32 | col_b[c]) ^ R);
  p.hashes.cols = mix64(cols_hash ^ n);
  p.hashes.trivial = trivial;
  if (n) {
    const double* sum = moments.sum;
    const double* sumsq = moments.sumsq;
    double s = sum[0] + sum[1] + sum[2] + sum[3], ss = sumsq[0] + sumsq[1] + sumsq[2] + sumsq[3];
    p.mean = s / double(n);
    p.stddev = std::sqrt(std::max(0.0, ss / double(n) - p.mean * p.mean));
  }
  if (want_cols) {
    p.by_col.units = uint32_t(C);
    p.by_col.length = uint32_t(R);
    p.by_col.ids = sample_ids(C, keep_units);
    p.by_col.gram.assign(kGramSize, 0.0f);
    std::vector<float> z(K);
    for (uint64_t c = 0; c < C; ++c) {
      for (int b = 0; b < K; ++b) z[b] = zt[size_t(b) * C + c];
      add_outer(p.by_col.gram, z.data());
    }
    p.by_col.data.reserve(p.by_col.ids.size() * K);
    for (uint32_t id : p.by_col.ids)
      for (int b = 0; b < K; ++b) p.by_col.data.push_back(zt[size_t(b) * C + id]);
  }
  tokens.finish();
  return p;
}

Layout layout_of(const Model& m, const ComponentRules& rules) {
  std::vector<TensorShape> shapes;
  shapes.reserve(m.weights.tensors.size());
  for (const Tensor& t : m.weights.tensors) shapes.push_back({t.name, t.shape});
  return assign_roles(shapes, rules);
}

std::vector<TensorPrint> fingerprint_tensors(const Model& m, const Layout& layout, const AnchorBasis& basis, uint32_t keep_units,
                                             unsigned threads, bool keep,
                                             const std::function<void(TensorPrint&&)>& each, const ProgressFn& progress,
                                             const std::function<bool()>& cancelled, const std::vector<uint32_t>* token_rows) {
  const auto& ts = m.weights.tensors;
  // Largest first, so the threads finish together.
  std::vector<size_t> order(ts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ts[a].nbytes > ts[b].nbytes; });
  uint64_t total = 0;
  for (const Tensor& t : ts) total += t.nbytes;
  std::vector<TensorPrint> out(keep ? ts.size() : 0);
  std::atomic<size_t> next{0};
  uint64_t done = 0;  // guarded by mu
  std::mutex mu;
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < order.size();) {
      if (cancelled && cancelled()) return;
      const Tensor& t = ts[order[k]];
      TensorPrint p = fingerprint_tensor(t, layout.roles[order[k]], keep_units, &basis, token_rows);
      if (keep) out[order[k]] = p;
      if (each) each(std::move(p));
      std::lock_guard lock(mu);
      done += t.nbytes;
      if (progress) progress(done, total);
    }
  };
  threads = std::max(1u, std::min<unsigned>(threads, unsigned(ts.size())));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  return out;
}

Fingerprint fingerprint_model(const Model& m, const ComponentRules& rules, const std::string& name,
                              const std::string& revision, unsigned threads, bool hash_files, const ProgressFn& progress) {
  Fingerprint f;
  f.name = name;
  f.revision = revision;
  f.format = m.weights.format;
  f.files = m.weights.files;
  f.total_bytes = m.weights.total_bytes;
  f.config = m.config;
  f.vocab = m.vocab;
  f.tokenizer_source = m.tokenizer_source;
  f.claims = m.claims;
  Layout layout = layout_of(m, rules);
  f.width = layout.width;
  AnchorBasis basis = AnchorBasis::of(m, layout);
  f.anchors = basis.anchors();
  // The files' sha256 runs on a thread of its own beside the fingerprint pass, not after it, so
  // that `add` takes the longer of the two passes rather than their sum.
  std::string all;  // "sha256  name\n" per file, in file order
  std::exception_ptr hash_error;
  std::jthread hasher;
  if (hash_files)
    hasher = std::jthread([&] {
      try {
        for (const std::string& file : m.weights.files) {
          text::FileHash h = text::sha256_file(file);
          // A digest that could not be taken must not pass as part of the source hash.
          if (h.sha256.empty()) throw std::runtime_error(h.error.empty() ? file + ": cannot read it to hash it" : h.error);
          all += h.sha256 + "  " + file.substr(file.find_last_of('/') + 1) + "\n";
        }
      } catch (...) {
        hash_error = std::current_exception();
      }
    });
  f.tensors = fingerprint_tensors(m, layout, basis, kReferenceUnits, threads, true, {}, progress);
  if (hash_files) {
    hasher.join();
    if (hash_error) std::rethrow_exception(hash_error);
    // One digest over the per-file digests, in file order: names the exact bytes fingerprinted.
    f.source_hash = text::sha256_hex(all);
  }
  return f;
}

std::string library_key(const Fingerprint& f) { return f.revision.empty() ? f.name : f.name + "@" + f.revision; }

// ---- serialisation --------------------------------------------------------------------------

namespace {

Bytes floats_to_bytes(const std::vector<float>& v) {
  Bytes b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
Bytes u32_to_bytes(const std::vector<uint32_t>& v) {
  Bytes b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Value sketch_value(const UnitSketch& s, Sketches which) {
  Value v;
  v.set("units", uint64_t(s.units));
  v.set("length", uint64_t(s.length));
  v.set("ids", u32_to_bytes(s.ids));
  bool whole = which == Sketches::kWhole;
  v.set("data", whole ? floats_to_bytes(s.data) : Bytes());
  v.set("gram", whole ? floats_to_bytes(s.gram) : Bytes());
  return v;
}

const char* units_name(TensorRole::Units u) {
  return u == TensorRole::Units::Rows ? "rows" : u == TensorRole::Units::Cols ? "cols" : "both";
}

struct Reader {
  std::string err;
  Sketches which = Sketches::kWhole;
  bool fail(const std::string& where, const std::string& what) {
    if (err.empty()) err = where + ": " + what;
    return false;
  }
  const Value* field(const Value& m, const char* key, Value::Type type, const std::string& where) {
    const Value* v = m.is_map() ? m.find(key) : nullptr;
    if (!v || (v->type() != type && !(type == Value::Type::Double && v->is_number()))) {
      fail(where + "." + key, v ? "wrong type" : "missing");
      return nullptr;
    }
    return v;
  }
  bool floats(const Value& m, const char* key, size_t expect, std::vector<float>* out, const std::string& where) {
    const Value* v = field(m, key, Value::Type::Binary, where);
    if (!v) return false;
    const Bytes& b = v->as_binary();
    if (b.size() % 4 || (expect != SIZE_MAX && b.size() != expect * 4))
      return fail(where + "." + key, "holds " + std::to_string(b.size()) + " bytes, expected " + std::to_string(expect * 4));
    out->resize(b.size() / 4);
    if (!b.empty()) std::memcpy(out->data(), b.data(), b.size());
    return true;
  }
  bool sketch(const Value& m, UnitSketch* s, const std::string& where) {
    const Value *units = field(m, "units", Value::Type::Int, where), *len = field(m, "length", Value::Type::Int, where),
                *ids = field(m, "ids", Value::Type::Binary, where);
    if (!units || !len || !ids) return false;
    s->units = uint32_t(units->as_int());
    s->length = uint32_t(len->as_int());
    const Bytes& b = ids->as_binary();
    if (b.size() % 4) return fail(where + ".ids", "not a whole number of ids");
    s->ids.resize(b.size() / 4);
    if (!b.empty()) std::memcpy(s->ids.data(), b.data(), b.size());
    for (uint32_t id : s->ids)
      if (id >= s->units) return fail(where + ".ids", "id " + std::to_string(id) + " out of range");
    bool whole = which == Sketches::kWhole;
    if (!floats(m, "data", whole ? s->ids.size() * K : 0, &s->data, where)) return false;
    return floats(m, "gram", whole && !s->ids.empty() ? kGramSize : 0, &s->gram, where);
  }
  bool str(const Value& m, const char* k, std::string* out, const std::string& where) {
    const Value* x = field(m, k, Value::Type::String, where);
    if (x) *out = x->as_string();
    return x != nullptr;
  }
  bool tensor(const Value& tv, TensorPrint* out, const std::string& where) {
    TensorPrint& t = *out;
    std::string units;
    if (!str(tv, "name", &t.name, where) || !str(tv, "component", &t.role.component, where) || !str(tv, "role", &t.role.role, where) ||
        !str(tv, "units", &units, where) || !str(tv, "dtype", &t.dtype, where) || !str(tv, "note", &t.note, where) ||
        !str(tv, "by", &t.role.by, where) || !str(tv, "shape_class", &t.role.shape_class, where))
      return false;
    if (const Value* kn = field(tv, "known", Value::Type::Bool, where)) t.role.known = kn->as_bool();
    else return false;
    t.role.units = units == "rows" ? TensorRole::Units::Rows : units == "cols" ? TensorRole::Units::Cols : TensorRole::Units::Both;
    const Value *layer = field(tv, "layer", Value::Type::Int, where), *rows = field(tv, "rows", Value::Type::Int, where),
                *cols = field(tv, "cols", Value::Type::Int, where), *an = field(tv, "analysable", Value::Type::Bool, where),
                *shape = field(tv, "shape", Value::Type::Array, where), *h = field(tv, "hashes", Value::Type::Map, where),
                *mean = field(tv, "mean", Value::Type::Double, where), *sd = field(tv, "stddev", Value::Type::Double, where),
                *br = field(tv, "by_row", Value::Type::Map, where), *bc = field(tv, "by_col", Value::Type::Map, where);
    if (!layer || !rows || !cols || !an || !shape || !h || !mean || !sd || !br || !bc) return false;
    t.role.layer = int(layer->as_int());
    t.rows = uint64_t(rows->as_int());
    t.cols = uint64_t(cols->as_int());
    t.analysable = an->as_bool();
    for (const Value& d : shape->as_array()) t.shape.push_back(d.is_int() ? uint64_t(d.as_int()) : 0);
    t.mean = mean->as_double();
    t.stddev = sd->as_double();
    std::string hx[5];
    const char* hk[5] = {"exact", "bf16", "f16", "rows", "cols"};
    for (int k = 0; k < 5; ++k)
      if (!str(*h, hk[k], &hx[k], where + ".hashes")) return false;
    uint64_t* dst[5] = {&t.hashes.exact, &t.hashes.bf16, &t.hashes.f16, &t.hashes.rows, &t.hashes.cols};
    for (int k = 0; k < 5; ++k) *dst[k] = std::strtoull(hx[k].c_str(), nullptr, 16);
    if (const Value* tr = field(*h, "trivial", Value::Type::Bool, where + ".hashes")) t.hashes.trivial = tr->as_bool();
    else return false;
    const Value *tr = field(tv, "tok_rows", Value::Type::Map, where), *tc = field(tv, "tok_cols", Value::Type::Map, where);
    if (!tr || !tc) return false;
    if (!sketch(*br, &t.by_row, where + ".by_row") || !sketch(*bc, &t.by_col, where + ".by_col") ||
        !sketch(*tr, &t.tok_rows, where + ".tok_rows") || !sketch(*tc, &t.tok_cols, where + ".tok_cols") ||
        !floats(tv, "vec", SIZE_MAX, &t.vec, where))
      return false;
    return true;
  }
};

}  // namespace

Value to_value(const LineageClaim& c) {
  Value cv;
  cv.set("source", c.source);
  cv.set("key", c.key);
  cv.set("value", c.value);
  return cv;
}

Value to_value(const TensorPrint& t, Sketches which) {
  Value tv;
  tv.set("name", t.name);
  tv.set("component", t.role.component);
  tv.set("role", t.role.role);
  tv.set("layer", t.role.layer);
  tv.set("units", units_name(t.role.units));
  tv.set("by", t.role.by);
  tv.set("shape_class", t.role.shape_class);
  tv.set("known", t.role.known);
  tv.set("dtype", t.dtype);
  Value shape = Value(Array{});
  for (uint64_t d : t.shape) shape.push_back(d);
  tv.set("shape", shape);
  tv.set("rows", t.rows);
  tv.set("cols", t.cols);
  tv.set("analysable", t.analysable);
  tv.set("note", t.note);
  Value h;
  h.set("exact", hex64(t.hashes.exact));
  h.set("bf16", hex64(t.hashes.bf16));
  h.set("f16", hex64(t.hashes.f16));
  h.set("rows", hex64(t.hashes.rows));
  h.set("cols", hex64(t.hashes.cols));
  h.set("trivial", t.hashes.trivial);
  tv.set("hashes", h);
  tv.set("mean", t.mean);
  tv.set("stddev", t.stddev);
  tv.set("by_row", sketch_value(t.by_row, which));
  tv.set("by_col", sketch_value(t.by_col, which));
  tv.set("tok_rows", sketch_value(t.tok_rows, which));
  tv.set("tok_cols", sketch_value(t.tok_cols, which));
  tv.set("vec", which == Sketches::kWhole ? floats_to_bytes(t.vec) : Bytes());
  return tv;
}

Value to_value(const Fingerprint& f, Sketches which) {
  Value v;
  v.set("version", f.version);
  v.set("sketch_width", K);
  v.set("gram_width", G);
  v.set("name", f.name);
  v.set("revision", f.revision);
  v.set("kind", f.kind);
  v.set("width", f.width);
  v.set("source_hash", f.source_hash);
  v.set("format", f.format);
  Value files = Value(Array{});
  for (const auto& s : f.files) files.push_back(s);
  v.set("files", files);
  v.set("total_bytes", f.total_bytes);
  Value cfg = Value(Map{});
  for (const auto& [k, s] : f.config) cfg.set(k, s);
  v.set("config", cfg);
  Value vocab = Value(Array{});
  for (const auto& s : f.vocab) vocab.push_back(s);
  v.set("vocab", vocab);
  v.set("tokenizer_source", f.tokenizer_source);
  Value claims = Value(Array{});
  for (const auto& c : f.claims) claims.push_back(to_value(c));
  v.set("claims", claims);
  Value ts = Value(Array{});
  for (const TensorPrint& t : f.tensors) ts.push_back(to_value(t, which));
  v.set("tensors", ts);
  Value anchors = Value(Array{});
  for (const Anchor& a : f.anchors) {
    Value av;
    av.set("id", uint64_t(a.id));
    av.set("text", a.text);
    anchors.push_back(av);
  }
  v.set("anchors", anchors);
  return v;
}

Result<TensorPrint> tensor_from_value(const Value& v, Sketches which) {
  Reader r;
  r.which = which;
  TensorPrint t;
  if (!r.tensor(v, &t, "tensor")) return Status::error(r.err);
  return t;
}

Result<Fingerprint> fingerprint_from_value(const Value& v, Sketches which) {
  Reader r;
  r.which = which;
  Fingerprint f;
  auto str = [&](const Value& m, const char* k, std::string* out, const std::string& where) { return r.str(m, k, out, where); };
  const Value* ver = r.field(v, "version", Value::Type::Int, "fingerprint");
  const Value* width = r.field(v, "sketch_width", Value::Type::Int, "fingerprint");
  const Value* gwidth = r.field(v, "gram_width", Value::Type::Int, "fingerprint");
  if (!ver || !width || !gwidth) return Status::error(r.err);
  if (ver->as_int() != kFingerprintVersion || width->as_int() != K || gwidth->as_int() != G)
    return Status::error("fingerprint: version " + std::to_string(ver->as_int()) + " / sketch width " + std::to_string(width->as_int()) +
                         ", this build reads version " + std::to_string(kFingerprintVersion) + " / width " + std::to_string(K) +
                         ": rebuild the fingerprint with this evald-provenance");
  if (!str(v, "name", &f.name, "fingerprint") || !str(v, "revision", &f.revision, "fingerprint") ||
      !str(v, "source_hash", &f.source_hash, "fingerprint") || !str(v, "format", &f.format, "fingerprint") ||
      !str(v, "tokenizer_source", &f.tokenizer_source, "fingerprint") || !str(v, "kind", &f.kind, "fingerprint"))
    return Status::error(r.err);
  if (f.kind != "reference" && f.kind != "independent") return Status::error("fingerprint.kind: \"" + f.kind + "\" is neither reference nor independent");
  if (const Value* x = r.field(v, "width", Value::Type::Int, "fingerprint")) f.width = uint64_t(x->as_int());
  else return Status::error(r.err);
  if (const Value* x = r.field(v, "total_bytes", Value::Type::Int, "fingerprint")) f.total_bytes = uint64_t(x->as_int());
  const Value* files = r.field(v, "files", Value::Type::Array, "fingerprint");
  const Value* cfg = r.field(v, "config", Value::Type::Map, "fingerprint");
  const Value* vocab = r.field(v, "vocab", Value::Type::Array, "fingerprint");
  const Value* claims = r.field(v, "claims", Value::Type::Array, "fingerprint");
  const Value* tensors = r.field(v, "tensors", Value::Type::Array, "fingerprint");
  if (!files || !cfg || !vocab || !claims || !tensors) return Status::error(r.err);
  for (const Value& s : files->as_array())
    if (s.is_string()) f.files.push_back(s.as_string());
  for (const auto& [k, s] : cfg->as_map())
    if (s.is_string()) f.config[k] = s.as_string();
  for (const Value& s : vocab->as_array()) f.vocab.push_back(s.is_string() ? s.as_string() : "");
  for (const Value& c : claims->as_array()) {
    LineageClaim lc;
    if (!str(c, "source", &lc.source, "claims") || !str(c, "key", &lc.key, "claims") || !str(c, "value", &lc.value, "claims"))
      return Status::error(r.err);
    f.claims.push_back(lc);
  }
  for (size_t i = 0; i < tensors->as_array().size(); ++i) {
    TensorPrint t;
    if (!r.tensor(tensors->as_array()[i], &t, "tensors[" + std::to_string(i) + "]")) return Status::error(r.err);
    f.tensors.push_back(std::move(t));
  }
  const Value* anchors = r.field(v, "anchors", Value::Type::Array, "fingerprint");
  if (!anchors) return Status::error(r.err);
  if (anchors->as_array().size() > size_t(K)) return Status::error("fingerprint.anchors: more than " + std::to_string(K));
  for (size_t i = 0; i < anchors->as_array().size(); ++i) {
    const Value& av = anchors->as_array()[i];
    std::string where = "anchors[" + std::to_string(i) + "]";
    Anchor a;
    const Value* id = r.field(av, "id", Value::Type::Int, where);
    if (!id || !str(av, "text", &a.text, where)) return Status::error(r.err);
    if (id->as_int() < 0 || id->as_int() > int64_t(UINT32_MAX)) return Status::error(where + ".id: out of range");
    a.id = uint32_t(id->as_int());
    f.anchors.push_back(std::move(a));
  }
  return f;
}

}  // namespace evald::prov
