// fuzz_csv: evald::text::parse_csv on arbitrary bytes. Properties checked when a parse succeeds:
//   * records start on increasing lines, within the input's line count;
//   * every field is valid UTF-8;
//   * writing the records back (every field quoted, quotes doubled) parses to the same records.
// A failed parse has a message, a line of at least 1 and an offset within the input.
#include "csv.hpp"
#include "fuzz_common.hpp"

#include <algorithm>
#include <string>
#include <vector>

using evald::text::CsvError;
using evald::text::CsvRecord;
using evald::text::parse_csv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<CsvRecord> rows;
  CsvError err;
  if (!parse_csv(in, &rows, &err, 64)) {
    FUZZ_CHECK(!err.message.empty(), "failure without a message");
    FUZZ_CHECK(err.line >= 1 && err.offset <= size, "error at line %llu offset %llu of %zu", (unsigned long long)err.line,
               (unsigned long long)err.offset, size);
    return 0;
  }
  const uint64_t lines = 1 + uint64_t(std::count(in.begin(), in.end(), '\n'));
  uint64_t prev = 0;
  std::string again;
  for (auto& r : rows) {
    FUZZ_CHECK(r.line > prev && r.line <= lines, "record line %llu after %llu (of %llu)", (unsigned long long)r.line,
               (unsigned long long)prev, (unsigned long long)lines);
    prev = r.line;
    FUZZ_CHECK(!r.fields.empty() && r.fields.size() <= 64, "%zu fields", r.fields.size());
    for (size_t i = 0; i < r.fields.size(); ++i) {
      FUZZ_CHECK(evald::text::invalid_utf8_at(r.fields[i]) == std::string_view::npos, "field is not UTF-8");
      again += i ? ",\"" : "\"";
      for (char c : r.fields[i]) again += c == '"' ? std::string("\"\"") : std::string(1, c);
      again += '"';
    }
    again += "\r\n";
  }
  std::vector<CsvRecord> back;
  CsvError err2;
  FUZZ_CHECK(parse_csv(again, &back, &err2, 64), "written records do not parse: line %llu: %s", (unsigned long long)err2.line,
             err2.message.c_str());
  FUZZ_CHECK(back.size() == rows.size(), "%zu records written, %zu read back", rows.size(), back.size());
  for (size_t i = 0; i < rows.size(); ++i) FUZZ_CHECK(back[i].fields == rows[i].fields, "record %zu differs after a round trip", i);
  return 0;
}
