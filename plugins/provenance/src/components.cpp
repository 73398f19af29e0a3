#include "components.hpp"

#include <algorithm>
#include <map>

namespace evald::prov {

namespace {

const std::regex kVision(R"((^|\.)(visual|vision_tower|vision_model|vision_encoder|image_encoder|vit|vpm)\.|^v\.(blk|patch|position|class|pre_ln|post_ln)|^model\.vision)");
const std::regex kProjector(R"((^|\.)(multi_modal_projector|mm_projector|mm_proj|merger|connector|vision_proj|visual_proj|aligner)\.|^mm\.)");
const std::regex kLayer(R"((^|\.)(layers|layer|h|blocks|blk|block|resblocks)\.(\d+)\.)");
const std::regex kEmbed(R"((^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings|token_embd|embed_in|tok_embedding)\.weight$)");
const std::regex kHead(R"((^|\.)(lm_head|embed_out)\.weight$|^output\.weight$)");
const std::regex kFinalNorm(R"((^|\.)(norm|ln_f|output_norm|final_layernorm|final_layer_norm|final_norm)\.(weight|bias)$)");

// Local names (after the block index) in each naming scheme, mapped to canonical roles.
struct Alias {
  const char* canon;
  TensorRole::Units units;
  std::vector<const char*> names;
};
const std::vector<Alias>& aliases() {
  using U = TensorRole::Units;
  static const std::vector<Alias> a = {
      {"attn.q", U::Rows, {"self_attn.q_proj", "attn.q_proj", "attention.wq", "attn_q", "attn.attention.q_proj", "attention.query", "self_attention.query", "attn.wq"}},
      {"attn.k", U::Rows, {"self_attn.k_proj", "attn.k_proj", "attention.wk", "attn_k", "attn.attention.k_proj", "attention.key", "self_attention.key", "attn.wk"}},
      {"attn.v", U::Rows, {"self_attn.v_proj", "attn.v_proj", "attention.wv", "attn_v", "attn.attention.v_proj", "attention.value", "self_attention.value", "attn.wv"}},
      {"attn.qkv", U::Rows, {"self_attn.qkv_proj", "attn.qkv", "attention.query_key_value", "self_attention.query_key_value", "attn.c_attn", "attn_qkv", "attn.in_proj"}},
      {"attn.o", U::Cols, {"self_attn.o_proj", "self_attn.out_proj", "attn.o_proj", "attention.wo", "attn_output", "attn.attention.out_proj", "attention.dense", "self_attention.dense", "attn.c_proj", "attn.proj", "attn.out_proj", "attn.wo"}},
      {"mlp.gate", U::Rows, {"mlp.gate_proj", "feed_forward.w1", "ffn_gate", "mlp.c_fc_0", "mlp.w1"}},
      {"mlp.up", U::Rows, {"mlp.up_proj", "feed_forward.w3", "ffn_up", "mlp.c_fc_1", "mlp.fc1", "mlp.c_fc", "mlp.dense_h_to_4h", "mlp.w3", "mlp.linear_fc1"}},
      {"mlp.down", U::Cols, {"mlp.down_proj", "feed_forward.w2", "ffn_down", "mlp.c_proj", "mlp.fc2", "mlp.dense_4h_to_h", "mlp.w2", "mlp.linear_fc2"}},
      {"norm.attn", U::Rows, {"input_layernorm", "attention_norm", "attn_norm", "ln_1", "layer_norm1", "norm1", "ln1"}},
      {"norm.mlp", U::Rows, {"post_attention_layernorm", "ffn_norm", "ln_2", "layer_norm2", "norm2", "ln2"}},
      {"norm.pre_mlp", U::Rows, {"pre_feedforward_layernorm"}},
      {"norm.post_mlp", U::Rows, {"post_feedforward_layernorm"}},
      {"norm.q", U::Rows, {"self_attn.q_norm", "attn_q_norm"}},
      {"norm.k", U::Rows, {"self_attn.k_norm", "attn_k_norm"}},
  };
  return a;
}

// Splits "<local>.<weight|bias>" and maps the local part through the aliases.
void canonical(const std::string& local, TensorRole* r) {
  std::string base = local, suffix;
  size_t dot = local.rfind('.');
  if (dot != std::string::npos) base = local.substr(0, dot), suffix = local.substr(dot);
  for (const Alias& a : aliases())
    for (const char* n : a.names)
      if (base == n) {
        r->role = std::string(a.canon) + suffix;
        r->units = a.units;
        r->known = true;
        return;
      }
  r->role = local;
  r->units = TensorRole::Units::Both;
}

}  // namespace

std::string ComponentRules::add(const std::vector<ComponentRule>& rules) {
  for (const ComponentRule& c : rules) {
    if (std::find(std::begin(kComponents), std::end(kComponents), c.component) == std::end(kComponents) && c.component != "other")
      return "component rule \"" + c.pattern + "\": unknown component \"" + c.component + "\" (llm, embeddings, vision or other)";
    try {
      custom_.emplace_back(std::regex(c.pattern, std::regex::ECMAScript), c.component);
    } catch (const std::regex_error& e) {
      return "component rule \"" + c.pattern + "\": invalid regular expression: " + e.what();
    }
    custom_text_.push_back(c);
  }
  return {};
}

TensorRole ComponentRules::classify(const std::string& name) const {
  TensorRole r;
  std::smatch m;
  std::string local = name;
  if (std::regex_search(name, m, kLayer)) {
    r.layer = std::stoi(m[3].str().substr(0, 6));
    local = m.suffix().str();
  }
  bool projector = std::regex_search(name, kProjector);
  r.component = "other";
  for (const auto& [re, comp] : custom_)
    if (std::regex_search(name, re)) {
      r.component = comp;
      break;
    }
  if (r.component != "other") r.by = "rule";
  if (r.component == "other") {
    if (projector || std::regex_search(name, kVision)) r.component = "vision";
    else if (std::regex_search(name, kEmbed) || std::regex_search(name, kHead)) r.component = "embeddings";
    else if (r.layer >= 0 || std::regex_search(name, kFinalNorm)) r.component = "llm";
    if (r.component != "other") r.by = "name";
  }
  if (std::regex_search(name, kEmbed)) {
    r.role = "embed";
    r.units = TensorRole::Units::Rows;
    r.known = true;
  } else if (std::regex_search(name, kHead)) {
    r.role = "head";
    r.units = TensorRole::Units::Rows;
    r.known = true;
  } else if (r.layer >= 0) {
    canonical(local, &r);
  } else if (r.component == "llm" && std::regex_search(name, m, kFinalNorm)) {
    r.role = "norm.final." + m[3].str();
    r.known = true;
  } else {
    // Outside blocks (vision stems, projectors, unknown): the name after the component's
    // wrapper prefix, so the same tensor matches across LLaVA-style and bare layouts.
    static const std::regex wrapper(R"(^(model\.)?(language_model\.)?(model\.)?)");
    r.role = std::regex_replace(name, wrapper, "");
    r.units = TensorRole::Units::Both;
  }
  if (projector) r.role = "projector:" + r.role;
  return r;
}

std::string shape_class(uint64_t rows, uint64_t cols, uint64_t width) {
  if (width == 0) return {};
  if (rows == width && cols == width) return "square";
  if (cols == width) return "in";
  if (rows == width) return "out";
  return {};
}

namespace {

uint64_t view_rows(const std::vector<uint64_t>& s) { return s.empty() ? 1 : s[0]; }
uint64_t view_cols(const std::vector<uint64_t>& s) {
  uint64_t c = 1;
  for (size_t i = 1; i < s.size(); ++i) c *= s[i];
  return c;
}

// The dimension shared by the most 2-D non-vision tensors (ties: the larger): in a transformer
// every projection reads or writes the residual stream, so d is in nearly all of them.
uint64_t width_from_shapes(const std::vector<TensorShape>& ts, const std::vector<TensorRole>& roles) {
  for (size_t i = 0; i < ts.size(); ++i)
    if ((roles[i].role == "embed" || roles[i].role == "head") && ts[i].shape.size() == 2) return ts[i].shape[1];
  std::map<uint64_t, size_t> count;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i].shape.size() != 2 || roles[i].component == "vision") continue;
    uint64_t a = ts[i].shape[0], b = ts[i].shape[1];
    ++count[a];
    if (b != a) ++count[b];
  }
  uint64_t best = 0;
  size_t n = 0;
  for (const auto& [v, c] : count)
    if (c >= n && v > 1) best = v, n = c;
  return n >= 2 ? best : 0;
}

const std::regex kNumbered(R"((^|[._])(\d{1,6})([._]|$))");

}  // namespace

Layout assign_roles(const std::vector<TensorShape>& ts, const ComponentRules& rules) {
  Layout out;
  out.roles.reserve(ts.size());
  for (const TensorShape& t : ts) out.roles.push_back(rules.classify(t.name));
  out.width = width_from_shapes(ts, out.roles);
  const uint64_t d = out.width;
  // Token matrices (embedding, output head) are the one or two n x d matrices of their n outside
  // the layer groups; more of one shape are something else.
  std::map<uint64_t, int> outside_in;
  auto numbered = [&](size_t i) {
    std::smatch m;
    return out.roles[i].layer >= 0 || std::regex_search(ts[i].name, m, kNumbered);
  };
  for (size_t i = 0; i < ts.size(); ++i)
    if (ts[i].shape.size() == 2 && !numbered(i) && shape_class(ts[i].shape[0], ts[i].shape[1], d) == "in") ++outside_in[ts[i].shape[0]];
  for (size_t i = 0; i < ts.size(); ++i) {
    TensorRole& r = out.roles[i];
    const auto& shape = ts[i].shape;
    uint64_t rows = view_rows(shape), cols = view_cols(shape);
    if (r.component == "llm" || r.component == "embeddings") r.shape_class = shape.size() >= 2 ? shape_class(rows, cols, d) : "";
    if (r.by == "rule" || r.component == "vision") continue;
    if (r.component == "llm" && r.known) continue;
    if (r.component == "embeddings") continue;
    // Unplaced by names, or an llm tensor whose local name is unknown (an MoE expert, say).
    if (r.layer < 0) {
      std::smatch m;
      if (std::regex_search(ts[i].name, m, kNumbered)) r.layer = std::stoi(m[2].str());
    }
    std::string cls = shape.size() == 2 ? shape_class(rows, cols, d) : "";
    if (r.layer >= 0 && !cls.empty()) {
      r.component = "llm", r.shape_class = cls, r.by = r.by.empty() ? "structure" : r.by;
      r.units = cls == "in" ? TensorRole::Units::Rows : cls == "out" ? TensorRole::Units::Cols : TensorRole::Units::Both;
    } else if (r.layer < 0 && cls == "in" && outside_in[rows] <= 2) {
      r.component = "embeddings", r.shape_class = "token", r.role = "token", r.by = "structure", r.known = false;
      r.units = TensorRole::Units::Rows;
    } else if (shape.size() == 1 && d && shape[0] == d && r.component == "other") {
      r.component = "llm", r.by = "structure";
    } else if (r.component == "other") {
      r.by.clear();
    }
  }
  for (size_t i = 0; i < ts.size(); ++i) {
    TensorRole& r = out.roles[i];
    if (r.role == "embed" || r.role == "head") r.shape_class = "token";
    // An llm matrix that neither reads nor writes the residual stream is not what its name says
    // (a vision tower under decoder-like names, say): placed nowhere, so it is not judged as
    // llm evidence it cannot be, and counts against max_unassigned_share.
    if (r.component == "llm" && r.by != "rule" && d && ts[i].shape.size() >= 2 && r.shape_class.empty()) {
      r.component = "other";
      r.by.clear();
    }
  }
  return out;
}

}  // namespace evald::prov
