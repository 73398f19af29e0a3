// Benchmark suites: a YAML manifest (what the task is, how prompts are built, how answers are
// normalised and graded) plus item files (JSON Lines, or MMLU/KMMLU-style CSV). Loading is
// strict: every problem names the manifest or item file and its line, and every item file's
// sha256 is kept so a score names exactly what it was computed from.
#pragma once

#include <evald/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evald::bench {

enum class TaskType { MultipleChoice, ExactMatch, Generation };
const char* task_name(TaskType t);

struct Item {
  std::string id;
  std::string file;  // item file it came from, and its line, for errors and reports
  uint64_t line = 0;
  std::string category;
  std::string text;                  // multiple_choice: the question; others: the prompt
  std::vector<std::string> choices;  // multiple_choice
  int answer = -1;                   // multiple_choice: index into choices
  std::vector<std::string> answers;  // exact_match: accepted answers; few-shot generation: answers[0] is the target
  std::string regex;                 // generation: correct when the response matches (search, ECMAScript)
  std::vector<std::string> contains; // generation: correct when the normalised response contains all of these
};

struct ItemFile {
  std::string path;
  std::string format;  // jsonl or mmlu_csv
  std::string sha256;
  uint64_t bytes = 0;
  size_t items = 0;
};

struct Suite {
  std::string name;
  std::string version;
  std::string description;
  bool sample = false;  // SAMPLE data: written for tests and demos, not a real benchmark
  std::string language;
  TaskType task = TaskType::MultipleChoice;
  std::string prompt_template;         // placeholders: {question} {choices} {prompt}
  std::string choice_template;         // one line per choice: {letter} {text}
  std::string answer_prefix;           // put before the letter/answer in few-shot examples and scored continuations
  int few_shot = 0;
  std::string metric = "accuracy";
  std::string category_field = "category";
  std::vector<std::string> normalise;  // lowercase, strip_punctuation, strip_whitespace, remove_whitespace, strip_articles
  bool debias_rotate = false;
  int max_tokens = 32;                 // generation budget for exact_match / generation / lettered answers
  std::vector<std::string> stop;
  std::string manifest_path;
  std::string manifest_sha256;
  std::vector<ItemFile> files;
  ItemFile few_shot_file;              // path empty when few_shot is 0
  std::vector<Item> items;
  std::vector<Item> shots;

  std::string key() const { return name + "@" + version; }
};

// Reads a manifest and its item files (paths relative to the manifest's directory).
Result<Suite> load_suite(const std::string& manifest_path);

// Parses item records of one file (the text given), for load_suite and the tests.
// format: jsonl or mmlu_csv. Items are appended to out.
Status parse_items(std::string_view text, const std::string& path, const std::string& format, const Suite& suite,
                   std::vector<Item>* out);

// Choice letters: A, B, C, ... (at most 26 choices).
std::string letter(size_t i);

// Choices in circular rotation r (choice i moves to position i - r), for debiasing.
std::vector<std::string> rotate_choices(const std::vector<std::string>& choices, size_t r);

// The prompt sent for item, with its choices in the given order (a rotation of item.choices
// for debiasing), preceded by the suite's few-shot examples.
std::string render_prompt(const Suite& suite, const Item& item, const std::vector<std::string>& choices);

// Applies normalisation rules in order. Unknown rules are refused at load time.
std::string normalise(std::string_view s, const std::vector<std::string>& rules);

// The answer letter in a generated response: the first A..(n-th letter) that stands alone
// (not inside a word, e.g. "B", "(B)", "B.", "Answer: B"), or -1.
int extract_letter(std::string_view response, size_t n_choices);

// Grades a generated response for exact_match / generation items; extracted gets what was
// compared (the normalised first line).
bool grade_text(const Suite& suite, const Item& item, std::string_view response, std::string* extracted);

// One score of an lm-evaluation-harness results file.
struct HarnessScore {
  std::string task;
  std::string metric;    // "acc", "acc_norm", "exact_match", ... without the ",filter" suffix
  std::string filter;    // "none" for harness >= 0.4, empty for older files
  double value = 0;
  std::optional<double> stderr_value;
  std::optional<uint64_t> n;  // items scored: "n-samples".task.effective (harness >= 0.4.2)
};
// Reads the "results" object of lm-evaluation-harness output: >= 0.4 writes
// task -> {"acc,none": x, "acc_stderr,none": y, "alias": ...}; older versions
// task -> {"acc": x, "acc_stderr": y}. Non-numeric entries (alias, "N/A" stderr) are skipped.
Result<std::vector<HarnessScore>> parse_harness_results(std::string_view text, const std::string& name);

}  // namespace evald::bench
