// sha256 of bytes and of files, hex, for the plugins that name what their results rest on.
// OpenSSL's SHA-256, which uses the CPU's SHA instructions where it has them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace evald::text {

// sha256 of bytes, hex. Thread-safe. Throws std::runtime_error only if OpenSSL fails (no memory).
std::string sha256_hex(std::string_view bytes);

// A file's sha256, read in 1 MiB chunks. missing: the file (or a path component) does not exist;
// error: any other failure (permission, a directory, a read error), naming the path.
// Thread-safe.
struct FileHash {
  bool missing = false;
  std::string sha256;  // hex, empty unless read
  uint64_t bytes = 0;
  std::string error;
};
FileHash sha256_file(const std::string& path);

}  // namespace evald::text
