// Gathering: the tally's result, every upstream message's details per entrant, and the input
// files upstream stages named, into the "evald.report/1" document (see report.hpp).
#include "format.hpp"
#include "report.hpp"

#include <evald/time.hpp>

#include <chrono>
#include <map>
#include <set>

namespace evald::report {

namespace {

// The entrant a message is about: barrier stages emit per-entrant messages from one job, so
// the payload's "entrant" comes first (as the tally reads them).
std::string entrant_of(const Message& m) {
  std::string e = m.payload.get_string("entrant");
  return e.empty() ? m.envelope.entrant : e;
}

Value from_of(const Message& m) {
  Value f;
  f.set("stage", m.envelope.stage);
  f.set("kind", m.kind);
  f.set("entrant", entrant_of(m));
  return f;
}

std::string where(const Message& m) {
  std::string e = entrant_of(m);
  return "stage " + m.envelope.stage + (e.empty() ? "" : " (" + e + ")");
}

// Per-entrant kinds the report shows, and where each goes under details.
const std::pair<const char*, const char*> kDetailKinds[] = {
    {"expert-score", "expert"}, {"user-score", "user"}, {"benchmark-score", "benchmark"}, {"provenance", "provenance"}};

struct InputCollector {
  bool hash = true;
  Array out;
  std::map<std::string, std::set<std::string>> seen;  // path -> sha256s listed
  std::vector<std::string>* notes = nullptr;

  void add(const std::string& path, const std::string& sha, const std::string& role, const Message& m) {
    if (path.empty()) return;
    if (sha.empty()) {
      notes->push_back(where(m) + " names " + path + " without a sha256: it is not in the manifest");
      return;
    }
    auto& shas = seen[path];
    if (shas.count(sha)) return;
    if (!shas.empty())
      notes->push_back(path + " is named with different sha256 values by different results (" + *shas.begin() + ", and " + sha + " by " +
                       where(m) + "): the file changed between stages");
    shas.insert(sha);
    Value in;
    in.set("path", path);
    in.set("sha256", sha);
    in.set("role", role);
    in.set("from", from_of(m));
    if (hash) {
      FileHash h = sha256_file(path);
      if (h.missing) {
        in.set("at_report", "missing");
        notes->push_back("input " + path + " (" + role + ") no longer exists: it cannot be re-checked");
      } else if (!h.error.empty()) {
        in.set("at_report", "unreadable");
        notes->push_back("input " + h.error);
      } else if (h.sha256 != sha) {
        in.set("at_report", "changed");
        in.set("actual_sha256", h.sha256);
        notes->push_back("input " + path + " (" + role + ") changed since " + m.envelope.stage + " read it: sha256 was " + sha + ", now " +
                         h.sha256);
      } else {
        in.set("at_report", "same");
      }
    }
    out.push_back(std::move(in));
  }

  void from_message(const Message& m) {
    const Value& p = m.payload;
    for (auto& in : list_at(p, "inputs")) {
      if (!in.is_map()) continue;
      std::string fmt = in.get_string("format");
      add(in.get_string("path"), in.get_string("sha256"), m.kind + " input" + (fmt.empty() ? "" : " (" + fmt + ")"), m);
    }
    add(p.get_string("artifact"), p.get_string("artifact_sha256"), m.kind + " artifact", m);
    std::string e = entrant_of(m);
    add(p.get_string("report_file"), p.get_string("report_sha256"), m.kind + " report" + (e.empty() ? "" : " (" + e + ")"), m);
    // A single input file named with its hash (file-value's {file, sha256}).
    add(p.get_string("file"), p.get_string("sha256"), m.kind + " file" + (e.empty() ? "" : " (" + e + ")"), m);
  }
};

}  // namespace

Result<Value> gather(const Job& job, const Options& opt, const std::string& public_key_hex, bool hash_inputs) {
  // The tally's result: by its schema, whatever kind its stage was configured to emit.
  std::vector<const Message*> tallies;
  for (auto& m : job.inputs) {
    std::string schema = m.payload.get_string("schema");
    if (schema == "evald.tally/1") {
      tallies.push_back(&m);
    } else if (m.kind == "tally") {
      return Status::error("the tally result from stage " + m.envelope.stage + " has schema \"" + schema +
                           "\": this report reads evald.tally/1");
    }
  }
  if (tallies.empty()) {
    std::string failed;
    for (auto& f : job.failed_upstream)
      if (f.stage.find("tally") != std::string::npos) failed += "; stage " + f.stage + " failed: " + f.error;
    return Status::error("report needs the tally's result: put the tally stage in `after`" + failed);
  }
  if (tallies.size() > 1) {
    std::string stages;
    for (auto* t : tallies) stages += (stages.empty() ? "" : ", ") + t->envelope.stage;
    return Status::error("report found " + std::to_string(tallies.size()) + " tally results (stages " + stages +
                         "): a report covers one tally; give the report stage only one in `after`");
  }
  const Value& tally = tallies[0]->payload;
  std::vector<std::string> notes;

  // Details per entrant and the round-level summaries.
  std::map<std::string, Value> details;  // entrant -> {expert, user, benchmark, provenance}
  Value panel, user_eval;
  for (auto& m : job.inputs) {
    if (!m.payload.is_map()) continue;
    for (auto& [kind, slot] : kDetailKinds) {
      if (m.kind != kind) continue;
      std::string e = entrant_of(m);
      if (e.empty()) {
        notes.push_back(where(m) + ": a " + m.kind + " result without an entrant is not shown");
        continue;
      }
      Value& d = details[e];
      if (d.find(slot)) {
        notes.push_back(std::string("more than one ") + kind + " result for " + e + ": the first (" + d.find(slot)->get_string("_stage") +
                        ") is shown, " + where(m) + " is not");
        continue;
      }
      Value p = m.payload;
      p.set("_stage", m.envelope.stage);  // which stage it came from, for the page's notes
      d.set(slot, std::move(p));
    }
    for (auto [kind, target] : {std::pair<const char*, Value*>{"expert-panel", &panel}, {"user-evaluation", &user_eval}}) {
      if (m.kind != kind) continue;
      if (!target->is_null()) {
        notes.push_back(std::string("more than one ") + kind + " result: the first is shown, " + where(m) + " is not");
        continue;
      }
      *target = m.payload;
    }
  }

  Array entrants;
  std::set<std::string> in_tally;
  for (auto& e : list_at(tally, "entrants")) {
    if (!e.is_map()) continue;
    Value x = e;
    std::string id = e.get_string("entrant");
    in_tally.insert(id);
    Value d;
    for (auto& [kind, slot] : kDetailKinds) {
      const Value* v = details.count(id) ? details[id].find(slot) : nullptr;
      d.set(slot, v ? *v : Value());
    }
    x.set("details", std::move(d));
    entrants.push_back(std::move(x));
  }
  for (auto& [id, d] : details)
    if (!in_tally.count(id)) notes.push_back("results for " + id + ", who is not in the tally, are not shown");

  InputCollector inputs;
  inputs.hash = hash_inputs;
  inputs.notes = &notes;
  for (auto& m : job.inputs) inputs.from_message(m);

  Array failed;
  for (auto& f : job.failed_upstream) {
    Value x;
    x.set("stage", f.stage);
    x.set("entrant", f.entrant);
    x.set("error", f.error);
    failed.push_back(std::move(x));
  }

  Value doc;
  doc.set("schema", "evald.report/1");
  std::string at = opt.generated_at;
  if (at.empty())
    at = format_utc_time(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  doc.set("generated_at", at);
  doc.set("lang", opt.lang == Lang::Ko ? "ko" : "en");
  doc.set("title", opt.title);
  doc.set("notice", opt.notice);
  doc.set("plugin_version", kPluginVersion);
  std::string comp = tally.get_string("competition");
  doc.set("competition", comp.empty() ? job.round.get_string("competition") : comp);
  std::string round = tally.get_string("round");
  doc.set("round", round.empty() ? job.envelope.round : round);
  doc.set("run", job.envelope.run);
  doc.set("decided", tally.get_bool("decided"));
  doc.set("undecided", Value(list_at(tally, "undecided")));
  doc.set("tally", tally);
  doc.set("entrants", std::move(entrants));
  doc.set("panel", panel);
  doc.set("user_evaluation", user_eval);
  doc.set("failed_upstream", std::move(failed));
  doc.set("inputs", std::move(inputs.out));
  Array n(notes.begin(), notes.end());
  doc.set("notes", std::move(n));
  Value man;
  man.set("file", "manifest.json");
  man.set("signature_file", "report.sig");
  man.set("public_key_file", "report.pub");
  man.set("public_key", public_key_hex);
  man.set("signed_bytes", kSignedBytes);
  doc.set("manifest", std::move(man));
  // Round-level facts the page shows in its manifest summary.
  Value run_info;
  for (const char* k : {"pipeline_info", "plugins", "daemon_version"})
    if (const Value* v = job.round.find(k)) run_info.set(k, *v);
  doc.set("run_info", run_info.is_null() ? Value(Map{}) : run_info);
  return valid_utf8_tree(doc);
}

}  // namespace evald::report
