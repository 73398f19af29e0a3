// Verifying a published report: the signature over report.json + manifest.json, the report's
// own files, and every input file the manifest lists.
#include "round_fixture.hpp"

#include "report.hpp"
#include "verify.hpp"

#include <cstdlib>

using namespace report_test;
namespace rpt = evald::report;

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

const Value* file_entry(const Value& r, const std::string& path) {
  for (auto& f : r.find("files")->as_array())
    if (f.get_string("path") == path) return &f;
  return nullptr;
}

std::string problems(const Value& r) {
  std::string s;
  for (auto& p : r.find("problems")->as_array()) s += p.as_string() + "\n";
  return s;
}

class Verify : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = rpt::load_or_create_key(tmp / "keys/report.key");
    ASSERT_TRUE(k.ok()) << k.error();
    key = *k;
    auto r = rpt::write_report(round.job, {}, key, dir);
    ASSERT_TRUE(r.ok()) << r.error();
  }
  TempDir tmp;
  Round round = make_round(tmp);
  rpt::SigningKey key;
  std::string dir = tmp / "out";
};

}  // namespace

TEST_F(Verify, AFreshReportPasses) {
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->get_bool("ok")) << rpt::format_verification(*r);
  EXPECT_EQ(r->get_string("signature"), "good");
  EXPECT_EQ(r->get_string("key_source"), "given");
  EXPECT_EQ(r->get_string("key"), key.public_hex());
  // Four report files, the six inputs (score file, score sheet, votes, panel artifact, provenance
  // report, tally artifact), the pipeline file and the plugin library.
  ASSERT_EQ(r->find("files")->as_array().size(), 12u);
  for (auto& f : r->find("files")->as_array()) EXPECT_EQ(f.get_string("status"), "same") << f.get_string("path");
  EXPECT_TRUE(file_entry(*r, dir + "/report.json"));
  EXPECT_TRUE(file_entry(*r, round.sheet));
  EXPECT_EQ(r->get_string("summary"), "OK: signature good (key given); 12 of 12 files unchanged");
}

TEST_F(Verify, WithoutAKeyItUsesReportPubAndSaysSo) {
  auto r = rpt::verify_report(dir, "");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("key"), key.public_hex());
  EXPECT_TRUE(has(r->get_string("key_source"), "report.pub (from the report directory itself")) << r->get_string("key_source");
  EXPECT_TRUE(has(r->get_string("summary"), "key from report.pub"));
}

TEST_F(Verify, OneByteChangedInReportJsonBreaksTheSignature) {
  std::string path = dir + "/report.json";
  std::string json = slurp(path);
  size_t at = json.find("90.2");
  ASSERT_NE(at, std::string::npos);
  json[at + 3] = '9';  // 90.2 -> 90.9
  write(path, json);
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("signature"), "bad");
  const Value* f = file_entry(*r, path);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get_string("status"), "changed");
  EXPECT_EQ(f->get_string("actual"), evald::text::sha256_hex(json));
  EXPECT_TRUE(has(problems(*r), path + " (report (JSON, evald.report/1)) changed: sha256 was ")) << problems(*r);
  EXPECT_TRUE(has(r->get_string("summary"), "changed " + path)) << r->get_string("summary");
}

TEST_F(Verify, AnEditedHtmlPageIsNamedThoughTheSignatureHolds) {
  std::string path = dir + "/report.html";
  write(path, slurp(path) + "<!-- edited -->");
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("signature"), "good");
  EXPECT_EQ(file_entry(*r, path)->get_string("status"), "changed");
}

TEST_F(Verify, AnEditedInputIsNamed) {
  std::string before = evald::text::sha256_hex(slurp(round.sheet));
  write(round.sheet, "rater,entrant,criterion,score\nR1,team-a,활용성,10\n");
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("signature"), "good");
  const Value* f = file_entry(*r, round.sheet);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get_string("status"), "changed");
  EXPECT_EQ(f->get_string("role"), "expert-panel input (csv)");
  EXPECT_EQ(f->get_string("expected"), before);
  EXPECT_EQ(f->get_string("message"), round.sheet + " (expert-panel input (csv)) changed: sha256 was " + before + ", now " +
                                          evald::text::sha256_hex(slurp(round.sheet)));
  // Only that file.
  int changed = 0;
  for (auto& x : r->find("files")->as_array()) changed += x.get_string("status") != "same";
  EXPECT_EQ(changed, 1);
}

TEST_F(Verify, ARebuiltPluginOrEditedPipelineIsNamed) {
  write(tmp / "lib/tally.so", "rebuilt");
  write(tmp / "round1.yaml", "name: round1\nstages: [changed]\n");
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("signature"), "good");
  const Value* lib = file_entry(*r, tmp / "lib/tally.so");
  ASSERT_TRUE(lib);
  EXPECT_EQ(lib->get_string("status"), "changed");
  EXPECT_EQ(lib->get_string("role"), "plugin library (tally 1.0.0)");
  const Value* pipe = file_entry(*r, tmp / "round1.yaml");
  ASSERT_TRUE(pipe);
  EXPECT_EQ(pipe->get_string("status"), "changed");
  EXPECT_EQ(pipe->get_string("role"), "pipeline file (round1)");
}

TEST_F(Verify, ADeletedInputIsMissing) {
  std::filesystem::remove(round.prov_report);
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->get_bool("ok"));
  const Value* f = file_entry(*r, round.prov_report);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get_string("status"), "missing");
  EXPECT_TRUE(f->find("actual")->is_null());
  EXPECT_TRUE(has(f->get_string("message"), round.prov_report + " (provenance report (team-e)) is missing"));
}

TEST_F(Verify, AnotherKeyIsBad) {
  auto other = rpt::load_or_create_key(tmp / "keys/other.key");
  ASSERT_TRUE(other.ok());
  auto r = rpt::verify_report(dir, other->public_hex());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("signature"), "bad");
  EXPECT_TRUE(has(problems(*r), "report.pub holds another key (" + key.public_hex() + ")")) << problems(*r);
  // A forged report.pub does not help when the office's key is given.
  write(dir + "/report.pub", other->public_hex() + "\n");
  EXPECT_EQ(rpt::verify_report(dir, key.public_hex())->get_string("signature"), "good");
  // Not a key at all: an error naming the argument.
  auto bad = rpt::verify_report(dir, "abc");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(has(bad.error(), "key: expected the ed25519 public key as 64 hex characters")) << bad.error();
}

TEST_F(Verify, AMissingSignatureOrManifest) {
  std::filesystem::remove(dir + "/report.sig");
  auto r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->get_bool("ok"));
  EXPECT_EQ(r->get_string("signature"), "missing");
  std::filesystem::remove(dir + "/manifest.json");
  r = rpt::verify_report(dir, key.public_hex());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(has(problems(*r), "manifest.json: ")) << problems(*r);
  EXPECT_FALSE(rpt::verify_report(tmp / "nowhere", "").ok());
}

// Anyone can check the signature without evald: OpenSSL verifies the same bytes.
TEST_F(Verify, OpensslAgreesWithTheSignature) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "openssl not installed";
  // The raw ed25519 public key in SubjectPublicKeyInfo DER: a fixed 12-byte prefix, then the key.
  auto pk = rpt::from_hex("302a300506032b6570032100" + key.public_hex(), 44);
  auto sig = rpt::from_hex(slurp(dir + "/report.sig"), 64);
  ASSERT_TRUE(pk && sig);
  write(tmp / "pub.der", std::string(pk->begin(), pk->end()));
  write(tmp / "sig.bin", std::string(sig->begin(), sig->end()));
  write(tmp / "signed.bin", slurp(dir + "/report.json") + slurp(dir + "/manifest.json"));
  std::string cmd = "openssl pkeyutl -verify -pubin -keyform DER -inkey " + (tmp / "pub.der") + " -rawin -in " + (tmp / "signed.bin") + " -sigfile " +
                    (tmp / "sig.bin") + " >/dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  write(tmp / "signed.bin", slurp(dir + "/report.json") + slurp(dir + "/manifest.json") + " ");
  EXPECT_NE(std::system(cmd.c_str()), 0);
}
