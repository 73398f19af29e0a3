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
// text): every case against open_P and open_Q, with the set's known-independent models in the
// library as the empirical null. Every component as labelled, and no false accusation.
TEST_F(Lineage, EveryAdversarialCaseComesOutAsLabelled) {
  evald::text::Json l = read_labels(kAdversarial / "labels.json");
  std::vector<Fingerprint> lib = *library_;
  std::set<std::string> nulls;
  for (const auto& n : l.find("null_library")->items()) {
    nulls.insert(n.str());
    lib.push_back(fingerprint_of(kAdversarial / l.find("cases")->find(n.str())->find("path")->str(), n.str(), "null"));
    lib.back().kind = "independent";
  }
  ASSERT_GE(nulls.size(), 3u);
  int checked = 0, independents = 0, accused = 0;
  for (const auto& [name, c] : l.find("cases")->members()) {
    if (nulls.count(name)) continue;
    SCOPED_TRACE(name);
    Value r = scan_report((kAdversarial / c.find("path")->str()).string(), lib, ScanOptions());
    ASSERT_FALSE(r.find("error")) << evald::to_json(*r.find("error"));
    bool any_derived = false;
    for (const auto& [comp, expected] : c.find("expected")->members()) {
      SCOPED_TRACE(comp);
      const Value* got = component(r, comp);
      ASSERT_TRUE(got);
      std::string verdict = got->get_string("verdict");
      ++checked;
      if (expected.type() == evald::text::Json::Type::Null) {
        EXPECT_EQ(verdict, "absent");
      } else if (expected.str() == "independent") {
        ++independents;
        accused += verdict == "derived";
        EXPECT_EQ(verdict, "independent") << got->get_string("reason");
      } else {
        any_derived = true;
        EXPECT_EQ(verdict, "derived") << got->get_string("reason");
        EXPECT_EQ(got->get_string("source"), c.find("source")->str() + "@fixture");
      }
    }
    EXPECT_EQ(r.find("gate")->get_string("result"), any_derived ? "fail" : "pass") << r.find("gate")->get_string("reason");
  }
  EXPECT_EQ(accused, 0) << "false accusations among " << independents << " independent components";
  EXPECT_GE(checked, 3 * 25);
}

}  // namespace
