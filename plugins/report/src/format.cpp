#include "format.hpp"

#include <cmath>
#include <cstdio>

namespace evald::report {

namespace {
std::string utf8(std::string_view s, bool keep_controls) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if (keep_controls || (c >= 0x20 && c != 0x7f) || c == '\t' || c == '\n') out += char(c);
      ++i;
      continue;
    }
    // The length and the smallest code point of each lead byte; overlong forms, surrogates
    // and code points past U+10FFFF are invalid (RFC 3629).
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    uint32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))) ok = false;
    // C1 controls (U+0080..U+009F) are dropped like C0 ones.
    if (ok) {
      if (keep_controls || !(cp >= 0x80 && cp <= 0x9f)) out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}
}  // namespace

std::string clean_utf8(std::string_view s) { return utf8(s, false); }
std::string valid_utf8(std::string_view s) { return utf8(s, true); }

Value valid_utf8_tree(const Value& v) {
  if (v.is_string()) return Value(valid_utf8(v.as_string()));
  if (v.is_array()) {
    Array a;
    a.reserve(v.as_array().size());
    for (auto& e : v.as_array()) a.push_back(valid_utf8_tree(e));
    return Value(std::move(a));
  }
  if (v.is_map()) {
    Map m;
    for (auto& [k, e] : v.as_map()) m.emplace(valid_utf8(k), valid_utf8_tree(e));
    return Value(std::move(m));
  }
  return v;
}

std::string html_escape(std::string_view s) {
  std::string clean = clean_utf8(s), out;
  out.reserve(clean.size() + 16);
  for (char c : clean) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string md_escape(std::string_view s) {
  std::string clean = clean_utf8(s), out;
  out.reserve(clean.size() + 16);
  for (char c : clean) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\n':
      case '\t': out += ' '; break;
      case '\\': case '`': case '*': case '_': case '[': case ']': case '|': case '#': case '~': case '!':
        out += '\\';
        out += c;
        break;
      default: out += c;
    }
  }
  return out;
}

std::string csv_field(std::string_view s, bool text) {
  std::string v = clean_utf8(s);
  if (text && !v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t')) v.insert(v.begin(), '\'');
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string fixed(std::optional<double> x, int decimals) {
  if (!x || !std::isfinite(*x)) return {};
  char b[64];
  // Rounded half away from zero like the tally prints points (33.65 -> 33.7), and never "-0.0".
  double p = std::pow(10.0, decimals);
  double r = std::round(*x * p + (*x >= 0 ? 1e-7 : -1e-7)) / p;
  if (r == 0) r = 0;
  std::snprintf(b, sizeof b, "%.*f", decimals, r);
  return b;
}

std::string stat(std::optional<double> x) {
  if (!x || !std::isfinite(*x)) return {};
  char b[64];
  double a = std::fabs(*x);
  if (a != 0 && (a < 1e-3 || a >= 1e5)) std::snprintf(b, sizeof b, "%.2e", *x);
  else std::snprintf(b, sizeof b, "%.3f", *x);
  return b;
}

std::optional<double> num(const Value* v) {
  if (!v || !v->is_number()) return std::nullopt;
  double d = v->as_double();
  return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}
std::optional<double> num_at(const Value& v, std::string_view key) { return num(v.find(key)); }

std::string text_at(const Value& v, std::string_view key) {
  const Value* x = v.find(key);
  if (!x) return {};
  if (x->is_string()) return x->as_string();
  if (x->is_int()) return std::to_string(x->as_int());
  if (x->is_double()) return to_json(*x);
  if (x->is_bool()) return x->as_bool() ? "true" : "false";
  return {};
}

const Array& list_at(const Value& v, std::string_view key) {
  static const Array empty;
  const Value* x = v.find(key);
  return x && x->is_array() ? x->as_array() : empty;
}

const Value* map_at(const Value& v, std::string_view key) {
  const Value* x = v.find(key);
  return x && x->is_map() ? x : nullptr;
}

std::optional<std::pair<double, double>> interval_at(const Value& v, std::string_view key) {
  const Value* x = v.find(key);
  if (!x || !x->is_array() || x->as_array().size() != 2) return std::nullopt;
  auto lo = num(&x->as_array()[0]), hi = num(&x->as_array()[1]);
  if (!lo || !hi) return std::nullopt;
  return std::make_pair(*lo, *hi);
}

namespace {
void pretty(const Value& v, std::string& out, int depth) {
  auto indent = [&](int d) { out.append(size_t(d) * 2, ' '); };
  if (v.is_array() && !v.as_array().empty()) {
    out += "[\n";
    bool first = true;
    for (auto& e : v.as_array()) {
      if (!first) out += ",\n";
      first = false;
      indent(depth + 1);
      pretty(e, out, depth + 1);
    }
    out += '\n';
    indent(depth);
    out += ']';
  } else if (v.is_map() && !v.as_map().empty()) {
    out += "{\n";
    bool first = true;
    for (auto& [k, e] : v.as_map()) {
      if (!first) out += ",\n";
      first = false;
      indent(depth + 1);
      to_json(Value(k), out);
      out += ": ";
      pretty(e, out, depth + 1);
    }
    out += '\n';
    indent(depth);
    out += '}';
  } else {
    to_json(v, out);
  }
}
}  // namespace

std::string pretty_json(const Value& v) {
  std::string out;
  pretty(v, out, 0);
  return out;
}

}  // namespace evald::report
