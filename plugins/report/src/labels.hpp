// The report's fixed wording in English and Korean. Labels of components and gates come from
// the tally result (label.en / label.ko), which takes them from the round's configuration.
#pragma once

#include <string_view>

namespace evald::report {

enum class Lang { En, Ko };

enum class L {
  ReportTitle, Competition, Round, Run, Status, Decided, Undecided, WaitingFor, GeneratedAt, Notice,
  Scoreboard, Rank, Team, Total, Decision, Reason, WouldHaveTotal, WouldHaveRanked, NotCounted, Tied,
  DecAdvance, DecEliminated, DecDisqualified, DecPending, CountedAsZero, Incomplete,
  ChartTitle, ChartCaption, Scale,
  Benchmark, Suite, Accuracy, Interval95, Items, Points,
  Panel, PanelScores, Agreement, AlphaInterval, AlphaOrdinal, AlphaByCriterion, Icc21, Icc2k, IccUnavailable,
  Raters, Rater, Flagged, NoneFlagged, LooCorrelation, MeanDeviation, Spread, Criterion, RowsUsed, RowsRejected, FlaggedYes,
  Users, UserPoints, Strength, StrengthCaption, WinProb, Ratings, Battles, WinRate, WinRateCaption,
  Provenance, Gate, Verdict, Component, DerivedFrom, PHolm, Effect, Heatmap, HeatmapCaption, Layer, NoLayer, Model, EvidenceFile, GateReason,
  Rule, RuleInEnglish, OperatorDecisions, IgnoredDecisions, DecisionBy, ReceivedAt, Id, None, FailedUpstream, Stage, Error,
  Manifest, Pipeline, Plugins, Version, DaemonVersion, Inputs, Role, Path, Sha256, AtReport, InputChanged, InputMissing, InputSame,
  Signature, PublicKey, SignatureHow, Notes, Entrant, NotTested, Verbatim, Name,
  CompetitionTitle, Finalists, NoFinalistsYet, Roster, Via, Joined, Registered, Submissions, DecidedFrom, DecidedBy,
  NotDecided, RoundReport, AdditionalCall, Weights, AdvanceRule, Entrants, FromRound, ReplacesDecision, CompetitionHow,
  kCount
};

// The text of label l in lang; every label has both languages (checked by the tests).
std::string_view label(L l, Lang lang);
// A decision word of the tally (advance, eliminated, disqualified, pending) in lang; other
// words are returned as they are.
std::string_view decision_label(std::string_view decision, Lang lang);
// A provenance verdict or gate result (pass, fail, inconclusive, independent, derived, ...).
std::string_view verdict_label(std::string_view verdict, Lang lang);

}  // namespace evald::report
