#include "json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_set>

namespace evald::text {

const Json* Json::find(std::string_view key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(std::string_view s, int max_depth) : s_(s), max_depth_(max_depth) {}

  bool parse(Json* out, JsonError* err) {
    ws();
    if (!value(out, 0)) return fail_out(err);
    ws();
    if (p_ != s_.size()) {
      error("unexpected data after the JSON value");
      return fail_out(err);
    }
    return true;
  }

 private:
  bool fail_out(JsonError* err) {
    if (err) *err = err_;
    return false;
  }
  bool error(std::string msg, uint64_t at = UINT64_MAX) {
    if (err_.message.empty()) err_ = JsonError{at == UINT64_MAX ? p_ : at, std::move(msg)};
    return false;
  }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
  }
  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (s_.substr(p_, n) != word) return error("invalid literal");
    p_ += n;
    return true;
  }

  bool value(Json* out, int depth) {
    if (p_ >= s_.size()) return error("unexpected end of input");
    out->offset_ = p_;
    char c = s_[p_];
    switch (c) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': out->type_ = Json::Type::String; return string(&out->str_);
      case 't': out->type_ = Json::Type::Bool; out->bool_ = true; return literal("true");
      case 'f': out->type_ = Json::Type::Bool; out->bool_ = false; return literal("false");
      case 'n': out->type_ = Json::Type::Null; return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        return error(std::string("unexpected character '") + (c >= 32 && c < 127 ? std::string(1, c) : "\\x" + hex2(uint8_t(c))) + "'");
    }
  }
  static std::string hex2(uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }

  bool object(Json* out, int depth) {
    if (depth >= max_depth_) return error("nesting deeper than " + std::to_string(max_depth_));
    out->type_ = Json::Type::Object;
    ++p_;
    ws();
    if (p_ < s_.size() && s_[p_] == '}') {
      ++p_;
      return true;
    }
    std::unordered_set<std::string> seen;
    while (true) {
      ws();
      if (p_ >= s_.size() || s_[p_] != '"') return error("expected a string key");
      uint64_t key_at = p_;
      std::string key;
      if (!string(&key)) return false;
      ws();
      if (p_ >= s_.size() || s_[p_] != ':') return error("expected ':' after a key");
      ++p_;
      ws();
      if (!seen.insert(key).second) return error("duplicate key \"" + key + "\"", key_at);
      out->members_.emplace_back(std::move(key), Json());
      if (!value(&out->members_.back().second, depth + 1)) return false;
      ws();
      if (p_ >= s_.size()) return error("unterminated object");
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == '}') {
        ++p_;
        return true;
      }
      return error("expected ',' or '}' in an object");
    }
  }

  bool array(Json* out, int depth) {
    if (depth >= max_depth_) return error("nesting deeper than " + std::to_string(max_depth_));
    out->type_ = Json::Type::Array;
    ++p_;
    ws();
    if (p_ < s_.size() && s_[p_] == ']') {
      ++p_;
      return true;
    }
    while (true) {
      ws();
      out->items_.emplace_back();
      if (!value(&out->items_.back(), depth + 1)) return false;
      ws();
      if (p_ >= s_.size()) return error("unterminated array");
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == ']') {
        ++p_;
        return true;
      }
      return error("expected ',' or ']' in an array");
    }
  }

  bool number(Json* out) {
    out->type_ = Json::Type::Number;
    size_t start = p_;
    bool integer = true;
    if (s_[p_] == '-') ++p_;
    if (p_ >= s_.size() || !isdigit(s_[p_])) return error("invalid number", start);
    if (s_[p_] == '0') {
      ++p_;
      if (p_ < s_.size() && isdigit(s_[p_])) return error("invalid number: leading zero", start);
    } else {
      while (p_ < s_.size() && isdigit(s_[p_])) ++p_;
    }
    if (p_ < s_.size() && s_[p_] == '.') {
      integer = false;
      ++p_;
      if (p_ >= s_.size() || !isdigit(s_[p_])) return error("invalid number: digit expected after '.'", start);
      while (p_ < s_.size() && isdigit(s_[p_])) ++p_;
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      integer = false;
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      if (p_ >= s_.size() || !isdigit(s_[p_])) return error("invalid number: digit expected in exponent", start);
      while (p_ < s_.size() && isdigit(s_[p_])) ++p_;
    }
    std::string_view text = s_.substr(start, p_ - start);
    if (integer && text[0] != '-') {
      auto r = std::from_chars(text.data(), text.data() + text.size(), out->uint_);
      out->is_uint_ = r.ec == std::errc() && r.ptr == text.data() + text.size();
    }
    auto r = std::from_chars(text.data(), text.data() + text.size(), out->num_);
    if (r.ec == std::errc::result_out_of_range) {
      // from_chars reports underflow like overflow and leaves the value unset: tell them apart.
      out->num_ = decimal_exponent(text) < 0 ? 0.0 : HUGE_VAL;
      if (text[0] == '-') out->num_ = -out->num_;
    }
    return true;
  }
  // Decimal exponent of the first significant digit of a valid, non-zero JSON number
  // (saturating): 1.5 -> 0, 120 -> 2, 0.01e-3 -> -5.
  static int64_t decimal_exponent(std::string_view t) {
    int64_t exp = 0;
    size_t e = t.find_first_of("eE");
    if (e != std::string_view::npos) {
      size_t i = e + 1;
      bool neg = t[i] == '-';
      if (t[i] == '+' || t[i] == '-') ++i;
      for (; i < t.size(); ++i) exp = std::min<int64_t>(exp * 10 + (t[i] - '0'), 1'000'000'000);
      if (neg) exp = -exp;
    }
    std::string_view mant = t.substr(0, e);
    size_t point = std::min(mant.find('.'), mant.size());
    size_t first = mant.find_first_of("123456789");
    if (first == std::string_view::npos) return 0;
    return exp + (first < point ? int64_t(point - first - 1) : -int64_t(first - point));
  }
  static bool isdigit(char c) { return c >= '0' && c <= '9'; }

  bool hex4(uint32_t* v) {
    if (s_.size() - p_ < 4) return error("truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[p_++];
      *v <<= 4;
      if (c >= '0' && c <= '9') *v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') *v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') *v |= uint32_t(c - 'A' + 10);
      else return error("invalid hex digit in \\u escape", p_ - 1);
    }
    return true;
  }
  static void put_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      *out += char(cp);
    } else if (cp < 0x800) {
      *out += char(0xc0 | (cp >> 6));
      *out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += char(0xe0 | (cp >> 12));
      *out += char(0x80 | ((cp >> 6) & 0x3f));
      *out += char(0x80 | (cp & 0x3f));
    } else {
      *out += char(0xf0 | (cp >> 18));
      *out += char(0x80 | ((cp >> 12) & 0x3f));
      *out += char(0x80 | ((cp >> 6) & 0x3f));
      *out += char(0x80 | (cp & 0x3f));
    }
  }

  // Validates one UTF-8 sequence starting at p_ (RFC 3629: no overlongs, no surrogates).
  bool utf8_char(std::string* out) {
    uint8_t c = uint8_t(s_[p_]);
    int n;
    uint32_t cp, min;
    if (c < 0xc2) return error("invalid UTF-8 byte 0x" + hex2(c));
    if (c < 0xe0) n = 1, cp = c & 0x1f, min = 0x80;
    else if (c < 0xf0) n = 2, cp = c & 0x0f, min = 0x800;
    else if (c < 0xf5) n = 3, cp = c & 0x07, min = 0x10000;
    else return error("invalid UTF-8 byte 0x" + hex2(c));
    if (s_.size() - p_ <= size_t(n)) return error("truncated UTF-8 sequence");
    for (int i = 1; i <= n; ++i) {
      uint8_t d = uint8_t(s_[p_ + i]);
      if ((d & 0xc0) != 0x80) return error("invalid UTF-8 continuation byte", p_ + i);
      cp = cp << 6 | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return error("invalid UTF-8 sequence");
    out->append(s_.data() + p_, size_t(n) + 1);
    p_ += size_t(n) + 1;
    return true;
  }

  bool string(std::string* out) {
    ++p_;  // opening quote
    while (true) {
      if (p_ >= s_.size()) return error("unterminated string");
      char c = s_[p_];
      if (c == '"') {
        ++p_;
        return true;
      }
      if (uint8_t(c) < 0x20) return error("control character in a string");
      if (uint8_t(c) >= 0x80) {
        if (!utf8_char(out)) return false;
        continue;
      }
      if (c != '\\') {
        *out += c;
        ++p_;
        continue;
      }
      uint64_t esc_at = p_;
      if (++p_ >= s_.size()) return error("unterminated escape");
      char e = s_[p_++];
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {
            uint32_t lo;
            if (s_.size() - p_ < 2 || s_[p_] != '\\' || s_[p_ + 1] != 'u') return error("unpaired surrogate in \\u escape", esc_at);
            p_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xdc00 || lo >= 0xe000) return error("unpaired surrogate in \\u escape", esc_at);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return error("unpaired surrogate in \\u escape", esc_at);
          }
          put_utf8(out, cp);
          break;
        }
        default: return error("invalid escape", esc_at);
      }
    }
  }

  std::string_view s_;
  size_t p_ = 0;
  int max_depth_;
  JsonError err_;
};

bool parse_json(std::string_view text, Json* out, JsonError* err, int max_depth) {
  *out = Json();
  return JsonParser(text, max_depth).parse(out, err);
}

}  // namespace evald::text
