// word-count: counts the words in the text file an entrant's submission names.
#include <evald/plugin.hpp>

#include <fstream>

class WordCount : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema().string("submission_key", "submission field with the file").def("text");
  }
  WordCount(const evald::Value& config, evald::Context&) : key_(config.get_string("submission_key")) {}
  evald::Status process(const evald::Job& job, evald::Context& ctx) override {
    auto* sub = job.entrant.find("submission");
    auto* path = sub ? sub->find(key_) : nullptr;
    if (!path || !path->is_string()) return evald::Status::error("no " + key_ + " in submission");
    std::ifstream in(path->as_string());
    if (!in) return evald::Status::error(path->as_string() + ": cannot open");
    int64_t words = 0;
    for (std::string w; in >> w;) ++words;
    evald::Value out;
    out.set("value", words);
    return ctx.emit("value", out);
  }

 private:
  std::string key_;
};

EVALD_PLUGIN(WordCount, "word-count", "0.3.0", "Counts words in a submitted text file (out-of-tree example)")
