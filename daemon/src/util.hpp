// Small shared helpers: time stamps, hashing, identifiers.
#pragma once

#include <evald/value.hpp>

#include <filesystem>
#include <string>
#include <string_view>

namespace evald::daemon {

// UTC wall clock as ISO 8601 with milliseconds, e.g. 2026-11-26T10:00:00.123Z.
std::string now_iso8601();
// Milliseconds since the Unix epoch.
int64_t now_ms();

// sha256 of data, hex, through OpenSSL. Thread-safe; throws std::runtime_error only if OpenSSL
// fails (no memory).
std::string sha256_hex(std::string_view data);
// sha256 of a file's contents, streamed in 1 MiB reads; an error names the file. Thread-safe.
Result<std::string> sha256_file(const std::filesystem::path& path);

// Decimal with leading zeros to width, so keys sort numerically.
std::string zero_pad(uint64_t n, int width);

// Identifiers (competition, round, entrant, stage ids) become parts of store keys and paths:
// 1-64 characters of [A-Za-z0-9._-], not starting with '.' or '_'.
bool valid_id(std::string_view id);
Status check_id(std::string_view what, std::string_view id);

// A control request's field: a non-empty string; need_id also checks it is a valid id. Errors
// name the field.
Result<std::string> need_string(const Value& req, const char* key);
Result<std::string> need_id(const Value& req, const char* key);

}  // namespace evald::daemon
