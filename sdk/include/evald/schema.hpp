// ConfigSchema: what a plugin's config may contain. The daemon checks every stage config
// against it before the plugin runs (unknown keys, types, ranges, required keys), fills in
// defaults, and prints it as the plugin's --help. Header-only.
#pragma once

#include <evald/value.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace evald {

enum class ConfigType { String, Int, Number, Bool, List, Map };

inline const char* config_type_name(ConfigType t) {
  switch (t) {
    case ConfigType::String: return "string";
    case ConfigType::Int: return "int";
    case ConfigType::Number: return "number";
    case ConfigType::Bool: return "bool";
    case ConfigType::List: return "list";
    case ConfigType::Map: return "map";
  }
  return "?";
}

inline std::optional<ConfigType> parse_config_type(std::string_view s) {
  for (auto t : {ConfigType::String, ConfigType::Int, ConfigType::Number, ConfigType::Bool,
                 ConfigType::List, ConfigType::Map})
    if (s == config_type_name(t)) return t;
  return std::nullopt;
}

struct ConfigKey {
  std::string key;
  ConfigType type = ConfigType::String;
  std::string description;
  bool required = false;
  std::optional<Value> default_value;
  std::optional<double> min, max;       // numbers: value range; strings and lists: length
  std::vector<std::string> choices;      // strings: allowed values
};

// Built fluently; the modifiers apply to the key added last:
//   ConfigSchema().number("scale", "multiplier").def(1.0).min(0)
//                 .string("mode", "how to read").choices({"fast", "exact"}).required();
class ConfigSchema {
 public:
  ConfigSchema& add(std::string key, ConfigType type, std::string description) {
    ConfigKey k;
    k.key = std::move(key);
    k.type = type;
    k.description = std::move(description);
    keys_.push_back(std::move(k));
    return *this;
  }
  ConfigSchema& string(std::string k, std::string d) { return add(std::move(k), ConfigType::String, std::move(d)); }
  ConfigSchema& integer(std::string k, std::string d) { return add(std::move(k), ConfigType::Int, std::move(d)); }
  ConfigSchema& number(std::string k, std::string d) { return add(std::move(k), ConfigType::Number, std::move(d)); }
  ConfigSchema& boolean(std::string k, std::string d) { return add(std::move(k), ConfigType::Bool, std::move(d)); }
  ConfigSchema& list(std::string k, std::string d) { return add(std::move(k), ConfigType::List, std::move(d)); }
  ConfigSchema& map(std::string k, std::string d) { return add(std::move(k), ConfigType::Map, std::move(d)); }

  ConfigSchema& required() { return last().required = true, *this; }
  ConfigSchema& def(Value v) { return last().default_value = std::move(v), *this; }
  // Numbers: value range. Strings and lists: length range.
  ConfigSchema& min(double v) { return last().min = v, *this; }
  ConfigSchema& max(double v) { return last().max = v, *this; }
  ConfigSchema& choices(std::vector<std::string> c) { return last().choices = std::move(c), *this; }

  const std::vector<ConfigKey>& keys() const { return keys_; }
  const ConfigKey* find(std::string_view key) const {
    for (auto& k : keys_)
      if (k.key == key) return &k;
    return nullptr;
  }

  Value to_value() const {
    Array out;
    for (auto& k : keys_) {
      Value e;
      e.set("key", k.key);
      e.set("type", config_type_name(k.type));
      e.set("description", k.description);
      e.set("required", k.required);
      if (k.default_value) e.set("default", *k.default_value);
      if (k.min) e.set("min", *k.min);
      if (k.max) e.set("max", *k.max);
      if (!k.choices.empty()) {
        Array c(k.choices.begin(), k.choices.end());
        e.set("choices", std::move(c));
      }
      out.push_back(std::move(e));
    }
    return Value(std::move(out));
  }

  static Result<ConfigSchema> from_value(const Value& v) {
    if (!v.is_array()) return Status::error("config schema is not a list");
    ConfigSchema s;
    for (auto& e : v.as_array()) {
      auto type = parse_config_type(e.get_string("type"));
      if (!e.find("key") || !type) return Status::error("config schema entry lacks key or type");
      s.add(e.get_string("key"), *type, e.get_string("description"));
      ConfigKey& k = s.keys_.back();
      k.required = e.get_bool("required");
      if (auto* d = e.find("default")) k.default_value = *d;
      if (auto* m = e.find("min"); m && m->is_number()) k.min = m->as_double();
      if (auto* m = e.find("max"); m && m->is_number()) k.max = m->as_double();
      if (auto* c = e.find("choices"); c && c->is_array())
        for (auto& x : c->as_array())
          if (x.is_string()) k.choices.push_back(x.as_string());
    }
    return s;
  }

  // Checks config (a map, or null for none) and returns it with defaults filled in.
  // Every problem is reported, one per line, each naming its key; problems, when given,
  // also receives them as (key, reason) pairs (key empty for the config as a whole).
  Result<Value> validate(const Value& config, std::vector<std::pair<std::string, std::string>>* problems = nullptr) const {
    std::string errors;
    auto bad = [&](const std::string& key, const std::string& why) {
      if (!errors.empty()) errors += '\n';
      errors += "config." + key + ": " + why;
      if (problems) problems->emplace_back(key, why);
    };
    if (!config.is_null() && !config.is_map()) {
      if (problems) problems->emplace_back("", "must be a map");
      return Status::error("config: must be a map");
    }
    Value out = Map{};
    if (config.is_map()) {
      for (auto& [key, val] : config.as_map()) {
        const ConfigKey* spec = find(key);
        if (!spec) {
          bad(key, "unknown key (known: " + known_keys() + ")");
          continue;
        }
        std::string why = check(*spec, val);
        if (!why.empty()) {
          bad(key, why);
          continue;
        }
        out.set(key, spec->type == ConfigType::Number ? Value(val.as_double()) : val);
      }
    }
    for (auto& spec : keys_) {
      if (out.find(spec.key)) continue;
      if (spec.required)
        bad(spec.key, "required key missing (" + spec.description + ")");
      else if (spec.default_value)
        out.set(spec.key, *spec.default_value);
    }
    if (!errors.empty()) return Status::error(errors);
    return out;
  }

  // The schema as help text: one paragraph a key.
  std::string help() const {
    std::string s;
    for (auto& k : keys_) {
      s += "  " + k.key + " (" + config_type_name(k.type);
      if (k.required) s += ", required";
      if (k.default_value) s += ", default " + to_json(*k.default_value);
      if (k.min) s += ", min " + num(*k.min);
      if (k.max) s += ", max " + num(*k.max);
      if (!k.choices.empty()) {
        s += ", one of";
        for (auto& c : k.choices) s += " " + c;
      }
      s += ")\n      " + k.description + "\n";
    }
    if (keys_.empty()) s += "  (no configuration keys)\n";
    return s;
  }

 private:
  ConfigKey& last() {
    if (keys_.empty()) throw std::logic_error("ConfigSchema: add a key before setting its options");
    return keys_.back();
  }
  static std::string num(double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
  }
  std::string known_keys() const {
    std::string s;
    for (auto& k : keys_) s += (s.empty() ? "" : ", ") + k.key;
    return s.empty() ? "none" : s;
  }
  static std::string check(const ConfigKey& spec, const Value& v) {
    auto want = [&] { return std::string("expected ") + config_type_name(spec.type) + ", got " + type_name(v.type()); };
    auto range = [&](double x, const char* what) -> std::string {
      if (spec.min && x < *spec.min) return std::string(what) + " " + num(x) + " is below the minimum " + num(*spec.min);
      if (spec.max && x > *spec.max) return std::string(what) + " " + num(x) + " is above the maximum " + num(*spec.max);
      return {};
    };
    switch (spec.type) {
      case ConfigType::String: {
        if (!v.is_string()) return want();
        if (!spec.choices.empty()) {
          for (auto& c : spec.choices)
            if (c == v.as_string()) return range(double(v.as_string().size()), "length");
          std::string all;
          for (auto& c : spec.choices) all += (all.empty() ? "" : ", ") + c;
          return "\"" + v.as_string() + "\" is not one of: " + all;
        }
        return range(double(v.as_string().size()), "length");
      }
      case ConfigType::Int:
        if (!v.is_int()) return want();
        return range(double(v.as_int()), "value");
      case ConfigType::Number:
        if (!v.is_number()) return want();
        return range(v.as_double(), "value");
      case ConfigType::Bool: return v.is_bool() ? std::string() : want();
      case ConfigType::List:
        if (!v.is_array()) return want();
        return range(double(v.as_array().size()), "length");
      case ConfigType::Map: return v.is_map() ? std::string() : want();
    }
    return {};
  }

  std::vector<ConfigKey> keys_;
};

}  // namespace evald
