// Weight files as read-only, memory-mapped tensor views. Readers are strict and fail closed: a
// file that breaks one rule of its format yields a FormatError naming the file, byte offset and
// rule, and no tensor of it is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <map>
#include <string>
#include <vector>

namespace evald::prov {

// Every element type the supported formats define. Types marked analysable convert to float.
enum class DType : uint8_t {
  BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64,
  F8_E4M3, F8_E5M2, F8_E8M0, F4, F6_E2M3, F6_E3M2, C64,
  // GGUF block-quantised types (ggml): a block of block_elems() values takes block_bytes().
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
  IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M, TQ1_0, TQ2_0, MXFP4,
};

const char* dtype_name(DType t);
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t h);
// Bits per element for element types; for block types, bits per block (block_bytes * 8).
uint32_t dtype_block_bits(DType t);
// Elements per block: 1 for element types.
uint32_t dtype_block_elems(DType t);
// True when to_float can convert this type.
bool dtype_analysable(DType t);

// Where a format rule was broken.
struct FormatError {
  std::string file;
  uint64_t offset = 0;
  std::string rule;     // short rule id, e.g. "header-length", "offsets-contiguous"
  std::string message;  // human sentence
  std::string to_string() const;  // "<file>: offset <n>: <message> [rule <rule>]"
};

// A read-only mapping of a whole file. Movable, not copyable. Thread-safe for reading.
class MappedFile {
 public:
  // Maps `path`; on failure returns nullptr and sets *err (file, rule "open").
  static std::shared_ptr<MappedFile> open(const std::string& path, FormatError* err);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// One tensor: a view into a mapped file. Shape is row-major, outermost first (PyTorch order;
// GGUF readers reverse ggml's ne[] into this order).
struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<uint64_t> shape;
  const uint8_t* data = nullptr;  // points into `file`
  uint64_t nbytes = 0;
  uint64_t file_offset = 0;       // absolute offset of data in the file
  std::shared_ptr<MappedFile> file;

  uint64_t numel() const;
  uint64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  uint64_t cols() const;  // product of all dims after the first
};

// Converts elements [first, first + count) of `t` to float. Block-quantised types must start and
// end on block boundaries (first % block_elems == 0, and count likewise unless it reaches the end).
// Returns false for a type that is not analysable or out-of-range arguments.
bool to_float(const Tensor& t, uint64_t first, uint64_t count, float* out);
// Drops this process's mapping of the whole pages inside [data, data + nbytes) (they stay in the
// page cache): what was read is not counted in the resident memory afterwards.
void release_pages(const uint8_t* data, uint64_t nbytes);

// Dequantises `nblocks` consecutive blocks of block type `t` starting at `src` (ggml layouts).
// Returns false for block types it does not support. Implemented with the GGUF reader.
bool dequantize_blocks(DType t, const uint8_t* src, uint64_t nblocks, float* out);

// A set of tensors from one model (one file or several shards) plus its string metadata.
struct WeightSet {
  std::vector<Tensor> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;
  std::vector<std::string> files;
  std::string format;  // "safetensors" | "gguf"
  uint64_t total_bytes = 0;
};

// Reads one .safetensors file. Enforces the format's rules: header length <= 100,000,000, valid
// UTF-8 JSON object without duplicate keys, `__metadata__` a map of strings, known dtypes,
// shape/dtype/size consistency with overflow checks, offsets contiguous from 0 with no holes or
// overlap, file length exactly 8 + header + data.
bool read_safetensors(const std::string& path, WeightSet* out, FormatError* err);

// Reads a sharded model from its `model.safetensors.index.json`: every tensor appears in exactly
// one shard, the one the index names, and every shard the index names exists and is valid.
bool read_safetensors_index(const std::string& index_path, WeightSet* out, FormatError* err);

// Reads a GGUF v3 file (also v2) and enforces the spec's rules: magic, version, key/value types,
// string and array limits, alignment, tensor info (dims, type, offsets) and data bounds. GGUF
// metadata values are flattened into `metadata` as text (arrays longer than 64 elements are
// summarised as "[array of N <type>]"); every string array also goes whole to `gguf_arrays`.
bool read_gguf(const std::string& path, WeightSet* out, FormatError* err,
               std::map<std::string, std::vector<std::string>>* gguf_arrays = nullptr);

}  // namespace evald::prov
