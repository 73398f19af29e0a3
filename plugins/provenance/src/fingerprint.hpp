// Fingerprints: what the analysis keeps of a model's weights. One streaming pass over each
// tensor computes value hashes (exact, after BF16 and F16 rounding, and row- and column-order
// invariant ones) and count sketches of its rows and columns: each unit (a row or a column) is
// projected to kSketchWidth dimensions with a fixed hash, which keeps permuted units aligned with
// their originals, and the sketches' Gram matrix summarises the tensor independently of unit
// order. A reference fingerprint keeps a sample of unit sketches and the Gram; a candidate being
// scanned keeps all its unit sketches while it is compared.
#pragma once

#include <evald/value.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "anchors.hpp"
#include "components.hpp"
#include "model.hpp"

namespace evald::prov {

// Unit sketches are wide so that matching a unit among tens of thousands by content stays
// reliable (the best chance match shrinks with the width); the Gram is taken over a 64-bucket
// fold of them (itself a count sketch), which keeps its cost per value low.
inline constexpr int kSketchWidth = 256;
inline constexpr int kGramWidth = 64;
inline constexpr int kFingerprintVersion = 2;
// Units a reference keeps per tensor dimension: with 256 coordinates each, a sharp statistic.
inline constexpr uint32_t kReferenceUnits = 64;
// Units whose token-basis profiles make a reference's token-basis Grams (a multiple of
// kReferenceUnits, so that the kept units are among them): an estimate of the Gram over all units
// that still pairs a counterpart (see TokenProfiles in fingerprint.cpp).
inline constexpr uint32_t kTokenGramUnits = 1024;
// 1-D tensors (norm gains, biases) up to this length are kept whole, as weak evidence.
inline constexpr uint32_t kMaxVector = 1 << 16;

struct Hashes {
  uint64_t exact = 0;  // values as float32
  uint64_t bf16 = 0;   // values rounded to bfloat16
  uint64_t f16 = 0;    // values rounded to float16
  uint64_t rows = 0;   // multiset of rows (bfloat16): survives row permutations
  uint64_t cols = 0;   // multiset of columns (bfloat16): survives column permutations
  bool trivial = false;  // every value equal: matches prove nothing
};

// Sketches of the units along one dimension of a tensor's 2-D view.
struct UnitSketch {
  uint32_t units = 0;         // how many units the tensor has along this dimension
  uint32_t length = 0;        // length of each unit vector before sketching
  std::vector<uint32_t> ids;  // which units are kept (all, or an evenly spaced sample)
  std::vector<float> data;    // ids.size() x kSketchWidth
  std::vector<float> gram;    // upper triangle (with diagonal) of sum over ALL units of f f^T,
                              // f the kGramWidth-bucket fold of y; a reference's token-basis
                              // Grams sum kTokenGramUnits evenly spaced units, scaled to all
  bool empty() const { return ids.empty(); }
};

struct TensorPrint {
  std::string name;
  TensorRole role;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t rows = 0, cols = 0;  // 2-D view: first dimension x the rest
  bool analysable = true;
  std::string note;             // why a tensor was not analysed
  Hashes hashes;
  double mean = 0, stddev = 0;
  UnitSketch by_row;            // units = rows, each a vector over the columns
  UnitSketch by_col;            // units = columns, each a vector over the rows
  // Token-basis profiles (anchors.hpp): each unit's responses to the anchor tokens, one
  // coordinate per anchor (kSketchWidth, zero beyond the anchors). tok_rows for units that read
  // the residual stream (rows of an n x d tensor) and for token matrices (their rows), tok_cols
  // for units that write it (columns of a d x n tensor).
  UnitSketch tok_rows, tok_cols;
  std::vector<float> vec;       // 1-D tensors: the values
};

struct Fingerprint {
  std::vector<Anchor> anchors;  // the token basis's anchors, in coordinate order
  int version = kFingerprintVersion;
  // "reference": an open model the gate protects; "independent": a model known to be unrelated to
  // every reference, kept only as an empirical null for the effects (never a source).
  std::string kind = "reference";
  uint64_t width = 0;           // residual width found from the structure (assign_roles)
  std::string name, revision;
  std::string source_hash;      // sha256 over the weight files (see fingerprint_model)
  std::string format;
  std::vector<std::string> files;
  uint64_t total_bytes = 0;
  std::map<std::string, std::string> config;
  std::vector<std::string> vocab;
  std::string tokenizer_source;
  std::vector<LineageClaim> claims;
  std::vector<TensorPrint> tensors;
};

// Progress: bytes of weights processed so far, total bytes.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Fingerprints one tensor. keep_units 0 keeps every unit sketch (for a candidate); otherwise at
// most keep_units evenly spaced units per dimension (for a reference). With a non-empty `basis`,
// llm and token tensors also get their token-basis profiles. `token_rows` (sorted ids; may be
// null) limits what token matrices keep to those rows: a candidate needs only the tokens the
// references sampled, so its memory does not grow with the vocabulary. Thread-safe.
TensorPrint fingerprint_tensor(const Tensor& t, const TensorRole& role, uint32_t keep_units, const AnchorBasis* basis = nullptr,
                               const std::vector<uint32_t>* token_rows = nullptr);

// The roles of a model's tensors (assign_roles over its weight set).
Layout layout_of(const Model& m, const ComponentRules& rules);

// Fingerprints every tensor of a model on `threads` threads, calling `each` from the worker
// threads (concurrently: it must be thread-safe) for every tensor as soon as it is done; when `keep` is true the prints are
// also returned in name order. `progress` may be empty. When `cancelled` returns true, no further
// tensor is started.
std::vector<TensorPrint> fingerprint_tensors(const Model& m, const Layout& layout, const AnchorBasis& basis, uint32_t keep_units,
                                             unsigned threads, bool keep,
                                             const std::function<void(TensorPrint&&)>& each,
                                             const ProgressFn& progress = {},
                                             const std::function<bool()>& cancelled = {},
                                             const std::vector<uint32_t>* token_rows = nullptr);

// A reference fingerprint of a whole model, with sha256 of its weight files when `hash_files`;
// throws std::runtime_error naming the file when one cannot be hashed (e.g. it is gone).
Fingerprint fingerprint_model(const Model& m, const ComponentRules& rules, const std::string& name,
                              const std::string& revision, unsigned threads, bool hash_files,
                              const ProgressFn& progress = {});

// Serialisation (msgpack through evald::Value). from_value validates structure and sizes and
// returns an error naming the field that is wrong. kIdsOnly writes the sketches without their
// data and Grams (ids and sizes kept) and 1-D tensors without their values, and reads such a
// record: the resident part of a library reference (references.hpp), whose sketches and values
// are read per tensor when a test needs them.
enum class Sketches { kWhole, kIdsOnly };
Value to_value(const Fingerprint& f, Sketches which = Sketches::kWhole);
Result<Fingerprint> fingerprint_from_value(const Value& v, Sketches which = Sketches::kWhole);
Value to_value(const TensorPrint& t, Sketches which = Sketches::kWhole);
Result<TensorPrint> tensor_from_value(const Value& v, Sketches which = Sketches::kWhole);

Value to_value(const LineageClaim& c);


// "name@revision", or "name" when the revision is empty: a fingerprint's key in a library.
std::string library_key(const Fingerprint& f);

std::string hex64(uint64_t v);
// Adds the outer product of y's kGramWidth-bucket fold to a UnitSketch Gram (upper triangle).
void add_gram(std::vector<float>& gram, const float* y);
// FNV-1a of a string: names and token texts as seeds and keys (not a content hash).
uint64_t text_hash64(std::string_view s);
// splitmix64's finaliser: the bit mixer behind the sketch projection and the value hashes.
uint64_t mix64(uint64_t x);

}  // namespace evald::prov
