// Small text helpers the report's writers share: making outside text safe for HTML, Markdown
// and CSV, number formatting, tolerant lookups into upstream payloads (which the report reads
// defensively: a missing or mistyped field omits that part, never fails the report), and a
// deterministic pretty JSON writer.
#pragma once

#include <evald/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace evald::report {

// Valid UTF-8 with invalid sequences replaced by U+FFFD and control characters other than
// tab and newline dropped: upstream text (team names, reasons) is not trusted to be either.
std::string clean_utf8(std::string_view s);
// Only the invalid sequences replaced, control characters kept (JSON escapes them): for the
// report's JSON files, which a strict reader must accept.
std::string valid_utf8(std::string_view s);
// valid_utf8 applied to every string and map key of v.
Value valid_utf8_tree(const Value& v);
// For HTML text and attribute values: clean_utf8, then & < > " ' as character references.
std::string html_escape(std::string_view s);
// For Markdown text and table cells: nothing in it can open a link, emphasis, code, raw HTML
// or a new table cell; newlines become spaces.
std::string md_escape(std::string_view s);
// One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. Text fields (text=true)
// starting with = + - @ or a tab are prefixed with ' so spreadsheets do not run them as
// formulas.
std::string csv_field(std::string_view s, bool text);

// Fixed decimals ("%.*f"); "" for a missing number.
std::string fixed(std::optional<double> x, int decimals);
// Three significant digits for statistics (alpha, ICC, p-values): 0.812, 1.2e-12.
std::string stat(std::optional<double> x);

// Tolerant reads: nullopt / empty when absent or of another type.
std::optional<double> num(const Value* v);
std::optional<double> num_at(const Value& v, std::string_view key);
std::string text_at(const Value& v, std::string_view key);  // strings, and numbers as text
const Array& list_at(const Value& v, std::string_view key);
const Value* map_at(const Value& v, std::string_view key);
// An interval [lo, hi] of two numbers.
std::optional<std::pair<double, double>> interval_at(const Value& v, std::string_view key);

// JSON with two-space indentation and keys in sorted order: equal Values give equal bytes.
std::string pretty_json(const Value& v);

}  // namespace evald::report
