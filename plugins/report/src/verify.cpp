#include "verify.hpp"

#include "json.hpp"
#include "report.hpp"
#include "signing.hpp"

#include <filesystem>

namespace fs = std::filesystem;

namespace evald::report {

namespace {

std::string json_str(const text::Json* j) { return j && j->is_string() ? j->str() : std::string(); }

// An output file name from the manifest must stay inside the report directory.
bool plain_name(const std::string& f) { return !f.empty() && f.find('/') == std::string::npos && f != "." && f != ".."; }

}  // namespace

Result<Value> verify_report(const std::string& dir, const std::string& expected_public_key_hex, const std::string& base_dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::error(dir + ": not a directory (give the directory holding report.json and manifest.json)");
  auto at = [&](const char* f) { return fs::absolute(fs::path(dir) / f, ec).string(); };
  Array problems, files;
  Value out;

  // The key: the one given, or the one the report carries (and then say what that proves).
  std::array<uint8_t, 32> pk{};
  bool have_key = false;
  std::string key_hex, key_source;
  if (!expected_public_key_hex.empty()) {
    auto k = from_hex(expected_public_key_hex, 32);
    if (!k)
      return Status::error("key: expected the ed25519 public key as 64 hex characters, got \"" + expected_public_key_hex + "\" (" +
                           std::to_string(expected_public_key_hex.size()) + " characters)");
    std::copy(k->begin(), k->end(), pk.begin());
    have_key = true;
    key_hex = to_hex(pk.data(), pk.size());
    key_source = "given";
    std::string why;
    if (auto pub = read_file(at("report.pub"), &why); pub) {
      auto in_dir = from_hex(*pub, 32);
      if (in_dir && to_hex(in_dir->data(), in_dir->size()) != key_hex)
        problems.push_back("report.pub holds another key (" + to_hex(in_dir->data(), in_dir->size()) + ") than the one given (" + key_hex +
                           "): the report was not signed with the given key");
    }
  } else {
    std::string why;
    auto pub = read_file(at("report.pub"), &why);
    key_source =
        "report.pub (from the report directory itself: this shows the files are consistent with each other, not who signed them; "
        "give the public key the office published to check that)";
    if (!pub) {
      problems.push_back("no key to check the signature with: " + why + ", and no key was given");
    } else if (auto k = from_hex(*pub, 32); !k) {
      problems.push_back(at("report.pub") + " does not hold a public key (64 hex characters)");
    } else {
      std::copy(k->begin(), k->end(), pk.begin());
      have_key = true;
      key_hex = to_hex(pk.data(), pk.size());
    }
  }
  out.set("key", key_hex.empty() ? Value() : Value(key_hex));
  out.set("key_source", key_source);
  out.set("signed_bytes", kSignedBytes);

  // The signature over report.json then manifest.json.
  std::string why_json, why_man, why_sig;
  auto report_json = read_file(at("report.json"), &why_json);
  auto manifest = read_file(at("manifest.json"), &why_man);
  auto sig_text = read_file(at("report.sig"), &why_sig);
  std::string signature, detail;
  if (!sig_text) {
    signature = "missing";
    detail = why_sig;
  } else if (!have_key) {
    signature = "missing";
    detail = "report.sig is present but there is no public key to check it with";
  } else if (!report_json || !manifest) {
    signature = "bad";
    detail = "cannot check: " + (!report_json ? why_json : why_man);
  } else if (auto sig = from_hex(*sig_text, 64); !sig) {
    signature = "bad";
    detail = "report.sig does not hold an ed25519 signature (128 hex characters)";
  } else if (verify_detached(pk, *sig, *report_json + *manifest)) {
    signature = "good";
    detail = "report.json and manifest.json are exactly as signed by key " + key_hex;
  } else {
    signature = "bad";
    detail = "report.json or manifest.json was changed after signing, or they were signed with another key than " + key_hex;
  }
  if (signature != "good") problems.push_back("signature " + signature + ": " + detail);
  out.set("signature", signature);
  out.set("signature_detail", detail);

  std::string base = base_dir;
  auto check = [&](const std::string& given, const std::string& role, const std::string& expected) {
    const std::string path = fs::path(given).is_relative() && !base.empty() ? (fs::path(base) / given).string() : given;
    Value f;
    f.set("path", path);
    f.set("role", role);
    f.set("expected", expected);
    FileHash h = sha256_file(path);
    std::string status, message;
    if (h.missing) {
      status = "missing";
      message = path + " (" + role + ") is missing: expected sha256 " + expected;
      f.set("actual", Value());
    } else if (!h.error.empty()) {
      // Unreadable is not "the same": counted as changed, with why.
      status = "changed";
      message = h.error + " (" + role + "): cannot be re-hashed";
      f.set("actual", Value());
    } else if (h.sha256 != expected) {
      status = "changed";
      message = path + " (" + role + ") changed: sha256 was " + expected + ", now " + h.sha256;
      f.set("actual", h.sha256);
    } else {
      status = "same";
      message = path + " (" + role + ") unchanged";
      f.set("actual", h.sha256);
    }
    if (status != "same") problems.push_back(message);
    f.set("status", status);
    f.set("message", message);
    files.push_back(std::move(f));
  };

  // The manifest's outputs and inputs. Read even when the signature is bad, to say what changed.
  text::Json mj;
  text::JsonError err;
  if (!manifest) {
    problems.push_back("manifest.json: " + why_man + ": nothing can be re-hashed");
  } else if (!text::parse_json(*manifest, &mj, &err) || !mj.is_object()) {
    problems.push_back("manifest.json: not a JSON object" + (err.message.empty() ? "" : " (offset " + std::to_string(err.offset) + ": " + err.message + ")"));
  } else {
    if (json_str(mj.find("schema")) != "evald.report-manifest/1")
      problems.push_back("manifest.json: schema \"" + json_str(mj.find("schema")) + "\" is not evald.report-manifest/1");
    std::string mkey = json_str(mj.find("signature") ? mj.find("signature")->find("public_key") : nullptr);
    if (!key_hex.empty() && !mkey.empty() && mkey != key_hex)
      problems.push_back("manifest.json names public key " + mkey + ", not the key checked against (" + key_hex + ")");
    if (std::string wd = json_str(mj.find("working_directory")); base.empty() && !wd.empty() && fs::is_directory(wd, ec)) base = wd;
    const text::Json* outs = mj.find("outputs");
    if (!outs || !outs->is_array() || outs->items().empty()) problems.push_back("manifest.json: no outputs listed");
    else
      for (auto& o : outs->items()) {
        std::string file = json_str(o.find("file"));
        if (!plain_name(file)) {
          problems.push_back("manifest.json: output \"" + file + "\" is not a file name in the report directory");
          continue;
        }
        check(at(file.c_str()), json_str(o.find("role")).empty() ? "report output" : json_str(o.find("role")), json_str(o.find("sha256")));
      }
    if (const text::Json* ins = mj.find("inputs"); ins && ins->is_array())
      for (auto& i : ins->items()) {
        std::string path = json_str(i.find("path"));
        if (path.empty()) continue;
        check(path, json_str(i.find("role")).empty() ? "input" : json_str(i.find("role")), json_str(i.find("sha256")));
      }
    // The code and the pipeline the result came from, as the daemon hashed them for the run.
    if (const text::Json* p = mj.find("pipeline"); p && p->is_object() && !json_str(p->find("source")).empty() && !json_str(p->find("sha256")).empty())
      check(json_str(p->find("source")), "pipeline file (" + json_str(p->find("name")) + ")", json_str(p->find("sha256")));
    if (const text::Json* pl = mj.find("plugins"); pl && pl->is_array())
      for (auto& p : pl->items()) {
        std::string path = json_str(p.find("path")), sha = json_str(p.find("sha256"));
        if (path.empty() || sha.empty()) continue;
        check(path, "plugin library (" + json_str(p.find("name")) + " " + json_str(p.find("version")) + ")", sha);
      }
  }

  size_t same = 0, changed = 0, missing = 0;
  std::string names;
  for (auto& f : files) {
    std::string s = f.get_string("status");
    same += s == "same";
    changed += s == "changed";
    missing += s == "missing";
    if (s != "same") names += (names.empty() ? "" : ", ") + s + " " + f.get_string("path");
  }
  bool ok = signature == "good" && problems.empty();
  std::string summary = std::string(ok ? "OK" : "FAILED") + ": signature " + signature + (have_key ? " (key " + std::string(expected_public_key_hex.empty() ? "from report.pub" : "given") + ")" : "") +
                        "; " + std::to_string(same) + " of " + std::to_string(files.size()) + " files unchanged" +
                        (changed + missing ? " (" + names + ")" : "");
  out.set("ok", ok);
  out.set("summary", summary);
  out.set("files", std::move(files));
  out.set("problems", std::move(problems));
  return out;
}

std::string format_verification(const Value& r) {
  std::string s = r.get_string("summary") + "\n";
  s += "signature: " + r.get_string("signature") + " — " + r.get_string("signature_detail") + "\n";
  s += "key: " + (r.get_string("key").empty() ? std::string("(none)") : r.get_string("key")) + " — " + r.get_string("key_source") + "\n";
  s += "signed bytes: " + r.get_string("signed_bytes") + "\n";
  if (auto* f = r.find("files"); f && f->is_array())
    for (auto& x : f->as_array()) s += "  " + x.get_string("status") + "  " + x.get_string("message") + "\n";
  if (auto* p = r.find("problems"); p && p->is_array() && !p->as_array().empty()) {
    s += "problems:\n";
    for (auto& x : p->as_array()) s += "  - " + (x.is_string() ? x.as_string() : std::string()) + "\n";
  }
  return s;
}

}  // namespace evald::report
