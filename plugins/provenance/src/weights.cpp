#include "weights.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

namespace evald::prov {

namespace {

struct DTypeInfo {
  const char* name;
  uint32_t block_bits;
  uint32_t block_elems;
  bool analysable;
};

// Indexed by DType. Block sizes follow ggml's type traits.
constexpr DTypeInfo kInfo[] = {
    {"BOOL", 8, 1, true},       {"U8", 8, 1, true},        {"I8", 8, 1, true},
    {"U16", 16, 1, true},       {"I16", 16, 1, true},      {"U32", 32, 1, true},
    {"I32", 32, 1, true},       {"U64", 64, 1, true},      {"I64", 64, 1, true},
    {"F16", 16, 1, true},       {"BF16", 16, 1, true},     {"F32", 32, 1, true},
    {"F64", 64, 1, true},       {"F8_E4M3", 8, 1, true},   {"F8_E5M2", 8, 1, true},
    {"F8_E8M0", 8, 1, true},    {"F4", 4, 1, false},       {"F6_E2M3", 6, 1, false},
    {"F6_E3M2", 6, 1, false},   {"C64", 64, 1, false},
    {"Q4_0", 18 * 8, 32, true}, {"Q4_1", 20 * 8, 32, true}, {"Q5_0", 22 * 8, 32, true},
    {"Q5_1", 24 * 8, 32, true}, {"Q8_0", 34 * 8, 32, true}, {"Q8_1", 36 * 8, 32, false},
    {"Q2_K", 84 * 8, 256, true},  {"Q3_K", 110 * 8, 256, true}, {"Q4_K", 144 * 8, 256, true},
    {"Q5_K", 176 * 8, 256, true}, {"Q6_K", 210 * 8, 256, true}, {"Q8_K", 292 * 8, 256, false},
    {"IQ2_XXS", 66 * 8, 256, false}, {"IQ2_XS", 74 * 8, 256, false}, {"IQ3_XXS", 98 * 8, 256, false},
    {"IQ1_S", 50 * 8, 256, false},   {"IQ4_NL", 18 * 8, 32, false},  {"IQ3_S", 110 * 8, 256, false},
    {"IQ2_S", 82 * 8, 256, false},   {"IQ4_XS", 136 * 8, 256, false}, {"IQ1_M", 56 * 8, 256, false},
    {"TQ1_0", 54 * 8, 256, false},   {"TQ2_0", 66 * 8, 256, false},  {"MXFP4", 17 * 8, 32, false},
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == size_t(DType::MXFP4) + 1);

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do { ++e; man <<= 1; } while (!(man & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {

// OCP FP8 E4M3 (the "fn" variant: no infinities, S.1111.111 is NaN).
float e4m3_to_float(uint8_t b) {
  uint32_t sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
  float v;
  if (exp == 15 && man == 7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) v = std::ldexp(float(man), -9);  // man/8 * 2^-6
  else v = std::ldexp(1.0f + float(man) / 8.0f, int(exp) - 7);
  return sign ? -v : v;
}

float e5m2_to_float(uint8_t b) { return half_to_float(uint16_t(b) << 8); }

float e8m0_to_float(uint8_t b) {
  if (b == 0xff) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, int(b) - 127);
}

}  // namespace

const char* dtype_name(DType t) { return kInfo[size_t(t)].name; }
uint32_t dtype_block_bits(DType t) { return kInfo[size_t(t)].block_bits; }
uint32_t dtype_block_elems(DType t) { return kInfo[size_t(t)].block_elems; }
bool dtype_analysable(DType t) { return kInfo[size_t(t)].analysable; }

std::string FormatError::to_string() const {
  return file + ": offset " + std::to_string(offset) + ": " + message + " [rule " + rule + "]";
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, FormatError* err) {
  auto fail = [&](const std::string& what) {
    if (err) *err = FormatError{path, 0, "open", what + ": " + std::strerror(errno)};
    return nullptr;
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail("cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return fail("cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    errno = EINVAL;
    return fail("not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = uint64_t(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return fail("cannot map");
    }
    // One sequential pass reads the weights: tell the kernel to read ahead generously.
    ::madvise(p, f->size_, MADV_SEQUENTIAL);
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

void release_pages(const uint8_t* data, uint64_t nbytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t from = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  uintptr_t to = (reinterpret_cast<uintptr_t>(data) + nbytes) & ~(page - 1);
  if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

uint64_t Tensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

uint64_t Tensor::cols() const {
  uint64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

bool to_float(const Tensor& t, uint64_t first, uint64_t count, float* out) {
  uint64_t n = t.numel();
  if (first > n || count > n - first || !dtype_analysable(t.dtype)) return false;
  uint32_t be = dtype_block_elems(t.dtype);
  if (be > 1) {
    if (first % be != 0 || (count % be != 0 && first + count != n)) return false;
    uint64_t bbytes = dtype_block_bits(t.dtype) / 8;
    uint64_t nblocks = (count + be - 1) / be;
    if (count % be == 0) return dequantize_blocks(t.dtype, t.data + first / be * bbytes, nblocks, out);
    std::vector<float> tmp(nblocks * be);
    if (!dequantize_blocks(t.dtype, t.data + first / be * bbytes, nblocks, tmp.data())) return false;
    std::memcpy(out, tmp.data(), count * sizeof(float));
    return true;
  }
  const uint8_t* p = t.data;
  switch (t.dtype) {
    case DType::F32: std::memcpy(out, p + first * 4, count * 4); break;
    case DType::F16:
      for (uint64_t i = 0; i < count; ++i) out[i] = half_to_float(load<uint16_t>(p + (first + i) * 2));
      break;
    case DType::BF16:
      for (uint64_t i = 0; i < count; ++i) out[i] = bf16_to_float(load<uint16_t>(p + (first + i) * 2));
      break;
    case DType::F64:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<double>(p + (first + i) * 8));
      break;
    case DType::F8_E4M3:
      for (uint64_t i = 0; i < count; ++i) out[i] = e4m3_to_float(p[first + i]);
      break;
    case DType::F8_E5M2:
      for (uint64_t i = 0; i < count; ++i) out[i] = e5m2_to_float(p[first + i]);
      break;
    case DType::F8_E8M0:
      for (uint64_t i = 0; i < count; ++i) out[i] = e8m0_to_float(p[first + i]);
      break;
    case DType::BOOL:
    case DType::U8:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(p[first + i]);
      break;
    case DType::I8:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(int8_t(p[first + i]));
      break;
    case DType::U16:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<uint16_t>(p + (first + i) * 2));
      break;
    case DType::I16:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<int16_t>(p + (first + i) * 2));
      break;
    case DType::U32:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<uint32_t>(p + (first + i) * 4));
      break;
    case DType::I32:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<int32_t>(p + (first + i) * 4));
      break;
    case DType::U64:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<uint64_t>(p + (first + i) * 8));
      break;
    case DType::I64:
      for (uint64_t i = 0; i < count; ++i) out[i] = float(load<int64_t>(p + (first + i) * 8));
      break;
    default: return false;
  }
  return true;
}

}  // namespace evald::prov
