// Writing the report's files, the manifest of what they depend on, and the signature.
#include "format.hpp"
#include "report.hpp"

#include <filesystem>
#include <tuple>

namespace evald::report {

Value build_manifest(const Job& job, const Value& doc, const Array& outputs, const std::string& public_key_hex) {
  Value m;
  m.set("schema", "evald.report-manifest/1");
  m.set("competition", doc.get_string("competition"));
  m.set("round", doc.get_string("round"));
  m.set("run", doc.get_string("run"));
  // Relative input paths (pipelines name sample data relative to the daemon) resolve here.
  std::error_code ec;
  m.set("working_directory", std::filesystem::current_path(ec).string());
  m.set("generated_at", doc.get_string("generated_at"));
  Value self;
  self.set("name", "report");
  self.set("version", kPluginVersion);
  m.set("report_plugin", self);
  m.set("daemon_version", job.round.get_string("daemon_version"));
  const Value* p = job.round.find("pipeline_info");
  m.set("pipeline", p && p->is_map() ? *p : Value());
  const Value* pl = job.round.find("plugins");
  m.set("plugins", pl && pl->is_array() ? *pl : Value(Array{}));
  // Every upstream message by its payload's hash: the exact results the report was made from.
  Array msgs;
  for (auto& msg : job.inputs) {
    Value x;
    x.set("stage", msg.envelope.stage);
    x.set("kind", msg.kind);
    std::string e = msg.payload.get_string("entrant");
    x.set("entrant", e.empty() ? msg.envelope.entrant : e);
    x.set("job", msg.envelope.job);  // a restart's retry makes the same message: attempts are not the report's
    x.set("seq", msg.seq);
    x.set("schema_version", msg.schema_version);
    Bytes b = msgpack::encode(msg.payload);
    x.set("payload_sha256", sha256_hex_of(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())));
    msgs.push_back(std::move(x));
  }
  m.set("messages", std::move(msgs));
  m.set("failed_upstream", doc.find("failed_upstream") ? *doc.find("failed_upstream") : Value(Array{}));
  m.set("inputs", doc.find("inputs") ? *doc.find("inputs") : Value(Array{}));
  m.set("outputs", Value(outputs));
  Value sig;
  sig.set("algorithm", "ed25519");
  sig.set("public_key", public_key_hex);
  sig.set("file", "report.sig");
  sig.set("public_key_file", "report.pub");
  sig.set("signed_bytes", kSignedBytes);
  m.set("signature", sig);
  return valid_utf8_tree(m);
}

Result<Value> write_report(const Job& job, const Options& opt, const SigningKey& key, const std::string& dir,
                           const std::function<void(double, double)>& progress) {
  const double steps = 5;
  auto step = [&](double k) {
    if (progress) progress(k, steps);
  };
  step(0);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::error(dir + ": cannot create the report directory: " + ec.message());
  const std::string pub = key.public_hex();
  auto doc = gather(job, opt, pub);
  if (!doc) return doc.status();
  step(1);

  struct Out {
    const char* file;
    const char* role;
    const char* format;
    std::string bytes;
  };
  std::vector<Out> outs = {{"report.json", "report (JSON, evald.report/1)", "json", pretty_json(*doc) + "\n"},
                           {"report.html", "report (HTML)", "html", render_html(*doc)},
                           {"report.md", "report (Markdown)", "md", render_markdown(*doc)},
                           {"scoreboard.csv", "scoreboard (CSV)", "csv", render_csv(*doc)}};
  step(2);
  Array outputs;
  Value formats;
  auto add_format = [&](const char* format, const std::string& file, const std::string& sha) {
    Value f;
    f.set("path", (std::filesystem::path(dir) / file).string());
    f.set("sha256", sha);
    formats.set(format, f);
  };
  for (auto& o : outs) {
    std::string path = (std::filesystem::path(dir) / o.file).string();
    if (auto st = write_file(path, o.bytes); !st) return st;
    std::string sha = sha256_hex_of(o.bytes);
    Value x;
    x.set("file", o.file);
    x.set("role", o.role);
    x.set("bytes", int64_t(o.bytes.size()));
    x.set("sha256", sha);
    outputs.push_back(std::move(x));
    add_format(o.format, o.file, sha);
  }
  step(3);

  std::string manifest = pretty_json(build_manifest(job, *doc, outputs, pub)) + "\n";
  std::string mpath = (std::filesystem::path(dir) / "manifest.json").string();
  if (auto st = write_file(mpath, manifest); !st) return st;
  add_format("manifest", "manifest.json", sha256_hex_of(manifest));
  step(4);

  // The canonical signed bytes: report.json then manifest.json, exactly as written.
  std::string sig = sign_hex(key, outs[0].bytes + manifest) + "\n";
  std::string pub_text = pub + "\n";
  for (auto [file, bytes, format] : {std::tuple{"report.sig", &sig, "sig"}, std::tuple{"report.pub", &pub_text, "pub"}}) {
    std::string path = (std::filesystem::path(dir) / file).string();
    if (auto st = write_file(path, *bytes); !st) return st;
    add_format(format, file, sha256_hex_of(*bytes));
  }
  step(5);

  Value payload;
  payload.set("formats", formats);
  payload.set("public_key", pub);
  payload.set("decided", doc->get_bool("decided"));
  payload.set("competition", doc->get_string("competition"));
  payload.set("round", doc->get_string("round"));
  payload.set("run", doc->get_string("run"));
  payload.set("dir", dir);
  payload.set("notes", doc->find("notes") ? *doc->find("notes") : Value(Array{}));
  return payload;
}

}  // namespace evald::report
