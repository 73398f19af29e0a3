#include "anchors.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "fingerprint.hpp"

namespace evald::prov {

namespace {

bool read_floats(const Tensor& t, uint64_t first, uint64_t count, std::vector<float>* out) {
  out->resize(count);
  return to_float(t, first, count, out->data());
}

void add_normalised(const float* x, const std::vector<float>* gain, uint64_t d, float* acc) {
  double ss = 0;
  for (uint64_t j = 0; j < d; ++j) {
    double v = double(x[j]) * (gain ? (*gain)[j] : 1.0f);
    ss += v * v;
  }
  if (!(ss > 0) || !std::isfinite(ss)) return;
  float inv = float(1 / std::sqrt(ss / double(d)));
  for (uint64_t j = 0; j < d; ++j) acc[j] += x[j] * (gain ? (*gain)[j] : 1.0f) * inv;
}

bool contains_any(const std::string& s, std::initializer_list<const char*> parts) {
  return std::any_of(parts.begin(), parts.end(), [&](const char* p) { return s.find(p) != std::string::npos; });
}

}  // namespace

AnchorBasis AnchorBasis::of(const Model& m, const Layout& layout) {
  AnchorBasis b;
  const auto& ts = m.weights.tensors;
  const uint64_t d = layout.width;
  if (d == 0) return b;
  std::vector<size_t> token;  // embedding first, output head second when names tell them apart
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorRole& r = layout.roles[i];
    if (r.shape_class == "token" && ts[i].shape.size() == 2 && ts[i].shape[1] == d && dtype_analysable(ts[i].dtype)) token.push_back(i);
    bool vec = ts[i].shape.size() == 1 && ts[i].shape[0] == d && dtype_analysable(ts[i].dtype);
    if (!vec || r.component != "llm") continue;
    std::vector<float> g;
    if (!read_floats(ts[i], 0, d, &g)) continue;
    if (r.role == "norm.final.weight" || (r.by == "structure" && r.layer < 0)) b.final_gain_ = std::move(g);
    else if (r.role == "norm.attn.weight") b.attn_gain_[r.layer] = std::move(g);
    else if (r.role == "norm.mlp.weight" || r.role == "norm.pre_mlp.weight") b.mlp_gain_[r.layer] = std::move(g);
  }
  std::stable_sort(token.begin(), token.end(), [&](size_t x, size_t y) {
    return (layout.roles[x].role == "embed") > (layout.roles[y].role == "embed");
  });
  if (token.size() > 2) token.resize(2);
  if (token.empty()) return b;
  uint64_t V = UINT64_MAX;
  for (size_t i : token) V = std::min(V, ts[i].shape[0]);
  // Anchors: the kAnchors tokens of smallest hash, by text when the tokenizer is known.
  bool texts = !m.vocab.empty();
  std::vector<std::pair<uint64_t, uint32_t>> order;
  for (uint64_t id = 0; id < V && id <= UINT32_MAX; ++id) {
    if (texts && (id >= m.vocab.size() || m.vocab[id].empty())) continue;
    order.emplace_back(texts ? mix64(text_hash64(m.vocab[id])) : mix64(id ^ 0x51ed27a1c0ffee00ull), uint32_t(id));
  }
  size_t A = std::min<size_t>(order.size(), kAnchors);
  std::partial_sort(order.begin(), order.begin() + long(A), order.end());
  b.width_ = d;
  b.u_.assign(A * d, 0.0f);
  std::vector<float> row;
  for (size_t a = 0; a < A; ++a) {
    uint32_t id = order[a].second;
    b.anchors_.push_back({id, texts ? m.vocab[id] : std::string()});
    for (size_t i : token) {
      const std::vector<float>* gain = layout.roles[i].role == "head" && !b.final_gain_.empty() ? &b.final_gain_ : nullptr;
      if (!read_floats(ts[i], uint64_t(id) * d, d, &row)) return AnchorBasis();
      add_normalised(row.data(), gain, d, b.u_.data() + a * d);
    }
  }
  // Reading rows all over the token matrices mapped the kernel's read-ahead around each of them
  // (hundreds of MB for a 128k vocabulary).
  for (size_t i : token) release_pages(ts[i].data, ts[i].nbytes);
  b.ut_.resize(A * d);
  for (size_t a = 0; a < A; ++a)
    for (uint64_t j = 0; j < d; ++j) b.ut_[j * A + a] = b.u_[a * d + j];
  return b;
}

const std::vector<float>* AnchorBasis::gain_for(const TensorRole& role, const std::string& name) const {
  auto at = [&](const std::map<int, std::vector<float>>& m) -> const std::vector<float>* {
    auto it = m.find(role.layer);
    return it == m.end() || it->second.size() != width_ ? nullptr : &it->second;
  };
  const std::string& r = role.role;
  if (role.known) {
    if (r.rfind("attn.q.", 0) == 0 || r.rfind("attn.k.", 0) == 0 || r.rfind("attn.v.", 0) == 0 || r.rfind("attn.qkv.", 0) == 0) return at(attn_gain_);
    if (r.rfind("mlp.gate.", 0) == 0 || r.rfind("mlp.up.", 0) == 0) return at(mlp_gain_);
    return nullptr;
  }
  // Names a rule does not know (MoE experts and routers, say) still say which half of the block
  // they belong to.
  std::string local = name.substr(std::min(name.size(), name.find(std::to_string(role.layer))));
  if (contains_any(local, {"expert", "moe", "mlp", "ffn", "feed_forward", "router"})) return at(mlp_gain_);
  if (contains_any(local, {"attn", "attention"})) return at(attn_gain_);
  return nullptr;
}

// The profile GEMMs are nearly all of a scan's arithmetic. On x86-64 CPUs with AVX2 and FMA they
// run a register-blocked kernel (gemm_avx2); elsewhere, and for the columns past the last
// 16-wide block, the portable one, which the compiler vectorises.
#if defined(__x86_64__) && defined(__GNUC__)
#define EVALD_GEMM_AVX2 1
#include <immintrin.h>
#endif

namespace {

// C (M x N, row stride ldc) = or += A (M x K) * B (K x N, row stride ldb), with A(m, k) at
// a[m * am + k * ak]. A 4 x 32 tile of C is accumulated across the whole K loop, so each loaded
// value of B feeds four multiply-adds and C is written once; the loops the compiler vectorises
// run over the 32 columns of the tile.
void gemm_portable(const float* a, size_t am, size_t ak, const float* b, size_t ldb, float* c, size_t ldc, size_t M, size_t K, size_t N,
                   bool accumulate) {
  constexpr size_t TM = 4, TN = 32;
  for (size_t m0 = 0; m0 < M; m0 += TM) {
    size_t mw = std::min(TM, M - m0);
    for (size_t n0 = 0; n0 < N; n0 += TN) {
      size_t nw = std::min(TN, N - n0);
      float acc[TM][TN] = {};
      if (mw == TM && nw == TN) {
        for (size_t k = 0; k < K; ++k) {
          const float* bk = b + k * ldb + n0;
          float x0 = a[(m0 + 0) * am + k * ak], x1 = a[(m0 + 1) * am + k * ak], x2 = a[(m0 + 2) * am + k * ak], x3 = a[(m0 + 3) * am + k * ak];
          for (size_t j = 0; j < TN; ++j) {
            acc[0][j] += x0 * bk[j];
            acc[1][j] += x1 * bk[j];
            acc[2][j] += x2 * bk[j];
            acc[3][j] += x3 * bk[j];
          }
        }
      } else {
        for (size_t k = 0; k < K; ++k)
          for (size_t i = 0; i < mw; ++i) {
            float x = a[(m0 + i) * am + k * ak];
            for (size_t j = 0; j < nw; ++j) acc[i][j] += x * b[k * ldb + n0 + j];
          }
      }
      for (size_t i = 0; i < mw; ++i) {
        float* dst = c + (m0 + i) * ldc + n0;
        for (size_t j = 0; j < nw; ++j) dst[j] = accumulate ? dst[j] + acc[i][j] : acc[i][j];
      }
    }
  }
}

#ifdef EVALD_GEMM_AVX2
// One TM x 16 tile of C over K: 2 TM accumulators and the two B vectors stay in the 16 ymm
// registers for the whole loop (the portable 4 x 32 tile spills), each B load feeding TM FMAs.
template <int TM>
__attribute__((target("avx2,fma"))) inline void tile_avx2(const float* a, size_t am, size_t ak, const float* b, size_t ldb, float* c,
                                                          size_t ldc, size_t K, bool load_c) {
  __m256 acc[TM][2];
#pragma GCC unroll 6
  for (int i = 0; i < TM; ++i) {
    acc[i][0] = load_c ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc[i][1] = load_c ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (size_t k = 0; k < K; ++k) {
    __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);
#pragma GCC unroll 6
    for (int i = 0; i < TM; ++i) {
      __m256 x = _mm256_broadcast_ss(a + i * am + k * ak);
      acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < TM; ++i) {
    _mm256_storeu_ps(c + i * ldc, acc[i][0]);
    _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
  }
}

// gemm over the first N - N % 16 columns. K runs in chunks whose slice of B (KC x N) stays in
// L2 while every row tile passes over it.
__attribute__((target("avx2,fma"))) void gemm_avx2(const float* a, size_t am, size_t ak, const float* b, size_t ldb, float* c,
                                                   size_t ldc, size_t M, size_t K, size_t N, bool accumulate) {
  constexpr size_t TM = 6, TN = 16, KC = 256;
  for (size_t k0 = 0; k0 < K; k0 += KC) {
    const size_t kw = std::min(KC, K - k0);
    const bool load_c = accumulate || k0 > 0;
    const float* ak0 = a + k0 * ak;
    const float* bk0 = b + k0 * ldb;
    for (size_t m0 = 0; m0 < M; m0 += TM) {
      const float* at = ak0 + m0 * am;
      float* ct = c + m0 * ldc;
      for (size_t n0 = 0; n0 + TN <= N; n0 += TN) {
        switch (std::min(TM, M - m0)) {
          case 6: tile_avx2<6>(at, am, ak, bk0 + n0, ldb, ct + n0, ldc, kw, load_c); break;
          case 5: tile_avx2<5>(at, am, ak, bk0 + n0, ldb, ct + n0, ldc, kw, load_c); break;
          case 4: tile_avx2<4>(at, am, ak, bk0 + n0, ldb, ct + n0, ldc, kw, load_c); break;
          case 3: tile_avx2<3>(at, am, ak, bk0 + n0, ldb, ct + n0, ldc, kw, load_c); break;
          case 2: tile_avx2<2>(at, am, ak, bk0 + n0, ldb, ct + n0, ldc, kw, load_c); break;
          default: tile_avx2<1>(at, am, ak, bk0 + n0, ldb, ct + n0, ldc, kw, load_c); break;
        }
      }
    }
  }
}

bool have_avx2_fma() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}
#endif

void gemm(const float* a, size_t am, size_t ak, const float* b, size_t ldb, float* c, size_t ldc, size_t M, size_t K, size_t N,
          bool accumulate) {
  size_t done = 0;
#ifdef EVALD_GEMM_AVX2
  if (have_avx2_fma()) {
    done = N - N % 16;
    if (done) gemm_avx2(a, am, ak, b, ldb, c, ldc, M, K, done, accumulate);
  }
#endif
  if (done < N) gemm_portable(a, am, ak, b + done, ldb, c + done, ldc, M, K, N - done, accumulate);
}

}  // namespace

void AnchorBasis::respond_rows(const float* x, size_t n, size_t stride, const std::vector<float>* gain, float* out, size_t out_stride) const {
  const size_t A = anchors_.size();
  const uint64_t d = width_;
  for (size_t b = 0; b < n; ++b) std::fill(out + b * out_stride + A, out + (b + 1) * out_stride, 0.0f);
  if (!gain) {
    gemm(x, stride, 1, ut_.data(), A, out, out_stride, n, d, A, false);
    return;
  }
  thread_local std::vector<float> scaled;
  scaled.resize(n * d);
  for (size_t b = 0; b < n; ++b)
    for (uint64_t j = 0; j < d; ++j) scaled[b * d + j] = x[b * stride + j] * (*gain)[j];
  gemm(scaled.data(), d, 1, ut_.data(), A, out, out_stride, n, d, A, false);
}

void AnchorBasis::accumulate_cols(const float* x, size_t n, size_t stride, uint64_t first_row, uint64_t C, float* acc, size_t acc_stride) const {
  const size_t A = anchors_.size();
  gemm(x, 1, stride, ut_.data() + first_row * A, A, acc, acc_stride, C, n, A, true);
}

void center_profile(float* y, size_t anchors) {
  if (anchors == 0) return;
  double mean = 0;
  for (size_t a = 0; a < anchors; ++a) mean += y[a];
  float m = float(mean / double(anchors));
  for (size_t a = 0; a < anchors; ++a) y[a] -= m;
}

std::vector<int> anchor_map(const std::vector<Anchor>& ref, const std::vector<Anchor>& cand) {
  bool texts = !ref.empty() && !cand.empty() && !ref[0].text.empty() && !cand[0].text.empty();
  std::unordered_map<std::string, int> by_text;
  std::unordered_map<uint32_t, int> by_id;
  for (size_t k = 0; k < cand.size(); ++k) {
    if (texts) by_text.emplace(cand[k].text, int(k));
    else by_id.emplace(cand[k].id, int(k));
  }
  std::vector<int> out(ref.size(), -1);
  for (size_t j = 0; j < ref.size(); ++j) {
    if (texts) {
      auto it = by_text.find(ref[j].text);
      if (it != by_text.end()) out[j] = it->second;
    } else {
      auto it = by_id.find(ref[j].id);
      if (it != by_id.end()) out[j] = it->second;
    }
  }
  return out;
}

}  // namespace evald::prov
