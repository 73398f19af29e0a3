// The round report: what an evaluation office publishes and defends at the end of a round.
//
// From a barrier job placed after the tally and the stages it counted, the report gathers the
// tally's result ("evald.tally/1") and every upstream message of the run, and writes into one
// directory:
//
//   report.html     one self-contained page: inline CSS and SVG, no script, nothing fetched
//   report.md       the same content as Markdown tables, without the charts
//   scoreboard.csv  RFC 4180, UTF-8 with a byte order mark (Excel reads Korean names):
//                   rank, entrant, name, one column per component (its name), total,
//                   decision, reason; a disqualified team has no rank, the total it would
//                   have had, and the reason
//   report.json     "evald.report/1", below
//   manifest.json   "evald.report-manifest/1", below
//   report.sig      ed25519 detached signature, 128 hex characters and a newline, over the
//                   CANONICAL SIGNED BYTES: the exact bytes of report.json immediately
//                   followed by the exact bytes of manifest.json (no separator; the manifest
//                   records report.json's size and sha256, which fixes the boundary)
//   report.pub      the public key, 64 hex characters and a newline (also in both JSON files)
//
// Everything is deterministic for the same inputs, key and generated_at: maps are written
// with sorted keys, and ed25519 signatures are deterministic.
//
// report.json, "evald.report/1":
// {
//   schema: "evald.report/1", generated_at, lang, title, notice, plugin_version,
//   competition, round, run, decided, undecided: [reason...],
//   tally: <the tally's payload as received>,
//   entrants: [<the tally's entrant entry (rank order, then disqualified, then pending)> +
//              details: {expert: <expert-score payload>|null, user: <user-score>|null,
//                        benchmark: <benchmark-score>|null, provenance: <provenance>|null}
//              (each payload as received plus _stage: the stage that emitted it)],
//   panel: <expert-panel payload>|null, user_evaluation: <user-evaluation payload>|null,
//   run_info: {pipeline_info?, plugins?, daemon_version?}  (from the run's round record),
//   failed_upstream: [{stage, entrant, error}],
//   inputs: [{path, sha256, role, from: {stage, kind, entrant}, at_report: same|changed|missing|unreadable,
//             actual_sha256?}]  (every file an upstream payload names with its hash: inputs[]
//             {path, sha256}, artifact + artifact_sha256, report_file + report_sha256, file + sha256),
//   notes: [text...]   (what the report noticed: duplicate results, inputs changed since scored),
//   manifest: {file: "manifest.json", signature_file: "report.sig", public_key_file: "report.pub",
//              public_key, signed_bytes: <the sentence above>}
// }
//
// manifest.json, "evald.report-manifest/1": what the result depends on.
// {
//   schema: "evald.report-manifest/1", competition, round, run, generated_at,
//   report_plugin: {name: "report", version}, daemon_version, pipeline: {name, source, sha256}|null,
//   plugins: [{name, version, abi, path, sha256}],            (from the run's round record)
//   messages: [{stage, kind, entrant, job, attempt, seq, payload_sha256}]  (sha256 of each
//             upstream payload's msgpack),
//   failed_upstream: [...],
//   inputs: [as in report.json],
//   outputs: [{file, role, bytes, sha256}]   (report.json, report.html, report.md, scoreboard.csv;
//             file names relative to the manifest's directory),
//   signature: {algorithm: "ed25519", public_key, file: "report.sig", public_key_file: "report.pub",
//               signed_bytes}
// }
#pragma once

#include "labels.hpp"
#include "signing.hpp"

#include <evald/message.hpp>
#include <evald/value.hpp>

#include <functional>
#include <string>

namespace evald::report {

inline constexpr const char* kPluginVersion = "1.0.0";
inline constexpr const char* kSignedBytes =
    "the exact bytes of report.json immediately followed by the exact bytes of manifest.json";

struct Options {
  Lang lang = Lang::En;
  std::string title;          // empty: "<competition> <round>" and the report's title
  std::string notice;         // shown prominently at the top when not empty
  std::string generated_at;   // ISO 8601 UTC; empty: now
};

// The "evald.report/1" document for job (see above). Fails only when the inputs hold no
// tally result, or more than one, or one of a schema it does not read. Inputs named by
// upstream messages are re-hashed (at_report) unless hash_inputs is false.
Result<Value> gather(const Job& job, const Options& opt, const std::string& public_key_hex, bool hash_inputs = true);

// The renderings of a gathered document. Never fail: absent or mistyped fields omit the part
// that needs them.
std::string render_html(const Value& doc);
std::string render_markdown(const Value& doc);
std::string render_csv(const Value& doc);

// Gathers, renders, writes every file above into dir, signs, and returns the payload of the
// "report" message: {formats: {html|md|json|csv|manifest|sig|pub: {path, sha256}},
// public_key, decided, competition, round, run, dir, notes}. progress, when set, gets
// (done, total) steps.
Result<Value> write_report(const Job& job, const Options& opt, const SigningKey& key, const std::string& dir,
                           const std::function<void(double, double)>& progress = {});

// The manifest (without writing it): job supplies the round record and the messages, doc is
// the gathered document, outputs the [{file, role, bytes, sha256}] of the written files.
Value build_manifest(const Job& job, const Value& doc, const Array& outputs, const std::string& public_key_hex);

}  // namespace evald::report
