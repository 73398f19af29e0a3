// Shared helpers for the libFuzzer targets: a checked assertion that aborts with a message
// (so libFuzzer records a crash file), and a Value equality that compares doubles by bits
// (NaN != NaN under operator==, and -0.0 == 0.0 would hide a sign change).
#pragma once

#include <evald/value.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define FUZZ_CHECK(cond, ...)                                                     \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                          \
      std::fprintf(stderr, "\n");                                                 \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

namespace evald::fuzz {

inline bool same_value(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::Null: return true;
    case Value::Type::Bool: return a.as_bool() == b.as_bool();
    case Value::Type::Int: return a.as_int() == b.as_int();
    case Value::Type::Double: {
      double x = a.as_double(), y = b.as_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case Value::Type::String: return a.as_string() == b.as_string();
    case Value::Type::Binary: return a.as_binary() == b.as_binary();
    case Value::Type::Array: {
      auto& x = a.as_array();
      auto& y = b.as_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!same_value(x[i], y[i])) return false;
      return true;
    }
    case Value::Type::Map: {
      auto& x = a.as_map();
      auto& y = b.as_map();
      if (x.size() != y.size()) return false;
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j)
        if (i->first != j->first || !same_value(i->second, j->second)) return false;
      return true;
    }
  }
  return false;
}

inline std::string hex_prefix(const uint8_t* p, size_t n, size_t max = 64) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n && i < max; ++i) s += d[p[i] >> 4], s += d[p[i] & 15];
  if (n > max) s += "...";
  return s;
}

}  // namespace evald::fuzz
