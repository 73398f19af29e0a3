// A submitted model as found on disk: its weights (safetensors, sharded safetensors or GGUF),
// config.json, tokenizer vocabulary and the lineage it declares. Declared lineage is recorded as a
// claim to verify, never trusted.
#pragma once

#include <string>
#include <vector>

#include "weights.hpp"

namespace evald::prov {

struct LineageClaim {
  std::string source;  // file the claim was read from
  std::string key;     // e.g. "base_model", "general.base_model.0.name"
  std::string value;
};

struct Model {
  std::string path;
  WeightSet weights;
  std::map<std::string, std::string> config;  // selected config.json fields, flattened
  std::vector<std::string> vocab;             // token text by id; empty when no tokenizer was found
  std::string tokenizer_source;               // file the vocabulary came from
  std::vector<LineageClaim> claims;
};

// Opens `path`: a directory holding model.safetensors, model.safetensors.index.json, exactly one
// other *.safetensors or exactly one *.gguf; or one such file. Reads config.json, tokenizer.json
// or vocab.json, and the model card (README.md front matter) beside the weights when present.
// Any malformed file (weights, config or tokenizer) fails the whole open with its FormatError.
bool open_model(const std::string& path, Model* out, FormatError* err);

}  // namespace evald::prov
