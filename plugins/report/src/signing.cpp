#include "signing.hpp"

#include <sodium.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace evald::report {

namespace {

void init_sodium() {
  // Thread-safe and idempotent; fails only without a randomness source.
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise (no randomness source?)");
}

std::string errno_text(int e) { return std::strerror(e); }

// Creates the missing directories above path owner-only; existing ones are left as they are.
Status make_parents(const fs::path& file) {
  fs::path dir = file.parent_path();
  if (dir.empty()) return {};
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Status::error("signing_key: " + p.string() + " is not a directory");
      break;
    }
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST)
      return Status::error("signing_key: cannot create directory " + it->string() + ": " + errno_text(errno));
    ::chmod(it->c_str(), 0700);  // whatever the umask
  }
  return {};
}

Result<SigningKey> key_from_seed_text(const std::string& path, const std::string& text) {
  auto seed = from_hex(text, crypto_sign_SEEDBYTES);
  if (!seed)
    return Status::error("signing_key: " + path + " does not hold a key: expected 64 hex characters (a 32-byte ed25519 seed), found " +
                         std::to_string(text.size()) + " bytes");
  SigningKey k;
  k.path = path;
  crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed->data());
  sodium_memzero(seed->data(), seed->size());
  return k;
}

}  // namespace

std::string SigningKey::public_hex() const { return to_hex(public_key.data(), public_key.size()); }

Result<SigningKey> load_or_create_key(const std::string& path) {
  init_sodium();
  if (path.empty()) return Status::error("signing_key: the path is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::error("signing_key: " + path + ": " + errno_text(errno));
    if (auto s = make_parents(path); !s) return s;
    // Written whole to a private temporary file, then linked into place: link fails when
    // another process got there first, and then its key is the one used.
    std::string tmpl = (fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path()) / ".report-key.XXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) return Status::error("signing_key: cannot create a file beside " + path + ": " + errno_text(errno));
    ::fchmod(fd, 0600);
    uint8_t seed[crypto_sign_SEEDBYTES];
    randombytes_buf(seed, sizeof seed);
    std::string text = to_hex(seed, sizeof seed) + "\n";
    sodium_memzero(seed, sizeof seed);
    bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
    int werr = errno;
    ::close(fd);
    if (!ok) {
      ::unlink(tmpl.c_str());
      return Status::error("signing_key: cannot write " + tmpl + ": " + errno_text(werr));
    }
    bool linked = ::link(tmpl.c_str(), path.c_str()) == 0;
    int lerr = errno;
    ::unlink(tmpl.c_str());
    if (!linked && lerr != EEXIST) return Status::error("signing_key: cannot create " + path + ": " + errno_text(lerr));
    if (linked) {
      auto k = key_from_seed_text(path, text);
      sodium_memzero(text.data(), text.size());
      if (k) k->created = true;
      return k;
    }
    if (::stat(path.c_str(), &st) != 0) return Status::error("signing_key: " + path + ": " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::error("signing_key: " + path + " is not a regular file");
  std::string why;
  auto text = read_file(path, &why);
  if (!text) return Status::error("signing_key: " + why);
  auto k = key_from_seed_text(path, *text);
  sodium_memzero(text->data(), text->size());
  if (k && (st.st_mode & 077)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    k->warning = "signing key " + path + " has mode " + mode + ": others on this machine can read it and sign reports; chmod 600 it";
  }
  return k;
}

std::string sign_hex(const SigningKey& key, std::string_view message) {
  init_sodium();
  uint8_t sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const uint8_t*>(message.data()), message.size(), key.secret_key.data());
  return to_hex(sig, sizeof sig);
}

bool verify_detached(const std::array<uint8_t, 32>& public_key, const Bytes& signature, std::string_view message) {
  init_sodium();
  if (signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(signature.data(), reinterpret_cast<const uint8_t*>(message.data()), message.size(),
                                     public_key.data()) == 0;
}

std::string to_hex(const uint8_t* data, size_t size) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) out += d[data[i] >> 4], out += d[data[i] & 15];
  return out;
}

std::optional<Bytes> from_hex(std::string_view hex, size_t size) {
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front()))) hex.remove_prefix(1);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  if (hex.size() != size * 2) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) {
    int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = uint8_t(hi << 4 | lo);
  }
  return out;
}

std::optional<std::string> read_file(const std::string& path, std::string* why) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (why) *why = path + ": " + (fs::exists(path) ? "cannot be read" : "does not exist");
    return std::nullopt;
  }
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) {
    if (why) *why = path + ": read failed";
    return std::nullopt;
  }
  return s;
}

Status write_file(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) return Status::error(path + ": cannot write (" + errno_text(errno) + ")");
  return {};
}

}  // namespace evald::report
