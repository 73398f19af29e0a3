// The GGUF reader: a small writer in this file builds valid files (every metadata value type, the
// analysable tensor types, quantised here with ggml's reference quantisers) and deliberately broken
// ones, one per rule, each checked for its rule id and the byte offset of the offending field.
#include "gguf_internal.hpp"
#include "weights.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evald::prov {
namespace {

// ggml type ids.
namespace ggml {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11,
                   Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, I8 = 24, I32 = 26, F64 = 28, BF16 = 30;
}
// GGUF metadata value types.
namespace vt {
constexpr uint32_t UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
                   ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;
}

// A little-endian byte writer; each write returns the offset it wrote at.
struct Bytes {
  std::vector<uint8_t> b;

  template <typename T>
  uint64_t put(T v) {
    uint64_t at = b.size();
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof v);
    b.insert(b.end(), raw, raw + sizeof raw);
    return at;
  }
  uint64_t str(std::string_view s) {
    uint64_t at = put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return at;
  }
};

// Metadata values as they follow a key: uint32 type, then the value.
template <typename T>
std::vector<uint8_t> scalar(uint32_t type, T v) {
  Bytes x;
  x.put(type);
  x.put(v);
  return x.b;
}
std::vector<uint8_t> string_value(std::string_view s) {
  Bytes x;
  x.put(vt::STRING);
  x.str(s);
  return x.b;
}
template <typename T>
std::vector<uint8_t> array_value(uint32_t elem_type, const std::vector<T>& items) {
  Bytes x;
  x.put(vt::ARRAY);
  x.put(elem_type);
  x.put<uint64_t>(items.size());
  for (T v : items) x.put(v);
  return x.b;
}
std::vector<uint8_t> string_array(const std::vector<std::string>& items) {
  Bytes x;
  x.put(vt::ARRAY);
  x.put(vt::STRING);
  x.put<uint64_t>(items.size());
  for (const std::string& s : items) x.str(s);
  return x.b;
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: innermost first
  uint32_t type = ggml::F32;
  std::vector<uint8_t> data;
  std::optional<uint64_t> offset;  // default: where the tensor before it ends, aligned
};

struct GgufSpec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count, kv_count;  // override the true counts
  uint32_t alignment = 32;                         // for laying out data; general.alignment is a kv like any other
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kvs;
  std::vector<TensorSpec> tensors;
};

// Where the builder put each field, by metadata entry and tensor index.
struct Layout {
  std::vector<uint64_t> key_at, value_type_at;
  std::vector<uint64_t> name_at, n_dims_at, ne_at, type_at, offset_at;  // ne_at: ne[0]
  uint64_t data_start = 0;
  uint64_t value_at(size_t kv) const { return value_type_at[kv] + 4; }
};

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::vector<uint8_t> build(const GgufSpec& spec, Layout* layout = nullptr) {
  Layout l;
  Bytes f;
  f.b.assign(spec.magic.begin(), spec.magic.end());
  f.put(spec.version);
  f.put<uint64_t>(spec.tensor_count.value_or(spec.tensors.size()));
  f.put<uint64_t>(spec.kv_count.value_or(spec.kvs.size()));
  for (const auto& [key, value] : spec.kvs) {
    l.key_at.push_back(f.str(key));
    l.value_type_at.push_back(f.b.size());
    f.b.insert(f.b.end(), value.begin(), value.end());
  }
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const TensorSpec& t : spec.tensors) {
    l.name_at.push_back(f.str(t.name));
    l.n_dims_at.push_back(f.put<uint32_t>(uint32_t(t.ne.size())));
    l.ne_at.push_back(f.b.size());
    for (uint64_t d : t.ne) f.put(d);
    l.type_at.push_back(f.put(t.type));
    offsets.push_back(t.offset.value_or(next));
    l.offset_at.push_back(f.put(offsets.back()));
    next = align_up(offsets.back() + t.data.size(), spec.alignment);
  }
  l.data_start = align_up(f.b.size(), spec.alignment);
  f.b.resize(l.data_start);
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const std::vector<uint8_t>& data = spec.tensors[i].data;
    uint64_t at = l.data_start + offsets[i];
    f.b.resize(std::max<uint64_t>(f.b.size(), at + data.size()));
    std::copy(data.begin(), data.end(), f.b.begin() + at);
  }
  f.b.resize(align_up(f.b.size(), spec.alignment));
  if (layout) *layout = l;
  return f.b;
}

// Round-to-nearest-even fp32 -> fp16 for the normal range the tests use; tiny values become 0.
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const int exp = int((x >> 23) & 0xff) - 127 + 15;
  const uint32_t man = x & 0x7fffff;
  if (exp <= 0) return sign;
  uint32_t h = uint32_t(exp) << 10 | man >> 13;
  const uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return uint16_t(sign | h);
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  Bytes x;
  for (float f : v) x.put(f);
  return x.b;
}

// Quantised blocks and the values ggml's dequantiser gives for them, computed here from the
// integer quants and the fp16 scales.
struct Quantised {
  std::vector<uint8_t> bytes;
  std::vector<float> expected;
  std::vector<float> step;  // per element: the block's scale, the error bound against the source
};

// The block quantisers of ggml-quants.c (quantize_row_*_ref), one 32-element block at a time.
Quantised quantise(uint32_t type, const std::vector<float>& src) {
  Quantised q;
  Bytes out;
  for (size_t b = 0; b < src.size() / 32; ++b) {
    const float* x = src.data() + b * 32;
    int qv[32];
    float d = 0, min = 0;
    uint32_t qh = 0;
    float amax = 0, max_signed = 0, lo = std::numeric_limits<float>::max(), hi = -lo;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max_signed = x[j];
      }
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    switch (type) {
      case ggml::Q8_0: {
        d = amax / 127;
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < 32; ++j) qv[j] = int(std::round(x[j] * id));
        out.put(float_to_half(d));
        for (int j = 0; j < 32; ++j) out.put(int8_t(qv[j]));
        break;
      }
      case ggml::Q4_0:
      case ggml::Q5_0: {
        const int levels = type == ggml::Q4_0 ? 16 : 32;
        d = max_signed / float(-levels / 2);
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < 32; ++j) qv[j] = std::min(levels - 1, int(int8_t(x[j] * id + float(levels / 2) + 0.5f)));
        out.put(float_to_half(d));
        if (type == ggml::Q5_0) {
          for (int j = 0; j < 32; ++j) qh |= uint32_t((qv[j] & 0x10) >> 4) << j;
          out.put(qh);
        }
        for (int j = 0; j < 16; ++j) out.put(uint8_t((qv[j] & 0x0f) | (qv[j + 16] & 0x0f) << 4));
        for (int j = 0; j < 32; ++j) qv[j] -= levels / 2;
        break;
      }
      case ggml::Q4_1:
      case ggml::Q5_1: {
        const int levels = type == ggml::Q4_1 ? 16 : 32;
        d = (hi - lo) / float(levels - 1);
        min = lo;
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < 32; ++j) qv[j] = std::min(levels - 1, int(int8_t((x[j] - min) * id + 0.5f)));
        out.put(float_to_half(d));
        out.put(float_to_half(min));
        if (type == ggml::Q5_1) {
          for (int j = 0; j < 32; ++j) qh |= uint32_t((qv[j] & 0x10) >> 4) << j;
          out.put(qh);
        }
        for (int j = 0; j < 16; ++j) out.put(uint8_t((qv[j] & 0x0f) | (qv[j + 16] & 0x0f) << 4));
        break;
      }
    }
    const float d16 = half_to_float(float_to_half(d)), m16 = half_to_float(float_to_half(min));
    for (int j = 0; j < 32; ++j) {
      q.expected.push_back(type == ggml::Q4_1 || type == ggml::Q5_1 ? float(qv[j]) * d16 + m16 : float(qv[j]) * d16);
      q.step.push_back(std::fabs(d));
    }
  }
  q.bytes = out.b;
  return q;
}

std::vector<float> wave(size_t n, float scale, float phase) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * float(i) + phase) + 0.1f * scale;
  return v;
}

std::vector<float> all_floats(const Tensor& t) {
  std::vector<float> out(t.numel());
  EXPECT_TRUE(to_float(t, 0, t.numel(), out.data())) << t.name;
  return out;
}

const Tensor* find_tensor(const WeightSet& ws, const std::string& name) {
  for (const Tensor& t : ws.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

class GgufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (std::filesystem::path(::testing::TempDir()) / "gguf-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::vector<uint8_t>& bytes, const std::string& name = "model.gguf") {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
  }

  // Reads a file that must be refused; checks its rule and offset and returns the error.
  FormatError refused(const std::vector<uint8_t>& bytes, const std::string& rule, uint64_t offset) {
    const std::string path = write(bytes);
    WeightSet ws;
    FormatError err;
    EXPECT_FALSE(read_gguf(path, &ws, &err));
    EXPECT_EQ(err.rule, rule) << err.to_string();
    EXPECT_EQ(err.offset, offset) << err.to_string();
    EXPECT_EQ(err.file, path);
    EXPECT_FALSE(err.message.empty());
    return err;
  }

  std::filesystem::path dir_;
};

// Two metadata entries and two F32 tensors: the base the malformed files change one thing of.
GgufSpec small_spec() {
  GgufSpec s;
  s.kvs = {{"general.architecture", string_value("llama")}, {"general.name", string_value("small")}};
  s.tensors = {{"a", {8}, ggml::F32, f32_bytes(wave(8, 1, 0)), {}},
               {"b", {4, 2}, ggml::F32, f32_bytes(wave(8, 2, 1)), {}}};
  return s;
}

TEST_F(GgufTest, SmallSpecIsValid) {
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_gguf(write(build(small_spec())), &ws, &err)) << err.to_string();
  EXPECT_EQ(ws.tensors.size(), 2u);
}

TEST_F(GgufTest, ReadsEveryValueTypeAndAnalysableTensorType) {
  GgufSpec s;
  std::vector<std::string> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back("<tok" + std::to_string(i) + ">");
  const std::vector<std::string> merges = {"a b", "ab c", "\xc4\xa0 t"};
  s.kvs = {
      {"general.architecture", string_value("llama")},
      {"general.name", string_value("tiny \"test\" model")},
      {"general.base_model.count", scalar(vt::UINT32, uint32_t(1))},
      {"general.base_model.0.name", string_value("Base Model 7B")},
      {"general.base_model.0.repo_url", string_value("https://huggingface.co/org/base-7b")},
      {"test.u8", scalar(vt::UINT8, uint8_t(200))},
      {"test.i8", scalar(vt::INT8, int8_t(-100))},
      {"test.u16", scalar(vt::UINT16, uint16_t(65535))},
      {"test.i16", scalar(vt::INT16, int16_t(-32768))},
      {"test.u32", scalar(vt::UINT32, uint32_t(4000000000u))},
      {"test.i32", scalar(vt::INT32, int32_t(-2000000000))},
      {"test.f32", scalar(vt::FLOAT32, 0.1f)},
      {"test.bool_true", scalar(vt::BOOL, uint8_t(1))},
      {"test.bool_false", scalar(vt::BOOL, uint8_t(0))},
      {"test.u64", scalar(vt::UINT64, std::numeric_limits<uint64_t>::max())},
      {"test.i64", scalar(vt::INT64, std::numeric_limits<int64_t>::min())},
      {"test.f64", scalar(vt::FLOAT64, 0.1)},
      {"test.f64_big", scalar(vt::FLOAT64, 1e300)},
      {"test.array_i32", array_value(vt::INT32, std::vector<int32_t>{1, -2, 3})},
      {"test.array_empty", array_value(vt::UINT8, std::vector<uint8_t>{})},
      {"test.array_bool", array_value(vt::BOOL, std::vector<uint8_t>{1, 0})},
      {"test.array_f32", array_value(vt::FLOAT32, std::vector<float>{0.5f, -1.5f})},
      {"test.array_f64", array_value(vt::FLOAT64, std::vector<double>{0.25})},
      {"test.array_u64", array_value(vt::UINT64, std::vector<uint64_t>{7})},
      {"test.array_long", array_value(vt::UINT16, std::vector<uint16_t>(65, 3))},
      {"test.array_long_bool", array_value(vt::BOOL, std::vector<uint8_t>(65, 1))},
      {"test.array_strings", string_array({"a", "b\"c\\", "tab\t", std::string("\x01", 1)})},
      {"tokenizer.ggml.tokens", string_array(tokens)},
      {"tokenizer.ggml.merges", string_array(merges)},
      {"tokenizer.ggml.scores", array_value(vt::FLOAT32, std::vector<float>(100, -1.0f))},
  };

  const std::vector<float> f32_values = wave(12, 1.5f, 0);
  std::vector<float> f16_values, bf16_values;
  Bytes f16, bf16;
  for (int i = 0; i < 8; ++i) {
    f16_values.push_back(float(i - 4) * 0.25f);  // exact in fp16
    f16.put(float_to_half(f16_values.back()));
  }
  for (int i = 0; i < 8; ++i) {
    bf16_values.push_back(float(i) * -0.5f);  // exact in bf16: the top half of the fp32 bits
    uint32_t bits;
    std::memcpy(&bits, &bf16_values.back(), 4);
    bf16.put(uint16_t(bits >> 16));
  }
  const std::vector<float> q8_src = wave(128, 3, 0.5f), q4_src = wave(96, 0.5f, 1), q41_src = wave(64, 2, 2),
                           q50_src = wave(64, 1, 3), q51_src = wave(128, 4, 4);
  const Quantised q8 = quantise(ggml::Q8_0, q8_src), q4 = quantise(ggml::Q4_0, q4_src),
                  q41 = quantise(ggml::Q4_1, q41_src), q50 = quantise(ggml::Q5_0, q50_src),
                  q51 = quantise(ggml::Q5_1, q51_src);
  Bytes i32, f64;
  for (int32_t v : {7, -70000, 0}) i32.put(v);
  for (double v : {0.5, -2.25}) f64.put(v);
  // Not in name order: the reader sorts.
  s.tensors = {
      {"token_embd.weight", {4, 3}, ggml::F32, f32_bytes(f32_values), {}},
      {"blk.0.f16", {8}, ggml::F16, f16.b, {}},
      {"blk.0.bf16", {2, 2, 2}, ggml::BF16, bf16.b, {}},
      {"blk.0.q8_0", {64, 2}, ggml::Q8_0, q8.bytes, {}},
      {"blk.0.q4_0", {32, 3}, ggml::Q4_0, q4.bytes, {}},
      {"blk.0.q4_1", {32, 2}, ggml::Q4_1, q41.bytes, {}},
      {"blk.0.q5_0", {64}, ggml::Q5_0, q50.bytes, {}},
      {"blk.0.q5_1", {32, 1, 2, 2}, ggml::Q5_1, q51.bytes, {}},
      {"blk.0.i8", {4}, ggml::I8, {1, 0xff, 3, 0x80}, {}},
      {"blk.0.i32", {3}, ggml::I32, i32.b, {}},
      {"blk.0.f64", {2}, ggml::F64, f64.b, {}},
      {"blk.0.q4_k", {256}, ggml::Q4_K, std::vector<uint8_t>(144), {}},  // all zero: d = dmin = 0
      {"blk.0.q8_k", {256}, ggml::Q8_K, std::vector<uint8_t>(292), {}},  // read, but not analysable
  };
  const std::vector<uint8_t> bytes = build(s);
  const std::string path = write(bytes);

  WeightSet ws;
  FormatError err;
  std::map<std::string, std::vector<std::string>> arrays;
  ASSERT_TRUE(read_gguf(path, &ws, &err, &arrays)) << err.to_string();
  EXPECT_EQ(ws.format, "gguf");
  EXPECT_EQ(ws.files, std::vector<std::string>{path});
  EXPECT_EQ(ws.total_bytes, bytes.size());

  const std::map<std::string, std::string> expected_metadata = {
      {"general.architecture", "llama"},
      {"general.name", "tiny \"test\" model"},
      {"general.base_model.count", "1"},
      {"general.base_model.0.name", "Base Model 7B"},
      {"general.base_model.0.repo_url", "https://huggingface.co/org/base-7b"},
      {"test.u8", "200"},
      {"test.i8", "-100"},
      {"test.u16", "65535"},
      {"test.i16", "-32768"},
      {"test.u32", "4000000000"},
      {"test.i32", "-2000000000"},
      {"test.f32", "0.1"},
      {"test.bool_true", "true"},
      {"test.bool_false", "false"},
      {"test.u64", "18446744073709551615"},
      {"test.i64", "-9223372036854775808"},
      {"test.f64", "0.1"},
      {"test.f64_big", "1e+300"},
      {"test.array_i32", "[1, -2, 3]"},
      {"test.array_empty", "[]"},
      {"test.array_bool", "[true, false]"},
      {"test.array_f32", "[0.5, -1.5]"},
      {"test.array_f64", "[0.25]"},
      {"test.array_u64", "[7]"},
      {"test.array_long", "[array of 65 uint16]"},
      {"test.array_long_bool", "[array of 65 bool]"},
      {"test.array_strings", R"(["a", "b\"c\\", "tab\t", "\u0001"])"},
      {"tokenizer.ggml.tokens", "[array of 100 string]"},
      {"tokenizer.ggml.merges", "[\"a b\", \"ab c\", \"\xc4\xa0 t\"]"},
      {"tokenizer.ggml.scores", "[array of 100 float32]"},
  };
  EXPECT_EQ(ws.metadata, expected_metadata);
  // Every string array, whole; no numeric ones.
  ASSERT_EQ(arrays.size(), 3u);
  EXPECT_EQ(arrays["tokenizer.ggml.tokens"], tokens);
  EXPECT_EQ(arrays["tokenizer.ggml.merges"], merges);
  EXPECT_EQ(arrays["test.array_strings"], (std::vector<std::string>{"a", "b\"c\\", "tab\t", std::string("\x01", 1)}));

  std::vector<std::string> names;
  for (const Tensor& t : ws.tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"blk.0.bf16", "blk.0.f16", "blk.0.f64", "blk.0.i32", "blk.0.i8",
                                             "blk.0.q4_0", "blk.0.q4_1", "blk.0.q4_k", "blk.0.q5_0", "blk.0.q5_1",
                                             "blk.0.q8_0", "blk.0.q8_k", "token_embd.weight"}));
  for (const Tensor& t : ws.tensors) {
    EXPECT_EQ(t.file_offset % 32, 0u) << t.name;
    EXPECT_EQ(t.data, t.file->data() + t.file_offset) << t.name;
    EXPECT_LE(t.file_offset + t.nbytes, bytes.size()) << t.name;
    EXPECT_EQ(t.file->path(), path);
  }

  struct Expect {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    uint64_t nbytes;
  };
  for (const Expect& e : std::vector<Expect>{
           {"token_embd.weight", DType::F32, {3, 4}, 48},
           {"blk.0.f16", DType::F16, {8}, 16},
           {"blk.0.bf16", DType::BF16, {2, 2, 2}, 16},
           {"blk.0.q8_0", DType::Q8_0, {2, 64}, 4 * 34},
           {"blk.0.q4_0", DType::Q4_0, {3, 32}, 3 * 18},
           {"blk.0.q4_1", DType::Q4_1, {2, 32}, 2 * 20},
           {"blk.0.q5_0", DType::Q5_0, {64}, 2 * 22},
           {"blk.0.q5_1", DType::Q5_1, {2, 2, 1, 32}, 4 * 24},
           {"blk.0.i8", DType::I8, {4}, 4},
           {"blk.0.i32", DType::I32, {3}, 12},
           {"blk.0.f64", DType::F64, {2}, 16},
           {"blk.0.q4_k", DType::Q4_K, {256}, 144},
           {"blk.0.q8_k", DType::Q8_K, {256}, 292},
       }) {
    const Tensor* t = find_tensor(ws, e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dtype, e.dtype) << e.name;
    EXPECT_EQ(t->shape, e.shape) << e.name;
    EXPECT_EQ(t->nbytes, e.nbytes) << e.name;
  }

  EXPECT_EQ(all_floats(*find_tensor(ws, "token_embd.weight")), f32_values);
  EXPECT_EQ(all_floats(*find_tensor(ws, "blk.0.f16")), f16_values);
  EXPECT_EQ(all_floats(*find_tensor(ws, "blk.0.bf16")), bf16_values);
  EXPECT_EQ(all_floats(*find_tensor(ws, "blk.0.i8")), (std::vector<float>{1, -1, 3, -128}));
  EXPECT_EQ(all_floats(*find_tensor(ws, "blk.0.i32")), (std::vector<float>{7, -70000, 0}));
  EXPECT_EQ(all_floats(*find_tensor(ws, "blk.0.f64")), (std::vector<float>{0.5f, -2.25f}));
  EXPECT_EQ(all_floats(*find_tensor(ws, "blk.0.q4_k")), std::vector<float>(256, 0.0f));
  std::vector<float> unused(256);
  EXPECT_FALSE(to_float(*find_tensor(ws, "blk.0.q8_k"), 0, 256, unused.data()));
  struct QuantisedTensor {
    const char* name;
    const Quantised& q;
    const std::vector<float>& src;
  };
  for (const QuantisedTensor& e :
       {QuantisedTensor{"blk.0.q8_0", q8, q8_src}, QuantisedTensor{"blk.0.q4_0", q4, q4_src},
        QuantisedTensor{"blk.0.q4_1", q41, q41_src}, QuantisedTensor{"blk.0.q5_0", q50, q50_src},
        QuantisedTensor{"blk.0.q5_1", q51, q51_src}}) {
    const std::vector<float> got = all_floats(*find_tensor(ws, e.name));
    ASSERT_EQ(got.size(), e.q.expected.size()) << e.name;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_FLOAT_EQ(got[i], e.q.expected[i]) << e.name << " element " << i;
      // And the quantisation round trip lands within a step of the source.
      EXPECT_NEAR(got[i], e.src[i], 1.05f * e.q.step[i] + 1e-6f) << e.name << " element " << i;
    }
  }
}

TEST_F(GgufTest, ParsesFromMemoryLikeFromAFile) {
  const std::vector<uint8_t> bytes = build(small_spec());
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(parse_gguf_buffer(bytes.data(), bytes.size(), "in-memory", &ws, &err, nullptr)) << err.to_string();
  EXPECT_EQ(ws.files, std::vector<std::string>{"in-memory"});
  ASSERT_EQ(ws.tensors.size(), 2u);
  EXPECT_EQ(ws.tensors[0].file, nullptr);
  EXPECT_EQ(ws.tensors[0].data, bytes.data() + ws.tensors[0].file_offset);
  EXPECT_EQ(all_floats(ws.tensors[1]), wave(8, 2, 1));

  GgufSpec bad = small_spec();
  bad.version = 9;
  const std::vector<uint8_t> bad_bytes = build(bad);
  ASSERT_FALSE(parse_gguf_buffer(bad_bytes.data(), bad_bytes.size(), "in-memory", &ws, &err, nullptr));
  EXPECT_EQ(err.file, "in-memory");
  EXPECT_EQ(err.rule, "gguf-version");
}

TEST_F(GgufTest, ReadsVersion2) {
  GgufSpec s = small_spec();
  s.version = 2;
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_gguf(write(build(s)), &ws, &err)) << err.to_string();
  EXPECT_EQ(ws.tensors.size(), 2u);
}

TEST_F(GgufTest, ReadsFileWithoutTensorsOrMetadata) {
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_gguf(write(build(GgufSpec{})), &ws, &err)) << err.to_string();
  EXPECT_TRUE(ws.tensors.empty());
  EXPECT_TRUE(ws.metadata.empty());
  EXPECT_EQ(ws.total_bytes, 32u);  // the header, padded to the default alignment
}

TEST_F(GgufTest, HonoursCustomAlignment) {
  for (uint32_t alignment : {1u, 64u, 256u}) {
    GgufSpec s = small_spec();
    s.alignment = alignment;
    s.kvs.push_back({"general.alignment", scalar(vt::UINT32, alignment)});
    // 20 bytes of F32: the next tensor starts after padding to the alignment.
    s.tensors[0] = {"a", {5}, ggml::F32, f32_bytes(wave(5, 1, 0)), {}};
    Layout l;
    const std::vector<uint8_t> bytes = build(s, &l);
    WeightSet ws;
    FormatError err;
    ASSERT_TRUE(read_gguf(write(bytes), &ws, &err)) << alignment << ": " << err.to_string();
    EXPECT_EQ(ws.metadata["general.alignment"], std::to_string(alignment));
    EXPECT_EQ(l.data_start % alignment, 0u);
    EXPECT_EQ(ws.tensors[0].file_offset, l.data_start);
    EXPECT_EQ(ws.tensors[1].file_offset, l.data_start + align_up(20, alignment));
    EXPECT_EQ(all_floats(ws.tensors[0]), wave(5, 1, 0));
    EXPECT_EQ(all_floats(ws.tensors[1]), wave(8, 2, 1));
  }
}

TEST_F(GgufTest, LastTensorNeedNotBePadded) {
  GgufSpec s = small_spec();
  s.tensors[1] = {"b", {3}, ggml::F32, f32_bytes(wave(3, 2, 1)), {}};
  Layout l;
  std::vector<uint8_t> bytes = build(s, &l);
  bytes.resize(l.data_start + 32 + 12);
  WeightSet ws;
  FormatError err;
  EXPECT_TRUE(read_gguf(write(bytes), &ws, &err)) << err.to_string();
}

TEST_F(GgufTest, FailureLeavesOutputsAlone) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"tokenizer.ggml.tokens", string_array({"x", "y"})});
  s.tensors[1].offset = 0;
  WeightSet ws;
  ws.format = "untouched";
  FormatError err;
  std::map<std::string, std::vector<std::string>> arrays = {{"keep", {"me"}}};
  ASSERT_FALSE(read_gguf(write(build(s)), &ws, &err, &arrays));
  EXPECT_EQ(ws.format, "untouched");
  EXPECT_TRUE(ws.tensors.empty());
  EXPECT_EQ(arrays.size(), 1u);
  EXPECT_EQ(err.rule, "tensor-overlap");
}

TEST_F(GgufTest, MissingFileIsAnOpenError) {
  WeightSet ws;
  FormatError err;
  EXPECT_FALSE(read_gguf((dir_ / "absent.gguf").string(), &ws, &err));
  EXPECT_EQ(err.rule, "open");
}

TEST_F(GgufTest, ErrorTextNamesFileOffsetAndRule) {
  GgufSpec s = small_spec();
  s.magic = "GGML";
  const FormatError err = refused(build(s), "gguf-magic", 0);
  EXPECT_EQ(err.to_string(), (dir_ / "model.gguf").string() + ": offset 0: " + err.message + " [rule gguf-magic]");
}

TEST_F(GgufTest, RefusesBadMagic) {
  GgufSpec s = small_spec();
  s.magic = "GGUV";
  refused(build(s), "gguf-magic", 0);
}

TEST_F(GgufTest, RefusesOtherVersions) {
  GgufSpec s = small_spec();
  s.version = 1;
  EXPECT_NE(refused(build(s), "gguf-version", 4).message.find("version 1"), std::string::npos);
  s.version = 4;
  EXPECT_NE(refused(build(s), "gguf-version", 4).message.find("version 4"), std::string::npos);
  s.version = 0;
  refused(build(s), "gguf-version", 4);
  s.version = 0x03000000;  // a big-endian v3 file
  EXPECT_NE(refused(build(s), "gguf-version", 4).message.find("big-endian"), std::string::npos);
}

TEST_F(GgufTest, RefusesTruncatedFiles) {
  refused({}, "truncated", 0);
  const std::vector<uint8_t> bytes = build(small_spec());
  refused(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 10), "truncated", 8);  // inside the tensor count

  GgufSpec s = small_spec();
  s.kvs.push_back({"test.u64", scalar(vt::UINT64, uint64_t(1))});
  Layout l;
  std::vector<uint8_t> cut = build(s, &l);
  cut.resize(l.value_at(2) + 3);
  refused(cut, "truncated", l.value_at(2));

  cut = build(small_spec(), &l);
  cut.resize(l.type_at[1] + 2);
  refused(cut, "truncated", l.type_at[1]);
}

TEST_F(GgufTest, RefusesImpossibleTensorCount) {
  GgufSpec s = small_spec();
  s.tensor_count = uint64_t(1) << 40;
  EXPECT_NE(refused(build(s), "tensor-count", 8).message.find("limit"), std::string::npos);
  s.tensor_count = 1000;  // under the limit, but 1000 infos cannot fit in this file
  refused(build(s), "tensor-count", 8);
}

TEST_F(GgufTest, RefusesImpossibleMetadataCount) {
  GgufSpec s = small_spec();
  s.kv_count = uint64_t(1) << 21;
  refused(build(s), "kv-count", 16);
  s.kv_count = 1000;
  refused(build(s), "kv-count", 16);
}

TEST_F(GgufTest, RefusesEmptyOrNonUtf8Keys) {
  for (const std::string& key : {std::string(), std::string("bad\xff"), std::string("over\xc0\xaflong"),
                                 std::string("surrogate\xed\xa0\x80"), std::string("cut\xe2\x82")}) {
    GgufSpec s = small_spec();
    s.kvs.push_back({key, scalar(vt::UINT8, uint8_t(1))});
    Layout l;
    const std::vector<uint8_t> bytes = build(s, &l);
    refused(bytes, "kv-key", l.key_at[2]);
  }
}

TEST_F(GgufTest, AcceptsNonAsciiUtf8Keys) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"test.caf\xc3\xa9.\xf0\x9f\x98\x80", scalar(vt::UINT8, uint8_t(1))});
  WeightSet ws;
  FormatError err;
  EXPECT_TRUE(read_gguf(write(build(s)), &ws, &err)) << err.to_string();
}

TEST_F(GgufTest, MessagesEscapeControlCharactersInKeys) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"line\nbreak", scalar(vt::UINT8, uint8_t(1))});  // valid UTF-8, so accepted as ggml does
  s.kvs.push_back({"line\nbreak", scalar(vt::UINT8, uint8_t(2))});
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  const FormatError err = refused(bytes, "kv-duplicate-key", l.key_at[3]);
  EXPECT_NE(err.message.find("line\\x0abreak"), std::string::npos) << err.message;
  EXPECT_EQ(err.message.find('\n'), std::string::npos);
}

TEST_F(GgufTest, RefusesDuplicateKeys) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"general.name", string_value("again")});
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "kv-duplicate-key", l.key_at[2]);
}

TEST_F(GgufTest, RefusesUnknownValueType) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"test.odd", scalar(uint32_t(13), uint8_t(0))});
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "kv-type", l.value_type_at[2]);
}

TEST_F(GgufTest, RefusesNestedOrUnknownArrayTypes) {
  for (uint32_t elem_type : {vt::ARRAY, uint32_t(13), uint32_t(0xffffffff)}) {
    GgufSpec s = small_spec();
    s.kvs.push_back({"test.array", array_value(elem_type, std::vector<uint8_t>{})});
    Layout l;
    const std::vector<uint8_t> bytes = build(s, &l);
    refused(bytes, "array-type", l.value_at(2));
  }
}

TEST_F(GgufTest, RefusesArrayLengths) {
  GgufSpec s = small_spec();
  Bytes huge;  // 2^31 elements: over ggml's limit of 2^30
  huge.put(vt::ARRAY);
  huge.put(vt::UINT8);
  huge.put<uint64_t>(uint64_t(1) << 31);
  s.kvs.push_back({"test.array", huge.b});
  Layout l;
  std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "array-length", l.value_at(2) + 4);

  Bytes long_array;  // 1000 uint64: more than the file holds
  long_array.put(vt::ARRAY);
  long_array.put(vt::UINT64);
  long_array.put<uint64_t>(1000);
  s.kvs.back().second = long_array.b;
  bytes = build(s, &l);
  refused(bytes, "array-length", l.value_at(2) + 4);

  Bytes strings;  // 100 strings need at least 800 bytes for their lengths
  strings.put(vt::ARRAY);
  strings.put(vt::STRING);
  strings.put<uint64_t>(100);
  s.kvs.back().second = strings.b;
  bytes = build(s, &l);
  refused(bytes, "array-length", l.value_at(2) + 4);
}

TEST_F(GgufTest, RefusesStringLengths) {
  GgufSpec s = small_spec();
  Bytes past_end;
  past_end.put(vt::STRING);
  past_end.put<uint64_t>(100000);
  s.kvs.push_back({"test.s", past_end.b});
  Layout l;
  std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "string-length", l.value_at(2));

  Bytes over_limit;
  over_limit.put(vt::STRING);
  over_limit.put<uint64_t>(uint64_t(1) << 40);
  s.kvs.back().second = over_limit.b;
  bytes = build(s, &l);
  EXPECT_NE(refused(bytes, "string-length", l.value_at(2)).message.find("limit"), std::string::npos);

  // In an array element, a key and a tensor name too.
  Bytes element;
  element.put(vt::ARRAY);
  element.put(vt::STRING);
  element.put<uint64_t>(2);
  element.str("ok");
  element.put<uint64_t>(uint64_t(1) << 40);
  s.kvs.back().second = element.b;
  bytes = build(s, &l);
  refused(bytes, "string-length", l.value_at(2) + 12 + 8 + 2);

  bytes = build(small_spec(), &l);
  bytes[l.key_at[1] + 5] = 0x10;  // the key length's bit 44
  refused(bytes, "string-length", l.key_at[1]);
  bytes = build(small_spec(), &l);
  bytes[l.name_at[1] + 5] = 0x10;
  refused(bytes, "string-length", l.name_at[1]);
}

TEST_F(GgufTest, RefusesBoolsOtherThanZeroOrOne) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"test.b", scalar(vt::BOOL, uint8_t(2))});
  Layout l;
  std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "kv-bool", l.value_at(2));

  s.kvs.back().second = array_value(vt::BOOL, std::vector<uint8_t>{1, 7});
  bytes = build(s, &l);
  refused(bytes, "kv-bool", l.value_at(2) + 12 + 1);

  std::vector<uint8_t> long_bools(100, 0);  // checked even where the text only summarises
  long_bools[99] = 0xff;
  s.kvs.back().second = array_value(vt::BOOL, long_bools);
  bytes = build(s, &l);
  refused(bytes, "kv-bool", l.value_at(2) + 12 + 99);
}

TEST_F(GgufTest, RefusesBadAlignment) {
  GgufSpec s = small_spec();
  s.kvs.push_back({"general.alignment", scalar(vt::UINT64, uint64_t(32))});
  Layout l;
  std::vector<uint8_t> bytes = build(s, &l);
  EXPECT_NE(refused(bytes, "alignment", l.value_type_at[2]).message.find("uint32"), std::string::npos);

  s.kvs.back().second = array_value(vt::UINT32, std::vector<uint32_t>{32});
  bytes = build(s, &l);
  refused(bytes, "alignment", l.value_type_at[2]);

  for (uint32_t alignment : {0u, 48u, 0x80000001u}) {
    s.kvs.back().second = scalar(vt::UINT32, alignment);
    bytes = build(s, &l);
    refused(bytes, "alignment", l.value_at(2));
  }
}

TEST_F(GgufTest, RefusesBadTensorNames) {
  GgufSpec s = small_spec();
  s.tensors[1].name = std::string(63, 'n');  // ggml's longest
  WeightSet ws;
  FormatError err;
  EXPECT_TRUE(read_gguf(write(build(s)), &ws, &err)) << err.to_string();

  for (const std::string& name : {std::string(64, 'n'), std::string(), std::string("w\xff")}) {
    s.tensors[1].name = name;
    Layout l;
    const std::vector<uint8_t> bytes = build(s, &l);
    refused(bytes, "tensor-name", l.name_at[1]);
  }
}

TEST_F(GgufTest, RefusesDuplicateTensorNames) {
  GgufSpec s = small_spec();
  s.tensors[1].name = "a";
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "tensor-duplicate-name", l.name_at[1]);
}

TEST_F(GgufTest, RefusesBadDimensions) {
  struct Case {
    std::vector<uint64_t> ne;
    uint32_t type;
    int field;  // -1: n_dims; 4: the type; otherwise the index of the offending ne
  };
  const uint64_t big = uint64_t(1) << 31;
  for (const Case& c : std::vector<Case>{
           {{}, ggml::F32, -1},                                    // no dimensions
           {{1, 1, 1, 1, 1}, ggml::F32, -1},                       // five
           {{8, 0}, ggml::F32, 1},                                 // an empty dimension
           {{uint64_t(1) << 63}, ggml::F32, 0},                    // not an int64
           {{uint64_t(1) << 32, big}, ggml::F32, 1},               // 2^63 elements
           {{std::numeric_limits<int64_t>::max()}, ggml::F32, 0},  // ggml's limit is below INT64_MAX
           {{big, big}, ggml::F64, 4},                             // 2^62 elements of 8 bytes
       }) {
    GgufSpec s = small_spec();
    s.tensors[1].ne = c.ne;
    s.tensors[1].type = c.type;
    Layout l;
    const std::vector<uint8_t> bytes = build(s, &l);
    const uint64_t at = c.field == -1  ? l.n_dims_at[1]
                        : c.field == 4 ? l.type_at[1]
                                       : l.ne_at[1] + 8 * uint64_t(c.field);
    refused(bytes, "tensor-dims", at);
  }
}

TEST_F(GgufTest, RefusesUnknownOrRemovedTensorTypes) {
  for (uint32_t type : {4u, 5u, 31u, 33u, 36u, 38u, 40u, 1000u}) {
    GgufSpec s = small_spec();
    s.tensors[1].type = type;
    Layout l;
    const std::vector<uint8_t> bytes = build(s, &l);
    const FormatError err = refused(bytes, "tensor-type", l.type_at[1]);
    EXPECT_NE(err.message.find(type == 40 || type == 1000 ? "unknown" : "removed"), std::string::npos) << err.message;
  }
}

TEST_F(GgufTest, RefusesRowsThatAreNotWholeBlocks) {
  GgufSpec s = small_spec();
  s.tensors[1] = {"b", {33, 2}, ggml::Q8_0, std::vector<uint8_t>(68), {}};
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "tensor-block-size", l.ne_at[1]);
}

TEST_F(GgufTest, RefusesUnalignedTensorOffsets) {
  GgufSpec s = small_spec();
  s.tensors[1].offset = 40;
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "tensor-offset-alignment", l.offset_at[1]);
}

TEST_F(GgufTest, RefusesOverlappingTensors) {
  GgufSpec s = small_spec();
  s.tensors.push_back({"c", {16}, ggml::F32, f32_bytes(wave(16, 1, 2)), {}});
  s.tensors[2].offset = 32;  // where "b" is
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  refused(bytes, "tensor-overlap", l.offset_at[2]);

  s.tensors[2].offset = {};
  s.tensors[0].offset = 64;  // in reverse order: "a" after "b"
  s.tensors[1].offset = 0;
  const std::vector<uint8_t> reversed = build(s, &l);
  refused(reversed, "tensor-gap", l.offset_at[0]);
}

TEST_F(GgufTest, RefusesGapsBetweenTensors) {
  GgufSpec s = small_spec();
  s.tensors[1].offset = 64;  // "a" ends at 32
  Layout l;
  const std::vector<uint8_t> bytes = build(s, &l);
  EXPECT_NE(refused(bytes, "tensor-gap", l.offset_at[1]).message.find("must start at 32"), std::string::npos);
}

TEST_F(GgufTest, RefusesTensorsPastTheEnd) {
  Layout l;
  std::vector<uint8_t> bytes = build(small_spec(), &l);
  bytes.resize(l.data_start + 32 + 31);  // "b" has 32 bytes at 32
  refused(bytes, "tensor-bounds", l.offset_at[1]);

  bytes.resize(l.offset_at[1] + 8);  // the tensor infos and nothing after them
  refused(bytes, "tensor-bounds", l.offset_at[0]);
}

TEST_F(GgufTest, ToFloatConvertsWholeBlocksOfQuantisedTensors) {
  const std::vector<float> src = wave(96, 2, 0.25f);
  const Quantised q = quantise(ggml::Q8_0, src);
  GgufSpec s;
  s.tensors = {{"q", {96}, ggml::Q8_0, q.bytes, {}}};
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_gguf(write(build(s)), &ws, &err)) << err.to_string();
  const Tensor& t = ws.tensors[0];
  std::vector<float> out(64);
  ASSERT_TRUE(to_float(t, 32, 64, out.data()));
  for (size_t i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(out[i], q.expected[32 + i]) << i;
  EXPECT_FALSE(to_float(t, 16, 32, out.data()));  // not on a block boundary
  EXPECT_FALSE(to_float(t, 0, 40, out.data()));   // ends inside a block
  EXPECT_FALSE(to_float(t, 64, 64, out.data()));  // past the end
}

TEST(GgufDequantize, RefusesBlockTypesItDoesNotImplement) {
  std::vector<uint8_t> block(300);
  std::vector<float> out(256);
  for (DType t : {DType::Q8_1, DType::Q8_K, DType::IQ4_NL, DType::MXFP4, DType::F32})
    EXPECT_FALSE(dequantize_blocks(t, block.data(), 1, out.data())) << dtype_name(t);
}

TEST(GgufDequantize, HandlesExtremeQuants) {
  // d = 1.0 (fp16 0x3c00): the quants' full ranges come out as integers.
  uint8_t q8[34] = {0x00, 0x3c};
  q8[2] = 0x80;  // -128
  q8[3] = 0x7f;  // 127
  float out[32];
  ASSERT_TRUE(dequantize_blocks(DType::Q8_0, q8, 1, out));
  EXPECT_EQ(out[0], -128.0f);
  EXPECT_EQ(out[1], 127.0f);
  EXPECT_EQ(out[2], 0.0f);

  uint8_t q4[18] = {0x00, 0x3c};
  q4[2] = 0xf0;  // element 0: 0 - 8, element 16: 15 - 8
  ASSERT_TRUE(dequantize_blocks(DType::Q4_0, q4, 1, out));
  EXPECT_EQ(out[0], -8.0f);
  EXPECT_EQ(out[16], 7.0f);
  EXPECT_EQ(out[1], -8.0f);

  uint8_t q5[22] = {0x00, 0x3c, 0x01, 0x00, 0x00, 0x80};  // qh: bit 0 (element 0) and bit 31 (element 31)
  q5[6] = 0x0f;                                           // element 0 low nibble 15, element 16 nibble 0
  q5[6 + 15] = 0xf0;                                      // element 31 nibble 15
  ASSERT_TRUE(dequantize_blocks(DType::Q5_0, q5, 1, out));
  EXPECT_EQ(out[0], 15.0f);    // 31 - 16
  EXPECT_EQ(out[16], -16.0f);  // 0 - 16
  EXPECT_EQ(out[31], 15.0f);
  EXPECT_EQ(out[15], -16.0f);

  uint8_t q51[24] = {0x00, 0x3c, 0x00, 0xbc, 0x00, 0x00, 0x01, 0x00};  // d 1, m -1, qh bit 16 (element 16)
  q51[8] = 0x30;                                                       // element 16 nibble 3
  ASSERT_TRUE(dequantize_blocks(DType::Q5_1, q51, 1, out));
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[16], 18.0f);  // (16 | 3) - 1

  uint8_t q41[20] = {0x00, 0x40, 0x00, 0x3c};  // d 2, m 1
  q41[4] = 0x5f;
  ASSERT_TRUE(dequantize_blocks(DType::Q4_1, q41, 1, out));
  EXPECT_EQ(out[0], 31.0f);   // 15 * 2 + 1
  EXPECT_EQ(out[16], 11.0f);  // 5 * 2 + 1
}

// K-quant super-blocks built from known integer fields: per element a quant, per 16- or 32-element
// sub-block a scale (and min), per block fp16 d (and dmin). The packers below place each element by
// its own index arithmetic, in the direction of ggml's quantize_row_*_ref, so the reader's unpacking
// is checked against an independent layout; the expected floats use ggml's formulas with the same
// float operation order, so they must match bit for bit.
struct KBlockFields {
  float d = 0, dmin = 0;         // values exactly representable in fp16
  int scale[16] = {}, min[16] = {};  // Q4_K/Q5_K use the first 8 (6-bit); Q2_K 4-bit; Q3_K 6-bit biased by 32; Q6_K int8
  int q[256] = {};               // Q2_K 0..3, Q3_K -4..3, Q4_K 0..15, Q5_K 0..31, Q6_K -32..31
};

struct Lcg {
  uint64_t state;
  int next(int n) {  // uniform-ish in [0, n)
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return int((state >> 33) % uint64_t(n));
  }
};

// Random fields with the extremes forced into the first sub-block, so every bit of every field is used.
KBlockFields random_fields(uint32_t type, uint64_t seed, int block) {
  Lcg r{seed};
  KBlockFields f;
  f.d = half_to_float(float_to_half(0.0078125f * float(block + 1) + 0.0001f * float(seed % 7)));
  f.dmin = half_to_float(float_to_half(0.001953125f * float(block + 3)));
  const int scale_levels = type == ggml::Q2_K ? 16 : type == ggml::Q6_K ? 256 : 64;
  const int q_levels = type == ggml::Q2_K ? 4 : type == ggml::Q3_K ? 8 : type == ggml::Q4_K ? 16 : type == ggml::Q5_K ? 32 : 64;
  const int q_bias = type == ggml::Q3_K ? 4 : type == ggml::Q6_K ? 32 : 0;
  for (int i = 0; i < 16; ++i) {
    f.scale[i] = r.next(scale_levels) - (type == ggml::Q6_K ? 128 : 0);
    f.min[i] = r.next(scale_levels);
  }
  f.scale[0] = type == ggml::Q6_K ? -128 : scale_levels - 1;
  f.scale[1] = type == ggml::Q6_K ? 127 : 0;
  f.min[0] = type == ggml::Q6_K ? 0 : scale_levels - 1;
  for (int e = 0; e < 256; ++e) f.q[e] = r.next(q_levels) - q_bias;
  f.q[0] = -q_bias;
  f.q[1] = q_levels - 1 - q_bias;
  return f;
}

std::vector<uint8_t> pack_k_block(uint32_t type, const KBlockFields& f) {
  const uint16_t d = float_to_half(f.d), dmin = float_to_half(f.dmin);
  std::vector<uint8_t> b;
  auto put_half = [&b](size_t at, uint16_t h) {
    b[at] = uint8_t(h & 0xff);
    b[at + 1] = uint8_t(h >> 8);
  };
  switch (type) {
    case ggml::Q4_K:
    case ggml::Q5_K: {
      const bool five = type == ggml::Q5_K;
      b.assign(five ? 176 : 144, 0);
      put_half(0, d);
      put_half(2, dmin);
      uint8_t* sc = b.data() + 4;  // 6-bit scale and min of 8 sub-blocks of 32
      for (int j = 0; j < 8; ++j) {
        if (j < 4) {
          sc[j] = uint8_t(f.scale[j]);
          sc[j + 4] = uint8_t(f.min[j]);
        } else {
          sc[j + 4] = uint8_t((f.scale[j] & 0xf) | (f.min[j] & 0xf) << 4);
          sc[j - 4] |= uint8_t((f.scale[j] >> 4) << 6);
          sc[j] |= uint8_t((f.min[j] >> 4) << 6);
        }
      }
      uint8_t* qh = b.data() + 16;
      uint8_t* qs = b.data() + (five ? 48 : 16);
      for (int e = 0; e < 256; ++e) {
        // Element e: byte 32 * (e / 64) + e % 32, low nibble in the first 32 of each 64, high in the second.
        qs[32 * (e / 64) + e % 32] |= uint8_t((f.q[e] & 0xf) << (4 * ((e / 32) % 2)));
        if (five && f.q[e] >= 16) qh[e % 32] |= uint8_t(1 << (e / 32));
      }
      break;
    }
    case ggml::Q6_K: {
      b.assign(210, 0);
      for (int e = 0; e < 256; ++e) {
        const int u = f.q[e] + 32, h = e / 128, r = (e % 128) / 32, l = e % 32;
        b[size_t(64 * h + 32 * (r % 2) + l)] |= uint8_t((u & 0xf) << (4 * (r / 2)));
        b[size_t(128 + 32 * h + l)] |= uint8_t((u >> 4) << (2 * r));
      }
      for (int i = 0; i < 16; ++i) b[size_t(192 + i)] = uint8_t(int8_t(f.scale[i]));
      put_half(208, d);
      break;
    }
    case ggml::Q2_K: {
      b.assign(84, 0);
      for (int i = 0; i < 16; ++i) b[size_t(i)] = uint8_t(f.scale[i] | f.min[i] << 4);
      for (int e = 0; e < 256; ++e) b[size_t(16 + 32 * (e / 128) + e % 32)] |= uint8_t(f.q[e] << (2 * ((e % 128) / 32)));
      put_half(80, d);
      put_half(82, dmin);
      break;
    }
    case ggml::Q3_K: {
      b.assign(110, 0);
      for (int e = 0; e < 256; ++e) {
        const int u = f.q[e] + 4;  // 0..7: bit 2 to hmask, low 2 bits to qs
        if (u & 4) b[size_t(e % 32)] |= uint8_t(1 << (e / 32));
        b[size_t(32 + 32 * (e / 128) + e % 32)] |= uint8_t((u & 3) << (2 * ((e % 128) / 32)));
      }
      for (int j = 0; j < 16; ++j) {
        const int v = f.scale[j];  // biased 6-bit
        b[size_t(96 + j % 8)] |= uint8_t((v & 0xf) << (j < 8 ? 0 : 4));
        b[size_t(96 + 8 + j % 4)] |= uint8_t((v >> 4) << (2 * (j / 4)));
      }
      put_half(108, d);
      break;
    }
  }
  return b;
}

float expected_k_value(uint32_t type, const KBlockFields& f, int e) {
  switch (type) {
    case ggml::Q4_K:
    case ggml::Q5_K: return f.d * float(f.scale[e / 32]) * float(f.q[e]) - f.dmin * float(f.min[e / 32]);
    case ggml::Q6_K: return f.d * float(f.scale[e / 16]) * float(f.q[e]);
    case ggml::Q2_K: return f.d * float(f.scale[e / 16]) * float(f.q[e]) - f.dmin * float(f.min[e / 16]);
    case ggml::Q3_K: return f.d * float(f.scale[e / 16] - 32) * float(f.q[e]);
  }
  return std::numeric_limits<float>::quiet_NaN();
}

class GgufKQuantTest : public GgufTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(GgufKQuantTest, DequantisesLikeGgml) {
  const uint32_t type = GetParam();
  constexpr int kBlocks = 3;
  std::vector<uint8_t> data;
  std::vector<float> expected;
  for (int blk = 0; blk < kBlocks; ++blk) {
    const KBlockFields f = random_fields(type, 1234567u * (type + 1) + uint64_t(blk), blk);
    const std::vector<uint8_t> packed = pack_k_block(type, f);
    data.insert(data.end(), packed.begin(), packed.end());
    for (int e = 0; e < 256; ++e) expected.push_back(expected_k_value(type, f, e));
  }
  GgufSpec s;
  s.tensors = {{"k", {256, kBlocks}, type, data, {}}};
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_gguf(write(build(s)), &ws, &err)) << err.to_string();
  ASSERT_EQ(ws.tensors.size(), 1u);
  const Tensor& t = ws.tensors[0];
  EXPECT_TRUE(dtype_analysable(t.dtype)) << dtype_name(t.dtype);
  EXPECT_EQ(t.nbytes, data.size());
  const std::vector<float> got = all_floats(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(expected[i]))
        << dtype_name(t.dtype) << " element " << i << ": " << got[i] << " vs " << expected[i];
  // A block in the middle on its own.
  std::vector<float> one(256);
  ASSERT_TRUE(to_float(t, 256, 256, one.data()));
  EXPECT_TRUE(std::equal(one.begin(), one.end(), expected.begin() + 256));
  EXPECT_FALSE(to_float(t, 128, 256, one.data()));  // not on a super-block boundary
}

INSTANTIATE_TEST_SUITE_P(KQuants, GgufKQuantTest,
                         ::testing::Values(ggml::Q2_K, ggml::Q3_K, ggml::Q4_K, ggml::Q5_K, ggml::Q6_K),
                         [](const ::testing::TestParamInfo<uint32_t>& i) {
                           return std::string(i.param == ggml::Q2_K   ? "Q2_K"
                                              : i.param == ggml::Q3_K ? "Q3_K"
                                              : i.param == ggml::Q4_K ? "Q4_K"
                                              : i.param == ggml::Q5_K ? "Q5_K"
                                                                      : "Q6_K");
                         });

TEST(GgufDequantize, KQuantsAreAnalysableAndQ8KIsNot) {
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_TRUE(dtype_analysable(t)) << dtype_name(t);
  EXPECT_FALSE(dtype_analysable(DType::Q8_K));
}

TEST(GgufDequantize, KQuantHandPickedValues) {
  // Q4_K, d = 1, dmin = 0.5: sub-block 0 scale 2 min 3, sub-block 5 scale 33 min 40 (6-bit, split).
  KBlockFields f;
  f.d = 1.0f;
  f.dmin = 0.5f;
  f.scale[0] = 2;
  f.min[0] = 3;
  f.scale[5] = 33;
  f.min[5] = 40;
  f.q[0] = 15;   // 2 * 15 - 1.5
  f.q[170] = 7;  // sub-block 5: 33 * 7 - 20
  const std::vector<uint8_t> q4 = pack_k_block(ggml::Q4_K, f);
  float out[256];
  ASSERT_TRUE(dequantize_blocks(DType::Q4_K, q4.data(), 1, out));
  EXPECT_EQ(out[0], 28.5f);
  EXPECT_EQ(out[1], -1.5f);
  EXPECT_EQ(out[170], 211.0f);
  EXPECT_EQ(out[160], -20.0f);
  EXPECT_EQ(out[32], 0.0f);
  // Q6_K, d = 0.25: scale -2 on sub-block 15, quant -32 and 31.
  KBlockFields g;
  g.d = 0.25f;
  g.scale[15] = -2;
  g.q[255] = -32;
  g.q[254] = 31;
  const std::vector<uint8_t> q6 = pack_k_block(ggml::Q6_K, g);
  ASSERT_TRUE(dequantize_blocks(DType::Q6_K, q6.data(), 1, out));
  EXPECT_EQ(out[255], 16.0f);
  EXPECT_EQ(out[254], -15.5f);
  EXPECT_EQ(out[0], -0.0f);
}

}  // namespace
}  // namespace evald::prov
