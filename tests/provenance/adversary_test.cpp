// The gate tried as an entrant who wants to pass with reused weights would, and as the office
// that must not pass what it did not judge: renamed tensors, an unknown layout, a library with
// nothing to compare with, one copied layer among fresh ones, and the empirical null of
// known-independent models. Variants are built here from the shipped trained fixtures.
#include <gtest/gtest.h>

#include <numeric>

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
