#include "pipeline.hpp"

#include "util.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace evald::daemon {

namespace {

Value scalar_value(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return Value(s);  // quoted: always a string
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return Value();
  if (s == "true" || s == "True" || s == "TRUE") return Value(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value(false);
  if (!s.empty()) {
    int64_t i;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
    if (ec == std::errc() && p == s.data() + s.size()) return Value(i);
    double d;
    auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec2 == std::errc() && p2 == s.data() + s.size()) return Value(d);
  }
  return Value(s);
}

// YAML aliases can make a document a cycle (`a: &a {b: *a}`) or expand it exponentially
// ("billion laughs"): conversion stops at a depth and a node count proportional to the text.
class YamlConverter {
 public:
  explicit YamlConverter(size_t text_size) : budget_(16 * text_size + 1024) {}

  Value convert(const YAML::Node& n, size_t depth = 0) {
    if (depth > kMaxDepth) throw YAML::ParserException(n.Mark(), "nested deeper than " + std::to_string(kMaxDepth) + " levels (an alias cycle?)");
    if (budget_-- == 0) throw YAML::ParserException(n.Mark(), "expands to too many nodes (aliases repeated too often?)");
    switch (n.Type()) {
      case YAML::NodeType::Scalar: return scalar_value(n);
      case YAML::NodeType::Sequence: {
        Array a;
        for (const auto& e : n) a.push_back(convert(e, depth + 1));
        return Value(std::move(a));
      }
      case YAML::NodeType::Map: {
        Value m = Map{};
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) throw YAML::ParserException(kv.first.Mark(), "map keys must be plain strings");
          m.set(kv.first.Scalar(), convert(kv.second, depth + 1));
        }
        return m;
      }
      default: return Value();
    }
  }

 private:
  static constexpr size_t kMaxDepth = 64;
  size_t budget_;
};

struct Errors {
  std::string source;
  std::string text;
  void add(const YAML::Mark& m, const std::string& field, const std::string& msg) {
    if (!text.empty()) text += '\n';
    text += source;
    if (!m.is_null()) text += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    text += ": " + field + ": " + msg;
  }
};

bool read_int(const YAML::Node& n, const std::string& field, int lo, int hi, int& out, Errors& err) {
  if (!n) return true;
  Value v = n.IsScalar() ? scalar_value(n) : Value();
  if (!v.is_int() || v.as_int() < lo || v.as_int() > hi) {
    err.add(n.Mark(), field, "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return false;
  }
  out = int(v.as_int());
  return true;
}

}  // namespace

const StageSpec* PipelineSpec::stage(std::string_view id) const {
  for (auto& s : stages)
    if (s.id == id) return &s;
  return nullptr;
}

std::vector<const StageSpec*> PipelineSpec::downstream(std::string_view id) const {
  std::vector<const StageSpec*> out;
  for (auto& s : stages)
    for (auto& a : s.after)
      if (a == id) out.push_back(&s);
  return out;
}

Result<Value> yaml_to_value(std::string_view yaml, const std::string& source) {
  try {
    return YamlConverter(yaml.size()).convert(YAML::Load(std::string(yaml)));
  } catch (const YAML::Exception& e) {
    return Status::error(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                         ": malformed YAML: " + e.msg);
  }
}

Result<PipelineSpec> parse_pipeline(std::string_view yaml, const std::string& source, const PluginRegistry& plugins) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::error(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                         ": malformed YAML: " + e.msg);
  }
  Errors err{source, {}};
  PipelineSpec spec;
  spec.source = source;
  spec.yaml = std::string(yaml);
  spec.sha256 = sha256_hex(yaml);
  if (!root.IsMap()) return Status::error(source + ": a pipeline must be a YAML map with name and stages");

  static const std::set<std::string> kTop = {"name", "description", "stages"};
  for (const auto& kv : root)
    if (!kTop.count(kv.first.Scalar()))
      err.add(kv.first.Mark(), kv.first.Scalar(), "unknown field (known: name, description, stages)");
  if (!root["name"] || !root["name"].IsScalar()) {
    err.add(root.Mark(), "name", "required string missing");
  } else {
    spec.name = root["name"].Scalar();
    if (auto st = check_id("pipeline name", spec.name); !st) err.add(root["name"].Mark(), "name", st.message());
  }
  if (root["description"] && root["description"].IsScalar()) spec.description = root["description"].Scalar();
  auto stages = root["stages"];
  if (!stages || !stages.IsSequence() || stages.size() == 0) {
    err.add(stages ? stages.Mark() : root.Mark(), "stages", "required non-empty list missing");
    return Status::error(err.text);
  }

  static const std::set<std::string> kStage = {"id", "plugin", "config", "per", "after", "timeout_s", "retries", "workers", "prefetch", "isolation", "gpus"};
  std::vector<StageSpec> parsed;
  std::map<std::string, YAML::Mark> after_marks;
  for (size_t i = 0; i < stages.size(); ++i) {
    auto n = stages[i];
    std::string at = "stages[" + std::to_string(i) + "]";
    if (!n.IsMap()) {
      err.add(n.Mark(), at, "a stage must be a map");
      continue;
    }
    StageSpec s;
    s.line = n.Mark().line + 1;
    for (const auto& kv : n)
      if (!kStage.count(kv.first.Scalar()))
        err.add(kv.first.Mark(), at + "." + kv.first.Scalar(),
                "unknown field (known: id, plugin, config, per, after, timeout_s, retries, workers, prefetch, isolation, gpus)");
    if (!n["id"] || !n["id"].IsScalar()) {
      err.add(n.Mark(), at + ".id", "required string missing");
    } else {
      s.id = n["id"].Scalar();
      at = "stages[" + std::to_string(i) + "] (" + s.id + ")";
      if (auto st = check_id("stage id", s.id); !st) err.add(n["id"].Mark(), at + ".id", st.message());
      for (auto& p : parsed)
        if (p.id == s.id) err.add(n["id"].Mark(), at + ".id", "duplicate stage id (first at line " + std::to_string(p.line) + ")");
    }
    if (auto per = n["per"]) {
      if (per.IsScalar() && per.Scalar() == "entrant") s.per = Per::Entrant;
      else if (per.IsScalar() && per.Scalar() == "round") s.per = Per::Round;
      else err.add(per.Mark(), at + ".per", "expected entrant or round");
    }
    if (auto after = n["after"]) {
      if (after.IsScalar()) after_marks[s.id] = after.Mark(), s.after.push_back(after.Scalar());
      else if (after.IsSequence()) {
        after_marks[s.id] = after.Mark();
        for (const auto& a : after) s.after.push_back(a.Scalar());
      } else err.add(after.Mark(), at + ".after", "expected a list of stage ids");
    }
    read_int(n["timeout_s"], at + ".timeout_s", 1, 7 * 24 * 3600, s.timeout_s, err);
    read_int(n["retries"], at + ".retries", 0, 100, s.retries, err);
    read_int(n["workers"], at + ".workers", 1, 64, s.workers, err);
    read_int(n["prefetch"], at + ".prefetch", 1, 1024, s.prefetch, err);
    read_int(n["gpus"], at + ".gpus", 0, 64, s.gpus, err);
    if (auto iso = n["isolation"]) {
      if (iso.IsScalar() && iso.Scalar() == "thread") s.isolation = Isolation::Thread;
      else if (iso.IsScalar() && iso.Scalar() == "process") s.isolation = Isolation::Process;
      else err.add(iso.Mark(), at + ".isolation", "expected thread or process");
    }
    if (!n["plugin"] || !n["plugin"].IsScalar()) {
      err.add(n.Mark(), at + ".plugin", "required string missing");
    } else {
      s.plugin = n["plugin"].Scalar();
      s.library = plugins.find(s.plugin);
      if (!s.library) {
        std::string known;
        for (auto& p : plugins.list()) known += (known.empty() ? "" : ", ") + p->name;
        err.add(n["plugin"].Mark(), at + ".plugin",
                "unknown plugin \"" + s.plugin + "\" (loaded: " + (known.empty() ? "none" : known) + ")");
      }
    }
    Value cfg;
    try {
      if (n["config"]) cfg = YamlConverter(yaml.size()).convert(n["config"]);
    } catch (const YAML::Exception& e) {
      err.add(e.mark, at + ".config", e.msg);
    }
    if (s.library) {
      std::vector<std::pair<std::string, std::string>> problems;
      auto checked = s.library->schema.validate(cfg, &problems);
      if (!checked) {
        for (auto& [key, why] : problems) {
          // Point at the offending key's own line when it is present.
          auto c = n["config"];
          YAML::Mark m = c && c.IsMap() && c[key] ? c[key].Mark() : (c ? c.Mark() : n.Mark());
          err.add(m, at + ".config" + (key.empty() ? "" : "." + key), why);
        }
      } else {
        s.config = std::move(*checked);
        Bytes b = msgpack::encode(s.config);
        evald_error e{};
        if (s.library->api->validate_config({b.data(), b.size()}, &e) != EVALD_OK)
          err.add(n["config"] ? n["config"].Mark() : n.Mark(), at + ".config",
                  "rejected by plugin " + s.plugin + ": " + e.message);
      }
    }
    parsed.push_back(std::move(s));
  }

  // References and cycles.
  std::map<std::string, const StageSpec*> by_id;
  for (auto& s : parsed) by_id[s.id] = &s;
  for (auto& s : parsed)
    for (auto& a : s.after) {
      if (!by_id.count(a)) err.add(after_marks[s.id], "stage " + s.id + ".after", "unknown stage \"" + a + "\"");
      else if (a == s.id) err.add(after_marks[s.id], "stage " + s.id + ".after", "a stage cannot run after itself");
    }
  if (!err.text.empty()) return Status::error(err.text);

  std::map<std::string, int> mark;  // 0 new, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::vector<StageSpec*> order;
  std::string cycle;
  std::function<bool(StageSpec&)> visit = [&](StageSpec& s) -> bool {
    if (mark[s.id] == 2) return true;
    if (mark[s.id] == 1) {
      auto it = std::find(stack.begin(), stack.end(), s.id);
      for (; it != stack.end(); ++it) cycle += *it + " -> ";
      cycle += s.id;
      return false;
    }
    mark[s.id] = 1;
    stack.push_back(s.id);
    for (auto& a : s.after)
      for (auto& p : parsed)
        if (p.id == a && !visit(p)) return false;
    stack.pop_back();
    mark[s.id] = 2;
    order.push_back(&s);
    return true;
  };
  for (auto& s : parsed)
    if (!visit(s)) {
      err.add(after_marks[stack.back()], "stage " + stack.back() + ".after", "cycle: " + cycle);
      return Status::error(err.text);
    }
  for (auto* s : order) spec.stages.push_back(std::move(*s));
  return spec;
}

Result<PipelineSpec> load_pipeline_file(const std::string& path, const PluginRegistry& plugins) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open pipeline file");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::error(path + ": read error");
  return parse_pipeline(ss.str(), path, plugins);
}

}  // namespace evald::daemon
