// Which component of a model a tensor belongs to, and its role there. Names are only a hint: an
// entrant chooses them. Built-in rules cover Hugging Face Llama / Qwen2 / Qwen2.5 / Qwen2.5-VL /
// Gemma / EXAONE / LLaVA / CLIP / Mixtral naming and GGUF (llama.cpp) naming, and a pipeline
// config can add rules, which take precedence; what names leave unplaced is placed from the
// model's structure (assign_roles): the residual width, repeated layer groups and the token
// matrices outside them.
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
  // How the role was found: "name" (built-in rules), "rule" (a configured rule), "structure"
  // (shapes), or "" (nothing placed it: component "other").
  std::string by;
  // The tensor's place relative to the residual width d, for 2-D llm and embeddings tensors:
  // "in" (n x d: reads the residual stream, units are rows), "out" (d x n: writes it, units are
  // columns), "square" (d x d), "token" (a vocabulary-by-d matrix outside the layers), or "".
  std::string shape_class;
  // True when the role is a canonical one the names established (compared by role); false when
  // only the shape class is known (compared with every reference tensor of that class and shape).
  bool known = false;
};

struct ComponentRule {
  std::string pattern;    // ECMAScript regex searched in the tensor name
  std::string component;  // llm | embeddings | vision | other
};

struct TensorShape {
  std::string name;
  std::vector<uint64_t> shape;  // outermost first
};

// The roles of a whole model's tensors (parallel to the input) and its residual width (0 when the
// structure shows none).
struct Layout {
  std::vector<TensorRole> roles;
  uint64_t width = 0;
};

class ComponentRules;
// Places every tensor: by name where the rules know it, else by structure. The residual width is
// the embedding matrix's width when names find one, else the dimension most 2-D tensors share.
// Layer groups are numbered path segments ("stack.7.", "h_7."). Inside a group, a 2-D tensor with
// a dimension d is an llm tensor of its shape class; outside, an n x d matrix is a token matrix
// (embeddings) and a length-d vector the final norm. Whatever is left is "other".
Layout assign_roles(const std::vector<TensorShape>& tensors, const ComponentRules& rules);

// The shape class of a 2-D view rows x cols against residual width d (see TensorRole).
std::string shape_class(uint64_t rows, uint64_t cols, uint64_t width);

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
