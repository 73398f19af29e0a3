// The token basis: statistics of a model's weights that a function-preserving transform of its
// residual stream cannot change.
//
// An entrant may multiply the residual stream by any orthogonal matrix Q (a rotation, a signed
// permutation) and fold it into every matrix that reads or writes the stream, after folding the
// norm gains into the matrices that read the norms' outputs: the model computes the same function
// and every coordinate-wise statistic changes. What does not change is how the model's own token
// vectors meet its weights: with u_a the (normalised) embedding and output-head rows of anchor
// token a, a unit w that reads the stream (a row of q, k, v, gate, up) responds u_a . (g * w), a
// unit that writes it (a column of o, down) u_a . w, and both are invariant under Q since u_a and
// w turn together. A unit's responses to the anchor tokens are its profile; profiles pair units
// of two models whatever their residual basis, and permutations, sign flips and scales of the
// units themselves are what the unit tests already allow for.
//
// Anchors are chosen by token, not position: the tokens with the smallest hashes of their text (or
// of their id when the model has no tokenizer), so two models with one tokenizer pick the same
// anchors, and extended or pruned vocabularies share most of them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "components.hpp"
#include "model.hpp"

namespace evald::prov {

// Anchor tokens per model. Profiles cost one multiply-add per weight and anchor, the dominant
// cost of a scan; 128 coordinates still carry a unit's identity (a copy's profiles correlate
// near 1, unrelated ones near 0).
inline constexpr size_t kAnchors = 128;

struct Anchor {
  uint32_t id = 0;
  std::string text;  // empty when the model has no tokenizer
};

class AnchorBasis {
 public:
  // The basis of model `m` laid out by `layout`: empty when the model has no token matrix of the
  // residual width or its values cannot be read.
  static AnchorBasis of(const Model& m, const Layout& layout);

  bool empty() const { return u_.empty(); }
  const std::vector<Anchor>& anchors() const { return anchors_; }
  uint64_t width() const { return width_; }
  // The gain of the norm whose output a tensor reads, or nullptr: an input projection's attention
  // or MLP norm of its layer, the final norm for the output head.
  const std::vector<float>* gain_for(const TensorRole& role, const std::string& name) const;
  // Profiles of n consecutive d-vectors (rows of `x`, `stride` floats apart) scaled by `gain`
  // (may be null): out[b * out_stride + a] = u_a . (g * x_b), zero for a past the anchors. The
  // caller centres them (center_profile).
  // Batches read the anchors once for all n rows.
  void respond_rows(const float* x, size_t n, size_t stride, const std::vector<float>* gain, float* out, size_t out_stride) const;
  // For units that write the stream: rows first_row .. first_row + n - 1 of a d x C tensor (n
  // rows of C floats, `stride` apart) add their share to the columns' profiles:
  // acc[c * acc_stride + a] += sum_b x_b[c] * u_a[first_row + b].
  void accumulate_cols(const float* x, size_t n, size_t stride, uint64_t first_row, uint64_t C, float* acc, size_t acc_stride) const;

 private:
  std::vector<Anchor> anchors_;
  uint64_t width_ = 0;
  std::vector<float> u_;   // anchors x width
  std::vector<float> ut_;  // width x anchors
  std::map<int, std::vector<float>> attn_gain_, mlp_gain_;
  std::vector<float> final_gain_;
};

// Subtracts a profile's mean over its first `anchors` coordinates from them (the rest stay zero),
// so that padding coordinates add nothing to a correlation and a unit's mean response, which
// unrelated models share, drops out.
void center_profile(float* y, size_t anchors);

// For each of `ref`'s anchors, the index of the same token among `cand`'s, or -1: matched by text
// when both have it, else by id.
std::vector<int> anchor_map(const std::vector<Anchor>& ref, const std::vector<Anchor>& cand);

}  // namespace evald::prov
