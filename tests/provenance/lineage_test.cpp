// Lineage decisions on real trained models (tests/provenance/fixtures, with labels.json giving
// the expected verdicts), plus variants built here that the fixtures do not contain: other naming
// schemes, other permutations and noise, random unrelated models, config-added component rules.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include "lineage_fixture.hpp"

using namespace lineage_test;
using namespace evald::text;

namespace {

Json labels() { return read_labels(kFixtures / "labels.json"); }

TEST_F(Lineage, LibraryRoundTripsThroughRocksDB) {
  ASSERT_EQ(library_->size(), 2u);
  const Fingerprint& p = (*library_)[0];
  EXPECT_EQ(p.name, "open_P");
  EXPECT_EQ(p.revision, "fixture");
  EXPECT_EQ(p.source_hash.size(), 64u);
  EXPECT_EQ(p.tensors.size(), 30u);
  Model m;
  FormatError err;
  ASSERT_TRUE(open_model((kFixtures / "open_P").string(), &m, &err));
  Fingerprint again = fingerprint_model(m, ComponentRules(), "open_P", "fixture", 1, true);
  EXPECT_EQ(again.source_hash, p.source_hash);
  ASSERT_EQ(again.tensors.size(), p.tensors.size());
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    EXPECT_EQ(again.tensors[i].name, p.tensors[i].name);
    EXPECT_EQ(again.tensors[i].hashes.exact, p.tensors[i].hashes.exact);
    EXPECT_EQ(again.tensors[i].by_row.gram, p.tensors[i].by_row.gram) << "one or two threads: same fingerprint";
    EXPECT_EQ(again.tensors[i].by_col.data, p.tensors[i].by_col.data);
  }
}

// A weight file that cannot be hashed (here removed after it was mapped) fails the fingerprint,
// naming the file: a source hash must cover every byte fingerprinted.
TEST_F(Lineage, UnhashableWeightFileFailsTheFingerprint) {
  fs::path dir = temp_dir("unhashable");
  fs::copy(kFixtures / "open_P", dir / "m", fs::copy_options::recursive);
  Model m;
  FormatError err;
  ASSERT_TRUE(open_model((dir / "m").string(), &m, &err)) << err.to_string();
  ASSERT_FALSE(m.weights.files.empty());
  fs::remove(m.weights.files[0]);
  try {
    fingerprint_model(m, ComponentRules(), "m", "", 2, true);
    ADD_FAILURE() << "fingerprinted with a file missing";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(m.weights.files[0]), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// A scan reads the library per tensor (heads resident, sketches on demand): its report must be
// the one a scan of the whole fingerprints in memory gives, figure for figure.
TEST_F(Lineage, ScanThroughTheLibraryEqualsScanInMemory) {
  ASSERT_EQ(refs_->size(), 2u);
  EXPECT_TRUE(refs_->head(0).tensors[3].by_row.data.empty()) << "heads keep no sketch data";
  EXPECT_EQ(refs_->vocab_size(0), (*library_)[0].vocab.size());
  for (const char* c : {"cpt_P", "indep_same_data", "reinit_then_train"}) {
    SCOPED_TRACE(c);
    Value a = scan(kFixtures / c), b = scan_report((kFixtures / c).string(), *library_, ScanOptions());
    a.as_map().erase("timing"), b.as_map().erase("timing");
    EXPECT_EQ(evald::to_json(a), evald::to_json(b));
  }
}

// Adding a fingerprint again under the same key replaces every part of it, also when it now has
// fewer tensors; removing it leaves nothing behind.
TEST_F(Lineage, ReAddingAFingerprintReplacesAllItsParts) {
  fs::path dir = temp_dir("readd");
  {
    auto lib = FingerprintLibrary::open((dir / "lib").string(), false, true);
    ASSERT_TRUE(lib) << lib.error();
    Fingerprint f = (*library_)[0];
    ASSERT_TRUE((*lib)->put(f));
    f.tensors.resize(5);
    ASSERT_TRUE((*lib)->put(f));
    auto all = (*lib)->load_all();
    ASSERT_TRUE(all) << all.error();
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ((*all)[0].tensors.size(), 5u);
    EXPECT_EQ((*all)[0].tensors[4].by_col.data, f.tensors[4].by_col.data);
    EXPECT_EQ((*all)[0].vocab, f.vocab);
    ASSERT_TRUE((*lib)->remove(library_key(f)));
    EXPECT_FALSE((*lib)->remove(library_key(f)));
  }
  auto refs = open_references((dir / "lib").string());
  ASSERT_TRUE(refs) << refs.error();
  EXPECT_EQ((*refs)->size(), 0u);
  fs::remove_all(dir);
}

// A library whose table file was damaged on disk after it was opened: the record that cannot be
// read is named and the scan decides nothing, never a pass.
TEST_F(Lineage, DamagedLibraryRecordMakesTheScanInconclusive) {
  fs::path dir = temp_dir("damaged");
  {
    auto lib = FingerprintLibrary::open((dir / "lib").string(), false, true);
    ASSERT_TRUE(lib) << lib.error();
    for (const Fingerprint& f : *library_) ASSERT_TRUE((*lib)->put(f));
  }
  auto refs = open_references((dir / "lib").string());
  ASSERT_TRUE(refs) << refs.error();
  // Flip bytes inside every tensor record's value (each is a block of its own: its key is
  // stored whole in front of it), leaving the heads alone.
  int damaged = 0;
  for (const auto& e : fs::directory_iterator(dir / "lib")) {
    if (e.path().extension() != ".sst") continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::string key = std::string("tensor/open_P@fixture") + '\0';
    for (size_t at = bytes.find(key); at != std::string::npos; at = bytes.find(key, at + 1)) {
      f.seekp(std::streamoff(at + 600));
      f.put(char(bytes[at + 600] ^ 0x5a));
      ++damaged;
    }
  }
  ASSERT_GT(damaged, 10);
  Value r = scan_report((kFixtures / "cpt_P").string(), **refs, ScanOptions());
  EXPECT_EQ(r.find("gate")->get_string("result"), "inconclusive") << evald::to_json(r);
  EXPECT_NE(r.get_string("library_error").find("tensor/open_P@fixture#"), std::string::npos) << r.get_string("library_error");
  EXPECT_NE(r.get_string("library_error").find("Corruption"), std::string::npos) << r.get_string("library_error");
  refs->reset();
  fs::remove_all(dir);
}

// Every labelled case, every component: verdict and source.
TEST_F(Lineage, EveryFixtureCaseComesOutAsLabelled) {
  Json l = labels();
  const Json* cases = l.find("cases");
  ASSERT_TRUE(cases && cases->is_object());
  LabelTally tally;
  for (const auto& [name, c] : cases->members()) {
    SCOPED_TRACE(name);
    expect_as_labelled(scan(kFixtures / c.find("path")->str()), c, &tally);
  }
  EXPECT_EQ(tally.checked, 14 * 3);
  EXPECT_EQ(tally.accused, 0);
}

TEST_F(Lineage, TrajectoriesAreCheckedLinkByLink) {
  Json l = labels();
  for (const auto& [name, t] : l.find("trajectories")->members()) {
    SCOPED_TRACE(name);
    std::vector<std::string> ckpts;
    for (const Json& c : t.find("checkpoints_order")->items()) ckpts.push_back((kFixtures / t.find("path")->str() / c.str()).string());
    EXPECT_EQ(checkpoint_dirs((kFixtures / t.find("path")->str()).string()), ckpts) << "step order from folder names";
    Value r = trajectory_report(ckpts, *library_, ScanOptions());
    bool consistent = t.find("chain_consistent")->as_bool();
    EXPECT_EQ(r.find("consistent")->as_bool(), consistent);
    const Json* brk = t.find("break");
    if (brk->type() == Json::Type::Null) EXPECT_TRUE(r.find("break")->is_null());
    else EXPECT_EQ(r.find("break")->as_string(), brk->str());
    for (const auto& [comp, expected] : t.find("expected_final")->members()) {
      const Value* got = component(*r.find("final"), comp);
      ASSERT_TRUE(got);
      EXPECT_EQ(got->get_string("verdict"), expected.type() == Json::Type::Null ? "absent" : expected.str()) << comp;
    }
    EXPECT_EQ(r.find("gate")->get_string("result"), consistent ? "pass" : "fail");
  }
}

// The same weights under EXAONE-style names (transformer.h.N.attn.attention.*, mlp.c_fc_0/1,
// c_proj, ln_1/2, wte, ln_f): the canonical roles still pair them with the Llama-named reference.
TEST_F(Lineage, OtherNamingSchemesMatchByCanonicalRole) {
  std::vector<std::pair<std::string, std::string>> exaone = {
      {"model.layers.", "transformer.h."}, {"self_attn.q_proj", "attn.attention.q_proj"}, {"self_attn.k_proj", "attn.attention.k_proj"},
      {"self_attn.v_proj", "attn.attention.v_proj"}, {"self_attn.o_proj", "attn.attention.out_proj"}, {"mlp.gate_proj", "mlp.c_fc_0"},
      {"mlp.up_proj", "mlp.c_fc_1"}, {"mlp.down_proj", "mlp.c_proj"}, {"input_layernorm", "ln_1"}, {"post_attention_layernorm", "ln_2"},
      {"model.embed_tokens", "transformer.wte"}, {"model.norm", "transformer.ln_f"}};
  fs::path d = temp_dir("exaone");
  fixture::write_model(d / "derived", fixture::rename(fixture::load_floats((kFixtures / "cpt_P").string()), exaone));
  fixture::write_model(d / "indep", fixture::rename(fixture::load_floats((kFixtures / "indep_same_data").string()), exaone));
  Value r = scan(d / "derived");
  EXPECT_EQ(component(r, "llm")->get_string("verdict"), "derived");
  EXPECT_EQ(component(r, "llm")->get_string("source"), "open_P@fixture");
  EXPECT_EQ(component(r, "embeddings")->get_string("verdict"), "derived");
  Value i = scan(d / "indep");
  EXPECT_EQ(component(i, "llm")->get_string("verdict"), "independent");
  EXPECT_EQ(component(i, "embeddings")->get_string("verdict"), "independent");
  fs::remove_all(d);
}

// llama.cpp names in a GGUF file (blk.N.attn_q, ffn_gate, token_embd, output, output_norm).
TEST_F(Lineage, GgufModelsAreAnalysedLikeSafetensors) {
  std::vector<std::pair<std::string, std::string>> gguf = {
      {"model.layers.", "blk."}, {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"}, {"mlp.down_proj", "ffn_down"},
      {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"}, {"model.embed_tokens", "token_embd"},
      {"lm_head", "output"}, {"model.norm", "output_norm"}};
  fs::path d = temp_dir("gguf");
  fixture::write_gguf(d / "derived.gguf", fixture::rename(fixture::load_floats((kFixtures / "pruned_ft_P").string()), gguf));
  fixture::write_gguf(d / "indep.gguf", fixture::rename(fixture::load_floats((kFixtures / "reinit_then_train").string()), gguf));
  Value r = scan(d / "derived.gguf");
  ASSERT_FALSE(r.find("error")) << evald::to_json(*r.find("error"));
  EXPECT_EQ(r.get_string("format"), "gguf");
  for (const char* c : {"llm", "embeddings"}) {
    EXPECT_EQ(component(r, c)->get_string("verdict"), "derived") << c;
    EXPECT_EQ(component(r, c)->get_string("source"), "open_P@fixture") << c;
  }
  Value i = scan(d / "indep.gguf");
  for (const char* c : {"llm", "embeddings"}) EXPECT_EQ(component(i, c)->get_string("verdict"), "independent") << c;
  fs::remove_all(d);
}

// A fresh permutation of every layer's MLP units, then heavy noise (40% of each tensor's spread):
// units are matched by content, not compared by index.
TEST_F(Lineage, PermutedAndPerturbedCopiesAreStillDerived) {
  auto m = fixture::load_floats((kFixtures / "open_P").string());
  std::mt19937_64 rng(424242);
  for (int layer = 0; layer < 3; ++layer) {
    std::string p = "model.layers." + std::to_string(layer) + ".mlp.";
    auto& gate = m[p + "gate_proj.weight"];
    auto& up = m[p + "up_proj.weight"];
    auto& down = m[p + "down_proj.weight"];
    std::vector<uint64_t> perm(gate.rows());
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    auto g0 = gate, u0 = up, d0 = down;
    for (uint64_t i = 0; i < perm.size(); ++i) {
      for (uint64_t c = 0; c < gate.cols(); ++c) gate.at(i, c) = g0.at(perm[i], c), up.at(i, c) = u0.at(perm[i], c);
      for (uint64_t r = 0; r < down.rows(); ++r) down.at(r, i) = d0.at(r, perm[i]);
    }
  }
  fs::path d = temp_dir("perm");
  fixture::write_model(d / "exact", m);
  for (auto& [name, t] : m) fixture::add_noise(t, 0.4, rng);
  fixture::write_model(d / "noisy", m);

  // Without noise, permuted units are verbatim copies up to order: the multiset hashes match.
  Value exact = scan(d / "exact", ScanOptions());
  const Value* llm = component(exact, "llm");
  EXPECT_EQ(llm->get_string("verdict"), "derived");
  std::set<std::string> kinds;
  for (const Value& t : llm->find("references")->as_array()[0].find("tensors")->as_array())
    if (t.find("verbatim") && t.find("verbatim")->is_string()) kinds.insert(t.find("verbatim")->as_string());
  EXPECT_TRUE(kinds.count("row-permuted")) << "gate/up rows";
  EXPECT_TRUE(kinds.count("col-permuted")) << "down columns";
  EXPECT_TRUE(kinds.count("exact")) << "attention untouched";

  Value noisy = scan(d / "noisy");
  // Reordered units are found by matching; attention kept its order and pairs by index. Token
  // rows pair by id (no tokenizer here; reordered token ids are EmbeddingsArePairedByTokenText's).
  for (const Value& t : component(noisy, "embeddings")->find("references")->as_array()[0].find("tensors")->as_array())
    EXPECT_EQ(t.get_string("pairing"), "ids") << t.get_string("tensor");
  for (const Value& t : component(noisy, "llm")->find("references")->as_array()[0].find("tensors")->as_array()) {
    if (t.get_string("role").rfind("mlp.", 0) == 0) {
      EXPECT_EQ(t.get_string("pairing"), "matched") << t.get_string("tensor");
    }
    if (t.get_string("role") == "attn.q.weight") {
      EXPECT_EQ(t.get_string("pairing"), "index") << t.get_string("tensor");
    }
  }
  for (const char* c : {"llm", "embeddings"}) {
    EXPECT_EQ(component(noisy, c)->get_string("verdict"), "derived") << c << ": " << component(noisy, c)->get_string("reason");
    EXPECT_EQ(component(noisy, c)->get_string("source"), "open_P@fixture");
  }
  fs::remove_all(d);
}

// Random models of the references' shapes, several seeds: none may be called derived, and the
// p-values must not pile up near zero (the permutation null is calibrated).
TEST_F(Lineage, UnrelatedRandomModelsAreNeverDerived) {
  auto shapes = fixture::load_floats((kFixtures / "open_Q").string());
  fs::path d = temp_dir("random");
  int small_p = 0, tests = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    std::normal_distribution<float> nd(0, 0.05f);
    auto m = shapes;
    for (auto& [name, t] : m)
      for (float& x : t.v) x = nd(rng);
    fixture::write_model(d / std::to_string(seed), m);
    Value r = scan(d / std::to_string(seed));
    for (const char* c : {"llm", "embeddings", "vision"}) {
      EXPECT_EQ(component(r, c)->get_string("verdict"), "independent") << "seed " << seed << " " << c;
      for (const Value& ref : component(r, c)->find("references")->as_array())
        for (const Value& t : ref.find("tensors")->as_array())
          if (t.find("tested")->as_bool()) {
            ++tests;
            if (t.get_double("p") <= 0.01) ++small_p;
          }
    }
    EXPECT_EQ(r.find("gate")->get_string("result"), "pass");
  }
  EXPECT_GT(tests, 50);
  EXPECT_LE(small_p, std::max(3, tests / 20)) << small_p << " of " << tests << " tensor tests at p <= 0.01";
  fs::remove_all(d);
}

// A vision tower under a prefix no built-in rule knows is "other" until the pipeline adds a rule.
TEST_F(Lineage, ConfigRulesPlaceUnknownTensors) {
  auto m = fixture::rename(fixture::load_floats((kFixtures / "vlm_reuse_Q").string()), {{"vision_tower.vision_model.", "image_trunk."}});
  fs::path d = temp_dir("rules");
  fixture::write_model(d / "m", m);
  Value plain = scan(d / "m");
  EXPECT_EQ(component(plain, "vision")->get_string("verdict"), "derived") << "the projector alone still carries the copy";
  EXPECT_LT(component(plain, "vision")->get_int("tensors"), 10);
  ScanOptions opt;
  opt.rules.push_back({"^image_trunk\\.", "vision"});
  Value ruled = scan(d / "m", opt);
  EXPECT_EQ(component(ruled, "vision")->get_string("verdict"), "derived");
  EXPECT_GT(component(ruled, "vision")->get_int("tensors"), 30);
  fs::remove_all(d);
}

TEST_F(Lineage, MalformedWeightsAreInconclusiveNeverPass) {
  fs::path d = temp_dir("bad");
  fs::create_directories(d / "m");
  fs::copy_file(kFixtures / "ft_P" / "model.safetensors", d / "m" / "model.safetensors");
  fs::resize_file(d / "m" / "model.safetensors", fs::file_size(d / "m" / "model.safetensors") - 10);
  Value r = scan(d / "m");
  ASSERT_TRUE(r.find("error"));
  EXPECT_EQ(r.find("error")->get_string("rule"), "data-bounds") << "the last tensor runs past the end";
  EXPECT_EQ(r.find("gate")->get_string("result"), "inconclusive");
  EXPECT_NE(r.find("gate")->get_string("reason").find("model.safetensors"), std::string::npos);
  fs::remove_all(d);
}

TEST_F(Lineage, DeclaredLineageIsRecordedNotTrusted) {
  fs::path d = temp_dir("claim");
  fs::create_directories(d / "m");
  fs::copy_file(kFixtures / "indep_same_data" / "model.safetensors", d / "m" / "model.safetensors");
  std::ofstream(d / "m" / "README.md") << "---\nbase_model: open_P\nlicense: mit\n---\n# card\n";
  Value r = scan(d / "m");
  ASSERT_EQ(r.find("declared_lineage")->as_array().size(), 1u);
  EXPECT_EQ(r.find("declared_lineage")->as_array()[0].get_string("value"), "open_P");
  EXPECT_EQ(component(r, "llm")->get_string("verdict"), "independent") << "the weights decide, not the card";
  fs::remove_all(d);
}

// The char-level vocabulary of the fixtures, as a tokenizer.json with ids in `order`.
void write_tokenizer(const fs::path& dir, const std::vector<uint64_t>& order, int extra = 0) {
  std::vector<std::string> toks = {"<unk>", "\n"};
  for (int c = 0x20; c < 0x7f; ++c) toks.push_back(std::string(1, char(c)));
  for (int i = 0; i < extra; ++i) toks.push_back("<extra_" + std::to_string(i) + ">");
  auto esc = [](const std::string& t) {
    std::string o;
    for (char ch : t) o += ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : std::string(1, ch);
    return o;
  };
  std::string j = "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{";
  for (size_t id = 0; id < order.size(); ++id) j += (id ? "," : "") + std::string("\"") + esc(toks[order[id]]) + "\":" + std::to_string(id);
  j += "},\"merges\":[]}}";
  std::ofstream(dir / "tokenizer.json") << j;
}

// With tokenizers on both sides, embedding and head rows are paired by token text: a copy whose
// vocabulary was reordered and extended is still derived, an independent model is not.
TEST_F(Lineage, EmbeddingsArePairedByTokenText) {
  fs::path d = temp_dir("tok");
  std::vector<uint64_t> ident(97);
  std::iota(ident.begin(), ident.end(), 0);
  auto p = fixture::load_floats((kFixtures / "open_P").string());
  fixture::write_model(d / "ref", p);
  write_tokenizer(d / "ref", ident);
  Model rm;
  FormatError err;
  ASSERT_TRUE(open_model((d / "ref").string(), &rm, &err)) << err.to_string();
  ASSERT_EQ(rm.vocab.size(), 97u);
  std::vector<Fingerprint> lib{fingerprint_model(rm, ComponentRules(), "open_P", "tok", 2, false)};

  auto ft = fixture::load_floats((kFixtures / "cpt_P").string());
  std::mt19937_64 rng(99);
  std::vector<uint64_t> order(107);  // new id -> old token index; 10 tokens added
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::normal_distribution<float> nd(0, 0.02f);
  for (const char* t : {"model.embed_tokens.weight", "lm_head.weight"}) {
    auto old = ft[t];
    auto& e = ft[t];
    e.shape[0] = 107;
    e.v.assign(107 * 128, 0);
    for (uint64_t i = 0; i < 107; ++i)
      for (uint64_t c = 0; c < 128; ++c) e.at(i, c) = order[i] < 97 ? old.at(order[i], c) : nd(rng);
  }
  fixture::write_model(d / "cand", ft);
  write_tokenizer(d / "cand", order, 10);
  Value r = scan_report((d / "cand").string(), lib, ScanOptions());
  EXPECT_EQ(r.find("tokenizer")->get_string("verdict"), "own vocabulary (closest open_P, Jaccard 0.906)") << "97 of 107 tokens shared";
  const Value* emb = component(r, "embeddings");
  EXPECT_EQ(emb->get_string("verdict"), "derived") << emb->get_string("reason");
  for (const Value& t : emb->find("references")->as_array()[0].find("tensors")->as_array()) {
    EXPECT_EQ(t.get_string("pairing"), "tokens");
    EXPECT_EQ(t.get_int("units_compared"), std::min<int64_t>(97, kReferenceUnits)) << "every sampled token is found";
  }

  fixture::write_model(d / "indep", fixture::load_floats((kFixtures / "indep_same_data").string()));
  write_tokenizer(d / "indep", ident);
  Value i = scan_report((d / "indep").string(), lib, ScanOptions());
  EXPECT_EQ(component(i, "embeddings")->get_string("verdict"), "independent");
  EXPECT_EQ(component(i, "embeddings")->find("references")->as_array()[0].find("tensors")->as_array()[0].get_string("pairing"), "tokens");
  fs::remove_all(d);
}

TEST(Statistics, FisherAndHolmMatchTextbookValues) {
  double chi2 = 0;
  // Two p = 0.05: chi2 = 11.983 on 4 df, p = 0.01747.
  EXPECT_NEAR(std::pow(10, fisher_log10({0.05, 0.05}, &chi2)), 0.01747, 1e-4);
  EXPECT_NEAR(chi2, 11.983, 1e-3);
  EXPECT_NEAR(fisher_log10({1.0}), 0.0, 1e-12);
  EXPECT_NEAR(std::pow(10, fisher_log10({0.3})), 0.3, 1e-9);
  // Holm: p = (0.01, 0.04, 0.03) with m = 3 -> (0.03, 0.06, 0.06).
  auto h = holm_log10({std::log10(0.01), std::log10(0.04), std::log10(0.03)});
  EXPECT_NEAR(std::pow(10, h[0]), 0.03, 1e-9);
  EXPECT_NEAR(std::pow(10, h[1]), 0.06, 1e-9);
  EXPECT_NEAR(std::pow(10, h[2]), 0.06, 1e-9);
  // Very small p-values stay finite in log space.
  EXPECT_LT(fisher_log10(std::vector<double>(40, 1e-3)), -60);
}

}  // namespace
