// The report's signing key and hashes. Ed25519 through libsodium: a key file holds the 32-byte
// secret seed as 64 hex characters (and a newline); the public key is derived from it.
#pragma once

#include <evald/value.hpp>

#include "hash.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evald::report {

struct SigningKey {
  std::string path;
  std::array<uint8_t, 32> public_key{};
  std::array<uint8_t, 64> secret_key{};  // libsodium's form: seed then public key
  bool created = false;                  // made by this call
  std::string warning;                   // e.g. a key file others can read
  std::string public_hex() const;
};

// Reads the key at path, or creates it when the file does not exist: the missing parent
// directories owner-only (0700), the file owner-only (0600), written to a temporary file and
// linked into place so two processes starting at once end up with the same key. Errors name
// the path and what is wrong with it.
Result<SigningKey> load_or_create_key(const std::string& path);

// The detached signature of message, 64 bytes as 128 hex characters.
std::string sign_hex(const SigningKey& key, std::string_view message);
// Checks a detached signature; false for any malformed key or signature.
bool verify_detached(const std::array<uint8_t, 32>& public_key, const Bytes& signature, std::string_view message);

std::string to_hex(const uint8_t* data, size_t size);
// Exactly `size` bytes from 2*size hex digits (either case), after trimming whitespace.
std::optional<Bytes> from_hex(std::string_view hex, size_t size);

// Hashing is the shared readers' (plugins/common/src/hash.hpp).
using text::FileHash;
using text::sha256_file;
inline std::string sha256_hex_of(std::string_view bytes) { return text::sha256_hex(bytes); }

// Reads a whole file (for the signed files); nullopt with why when it cannot.
std::optional<std::string> read_file(const std::string& path, std::string* why = nullptr);
// Writes a whole file, replacing it; an error names the path.
Status write_file(const std::string& path, std::string_view bytes);

}  // namespace evald::report
