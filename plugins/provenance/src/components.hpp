// Which component of a model a tensor belongs to, and its role there, from its name. Built-in
// rules cover Hugging Face Llama / Qwen2 / Qwen2.5 / Qwen2.5-VL / Gemma / EXAONE / LLaVA / CLIP
// naming and GGUF (llama.cpp) naming; a pipeline config can add rules, which take precedence.
#pragma once

#include <regex>
#include <string>
#include <vector>

namespace evald::prov {

// Components the gate decides on. "other" tensors are reported but never decide anything.
inline constexpr const char* kComponents[] = {"llm", "embeddings", "vision"};

struct TensorRole {
  std::string component;  // llm | embeddings | vision | other
  std::string role;       // canonical role without the layer index, e.g. "attn.q.weight"
  int layer = -1;         // block index, -1 outside repeated blocks
  // Which dimension carries the units a function-preserving permutation may reorder:
  // Rows for input projections (q/k/v, gate/up, embeddings), Cols for output projections
  // (o, down), Both when the role is unknown and either may.
  enum class Units { Rows, Cols, Both } units = Units::Rows;
};

struct ComponentRule {
  std::string pattern;    // ECMAScript regex searched in the tensor name
  std::string component;  // llm | embeddings | vision | other
};

class ComponentRules {
 public:
  // Built-in rules only.
  ComponentRules() = default;
  // Adds rules that are tried before the built-in ones. Returns an error message naming the
  // rule for a bad regex or component, empty on success.
  std::string add(const std::vector<ComponentRule>& rules);
  TensorRole classify(const std::string& name) const;

 private:
  std::vector<std::pair<std::regex, std::string>> custom_;
  std::vector<ComponentRule> custom_text_;
};

}  // namespace evald::prov
