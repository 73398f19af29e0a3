// The adversarial fixture set (tests/provenance/adversarial, made by
// tools/provenance-fixtures/make_adversarial.py from real training runs on real text) through the
// gate, every case against its labels.
#include <gtest/gtest.h>

#include <set>

#include "hash.hpp"
#include "lineage_fixture.hpp"
#include "weights.hpp"

using namespace lineage_test;

namespace {

const fs::path kAdversarial = EVALD_PROVENANCE_ADVERSARIAL;

// The adversarial set (tools/provenance-fixtures/make_adversarial.py: real training runs on real
// text): every case against open_P and open_Q plus every other reference labels.json lists (with
// its path in reference_paths: open_G, the GQA family's), with the set's known-independent models
// in the library as the empirical null. Every component as labelled, and no false accusation.
TEST_F(Lineage, EveryAdversarialCaseComesOutAsLabelled) {
  evald::text::Json l = read_labels(kAdversarial / "labels.json");
  std::vector<Fingerprint> lib = *library_;
  std::set<std::string> refs;
  for (const auto& f : lib) refs.insert(f.name);
  for (const auto& r : l.find("references")->items()) {
    if (!refs.insert(r.str()).second) continue;
    const evald::text::Json* path = l.find("reference_paths") ? l.find("reference_paths")->find(r.str()) : nullptr;
    ASSERT_TRUE(path && path->is_string()) << "reference " << r.str() << " has no reference_paths entry";
    lib.push_back(fingerprint_of(kAdversarial / path->str(), r.str(), "fixture", true));
  }
  std::set<std::string> nulls;
  for (const auto& n : l.find("null_library")->items()) {
    nulls.insert(n.str());
    lib.push_back(fingerprint_of(kAdversarial / l.find("cases")->find(n.str())->find("path")->str(), n.str(), "null"));
    lib.back().kind = "independent";
  }
  ASSERT_GE(nulls.size(), 3u);
  LabelTally tally;
  for (const auto& [name, c] : l.find("cases")->members()) {
    if (nulls.count(name)) continue;
    SCOPED_TRACE(name);
    expect_as_labelled(scan_report((kAdversarial / c.find("path")->str()).string(), lib, ScanOptions()), c, &tally);
  }
  EXPECT_EQ(tally.accused, 0) << "false accusations among " << tally.independent << " independent components";
  EXPECT_GE(tally.checked, 3 * 25);
}

// The set's GGUF cases that record what a reader must get back (gguf.dequant_sha256: the sha256 of
// every tensor dequantised to float32 by make_adversarial.py, which writes the K-quant blocks as
// ggml lays them out): our reader dequantises every tensor to exactly those floats.
TEST(AdversarialSet, GgufTensorsDequantiseAsTheGeneratorWroteThem) {
  evald::text::Json l = read_labels(kAdversarial / "labels.json");
  int files = 0;
  for (const auto& [name, c] : l.find("cases")->members()) {
    const evald::text::Json* gguf = c.find("gguf");
    const evald::text::Json* want = gguf ? gguf->find("dequant_sha256") : nullptr;
    if (!want) continue;
    SCOPED_TRACE(name);
    ++files;
    WeightSet w;
    FormatError err;
    ASSERT_TRUE(read_gguf((kAdversarial / c.find("path")->str()).string(), &w, &err)) << err.to_string();
    EXPECT_EQ(w.tensors.size(), want->members().size());
    for (const Tensor& t : w.tensors) {
      SCOPED_TRACE(t.name);
      const evald::text::Json* h = want->find(t.name);
      ASSERT_TRUE(h && h->is_string());
      std::vector<float> v(t.numel());
      ASSERT_TRUE(to_float(t, 0, t.numel(), v.data())) << dtype_name(t.dtype);
      EXPECT_EQ(evald::text::sha256_hex(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float))), h->str());
    }
  }
  EXPECT_GE(files, 1);
}

}  // namespace
