// The whole competition for the public: every round in order with its rules, who entered it
// and how (registered, advanced, additional call, re-applied), its scoreboard and decision
// with the run and tally result it was taken from, each round's signed report, and the
// finalists. Made from the daemon's competition.report answer (evalctl competition report
// --out DIR); the round reports stay the signed record, this page links them by hash.
#pragma once

#include "labels.hpp"

#include <evald/value.hpp>

#include <string>

namespace evald::report {

// Writes into dir (created if missing): competition.json ("evald.competition-report/1":
// {schema, generated_at, lang, report: data as given}), competition.html (self-contained, no
// script, nothing fetched) and competition.md. Missing or mistyped fields of data leave their
// part out. Returns {dir, files: [{file, bytes, sha256}]}; errors name the file.
Result<Value> write_competition_report(const Value& data, const std::string& dir, Lang lang, const std::string& generated_at);

}  // namespace evald::report
