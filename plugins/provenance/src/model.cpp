#include "model.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "json.hpp"

namespace evald::prov {

using text::Json;
using text::JsonError;
using text::parse_json;

namespace fs = std::filesystem;

namespace {

bool read_text(const fs::path& p, std::string* out, FormatError* err) {
  // A FIFO or device would block or never end.
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) {
    if (err) *err = FormatError{p.string(), 0, "open", "not a regular file"};
    return false;
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    if (err) *err = FormatError{p.string(), 0, "open", "cannot open"};
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool read_json_file(const fs::path& p, Json* out, FormatError* err) {
  std::string text;
  if (!read_text(p, &text, err)) return false;
  JsonError je;
  if (!parse_json(text, out, &je, 256)) {
    if (err) *err = FormatError{p.string(), je.offset, "json", "not valid JSON: " + je.message};
    return false;
  }
  return true;
}

void flatten(const Json& v, const std::string& prefix, std::map<std::string, std::string>* out, int depth = 0) {
  switch (v.type()) {
    case Json::Type::Object:
      if (depth < 3)
        for (const auto& [k, m] : v.members()) flatten(m, prefix.empty() ? k : prefix + "." + k, out, depth + 1);
      break;
    case Json::Type::String: (*out)[prefix] = v.str(); break;
    case Json::Type::Number: {
      // Shortest text that reads back as the same double (to_string's fixed six decimals turn 1e-12 into 0).
      char num[32] = {};
      std::to_chars(num, num + sizeof num - 1, v.as_double());
      (*out)[prefix] = v.is_uint() ? std::to_string(v.as_uint()) : num;
      break;
    }
    case Json::Type::Bool: (*out)[prefix] = v.as_bool() ? "true" : "false"; break;
    case Json::Type::Array:
      if (v.items().size() <= 8) {
        std::string s = "[";
        for (const Json& i : v.items()) {
          if (s.size() > 1) s += ", ";
          s += i.is_string() ? i.str() : i.is_uint() ? std::to_string(i.as_uint()) : i.type_name();
        }
        (*out)[prefix] = s + "]";
      }
      break;
    case Json::Type::Null: break;
  }
}

// token -> id maps: tokenizer.json's model.vocab (object, or Unigram's [[token, score], ...])
// plus added_tokens; vocab.json's object.
bool vocab_from_json(const Json& vocab, const fs::path& file, std::vector<std::string>* out, FormatError* err) {
  // Ids beyond the entries (plus room for gaps) would make a tiny file allocate gigabytes.
  const uint64_t limit = uint64_t(vocab.is_object() ? vocab.members().size() : vocab.items().size()) + 65536;
  auto put = [&](uint64_t id, const std::string& tok, uint64_t at) {
    if (id >= limit) {
      if (err) *err = FormatError{file.string(), at, "tokenizer-id", "token id " + std::to_string(id) + " is far beyond the " + std::to_string(limit - 65536) + " entries"};
      return false;
    }
    if (out->size() <= id) out->resize(id + 1);
    (*out)[id] = tok;
    return true;
  };
  if (vocab.is_object()) {
    for (const auto& [tok, id] : vocab.members()) {
      if (!id.is_uint()) {
        if (err) *err = FormatError{file.string(), id.offset(), "tokenizer-id", "token \"" + tok + "\" has a non-integer id"};
        return false;
      }
      if (!put(id.as_uint(), tok, id.offset())) return false;
    }
    return true;
  }
  if (vocab.is_array()) {  // Unigram: position is the id
    for (size_t i = 0; i < vocab.items().size(); ++i) {
      const Json& e = vocab.items()[i];
      if (!e.is_array() || e.items().empty() || !e.items()[0].is_string()) {
        if (err) *err = FormatError{file.string(), e.offset(), "tokenizer-vocab", "Unigram vocab entries must be [token, score]"};
        return false;
      }
      if (!put(i, e.items()[0].str(), e.offset())) return false;
    }
    return true;
  }
  if (err) *err = FormatError{file.string(), vocab.offset(), "tokenizer-vocab", "vocab must be an object or an array"};
  return false;
}

bool read_tokenizer(const fs::path& dir, Model* m, FormatError* err) {
  if (fs::exists(dir / "tokenizer.json")) {
    Json j;
    if (!read_json_file(dir / "tokenizer.json", &j, err)) return false;
    const Json* model = j.find("model");
    const Json* vocab = model ? model->find("vocab") : nullptr;
    if (vocab && !vocab_from_json(*vocab, dir / "tokenizer.json", &m->vocab, err)) return false;
    if (const Json* added = j.find("added_tokens"); added && added->is_array()) {
      for (const Json& a : added->items()) {
        const Json* id = a.find("id");
        const Json* content = a.find("content");
        if (id && id->is_uint() && content && content->is_string() && id->as_uint() < m->vocab.size() + 65536) {
          if (m->vocab.size() <= id->as_uint()) m->vocab.resize(id->as_uint() + 1);
          m->vocab[id->as_uint()] = content->str();
        }
      }
    }
    m->tokenizer_source = (dir / "tokenizer.json").string();
    return true;
  }
  if (fs::exists(dir / "vocab.json")) {
    Json j;
    if (!read_json_file(dir / "vocab.json", &j, err)) return false;
    if (!vocab_from_json(j, dir / "vocab.json", &m->vocab, err)) return false;
    m->tokenizer_source = (dir / "vocab.json").string();
    if (fs::exists(dir / "merges.txt")) m->tokenizer_source += " + merges.txt";
  }
  return true;
}

// Hugging Face model cards declare lineage in YAML front matter: base_model: name | [names].
bool read_model_card(const fs::path& dir, Model* m, FormatError* err) {
  fs::path p = dir / "README.md";
  if (!fs::exists(p)) return true;
  std::string text;
  if (!read_text(p, &text, err)) return false;
  if (text.rfind("---", 0) != 0) return true;
  size_t end = text.find("\n---", 3);
  if (end == std::string::npos) return true;
  try {
    std::string yaml = text.substr(3, end - 3);
    // A CRLF card: the closing "\r\n---" would leave a '\r' on the last value.
    if (!yaml.empty() && yaml.back() == '\r') yaml.pop_back();
    YAML::Node front = YAML::Load(yaml);
    if (!front.IsMap()) return true;
    for (const char* key : {"base_model", "base_model_relation"}) {
      YAML::Node v = front[key];
      if (v.IsScalar()) m->claims.push_back({p.string(), key, v.as<std::string>()});
      else if (v.IsSequence())
        for (const auto& e : v)
          if (e.IsScalar()) m->claims.push_back({p.string(), key, e.as<std::string>()});
    }
  } catch (const YAML::Exception& e) {
    if (err) *err = FormatError{p.string(), e.mark.pos < 0 ? 0 : uint64_t(e.mark.pos) + 3, "model-card-yaml", "front matter is not valid YAML: " + e.msg};
    return false;
  }
  return true;
}

}  // namespace

bool open_model(const std::string& path, Model* out, FormatError* err) {
  Model m;
  m.path = path;
  fs::path p(path);
  fs::path dir = fs::is_directory(p) ? p : p.parent_path();
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    if (err) *err = FormatError{path, 0, "open", "no such file or directory"};
    return false;
  }
  std::map<std::string, std::vector<std::string>> gguf_arrays;
  bool ok;
  if (!fs::is_directory(p)) {
    ok = p.extension() == ".gguf" ? read_gguf(path, &m.weights, err, &gguf_arrays)
         : p.filename() == "model.safetensors.index.json" ? read_safetensors_index(path, &m.weights, err)
                                                           : read_safetensors(path, &m.weights, err);
  } else if (fs::exists(p / "model.safetensors.index.json")) {
    ok = read_safetensors_index((p / "model.safetensors.index.json").string(), &m.weights, err);
  } else if (fs::exists(p / "model.safetensors")) {
    ok = read_safetensors((p / "model.safetensors").string(), &m.weights, err);
  } else {
    std::vector<fs::path> st, gg;
    for (const auto& e : fs::directory_iterator(p)) {
      if (e.path().extension() == ".safetensors") st.push_back(e.path());
      if (e.path().extension() == ".gguf") gg.push_back(e.path());
    }
    if (st.size() + gg.size() != 1) {
      if (err)
        *err = FormatError{path, 0, "model-files",
                           st.size() + gg.size() == 0 ? "no model.safetensors, model.safetensors.index.json or .gguf file found"
                                                      : "several weight files and no model.safetensors.index.json to say how they fit together"};
      return false;
    }
    ok = !gg.empty() ? read_gguf(gg[0].string(), &m.weights, err, &gguf_arrays) : read_safetensors(st[0].string(), &m.weights, err);
  }
  if (!ok) return false;

  if (fs::exists(dir / "config.json")) {
    Json cfg;
    if (!read_json_file(dir / "config.json", &cfg, err)) return false;
    if (!cfg.is_object()) {
      if (err) *err = FormatError{(dir / "config.json").string(), 0, "config", "config.json is not a JSON object"};
      return false;
    }
    flatten(cfg, "", &m.config);
    for (const char* key : {"base_model", "_name_or_path"})
      if (const Json* v = cfg.find(key); v && v->is_string() && !v->str().empty())
        m.claims.push_back({(dir / "config.json").string(), key, v->str()});
  }
  if (!read_tokenizer(dir, &m, err)) return false;
  if (!read_model_card(dir, &m, err)) return false;
  if (m.weights.format == "gguf") {
    for (const auto& [k, v] : m.weights.metadata)
      if (k.rfind("general.base_model.", 0) == 0 || k == "general.source.url" || k == "general.source.huggingface.repository")
        m.claims.push_back({m.weights.files[0], k, v});
    if (m.vocab.empty()) {
      auto it = gguf_arrays.find("tokenizer.ggml.tokens");
      if (it != gguf_arrays.end()) {
        m.vocab = it->second;
        m.tokenizer_source = m.weights.files[0] + " (tokenizer.ggml.tokens)";
      }
    }
  }
  *out = std::move(m);
  return true;
}

}  // namespace evald::prov
