// fuzz_safetensors: evald::prov::read_safetensors and read_safetensors_index on arbitrary bytes.
// The first byte picks the mode:
//   * even: the rest is one .safetensors file, put in a memfd and read as /proc/self/fd/N;
//   * odd: the rest is split at "\n--shard--\n" into an index (model.safetensors.index.json) and
//     up to three shards (a.safetensors, b.safetensors, c.safetensors) in a per-process temp dir.
// Properties checked when a file reads:
//   * tensors are sorted by name without repeats; each one's bytes lie inside its mapping, are the
//     input's bytes, and number dtype bits x shape / 8; together they tile the data section, which
//     ends the file (8 + header + data = size);
//   * to_float converts every analysable tensor (up to 1 << 20 elements) exactly like the decoders
//     here, slices agree with the whole, and out-of-range slices are refused.
// When an index reads: every tensor comes from one of its shards, each shard reads alone, and the
// shards' tensors are exactly the set's. A refusal always names a rule and a file.
#include "fuzz_common.hpp"
#include "weights.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

using namespace evald::prov;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxConvert = uint64_t(1) << 20;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Independent element decoders (by value arithmetic rather than bit assembly).
float minifloat(uint32_t sign, uint32_t exp, uint32_t man, int man_bits, int bias, bool has_inf, uint32_t max_exp) {
  float v;
  if (has_inf && exp == max_exp) v = man ? NAN : INFINITY;
  else if (exp == 0) v = std::ldexp(float(man), 1 - bias - man_bits);
  else v = std::ldexp(float(man | (1u << man_bits)), int(exp) - bias - man_bits);
  return sign ? -v : v;
}

bool reference(DType t, const uint8_t* p, float* out) {
  switch (t) {
    case DType::BOOL:
    case DType::U8: *out = float(p[0]); return true;
    case DType::I8: *out = float(int8_t(p[0])); return true;
    case DType::U16: *out = float(load<uint16_t>(p)); return true;
    case DType::I16: *out = float(load<int16_t>(p)); return true;
    case DType::U32: *out = float(load<uint32_t>(p)); return true;
    case DType::I32: *out = float(load<int32_t>(p)); return true;
    case DType::U64: *out = float(load<uint64_t>(p)); return true;
    case DType::I64: *out = float(load<int64_t>(p)); return true;
    case DType::F32: *out = load<float>(p); return true;
    case DType::F64: *out = float(load<double>(p)); return true;
    case DType::F16: {
      const uint16_t h = load<uint16_t>(p);
      *out = minifloat(h >> 15, (h >> 10) & 31, h & 1023, 10, 15, true, 31);
      return true;
    }
    case DType::BF16: {
      const uint16_t h = load<uint16_t>(p);
      *out = minifloat(h >> 15, (h >> 7) & 255, h & 127, 7, 127, true, 255);
      return true;
    }
    case DType::F8_E5M2: *out = minifloat(p[0] >> 7, (p[0] >> 2) & 31, p[0] & 3, 2, 15, true, 31); return true;
    case DType::F8_E4M3:  // the "fn" variant: no infinities, S.1111.111 is NaN
      *out = (p[0] & 0x7f) == 0x7f ? NAN : minifloat(p[0] >> 7, (p[0] >> 3) & 15, p[0] & 7, 3, 7, false, 0);
      return true;
    case DType::F8_E8M0: *out = p[0] == 0xff ? NAN : std::ldexp(1.0f, int(p[0]) - 127); return true;
    default: return false;
  }
}

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;
}

void check_conversions(const Tensor& t) {
  const uint64_t n = t.numel();
  float scratch;
  FUZZ_CHECK(!to_float(t, n + 1, 0, &scratch), "to_float accepts a slice past the end of %s", t.name.c_str());
  if (!dtype_analysable(t.dtype) || n > kMaxConvert) return;
  std::vector<float> all(std::max<uint64_t>(n, 1));  // never a null buffer, even for no elements
  FUZZ_CHECK(to_float(t, 0, n, all.data()), "to_float refuses %s (%s)", t.name.c_str(), dtype_name(t.dtype));
  const uint64_t elem_bytes = dtype_block_bits(t.dtype) / 8;
  for (uint64_t i = 0; i < n; ++i) {
    float want;
    FUZZ_CHECK(reference(t.dtype, t.data + i * elem_bytes, &want), "no reference decoder for %s", dtype_name(t.dtype));
    FUZZ_CHECK(same_float(all[i], want), "%s[%llu] (%s) is %a, expected %a", t.name.c_str(), (unsigned long long)i,
               dtype_name(t.dtype), all[i], want);
  }
  if (n >= 3) {
    std::vector<float> part(n / 3);
    FUZZ_CHECK(to_float(t, n / 3, part.size(), part.data()), "to_float refuses a slice of %s", t.name.c_str());
    for (uint64_t i = 0; i < part.size(); ++i) FUZZ_CHECK(same_float(part[i], all[n / 3 + i]), "a slice of %s differs", t.name.c_str());
  }
}

// Checks a set read from `files` (path -> bytes written there).
void check_set(const WeightSet& ws, const std::vector<std::pair<std::string, std::string_view>>& files) {
  FUZZ_CHECK(ws.format == "safetensors", "format %s", ws.format.c_str());
  for (size_t i = 1; i < ws.tensors.size(); ++i)
    FUZZ_CHECK(ws.tensors[i - 1].name < ws.tensors[i].name, "tensors not sorted or repeated: %s, %s", ws.tensors[i - 1].name.c_str(),
               ws.tensors[i].name.c_str());
  uint64_t total = 0;
  for (const std::string& f : ws.files) {
    auto it = std::find_if(files.begin(), files.end(), [&](const auto& p) { return p.first == f; });
    FUZZ_CHECK(it != files.end(), "the set names a file it was not given: %s", f.c_str());
    total += it->second.size();
  }
  FUZZ_CHECK(ws.total_bytes == total, "total_bytes %llu, files hold %llu", (unsigned long long)ws.total_bytes, (unsigned long long)total);

  for (const Tensor& t : ws.tensors) {
    FUZZ_CHECK(t.file != nullptr, "%s has no file", t.name.c_str());
    auto it = std::find_if(files.begin(), files.end(), [&](const auto& p) { return p.first == t.file->path(); });
    FUZZ_CHECK(it != files.end(), "%s comes from an unknown file", t.name.c_str());
    const std::string_view bytes = it->second;
    FUZZ_CHECK(t.file->size() == bytes.size(), "mapping of %s is %llu bytes", t.name.c_str(), (unsigned long long)t.file->size());
    FUZZ_CHECK(t.file_offset <= bytes.size() && t.nbytes <= bytes.size() - t.file_offset, "%s lies outside its file", t.name.c_str());
    FUZZ_CHECK(t.data == t.file->data() + t.file_offset, "%s: data is not file data + offset", t.name.c_str());
    FUZZ_CHECK(t.nbytes == 0 || std::memcmp(t.data, bytes.data() + t.file_offset, t.nbytes) == 0, "%s: data differs from the input", t.name.c_str());
    unsigned __int128 elems = 1;
    for (uint64_t d : t.shape) elems *= d;  // at most 2^64 after the reader's checks, so no wrap
    FUZZ_CHECK(elems * dtype_block_bits(t.dtype) == (unsigned __int128)t.nbytes * 8, "%s: %llu bytes for its dtype and shape",
               t.name.c_str(), (unsigned long long)t.nbytes);
    check_conversions(t);
  }
}

// Per file: the data section [8 + n, size) is tiled exactly by its tensors.
void check_tiling(const WeightSet& ws, const std::string& path, std::string_view bytes) {
  FUZZ_CHECK(bytes.size() >= 8, "a %zu-byte file was accepted", bytes.size());
  const uint64_t n = load<uint64_t>(reinterpret_cast<const uint8_t*>(bytes.data()));
  FUZZ_CHECK(n <= 100'000'000 && n <= bytes.size() - 8 && n > 0 && bytes[8] == '{', "bad header length %llu accepted", (unsigned long long)n);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Tensor& t : ws.tensors)
    if (t.file->path() == path) ranges.emplace_back(t.file_offset, t.nbytes);
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 8 + n;
  for (const auto& [begin, len] : ranges) {
    FUZZ_CHECK(begin == at, "tensor data at %llu, expected %llu", (unsigned long long)begin, (unsigned long long)at);
    at += len;
  }
  FUZZ_CHECK(at == bytes.size(), "tensors end at %llu in a %zu-byte file", (unsigned long long)at, bytes.size());
}

void check_refusal(bool ok, const FormatError& err) {
  if (!ok) FUZZ_CHECK(!err.rule.empty() && !err.file.empty() && !err.message.empty(), "refusal without rule, file or message");
}

void single_file(std::string_view bytes) {
  static const int fd = [] {
    int f = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
    FUZZ_CHECK(f >= 0, "memfd_create failed");
    return f;
  }();
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, bytes.data(), bytes.size(), 0) == ssize_t(bytes.size()), "cannot fill the memfd");
  WeightSet ws;
  FormatError err;
  const bool ok = read_safetensors(path, &ws, &err);
  check_refusal(ok, err);
  if (!ok) return;
  FUZZ_CHECK(ws.files == std::vector<std::string>{path}, "files");
  check_set(ws, {{path, bytes}});
  check_tiling(ws, path, bytes);
}

// A plain array, so that it outlives the atexit handler that removes the directory.
const char* temp_dir() {
  static char dir[] = "/tmp/fuzz_safetensors.XXXXXX";
  static const bool made = [] {
    FUZZ_CHECK(mkdtemp(dir) != nullptr, "mkdtemp failed");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    });
    return true;
  }();
  (void)made;
  return dir;
}

void sharded(std::string_view rest) {
  static const std::string_view kSplit = "\n--shard--\n";
  static const char* kShards[] = {"a.safetensors", "b.safetensors", "c.safetensors"};
  std::vector<std::string_view> parts;
  for (size_t at = 0;;) {
    const size_t next = rest.find(kSplit, at);
    parts.push_back(rest.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    if (next == std::string_view::npos || parts.size() == 4) break;
    at = next + kSplit.size();
  }
  const fs::path dir = temp_dir();
  const std::string index = (dir / "model.safetensors.index.json").string();
  std::ofstream(index, std::ios::binary | std::ios::trunc).write(parts[0].data(), std::streamsize(parts[0].size()));
  std::vector<std::pair<std::string, std::string_view>> files;
  for (size_t i = 0; i < 3; ++i) {
    const std::string path = (dir / kShards[i]).string();
    if (i + 1 < parts.size()) {
      std::ofstream(path, std::ios::binary | std::ios::trunc).write(parts[i + 1].data(), std::streamsize(parts[i + 1].size()));
      files.emplace_back(path, parts[i + 1]);
    } else {
      fs::remove(path);
    }
  }
  WeightSet ws;
  FormatError err;
  const bool ok = read_safetensors_index(index, &ws, &err);
  check_refusal(ok, err);
  if (!ok) return;
  check_set(ws, files);
  size_t count = 0;
  for (const std::string& f : ws.files) {
    WeightSet one;
    FormatError one_err;
    FUZZ_CHECK(read_safetensors(f, &one, &one_err), "shard %s reads with its index but not alone: %s", f.c_str(), one_err.to_string().c_str());
    auto it = std::find_if(files.begin(), files.end(), [&](const auto& p) { return p.first == f; });
    check_tiling(ws, f, it->second);
    count += one.tensors.size();
  }
  FUZZ_CHECK(count == ws.tensors.size(), "the shards hold %zu tensors, the set %zu", count, ws.tensors.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) single_file(rest);
  else sharded(rest);
  return 0;
}
