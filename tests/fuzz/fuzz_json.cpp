// fuzz_json: evald::text::parse_json on arbitrary bytes, under the default depth limit and a
// tight one. Properties checked when a parse succeeds:
//   * every string and key is valid UTF-8 (checked by a decoder here) and no object repeats a key;
//   * each value's offset points at a byte that starts a value of its type;
//   * a number is a uint exactly when its text is digits only and at most 2^64 - 1, with that
//     value, and its double is the one strtod gives for the text, bit for bit;
//   * writing the value out (raw UTF-8, and again ASCII-only with \u escapes and surrogate pairs)
//     parses back to an equal value, and writing that gives the same text;
//   * the tight limit accepts nothing the default refuses, and gives the same value.
// A failed parse has a message and an offset within the input.
#include "fuzz_common.hpp"
#include "json.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>

using evald::text::Json;
using evald::text::JsonError;
using evald::text::parse_json;

namespace {

// Decodes one UTF-8 sequence at s[*i] (RFC 3629); returns false when invalid.
bool next_code_point(std::string_view s, size_t* i, uint32_t* cp) {
  const uint8_t c = uint8_t(s[*i]);
  size_t n;
  uint32_t min;
  if (c < 0x80) n = 0, *cp = c, min = 0;
  else if (c >= 0xc0 && c < 0xe0) n = 1, *cp = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c < 0xf0) n = 2, *cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c < 0xf8) n = 3, *cp = c & 0x07, min = 0x10000;
  else return false;
  if (s.size() - *i <= n) return false;
  for (size_t k = 1; k <= n; ++k) {
    const uint8_t d = uint8_t(s[*i + k]);
    if ((d & 0xc0) != 0x80) return false;
    *cp = *cp << 6 | (d & 0x3f);
  }
  *i += n + 1;
  return *cp >= min && *cp <= 0x10ffff && (*cp < 0xd800 || *cp >= 0xe000);
}

bool valid_utf8(std::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();)
    if (!next_code_point(s, &i, &cp)) return false;
  return true;
}

void write_string(std::string_view s, bool ascii, std::string* out) {
  static const char* hex = "0123456789ABCDEF";
  auto u = [&](uint32_t v) {
    *out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) *out += hex[(v >> shift) & 15];
  };
  *out += '"';
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    uint32_t cp = 0;
    FUZZ_CHECK(next_code_point(s, &i, &cp), "a parsed string is not valid UTF-8");
    if (cp == '"' || cp == '\\') *out += '\\', *out += char(cp);
    else if (cp < 0x20) u(cp);
    else if (cp < 0x80 || !ascii) out->append(s.substr(start, i - start));
    else if (cp < 0x10000) u(cp);
    else u(0xd800 + ((cp - 0x10000) >> 10)), u(0xdc00 + ((cp - 0x10000) & 0x3ff));
  }
  *out += '"';
}

// Canonical JSON text of a value; non-uint numbers always carry an exponent so that they come
// back as non-uints, and infinities are written as numbers that overflow again.
void write(const Json& v, bool ascii, std::string* out) {
  switch (v.type()) {
    case Json::Type::Null: *out += "null"; break;
    case Json::Type::Bool: *out += v.as_bool() ? "true" : "false"; break;
    case Json::Type::Number: {
      if (v.is_uint()) {
        *out += std::to_string(v.as_uint());
      } else if (std::isinf(v.as_double())) {
        *out += v.as_double() < 0 ? "-1e999" : "1e999";
      } else {
        char buf[64] = {};
        std::to_chars(buf, buf + sizeof buf - 1, v.as_double(), std::chars_format::scientific);
        *out += buf;
      }
      break;
    }
    case Json::Type::String: write_string(v.str(), ascii, out); break;
    case Json::Type::Array:
      *out += '[';
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) *out += ',';
        write(v.items()[i], ascii, out);
      }
      *out += ']';
      break;
    case Json::Type::Object:
      *out += '{';
      for (size_t i = 0; i < v.members().size(); ++i) {
        if (i) *out += ',';
        write_string(v.members()[i].first, ascii, out);
        *out += ':';
        write(v.members()[i].second, ascii, out);
      }
      *out += '}';
      break;
  }
}

bool same(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::Type::Null: return true;
    case Json::Type::Bool: return a.as_bool() == b.as_bool();
    case Json::Type::Number: {
      if (a.is_uint() != b.is_uint() || (a.is_uint() && a.as_uint() != b.as_uint())) return false;
      const double x = a.as_double(), y = b.as_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case Json::Type::String: return a.str() == b.str();
    case Json::Type::Array:
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!same(a.items()[i], b.items()[i])) return false;
      return true;
    case Json::Type::Object:
      if (a.members().size() != b.members().size()) return false;
      for (size_t i = 0; i < a.members().size(); ++i)
        if (a.members()[i].first != b.members()[i].first || !same(a.members()[i].second, b.members()[i].second)) return false;
      return true;
  }
  return false;
}

// Checks a parsed value against the input it came from.
void check_value(const Json& v, std::string_view in) {
  FUZZ_CHECK(v.offset() < in.size(), "offset %llu past the input", (unsigned long long)v.offset());
  const char c = in[v.offset()];
  switch (v.type()) {
    case Json::Type::Null: FUZZ_CHECK(c == 'n', "null at '%c'", c); break;
    case Json::Type::Bool: FUZZ_CHECK(c == (v.as_bool() ? 't' : 'f'), "bool at '%c'", c); break;
    case Json::Type::String: FUZZ_CHECK(c == '"', "string at '%c'", c); FUZZ_CHECK(valid_utf8(v.str()), "string is not UTF-8"); break;
    case Json::Type::Number: {
      FUZZ_CHECK(c == '-' || (c >= '0' && c <= '9'), "number at '%c'", c);
      const size_t end = in.find_first_not_of("+-.eE0123456789", v.offset());
      const std::string text(in.substr(v.offset(), end == std::string_view::npos ? std::string_view::npos : end - v.offset()));
      // Digits only and within uint64: exactly then a uint.
      bool fits = text.find_first_not_of("0123456789") == std::string::npos;
      uint64_t u = 0;
      for (size_t k = 0; fits && k < text.size(); ++k)
        fits = !__builtin_mul_overflow(u, 10, &u) && !__builtin_add_overflow(u, uint64_t(text[k] - '0'), &u);
      FUZZ_CHECK(v.is_uint() == fits, "is_uint is %d for %s", int(v.is_uint()), text.c_str());
      if (fits) FUZZ_CHECK(v.as_uint() == u, "as_uint of %s is %llu", text.c_str(), (unsigned long long)v.as_uint());
      const double want = std::strtod(text.c_str(), nullptr), got = v.as_double();
      FUZZ_CHECK(std::memcmp(&want, &got, sizeof got) == 0, "as_double of %s is %.17g, strtod says %.17g", text.c_str(), got, want);
      break;
    }
    case Json::Type::Array:
      FUZZ_CHECK(c == '[', "array at '%c'", c);
      for (const Json& i : v.items()) check_value(i, in);
      break;
    case Json::Type::Object: {
      FUZZ_CHECK(c == '{', "object at '%c'", c);
      std::unordered_set<std::string_view> keys;
      for (const auto& [k, m] : v.members()) {
        FUZZ_CHECK(valid_utf8(k), "key is not UTF-8");
        FUZZ_CHECK(keys.insert(k).second, "duplicate key accepted");
        FUZZ_CHECK(v.find(k) == &m, "find does not return the member");
        check_value(m, in);
      }
      break;
    }
  }
}

void round_trip(const Json& v, bool ascii, const uint8_t* data, size_t size) {
  std::string text;
  write(v, ascii, &text);
  Json again;
  JsonError err;
  FUZZ_CHECK(parse_json(text, &again, &err), "written value does not parse: %s at %llu (input %s)", err.message.c_str(),
             (unsigned long long)err.offset, evald::fuzz::hex_prefix(data, size).c_str());
  FUZZ_CHECK(same(v, again), "parse(write(v)) != v (input %s)", evald::fuzz::hex_prefix(data, size).c_str());
  std::string text2;
  write(again, ascii, &text2);
  FUZZ_CHECK(text == text2, "writing is not canonical (input %s)", evald::fuzz::hex_prefix(data, size).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Json v;
  JsonError err;
  const bool ok = parse_json(in, &v, &err);
  if (ok) {
    check_value(v, in);
    round_trip(v, false, data, size);
    round_trip(v, true, data, size);
  } else {
    FUZZ_CHECK(!err.message.empty(), "error without a message");
    FUZZ_CHECK(err.offset <= size, "error offset %llu past the input", (unsigned long long)err.offset);
  }

  Json tight;
  JsonError tight_err;
  if (parse_json(in, &tight, &tight_err, 3)) FUZZ_CHECK(ok && same(v, tight), "the tight depth limit accepts what the default refuses");
  else FUZZ_CHECK(tight_err.offset <= size && !tight_err.message.empty(), "bad error under the tight limit");
  return 0;
}
