#include "csv.hpp"

#include <algorithm>

namespace evald::text {

size_t invalid_utf8_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

uint64_t line_of(std::string_view text, uint64_t offset) {
  offset = std::min<uint64_t>(offset, text.size());
  return 1 + uint64_t(std::count(text.begin(), text.begin() + std::ptrdiff_t(offset), '\n'));
}

bool parse_csv(std::string_view text, std::vector<CsvRecord>* out, CsvError* err, size_t max_fields) {
  out->clear();
  return parse_csv(text, [&](CsvRecord&& r) { return out->push_back(std::move(r)), true; }, err, max_fields);
}

bool parse_csv(std::string_view text, const std::function<bool(CsvRecord&&)>& fn, CsvError* err, size_t max_fields) {
  auto fail = [&](uint64_t line, uint64_t offset, std::string msg) {
    if (err) *err = {line, offset, std::move(msg)};
    return false;
  };
  size_t start = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") start = 3;
  if (size_t bad = invalid_utf8_at(text.substr(start)); bad != std::string_view::npos)
    return fail(line_of(text, start + bad), start + bad, "invalid UTF-8 at byte offset " + std::to_string(start + bad));

  const size_t n = text.size();
  size_t i = start;
  uint64_t line = 1;
  while (i < n) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool record_done = false;
    while (!record_done) {
      field.clear();
      if (i < n && text[i] == '"') {
        const uint64_t open_line = line;
        const size_t open_at = i;
        ++i;
        while (true) {
          if (i >= n) return fail(open_line, open_at, "quoted field opened on line " + std::to_string(open_line) + " is never closed");
          char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (i < n && text[i] != ',' && text[i] != '\n' && !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') &&
            !(text[i] == '\r' && i + 1 == n))
          return fail(line, i, "text after the closing quote of a field");
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n' && !(text[i] == '\r' && (i + 1 == n || text[i + 1] == '\n'))) {
          if (text[i] == '"') return fail(line, i, "a quote inside an unquoted field (quote the whole field and double the quote)");
          field += text[i++];
        }
      }
      rec.fields.push_back(field);
      if (rec.fields.size() > max_fields)
        return fail(rec.line, i, "record has more than " + std::to_string(max_fields) + " fields");
      if (i >= n) {
        record_done = true;
      } else if (text[i] == ',') {
        ++i;
        if (i >= n) {
          rec.fields.emplace_back();  // "a," ends with an empty field
          if (rec.fields.size() > max_fields)
            return fail(rec.line, i, "record has more than " + std::to_string(max_fields) + " fields");
          record_done = true;
        }
      } else {
        i += text[i] == '\r' ? 2 : 1;
        if (i > n) i = n;
        ++line;
        record_done = true;
      }
    }
    bool blank = rec.fields.size() == 1 && rec.fields[0].find_first_not_of(" \t") == std::string::npos;
    if (!blank && !fn(std::move(rec))) return true;
  }
  return true;
}

}  // namespace evald::text
