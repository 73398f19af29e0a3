#include "records.hpp"

#include "csv.hpp"
#include "json.hpp"

#include <sodium.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace evald::text {

namespace {

std::string trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(" \t");
  return std::string(s.substr(a, b - a + 1));
}

Value to_value(const Json& j) {
  switch (j.type()) {
    case Json::Type::Null: return Value();
    case Json::Type::Bool: return Value(j.as_bool());
    case Json::Type::Number:
      if (j.is_uint() && j.as_uint() <= uint64_t(INT64_MAX)) return Value(int64_t(j.as_uint()));
      return Value(j.as_double());
    case Json::Type::String: return Value(j.str());
    case Json::Type::Array: {
      Array a;
      for (auto& x : j.items()) a.push_back(to_value(x));
      return Value(std::move(a));
    }
    case Json::Type::Object: {
      Value m = Map{};
      for (auto& [k, v] : j.members()) m.set(k, to_value(v));
      return m;
    }
  }
  return Value();
}

std::string where(const std::string& name, uint64_t line) { return name + ":" + std::to_string(line); }

Result<RecordFile> parse_csv_records(std::string_view text, RecordFile f) {
  std::vector<CsvRecord> rows;
  CsvError e;
  if (!parse_csv(text, &rows, &e)) return Status::error(where(f.path, e.line) + ": " + e.message);
  if (rows.empty()) return Status::error(f.path + ": no header row (the file is empty)");
  std::set<std::string> seen;
  for (auto& h : rows[0].fields) {
    std::string name = trim(h);
    if (name.empty()) return Status::error(where(f.path, rows[0].line) + ": header has an empty column name");
    if (!seen.insert(name).second) return Status::error(where(f.path, rows[0].line) + ": header names column \"" + name + "\" twice");
    f.columns.push_back(name);
  }
  for (size_t r = 1; r < rows.size(); ++r) {
    Record rec;
    rec.line = rows[r].line;
    rec.fields = Map{};
    auto& fields = rows[r].fields;
    if (fields.size() > f.columns.size())
      rec.defect = "row has " + std::to_string(fields.size()) + " fields, the header " + std::to_string(f.columns.size());
    for (size_t c = 0; c < f.columns.size() && c < fields.size(); ++c) rec.fields.set(f.columns[c], trim(fields[c]));
    f.records.push_back(std::move(rec));
  }
  return f;
}

Result<RecordFile> parse_json_records(std::string_view text, RecordFile f) {
  Json root;
  JsonError e;
  size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  if (!parse_json(text.substr(start), &root, &e))
    return Status::error(where(f.path, line_of(text, start + e.offset)) + ": invalid JSON: " + e.message);
  const Json* arr = &root;
  if (root.is_object()) {
    arr = nullptr;
    for (auto& [k, v] : root.members())
      if (v.is_array()) {
        if (arr) return Status::error(f.path + ": the top-level object holds more than one array; expected one array of records");
        arr = &v;
      }
    if (!arr) return Status::error(f.path + ": expected an array of records, or an object holding one");
  }
  if (!arr->is_array()) return Status::error(f.path + ": expected an array of records");
  for (auto& item : arr->items()) {
    uint64_t line = line_of(text, start + item.offset());
    if (!item.is_object()) return Status::error(where(f.path, line) + ": a record must be a JSON object, found " + item.type_name());
    f.records.push_back({line, to_value(item), {}});
  }
  return f;
}

Result<RecordFile> parse_jsonl_records(std::string_view text, RecordFile f) {
  size_t pos = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  uint64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line;
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;
    Json j;
    JsonError e;
    if (!parse_json(l, &j, &e)) return Status::error(where(f.path, line) + ": invalid JSON at column " + std::to_string(e.offset + 1) + ": " + e.message);
    if (!j.is_object()) return Status::error(where(f.path, line) + ": a record must be a JSON object, found " + j.type_name());
    f.records.push_back({line, to_value(j), {}});
  }
  return f;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : h) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

Result<RecordFile> parse_records(std::string_view text, const std::string& name, const std::string& format) {
  RecordFile f;
  f.path = name;
  f.format = format;
  f.sha256 = sha256_hex(text);
  f.bytes = text.size();
  if (format == "csv") return parse_csv_records(text, std::move(f));
  if (format == "json") return parse_json_records(text, std::move(f));
  if (format == "jsonl") return parse_jsonl_records(text, std::move(f));
  return Status::error(name + ": unknown record format \"" + format + "\" (csv, json or jsonl)");
}

Result<RecordFile> read_records(const std::string& path, uint64_t max_bytes) {
  std::string ext;
  if (size_t dot = path.rfind('.'); dot != std::string::npos && path.find('/', dot) == std::string::npos) ext = path.substr(dot + 1);
  for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  std::string format = ext == "csv" ? "csv" : ext == "json" ? "json" : (ext == "jsonl" || ext == "ndjson") ? "jsonl" : "";
  if (format.empty()) return Status::error(path + ": cannot tell the format from the extension (use .csv, .json or .jsonl)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  auto size = in.tellg();
  if (size < 0) return Status::error(path + ": cannot read its size");
  if (uint64_t(size) > max_bytes) return Status::error(path + ": " + std::to_string(uint64_t(size)) + " bytes, over the limit of " + std::to_string(max_bytes));
  in.seekg(0);
  std::string text(size_t(size), '\0');
  if (!in.read(text.data(), size)) return Status::error(path + ": read failed");
  return parse_records(text, path, format);
}

std::string field_text(const Value& fields, std::string_view name) {
  auto* v = fields.find(name);
  if (!v || v->is_null()) return {};
  if (v->is_string()) return v->as_string();
  if (v->is_number()) {
    if (v->is_int()) return std::to_string(v->as_int());
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v->as_double());
    return std::string(buf, r.ptr);
  }
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  return to_json(*v);
}

Result<double> field_number(const Value& fields, std::string_view name) {
  auto* v = fields.find(name);
  if (!v || v->is_null() || (v->is_string() && v->as_string().empty()))
    return Status::error("field \"" + std::string(name) + "\" is missing");
  if (v->is_number()) return v->as_double();
  if (!v->is_string()) return Status::error("field \"" + std::string(name) + "\" is not a number");
  const std::string& s = v->as_string();
  double d = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), d);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(d))
    return Status::error("field \"" + std::string(name) + "\" is not a number: \"" + s + "\"");
  return d;
}

}  // namespace evald::text
