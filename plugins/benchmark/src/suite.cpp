#include "suite.hpp"

#include "csv.hpp"
#include "json.hpp"
#include "records.hpp"
#include "strings.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <regex>
#include <set>
#include <sstream>

namespace evald::bench {

using text::lower_ascii;
using text::trim;

namespace fs = std::filesystem;

const char* task_name(TaskType t) {
  switch (t) {
    case TaskType::MultipleChoice: return "multiple_choice";
    case TaskType::ExactMatch: return "exact_match";
    case TaskType::Generation: return "generation";
  }
  return "?";
}

std::string letter(size_t i) { return std::string(1, char('A' + i)); }

namespace {

constexpr uint64_t kMaxItemFileBytes = uint64_t(1) << 30;

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Status::error(path + ": no such file");
  auto size = fs::file_size(path, ec);
  if (ec) return Status::error(path + ": " + ec.message());
  if (size > kMaxItemFileBytes) return Status::error(path + ": " + std::to_string(size) + " bytes, over the 1 GiB limit");
  std::ifstream f(path, std::ios::binary);
  std::string s(size, '\0');
  if (!f.read(s.data(), std::streamsize(size))) return Status::error(path + ": cannot read");
  return s;
}

std::string at(const std::string& file, uint64_t line) { return file + ":" + std::to_string(line); }
std::string at(const std::string& file, const YAML::Node& n) {
  return n.Mark().line >= 0 ? at(file, uint64_t(n.Mark().line) + 1) : file;
}

std::string stem_category(const std::string& path) {
  std::string s = fs::path(path).stem().string();
  for (const char* suf : {"_test", "_dev", "_val", "_train", "-test", "-dev", "-val", "-train"}) {
    std::string_view sv(suf);
    if (s.size() > sv.size() && s.compare(s.size() - sv.size(), sv.size(), sv) == 0) return s.substr(0, s.size() - sv.size());
  }
  return s;
}

// A choice answer as a letter (A..) or, when allow_digits, a 1-based number (KMMLU's layout).
int parse_answer_text(std::string_view s, size_t n, bool allow_digits) {
  std::string t = trim(s);
  if (t.size() == 1 && t[0] >= 'A' && size_t(t[0] - 'A') < n) return t[0] - 'A';
  if (t.size() == 1 && t[0] >= 'a' && size_t(t[0] - 'a') < n) return t[0] - 'a';
  if (allow_digits && !t.empty() && t.size() <= 2 && std::all_of(t.begin(), t.end(), ::isdigit)) {
    int v = std::stoi(t);
    if (v >= 1 && size_t(v) <= n) return v - 1;
  }
  return -1;
}

const std::set<std::string>& known_rules() {
  static const std::set<std::string> r{"lowercase", "strip_punctuation", "strip_whitespace", "remove_whitespace", "strip_articles"};
  return r;
}

// Placeholders a template may use, by task.
Status check_template(const std::string& tmpl, const std::set<std::string>& allowed, const std::string& where_, const std::string& key) {
  size_t pos = 0;
  while ((pos = tmpl.find('{', pos)) != std::string::npos) {
    size_t end = tmpl.find('}', pos);
    if (end == std::string::npos) return Status::error(where_ + ": " + key + ": unclosed \"{\" at character " + std::to_string(pos + 1));
    std::string name = tmpl.substr(pos + 1, end - pos - 1);
    if (!allowed.count(name)) {
      std::string all;
      for (auto& a : allowed) all += (all.empty() ? "{" : ", {") + a + "}";
      return Status::error(where_ + ": " + key + ": unknown placeholder {" + name + "} (allowed: " + all + ")");
    }
    pos = end + 1;
  }
  return {};
}

std::string substitute(const std::string& tmpl, const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find('{', pos);
    if (open == std::string::npos) break;
    size_t close = tmpl.find('}', open);
    if (close == std::string::npos) break;
    out.append(tmpl, pos, open - pos);
    auto it = vars.find(tmpl.substr(open + 1, close - open - 1));
    if (it != vars.end()) out += it->second;
    pos = close + 1;
  }
  out.append(tmpl, pos, std::string::npos);
  return out;
}

std::string value_text(const Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_int()) return std::to_string(v.as_int());
  return {};
}

Status item_from_record(const Value& f, const std::string& path, uint64_t line, const Suite& suite, bool shot, Item* out) {
  std::string where_ = at(path, line);
  Item it;
  it.file = path;
  it.line = line;
  if (auto* id = f.find("id")) {
    it.id = value_text(*id);
    if (it.id.empty()) return Status::error(where_ + ": field \"id\" must be a non-empty string or an integer");
  } else {
    it.id = fs::path(path).stem().string() + ":" + std::to_string(line);
  }
  if (auto* c = f.find(suite.category_field); c && !c->is_null()) {
    if (!c->is_string()) return Status::error(where_ + ": field \"" + suite.category_field + "\" must be a string");
    it.category = c->as_string();
  }
  auto need_string = [&](const char* key, std::string* dst) -> Status {
    auto* v = f.find(key);
    if (!v) return Status::error(where_ + ": missing field \"" + std::string(key) + "\"");
    if (!v->is_string() || v->as_string().empty()) return Status::error(where_ + ": field \"" + std::string(key) + "\" must be a non-empty string");
    *dst = v->as_string();
    return {};
  };
  auto string_list = [&](const Value& v, const char* key, std::vector<std::string>* dst) -> Status {
    if (v.is_string()) {
      dst->push_back(v.as_string());
      return {};
    }
    if (!v.is_array() || v.as_array().empty()) return Status::error(where_ + ": field \"" + std::string(key) + "\" must be a string or a non-empty list of strings");
    for (size_t i = 0; i < v.as_array().size(); ++i) {
      auto& e = v.as_array()[i];
      if (!e.is_string() || e.as_string().empty())
        return Status::error(where_ + ": field \"" + std::string(key) + "\"[" + std::to_string(i) + "] must be a non-empty string");
      dst->push_back(e.as_string());
    }
    return {};
  };
  switch (suite.task) {
    case TaskType::MultipleChoice: {
      if (auto st = need_string("question", &it.text); !st) return st;
      auto* ch = f.find("choices");
      if (!ch) return Status::error(where_ + ": missing field \"choices\"");
      if (!ch->is_array() || ch->as_array().size() < 2 || ch->as_array().size() > 26)
        return Status::error(where_ + ": field \"choices\" must be a list of 2 to 26 strings");
      if (auto st = string_list(*ch, "choices", &it.choices); !st) return st;
      auto* a = f.find("answer");
      if (!a) return Status::error(where_ + ": missing field \"answer\"");
      if (a->is_int()) {
        if (a->as_int() < 0 || size_t(a->as_int()) >= it.choices.size())
          return Status::error(where_ + ": field \"answer\": index " + std::to_string(a->as_int()) + " is outside the " +
                               std::to_string(it.choices.size()) + " choices (0-based)");
        it.answer = int(a->as_int());
      } else if (a->is_string()) {
        it.answer = parse_answer_text(a->as_string(), it.choices.size(), false);
        if (it.answer < 0)
          return Status::error(where_ + ": field \"answer\": \"" + a->as_string() + "\" is not a letter A-" +
                               letter(it.choices.size() - 1) + " (or give a 0-based index)");
      } else {
        return Status::error(where_ + ": field \"answer\" must be a 0-based index or a letter");
      }
      break;
    }
    case TaskType::ExactMatch: {
      if (auto st = need_string("prompt", &it.text); !st) return st;
      auto* a = f.find("answers");
      if (!a) a = f.find("answer");
      if (!a) return Status::error(where_ + ": missing field \"answers\" (the accepted answers)");
      if (auto st = string_list(*a, "answers", &it.answers); !st) return st;
      break;
    }
    case TaskType::Generation: {
      if (auto st = need_string("prompt", &it.text); !st) return st;
      if (auto* r = f.find("regex")) {
        if (!r->is_string() || r->as_string().empty()) return Status::error(where_ + ": field \"regex\" must be a non-empty string");
        try {
          std::regex re(r->as_string(), std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          return Status::error(where_ + ": field \"regex\": invalid regular expression: " + e.what());
        }
        it.regex = r->as_string();
      }
      if (auto* c = f.find("contains"))
        if (auto st = string_list(*c, "contains", &it.contains); !st) return st;
      if (shot) {
        auto* t = f.find("target");
        if (!t || !t->is_string()) return Status::error(where_ + ": a few-shot generation example needs a string field \"target\"");
        it.answers.push_back(t->as_string());
      } else if (it.regex.empty() && it.contains.empty()) {
        return Status::error(where_ + ": a generation item needs a grading rule: \"regex\" and/or \"contains\"");
      }
      break;
    }
  }
  *out = std::move(it);
  return {};
}

Status parse_mmlu_csv(std::string_view text, const std::string& path, const Suite& suite, std::vector<Item>* out) {
  if (suite.task != TaskType::MultipleChoice) return Status::error(path + ": format mmlu_csv holds multiple_choice items, the suite's task is " + task_name(suite.task));
  std::vector<text::CsvRecord> rows;
  text::CsvError e;
  if (!text::parse_csv(text, &rows, &e)) return Status::error(at(path, e.line) + ": " + e.message);
  if (rows.empty()) return {};
  // With a header (KMMLU: question,answer,A,B,C,D,Category,Human Accuracy) columns are found
  // by name; without one (the original MMLU files) the layout is question,A,B,C,D,answer.
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < rows[0].fields.size(); ++i) col[lower_ascii(trim(rows[0].fields[i]))] = i;
  bool header = col.count("question") && col.count("answer") && col.count("a") && col.count("b");
  size_t q = 0, ans = 0, cat = SIZE_MAX;
  std::vector<size_t> choice_cols;
  if (header) {
    q = col["question"];
    ans = col["answer"];
    for (char c = 'a'; c <= 'z' && col.count(std::string(1, c)); ++c) choice_cols.push_back(col[std::string(1, c)]);
    if (auto it = col.find(lower_ascii(suite.category_field)); it != col.end()) cat = it->second;
  } else {
    if (rows[0].fields.size() < 4 || rows[0].fields.size() > 28)
      return Status::error(at(path, rows[0].line) + ": expected a header (question, A, B, ..., answer) or MMLU's question,A,B,C,D,answer rows "
                                                    "(2 to 26 choices), found " + std::to_string(rows[0].fields.size()) + " fields");
    q = 0;
    ans = rows[0].fields.size() - 1;
    for (size_t i = 1; i < ans; ++i) choice_cols.push_back(i);
  }
  std::string fallback_cat = stem_category(path);
  for (size_t r = header ? 1 : 0; r < rows.size(); ++r) {
    auto& f = rows[r].fields;
    std::string where_ = at(path, rows[r].line);
    // Choice columns need not be in order (a header may name them in any order): the largest counts.
    size_t need = std::max({q, ans, *std::max_element(choice_cols.begin(), choice_cols.end()), cat == SIZE_MAX ? 0 : cat}) + 1;
    if (f.size() < need) return Status::error(where_ + ": " + std::to_string(f.size()) + " fields, expected at least " + std::to_string(need));
    Item it;
    it.file = path;
    it.line = rows[r].line;
    it.id = fs::path(path).stem().string() + ":" + std::to_string(rows[r].line);
    it.text = trim(f[q]);
    if (it.text.empty()) return Status::error(where_ + ": empty question");
    for (size_t c : choice_cols) it.choices.push_back(trim(f[c]));
    it.answer = parse_answer_text(f[ans], it.choices.size(), true);
    if (it.answer < 0)
      return Status::error(where_ + ": answer \"" + f[ans] + "\" is neither a letter A-" + letter(it.choices.size() - 1) +
                           " nor a 1-based number 1-" + std::to_string(it.choices.size()));
    it.category = cat == SIZE_MAX ? fallback_cat : trim(f[cat]);
    out->push_back(std::move(it));
  }
  return {};
}

std::string scalar(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : std::string(); }

}  // namespace

Status parse_items(std::string_view text, const std::string& path, const std::string& format, const Suite& suite, std::vector<Item>* out) {
  if (format == "mmlu_csv") return parse_mmlu_csv(text, path, suite, out);
  if (format != "jsonl") return Status::error(path + ": unknown item format \"" + format + "\" (jsonl or mmlu_csv)");
  auto recs = text::parse_records(text, path, "jsonl");
  if (!recs) return recs.status();
  for (auto& r : recs->records) {
    Item it;
    if (auto st = item_from_record(r.fields, path, r.line, suite, false, &it); !st) return st;
    out->push_back(std::move(it));
  }
  return {};
}

Result<Suite> load_suite(const std::string& manifest_path) {
  auto text = read_file(manifest_path);
  if (!text) return text.status();
  Suite s;
  s.manifest_path = manifest_path;
  s.manifest_sha256 = text::sha256_hex(*text);
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Status::error(at(manifest_path, uint64_t(e.mark.line) + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) return Status::error(manifest_path + ": a suite manifest must be a YAML map");
  static const std::set<std::string> keys{"name", "version", "description", "sample", "language", "task", "prompt_template",
                                          "choice_template", "answer_prefix", "few_shot", "few_shot_file", "metric",
                                          "category_field", "items", "normalise", "debias", "max_tokens", "stop"};
  for (auto kv : root) {
    std::string k = scalar(kv.first);
    if (!keys.count(k)) return Status::error(at(manifest_path, kv.first) + ": unknown key \"" + k + "\"");
  }
  auto str = [&](const char* key, std::string* dst, bool required) -> Status {
    auto n = root[key];
    if (!n) return required ? Status::error(manifest_path + ": missing key \"" + std::string(key) + "\"") : Status();
    if (!n.IsScalar()) return Status::error(at(manifest_path, n) + ": \"" + std::string(key) + "\" must be a string");
    *dst = n.Scalar();
    return {};
  };
  auto integer = [&](const char* key, int* dst, int lo, int hi) -> Status {
    auto n = root[key];
    if (!n) return {};
    try {
      int v = n.as<int>();
      if (v < lo || v > hi) throw YAML::Exception(n.Mark(), "range");
      *dst = v;
    } catch (const YAML::Exception&) {
      return Status::error(at(manifest_path, n) + ": \"" + std::string(key) + "\" must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    return {};
  };
  std::string task;
  for (auto st : {str("name", &s.name, true), str("version", &s.version, true), str("description", &s.description, false),
                  str("language", &s.language, false), str("task", &task, true), str("metric", &s.metric, false),
                  str("category_field", &s.category_field, false), integer("few_shot", &s.few_shot, 0, 64),
                  integer("max_tokens", &s.max_tokens, 1, 65536)})
    if (!st) return st;
  if (s.name.empty() || s.name.find_first_of("/@ \t\n") != std::string::npos)
    return Status::error(at(manifest_path, root["name"]) + ": \"name\" must be non-empty without '/', '@' or spaces");
  if (s.version.empty()) return Status::error(at(manifest_path, root["version"]) + ": \"version\" must not be empty");
  if (task == "multiple_choice") s.task = TaskType::MultipleChoice;
  else if (task == "exact_match") s.task = TaskType::ExactMatch;
  else if (task == "generation") s.task = TaskType::Generation;
  else return Status::error(at(manifest_path, root["task"]) + ": \"task\": \"" + task + "\" is not one of multiple_choice, exact_match, generation");
  if (s.metric != "accuracy") return Status::error(at(manifest_path, root["metric"]) + ": \"metric\": only accuracy is supported, got \"" + s.metric + "\"");
  if (auto n = root["sample"]) {
    try {
      s.sample = n.as<bool>();
    } catch (const YAML::Exception&) {
      return Status::error(at(manifest_path, n) + ": \"sample\" must be true or false");
    }
  }
  bool mc = s.task == TaskType::MultipleChoice;
  s.prompt_template = mc ? "{question}\n{choices}\nAnswer:" : "{prompt}";
  s.choice_template = "{letter}. {text}";
  s.answer_prefix = " ";
  for (auto st : {str("prompt_template", &s.prompt_template, false), str("choice_template", &s.choice_template, false),
                  str("answer_prefix", &s.answer_prefix, false)})
    if (!st) return st;
  if (auto st = check_template(s.prompt_template, mc ? std::set<std::string>{"question", "choices"} : std::set<std::string>{"prompt"},
                               at(manifest_path, root["prompt_template"] ? root["prompt_template"] : root), "prompt_template");
      !st)
    return st;
  if (auto st = check_template(s.choice_template, {"letter", "text"}, manifest_path, "choice_template"); !st) return st;
  if (auto n = root["normalise"]) {
    if (!n.IsSequence()) return Status::error(at(manifest_path, n) + ": \"normalise\" must be a list of rules");
    for (auto r : n) {
      std::string rule = scalar(r);
      if (rule == "nfkc")
        return Status::error(at(manifest_path, r) + ": normalise rule \"nfkc\" is not supported (no Unicode tables in this build); store item files NFKC-normalised instead");
      if (!known_rules().count(rule))
        return Status::error(at(manifest_path, r) + ": unknown normalise rule \"" + rule + "\" (lowercase, strip_punctuation, strip_whitespace, remove_whitespace, strip_articles)");
      s.normalise.push_back(rule);
    }
  }
  if (auto n = root["stop"]) {
    if (!n.IsSequence()) return Status::error(at(manifest_path, n) + ": \"stop\" must be a list of strings");
    for (auto x : n) s.stop.push_back(scalar(x));
  }
  if (auto n = root["debias"]) {
    std::string d = scalar(n);
    if (d == "rotate") s.debias_rotate = true;
    else if (d != "none") return Status::error(at(manifest_path, n) + ": \"debias\": \"" + d + "\" is not one of none, rotate");
    if (s.debias_rotate && !mc) return Status::error(at(manifest_path, n) + ": \"debias: rotate\" applies to multiple_choice suites only");
  }
  fs::path dir = fs::path(manifest_path).parent_path();
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() || dir.empty() ? p : (dir / p).string(); };
  auto n_items = root["items"];
  if (!n_items) return Status::error(manifest_path + ": missing key \"items\" (the item files)");
  if (!n_items.IsSequence() || n_items.size() == 0) return Status::error(at(manifest_path, n_items) + ": \"items\" must be a non-empty list of files");
  std::map<std::string, std::string> seen_ids;
  for (auto e : n_items) {
    std::string path, format;
    if (e.IsScalar()) {
      path = e.Scalar();
    } else if (e.IsMap()) {
      path = scalar(e["path"]);
      format = scalar(e["format"]);
      for (auto kv : e)
        if (scalar(kv.first) != "path" && scalar(kv.first) != "format")
          return Status::error(at(manifest_path, kv.first) + ": unknown item file key \"" + scalar(kv.first) + "\" (path, format)");
    }
    if (path.empty()) return Status::error(at(manifest_path, e) + ": an item file is a path or {path, format}");
    if (format.empty()) format = fs::path(path).extension() == ".csv" ? "mmlu_csv" : "jsonl";
    std::string full = resolve(path);
    auto body = read_file(full);
    if (!body) return Status::error(at(manifest_path, e) + ": item file " + path + ": " + body.error());
    ItemFile f{full, format, text::sha256_hex(*body), uint64_t(body->size()), 0};
    size_t before = s.items.size();
    if (auto st = parse_items(*body, full, format, s, &s.items); !st) return st;
    f.items = s.items.size() - before;
    for (size_t i = before; i < s.items.size(); ++i) {
      auto& it = s.items[i];
      auto [pos, fresh] = seen_ids.emplace(it.id, at(it.file, it.line));
      if (!fresh) return Status::error(at(it.file, it.line) + ": duplicate item id \"" + it.id + "\" (first at " + pos->second + ")");
    }
    s.files.push_back(std::move(f));
  }
  if (s.items.empty()) return Status::error(manifest_path + ": the item files hold no items");
  std::string shots_path;
  if (auto st = str("few_shot_file", &shots_path, false); !st) return st;
  if (s.few_shot > 0 && shots_path.empty())
    return Status::error(at(manifest_path, root["few_shot"]) + ": few_shot " + std::to_string(s.few_shot) + " needs a few_shot_file");
  if (s.few_shot > 0) {
    std::string full = resolve(shots_path);
    auto body = read_file(full);
    if (!body) return Status::error(at(manifest_path, root["few_shot_file"]) + ": few_shot_file " + shots_path + ": " + body.error());
    auto recs = text::parse_records(*body, full, "jsonl");
    if (!recs) return recs.status();
    for (auto& r : recs->records) {
      if (s.shots.size() == size_t(s.few_shot)) break;
      Item it;
      if (auto st = item_from_record(r.fields, full, r.line, s, true, &it); !st) return st;
      s.shots.push_back(std::move(it));
    }
    if (s.shots.size() < size_t(s.few_shot))
      return Status::error(full + ": " + std::to_string(s.shots.size()) + " examples, few_shot asks for " + std::to_string(s.few_shot));
    s.few_shot_file = {full, "jsonl", recs->sha256, recs->bytes, s.shots.size()};
  }
  return s;
}

namespace {

std::string render_one(const Suite& s, const Item& item, const std::vector<std::string>& choices) {
  if (s.task != TaskType::MultipleChoice) return substitute(s.prompt_template, {{"prompt", item.text}});
  std::string lines;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i) lines += "\n";
    lines += substitute(s.choice_template, {{"letter", letter(i)}, {"text", choices[i]}});
  }
  return substitute(s.prompt_template, {{"question", item.text}, {"choices", lines}});
}

}  // namespace

std::vector<std::string> rotate_choices(const std::vector<std::string>& c, size_t r) {
  std::vector<std::string> out(c.size());
  for (size_t i = 0; i < c.size(); ++i) out[i] = c[(i + r) % c.size()];
  return out;
}

std::string render_prompt(const Suite& s, const Item& item, const std::vector<std::string>& choices) {
  std::string out;
  for (auto& shot : s.shots) {
    out += render_one(s, shot, shot.choices);
    out += s.answer_prefix;
    out += s.task == TaskType::MultipleChoice ? letter(size_t(shot.answer)) : shot.answers.at(0);
    out += "\n\n";
  }
  out += render_one(s, item, choices);
  return out;
}

namespace {

// Decodes one UTF-8 sequence at s[i] (input already validated as UTF-8 by the readers).
uint32_t decode_at(std::string_view s, size_t i, size_t* len) {
  auto c = uint8_t(s[i]);
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (i + size_t(n) > s.size()) {
    *len = 1;
    return c;
  }
  uint32_t cp = n == 4 ? c & 0x07u : n == 3 ? c & 0x0Fu : n == 2 ? c & 0x1Fu : c;
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(s[i + size_t(k)]) & 0x3Fu);
  *len = size_t(n);
  return cp;
}

bool is_punct_cp(uint32_t cp) {
  if (cp < 0x80) return std::ispunct(int(cp)) != 0;
  return (cp >= 0x2000 && cp <= 0x206F && cp != 0x2028 && cp != 0x2029 && !(cp >= 0x2000 && cp <= 0x200A)) ||  // general punctuation
         (cp >= 0x3001 && cp <= 0x303F) ||                                                               // CJK symbols and punctuation
         (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
         (cp >= 0xFF5B && cp <= 0xFF65) || cp == 0x00A1 || cp == 0x00BF || cp == 0x00B7;
}

bool is_space_cp(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x00A0 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x3000 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

std::string normalise(std::string_view in, const std::vector<std::string>& rules) {
  std::string s(in);
  for (auto& r : rules) {
    std::string out;
    if (r == "lowercase") {
      out = lower_ascii(s);
    } else if (r == "strip_punctuation" || r == "remove_whitespace" || r == "strip_whitespace") {
      bool pending_space = false;
      for (size_t i = 0; i < s.size();) {
        size_t len;
        uint32_t cp = decode_at(s, i, &len);
        bool space = is_space_cp(cp);
        if (r == "strip_punctuation" && is_punct_cp(cp)) {
          // dropped
        } else if (r == "remove_whitespace" && space) {
          // dropped
        } else if (r == "strip_whitespace" && space) {
          pending_space = !out.empty();
        } else {
          if (pending_space) out += ' ';
          pending_space = false;
          out.append(s, i, len);
        }
        i += len;
      }
    } else if (r == "strip_articles") {
      std::istringstream words(s);
      std::string w;
      for (bool first = true; words >> w;) {
        std::string lw = lower_ascii(w);
        if (lw == "a" || lw == "an" || lw == "the") continue;
        if (!first) out += ' ';
        out += w;
        first = false;
      }
    } else {
      out = s;
    }
    s = std::move(out);
  }
  return s;
}

int extract_letter(std::string_view r, size_t n) {
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  auto scan = [&](size_t from) -> int {
    for (size_t i = from; i < r.size(); ++i) {
      char c = r[i];
      if (c < 'A' || size_t(c - 'A') >= n) continue;
      if (i > 0 && alnum(r[i - 1])) continue;
      if (i + 1 < r.size() && alnum(r[i + 1])) continue;
      return c - 'A';
    }
    return -1;
  };
  // "The answer is B" / "정답: B": prefer what follows the last such marker.
  size_t best = std::string_view::npos;
  for (std::string_view m : {"answer", "Answer", "ANSWER", "정답", "답:", "답은"}) {
    size_t p = r.rfind(m);
    if (p != std::string_view::npos && (best == std::string_view::npos || p > best)) best = p + m.size();
  }
  if (best != std::string_view::npos)
    if (int l = scan(best); l >= 0) return l;
  return scan(0);
}

bool grade_text(const Suite& s, const Item& item, std::string_view response, std::string* extracted) {
  if (s.task == TaskType::ExactMatch) {
    // The first non-empty line is the answer: models often explain after it.
    std::string line;
    std::istringstream in{std::string(response)};
    for (std::string l; std::getline(in, l);)
      if (!trim(l).empty()) {
        line = trim(l);
        break;
      }
    *extracted = normalise(line, s.normalise);
    for (auto& a : item.answers)
      if (normalise(a, s.normalise) == *extracted) return true;
    return false;
  }
  bool ok = true;
  extracted->clear();
  if (!item.regex.empty()) {
    std::regex re(item.regex, std::regex::ECMAScript);
    std::match_results<std::string_view::const_iterator> m;
    ok = std::regex_search(response.begin(), response.end(), m, re);
    if (ok) *extracted = m.str(0);
  }
  if (!item.contains.empty()) {
    std::string norm = normalise(response, s.normalise);
    for (auto& c : item.contains)
      if (norm.find(normalise(c, s.normalise)) == std::string::npos) ok = false;
    if (extracted->empty()) *extracted = norm.substr(0, 200);
  }
  return ok;
}

Result<std::vector<HarnessScore>> parse_harness_results(std::string_view text, const std::string& name) {
  text::Json root;
  text::JsonError e;
  if (!text::parse_json(text, &root, &e))
    return Status::error(name + ":" + std::to_string(text::line_of(text, e.offset)) + ": invalid JSON: " + e.message);
  auto* results = root.find("results");
  if (!results || !results->is_object())
    return Status::error(name + ": no \"results\" object (expected lm-evaluation-harness output)");
  std::vector<HarnessScore> out;
  for (auto& [task, metrics] : results->members()) {
    if (!metrics.is_object())
      return Status::error(name + ":" + std::to_string(text::line_of(text, metrics.offset())) + ": results." + task + " is not an object");
    std::map<std::pair<std::string, std::string>, HarnessScore> by;
    std::map<std::pair<std::string, std::string>, double> errs;
    for (auto& [key, v] : metrics.members()) {
      if (!v.is_number()) continue;  // alias, "N/A" stderr
      std::string metric = key, filter;
      if (size_t comma = key.find(','); comma != std::string::npos) {
        metric = key.substr(0, comma);
        filter = key.substr(comma + 1);
      }
      constexpr std::string_view suffix = "_stderr";
      if (metric.size() > suffix.size() && metric.compare(metric.size() - suffix.size(), suffix.size(), suffix) == 0) {
        errs[{metric.substr(0, metric.size() - suffix.size()), filter}] = v.as_double();
        continue;
      }
      by[{metric, filter}] = HarnessScore{task, metric, filter, v.as_double(), std::nullopt, std::nullopt};
    }
    std::optional<uint64_t> n;
    if (auto* ns = root.find("n-samples"))
      if (auto* t = ns->find(task))
        if (auto* eff = t->find("effective"); eff && eff->is_uint()) n = eff->as_uint();
    for (auto& [k, sc] : by) {
      sc.n = n;
      if (auto it = errs.find(k); it != errs.end()) sc.stderr_value = it->second;
      out.push_back(sc);
    }
  }
  if (out.empty()) return Status::error(name + ": \"results\" holds no numeric scores");
  std::sort(out.begin(), out.end(), [](const HarnessScore& a, const HarnessScore& b) {
    return std::tie(a.task, a.metric, a.filter) < std::tie(b.task, b.metric, b.filter);
  });
  return out;
}

}  // namespace evald::bench
