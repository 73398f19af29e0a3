// Tabular outside input (score sheets, vote files) as records: a CSV file with a header row,
// a JSON array of objects (or an object holding one such array), or JSON Lines. Every record
// keeps its file and line so a rejected row can be named, and every file its sha256 so a
// result can name exactly what it was computed from.
#pragma once

#include <evald/value.hpp>

#include "hash.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace evald::text {

struct Record {
  uint64_t line = 0;
  // Column name -> value: strings for CSV (trimmed), JSON values as they were for JSON.
  Value fields;
  // Set when the row itself is malformed (a CSV row with more fields than the header); the
  // caller rejects it with this reason instead of reading fields.
  std::string defect;
};

struct RecordFile {
  std::string path;
  std::string format;  // csv, json or jsonl
  std::string sha256;  // of the file's bytes, hex
  uint64_t bytes = 0;
  std::vector<std::string> columns;  // CSV header, in file order (empty for JSON)
  std::vector<Record> records;
};

// Reads path; the format comes from the extension (.csv, .json, .jsonl/.ndjson). A file-level
// problem (unreadable, not UTF-8, broken CSV quoting, invalid JSON, a JSON value that is not
// an object where a record is expected, duplicate or empty CSV header names) is an error
// naming the file and line. Files over max_bytes are refused. Thread-safe.
Result<RecordFile> read_records(const std::string& path, uint64_t max_bytes = uint64_t(1) << 30);
// The same on text already in memory; name is used in errors and format picks the reader.
Result<RecordFile> parse_records(std::string_view text, const std::string& name, const std::string& format);

// Streams the records of path to fn one at a time instead of holding them all (a million
// votes as maps would take over a gigabyte). `file` gets path, format, sha256, bytes and the
// CSV columns before the first record; its `records` stay empty. fn's error stops the read
// and is returned. Errors otherwise as read_records.
Status scan_records(const std::string& path, RecordFile* file, const std::function<Status(Record&&)>& fn,
                    uint64_t max_bytes = uint64_t(1) << 30);
// The same on text in memory.
Status scan_records(std::string_view text, const std::string& name, const std::string& format, RecordFile* file,
                    const std::function<Status(Record&&)>& fn);

// A field as text: CSV text as is, JSON strings as is, JSON numbers in shortest form; empty
// when absent or null.
std::string field_text(const Value& fields, std::string_view name);
// A field as a number. CSV text must be a whole decimal number (sign, digits, one point,
// optional exponent); JSON must be a number. Absent, empty or malformed gives an error
// message naming the field.
Result<double> field_number(const Value& fields, std::string_view name);

}  // namespace evald::text
