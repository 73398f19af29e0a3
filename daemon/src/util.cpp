#include "util.hpp"

#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace evald::daemon {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string now_iso8601() {
  // The broker stamps every job transition: format the date and time once per second.
  thread_local int64_t cached_second = -1;
  thread_local char prefix[64];
  int64_t ms = now_ms();
  if (ms / 1000 != cached_second) {
    cached_second = ms / 1000;
    std::time_t t = std::time_t(cached_second);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  std::string out(prefix);
  int frac = int(ms % 1000);
  out += '.';
  out += char('0' + frac / 100);
  out += char('0' + frac / 10 % 10);
  out += char('0' + frac % 10);
  out += 'Z';
  return out;
}

namespace {
std::string hex(const unsigned char* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) s += digits[d[i] >> 4], s += digits[d[i] & 15];
  return s;
}

// OpenSSL's SHA-256 (SHA-NI or AVX2 where the CPU has them), fetched once: EVP_sha256() looks
// the implementation up on every use, which doubles the cost of hashing a short record.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) throw std::runtime_error("OpenSSL has no SHA-256");
  return md;
}
}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!EVP_Digest(data.data(), data.size(), out, &n, sha256_md(), nullptr)) throw std::runtime_error("OpenSSL SHA-256 failed");
  return hex(out, n);
}

Result<std::string> sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path.string() + ": cannot open for hashing");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || !EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr)) return Status::error(path.string() + ": OpenSSL SHA-256 failed");
  // 1 MiB reads: the daemon hashes every plugin it loads at start (multi-MB shared objects).
  constexpr size_t kBuf = 1 << 20;
  auto buf = std::make_unique_for_overwrite<char[]>(kBuf);
  while (in) {
    in.read(buf.get(), std::streamsize(kBuf));
    EVP_DigestUpdate(ctx.get(), buf.get(), size_t(in.gcount()));
  }
  if (in.bad()) return Status::error(path.string() + ": read error while hashing");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!EVP_DigestFinal_ex(ctx.get(), out, &n)) return Status::error(path.string() + ": OpenSSL SHA-256 failed");
  return hex(out, n);
}

std::string zero_pad(uint64_t n, int width) {
  std::string s = std::to_string(n);
  if (int(s.size()) < width) s.insert(0, size_t(width) - s.size(), '0');
  return s;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id[0] == '.' || id[0] == '_') return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

Status check_id(std::string_view what, std::string_view id) {
  if (valid_id(id)) return {};
  return Status::error(std::string(what) + " \"" + std::string(id) +
                       "\" is not a valid id (1-64 characters of A-Z a-z 0-9 . _ -, not starting with . or _)");
}

Result<std::string> need_string(const Value& req, const char* key) {
  auto* v = req.find(key);
  if (!v || !v->is_string() || v->as_string().empty())
    return Status::error(std::string("request field \"") + key + "\" (string) is required");
  return v->as_string();
}

Result<std::string> need_id(const Value& req, const char* key) {
  auto s = need_string(req, key);
  if (!s) return s;
  if (auto st = check_id(key, *s); !st) return st;
  return s;
}

}  // namespace evald::daemon
