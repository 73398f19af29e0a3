// Command-line helpers shared by the benchmark programs.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

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

// Runs wrk with a Lua script (`wrk_args` are wrk's flags and URL), removes the script and its
// directory, and returns wrk's Requests/sec (0 when wrk failed).
inline double run_wrk_script(const std::string& wrk_args, const std::string& script_dir, const std::string& script) {
  std::string cmd = "wrk " + wrk_args + " -s " + script + " 2>&1";
  double rps = 0;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char line[512];
    while (fgets(line, sizeof line, p))
      if (std::string_view(line).starts_with("Requests/sec:")) rps = std::atof(line + 13);
    pclose(p);
  }
  std::remove(script.c_str());
  rmdir(script_dir.c_str());
  return rps;
}

// Median of the values that are not NaN (NaN when there are none).
inline double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
