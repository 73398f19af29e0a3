// The reference fingerprints a scan compares a model with. A scan needs every reference tensor's
// name, role, shape and value hashes at once, but the sketches (tens of kB per tensor) of only
// the few tensors it tests at a time: a ReferenceSet keeps the first resident ("heads") and hands
// out the second per tensor, so that a library's sketches can stay on disk (library.hpp) and a
// scan's memory does not grow with the library.
#pragma once

#include <evald/value.hpp>

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fingerprint.hpp"

namespace evald::prov {

// Sketch kinds: the residual basis (rows, columns) and the token basis (rows, columns).
enum SketchKind { kByRow, kByCol, kTokRows, kTokCols };
const UnitSketch& sketch_of(const TensorPrint& t, int kind);

// A Gram's off-diagonal entries, centred and scaled to unit norm, so that the Pearson
// correlation of two Grams is one dot product. Empty for an empty Gram.
std::vector<float> gram_profile(const std::vector<float>& gram);

// What the Gram screen reads of one reference tensor: the gram_profile of each sketch kind,
// empty where the tensor has no such sketch.
struct ScreenProfiles {
  std::array<std::vector<float>, 4> kind;
};
ScreenProfiles screen_profiles(const TensorPrint& t);

class ReferenceSet {
 public:
  virtual ~ReferenceSet() = default;

  size_t size() const { return heads_.size(); }
  // Reference r: every tensor's metadata, hashes and sketch ids and sizes. Sketch data, Grams
  // and 1-D values may be absent (tensor() has them). Constant after construction.
  const Fingerprint& head(size_t r) const { return *heads_[r]; }
  // Size of reference r's vocabulary (0: no tokenizer).
  uint64_t vocab_size(size_t r) const { return vocab_sizes_[r]; }
  // Text of token `id` of reference r when one of its token matrices sampled that row, else null.
  const std::string* sampled_token(size_t r, uint32_t id) const;

  // Tensor t of reference r (an index into head(r).tensors) with its sketches. Thread-safe; an
  // error names what could not be read.
  virtual Result<std::shared_ptr<const TensorPrint>> tensor(size_t r, size_t t) const = 0;
  // The Gram screen's profiles of tensor t of reference r. Thread-safe.
  virtual Result<ScreenProfiles> profiles(size_t r, size_t t) const = 0;
  // Reference r's whole vocabulary (empty without a tokenizer). Thread-safe.
  virtual Result<std::vector<std::string>> vocabulary(size_t r) const = 0;

 protected:
  // Registers a head (owned by the subclass, alive as long as the set) with its vocabulary's size
  // and the texts of the token rows its token matrices sampled.
  void add_head(const Fingerprint* head, uint64_t vocab_size, std::unordered_map<uint32_t, std::string> sampled);

 private:
  std::vector<const Fingerprint*> heads_;
  std::vector<uint64_t> vocab_sizes_;
  std::vector<std::unordered_map<uint32_t, std::string>> sampled_;
};

// The token texts a fingerprint's token matrices sampled (by_row ids of its token-class tensors).
std::unordered_map<uint32_t, std::string> sampled_tokens(const Fingerprint& f);

// A set over fingerprints held in memory (not owned: they must outlive the set).
std::unique_ptr<ReferenceSet> resident_references(const std::vector<const Fingerprint*>& fps);

}  // namespace evald::prov
