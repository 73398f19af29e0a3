#include "hash.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

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

// OpenSSL's SHA-256 (SHA-NI or AVX2 where the CPU has them: ~5x libsodium's), fetched once:
// EVP_sha256() looks the implementation up again on every use, which costs small inputs half.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) throw std::runtime_error("OpenSSL has no SHA-256");
  return md;
}
struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!EVP_Digest(bytes.data(), bytes.size(), h, &n, sha256_md(), nullptr)) throw std::runtime_error("OpenSSL SHA-256 failed");
  return hex(h, n);
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
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || !EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr)) {
    ::close(fd);
    r.error = path + ": OpenSSL SHA-256 failed";
    return r;
  }
  // Weight files run to gigabytes: 1 MiB reads keep syscalls out of the profile, and the buffer
  // is left uninitialised so that a small file touches only the pages it fills.
  constexpr size_t kBuf = 1 << 20;
  auto buf = std::make_unique_for_overwrite<unsigned char[]>(kBuf);
  for (;;) {
    ssize_t n = ::read(fd, buf.get(), kBuf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = path + ": read failed: " + errno_text(errno);
      ::close(fd);
      return r;
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.get(), size_t(n));
    r.bytes += uint64_t(n);
  }
  ::close(fd);
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!EVP_DigestFinal_ex(ctx.get(), h, &len)) {
    r.error = path + ": OpenSSL SHA-256 failed";
    return r;
  }
  r.sha256 = hex(h, len);
  return r;
}

}  // namespace evald::text
