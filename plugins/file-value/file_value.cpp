// file-value: per entrant, reads one number from the file its submission names (blank lines
// and '#' comments aside) and emits it as a "value" message with the file's sha256, so the
// number traces back to its input.
#include <evald/plugin.hpp>

#include <openssl/evp.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace {

std::string sha256_hex(const std::string& data) {
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!EVP_Digest(data.data(), data.size(), h, &n, EVP_sha256(), nullptr)) throw std::runtime_error("OpenSSL SHA-256 failed");
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) s += d[h[i] >> 4], s += d[h[i] & 15];
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

class FileValue : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("submission_key", "the entrant submission field that holds the file path").def("value_file").min(1)
        .number("scale", "multiplies the value read").def(1.0)
        .number("out_of", "the points the value is out of, emitted as its scale so a tally on another scale converts it (0: unsaid)").def(0.0).min(0)
        .string("kind", "kind of the emitted message").def("value").min(1);
  }
  static evald::Status validate(const evald::Value& config) {
    double scale = config.get_double("scale", 1.0);
    if (!std::isfinite(scale)) return evald::Status::error("scale must be a finite number");
    return {};
  }

  FileValue(const evald::Value& config, evald::Context&)
      : key_(config.get_string("submission_key")), scale_(config.get_double("scale", 1.0)), out_of_(config.get_double("out_of", 0)), kind_(config.get_string("kind")) {}

  evald::Status process(const evald::Job& job, evald::Context& ctx) override {
    const evald::Value* sub = job.entrant.find("submission");
    const evald::Value* path = sub ? sub->find(key_) : nullptr;
    if (!path || !path->is_string())
      return evald::Status::error("entrant " + job.envelope.entrant + ": submission has no \"" + key_ + "\" file");
    std::ifstream in(path->as_string(), std::ios::binary);
    if (!in) return evald::Status::error(path->as_string() + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string raw = ss.str();
    // Exactly one non-empty line besides '#' comments; errors name the line.
    std::string text;
    int line = 0, found_at = 0;
    std::istringstream lines(raw);
    for (std::string l; std::getline(lines, l);) {
      ++line;
      if (trim(l).empty() || trim(l)[0] == '#') continue;
      if (found_at)
        return evald::Status::error(path->as_string() + ":" + std::to_string(line) + ": expected a single number, found a second line");
      found_at = line;
      text = trim(l);
    }
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v))
      return evald::Status::error(path->as_string() + ":" + std::to_string(found_at ? found_at : 1) +
                                  ": expected a number, found \"" + text.substr(0, 40) + "\"");
    evald::Value out;
    out.set("value", v * scale_);
    out.set("raw", v);
    if (out_of_ > 0) out.set("scale", out_of_);
    out.set("file", path->as_string());
    out.set("sha256", sha256_hex(raw));
    ctx.info("read " + path->as_string());
    return ctx.emit(kind_, out);
  }

 private:
  std::string key_;
  double scale_;
  double out_of_;
  std::string kind_;
};

EVALD_PLUGIN(FileValue, "file-value", "1.0.0", "Reads one number per entrant from a file its submission names")
