// Checking a published report: is it the one the office signed, and does everything it was
// computed from still hash the same?
#pragma once

#include <evald/value.hpp>

#include <string>

namespace evald::report {

// Verifies the report in dir:
//  1. the signature in report.sig over the canonical signed bytes (report.json followed by
//     manifest.json) against expected_public_key_hex, or, when that is empty, against the
//     key in report.pub, which only shows that the files agree with each other (anyone able
//     to rewrite the report can rewrite report.pub too; key_source says so);
//  2. report.json, report.html, report.md and scoreboard.csv re-hashed against the manifest;
//  3. every input file the manifest lists, the pipeline file and every plugin library of the
//     run re-hashed where they were.
// Returns
// {
//   ok: bool (signature good and every file the same),
//   summary: one line saying what was found,
//   signature: good|bad|missing, signature_detail: why,
//   key, key_source: "given" | "report.pub (...)", signed_bytes,
//   files: [{path, role, expected, actual (null when unreadable), status: same|changed|missing,
//            message}],
//   problems: [every failure, one sentence each, naming the file]
// }
// Fails (an error, not a result) only when dir is not a directory or the given key is not
// 64 hex characters. A relative input path is looked for under base_dir, or when that is
// empty under the working directory the manifest records (the daemon's), else the caller's.
Result<Value> verify_report(const std::string& dir, const std::string& expected_public_key_hex, const std::string& base_dir = {});

// The result of verify_report as lines of text for a terminal.
std::string format_verification(const Value& result);

}  // namespace evald::report
