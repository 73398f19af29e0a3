// Command-line helpers shared by the benchmark programs.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace evald::bench {

// Prints "<program>: msg" and exits with status 2 (a usage error).
[[noreturn]] inline void die(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg.c_str());
  std::exit(2);
}

inline uint64_t parse_u64(const std::string& flag, const char* s, uint64_t lo, uint64_t hi) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || !end || *end || s[0] == '-' || v < lo || v > hi)
    die(flag + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got \"" + s + "\"");
  return v;
}

inline double parse_double(const std::string& flag, const char* s, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno || !end || *end || !(v >= lo && v <= hi))
    die(flag + ": expected a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got \"" + s + "\"");
  return v;
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "?";
}

}  // namespace evald::bench
