// The safetensors reader: a small writer in this file builds valid files (every dtype of the spec,
// empty and scalar tensors, padded headers, metadata) and deliberately broken ones, one per rule,
// each checked for its rule id, the byte offset of the offending field and a message naming it.
// Sharded models are checked the same way through their model.safetensors.index.json.
#include "weights.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evald::prov {
namespace {

namespace fs = std::filesystem;

// Little-endian bytes of some values (the reader, like the format, assumes a little-endian host).
template <typename T>
std::string le(const std::vector<T>& values) {
  std::string out;
  for (T v : values) {
    char raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof v);
    out.append(raw, sizeof raw);
  }
  return out;
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// One tensor entry of a header.
struct Entry {
  std::string name, dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;
};

std::string entry_json(const Entry& e) {
  std::string s = "\"" + e.name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":[";
  for (size_t i = 0; i < e.shape.size(); ++i) s += (i ? "," : "") + std::to_string(e.shape[i]);
  return s + "],\"data_offsets\":[" + std::to_string(e.begin) + "," + std::to_string(e.end) + "]}";
}

// A safetensors file: 8-byte little-endian header length, header, data. Every field can lie.
struct Spec {
  std::vector<Entry> entries;
  std::string metadata;                // raw JSON value of __metadata__; empty: no such key
  std::string data;                    // the data section
  std::string raw_header;              // replaces the generated header when not empty
  size_t align = 8;                    // the header is padded with spaces to a multiple of this
  std::optional<uint64_t> header_len;  // the length field, when it must not tell the truth

  std::string header() const {
    std::string h = raw_header;
    if (h.empty()) {
      h = "{";
      if (!metadata.empty()) h += "\"__metadata__\":" + metadata;
      for (const Entry& e : entries) h += (h.size() > 1 ? "," : "") + entry_json(e);
      h += "}";
    }
    while (h.size() % align != 0) h += ' ';
    return h;
  }
  std::string bytes() const {
    const std::string h = header();
    return le<uint64_t>({header_len.value_or(h.size())}) + h + data;
  }
  // Absolute file offset of the first occurrence of `needle` in the header.
  uint64_t at(std::string_view needle) const {
    size_t p = header().find(needle);
    EXPECT_NE(p, std::string::npos) << needle;
    return 8 + p;
  }
  // Absolute file offset of tensor `name`'s entry object.
  uint64_t entry_at(const std::string& name) const { return at("\"" + name + "\":{") + name.size() + 3; }
};

// Two F32 tensors, a [2] then b [2,2]: the base the malformed files change one thing of.
Spec two_tensors() {
  Spec s;
  s.entries = {{"a", "F32", {2}, 0, 8}, {"b", "F32", {2, 2}, 8, 24}};
  s.data = le<float>({1, 2, 3, 4, 5, 6});
  return s;
}

const Tensor* find_tensor(const WeightSet& ws, const std::string& name) {
  for (const Tensor& t : ws.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<float> floats(const Tensor& t) {
  std::vector<float> out(t.numel());
  EXPECT_TRUE(to_float(t, 0, out.size(), out.data())) << t.name;
  return out;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("safetensors_test_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& bytes, const std::string& name = "model.safetensors") {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return path;
  }

  WeightSet read(const Spec& s) {
    WeightSet ws;
    FormatError err;
    EXPECT_TRUE(read_safetensors(write(s.bytes()), &ws, &err)) << err.to_string();
    return ws;
  }

  // Reads a file that must be refused; checks rule, offset (none when the right one is not
  // unique) and file, that the message names `named`, and that the output is left alone.
  FormatError refused(const std::string& bytes, const std::string& rule, std::optional<uint64_t> offset, const std::string& named = "") {
    const std::string path = write(bytes);
    WeightSet ws;
    ws.format = "untouched";
    ws.metadata["keep"] = "me";
    FormatError err;
    EXPECT_FALSE(read_safetensors(path, &ws, &err));
    EXPECT_EQ(err.rule, rule) << err.to_string();
    if (offset) {
      EXPECT_EQ(err.offset, *offset) << err.to_string();
    }
    EXPECT_EQ(err.file, path);
    EXPECT_FALSE(err.message.empty());
    EXPECT_NE(err.message.find(named), std::string::npos) << err.message;  // "" is found anywhere
    EXPECT_EQ(ws.format, "untouched");
    EXPECT_EQ(ws.metadata.size(), 1u);
    EXPECT_TRUE(ws.tensors.empty());
    return err;
  }
  FormatError refused(const Spec& s, const std::string& rule, std::optional<uint64_t> offset, const std::string& named = "") {
    return refused(s.bytes(), rule, offset, named);
  }

  fs::path dir_;
};

// --- valid files ---

TEST_F(SafetensorsTest, ReadsNamesShapesOffsetsAndMetadata) {
  Spec s = two_tensors();
  s.metadata = R"({"format":"pt","note":"caf\u00e9 \u2603"})";
  const std::string path = write(s.bytes());
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_safetensors(path, &ws, &err)) << err.to_string();
  EXPECT_EQ(ws.format, "safetensors");
  EXPECT_EQ(ws.files, std::vector<std::string>{path});
  EXPECT_EQ(ws.total_bytes, s.bytes().size());
  EXPECT_EQ(ws.metadata.size(), 2u);
  EXPECT_EQ(ws.metadata["format"], "pt");
  EXPECT_EQ(ws.metadata["note"], "caf\xc3\xa9 \xe2\x98\x83");
  ASSERT_EQ(ws.tensors.size(), 2u);
  const uint64_t data_start = 8 + s.header().size();
  const Tensor& a = ws.tensors[0];
  const Tensor& b = ws.tensors[1];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{2}));
  EXPECT_EQ(a.file_offset, data_start);
  EXPECT_EQ(a.nbytes, 8u);
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(b.file_offset, data_start + 8);
  EXPECT_EQ(b.nbytes, 16u);
  EXPECT_EQ(b.rows(), 2u);
  EXPECT_EQ(b.cols(), 2u);
  for (const Tensor& t : ws.tensors) {
    ASSERT_TRUE(t.file);
    EXPECT_EQ(t.data, t.file->data() + t.file_offset);
    EXPECT_EQ(t.file->path(), path);
    EXPECT_EQ(t.file->size(), ws.total_bytes);
  }
  EXPECT_EQ(floats(a), (std::vector<float>{1, 2}));
  EXPECT_EQ(floats(b), (std::vector<float>{3, 4, 5, 6}));
}

TEST_F(SafetensorsTest, TensorsComeBackSortedByNameWhateverTheHeaderOrder) {
  Spec s;
  // Header order, name order and offset order all differ.
  s.entries = {{"m", "U8", {1}, 2, 3}, {"z", "U8", {2}, 0, 2}, {"a", "U8", {1}, 3, 4}};
  s.data = "\x01\x02\x03\x04";
  WeightSet ws = read(s);
  ASSERT_EQ(ws.tensors.size(), 3u);
  EXPECT_EQ(ws.tensors[0].name, "a");
  EXPECT_EQ(ws.tensors[1].name, "m");
  EXPECT_EQ(ws.tensors[2].name, "z");
  EXPECT_EQ(floats(ws.tensors[0]), std::vector<float>{4});
  EXPECT_EQ(floats(ws.tensors[1]), std::vector<float>{3});
  EXPECT_EQ(floats(ws.tensors[2]), (std::vector<float>{1, 2}));
}

TEST_F(SafetensorsTest, RecognisesEveryDtypeOfTheSpec) {
  struct Case {
    const char* name;
    DType dtype;
    uint64_t elems, bytes;
  };
  // Sub-byte types need element counts that fill whole bytes.
  const Case cases[] = {
      {"BOOL", DType::BOOL, 3, 3},       {"U8", DType::U8, 3, 3},           {"I8", DType::I8, 3, 3},
      {"U16", DType::U16, 3, 6},         {"I16", DType::I16, 3, 6},         {"U32", DType::U32, 3, 12},
      {"I32", DType::I32, 3, 12},        {"U64", DType::U64, 3, 24},        {"I64", DType::I64, 3, 24},
      {"F16", DType::F16, 3, 6},         {"BF16", DType::BF16, 3, 6},       {"F32", DType::F32, 3, 12},
      {"F64", DType::F64, 3, 24},        {"F8_E4M3", DType::F8_E4M3, 3, 3}, {"F8_E5M2", DType::F8_E5M2, 3, 3},
      {"F8_E8M0", DType::F8_E8M0, 3, 3}, {"F4", DType::F4, 6, 3},           {"F6_E2M3", DType::F6_E2M3, 4, 3},
      {"F6_E3M2", DType::F6_E3M2, 4, 3}, {"C64", DType::C64, 3, 24},
  };
  Spec s;
  uint64_t at = 0;
  for (const Case& c : cases) {
    s.entries.push_back({std::string("t_") + c.name, c.name, {c.elems}, at, at + c.bytes});
    at += c.bytes;
  }
  s.data.assign(at, '\0');
  WeightSet ws = read(s);
  ASSERT_EQ(ws.tensors.size(), std::size(cases));
  for (const Case& c : cases) {
    const Tensor* t = find_tensor(ws, std::string("t_") + c.name);
    ASSERT_NE(t, nullptr) << c.name;
    EXPECT_EQ(t->dtype, c.dtype) << c.name;
    EXPECT_STREQ(dtype_name(t->dtype), c.name);
    EXPECT_EQ(t->nbytes, c.bytes) << c.name;
    EXPECT_EQ(t->numel(), c.elems) << c.name;
  }
}

TEST_F(SafetensorsTest, HeaderMayBePaddedWithTrailingWhitespace) {
  Spec s = two_tensors();
  s.align = 64;  // many trailing spaces
  WeightSet ws = read(s);
  EXPECT_EQ(ws.tensors.size(), 2u);
  EXPECT_EQ(ws.tensors[0].file_offset, 8 + s.header().size());

  // Any JSON whitespace, as the reference's serde_json allows.
  s.align = 1;
  s.raw_header = s.header() + " \t\r\n  ";
  ws = read(s);
  EXPECT_EQ(ws.tensors.size(), 2u);
}

TEST_F(SafetensorsTest, ReadsEmptyAndScalarTensors) {
  Spec s;
  // Zero-size tensors take no bytes: they may share an offset with the tensor after them.
  s.entries = {{"empty", "F32", {0, 4}, 0, 0}, {"scalar", "F32", {}, 0, 4}, {"tail", "BF16", {3, 0}, 4, 4}};
  s.data = le<float>({2.5f});
  WeightSet ws = read(s);
  ASSERT_EQ(ws.tensors.size(), 3u);
  const Tensor* empty = find_tensor(ws, "empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0u);
  EXPECT_EQ(empty->nbytes, 0u);
  EXPECT_EQ(empty->shape, (std::vector<uint64_t>{0, 4}));
  float dummy = -1;
  EXPECT_TRUE(to_float(*empty, 0, 0, &dummy));
  EXPECT_EQ(dummy, -1);
  const Tensor* scalar = find_tensor(ws, "scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numel(), 1u);
  EXPECT_EQ(scalar->rows(), 1u);
  EXPECT_EQ(floats(*scalar), std::vector<float>{2.5f});
  const Tensor* tail = find_tensor(ws, "tail");
  ASSERT_NE(tail, nullptr);
  EXPECT_EQ(tail->nbytes, 0u);
  EXPECT_EQ(tail->file_offset, ws.total_bytes);  // one past the end, never read
}

TEST_F(SafetensorsTest, ReadsAFileWithoutTensors) {
  Spec s;
  s.metadata = R"({"k":"v"})";
  WeightSet ws = read(s);
  EXPECT_TRUE(ws.tensors.empty());
  EXPECT_EQ(ws.metadata.at("k"), "v");
  Spec bare;
  EXPECT_TRUE(read(bare).tensors.empty());  // the reference writes "{}" padded with 6 spaces
}

TEST_F(SafetensorsTest, IgnoresUnknownFieldsOfATensorEntry) {
  Spec s;
  s.raw_header = R"({"t":{"data_offsets":[0,2],"extra":{"x":[1,2]},"shape":[2],"dtype":"U8"}})";
  s.data = "\x07\x09";
  WeightSet ws = read(s);
  ASSERT_EQ(ws.tensors.size(), 1u);
  EXPECT_EQ(floats(ws.tensors[0]), (std::vector<float>{7, 9}));
}

// --- to_float ---

struct Decoded {
  WeightSet ws;
  std::vector<float> v;
  const Tensor& t() const { return ws.tensors.at(0); }
};

class ToFloatTest : public SafetensorsTest {
 protected:
  // A file with one tensor `x` of `dtype` holding `raw`.
  Decoded decode(const std::string& dtype, uint64_t elems, const std::string& raw) {
    Spec s;
    s.entries = {{"x", dtype, {elems}, 0, raw.size()}};
    s.data = raw;
    Decoded d;
    d.ws = read(s);
    if (d.ws.tensors.size() == 1) d.v = floats(d.t());
    return d;
  }
  static void expect_values(const std::vector<float>& got, const std::vector<float>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << "element " << i << " is " << got[i];
      } else {
        EXPECT_EQ(bits(got[i]), bits(want[i])) << "element " << i << ": " << got[i] << " != " << want[i];
      }
    }
  }
};

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST_F(ToFloatTest, F32IsCopiedBitForBit) {
  const std::vector<float> v = {1.5f, -0.0f, kInf, -kInf, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()};
  expect_values(decode("F32", v.size(), le(v)).v, v);
  // A NaN keeps its payload.
  Decoded n = decode("F32", 1, le<uint32_t>({0x7fc01234u}));
  ASSERT_EQ(n.v.size(), 1u);
  EXPECT_EQ(bits(n.v[0]), 0x7fc01234u);
}

TEST_F(ToFloatTest, F16IncludingSubnormalsInfinitiesAndNaN) {
  Decoded d = decode("F16", 11, le<uint16_t>({0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555}));
  expect_values(d.v, {1.0f, -2.0f, std::ldexp(1.0f, -24), std::ldexp(1023.0f, -24), std::ldexp(1.0f, -14), 65504.0f, kInf, -kInf,
                      kNaN, -0.0f, 0.333251953125f});
}

TEST_F(ToFloatTest, BF16IncludingSubnormalsInfinitiesAndNaN) {
  Decoded d = decode("BF16", 8, le<uint16_t>({0x3f80, 0xc040, 0x0001, 0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0x8000}));
  expect_values(d.v, {1.0f, -3.0f, std::ldexp(1.0f, -133), std::ldexp(255.0f, 120), kInf, -kInf, kNaN, -0.0f});
}

TEST_F(ToFloatTest, F8E4M3IsTheFiniteOcpVariant) {
  // E4M3FN: bias 7, no infinities; S.1111.111 is NaN, S.1111.000..110 are finite up to 448.
  Decoded d = decode("F8_E4M3", 11, std::string("\x38\xb8\x7e\x78\x7f\xff\x01\x07\x08\x80\x00", 11));
  expect_values(d.v, {1.0f, -1.0f, 448.0f, 256.0f, kNaN, kNaN, std::ldexp(1.0f, -9), std::ldexp(7.0f, -9), std::ldexp(1.0f, -6), -0.0f, 0.0f});
}

TEST_F(ToFloatTest, F8E5M2IsTheTopByteOfAnF16) {
  Decoded d = decode("F8_E5M2", 9, std::string("\x3c\xc0\x7b\x7c\xfc\x7d\x01\x04\x80", 9));
  expect_values(d.v, {1.0f, -2.0f, 57344.0f, kInf, -kInf, kNaN, std::ldexp(1.0f, -16), std::ldexp(1.0f, -14), -0.0f});
}

TEST_F(ToFloatTest, F8E8M0IsAPowerOfTwo) {
  Decoded d = decode("F8_E8M0", 5, std::string("\x7f\x80\x00\xfe\xff", 5));
  expect_values(d.v, {1.0f, 2.0f, std::ldexp(1.0f, -127), std::ldexp(1.0f, 127), kNaN});
}

TEST_F(ToFloatTest, Integers) {
  expect_values(decode("I8", 4, std::string("\x80\xff\x00\x7f", 4)).v, {-128, -1, 0, 127});
  expect_values(decode("U8", 3, std::string("\x00\x80\xff", 3)).v, {0, 128, 255});
  expect_values(decode("BOOL", 2, std::string("\x00\x01", 2)).v, {0, 1});
  expect_values(decode("I16", 2, le<int16_t>({-32768, 32767})).v, {-32768, 32767});
  expect_values(decode("U16", 2, le<uint16_t>({0, 65535})).v, {0, 65535});
  expect_values(decode("I32", 3, le<int32_t>({std::numeric_limits<int32_t>::min(), -1, 123456})).v, {-2147483648.0f, -1, 123456});
  expect_values(decode("U32", 1, le<uint32_t>({4000000000u})).v, {4e9f});
  expect_values(decode("I64", 3, le<int64_t>({-(int64_t(1) << 40), std::numeric_limits<int64_t>::min(), 7})).v,
                {-1099511627776.0f, -9223372036854775808.0f, 7});
  expect_values(decode("U64", 1, le<uint64_t>({uint64_t(1) << 63})).v, {9223372036854775808.0f});
}

TEST_F(ToFloatTest, F64RoundsToFloat) {
  Decoded d = decode("F64", 7, le<double>({0.1, -0.0, 1e300, -1e300, 5e-324, std::numeric_limits<double>::quiet_NaN(), -2.5}));
  expect_values(d.v, {0.1f, -0.0f, kInf, -kInf, 0.0f, kNaN, -2.5f});
}

TEST_F(ToFloatTest, ConvertsAnyInRangeSliceAndRefusesOthers) {
  Decoded d = decode("I16", 5, le<int16_t>({10, 20, 30, 40, 50}));
  ASSERT_EQ(d.ws.tensors.size(), 1u);
  float out[5] = {};
  ASSERT_TRUE(to_float(d.t(), 1, 3, out));
  EXPECT_EQ(out[0], 20);
  EXPECT_EQ(out[2], 40);
  EXPECT_TRUE(to_float(d.t(), 5, 0, out));
  EXPECT_FALSE(to_float(d.t(), 6, 0, out));
  EXPECT_FALSE(to_float(d.t(), 4, 2, out));
  EXPECT_FALSE(to_float(d.t(), 1, UINT64_MAX, out));  // first + count wraps around
}

TEST_F(ToFloatTest, RefusesTypesItCannotConvert) {
  const Entry entries[] = {{"x", "F4", {2}, 0, 1}, {"x", "F6_E2M3", {4}, 0, 3}, {"x", "F6_E3M2", {4}, 0, 3}, {"x", "C64", {1}, 0, 8}};
  for (const Entry& e : entries) {
    Spec s;
    s.entries = {e};
    s.data.assign(e.end, '\x11');
    WeightSet ws = read(s);
    ASSERT_EQ(ws.tensors.size(), 1u) << e.dtype;
    EXPECT_FALSE(dtype_analysable(ws.tensors[0].dtype)) << e.dtype;
    float out[4];
    EXPECT_FALSE(to_float(ws.tensors[0], 0, 1, out)) << e.dtype;
  }
}

// --- one test per rule ---

TEST_F(SafetensorsTest, RuleOpen) {
  WeightSet ws;
  FormatError err;
  const std::string path = (dir_ / "absent.safetensors").string();
  EXPECT_FALSE(read_safetensors(path, &ws, &err));
  EXPECT_EQ(err.rule, "open");
  EXPECT_EQ(err.file, path);
  EXPECT_FALSE(read_safetensors(dir_.string(), &ws, &err));  // a directory is not a weight file
  EXPECT_EQ(err.rule, "open");
  EXPECT_NE(err.message.find("regular file"), std::string::npos) << err.message;
}

// A FIFO planted as a weight file must be refused, not waited on for a writer that never comes.
TEST_F(SafetensorsTest, RuleOpenRefusesAFifoWithoutBlocking) {
  const std::string path = (dir_ / "model.safetensors").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto result = std::async(std::launch::async, [&] {
    WeightSet ws;
    FormatError err;
    const bool ok = read_safetensors(path, &ws, &err);
    return std::pair(ok, err);
  });
  const bool returned = result.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "read_safetensors blocked opening a FIFO";
  if (!returned) {
    // Open the other end so that the blocked open() returns and the test can finish.
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  const auto [ok, err] = result.get();
  EXPECT_FALSE(ok);
  EXPECT_EQ(err.rule, "open");
  EXPECT_EQ(err.file, path);
}

TEST_F(SafetensorsTest, ErrorTextNamesFileOffsetAndRule) {
  Spec s = two_tensors();
  s.data += "x";
  const FormatError err = refused(s, "file-length", s.bytes().size() - 1);
  EXPECT_EQ(err.to_string(), (dir_ / "model.safetensors").string() + ": offset " + std::to_string(err.offset) + ": " + err.message +
                                 " [rule file-length]");
}

TEST_F(SafetensorsTest, RuleHeaderTooSmall) {
  refused("", "header-too-small", 0, "0 bytes");
  refused(std::string("\x02\0\0\0\0\0\0", 7), "header-too-small", 0, "7 bytes");
}

TEST_F(SafetensorsTest, RuleHeaderTooLarge) {
  // Checked before the length is compared with the file: a huge claim in a tiny file.
  Spec s = two_tensors();
  s.header_len = 100'000'001;
  refused(s, "header-too-large", 0, "100000001");
  s.header_len = UINT64_MAX;
  refused(s, "header-too-large", 0, "18446744073709551615");
}

TEST_F(SafetensorsTest, HeaderOfExactlyTheLimitPassesTheSizeRule) {
  // 100,000,000 itself passes the size rule; the file is then too short for it.
  Spec s = two_tensors();
  s.header_len = 100'000'000;
  refused(s, "header-length", 0, "100000000");
}

TEST_F(SafetensorsTest, RuleHeaderLength) {
  Spec s = two_tensors();
  s.header_len = s.header().size() + s.data.size() + 1;  // one byte past the end
  refused(s, "header-length", 0, std::to_string(*s.header_len));
  s.data.clear();
  s.header_len = s.header().size() + 1;
  refused(s, "header-length", 0);
}

TEST_F(SafetensorsTest, RuleHeaderStart) {
  Spec s = two_tensors();
  s.header_len = 0;  // an empty header, the data read as nothing
  refused(s, "header-start", 8);
  // The spec: the header MUST begin with '{'. (The reference implementation does not check it yet
  // and lets serde_json skip leading whitespace.)
  s = two_tensors();
  s.raw_header = " " + s.header();
  refused(s, "header-start", 8, "'{'");
}

TEST_F(SafetensorsTest, RuleHeaderJson) {
  Spec s = two_tensors();
  s.raw_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":})";
  refused(s, "header-json", s.at("\"b\":") + 4, "JSON");
  // Bytes after the object that are not whitespace.
  s.raw_header = "{}x";
  refused(s, "header-json", 10);
  // Invalid UTF-8 inside a name, at the offending byte.
  s.raw_header = "{\"a\xff\":{}}";
  refused(s, "header-json", 11, "UTF-8");
  // NUL padding is not whitespace.
  s.raw_header = std::string("{}\0\0\0\0\0\0", 8);
  refused(s, "header-json", 10);
}

TEST_F(SafetensorsTest, RuleHeaderJsonRefusesDuplicateKeys) {
  Spec s = two_tensors();
  s.entries[1].name = "a";
  s.entries[1].shape = {2};
  s.entries[1].end = 16;
  // The second "a" key, where the JSON parser stops.
  const uint64_t second = 8 + s.header().find("\"a\"", 2);
  refused(s, "header-json", second, "duplicate key \"a\"");
  Spec m;
  m.raw_header = R"({"__metadata__":{"k":"1","k":"2"}})";
  refused(m, "header-json", m.at("\"k\":\"2\""), "\"k\"");
}

TEST_F(SafetensorsTest, RuleMetadata) {
  Spec s = two_tensors();
  s.metadata = R"(["pt"])";
  refused(s, "metadata", s.at("[\"pt\"]"), "__metadata__");
  // The reference (serde Option) would take null for "no metadata"; the rule is a map of strings.
  s.metadata = "null";
  refused(s, "metadata", s.at("null"), "null");
  s.metadata = R"({"format":"pt","epochs":3})";
  refused(s, "metadata", s.at("3"), "\"epochs\"");
  s.metadata = R"({"nested":{"a":"b"}})";
  refused(s, "metadata", s.at("{\"a\""), "\"nested\"");
}

TEST_F(SafetensorsTest, RuleTensorInfo) {
  Spec s = two_tensors();
  s.raw_header = R"({"a":[0,8]})";
  refused(s, "tensor-info", s.at("["), "\"a\"");
  s.raw_header = R"({"a":{"shape":[2],"data_offsets":[0,8]}})";
  refused(s, "tensor-info", s.entry_at("a"), "\"dtype\"");
  s.raw_header = R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})";
  refused(s, "tensor-info", s.entry_at("a"), "\"dtype\"");
  s.raw_header = R"({"a":{"dtype":"F32","data_offsets":[0,8]}})";
  refused(s, "tensor-info", s.entry_at("a"), "\"shape\"");
  s.raw_header = R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})";
  refused(s, "tensor-info", s.entry_at("a"), "\"shape\"");
  s.raw_header = R"({"a":{"dtype":"F32","shape":[2]}})";
  refused(s, "tensor-info", s.entry_at("a"), "data_offsets");
  s.raw_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})";
  refused(s, "tensor-info", s.entry_at("a"), "data_offsets");
  s.raw_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":{"begin":0,"end":8}}})";
  refused(s, "tensor-info", s.entry_at("a"), "data_offsets");
}

TEST_F(SafetensorsTest, RuleTensorInfoShapeAndOffsetsAreNonNegativeIntegers) {
  Spec s = two_tensors();
  for (const char* bad : {"-2", "2.0", "2e0", "\"2\"", "null", "18446744073709551616"}) {
    s.raw_header = std::string(R"({"a":{"dtype":"F32","shape":[1,)") + bad + R"(],"data_offsets":[0,8]}})";
    refused(s, "tensor-info", s.at(bad), "shape");
  }
  for (const char* bad : {"-0", "0.0", "\"0\""}) {
    s.raw_header = std::string(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[)") + bad + R"(,8]}})";
    refused(s, "tensor-info", s.at("[" + std::string(bad)), "data_offsets");
  }
}

TEST_F(SafetensorsTest, RuleDtype) {
  Spec s = two_tensors();
  s.entries[1].dtype = "F128";
  refused(s, "dtype", s.at("\"F128\""), "\"b\"");
  s.entries[1].dtype = "f32";  // names are case-sensitive, as in the reference
  refused(s, "dtype", s.at("\"f32\""), "\"f32\"");
  s.entries[1].dtype = "Q4_0";  // a GGUF type, not a safetensors one
  refused(s, "dtype", s.at("\"Q4_0\""), "Q4_0");
}

TEST_F(SafetensorsTest, RuleOffsetsOverlap) {
  Spec s = two_tensors();
  s.entries[1].begin = 4;
  s.entries[1].end = 20;
  refused(s, "offsets-overlap", s.entry_at("b"), "\"b\"");
  // The same range twice.
  s = two_tensors();
  s.entries[1] = {"b", "F32", {2}, 0, 8};
  s.data.resize(8);
  const FormatError err = refused(s, "offsets-overlap", std::nullopt, "expected 8");
  // The sort by offsets leaves the two equal ranges in either order: the error names one of them.
  EXPECT_TRUE(err.offset == s.entry_at("a") || err.offset == s.entry_at("b")) << err.offset;
}

TEST_F(SafetensorsTest, RuleOffsetsHole) {
  Spec s = two_tensors();
  s.entries[1].begin = 12;
  s.entries[1].end = 28;
  s.data += "1234";
  refused(s, "offsets-hole", s.entry_at("b"), "\"b\"");
  // The first tensor must start at 0.
  s = two_tensors();
  s.entries = {{"a", "F32", {2}, 4, 12}};
  s.data.resize(12);
  refused(s, "offsets-hole", s.entry_at("a"), "expected 0");
}

TEST_F(SafetensorsTest, RuleOffsetsOrder) {
  Spec s = two_tensors();
  s.entries[1].end = 4;  // [8, 4]
  refused(s, "offsets-order", s.entry_at("b"), "\"b\"");
}

TEST_F(SafetensorsTest, RuleSizeOverflow) {
  Spec s = two_tensors();
  s.entries = {{"a", "F32", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0}};  // 2^64 elements
  s.data.clear();
  refused(s, "size-overflow", s.entry_at("a"), "\"a\"");
  s.entries = {{"a", "F32", {uint64_t(1) << 62}, 0, 0}};  // 2^62 elements fit, their 2^67 bits do not
  refused(s, "size-overflow", s.entry_at("a"), "bits");
  // An overflow part way through the shape counts even when a later dimension is 0, as in the
  // reference's checked_mul fold.
  s.entries = {{"a", "U8", {uint64_t(1) << 63, 4, 0}, 0, 0}};
  refused(s, "size-overflow", s.entry_at("a"), "\"a\"");
}

TEST_F(SafetensorsTest, RuleMisalignedSlice) {
  Spec s;
  s.entries = {{"f4", "F4", {3}, 0, 2}};  // 12 bits
  s.data = "ab";
  refused(s, "misaligned-slice", s.entry_at("f4"), "\"f4\"");
  s.entries = {{"f6", "F6_E3M2", {2, 3}, 0, 5}};  // 36 bits
  s.data = "abcde";
  refused(s, "misaligned-slice", s.entry_at("f6"), "F6_E3M2");
}

TEST_F(SafetensorsTest, RuleSizeMismatch) {
  Spec s = two_tensors();
  s.entries[1].shape = {2, 3};  // 24 bytes, but the offsets span 16
  refused(s, "size-mismatch", s.entry_at("b"), "\"b\"");
  s = two_tensors();
  s.entries[0].dtype = "F16";  // 4 bytes, but 8
  refused(s, "size-mismatch", s.entry_at("a"), "needs 4");
}

TEST_F(SafetensorsTest, RuleDataBounds) {
  Spec s = two_tensors();
  s.data.resize(20);  // b ends at 24
  refused(s, "data-bounds", s.entry_at("b"), "\"b\"");
}

TEST_F(SafetensorsTest, RuleFileLength) {
  Spec s = two_tensors();
  s.data += "tail";  // bytes no tensor covers
  refused(s, "file-length", 8 + s.header().size() + 24, "8 + header + tensor data");
  Spec empty;
  empty.data = "x";
  refused(empty, "file-length", 8 + empty.header().size());
}

// --- sharded models ---

class ShardedTest : public SafetensorsTest {
 protected:
  // Writes shard 1 (a, b) and shard 2 (c) and returns the index path for `index`.
  std::string model(const std::string& index) {
    Spec s1 = two_tensors();
    Spec s2;
    s2.entries = {{"c", "I8", {3}, 0, 3}};
    s2.data = "\x01\xfe\x03";
    s2.metadata = R"({"format":"pt"})";
    write(s1.bytes(), "model-00001-of-00002.safetensors");
    write(s2.bytes(), "model-00002-of-00002.safetensors");
    return write(index, "model.safetensors.index.json");
  }

  FormatError refused(const std::string& index, const std::string& rule, uint64_t offset, const std::string& named) {
    const std::string path = model(index);
    WeightSet ws;
    ws.format = "untouched";
    FormatError err;
    EXPECT_FALSE(read_safetensors_index(path, &ws, &err));
    EXPECT_EQ(err.rule, rule) << err.to_string();
    EXPECT_EQ(err.offset, offset) << err.to_string();
    EXPECT_EQ(err.file, path);
    EXPECT_NE(err.message.find(named), std::string::npos) << err.message;
    EXPECT_EQ(ws.format, "untouched");
    EXPECT_TRUE(ws.tensors.empty());
    return err;
  }

  static constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char* kShard2 = "model-00002-of-00002.safetensors";
};

const std::string kIndex = R"({
  "metadata": {"total_size": 27},
  "weight_map": {
    "a": "model-00001-of-00002.safetensors",
    "b": "model-00001-of-00002.safetensors",
    "c": "model-00002-of-00002.safetensors"
  }
})";

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

TEST_F(ShardedTest, ReadsATwoShardModel) {
  const std::string path = model(kIndex);
  WeightSet ws;
  FormatError err;
  ASSERT_TRUE(read_safetensors_index(path, &ws, &err)) << err.to_string();
  EXPECT_EQ(ws.format, "safetensors");
  ASSERT_EQ(ws.tensors.size(), 3u);
  EXPECT_EQ(ws.tensors[0].name, "a");
  EXPECT_EQ(ws.tensors[1].name, "b");
  EXPECT_EQ(ws.tensors[2].name, "c");
  EXPECT_EQ(ws.tensors[0].file->path(), (dir_ / kShard1).string());
  EXPECT_EQ(ws.tensors[2].file->path(), (dir_ / kShard2).string());
  EXPECT_EQ(floats(ws.tensors[2]), (std::vector<float>{1, -2, 3}));
  EXPECT_EQ(ws.files, (std::vector<std::string>{(dir_ / kShard1).string(), (dir_ / kShard2).string()}));
  EXPECT_EQ(ws.total_bytes, fs::file_size(dir_ / kShard1) + fs::file_size(dir_ / kShard2));
  EXPECT_EQ(ws.metadata.at("format"), "pt");
}

TEST_F(ShardedTest, TotalSizeIsOptional) {
  const std::string path = model(replaced(kIndex, R"("metadata": {"total_size": 27},)", ""));
  WeightSet ws;
  FormatError err;
  EXPECT_TRUE(read_safetensors_index(path, &ws, &err)) << err.to_string();
  EXPECT_EQ(ws.tensors.size(), 3u);
}

TEST_F(ShardedTest, ShardErrorsNameTheShard) {
  model(kIndex);
  Spec bad = two_tensors();
  bad.data += "x";
  write(bad.bytes(), kShard1);
  WeightSet ws;
  FormatError err;
  EXPECT_FALSE(read_safetensors_index((dir_ / "model.safetensors.index.json").string(), &ws, &err));
  EXPECT_EQ(err.rule, "file-length");
  EXPECT_EQ(err.file, (dir_ / kShard1).string());

  write(two_tensors().bytes(), kShard1);
  fs::remove(dir_ / kShard2);
  EXPECT_FALSE(read_safetensors_index((dir_ / "model.safetensors.index.json").string(), &ws, &err));
  EXPECT_EQ(err.rule, "open");
  EXPECT_EQ(err.file, (dir_ / kShard2).string());
}

TEST_F(ShardedTest, RuleIndexJson) {
  const std::string trailing_comma = R"({"weight_map": {"a": "x.safetensors",}})";
  refused(trailing_comma, "index-json", trailing_comma.find(",}") + 1, "JSON");
  const std::string duplicate = R"({"weight_map": {}, "weight_map": {}})";
  refused(duplicate, "index-json", duplicate.rfind("\"weight_map\""), "duplicate key");
}

TEST_F(ShardedTest, RuleIndexWeightMap) {
  refused(R"({"metadata": {}})", "index-weight-map", 0, "weight_map");
  refused(R"({"weight_map": ["a"]})", "index-weight-map", 0, "weight_map");
  refused(R"(["weight_map"])", "index-weight-map", 0, "weight_map");
  const std::string not_a_name = R"({"weight_map": {"a": 1}})";
  refused(not_a_name, "index-weight-map", not_a_name.find('1'), "\"a\"");
}

TEST_F(ShardedTest, RuleIndexShardName) {
  for (const char* bad : {"../model-00001-of-00002.safetensors", "sub/x.safetensors", "a\\\\b.safetensors", "", ".", ".."}) {
    const std::string index = std::string(R"({"weight_map": {"a": ")") + bad + "\"}}";
    refused(index, "index-shard-name", index.find(": \"") + 2, "\"a\"");
  }
}

// A NUL would cut the path short: "a.safetensors\0x" must not read a.safetensors.
TEST_F(ShardedTest, RuleIndexShardNameRefusesControlCharacters) {
  for (const char* bad : {"model-00002-of-00002.safetensors\\u0000.bak", "model-00002-of-00002.safetensors\\n"}) {
    const std::string index = replaced(kIndex, "\"c\": \"model-00002-of-00002.safetensors\"", std::string("\"c\": \"") + bad + "\"");
    refused(index, "index-shard-name", index.find(bad) - 1, "\"c\"");
  }
}

TEST_F(ShardedTest, RuleIndexMissingTensor) {
  // Shard 1 holds b, which the index does not list.
  refused(replaced(kIndex, R"("b": "model-00001-of-00002.safetensors",)", ""), "index-missing-tensor", 0, "\"b\"");
}

TEST_F(ShardedTest, RuleIndexDuplicateTensor) {
  model(kIndex);
  // Shard 2 holds a copy of a as well as c.
  Spec s2;
  s2.entries = {{"a", "F32", {2}, 0, 8}, {"c", "I8", {3}, 8, 11}};
  s2.data = le<float>({1, 2}) + "\x01\x02\x03";
  write(s2.bytes(), kShard2);
  WeightSet ws;
  FormatError err;
  EXPECT_FALSE(read_safetensors_index((dir_ / "model.safetensors.index.json").string(), &ws, &err));
  EXPECT_EQ(err.rule, "index-duplicate-tensor") << err.to_string();
  EXPECT_NE(err.message.find("\"a\""), std::string::npos) << err.message;
  EXPECT_NE(err.message.find(kShard1), std::string::npos) << err.message;
  EXPECT_NE(err.message.find(kShard2), std::string::npos) << err.message;
}

// The offset is that of the weight_map entry that is wrong.
TEST_F(ShardedTest, RuleIndexWrongShard) {
  const std::string index = replaced(kIndex, R"("b": "model-00001-of-00002.safetensors")", R"("b": "model-00002-of-00002.safetensors")");
  const FormatError err = refused(index, "index-wrong-shard", index.find(R"("b": )") + 5, "\"b\"");
  EXPECT_NE(err.message.find(kShard2), std::string::npos) << err.message;
}

TEST_F(ShardedTest, RuleIndexAbsentTensor) {
  const std::string index = replaced(kIndex, R"("c": )", R"("d": "model-00002-of-00002.safetensors", "c": )");
  const FormatError err = refused(index, "index-absent-tensor", index.find(R"("d": )") + 5, "\"d\"");
  EXPECT_NE(err.message.find(kShard2), std::string::npos) << err.message;
}

TEST_F(ShardedTest, RuleIndexTotalSize) {
  const std::string index = replaced(kIndex, "27", "28");
  refused(index, "index-total-size", index.find("28"), "27");
  const std::string fractional = replaced(kIndex, "27", "27.0");
  refused(fractional, "index-total-size", fractional.find("27.0"), "27");
}

// A negative or huge total_size must be reported as written, not converted to uint64_t (a
// double outside uint64_t's range converts with undefined behaviour).
TEST_F(ShardedTest, RuleIndexTotalSizeReportsTheNumberAsWritten) {
  const std::string negative = replaced(kIndex, "27", "-1");
  const FormatError err = refused(negative, "index-total-size", negative.find("-1"), "total_size is -1 ");
  EXPECT_EQ(err.message.find("18446744073709551615"), std::string::npos) << err.message;
  const std::string huge = replaced(kIndex, "27", "1e30");
  refused(huge, "index-total-size", huge.find("1e30"), "total_size is 1e+30 ");
}

}  // namespace
}  // namespace evald::prov
