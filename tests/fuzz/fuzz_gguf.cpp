// fuzz_gguf: the GGUF reader (evald::prov::parse_gguf_buffer, what read_gguf runs on the mapped
// file) on arbitrary bytes. Properties checked:
//   * a refusal names the file, a rule and a message, at an offset inside the input;
//   * an accepted file's tensors are sorted by unique name, have 1 to 4 dimensions, whole blocks
//     and nbytes matching shape and type, lie inside the input and do not overlap;
//   * every analysable tensor of up to 2^20 elements converts to float (fuzzing dequantisation);
//   * parsing again without the string-array output gives the same metadata and tensors, and
//     every string array collected has its metadata entry.
#include "fuzz_common.hpp"
#include "gguf_internal.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

using evald::prov::FormatError;
using evald::prov::Tensor;
using evald::prov::WeightSet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.gguf";
  const std::string hex = evald::fuzz::hex_prefix(data, size);
  WeightSet ws;
  FormatError err;
  std::map<std::string, std::vector<std::string>> arrays;
  if (!evald::prov::parse_gguf_buffer(data, size, name, &ws, &err, &arrays)) {
    FUZZ_CHECK(err.file == name && !err.rule.empty() && !err.message.empty(),
               "refusal without file, rule or message: %s", err.to_string().c_str());
    FUZZ_CHECK(err.offset <= size, "error offset past the input's %zu bytes: %s (input %s)", size,
               err.to_string().c_str(), hex.c_str());
    FUZZ_CHECK(ws.tensors.empty() && ws.metadata.empty() && arrays.empty(), "a refusal filled the outputs (input %s)",
               hex.c_str());
    return 0;
  }
  FUZZ_CHECK(ws.format == "gguf" && ws.total_bytes == size && ws.files == std::vector<std::string>{name},
             "wrong format, size or files (input %s)", hex.c_str());

  std::vector<std::pair<uint64_t, uint64_t>> extents;  // [file_offset, file_offset + nbytes)
  for (size_t i = 0; i < ws.tensors.size(); ++i) {
    const Tensor& t = ws.tensors[i];
    FUZZ_CHECK(i == 0 || ws.tensors[i - 1].name < t.name, "tensors not sorted by unique name (input %s)", hex.c_str());
    FUZZ_CHECK(!t.shape.empty() && t.shape.size() <= 4, "tensor '%s' has %zu dims (input %s)", t.name.c_str(),
               t.shape.size(), hex.c_str());
    const uint64_t numel = t.numel(), block = evald::prov::dtype_block_elems(t.dtype);
    FUZZ_CHECK(t.shape.back() % block == 0 && t.nbytes == numel / block * (evald::prov::dtype_block_bits(t.dtype) / 8),
               "tensor '%s' has partial blocks or a wrong size (input %s)", t.name.c_str(), hex.c_str());
    FUZZ_CHECK(t.file_offset <= size && t.nbytes <= size - t.file_offset && t.data == data + t.file_offset,
               "tensor '%s' is not inside the input (input %s)", t.name.c_str(), hex.c_str());
    extents.emplace_back(t.file_offset, t.file_offset + t.nbytes);
    if (evald::prov::dtype_analysable(t.dtype) && numel <= (uint64_t(1) << 20)) {
      std::vector<float> values(numel);
      FUZZ_CHECK(evald::prov::to_float(t, 0, numel, values.data()), "tensor '%s' (%s) does not convert (input %s)",
                 t.name.c_str(), evald::prov::dtype_name(t.dtype), hex.c_str());
    }
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i)
    FUZZ_CHECK(extents[i - 1].second <= extents[i].first, "tensors overlap (input %s)", hex.c_str());

  for (const auto& [key, strings] : arrays)
    FUZZ_CHECK(ws.metadata.count(key), "string array '%s' has no metadata entry (input %s)", key.c_str(), hex.c_str());
  WeightSet again;
  FUZZ_CHECK(evald::prov::parse_gguf_buffer(data, size, name, &again, &err, nullptr),
             "refused without the array output: %s (input %s)", err.to_string().c_str(), hex.c_str());
  FUZZ_CHECK(again.metadata == ws.metadata && again.tensors.size() == ws.tensors.size(),
             "a second parse differs (input %s)", hex.c_str());
  return 0;
}
