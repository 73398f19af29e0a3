// The adversarial fixture set (tests/provenance/adversarial, made by
// tools/provenance-fixtures/make_adversarial.py from real training runs on real text) through the
// gate, every case against its labels.
#include <gtest/gtest.h>

#include <set>

#include "lineage_fixture.hpp"

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

}  // namespace
