// fuzz_suite: the benchmark plugin's readers of suites and harness results on arbitrary bytes.
// The first byte picks what the rest is:
//   0: a suite manifest (YAML), loaded from a temp dir beside fixed item files;
//   1: JSONL items, 2: MMLU/KMMLU CSV items, for a fixed multiple-choice suite;
//   3: an lm-evaluation-harness results file.
// Properties: errors name the file; loaded items have ids, lines within their file and (for
// multiple choice) an answer among the choices; every item renders to a prompt, and grading and
// letter extraction run on its text; harness scores are finite.
#include "fuzz_common.hpp"
#include "suite.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

namespace bench = evald::bench;
namespace fs = std::filesystem;

namespace {

const fs::path& dir() {
  static const fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("fuzz_suite." + std::to_string(getpid()));
    fs::create_directories(p);
    std::ofstream(p / "items.jsonl") << "{\"id\": \"q1\", \"question\": \"2+2?\", \"choices\": [\"3\", \"4\"], \"answer\": 1}\n"
                                        "{\"id\": \"q2\", \"prompt\": \"Capital of Korea?\", \"answers\": [\"Seoul\", \"서울\"]}\n";
    std::ofstream(p / "items.csv") << "question,answer,A,B,C,D,Category,Human Accuracy\n1+1?,2,1,2,3,4,math,0.9\n";
    std::ofstream(p / "dev.jsonl") << "{\"id\": \"d1\", \"question\": \"1+2?\", \"choices\": [\"3\", \"4\"], \"answer\": 0}\n";
    return p;
  }();
  return d;
}

void check_items(const bench::Suite& s, const std::vector<bench::Item>& items, uint64_t lines) {
  for (auto& it : items) {
    FUZZ_CHECK(!it.id.empty(), "an item without an id from %s:%llu", it.file.c_str(), (unsigned long long)it.line);
    FUZZ_CHECK(it.line >= 1 && (lines == 0 || it.line <= lines), "item %s at line %llu of %llu", it.id.c_str(),
               (unsigned long long)it.line, (unsigned long long)lines);
    if (s.task == bench::TaskType::MultipleChoice)
      FUZZ_CHECK(it.answer >= 0 && size_t(it.answer) < it.choices.size() && it.choices.size() <= 26, "item %s answer %d of %zu choices",
                 it.id.c_str(), it.answer, it.choices.size());
    std::string prompt = bench::render_prompt(s, it, it.choices);
    FUZZ_CHECK(!prompt.empty(), "item %s renders to nothing", it.id.c_str());
    std::string extracted;
    (void)bench::grade_text(s, it, it.text, &extracted);
    int l = bench::extract_letter(it.text, it.choices.size());
    FUZZ_CHECK(l >= -1 && l < int(std::max<size_t>(it.choices.size(), 1)), "letter %d of %zu choices", l, it.choices.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 4;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const uint64_t lines = 1 + uint64_t(std::count(text.begin(), text.end(), '\n'));
  if (mode == 0) {
    fs::path manifest = dir() / "suite.yaml";
    {
      std::ofstream f(manifest, std::ios::binary | std::ios::trunc);
      f.write(text.data(), std::streamsize(text.size()));
    }
    auto s = bench::load_suite(manifest.string());
    if (!s) {
      FUZZ_CHECK(s.error().find("suite.yaml") != std::string::npos || s.error().find(dir().string()) != std::string::npos,
                 "error names no file: %s", s.error().c_str());
      return 0;
    }
    for (auto& f : s->files) FUZZ_CHECK(f.sha256.size() == 64, "item file %s without its sha256", f.path.c_str());
    check_items(*s, s->items, 0);
    check_items(*s, s->shots, 0);
    return 0;
  }
  if (mode == 3) {
    auto r = bench::parse_harness_results(text, "results.json");
    if (!r) {
      FUZZ_CHECK(r.error().find("results.json") != std::string::npos, "error names no file: %s", r.error().c_str());
      return 0;
    }
    for (auto& x : *r) FUZZ_CHECK(std::isfinite(x.value), "%s/%s is not finite", x.task.c_str(), x.metric.c_str());
    return 0;
  }
  bench::Suite s;
  s.name = "fuzz";
  s.version = "1";
  s.task = bench::TaskType::MultipleChoice;
  s.prompt_template = "Q: {question}\n{choices}\nA:";
  s.choice_template = "{letter}. {text}";
  std::vector<bench::Item> items;
  std::string name = mode == 1 ? "items.jsonl" : "items.csv";
  auto st = bench::parse_items(text, name, mode == 1 ? "jsonl" : "mmlu_csv", s, &items);
  if (!st) {
    FUZZ_CHECK(st.message().find(name) != std::string::npos, "error names no file: %s", st.message().c_str());
    return 0;
  }
  check_items(s, items, lines);
  return 0;
}
