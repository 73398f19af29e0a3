#include "report.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace evald::prov {

namespace fs = std::filesystem;

Result<ScanOptions> scan_options_from(const Value& c) {
  ScanOptions o;
  auto num = [&](const char* k, double def) { return c.find(k) && c.find(k)->is_number() ? c.find(k)->as_double() : def; };
  o.decision.alpha = num("alpha", o.decision.alpha);
  o.decision.min_effect = num("min_effect", o.decision.min_effect);
  o.decision.screen = num("screen", o.decision.screen);
  double perms = num("permutations", o.decision.permutations);
  o.decision.seed = uint64_t(num("seed", double(o.decision.seed)));
  o.decision.threads = unsigned(num("threads", o.decision.threads));
  o.max_unassigned_share = num("max_unassigned_share", o.max_unassigned_share);
  double min_null = num("min_null_models", o.decision.min_null_models);
  o.decision.null_z = num("null_z", o.decision.null_z);
  if (!(min_null >= 1 && min_null <= 1e6)) return Status::error("min_null_models: must be between 1 and 1000000");
  o.decision.min_null_models = uint32_t(min_null);
  if (!(o.decision.null_z >= 0 && o.decision.null_z <= 100)) return Status::error("null_z: must be in [0, 100]");
  if (!(o.max_unassigned_share >= 0 && o.max_unassigned_share <= 1)) return Status::error("max_unassigned_share: must be in [0, 1]");
  if (!(o.decision.alpha > 0 && o.decision.alpha < 1)) return Status::error("alpha: must be in (0, 1)");
  if (!(o.decision.min_effect > 0 && o.decision.min_effect <= 1)) return Status::error("min_effect: must be in (0, 1]");
  if (!(o.decision.screen >= 0 && o.decision.screen <= 1)) return Status::error("screen: must be in [0, 1]");
  if (!(perms >= 19 && perms <= 1e6)) return Status::error("permutations: must be between 19 and 1000000");
  o.decision.permutations = uint32_t(perms);
  if (o.decision.threads < 1 || o.decision.threads > 256) return Status::error("threads: must be between 1 and 256");
  if (const Value* rules = c.find("component_rules"); rules && !rules->is_null()) {
    if (!rules->is_array()) return Status::error("component_rules: must be a list of {pattern, component}");
    for (size_t i = 0; i < rules->as_array().size(); ++i) {
      const Value& r = rules->as_array()[i];
      const Value *p = r.find("pattern"), *comp = r.find("component");
      if (!r.is_map() || !p || !p->is_string() || !comp || !comp->is_string())
        return Status::error("component_rules[" + std::to_string(i) + "]: needs string fields pattern and component");
      o.rules.push_back({p->as_string(), comp->as_string()});
    }
    ComponentRules check;
    if (std::string e = check.add(o.rules); !e.empty()) return Status::error("component_rules: " + e);
  }
  if (const Value* g = c.find("gate_components"); g && g->is_array()) {
    o.gate_components.clear();
    for (const Value& x : g->as_array()) {
      if (!x.is_string() || std::find(std::begin(kComponents), std::end(kComponents), x.as_string()) == std::end(kComponents))
        return Status::error("gate_components: entries must be llm, embeddings or vision");
      o.gate_components.push_back(x.as_string());
    }
  }
  return o;
}

namespace {

Value error_value(const FormatError& e) {
  Value v;
  v.set("file", e.file);
  v.set("offset", e.offset);
  v.set("rule", e.rule);
  v.set("message", e.message);
  return v;
}

Value gate(const std::string& result, const std::string& reason) {
  Value g;
  g.set("result", result);
  g.set("reason", reason);
  return g;
}

Value library_value(const ReferenceSet& lib) {
  Value a = Value(Array{});
  for (size_t r = 0; r < lib.size(); ++r) {
    const Fingerprint& f = lib.head(r);
    Value v;
    v.set("name", f.name);
    v.set("revision", f.revision);
    v.set("source_hash", f.source_hash);
    a.push_back(v);
  }
  return a;
}

double unassigned_share(const ScanResult& s) {
  return s.total_params ? double(s.unassigned_params) / double(s.total_params) : 0.0;
}

Value layout_value(const ScanResult& s, const ScanOptions& opt) {
  Value v;
  v.set("width", s.width);
  v.set("parameters", s.total_params);
  v.set("unassigned_parameters", s.unassigned_params);
  v.set("unassigned_share", unassigned_share(s));
  v.set("max_unassigned_share", opt.max_unassigned_share);
  Value names = Value(Array{});
  for (const auto& [name, n] : s.unassigned) {
    Value t;
    t.set("tensor", name);
    t.set("parameters", n);
    names.push_back(t);
  }
  v.set("unassigned", names);
  return v;
}

// Why nothing may pass although nothing was found derived: the library has no reference, no
// gated component was judged, or too much of the model was placed in no component. Empty when
// the evidence covers the model.
std::string unjudged(const ScanResult& s, const ReferenceSet& refs, const ScanOptions& opt) {
  bool any = false;
  for (size_t r = 0; r < refs.size(); ++r) any |= refs.head(r).kind == "reference";
  if (!any) return "the reference library holds no reference model: nothing was compared";
  bool judged = false;
  for (const ComponentResult& c : s.components)
    if (std::find(opt.gate_components.begin(), opt.gate_components.end(), c.component) != opt.gate_components.end() && c.verdict != "absent")
      judged = true;
  if (!judged) return "no gated component was found in the model (" + std::to_string(s.unassigned.size()) + " tensors of an unknown layout)";
  double share = unassigned_share(s);
  if (share <= opt.max_unassigned_share) return {};
  std::string names;
  for (size_t i = 0; i < s.unassigned.size() && i < 8; ++i) names += (i ? ", " : "") + s.unassigned[i].first;
  if (s.unassigned.size() > 8) names += " and " + std::to_string(s.unassigned.size() - 8) + " more";
  char buf[160];
  snprintf(buf, sizeof buf, "%.1f%% of the parameters (above the %.1f%% allowed) are in tensors placed in no component, so they were not judged: ",
           100 * share, 100 * opt.max_unassigned_share);
  return buf + names;
}

// The candidate's tokenizer against each reference's vocabulary: informational, never gated
// (reusing an open tokenizer is reusing architecture, not weights). One reference's vocabulary
// at a time, so a library's vocabularies are never all in memory.
Value tokenizer_value(const Model& m, const ReferenceSet& refs, std::string* error) {
  Value tok;
  tok.set("source", m.tokenizer_source.empty() ? Value() : Value(m.tokenizer_source));
  tok.set("tokens", uint64_t(m.vocab.size()));
  Value overlaps = Value(Array{});
  std::vector<std::string> a(m.vocab);
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  for (size_t ri = 0; ri < refs.size() && !m.vocab.empty(); ++ri) {
    if (refs.vocab_size(ri) == 0) continue;
    auto vocab = refs.vocabulary(ri);
    if (!vocab) {
      *error = vocab.error();
      break;
    }
    std::vector<std::string> b(std::move(*vocab));
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    std::vector<std::string> common;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
    Value o;
    o.set("reference", refs.head(ri).name);
    o.set("jaccard", double(common.size()) / double(a.size() + b.size() - common.size()));
    overlaps.push_back(o);
  }
  tok.set("overlap", overlaps);
  std::string closest;
  double best = -1;
  for (const Value& o : overlaps.as_array())
    if (o.get_double("jaccard") > best) best = o.get_double("jaccard"), closest = o.get_string("reference");
  tok.set("verdict", m.vocab.empty() ? "no tokenizer files"
                     : best >= 0.95  ? "vocabulary shared with " + closest
                     : best >= 0     ? "own vocabulary (closest " + closest + ", Jaccard " + std::to_string(best).substr(0, 5) + ")"
                                     : "no reference vocabulary to compare with");
  return tok;
}

// Scans one model; also returns the components for trajectory logic.
Value scan_one(const std::string& path, const ReferenceSet& refs, const ScanOptions& opt,
               const ProgressFn& progress, std::vector<ComponentResult>* comps_out, Model* model_out = nullptr) {
  Value r;
  r.set("model", path);
  r.set("thresholds", opt.decision.to_value());
  Value gated = Value(Array{});
  for (const auto& g : opt.gate_components) gated.push_back(g);
  r.set("gate_components", gated);
  Model m;
  FormatError err;
  auto t0 = std::chrono::steady_clock::now();
  if (!open_model(path, &m, &err)) {
    r.set("error", error_value(err));
    r.set("components", Value(Array{}));
    r.set("gate", gate("inconclusive", "malformed input, nothing was analysed: " + err.to_string()));
    return r;
  }
  ComponentRules rules;
  rules.add(opt.rules);
  ScanResult s = scan_model(m, refs, rules, opt.decision, progress, opt.cancelled);
  if (s.cancelled) {
    r.set("components", Value(Array{}));
    r.set("gate", gate("inconclusive", "cancelled before the analysis finished"));
    return r;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.set("format", m.weights.format);
  Value files = Value(Array{});
  for (const auto& f : m.weights.files) files.push_back(f);
  r.set("files", files);
  r.set("bytes", m.weights.total_bytes);
  r.set("tensors", uint64_t(m.weights.tensors.size()));
  Value claims = Value(Array{});
  for (const LineageClaim& c : m.claims) {
    Value cv = to_value(c);
    cv.set("status", "recorded as a claim, not trusted: the verdicts come from the weights");
    claims.push_back(cv);
  }
  r.set("declared_lineage", claims);
  std::string library_error;
  Value tok = tokenizer_value(m, refs, &library_error);
  if (!library_error.empty()) s.library_error = library_error;
  if (!s.library_error.empty()) {
    r.set("library_error", s.library_error);
    r.set("components", Value(Array{}));
    r.set("gate", gate("inconclusive", "the reference library could not be read, nothing was decided: " + s.library_error));
    return r;
  }
  r.set("tokenizer", tok);
  Value comps = Value(Array{});
  std::string derived, inconclusive;
  for (const ComponentResult& c : s.components) {
    comps.push_back(to_value(c, opt.detail));
    bool gated_c = std::find(opt.gate_components.begin(), opt.gate_components.end(), c.component) != opt.gate_components.end();
    if (!gated_c) continue;
    if (c.verdict == "derived") derived += (derived.empty() ? "" : "; ") + c.component + " derived from " + c.source;
    if (c.verdict == "inconclusive") inconclusive += (inconclusive.empty() ? "" : "; ") + c.component + ": " + c.reason;
  }
  r.set("components", comps);
  r.set("layout", layout_value(s, opt));
  if (!derived.empty()) r.set("gate", gate("fail", derived));
  else if (std::string why = unjudged(s, refs, opt); !why.empty()) r.set("gate", gate("inconclusive", why));
  else if (!inconclusive.empty()) r.set("gate", gate("inconclusive", inconclusive));
  else r.set("gate", gate("pass", "every gated component is independent of the library or absent"));
  Value timing;
  timing.set("seconds", secs);
  timing.set("seconds_compare", s.seconds_compare);
  timing.set("bytes_per_second", secs > 0 ? double(s.bytes) / secs : 0.0);
  r.set("timing", timing);
  if (comps_out) *comps_out = std::move(s.components);
  if (model_out) *model_out = std::move(m);
  return r;
}

}  // namespace

Value scan_report(const std::string& model_path, const ReferenceSet& library, const ScanOptions& opt, const ProgressFn& progress) {
  Value r = scan_one(model_path, library, opt, progress, nullptr);
  r.set("kind", "scan");
  r.set("library", library_value(library));
  return r;
}

namespace {
std::vector<const Fingerprint*> pointers(const std::vector<Fingerprint>& lib) {
  std::vector<const Fingerprint*> p;
  for (const auto& f : lib) p.push_back(&f);
  return p;
}
}  // namespace

Value scan_report(const std::string& model_path, const std::vector<Fingerprint>& library, const ScanOptions& opt, const ProgressFn& progress) {
  return scan_report(model_path, *resident_references(pointers(library)), opt, progress);
}

Value trajectory_report(const std::vector<std::string>& checkpoints, const std::vector<Fingerprint>& library, const ScanOptions& opt,
                        const ProgressFn& progress) {
  return trajectory_report(checkpoints, *resident_references(pointers(library)), opt, progress);
}

std::vector<std::string> checkpoint_dirs(const std::string& run_dir) {
  std::vector<std::pair<std::pair<long long, std::string>, std::string>> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    if (!e.is_directory()) continue;
    std::string name = e.path().filename().string();
    long long step = -1;
    for (size_t i = 0; i < name.size(); ++i)
      if (isdigit(static_cast<unsigned char>(name[i]))) {
        step = std::stoll(name.substr(i, std::min<size_t>(15, name.find_first_not_of("0123456789", i) - i)));
        break;
      }
    dirs.push_back({{step < 0 ? LLONG_MAX : step, name}, e.path().string()});
  }
  std::sort(dirs.begin(), dirs.end());
  std::vector<std::string> out;
  for (auto& d : dirs) out.push_back(d.second);
  return out;
}

Value trajectory_report(const std::vector<std::string>& ckpts, const ReferenceSet& library, const ScanOptions& opt,
                        const ProgressFn& progress) {
  Value r;
  r.set("kind", "trajectory");
  r.set("library", library_value(library));
  r.set("thresholds", opt.decision.to_value());
  Value list = Value(Array{});
  for (const auto& c : ckpts) list.push_back(c);
  r.set("checkpoints", list);
  if (ckpts.size() < 2) {
    r.set("consistent", false);
    r.set("gate", gate("inconclusive", "a trajectory needs at least two checkpoints (the initialisation and the final model)"));
    return r;
  }
  const ReferenceSet& lib = library;
  ScanOptions brief = opt;
  brief.detail = false;
  bool consistent = true, inconclusive = false;
  std::string why;
  // Step 0 must be independent of every reference.
  std::vector<ComponentResult> c0;
  Value init = scan_one(ckpts[0], lib, brief, progress, &c0);
  if (init.find("error")) inconclusive = true, why = "initial checkpoint unreadable";
  if (init.find("library_error")) inconclusive = true, why = "the reference library could not be read";
  for (const ComponentResult& c : c0) {
    if (c.verdict == "derived") consistent = false, why = "the initial checkpoint " + ckpts[0] + " is not a fresh initialisation: its " + c.component + " derives from " + c.source;
    if (c.verdict == "inconclusive") inconclusive = true;
  }
  r.set("initial", init);
  // Each checkpoint must descend from the one before it.
  Value links = Value(Array{});
  Value brk;
  ComponentRules rules;
  rules.add(opt.rules);
  for (size_t i = 1; i < ckpts.size(); ++i) {
    Value link;
    link.set("from", ckpts[i - 1]);
    link.set("to", ckpts[i]);
    Model prev;
    FormatError err;
    if (!open_model(ckpts[i - 1], &prev, &err)) {
      link.set("error", error_value(err));
      link.set("descends", Value());
      inconclusive = true;
      links.push_back(link);
      continue;
    }
    Fingerprint fp = fingerprint_model(prev, rules, fs::path(ckpts[i - 1]).filename().string(), "", opt.decision.threads, false);
    std::vector<ComponentResult> cs;
    Value s = scan_one(ckpts[i], *resident_references({&fp}), brief, progress, &cs);
    bool descends = !s.find("error");
    std::string missing;
    for (const ComponentResult& c : cs) {
      if (c.verdict == "absent") continue;
      if (c.verdict != "derived") descends = false, missing += (missing.empty() ? "" : ", ") + c.component + " " + c.verdict;
    }
    if (s.find("error")) inconclusive = true;
    link.set("descends", descends);
    link.set("not_descending", missing);
    link.set("components", *s.find("components"));
    links.push_back(link);
    if (!descends && !s.find("error") && brk.is_null()) {
      brk = Value(fs::path(ckpts[i - 1]).filename().string() + "->" + fs::path(ckpts[i]).filename().string());
      consistent = false;
      if (why.empty()) why = "checkpoint " + ckpts[i] + " does not descend from " + ckpts[i - 1] + " (" + missing + ")";
    }
  }
  r.set("links", links);
  r.set("break", brk);
  r.set("consistent", consistent && !inconclusive);
  // The final model against the library, with full evidence.
  std::vector<ComponentResult> cf;
  Value fin = scan_one(ckpts.back(), lib, opt, progress, &cf);
  r.set("final", fin);
  const Value* fg = fin.find("gate");
  std::string fres = fg ? fg->get_string("result") : "inconclusive";
  if (fres == "fail") r.set("gate", gate("fail", "final model: " + fg->get_string("reason") + (consistent ? "" : "; claimed history is false: " + why)));
  else if (!consistent) r.set("gate", gate("fail", "claimed training history is inconsistent: " + why));
  else if (inconclusive || fres == "inconclusive") r.set("gate", gate("inconclusive", why.empty() ? "a checkpoint could not be analysed" : why));
  else r.set("gate", gate("pass", "step 0 is independent of every reference, each checkpoint descends from the one before, and the final model is independent"));
  return r;
}

namespace {

void render_components(std::ostringstream& o, const Value& comps, const std::string& indent) {
  for (const Value& c : comps.as_array()) {
    std::string verdict = c.get_string("verdict");
    o << indent << c.get_string("component") << ": " << verdict;
    if (verdict == "derived") o << " from " << c.get_string("source");
    o << "\n" << indent << "  " << c.get_string("reason") << "\n";
  }
}

}  // namespace

std::string render_text(const Value& r) {
  std::ostringstream o;
  if (r.get_string("kind") == "trajectory") {
    o << "trajectory of " << r.find("checkpoints")->as_array().size() << " checkpoints\n";
    if (const Value* init = r.find("initial")) {
      o << "initial checkpoint " << init->get_string("model") << ":\n";
      if (const Value* c = init->find("components")) render_components(o, *c, "  ");
    }
    if (const Value* links = r.find("links"))
      for (const Value& l : links->as_array()) {
        const Value* d = l.find("descends");
        o << "  " << l.get_string("from") << " -> " << l.get_string("to") << ": "
          << (d && d->is_bool() ? (d->as_bool() ? "descends" : "does NOT descend (" + l.get_string("not_descending") + ")") : "unreadable") << "\n";
      }
    if (const Value* fin = r.find("final")) {
      o << "final model " << fin->get_string("model") << ":\n";
      if (const Value* c = fin->find("components")) render_components(o, *c, "  ");
    }
  } else {
    o << "model " << r.get_string("model");
    if (r.find("format")) o << " (" << r.get_string("format") << ", " << r.get_int("tensors") << " tensors, " << r.get_int("bytes") << " bytes)";
    o << "\n";
    if (const Value* e = r.find("error"))
      o << "  malformed: " << e->get_string("file") << ": offset " << e->get_int("offset") << ": " << e->get_string("message") << " [rule "
        << e->get_string("rule") << "]\n";
    if (const Value* claims = r.find("declared_lineage"))
      for (const Value& c : claims->as_array())
        o << "  declared lineage (unverified claim): " << c.get_string("key") << " = " << c.get_string("value") << "\n";
    if (const Value* c = r.find("components")) render_components(o, *c, "  ");
    if (const Value* l = r.find("layout"); l && l->get_int("unassigned_parameters") > 0) {
      char buf[160];
      snprintf(buf, sizeof buf, "  placed in no component: %zu tensors, %.2f%% of the parameters (allowed %.2f%%)",
               l->find("unassigned")->as_array().size(), 100 * l->get_double("unassigned_share"), 100 * l->get_double("max_unassigned_share"));
      o << buf << "\n";
    }
  }
  const Value* g = r.find("gate");
  if (g) o << "gate: " << g->get_string("result") << ": " << g->get_string("reason") << "\n";
  if (const Value* t = r.find("thresholds"))
    o << "thresholds: alpha " << t->get_double("alpha") << " (Holm across the library), min effect " << t->get_double("min_effect") << ", "
      << t->get_int("permutations") << " permutations, seed " << t->get_int("seed") << ", calibrated evidence needs "
      << t->get_int("min_null_models") << " known-independent models\n";
  return o.str();
}

}  // namespace evald::prov
