#include "records.hpp"

#include "csv.hpp"
#include "json.hpp"
#include "strings.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace evald::text {

namespace {

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

using Sink = std::function<Status(Record&&)>;

Status scan_csv(std::string_view text, RecordFile* f, const Sink& fn) {
  bool header = true;
  Status st;
  CsvError e;
  bool ok = parse_csv(text, [&](CsvRecord&& row) {
    if (header) {
      header = false;
      std::set<std::string> seen;
      for (auto& h : row.fields) {
        std::string name = trim(h, " \t");
        if (name.empty()) return st = Status::error(where(f->path, row.line) + ": header has an empty column name"), false;
        if (!seen.insert(name).second)
          return st = Status::error(where(f->path, row.line) + ": header names column \"" + name + "\" twice"), false;
        f->columns.push_back(name);
      }
      return true;
    }
    Record rec;
    rec.line = row.line;
    rec.fields = Map{};
    if (row.fields.size() > f->columns.size())
      rec.defect = "row has " + std::to_string(row.fields.size()) + " fields, the header " + std::to_string(f->columns.size());
    for (size_t c = 0; c < f->columns.size() && c < row.fields.size(); ++c) rec.fields.set(f->columns[c], trim(row.fields[c], " \t"));
    st = fn(std::move(rec));
    return st.ok();
  }, &e);
  if (!ok) return Status::error(where(f->path, e.line) + ": " + e.message);
  if (!st) return st;
  if (header) return Status::error(f->path + ": no header row (the file is empty)");
  return {};
}

Status scan_json(std::string_view text, RecordFile* f, const Sink& fn) {
  Json root;
  JsonError e;
  size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  if (!parse_json(text.substr(start), &root, &e))
    return Status::error(where(f->path, line_of(text, start + e.offset)) + ": invalid JSON: " + e.message);
  const Json* arr = &root;
  if (root.is_object()) {
    arr = nullptr;
    for (auto& [k, v] : root.members())
      if (v.is_array()) {
        if (arr) return Status::error(f->path + ": the top-level object holds more than one array; expected one array of records");
        arr = &v;
      }
    if (!arr) return Status::error(f->path + ": expected an array of records, or an object holding one");
  }
  if (!arr->is_array()) return Status::error(f->path + ": expected an array of records");
  // Lines counted incrementally: items come in offset order.
  uint64_t line = 1, at = 0;
  for (auto& item : arr->items()) {
    uint64_t off = start + item.offset();
    line += uint64_t(std::count(text.begin() + std::ptrdiff_t(at), text.begin() + std::ptrdiff_t(off), '\n'));
    at = off;
    if (!item.is_object()) return Status::error(where(f->path, line) + ": a record must be a JSON object, found " + item.type_name());
    if (auto st = fn({line, to_value(item), {}}); !st) return st;
  }
  return {};
}

Status scan_jsonl(std::string_view text, RecordFile* f, const Sink& fn) {
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
    if (!parse_json(l, &j, &e)) return Status::error(where(f->path, line) + ": invalid JSON at column " + std::to_string(e.offset + 1) + ": " + e.message);
    if (!j.is_object()) return Status::error(where(f->path, line) + ": a record must be a JSON object, found " + j.type_name());
    if (auto st = fn({line, to_value(j), {}}); !st) return st;
  }
  return {};
}

std::string format_of(const std::string& path) {
  std::string ext;
  if (size_t dot = path.rfind('.'); dot != std::string::npos && path.find('/', dot) == std::string::npos) ext = path.substr(dot + 1);
  for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == "csv" ? "csv" : ext == "json" ? "json" : (ext == "jsonl" || ext == "ndjson") ? "jsonl" : "";
}

Result<std::string> slurp(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  auto size = in.tellg();
  if (size < 0) return Status::error(path + ": cannot read its size");
  if (uint64_t(size) > max_bytes) return Status::error(path + ": " + std::to_string(uint64_t(size)) + " bytes, over the limit of " + std::to_string(max_bytes));
  in.seekg(0);
  std::string text(size_t(size), '\0');
  if (!in.read(text.data(), size)) return Status::error(path + ": read failed");
  return text;
}

}  // namespace

Status scan_records(std::string_view text, const std::string& name, const std::string& format, RecordFile* file,
                    const std::function<Status(Record&&)>& fn) {
  file->path = name;
  file->format = format;
  file->sha256 = sha256_hex(text);
  file->bytes = text.size();
  file->columns.clear();
  file->records.clear();
  if (format == "csv") return scan_csv(text, file, fn);
  if (format == "json") return scan_json(text, file, fn);
  if (format == "jsonl") return scan_jsonl(text, file, fn);
  return Status::error(name + ": unknown record format \"" + format + "\" (csv, json or jsonl)");
}

Status scan_records(const std::string& path, RecordFile* file, const std::function<Status(Record&&)>& fn, uint64_t max_bytes) {
  std::string format = format_of(path);
  if (format.empty()) return Status::error(path + ": cannot tell the format from the extension (use .csv, .json or .jsonl)");
  auto text = slurp(path, max_bytes);
  if (!text) return text.status();
  return scan_records(*text, path, format, file, fn);
}

Result<RecordFile> parse_records(std::string_view text, const std::string& name, const std::string& format) {
  RecordFile f;
  std::vector<Record> records;
  auto st = scan_records(text, name, format, &f, [&](Record&& r) { return records.push_back(std::move(r)), Status(); });
  if (!st) return st;
  f.records = std::move(records);
  return f;
}

Result<RecordFile> read_records(const std::string& path, uint64_t max_bytes) {
  RecordFile f;
  std::vector<Record> records;
  auto st = scan_records(path, &f, [&](Record&& r) { return records.push_back(std::move(r)), Status(); }, max_bytes);
  if (!st) return st;
  f.records = std::move(records);
  return f;
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
