// A strict JSON reader for outside input (safetensors headers, model config and tokenizer
// files, score sheets, vote files). Errors carry the byte offset; objects keep their key order
// and duplicate keys are an error, as the safetensors reference implementation requires.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evald::text {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Type type() const { return type_; }
  bool is_object() const { return type_ == Type::Object; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_string() const { return type_ == Type::String; }
  bool is_number() const { return type_ == Type::Number; }
  // An integer literal (no fraction or exponent) that fits uint64.
  bool is_uint() const { return type_ == Type::Number && is_uint_; }
  uint64_t as_uint() const { return uint_; }
  double as_double() const { return num_; }
  bool as_bool() const { return bool_; }
  const std::string& str() const { return str_; }
  const std::vector<Json>& items() const { return items_; }
  const std::vector<std::pair<std::string, Json>>& members() const { return members_; }
  // Member lookup (first match); nullptr when absent or not an object.
  const Json* find(std::string_view key) const;
  uint64_t offset() const { return offset_; }  // where the value starts in the input
  const char* type_name() const;

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  bool is_uint_ = false;
  uint64_t uint_ = 0;
  double num_ = 0;
  uint64_t offset_ = 0;
  std::string str_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

struct JsonError {
  uint64_t offset = 0;
  std::string message;
};

// Parses one JSON value filling all of `text` (surrounding whitespace allowed). Strings must be
// valid UTF-8 (escapes included: unpaired surrogates are refused); nesting is limited to
// `max_depth`. Thread-safe.
bool parse_json(std::string_view text, Json* out, JsonError* err, int max_depth = 64);

}  // namespace evald::text
