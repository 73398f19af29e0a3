// The GGUF reader's in-memory entry point, for read_gguf (after mapping the file) and the fuzzer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "weights.hpp"

namespace evald::prov {

// Parses a whole GGUF file held in `data` (`size` bytes) under the rules read_gguf documents.
// Errors name `name_for_errors` as their file. On success, fills *out (files = {name_for_errors},
// total_bytes = size) and, when non-null, *gguf_arrays with every string array; tensors point
// into `data`, which must outlive them, and their `file` is left empty. On failure neither output
// is touched.
bool parse_gguf_buffer(const uint8_t* data, uint64_t size, const std::string& name_for_errors, WeightSet* out,
                       FormatError* err, std::map<std::string, std::vector<std::string>>* gguf_arrays);

}  // namespace evald::prov
