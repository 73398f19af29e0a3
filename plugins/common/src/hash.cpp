#include "hash.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace evald::text {

namespace {
std::string hex(const unsigned char* h, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[h[i] >> 4];
    out += digits[h[i] & 15];
  }
  return out;
}
std::string errno_text(int e) { return std::strerror(e); }
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hex(h, sizeof h);
}

FileHash sha256_file(const std::string& path) {
  FileHash r;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) r.missing = true;
    else r.error = path + ": " + errno_text(errno);
    return r;
  }
  if (!S_ISREG(st.st_mode)) {
    r.error = path + ": not a regular file";
    return r;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.missing = errno == ENOENT;
    if (!r.missing) r.error = path + ": " + errno_text(errno);
    return r;
  }
  crypto_hash_sha256_state s;
  crypto_hash_sha256_init(&s);
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = path + ": read failed: " + errno_text(errno);
      ::close(fd);
      return r;
    }
    if (n == 0) break;
    crypto_hash_sha256_update(&s, buf.data(), size_t(n));
    r.bytes += uint64_t(n);
  }
  ::close(fd);
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&s, h);
  r.sha256 = hex(h, sizeof h);
  return r;
}

}  // namespace evald::text
