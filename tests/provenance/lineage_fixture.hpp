// What the lineage tests share: the shipped fixtures, a library of their two open models, and
// lookups in a scan report.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json.hpp"
#include "library.hpp"
#include "model_writer.hpp"
#include "report.hpp"

namespace lineage_test {

namespace fs = std::filesystem;
using namespace evald::prov;
using evald::Value;

inline const fs::path kFixtures = EVALD_PROVENANCE_FIXTURES;

inline fs::path temp_dir(const std::string& tag) {
  std::string t = (fs::temp_directory_path() / ("evald-prov-" + tag + "-XXXXXX")).string();
  if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
  return t;
}

inline evald::text::Json read_labels(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  evald::text::Json j;
  evald::text::JsonError e;
  if (!evald::text::parse_json(ss.str(), &j, &e)) throw std::runtime_error(file.string() + ": " + e.message);
  return j;
}

inline const Value* component(const Value& report, const std::string& name) {
  const Value* comps = report.find("components");
  if (!comps) return nullptr;
  for (const Value& c : comps->as_array())
    if (c.get_string("component") == name) return &c;
  return nullptr;
}

inline Fingerprint fingerprint_of(const fs::path& dir, const std::string& name, const std::string& revision, bool hash = false) {
  Model m;
  FormatError err;
  if (!open_model(dir.string(), &m, &err)) throw std::runtime_error(err.to_string());
  return fingerprint_model(m, ComponentRules(), name, revision, 2, hash);
}

// What comparing scan reports with labels.json cases counted.
struct LabelTally {
  int checked = 0;      // components compared
  int independent = 0;  // of them labelled independent
  int accused = 0;      // of those, called derived
};

// Expects report `r` to match labels.json case `c` (expected verdict per component, source as
// "<source>@fixture", and the gate that follows from them), counting into `tally`.
inline void expect_as_labelled(const Value& r, const evald::text::Json& c, LabelTally* tally) {
  ASSERT_FALSE(r.find("error")) << evald::to_json(*r.find("error"));
  bool any_derived = false;
  for (const auto& [comp, expected] : c.find("expected")->members()) {
    SCOPED_TRACE(comp);
    const Value* got = component(r, comp);
    ASSERT_TRUE(got);
    std::string verdict = got->get_string("verdict");
    ++tally->checked;
    if (expected.type() == evald::text::Json::Type::Null) {
      EXPECT_EQ(verdict, "absent");
    } else if (expected.str() == "independent") {
      ++tally->independent;
      tally->accused += verdict == "derived";
      EXPECT_EQ(verdict, "independent") << got->get_string("reason");
    } else {
      any_derived = true;
      EXPECT_EQ(verdict, "derived") << got->get_string("reason");
      const evald::text::Json* source = c.find("source");
      ASSERT_TRUE(source && source->is_string());
      EXPECT_EQ(got->get_string("source"), source->str() + "@fixture");
    }
  }
  EXPECT_EQ(r.find("gate")->get_string("result"), any_derived ? "fail" : "pass") << r.find("gate")->get_string("reason");
}

// A library of the two shipped open models, built once per suite through RocksDB.
class Lineage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(temp_dir("lib"));
    auto lib = FingerprintLibrary::open((*dir_ / "lib").string(), false, true);
    ASSERT_TRUE(lib) << lib.error();
    for (const char* ref : {"open_P", "open_Q"}) ASSERT_TRUE((*lib)->put(fingerprint_of(kFixtures / ref, ref, "fixture", true)));
    lib->reset();
    auto ro = FingerprintLibrary::open((*dir_ / "lib").string(), true, false);
    ASSERT_TRUE(ro) << ro.error();
    auto all = (*ro)->load_all();
    ASSERT_TRUE(all) << all.error();
    library_ = new std::vector<Fingerprint>(std::move(*all));
    ro->reset();
    // Scans read the library as the plugin does: heads resident, sketches per tensor.
    auto refs = open_references((*dir_ / "lib").string());
    ASSERT_TRUE(refs) << refs.error();
    refs_ = refs->release();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    delete library_;
    delete refs_;
  }
  static Value scan(const fs::path& model, ScanOptions opt = {}) { return scan_report(model.string(), *refs_, opt); }

  static inline fs::path* dir_ = nullptr;
  static inline std::vector<Fingerprint>* library_ = nullptr;  // the same, whole, in memory
  static inline ReferenceSet* refs_ = nullptr;
};

}  // namespace lineage_test
