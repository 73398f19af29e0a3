// Value: the msgpack-backed tree that carries configs, job inputs and message payloads, plus
// Status/Result for errors without exceptions. Header-only; depends on the standard library.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace evald {

// An error message, or success. Cheap to copy when ok.
class Status {
 public:
  Status() = default;
  static Status error(std::string message) {
    Status s;
    s.msg_ = std::make_shared<std::string>(std::move(message));
    return s;
  }
  bool ok() const { return msg_ == nullptr; }
  explicit operator bool() const { return ok(); }
  const std::string& message() const {
    static const std::string empty;
    return msg_ ? *msg_ : empty;
  }

 private:
  std::shared_ptr<std::string> msg_;
};

// A value or an error (like std::expected, which C++20 lacks).
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return ok() ? Status() : std::get<1>(v_); }
  const std::string& error() const { return std::get<1>(v_).message(); }

 private:
  std::variant<T, Status> v_;
};

using Bytes = std::vector<uint8_t>;

class Value;
using Array = std::vector<Value>;
using Map = std::map<std::string, Value, std::less<>>;

// A JSON-like tree with binary strings; maps have string keys and sort by key, so encoding
// a Value is deterministic (equal trees give equal bytes).
class Value {
 public:
  enum class Type { Null, Bool, Int, Double, String, Binary, Array, Map };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(unsigned i) : v_(int64_t{i}) {}
  Value(long i) : v_(int64_t(i)) {}
  Value(long long i) : v_(int64_t(i)) {}
  Value(unsigned long i) : v_(int64_t(i)) {}
  Value(unsigned long long i) : v_(int64_t(i)) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Map m) : v_(std::move(m)) {}

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_double() const { return type() == Type::Double; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return type() == Type::String; }
  bool is_binary() const { return type() == Type::Binary; }
  bool is_array() const { return type() == Type::Array; }
  bool is_map() const { return type() == Type::Map; }

  // Typed access; the caller checks the type first (std::bad_variant_access otherwise).
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const { return is_int() ? double(as_int()) : std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Bytes& as_binary() const { return std::get<Bytes>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Map& as_map() const { return std::get<Map>(v_); }
  Map& as_map() { return std::get<Map>(v_); }

  // Map lookup: nullptr when this is not a map or has no such key.
  const Value* find(std::string_view key) const {
    if (!is_map()) return nullptr;
    auto& m = as_map();
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  // Convenience getters with a fallback for absent or mistyped fields.
  std::string get_string(std::string_view key, std::string fallback = {}) const {
    auto* v = find(key);
    return v && v->is_string() ? v->as_string() : fallback;
  }
  int64_t get_int(std::string_view key, int64_t fallback = 0) const {
    auto* v = find(key);
    return v && v->is_int() ? v->as_int() : fallback;
  }
  double get_double(std::string_view key, double fallback = 0) const {
    auto* v = find(key);
    return v && v->is_number() ? v->as_double() : fallback;
  }
  bool get_bool(std::string_view key, bool fallback = false) const {
    auto* v = find(key);
    return v && v->is_bool() ? v->as_bool() : fallback;
  }
  // Inserts or replaces a map entry; turns a null into an empty map first.
  Value& set(std::string key, Value v) {
    if (is_null()) v_ = Map{};
    auto& slot = as_map()[std::move(key)];
    slot = std::move(v);
    return slot;
  }
  void push_back(Value v) {
    if (is_null()) v_ = Array{};
    as_array().push_back(std::move(v));
  }

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, Array, Map> v_;
};

inline const char* type_name(Value::Type t) {
  switch (t) {
    case Value::Type::Null: return "null";
    case Value::Type::Bool: return "bool";
    case Value::Type::Int: return "int";
    case Value::Type::Double: return "number";
    case Value::Type::String: return "string";
    case Value::Type::Binary: return "binary";
    case Value::Type::Array: return "list";
    case Value::Type::Map: return "map";
  }
  return "?";
}

namespace msgpack {

// Bounds on what decode accepts: a hostile 5-byte header cannot make it allocate more than
// the input could possibly describe, nor recurse past max_depth.
struct Limits {
  size_t max_input = 64u << 20;
  size_t max_depth = 64;
  size_t max_string = 16u << 20;
  size_t max_elements = 1u << 20;  // per array or map
};

namespace detail {
inline void put_be(Bytes& out, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(uint8_t(v >> (8 * i)));
}
// Header of a str/array/map: a fix form up to fix_max, then 8 (strings only), 16, 32 bits.
inline void put_header(Bytes& out, size_t n, uint8_t fix_base, size_t fix_max, uint8_t c8,
                       uint8_t c16, uint8_t c32) {
  if (n <= fix_max) {
    out.push_back(uint8_t(fix_base | n));
  } else if (c8 && n <= 0xff) {
    out.push_back(c8);
    put_be(out, n, 1);
  } else if (n <= 0xffff) {
    out.push_back(c16);
    put_be(out, n, 2);
  } else {
    out.push_back(c32);
    put_be(out, n, 4);
  }
}
}  // namespace detail

// Writers for composing msgpack from parts, without building a Value; each writes what
// encode_to writes for the same value.
inline void write_map_header(Bytes& out, size_t n) { detail::put_header(out, n, 0x80, 15, 0, 0xde, 0xdf); }
inline void write_array_header(Bytes& out, size_t n) { detail::put_header(out, n, 0x90, 15, 0, 0xdc, 0xdd); }
inline void write_str(Bytes& out, std::string_view s) {
  detail::put_header(out, s.size(), 0xa0, 31, 0xd9, 0xda, 0xdb);
  out.insert(out.end(), s.begin(), s.end());
}
inline void write_int(Bytes& out, int64_t i) {
  if (i >= 0 && i <= 0x7f) {
    out.push_back(uint8_t(i));
  } else if (i < 0 && i >= -32) {
    out.push_back(uint8_t(int8_t(i)));
  } else if (i >= INT32_MIN && i <= INT32_MAX) {
    out.push_back(0xd2);
    detail::put_be(out, uint32_t(int32_t(i)), 4);
  } else {
    out.push_back(0xd3);
    detail::put_be(out, uint64_t(i), 8);
  }
}

inline void encode_to(const Value& v, Bytes& out) {
  using detail::put_be;
  using detail::put_header;
  switch (v.type()) {
    case Value::Type::Null: out.push_back(0xc0); break;
    case Value::Type::Bool: out.push_back(v.as_bool() ? 0xc3 : 0xc2); break;
    case Value::Type::Int: write_int(out, v.as_int()); break;
    case Value::Type::Double: {
      double d = v.as_double();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      out.push_back(0xcb);
      put_be(out, bits, 8);
      break;
    }
    case Value::Type::String: write_str(out, v.as_string()); break;
    case Value::Type::Binary: {
      auto& b = v.as_binary();
      size_t n = b.size();
      int width = n <= 0xff ? 1 : n <= 0xffff ? 2 : 4;
      out.push_back(width == 1 ? 0xc4 : width == 2 ? 0xc5 : 0xc6);
      put_be(out, n, width);
      out.insert(out.end(), b.begin(), b.end());
      break;
    }
    case Value::Type::Array: {
      auto& a = v.as_array();
      put_header(out, a.size(), 0x90, 15, 0, 0xdc, 0xdd);
      for (auto& e : a) encode_to(e, out);
      break;
    }
    case Value::Type::Map: {
      auto& m = v.as_map();
      put_header(out, m.size(), 0x80, 15, 0, 0xde, 0xdf);
      for (auto& [k, e] : m) {
        encode_to(Value(k), out);
        encode_to(e, out);
      }
      break;
    }
  }
}

inline Bytes encode(const Value& v) {
  Bytes out;
  encode_to(v, out);
  return out;
}

class Decoder {
 public:
  // build=false checks the input (every rule, every limit) without building Values.
  Decoder(const uint8_t* data, size_t size, const Limits& limits, bool build = true)
      : p_(data), size_(size), lim_(limits), build_(build) {}

  Result<Value> decode_one() {
    if (size_ > lim_.max_input)
      return Status::error("msgpack: input of " + std::to_string(size_) +
                           " bytes exceeds the limit of " + std::to_string(lim_.max_input));
    Value v;
    if (!read(v, 0)) return Status::error(err_);
    return v;
  }
  Result<Value> decode_all() {
    auto r = decode_one();
    if (r && pos_ != size_)
      return Status::error("msgpack: " + std::to_string(size_ - pos_) +
                           " trailing bytes at offset " + std::to_string(pos_));
    return r;
  }
  size_t offset() const { return pos_; }

 private:
  bool fail(std::string what) {
    err_ = "msgpack: " + what + " at offset " + std::to_string(pos_);
    return false;
  }
  bool need(size_t n) {
    if (size_ - pos_ < n) return fail("truncated input (need " + std::to_string(n) + " bytes)");
    return true;
  }
  bool be(int n, uint64_t& v) {
    if (!need(size_t(n))) return false;
    v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | p_[pos_++];
    return true;
  }
  bool str(size_t n, Value& out) {
    if (n > lim_.max_string) return fail("string of " + std::to_string(n) + " bytes over limit");
    if (!need(n)) return false;
    last_str_ = std::string_view(reinterpret_cast<const char*>(p_ + pos_), n);
    if (build_) out = Value(std::string(last_str_));
    else out = Value("");  // marks "a string" for the key check
    pos_ += n;
    return true;
  }
  bool bin(size_t n, Value& out) {
    if (n > lim_.max_string) return fail("binary of " + std::to_string(n) + " bytes over limit");
    if (!need(n)) return false;
    if (build_) out = Value(Bytes(p_ + pos_, p_ + pos_ + n));
    pos_ += n;
    return true;
  }
  bool count_ok(size_t n, size_t min_bytes_each) {
    if (n > lim_.max_elements) return fail("container of " + std::to_string(n) + " elements over limit");
    // Every element takes at least one byte: reject counts the remaining input cannot hold.
    if (n * min_bytes_each > size_ - pos_) return fail("container claims " + std::to_string(n) + " elements past end of input");
    return true;
  }
  bool arr(size_t n, Value& out, size_t depth) {
    if (!count_ok(n, 1)) return false;
    if (!build_) {
      Value e;
      for (size_t i = 0; i < n; ++i)
        if (!read(e, depth + 1)) return false;
      return true;
    }
    Array a;
    // Bounded: each nesting level of a hostile input could otherwise reserve up to what the
    // remaining bytes allow, and 64 levels multiply that.
    a.reserve(std::min<size_t>(n, 4096));
    for (size_t i = 0; i < n; ++i) {
      Value e;
      if (!read(e, depth + 1)) return false;
      a.push_back(std::move(e));
    }
    out = Value(std::move(a));
    return true;
  }
  bool map(size_t n, Value& out, size_t depth) {
    if (!count_ok(n, 2)) return false;
    if (!build_) return check_map(n, depth);
    Map m;
    for (size_t i = 0; i < n; ++i) {
      size_t key_at = pos_;
      Value k, e;
      if (!read(k, depth + 1)) return false;
      if (!k.is_string()) {
        pos_ = key_at;
        return fail("map key is not a string");
      }
      if (!read(e, depth + 1)) return false;
      if (!m.emplace(k.as_string(), std::move(e)).second) {
        pos_ = key_at;
        return fail("duplicate map key \"" + k.as_string() + "\"");
      }
    }
    out = Value(std::move(m));
    return true;
  }
  bool check_map(size_t n, size_t depth) {
    // Small maps (the common case) compare keys linearly; large ones use a hash set so a
    // hostile million-key map costs linear time.
    std::vector<std::string_view> few;
    std::unordered_set<std::string_view> many;
    for (size_t i = 0; i < n; ++i) {
      size_t key_at = pos_;
      Value k, e;  // fresh each time: a non-building read leaves containers untouched
      if (!read(k, depth + 1)) return false;
      if (!k.is_string()) {
        pos_ = key_at;
        return fail("map key is not a string");
      }
      bool dup = false;
      if (n <= 16) {
        dup = std::find(few.begin(), few.end(), last_str_) != few.end();
        few.push_back(last_str_);
      } else {
        dup = !many.insert(last_str_).second;
      }
      if (dup) {
        pos_ = key_at;
        return fail("duplicate map key \"" + std::string(last_str_) + "\"");
      }
      if (!read(e, depth + 1)) return false;
    }
    return true;
  }
  bool read(Value& out, size_t depth) {
    if (depth > lim_.max_depth) return fail("nesting deeper than " + std::to_string(lim_.max_depth));
    if (!need(1)) return false;
    uint8_t c = p_[pos_++];
    uint64_t n = 0;
    if (c <= 0x7f) return out = Value(int64_t(c)), true;
    if (c >= 0xe0) return out = Value(int64_t(int8_t(c))), true;
    if ((c & 0xe0) == 0xa0) return str(c & 0x1f, out);
    if ((c & 0xf0) == 0x90) return arr(c & 0x0f, out, depth);
    if ((c & 0xf0) == 0x80) return map(c & 0x0f, out, depth);
    switch (c) {
      case 0xc0: out = Value(); return true;
      case 0xc2: out = Value(false); return true;
      case 0xc3: out = Value(true); return true;
      case 0xc4: return be(1, n) && bin(n, out);
      case 0xc5: return be(2, n) && bin(n, out);
      case 0xc6: return be(4, n) && bin(n, out);
      case 0xca: {
        if (!be(4, n)) return false;
        uint32_t b = uint32_t(n);
        float f;
        std::memcpy(&f, &b, 4);
        out = Value(double(f));
        return true;
      }
      case 0xcb: {
        if (!be(8, n)) return false;
        double d;
        std::memcpy(&d, &n, 8);
        out = Value(d);
        return true;
      }
      case 0xcc: return be(1, n) && (out = Value(int64_t(n)), true);
      case 0xcd: return be(2, n) && (out = Value(int64_t(n)), true);
      case 0xce: return be(4, n) && (out = Value(int64_t(n)), true);
      case 0xcf:
        if (!be(8, n)) return false;
        if (n > uint64_t(INT64_MAX)) {
          pos_ -= 9;
          return fail("unsigned integer beyond int64 range");
        }
        out = Value(int64_t(n));
        return true;
      case 0xd0: return be(1, n) && (out = Value(int64_t(int8_t(n))), true);
      case 0xd1: return be(2, n) && (out = Value(int64_t(int16_t(n))), true);
      case 0xd2: return be(4, n) && (out = Value(int64_t(int32_t(n))), true);
      case 0xd3: return be(8, n) && (out = Value(int64_t(n)), true);
      case 0xd9: return be(1, n) && str(n, out);
      case 0xda: return be(2, n) && str(n, out);
      case 0xdb: return be(4, n) && str(n, out);
      case 0xdc: return be(2, n) && arr(n, out, depth);
      case 0xdd: return be(4, n) && arr(n, out, depth);
      case 0xde: return be(2, n) && map(n, out, depth);
      case 0xdf: return be(4, n) && map(n, out, depth);
      default:
        --pos_;
        return fail("unsupported type byte 0x" + hex(c));
    }
  }
  static std::string hex(uint8_t c) {
    const char* d = "0123456789abcdef";
    return {d[c >> 4], d[c & 15]};
  }

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  Limits lim_;
  bool build_ = true;
  std::string_view last_str_;
  std::string err_;
};

// Decodes exactly one value spanning all of [data, data+size). Errors name the offset.
inline Result<Value> decode(const uint8_t* data, size_t size, const Limits& limits = {}) {
  return Decoder(data, size, limits).decode_all();
}
// Checks that [data, data+size) is exactly one well-formed value within limits, as decode
// would, without building it.
inline Status validate(const uint8_t* data, size_t size, const Limits& limits = {}) {
  auto r = Decoder(data, size, limits, false).decode_all();
  return r ? Status() : r.status();
}

inline Result<Value> decode(const Bytes& b, const Limits& limits = {}) {
  return decode(b.data(), b.size(), limits);
}
inline Result<Value> decode(std::string_view s, const Limits& limits = {}) {
  return decode(reinterpret_cast<const uint8_t*>(s.data()), s.size(), limits);
}

}  // namespace msgpack

// Renders a Value as JSON (binary as a hex string). For logs, CLIs and reports.
inline void to_json(const Value& v, std::string& out) {
  switch (v.type()) {
    case Value::Type::Null: out += "null"; break;
    case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Value::Type::Int: out += std::to_string(v.as_int()); break;
    case Value::Type::Double: {
      double d = v.as_double();
      if (!std::isfinite(d)) {
        out += "null";
        break;
      }
      // Shortest text that reads back as the same double: 33.6, not 33.600000000000001.
      char buf[32];
      auto res = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, res.ptr);
      break;
    }
    case Value::Type::String: {
      out += '"';
      for (unsigned char c : v.as_string()) {
        switch (c) {
          case '"': out += "\\\""; break;
          case '\\': out += "\\\\"; break;
          case '\n': out += "\\n"; break;
          case '\r': out += "\\r"; break;
          case '\t': out += "\\t"; break;
          default:
            if (c < 0x20) {
              char buf[8];
              std::snprintf(buf, sizeof buf, "\\u%04x", c);
              out += buf;
            } else {
              out += char(c);
            }
        }
      }
      out += '"';
      break;
    }
    case Value::Type::Binary: {
      static const char* d = "0123456789abcdef";
      out += '"';
      for (uint8_t b : v.as_binary()) out += d[b >> 4], out += d[b & 15];
      out += '"';
      break;
    }
    case Value::Type::Array: {
      out += '[';
      bool first = true;
      for (auto& e : v.as_array()) {
        if (!first) out += ',';
        first = false;
        to_json(e, out);
      }
      out += ']';
      break;
    }
    case Value::Type::Map: {
      out += '{';
      bool first = true;
      for (auto& [k, e] : v.as_map()) {
        if (!first) out += ',';
        first = false;
        to_json(Value(k), out);
        out += ':';
        to_json(e, out);
      }
      out += '}';
      break;
    }
  }
}
inline std::string to_json(const Value& v) {
  std::string s;
  to_json(v, s);
  return s;
}

}  // namespace evald
