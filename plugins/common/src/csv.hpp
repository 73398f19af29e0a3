// CSV as RFC 4180 writes it, read strictly: comma-separated fields, double quotes around
// fields that hold commas, quotes or line breaks ("" for a quote), CRLF or LF line ends. The
// text must be UTF-8; a leading byte-order mark is skipped. Every record keeps the line it
// starts on so a caller can name it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace evald::text {

struct CsvRecord {
  uint64_t line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

struct CsvError {
  uint64_t line = 0;
  uint64_t offset = 0;  // byte offset in the input, BOM included
  std::string message;
};

// Parses all of text. Blank lines are skipped; records may have any number of fields (the
// caller decides what a short or long row means). Fails on invalid UTF-8, a quote inside an
// unquoted field, text after a closing quote, an unterminated quoted field, or a record of
// more than max_fields fields. Thread-safe.
bool parse_csv(std::string_view text, std::vector<CsvRecord>* out, CsvError* err, size_t max_fields = 4096);
// The same, handing each record to fn as it is read (fn returns false to stop early, which
// is not an error), so a large file need not be held as records.
bool parse_csv(std::string_view text, const std::function<bool(CsvRecord&&)>& fn, CsvError* err, size_t max_fields = 4096);

// The first invalid UTF-8 sequence in text (overlong forms, surrogates and code points past
// U+10FFFF included), or npos when all of it is valid.
size_t invalid_utf8_at(std::string_view text);

// 1-based line number of a byte offset.
uint64_t line_of(std::string_view text, uint64_t offset);

}  // namespace evald::text
