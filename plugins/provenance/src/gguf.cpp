// GGUF reader. The rules are the GGUF spec's (ggml docs/gguf.md) as ggml's gguf.cpp enforces them
// when it loads a file; the few places where this reader is stricter say so. Only little-endian
// files are read (v3 may be big-endian; such files are refused with a hint).
#include "gguf_internal.hpp"

#include <evald/value.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace evald::prov {

static_assert(std::endian::native == std::endian::little, "GGUF fields are little-endian and loaded with memcpy");

namespace {

using Arrays = std::map<std::string, std::vector<std::string>>;

// Stricter than ggml (1 GiB): no real key, value or token comes near it.
constexpr uint64_t kMaxStringBytes = uint64_t(64) << 20;
constexpr uint64_t kMaxArrayElements = uint64_t(1) << 30;  // ggml's GGUF_MAX_ARRAY_ELEMENTS
// Stricter than ggml, which has no limit: every entry and tensor costs memory beyond its bytes in
// the file, and real files hold hundreds of entries and at most tens of thousands of tensors.
constexpr uint64_t kMaxKvCount = uint64_t(1) << 20;
constexpr uint64_t kMaxTensorCount = uint64_t(1) << 20;
constexpr uint64_t kMaxTensorNameBytes = 63;  // ggml's GGML_MAX_NAME (64) counts the NUL
constexpr uint32_t kMaxDims = 4;              // GGML_MAX_DIMS
constexpr uint32_t kDefaultAlignment = 32;    // GGUF_DEFAULT_ALIGNMENT
constexpr uint64_t kMaxInlineArray = 64;      // longer arrays are summarised in the metadata text
constexpr uint64_t kInt64Max = uint64_t(std::numeric_limits<int64_t>::max());
// The smallest encodings of a key/value pair and of a tensor info: counts that the remaining bytes
// cannot hold are refused before anything is reserved for them.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;                  // key length, 1-byte key, type, uint8
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name length, name, n_dims, ne[0], type, offset

// GGUF metadata value types (gguf.h enum gguf_type).
enum class ValueType : uint32_t {
  UINT8,
  INT8,
  UINT16,
  INT16,
  UINT32,
  INT32,
  FLOAT32,
  BOOL,
  STRING,
  ARRAY,
  UINT64,
  INT64,
  FLOAT64
};
constexpr uint32_t kValueTypeCount = 13;

const char* value_type_name(ValueType t) {
  static constexpr const char* kNames[kValueTypeCount] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                          "int32",  "float32", "bool",   "string", "array",
                                                          "uint64", "int64",   "float64"};
  return kNames[uint32_t(t)];
}

// Encoded size of a fixed-size value type; 0 for STRING and ARRAY.
uint64_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: return 8;
    case ValueType::STRING:
    case ValueType::ARRAY: return 0;
  }
  return 0;
}

// The ggml type ids (ggml.h enum ggml_type) a GGUF tensor may have.
std::optional<DType> dtype_from_ggml(uint32_t id) {
  switch (id) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 3: return DType::Q4_1;
    case 6: return DType::Q5_0;
    case 7: return DType::Q5_1;
    case 8: return DType::Q8_0;
    case 9: return DType::Q8_1;
    case 10: return DType::Q2_K;
    case 11: return DType::Q3_K;
    case 12: return DType::Q4_K;
    case 13: return DType::Q5_K;
    case 14: return DType::Q6_K;
    case 15: return DType::Q8_K;
    case 16: return DType::IQ2_XXS;
    case 17: return DType::IQ2_XS;
    case 18: return DType::IQ3_XXS;
    case 19: return DType::IQ1_S;
    case 20: return DType::IQ4_NL;
    case 21: return DType::IQ3_S;
    case 22: return DType::IQ2_S;
    case 23: return DType::IQ4_XS;
    case 24: return DType::I8;
    case 25: return DType::I16;
    case 26: return DType::I32;
    case 27: return DType::I64;
    case 28: return DType::F64;
    case 29: return DType::IQ1_M;
    case 30: return DType::BF16;
    case 34: return DType::TQ1_0;
    case 35: return DType::TQ2_0;
    case 39: return DType::MXFP4;
    default: return std::nullopt;
  }
}

// Ids ggml once had and has removed from GGUF files: Q4_2, Q4_3 and the repacked Q4_0_x_x and
// IQ4_NL_x_x layouts.
bool ggml_type_removed(uint32_t id) { return id == 4 || id == 5 || (id >= 31 && id <= 33) || (id >= 36 && id <= 38); }

// `alignment` is a power of two and v + alignment cannot overflow (v is bounded by a file size).
uint64_t align_up(uint64_t v, uint64_t alignment) { return (v + alignment - 1) & ~(alignment - 1); }

// Well-formed UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(std::string_view s) {
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t lead = uint8_t(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    const size_t len = (lead & 0xe0) == 0xc0 ? 2 : (lead & 0xf0) == 0xe0 ? 3 : (lead & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0) return false;
    uint32_t cp = lead & (0x7f >> len);  // the lead byte's payload bits
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      uint8_t c = uint8_t(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = cp << 6 | (c & 0x3f);
    }
    if (cp < kMinForLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// Decimal text; floats in their shortest form that reads back to the same value.
template <typename T>
std::string number_text(T v) {
  char buf[64];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// A key or name as error messages show it: control characters escaped, so a message stays one line.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (uint8_t(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string version_problem(uint32_t version) {
  if (version == 1) return "GGUF version 1 is not supported (ggml dropped it too); only versions 2 and 3 are";
  std::string m = "unsupported GGUF version " + std::to_string(version) + "; only versions 2 and 3 are supported";
  if (version != 0 && (version & 0xffff) == 0)
    m += " (the version looks byte-swapped: big-endian files are not supported)";
  return m;
}

class GgufParser {
 public:
  GgufParser(const uint8_t* data, uint64_t size, const std::string& file, FormatError* err)
      : data_(data), size_(size), file_(file), err_(err) {}

  bool parse(WeightSet* out, Arrays* arrays);

 private:
  struct TensorInfo {
    Tensor tensor;
    uint64_t offset = 0;     // relative to the data section
    uint64_t offset_at = 0;  // where the offset field is, for errors
  };

  bool fail(uint64_t at, const char* rule, const std::string& detail) {
    if (err_) *err_ = FormatError{file_, at, rule, context_ + ": " + detail};
    return false;
  }
  uint64_t remaining() const { return size_ - pos_; }
  bool need(uint64_t n, const char* what);
  template <typename T>
  bool read(T* v, const char* what);
  bool read_string(std::string_view* s, const char* what);
  template <typename T>
  bool read_number(std::string* text);
  bool read_scalar(ValueType t, std::string* text, std::string_view* str);
  bool read_array(const std::string& key, std::string* text, Arrays* arrays);
  bool read_kv(uint64_t index, WeightSet* ws, Arrays* arrays);
  bool read_tensor_info(uint64_t index, std::unordered_set<std::string_view>* names, TensorInfo* info);
  bool place_tensors(uint64_t data_start, std::vector<TensorInfo>* infos);

  const uint8_t* data_;
  uint64_t size_;
  const std::string& file_;
  FormatError* err_;
  uint64_t pos_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  std::string context_ = "header";  // what is being read: the start of every error message
};

bool GgufParser::need(uint64_t n, const char* what) {
  if (n <= remaining()) return true;
  return fail(pos_, "truncated",
              std::string("the file ends inside the ") + what + " (" + std::to_string(n) + " bytes needed, " +
                  std::to_string(remaining()) + " left)");
}

template <typename T>
bool GgufParser::read(T* v, const char* what) {
  if (!need(sizeof(T), what)) return false;
  std::memcpy(v, data_ + pos_, sizeof(T));
  pos_ += sizeof(T);
  return true;
}

// A GGUF string: a uint64 length, then that many bytes (no NUL). The view points into the buffer.
bool GgufParser::read_string(std::string_view* s, const char* what) {
  uint64_t at = pos_, len = 0;
  if (!read(&len, what)) return false;
  if (len > kMaxStringBytes)
    return fail(at, "string-length",
                std::string("the ") + what + " is " + std::to_string(len) + " bytes long, over the limit of 64 MiB");
  if (len > remaining())
    return fail(at, "string-length",
                std::string("the ") + what + " is " + std::to_string(len) + " bytes long but only " +
                    std::to_string(remaining()) + " bytes follow");
  *s = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
  pos_ += len;
  return true;
}

template <typename T>
bool GgufParser::read_number(std::string* text) {
  T v{};
  if (!read(&v, "value")) return false;
  if (text) *text = number_text(v);
  return true;
}

// One value that is not an array. `text` (if non-null) gets its metadata text; `str` (if non-null)
// gets a string value's bytes.
bool GgufParser::read_scalar(ValueType t, std::string* text, std::string_view* str) {
  uint64_t at = pos_;
  switch (t) {
    case ValueType::UINT8: return read_number<uint8_t>(text);
    case ValueType::INT8: return read_number<int8_t>(text);
    case ValueType::UINT16: return read_number<uint16_t>(text);
    case ValueType::INT16: return read_number<int16_t>(text);
    case ValueType::UINT32: return read_number<uint32_t>(text);
    case ValueType::INT32: return read_number<int32_t>(text);
    case ValueType::FLOAT32: return read_number<float>(text);
    case ValueType::UINT64: return read_number<uint64_t>(text);
    case ValueType::INT64: return read_number<int64_t>(text);
    case ValueType::FLOAT64: return read_number<double>(text);
    case ValueType::BOOL: {
      uint8_t v = 0;
      if (!read(&v, "bool value")) return false;
      // Stricter than ggml, which reads any non-zero byte as true.
      if (v > 1) return fail(at, "kv-bool", "a bool is stored as " + std::to_string(v) + ", not 0 or 1");
      if (text) *text = v ? "true" : "false";
      return true;
    }
    case ValueType::STRING: {
      std::string_view s;
      if (!read_string(&s, "string value")) return false;
      if (str) *str = s;
      if (text) *text = s;
      return true;
    }
    case ValueType::ARRAY: break;
  }
  return fail(at, "kv-type", "an array is not a scalar value");
}

// An array value: uint32 element type, uint64 count, elements. Arrays of arrays are refused, as
// ggml refuses them. String arrays go to *arrays whole; the text lists up to 64 elements.
bool GgufParser::read_array(const std::string& key, std::string* text, Arrays* arrays) {
  uint64_t type_at = pos_;
  uint32_t elem_type = 0;
  if (!read(&elem_type, "array element type")) return false;
  if (elem_type == uint32_t(ValueType::ARRAY))
    return fail(type_at, "array-type", "arrays of arrays are not allowed (ggml refuses them)");
  if (elem_type >= kValueTypeCount)
    return fail(type_at, "array-type", "unknown array element type " + std::to_string(elem_type));
  const ValueType et = ValueType(elem_type);
  uint64_t count_at = pos_, count = 0;
  if (!read(&count, "array length")) return false;
  if (count > kMaxArrayElements)
    return fail(count_at, "array-length",
                "an array of " + std::to_string(count) + " elements is over the limit of 2^30");
  // A string takes at least its 8-byte length.
  const uint64_t min_elem_bytes = et == ValueType::STRING ? 8 : value_type_size(et);
  if (count > remaining() / min_elem_bytes)
    return fail(count_at, "array-length",
                "an array of " + std::to_string(count) + " " + value_type_name(et) + " values needs at least " +
                    std::to_string(count * min_elem_bytes) + " bytes but only " + std::to_string(remaining()) +
                    " follow");

  const bool inline_text = count <= kMaxInlineArray;
  std::vector<std::string>* strings = nullptr;
  if (et == ValueType::STRING && arrays) {
    strings = &(*arrays)[key];
    strings->reserve(count);
  }
  std::string items;
  if (!inline_text && et != ValueType::STRING && et != ValueType::BOOL) {
    pos_ += count * min_elem_bytes;  // fixed-size numbers, all valid, none shown: the bounds check above suffices
  } else {
    std::string elem;
    std::string* elem_text = inline_text && et != ValueType::STRING ? &elem : nullptr;
    std::string_view str;
    for (uint64_t i = 0; i < count; ++i) {
      if (!read_scalar(et, elem_text, &str)) return false;
      if (strings) strings->emplace_back(str);
      if (inline_text) {
        if (i > 0) items += ", ";
        items += et == ValueType::STRING ? to_json(Value(std::string(str))) : elem;
      }
    }
  }
  *text = inline_text ? "[" + items + "]" : "[array of " + std::to_string(count) + " " + value_type_name(et) + "]";
  return true;
}

bool GgufParser::read_kv(uint64_t index, WeightSet* ws, Arrays* arrays) {
  context_ = "metadata entry " + std::to_string(index);
  const uint64_t key_at = pos_;
  std::string_view key_bytes;
  if (!read_string(&key_bytes, "key")) return false;
  if (key_bytes.empty()) return fail(key_at, "kv-key", "the key is empty");
  // Stricter than ggml: the spec says keys are ASCII, and they name things in reports.
  if (!valid_utf8(key_bytes)) return fail(key_at, "kv-key", "the key is not valid UTF-8");
  std::string key(key_bytes);
  if (ws->metadata.count(key))
    return fail(key_at, "kv-duplicate-key", "key '" + shown(key) + "' appears more than once");
  context_ = "metadata '" + shown(key) + "'";

  const uint64_t type_at = pos_;
  uint32_t type = 0;
  if (!read(&type, "value type")) return false;
  if (type >= kValueTypeCount) return fail(type_at, "kv-type", "unknown value type " + std::to_string(type));
  const bool is_alignment = key == "general.alignment";
  if (is_alignment && ValueType(type) != ValueType::UINT32)
    return fail(type_at, "alignment",
                std::string("general.alignment must be a uint32, not ") + value_type_name(ValueType(type)));
  const uint64_t value_at = pos_;
  std::string text;
  if (ValueType(type) == ValueType::ARRAY ? !read_array(key, &text, arrays)
                                          : !read_scalar(ValueType(type), &text, nullptr))
    return false;
  if (is_alignment) {
    uint32_t alignment = 0;
    std::memcpy(&alignment, data_ + value_at, sizeof alignment);
    if (!std::has_single_bit(alignment))
      return fail(value_at, "alignment", "general.alignment is " + text + ", not a power of two");
    alignment_ = alignment;
  }
  ws->metadata.emplace(std::move(key), std::move(text));
  return true;
}

// name, uint32 n_dims, n_dims x uint64 ne (innermost first), uint32 ggml type, uint64 offset.
bool GgufParser::read_tensor_info(uint64_t index, std::unordered_set<std::string_view>* names, TensorInfo* info) {
  context_ = "tensor info " + std::to_string(index);
  const uint64_t name_at = pos_;
  std::string_view name;
  if (!read_string(&name, "tensor name")) return false;
  // Empty or non-UTF-8 names are stricter than ggml: names identify tensors in reports.
  if (name.empty()) return fail(name_at, "tensor-name", "the tensor name is empty");
  if (name.size() > kMaxTensorNameBytes)
    return fail(
        name_at, "tensor-name",
        "the tensor name is " + std::to_string(name.size()) + " bytes long; ggml allows at most 63 (GGML_MAX_NAME)");
  if (!valid_utf8(name)) return fail(name_at, "tensor-name", "the tensor name is not valid UTF-8");
  if (!names->insert(name).second)
    return fail(name_at, "tensor-duplicate-name", "tensor name '" + shown(name) + "' appears more than once");
  context_ = "tensor '" + shown(name) + "'";

  const uint64_t n_dims_at = pos_;
  uint32_t n_dims = 0;
  if (!read(&n_dims, "dimension count")) return false;
  // Zero dimensions is stricter than ggml, whose writer never produces it.
  if (n_dims == 0 || n_dims > kMaxDims)
    return fail(n_dims_at, "tensor-dims", "it has " + std::to_string(n_dims) + " dimensions; GGUF allows 1 to 4");
  uint64_t ne[kMaxDims] = {1, 1, 1, 1};
  uint64_t ne_at[kMaxDims] = {};
  for (uint32_t j = 0; j < n_dims; ++j) {
    ne_at[j] = pos_;
    if (!read(&ne[j], "dimension")) return false;
    // Zero is stricter than ggml: an empty tensor has nothing to analyse.
    if (ne[j] == 0 || ne[j] > kInt64Max)
      return fail(ne_at[j], "tensor-dims",
                  "ne[" + std::to_string(j) + "] is " + std::to_string(ne[j]) + "; it must be between 1 and 2^63-1");
  }
  std::fill(ne_at + n_dims, ne_at + kMaxDims, ne_at[n_dims - 1]);
  // ggml's check, over all four dims (unused ones are 1): each partial product stays below 2^63-1.
  uint64_t numel = ne[0];
  for (uint32_t j = 1; j < kMaxDims; ++j) {
    if (kInt64Max / ne[j] <= numel)
      return fail(ne_at[j], "tensor-dims", "its element count reaches ggml's limit of 2^63-1");
    numel *= ne[j];
  }

  const uint64_t type_at = pos_;
  uint32_t ggml_type = 0;
  if (!read(&ggml_type, "tensor type")) return false;
  const std::optional<DType> dtype = dtype_from_ggml(ggml_type);
  if (!dtype)
    return fail(type_at, "tensor-type",
                "ggml type " + std::to_string(ggml_type) +
                    (ggml_type_removed(ggml_type) ? " has been removed from GGUF files" : " is unknown"));
  const uint64_t block_elems = dtype_block_elems(*dtype), block_bytes = dtype_block_bits(*dtype) / 8;
  if (ne[0] % block_elems != 0)
    return fail(ne_at[0], "tensor-block-size",
                "rows of " + std::to_string(ne[0]) + " elements (ne[0]) are not a multiple of " + dtype_name(*dtype) +
                    "'s block of " + std::to_string(block_elems));
  const uint64_t nblocks = numel / block_elems;
  if (nblocks > std::numeric_limits<uint64_t>::max() / block_bytes)
    return fail(type_at, "tensor-dims",
                std::string("its size in bytes as ") + dtype_name(*dtype) + " overflows 64 bits");

  info->offset_at = pos_;
  if (!read(&info->offset, "tensor data offset")) return false;
  if (info->offset % alignment_ != 0)
    return fail(info->offset_at, "tensor-offset-alignment",
                "data offset " + std::to_string(info->offset) + " is not a multiple of the alignment " +
                    std::to_string(alignment_));
  Tensor& t = info->tensor;
  t.name = name;
  t.dtype = *dtype;
  t.shape.assign(std::make_reverse_iterator(ne + n_dims), std::make_reverse_iterator(ne));
  t.nbytes = nblocks * block_bytes;
  return true;
}

// ggml requires the tensors to lie in the data section in the order of their infos, each where the
// previous one's data ends, padded to the alignment: so none overlap and there are no holes. As
// llama.cpp's loader checks, each tensor's bytes must lie within the file (the last one's padding
// need not).
bool GgufParser::place_tensors(uint64_t data_start, std::vector<TensorInfo>* infos) {
  const uint64_t room = data_start <= size_ ? size_ - data_start : 0;
  uint64_t expected = 0;
  for (TensorInfo& info : *infos) {
    Tensor& t = info.tensor;
    context_ = "tensor '" + shown(t.name) + "'";
    if (info.offset < expected)
      return fail(info.offset_at, "tensor-overlap",
                  "data offset " + std::to_string(info.offset) +
                      " overlaps the tensor before it, whose padded data ends at " + std::to_string(expected) +
                      " (tensors must follow each other in the order of their infos)");
    if (info.offset > expected)
      return fail(
          info.offset_at, "tensor-gap",
          "data offset " + std::to_string(info.offset) + " leaves a gap: " +
              (expected == 0 ? std::string("the first tensor must start at offset 0")
                             : "it must start at " + std::to_string(expected) + ", where the tensor before it ends") +
              " (ggml packs tensors in the order of their infos)");
    if (info.offset > room || t.nbytes > room - info.offset)
      return fail(info.offset_at, "tensor-bounds",
                  "its " + std::to_string(t.nbytes) + " bytes of data at file offset " +
                      std::to_string(data_start + info.offset) + " run past the end of the file (" +
                      std::to_string(size_) + " bytes)");
    t.file_offset = data_start + info.offset;
    t.data = data_ + t.file_offset;
    expected = info.offset + align_up(t.nbytes, alignment_);
  }
  return true;
}

// magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata count, the metadata, the
// tensor infos, padding to the alignment, the tensor data.
bool GgufParser::parse(WeightSet* out, Arrays* arrays) {
  WeightSet ws;
  Arrays found;
  Arrays* found_arrays = arrays ? &found : nullptr;

  if (!need(4, "magic")) return false;
  if (std::memcmp(data_, "GGUF", 4) != 0)
    return fail(0, "gguf-magic", "the file does not start with the magic \"GGUF\"");
  pos_ = 4;
  uint32_t version = 0;
  if (!read(&version, "version")) return false;
  if (version != 2 && version != 3) return fail(4, "gguf-version", version_problem(version));
  uint64_t at = pos_, tensor_count = 0, kv_count = 0;
  if (!read(&tensor_count, "tensor count")) return false;
  if (tensor_count > kMaxTensorCount)
    return fail(at, "tensor-count", std::to_string(tensor_count) + " tensors is over the limit of 2^20");
  if (tensor_count > remaining() / kMinTensorInfoBytes)
    return fail(at, "tensor-count",
                std::to_string(tensor_count) + " tensor infos cannot fit in the " + std::to_string(remaining()) +
                    " bytes that follow");
  at = pos_;
  if (!read(&kv_count, "metadata count")) return false;
  if (kv_count > kMaxKvCount)
    return fail(at, "kv-count", std::to_string(kv_count) + " metadata entries is over the limit of 2^20");
  if (kv_count > remaining() / kMinKvBytes)
    return fail(at, "kv-count",
                std::to_string(kv_count) + " metadata entries cannot fit in the " + std::to_string(remaining()) +
                    " bytes that follow");

  for (uint64_t i = 0; i < kv_count; ++i)
    if (!read_kv(i, &ws, found_arrays)) return false;

  std::vector<TensorInfo> infos;
  infos.reserve(tensor_count);
  std::unordered_set<std::string_view> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo info;
    if (!read_tensor_info(i, &names, &info)) return false;
    infos.push_back(std::move(info));
  }
  if (!place_tensors(align_up(pos_, alignment_), &infos)) return false;

  ws.tensors.reserve(infos.size());
  for (TensorInfo& info : infos) ws.tensors.push_back(std::move(info.tensor));
  std::sort(ws.tensors.begin(), ws.tensors.end(), [](const Tensor& a, const Tensor& b) { return a.name < b.name; });
  ws.files = {file_};
  ws.format = "gguf";
  ws.total_bytes = size_;
  *out = std::move(ws);
  if (arrays) *arrays = std::move(found);
  return true;
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

bool parse_gguf_buffer(const uint8_t* data, uint64_t size, const std::string& name_for_errors, WeightSet* out,
                       FormatError* err, std::map<std::string, std::vector<std::string>>* gguf_arrays) {
  return GgufParser(data, size, name_for_errors, err).parse(out, gguf_arrays);
}

bool read_gguf(const std::string& path, WeightSet* out, FormatError* err,
               std::map<std::string, std::vector<std::string>>* gguf_arrays) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path, err);
  if (!file) return false;
  WeightSet ws;
  if (!parse_gguf_buffer(file->data(), file->size(), path, &ws, err, gguf_arrays)) return false;
  for (Tensor& t : ws.tensors) t.file = file;
  *out = std::move(ws);
  return true;
}

// The layouts and formulas of ggml's dequantize_row_q4_0/q4_1/q5_0/q5_1/q8_0 (ggml-quants.c). In
// each 32-element block, byte j of qs holds element j in its low nibble and element j + 16 in its
// high nibble; for Q5, bit j of qh is the fifth bit of element j.
bool dequantize_blocks(DType t, const uint8_t* src, uint64_t nblocks, float* out) {
  switch (t) {
    case DType::Q4_0:  // fp16 d, qs[16]; x = d * (q - 8)
      for (uint64_t b = 0; b < nblocks; ++b, src += 18, out += 32) {
        const float d = half_to_float(load_u16(src));
        const uint8_t* qs = src + 2;
        for (int j = 0; j < 16; ++j) {
          out[j] = float((qs[j] & 0x0f) - 8) * d;
          out[j + 16] = float((qs[j] >> 4) - 8) * d;
        }
      }
      return true;
    case DType::Q4_1:  // fp16 d, fp16 m, qs[16]; x = d * q + m
      for (uint64_t b = 0; b < nblocks; ++b, src += 20, out += 32) {
        const float d = half_to_float(load_u16(src)), m = half_to_float(load_u16(src + 2));
        const uint8_t* qs = src + 4;
        for (int j = 0; j < 16; ++j) {
          out[j] = float(qs[j] & 0x0f) * d + m;
          out[j + 16] = float(qs[j] >> 4) * d + m;
        }
      }
      return true;
    case DType::Q5_0:  // fp16 d, qh[4], qs[16]; x = d * (q - 16)
      for (uint64_t b = 0; b < nblocks; ++b, src += 22, out += 32) {
        const float d = half_to_float(load_u16(src));
        const uint32_t qh = load_u32(src + 2);
        const uint8_t* qs = src + 6;
        for (int j = 0; j < 16; ++j) {
          const int lo = (qs[j] & 0x0f) | int((qh >> j) & 1) << 4;
          const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
          out[j] = float(lo - 16) * d;
          out[j + 16] = float(hi - 16) * d;
        }
      }
      return true;
    case DType::Q5_1:  // fp16 d, fp16 m, qh[4], qs[16]; x = d * q + m
      for (uint64_t b = 0; b < nblocks; ++b, src += 24, out += 32) {
        const float d = half_to_float(load_u16(src)), m = half_to_float(load_u16(src + 2));
        const uint32_t qh = load_u32(src + 4);
        const uint8_t* qs = src + 8;
        for (int j = 0; j < 16; ++j) {
          const int lo = (qs[j] & 0x0f) | int((qh >> j) & 1) << 4;
          const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
          out[j] = float(lo) * d + m;
          out[j + 16] = float(hi) * d + m;
        }
      }
      return true;
    case DType::Q8_0:  // fp16 d, int8 qs[32]; x = d * q
      for (uint64_t b = 0; b < nblocks; ++b, src += 34, out += 32) {
        const float d = half_to_float(load_u16(src));
        for (int j = 0; j < 32; ++j) out[j] = float(int8_t(src[2 + j])) * d;
      }
      return true;
    // The k-quants: 256-element super-blocks of 16 or 32-element sub-blocks, each with its own small
    // integer scale (and min) that the fp16 super-block d (and dmin) multiply. The float expressions
    // keep ggml's order of operations so that results are bit-equal to dequantize_row_*.
    case DType::Q2_K:  // scales[16] (4-bit scale | 4-bit min << 4), qs[64], fp16 d, fp16 dmin
      for (uint64_t b = 0; b < nblocks; ++b, src += 84, out += 256) {
        const uint8_t* scales = src;
        const float d = half_to_float(load_u16(src + 80)), dmin = half_to_float(load_u16(src + 82));
        // Each 128-element half uses 32 bytes of qs; its four 32-element rows are the four 2-bit planes.
        for (int half = 0; half < 2; ++half) {
          const uint8_t* qs = src + 16 + 32 * half;
          for (int plane = 0; plane < 4; ++plane) {
            for (int part = 0; part < 2; ++part) {  // two 16-element sub-blocks per plane
              const uint8_t sc = scales[8 * half + 2 * plane + part];
              const float dl = d * float(sc & 0x0f), ml = dmin * float(sc >> 4);
              float* y = out + 128 * half + 32 * plane + 16 * part;
              for (int l = 0; l < 16; ++l) y[l] = dl * float((qs[16 * part + l] >> (2 * plane)) & 3) - ml;
            }
          }
        }
      }
      return true;
    case DType::Q3_K: {  // hmask[32], qs[64], scales[12] (16 packed 6-bit scales), fp16 d
      for (uint64_t b = 0; b < nblocks; ++b, src += 110, out += 256) {
        const uint8_t *hmask = src, *packed = src + 96;
        const float d = half_to_float(load_u16(src + 108));
        // Scale i: low 4 bits from byte i % 8 (low nibble for i < 8, high for i >= 8), high 2 bits
        // from byte 8 + i % 4 at bit 2 * (i / 4); stored biased by 32.
        int scale[16];
        for (int i = 0; i < 16; ++i) {
          const int lo = i < 8 ? packed[i] & 0x0f : packed[i - 8] >> 4;
          const int hi = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
          scale[i] = (lo | hi << 4) - 32;
        }
        for (int half = 0; half < 2; ++half) {
          const uint8_t* qs = src + 32 + 32 * half;
          for (int plane = 0; plane < 4; ++plane) {
            // hmask bit (4 * half + plane) of byte l is element l's third bit; a clear bit subtracts 4.
            const uint8_t bit = uint8_t(1u << (4 * half + plane));
            for (int part = 0; part < 2; ++part) {
              const float dl = d * float(scale[8 * half + 2 * plane + part]);
              float* y = out + 128 * half + 32 * plane + 16 * part;
              for (int l = 0; l < 16; ++l) {
                const int k = 16 * part + l;
                const int q = ((qs[k] >> (2 * plane)) & 3) - ((hmask[k] & bit) ? 0 : 4);
                y[l] = dl * float(q);
              }
            }
          }
        }
      }
      return true;
    }
    case DType::Q4_K:  // fp16 d, fp16 dmin, scales[12] (8 packed 6-bit scale/min pairs), qs[128]
    case DType::Q5_K:  // as Q4_K, then qh[32] (fifth bits) before qs[128]
      for (uint64_t b = 0, size = t == DType::Q4_K ? 144 : 176; b < nblocks; ++b, src += size, out += 256) {
        const float d = half_to_float(load_u16(src)), dmin = half_to_float(load_u16(src + 2));
        const uint8_t* packed = src + 4;
        const uint8_t* qh = t == DType::Q5_K ? src + 16 : nullptr;
        const uint8_t* qs = src + (t == DType::Q5_K ? 48 : 16);
        for (int sub = 0; sub < 8; ++sub) {  // 32-element sub-blocks
          // ggml's get_scale_min_k4: sub-blocks 0-3 use the low 6 bits of bytes 0-7; 4-7 take a
          // nibble of bytes 8-11 plus the spare top 2 bits of bytes 0-7.
          int sc, mn;
          if (sub < 4) {
            sc = packed[sub] & 63;
            mn = packed[sub + 4] & 63;
          } else {
            sc = (packed[sub + 4] & 0x0f) | (packed[sub - 4] >> 6) << 4;
            mn = (packed[sub + 4] >> 4) | (packed[sub] >> 6) << 4;
          }
          const float dl = d * float(sc), ml = dmin * float(mn);
          // Sub-blocks 2k and 2k+1 share qs bytes 32k..32k+31: low nibbles, then high nibbles.
          const uint8_t* q = qs + 32 * (sub / 2);
          const int shift = 4 * (sub % 2);
          for (int l = 0; l < 32; ++l) {
            int v = (q[l] >> shift) & 0x0f;
            if (qh && ((qh[l] >> sub) & 1)) v += 16;
            out[32 * sub + l] = dl * float(v) - ml;
          }
        }
      }
      return true;
    case DType::Q6_K:  // ql[128], qh[64], int8 scales[16], fp16 d
      for (uint64_t b = 0; b < nblocks; ++b, src += 210, out += 256) {
        const float d = half_to_float(load_u16(src + 208));
        for (int half = 0; half < 2; ++half) {
          const uint8_t* ql = src + 64 * half;
          const uint8_t* qh = src + 128 + 32 * half;
          const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192 + 8 * half);
          // Within a 128-element half, quarter r takes the low (r < 2) or high (r >= 2) nibbles of ql
          // bytes 32 * (r % 2) onward, and bits 2r..2r+1 of qh; 16-element sub-blocks have a scale each.
          for (int r = 0; r < 4; ++r) {
            for (int l = 0; l < 32; ++l) {
              const int lo = (ql[32 * (r % 2) + l] >> (4 * (r / 2))) & 0x0f;
              const int q = (lo | ((qh[l] >> (2 * r)) & 3) << 4) - 32;
              out[128 * half + 32 * r + l] = d * float(sc[2 * r + l / 16]) * float(q);
            }
          }
        }
      }
      return true;
    default: return false;
  }
}

}  // namespace evald::prov
