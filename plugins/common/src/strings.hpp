// Small string helpers the readers of outside input share. Header-only.
#pragma once

#include <string>
#include <string_view>

namespace evald::text {

// s without leading and trailing characters of `blank`.
inline std::string trim(std::string_view s, std::string_view blank = " \t\r\n") {
  size_t a = s.find_first_not_of(blank);
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(blank);
  return std::string(s.substr(a, b - a + 1));
}

// A-Z lowered; every other byte (UTF-8 included) kept.
inline std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

}  // namespace evald::text
