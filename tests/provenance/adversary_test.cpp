// The gate tried as an entrant who wants to pass with reused weights would, and as the office
// that must not pass what it did not judge: renamed tensors, an unknown layout, a library with
// nothing to compare with, one copied layer among fresh ones, and the empirical null of
// known-independent models. Variants are built here from the shipped trained fixtures.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "lineage_fixture.hpp"

using namespace lineage_test;

namespace {

// open_P's tensors under names no built-in rule knows: values unchanged.
const std::vector<std::pair<std::string, std::string>> kStackNames = {
    {"model.layers.", "stack."},     {"self_attn.q_proj", "attn.wq"}, {"self_attn.k_proj", "attn.wk"},
    {"self_attn.v_proj", "attn.wv"}, {"self_attn.o_proj", "attn.wo"}, {"mlp.gate_proj", "ff.w_gate"},
    {"mlp.up_proj", "ff.w_up"},      {"mlp.down_proj", "ff.w_down"},  {"input_layernorm", "ln_a"},
    {"post_attention_layernorm", "ln_b"}, {"model.embed_tokens", "tok_emb"}, {"lm_head", "unembed"},
    {"model.norm", "final_ln"}};

std::string gate_of(const Value& r) { return r.find("gate")->get_string("result"); }

TEST_F(Lineage, RenamedCopyIsPlacedByStructureAndFoundVerbatim) {
  fs::path d = temp_dir("renamed");
  auto p = fixture::rename(fixture::load_floats((kFixtures / "open_P").string()), kStackNames);
  ASSERT_TRUE(p.count("stack.1.ff.w_down.weight") && p.count("tok_emb.weight"));
  fixture::write_model(d / "m", p);
  Value r = scan(d / "m");
  EXPECT_EQ(gate_of(r), "fail") << r.find("gate")->get_string("reason");
  for (const char* c : {"llm", "embeddings"}) {
    const Value* comp = component(r, c);
    EXPECT_EQ(comp->get_string("verdict"), "derived") << c << ": " << comp->get_string("reason");
    EXPECT_EQ(comp->get_string("source"), "open_P@fixture") << c;
  }
  EXPECT_EQ(component(r, "llm")->get_int("tensors"), 28) << "27 block tensors and the final norm, placed by structure";
  EXPECT_EQ(r.find("layout")->get_int("width"), 128);
  EXPECT_EQ(r.find("layout")->get_double("unassigned_share"), 0.0);

  // Fine-tuned and renamed: no hash matches, so the units must be compared by shape class.
  auto ft = fixture::rename(fixture::load_floats((kFixtures / "cpt_P").string()), kStackNames);
  fixture::write_model(d / "ft", ft);
  Value f = scan(d / "ft");
  for (const char* c : {"llm", "embeddings"}) {
    const Value* comp = component(f, c);
    EXPECT_EQ(comp->get_string("verdict"), "derived") << c << ": " << comp->get_string("reason");
    EXPECT_EQ(comp->find("references")->as_array()[0].get_int("verbatim"), 0) << c;
  }
  // The same renaming of an independent model stays independent.
  fixture::write_model(d / "indep", fixture::rename(fixture::load_floats((kFixtures / "indep_same_data").string()), kStackNames));
  Value i = scan(d / "indep");
  EXPECT_EQ(gate_of(i), "pass") << i.find("gate")->get_string("reason");
  fs::remove_all(d);
}

// embed_reuse_P's embeddings are an F16 cast of open_P's; renaming just those two tensors must not
// hide them.
TEST_F(Lineage, RenamedEmbeddingsAreStillTokenMatrices) {
  fs::path d = temp_dir("renamed-emb");
  auto m = fixture::rename(fixture::load_floats((kFixtures / "embed_reuse_P").string()),
                           {{"model.embed_tokens", "tok_emb"}, {"lm_head", "unembed"}});
  fixture::write_model(d / "m", m);
  Value r = scan(d / "m");
  const Value* emb = component(r, "embeddings");
  EXPECT_EQ(emb->get_string("verdict"), "derived") << emb->get_string("reason");
  EXPECT_EQ(component(r, "llm")->get_string("verdict"), "independent") << component(r, "llm")->get_string("reason");
  EXPECT_EQ(gate_of(r), "fail");
  fs::remove_all(d);
}

// Tensors under flat names with no layer numbers: the structure shows a residual width but no
// layer groups, so most parameters are placed nowhere. An independent model of that layout must
// not pass; a copied one is still found by its value hashes.
TEST_F(Lineage, UnknownLayoutIsInconclusiveNeverPass) {
  fs::path d = temp_dir("unknown");
  auto flat = [](const fixture::FloatModel& m) {
    fixture::FloatModel out;
    int k = 0;
    for (const auto& [name, t] : m) out["param_" + std::string(1, char('a' + k / 26)) + char('a' + k % 26)] = t, ++k;
    return out;
  };
  fixture::write_model(d / "indep", flat(fixture::load_floats((kFixtures / "indep_same_data").string())));
  Value r = scan(d / "indep");
  EXPECT_EQ(gate_of(r), "inconclusive") << r.find("gate")->get_string("reason");
  EXPECT_NE(r.find("gate")->get_string("reason").find("placed in no component"), std::string::npos);
  EXPECT_GT(r.find("layout")->get_double("unassigned_share"), 0.5);
  EXPECT_GT(r.find("layout")->find("unassigned")->as_array().size(), 10u);

  fixture::write_model(d / "copy", flat(fixture::load_floats((kFixtures / "bf16_P").string())));
  Value c = scan(d / "copy");
  EXPECT_EQ(gate_of(c), "fail") << c.find("gate")->get_string("reason");

  // Nothing of a transformer at all: no gated component judged.
  fixture::FloatModel odd;
  odd["w"] = fixture::FloatTensor{{10, 7}, std::vector<float>(70, 0.5f)};
  odd["w"].v[3] = 1;
  fixture::write_model(d / "odd", odd);
  Value o = scan(d / "odd");
  EXPECT_EQ(gate_of(o), "inconclusive");
  EXPECT_NE(o.find("gate")->get_string("reason").find("no gated component"), std::string::npos) << o.find("gate")->get_string("reason");
  fs::remove_all(d);
}

// A library of known-independent models only has nothing to compare with.
TEST_F(Lineage, LibraryWithoutReferencesNeverPasses) {
  std::vector<Fingerprint> lib{fingerprint_of(kFixtures / "indep_same_data", "indep", "null")};
  lib[0].kind = "independent";
  Value r = scan_report((kFixtures / "reinit_then_train").string(), lib, ScanOptions());
  EXPECT_EQ(gate_of(r), "inconclusive");
  EXPECT_NE(r.find("gate")->get_string("reason").find("no reference model"), std::string::npos);
  Value e = scan_report((kFixtures / "reinit_then_train").string(), {}, ScanOptions());
  EXPECT_EQ(gate_of(e), "inconclusive");
}

// One decoder layer of open_P (cast to F16 and lightly perturbed) inside an otherwise independent
// model: the llm is derived, naming that layer; the embeddings, which only share the basis of the
// copied layer's neighbours, are paired by token and stay independent.
TEST_F(Lineage, OneCopiedLayerIsNamedAndItsNeighboursAreNotAccused) {
  fs::path d = temp_dir("one-layer");
  auto m = fixture::load_floats((kFixtures / "indep_same_data").string());
  auto p = fixture::load_floats((kFixtures / "open_P").string());
  std::mt19937_64 rng(5);
  for (auto& [name, t] : p)
    if (name.rfind("model.layers.1.", 0) == 0) {
      fixture::add_noise(t, 0.05, rng);
      m[name] = t;
    }
  fixture::write_model(d / "m", m);
  Value r = scan(d / "m");
  const Value* llm = component(r, "llm");
  EXPECT_EQ(llm->get_string("verdict"), "derived") << llm->get_string("reason");
  EXPECT_EQ(component(r, "embeddings")->get_string("verdict"), "independent") << component(r, "embeddings")->get_string("reason");
  int layer1 = 0, others = 0;
  for (const Value& t : llm->find("references")->as_array()[0].find("tensors")->as_array())
    if (t.find("tested")->as_bool() && t.get_double("effect") >= 0.5) (t.get_int("layer") == 1 ? layer1 : others)++;
  EXPECT_EQ(layer1, 7) << "every 2-D tensor of layer 1";
  EXPECT_EQ(others, 0);
  EXPECT_NE(llm->get_string("reason").find("derived layer 1 of 3"), std::string::npos) << llm->get_string("reason");
  ASSERT_EQ(llm->find("layers")->as_array().size(), 3u);
  EXPECT_TRUE(llm->find("layers")->as_array()[1].find("derived")->as_bool());
  EXPECT_FALSE(llm->find("layers")->as_array()[0].find("derived")->as_bool());
  fs::remove_all(d);
}

// Known-independent models in the library form the empirical null: a copy's effect is above all
// of theirs; each reference result says where it falls; a null model is never a source.
TEST_F(Lineage, KnownIndependentModelsCalibrateTheEffect) {
  std::vector<Fingerprint> lib = *library_;
  for (const char* n : {"indep_same_data", "reinit_then_train", "indep_diff_width"}) {
    lib.push_back(fingerprint_of(kFixtures / n, n, "null"));
    lib.back().kind = "independent";
  }
  Value r = scan_report((kFixtures / "cpt_P").string(), lib, ScanOptions());
  for (const char* c : {"llm", "embeddings"}) {
    const Value* comp = component(r, c);
    EXPECT_EQ(comp->get_string("verdict"), "derived") << c << ": " << comp->get_string("reason");
    const Value& best = comp->find("references")->as_array()[0];
    EXPECT_EQ(best.get_int("null_models"), 3);
    EXPECT_EQ(best.get_int("null_at_or_above"), 0);
    EXPECT_NE(comp->get_string("reason").find("0 of 3 known-independent models"), std::string::npos) << comp->get_string("reason");
  }
  // A verbatim copy of a known-independent model is not derived from it: it is no source.
  Value i = scan_report((kFixtures / "indep_same_data").string(), lib, ScanOptions());
  EXPECT_EQ(gate_of(i), "pass") << i.find("gate")->get_string("reason");
  for (const Value& ref : component(i, "llm")->find("references")->as_array())
    if (ref.get_string("reference") == "indep_same_data@null") {
      EXPECT_TRUE(ref.find("independent")->as_bool());
      EXPECT_GT(ref.get_int("verbatim"), 0);
    }
}

}  // namespace

namespace {

// A random orthogonal d x d matrix (Gram-Schmidt on Gaussian columns), row-major.
std::vector<float> random_orthogonal(size_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  std::vector<double> q(d * d);
  for (double& x : q) x = nd(rng);
  for (size_t c = 0; c < d; ++c) {
    for (size_t p = 0; p < c; ++p) {
      double dot = 0;
      for (size_t r = 0; r < d; ++r) dot += q[r * d + c] * q[r * d + p];
      for (size_t r = 0; r < d; ++r) q[r * d + c] -= dot * q[r * d + p];
    }
    double n = 0;
    for (size_t r = 0; r < d; ++r) n += q[r * d + c] * q[r * d + c];
    for (size_t r = 0; r < d; ++r) q[r * d + c] /= std::sqrt(n);
  }
  return std::vector<float>(q.begin(), q.end());
}

// W (n x d) <- W Q, or W (d x n) <- Q^T W.
void rotate_in(fixture::FloatTensor& w, const std::vector<float>& q, size_t d) {
  auto w0 = w;
  for (uint64_t i = 0; i < w.rows(); ++i)
    for (size_t c = 0; c < d; ++c) {
      double s = 0;
      for (size_t k = 0; k < d; ++k) s += double(w0.at(i, k)) * q[k * d + c];
      w.at(i, c) = float(s);
    }
}
void rotate_out(fixture::FloatTensor& w, const std::vector<float>& q, size_t d) {
  auto w0 = w;
  for (size_t r = 0; r < d; ++r)
    for (uint64_t j = 0; j < w.cols(); ++j) {
      double s = 0;
      for (size_t k = 0; k < d; ++k) s += double(q[k * d + r]) * w0.at(k, j);
      w.at(r, j) = float(s);
    }
}
void fold_gain(fixture::FloatTensor& norm, std::initializer_list<fixture::FloatTensor*> readers) {
  for (fixture::FloatTensor* w : readers)
    for (uint64_t i = 0; i < w->rows(); ++i)
      for (uint64_t c = 0; c < w->cols(); ++c) w->at(i, c) *= norm.v[c];
  std::fill(norm.v.begin(), norm.v.end(), 1.0f);
}

// The residual stream of a Llama-layout model multiplied by a random orthogonal matrix, norm gains
// folded first: the same function in another basis.
fixture::FloatModel rotated(fixture::FloatModel m, uint64_t seed) {
  const size_t d = m["model.embed_tokens.weight"].cols();
  std::vector<float> q = random_orthogonal(d, seed);
  for (int l = 0;; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    if (!m.count(p + "input_layernorm.weight")) break;
    fold_gain(m[p + "input_layernorm.weight"], {&m[p + "self_attn.q_proj.weight"], &m[p + "self_attn.k_proj.weight"], &m[p + "self_attn.v_proj.weight"]});
    fold_gain(m[p + "post_attention_layernorm.weight"], {&m[p + "mlp.gate_proj.weight"], &m[p + "mlp.up_proj.weight"]});
    for (const char* t : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"}) rotate_in(m[p + t + ".weight"], q, d);
    for (const char* t : {"self_attn.o_proj", "mlp.down_proj"}) rotate_out(m[p + t + ".weight"], q, d);
  }
  fold_gain(m["model.norm.weight"], {&m["lm_head.weight"]});
  rotate_in(m["model.embed_tokens.weight"], q, d);
  rotate_in(m["lm_head.weight"], q, d);
  return m;
}

TEST_F(Lineage, RotatedResidualStreamIsFoundInTheTokenBasis) {
  fs::path d = temp_dir("rotated");
  fixture::write_model(d / "rot", rotated(fixture::load_floats((kFixtures / "open_P").string()), 77));
  auto noisy = rotated(fixture::load_floats((kFixtures / "ft_P").string()), 78);
  std::mt19937_64 rng(3);
  for (auto& [name, t] : noisy) fixture::add_noise(t, 0.2, rng);
  fixture::write_model(d / "rot_noisy", noisy);
  fixture::write_model(d / "indep_rot", rotated(fixture::load_floats((kFixtures / "indep_same_data").string()), 79));
  for (const char* m : {"rot", "rot_noisy"}) {
    Value r = scan(d / m);
    const Value* llm = component(r, "llm");
    EXPECT_EQ(llm->get_string("verdict"), "derived") << m << ": " << llm->get_string("reason");
    int tokens = 0;
    for (const Value& t : llm->find("references")->as_array()[0].find("tensors")->as_array()) tokens += t.get_string("basis") == "tokens";
    EXPECT_GE(tokens, 15) << m << ": the block projections are matched in the token basis";
    EXPECT_EQ(gate_of(r), "fail") << m;
    // Without known-independent models the embeddings' token similarities cannot be calibrated.
    EXPECT_EQ(component(r, "embeddings")->get_string("verdict"), "inconclusive") << m << ": " << component(r, "embeddings")->get_string("reason");
  }
  Value i = scan(d / "indep_rot");
  EXPECT_EQ(gate_of(i), "pass") << i.find("gate")->get_string("reason");
  EXPECT_NE(component(i, "llm")->get_string("reason").find("this is not evidence"), std::string::npos) << component(i, "llm")->get_string("reason");

  // With known-independent models in the library, the embeddings' token similarities are
  // calibrated: the rotated copy's are above all of theirs.
  std::vector<Fingerprint> lib = *library_;
  for (const char* n : {"indep_same_data", "reinit_then_train", "vlm_reuse_Q"}) {
    lib.push_back(fingerprint_of(kFixtures / n, n, "null"));
    lib.back().kind = "independent";
  }
  Value c = scan_report((d / "rot").string(), lib, ScanOptions());
  EXPECT_EQ(component(c, "embeddings")->get_string("verdict"), "derived") << component(c, "embeddings")->get_string("reason");
  EXPECT_EQ(component(c, "embeddings")->get_string("evidence"), "calibrated");
  Value ci = scan_report((d / "indep_rot").string(), lib, ScanOptions());
  EXPECT_EQ(gate_of(ci), "pass") << ci.find("gate")->get_string("reason");
  fs::remove_all(d);
}


double stddev(const fixture::FloatTensor& t) {
  double s = 0, ss = 0, n = double(t.v.size());
  for (float x : t.v) s += x, ss += double(x) * x;
  return std::sqrt(std::max(0.0, ss / n - (s / n) * (s / n)));
}

// open_P with each layer's MLP widened to `wide` units, the added ones random at the trained
// ones' scale, and the units shuffled (gate and up rows with down columns: the same function).
fixture::FloatModel widened_mlp(fixture::FloatModel m, uint64_t wide, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int l = 0;; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".mlp.";
    if (!m.count(p + "down_proj.weight")) break;
    std::vector<uint64_t> perm(wide);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (const char* t : {"gate_proj", "up_proj", "down_proj"}) {
      fixture::FloatTensor& w = m[p + t + ".weight"];
      const bool down = std::string(t) == "down_proj";
      const uint64_t n = down ? w.cols() : w.rows(), d = down ? w.rows() : w.cols();
      std::normal_distribution<double> nd(0, stddev(w));
      fixture::FloatTensor out{down ? std::vector<uint64_t>{d, wide} : std::vector<uint64_t>{wide, d}, std::vector<float>(wide * d)};
      for (uint64_t u = 0; u < wide; ++u)
        for (uint64_t j = 0; j < d; ++j) {
          float x = perm[u] < n ? (down ? w.at(j, perm[u]) : w.at(perm[u], j)) : float(nd(rng));
          (down ? out.at(j, u) : out.at(u, j)) = x;
        }
      w = std::move(out);
    }
  }
  return m;
}

// A reference's token-basis Grams are taken over a sample of kTokenGramUnits units (the
// candidate's over all of them): they must still pick each MLP projection's own layer as its
// counterpart in a rotated copy, and let a rotated copy with shuffled units through the screen to
// content matching.
TEST_F(Lineage, SampledTokenGramsStillPairAWideMlpWithItsLayer) {
  const uint64_t wide = 3 * kTokenGramUnits;
  fs::path d = temp_dir("wide-mlp");
  auto ref = widened_mlp(fixture::load_floats((kFixtures / "open_P").string()), wide, 5);
  fixture::write_model(d / "ref", ref);
  fixture::write_model(d / "rotated", rotated(ref, 80));
  fixture::write_model(d / "shuffled", rotated(widened_mlp(ref, wide, 6), 81));
  std::vector<Fingerprint> lib = {fingerprint_of(d / "ref", "wide_P", "fixture")};
  int sampled = 0;
  for (const TensorPrint& t : lib[0].tensors)
    for (const UnitSketch* s : {&t.tok_rows, &t.tok_cols})
      if (s->units == wide) {
        ++sampled;
        EXPECT_EQ(s->ids.size(), kReferenceUnits) << t.name;
      }
  EXPECT_EQ(sampled, 9) << "gate, up and down of three layers";
  for (const char* m : {"rotated", "shuffled"}) {
    Value r = scan_report((d / m).string(), lib, ScanOptions());
    const Value* llm = component(r, "llm");
    EXPECT_EQ(llm->get_string("verdict"), "derived") << m << ": " << llm->get_string("reason");
    int mlp = 0;
    for (const Value& t : llm->find("references")->as_array()[0].find("tensors")->as_array()) {
      if (t.get_string("role").rfind("mlp.", 0) != 0) continue;
      ++mlp;
      SCOPED_TRACE(std::string(m) + " " + t.get_string("tensor"));
      // Units in their order are paired by index; shuffled ones only by content.
      if (std::string(m) == "rotated") {
        EXPECT_EQ(t.get_string("basis"), "tokens");
        EXPECT_EQ(t.find("ref_layer")->as_int(), t.find("layer")->as_int());
        EXPECT_GE(t.find("gram")->as_double(), DecisionConfig().screen);
        EXPECT_GT(t.find("effect")->as_double(), 0.9);
      } else {
        const Value* cal = t.find("calibrated");
        ASSERT_TRUE(cal && cal->is_map()) << "screened out";
        EXPECT_EQ(cal->get_string("kind"), "token-basis-matched");
        EXPECT_GT(cal->find("effect")->as_double(), 0.9);
      }
    }
    EXPECT_EQ(mlp, 9) << m;
  }
  fs::remove_all(d);
}

}  // namespace

namespace {

// open_P with 32 of its 128 residual dimensions removed from every tensor: no tensor keeps its
// shape, so only the token basis (one coordinate per anchor token) can compare it.
TEST_F(Lineage, PrunedResidualWidthIsComparedInTheTokenBasis) {
  auto m = fixture::load_floats((kFixtures / "open_P").string());
  const uint64_t d = 128, keep = 96;
  for (auto& [name, t] : m) {
    bool reads = t.cols() == d && t.shape.size() == 2, writes = t.rows() == d && t.shape.size() == 2 && t.cols() != d;
    if (t.shape.size() == 1) {
      t.v.resize(keep), t.shape = {keep};
      continue;
    }
    if (name.find("o_proj") != std::string::npos) reads = false, writes = true;
    fixture::FloatTensor out = t;
    if (reads) {
      out.shape = {t.rows(), keep};
      out.v.assign(t.rows() * keep, 0);
      for (uint64_t i = 0; i < t.rows(); ++i)
        for (uint64_t c = 0; c < keep; ++c) out.at(i, c) = t.at(i, c);
    } else if (writes) {
      out.shape = {keep, t.cols()};
      out.v.assign(keep * t.cols(), 0);
      for (uint64_t r = 0; r < keep; ++r)
        for (uint64_t c = 0; c < t.cols(); ++c) out.at(r, c) = t.at(r, c);
    }
    t = out;
  }
  fs::path dir = temp_dir("pruned-width");
  fixture::write_model(dir / "m", m);
  Value r = scan(dir / "m");
  const Value* llm = component(r, "llm");
  EXPECT_EQ(llm->get_string("verdict"), "derived") << llm->get_string("reason");
  EXPECT_EQ(gate_of(r), "fail");
  fs::remove_all(dir);
}

}  // namespace

namespace {

// A copied vision tower moved under decoder-like names: its matrices neither read nor write the
// decoder's residual stream, so they are not llm evidence; they are placed nowhere, and the gate
// cannot pass.
TEST_F(Lineage, VisionTowerUnderDecoderNamesIsNotPassed) {
  auto m = fixture::rename(fixture::load_floats((kFixtures / "vlm_reuse_Q").string()),
                           {{"vision_tower.vision_model.encoder.layers.0.", "language_model.model.layers.10."},
                            {"vision_tower.vision_model.encoder.layers.1.", "language_model.model.layers.11."},
                            {"vision_tower.vision_model.", "language_model.model.stem."},
                            {"multi_modal_projector.", "language_model.model.bridge."}});
  fs::path d = temp_dir("hidden-vision");
  fixture::write_model(d / "m", m);
  Value r = scan(d / "m");
  EXPECT_NE(gate_of(r), "pass") << r.find("gate")->get_string("reason");
  EXPECT_GT(r.find("layout")->get_double("unassigned_share"), 0.05);
  bool named = false;
  for (const Value& t : r.find("layout")->find("unassigned")->as_array()) named |= t.get_string("tensor").find("layers.10.") != std::string::npos;
  EXPECT_TRUE(named) << "the report names the tensors placed nowhere";
  fs::remove_all(d);
}

}  // namespace
