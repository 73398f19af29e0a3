// User evaluation: specialist users' Likert ratings and pairwise battle votes, from vote files
// and from intake, turned into points per entrant. Everything the user-scores plugin does
// except talking to the host lives here, so tests and the benchmark call the same code.
//
// The steps, in order:
//   1. Ingestion (VoteSet::add_file, VoteSet::add_intake): each row is validated or rejected
//      with a reason code, file and line; ids are deduplicated per vote type (the same id with
//      the same content is a duplicate kept once, with other content the later row is rejected).
//   2. Hygiene (VoteSet::apply_hygiene): the voting window, the per-user share cap and the
//      per-pair cap exclude votes; every exclusion is counted under exactly one reason.
//   3. Aggregation (evaluate): Bradley-Terry over the counted battles with a percentile
//      bootstrap, rating means with t-intervals, then scaling to the round's points.
#pragma once

#include <evald/schema.hpp>
#include <evald/value.hpp>

#include "bradley_terry.hpp"
#include "records.hpp"
#include "stats.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace evald::scores {

enum class VoteType : uint8_t { Rating, Battle };
const char* vote_type_name(VoteType t);  // "rating", "battle"

enum class ScoreFrom : uint8_t { Battles, Ratings, Blend };
enum class Scaling : uint8_t { RelativeToBest, Absolute };

struct VoteOptions {
  std::vector<std::string> ratings_files, battles_files;
  std::string intake_channel;  // empty: no intake
  double likert_min = 1, likert_max = 5;
  uint64_t max_votes_per_pair = 0;  // 0: off
  double max_user_share = 0;        // 0 or 1: off
  std::string window_opens, window_closes;      // as configured; empty: unbounded
  std::optional<int64_t> opens_ms, closes_ms;   // parsed
  double prior = 0.5;
  uint32_t resamples = 1000;
  uint64_t seed = 1;
  ScoreFrom score = ScoreFrom::Battles;
  double battle_weight = 0.5;  // blend only
  Scaling scaling = Scaling::RelativeToBest;
  double scale = 25;
  uint64_t rejected_listed = 1000;  // rejected rows listed in the summary message

  bool window() const { return opens_ms || closes_ms; }
};

// The plugin's configuration keys with their defaults.
ConfigSchema vote_config_schema();
// Options from a config the schema has checked (defaults filled in), plus the checks the schema
// cannot express: likert_min < likert_max, window times parse and are in order, at least one
// source, and a source for what `score` uses. Errors name the config key.
Result<VoteOptions> vote_options(const Value& config);

struct Entrant {
  std::string id, name;
};
// The round's entrants in roster order: job.round.roster ([{id, name}]), or job.round.entrants
// (ids) when there is no roster. An error when neither lists anyone or an id repeats.
Result<std::vector<Entrant>> roster_from_round(const Value& round);

// The text a name is matched by: whitespace trimmed and collapsed, ASCII letters lower-cased,
// Hangul conjoining jamo composed into syllables (a file saved on macOS may hold NFD Hangul,
// which looks the same as the roster's name but differs byte for byte).
std::string name_key(std::string_view text);

// How votes name entrants: exactly by id first, then by name_key of an id or a roster name.
class EntrantIndex {
 public:
  enum class Found { Yes, Unknown, Ambiguous };
  explicit EntrantIndex(const std::vector<Entrant>& roster);
  Found resolve(std::string_view text, uint32_t* index) const;

 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::unordered_map<std::string, std::vector<uint32_t>> keys_;
};

// Why a row was rejected. Every code is reported, zero or not.
enum class Reject : uint8_t {
  Malformed,         // the reader flagged the row (more fields than the header), or aliases disagree
  MissingId,
  MissingUser,
  MissingEntrant,    // no entrant / a / b
  UnknownEntrant,    // not in the round's roster
  AmbiguousEntrant,  // a name that fits several entrants
  SameEntrant,       // a battle of an entrant against itself
  BadOutcome,        // not A, B or tie
  BadScore,          // missing or not a number
  ScoreOutOfRange,   // outside [likert_min, likert_max]
  BadTime,           // a time that is not ISO 8601
  MissingTime,       // no time while a window is set
  BadType,           // an intake record whose type is not rating or battle
  ConflictingId,     // the id of an earlier vote with other content
};
inline constexpr size_t kRejectReasons = 14;
const char* reject_code(Reject r);

// Why a valid vote does not count. Each excluded vote has exactly one, the first that applies
// in this order.
enum class Exclusion : uint8_t { None, OutsideWindow, UserShare, PairLimit };
inline constexpr size_t kExclusionReasons = 3;
const char* exclusion_code(Exclusion e);  // "outside_window", "max_user_share", "max_votes_per_pair"

struct Vote {
  std::string id;
  uint32_t source = 0;  // index into VoteSet::sources()
  uint64_t line = 0;    // 0 for intake
  uint32_t user = 0;    // index into VoteSet::users()
  uint32_t a = 0, b = 0;  // roster indices; a rating names a only
  Outcome outcome = Outcome::Tie;
  double score = 0;
  int64_t time_ms = 0;
  bool has_time = false;       // "time", or received_at for intake
  bool explicit_time = false;  // the vote's own "time" (part of its content; received_at is not)
  VoteType type = VoteType::Battle;
  Exclusion excluded = Exclusion::None;
};

struct Rejection {
  uint32_t source = 0;
  uint64_t line = 0;  // 0 for intake
  std::string id;
  Reject code = Reject::Malformed;
  std::string reason;
};

struct Source {
  std::string path;    // a file, or "intake:<channel>"
  std::string format;  // csv, json, jsonl, intake
  std::string sha256;  // files only
  uint64_t bytes = 0;
  uint64_t records = 0;
  std::optional<VoteType> type;  // files hold one type; intake both
};

struct TypeCounts {
  uint64_t records = 0;     // rows and intake records seen
  uint64_t valid = 0;       // distinct votes that passed validation
  uint64_t duplicates = 0;  // repeats of a valid vote (same id, same content), kept once
  uint64_t rejected_total = 0;
  std::array<uint64_t, kRejectReasons> rejected{};
  uint64_t excluded_total = 0;
  std::array<uint64_t, kExclusionReasons> excluded{};
  uint64_t counted() const { return valid - excluded_total; }
};

struct ExcludedUser {
  std::string user;
  VoteType type = VoteType::Battle;
  uint64_t votes = 0, total = 0;  // the user's valid votes of the type, and everyone's
};

// The votes of one round as they are read. Not thread-safe.
class VoteSet {
 public:
  VoteSet(std::vector<Entrant> roster, VoteOptions options);

  // Reads a vote file of the given type and validates each row. A file that cannot be read
  // or parsed, or a CSV header without a required column, is an error naming the file.
  Status add_file(const std::string& path, VoteType type);
  // The same for a file already read.
  Status add_records(const text::RecordFile& file, VoteType type);
  // One intake record of `channel` ({id, received_at, type: rating|battle, ...fields}).
  void add_intake(const std::string& channel, const Value& record);
  // Applies the window, share and pair rules; call once, after every vote is in.
  void apply_hygiene();

  const VoteOptions& options() const { return opt_; }
  const std::vector<Entrant>& roster() const { return roster_; }
  const std::vector<Vote>& votes() const { return votes_; }
  const std::vector<Rejection>& rejections() const { return rejected_; }
  const std::vector<Source>& sources() const { return sources_; }
  const std::vector<std::string>& users() const { return users_; }
  const std::vector<ExcludedUser>& excluded_users() const { return excluded_users_; }
  const TypeCounts& counts(VoteType t) const { return counts_[size_t(t)]; }
  // Intake records whose type was neither (rejected as bad_type, counted in no type).
  const TypeCounts& untyped() const { return untyped_; }
  uint64_t intake_records() const { return intake_records_; }
  // "file" of a rejection or vote: the path, or "intake:<channel>#<id>".
  std::string where(uint32_t source, const std::string& id) const;

 private:
  void add_row(const Value& fields, const std::string& defect, VoteType type, uint32_t source, uint64_t line,
               std::string_view id, const std::string* received_at);
  void reject(TypeCounts& c, uint32_t source, uint64_t line, const std::string& id, Reject code, std::string reason);
  uint32_t intern_user(std::string_view user);

  std::vector<Entrant> roster_;
  VoteOptions opt_;
  EntrantIndex index_;
  std::vector<Vote> votes_;
  std::vector<Rejection> rejected_;
  std::vector<Source> sources_;
  std::vector<std::string> users_;
  std::unordered_map<std::string, uint32_t> user_index_;
  std::array<std::unordered_map<std::string, uint32_t>, 2> by_id_;  // per type: id -> vote
  std::array<TypeCounts, 2> counts_{};
  TypeCounts untyped_;
  std::vector<ExcludedUser> excluded_users_;
  std::unordered_map<std::string, uint32_t> intake_sources_;
  uint64_t intake_records_ = 0;
  bool hygiene_done_ = false;
};

// Counted battles. `all` is over the roster (the win-rate matrix); `field` lists the entrants
// with at least one counted battle, and `field_counts` is over field positions: an entrant
// nobody voted on is left out of the fit instead of being given a score.
struct BattleTally {
  explicit BattleTally(size_t n) : all(n), field_counts(0), votes(n), wins(n), losses(n), ties(n) {}
  PairCounts all;
  std::vector<uint32_t> field;
  PairCounts field_counts;
  std::vector<uint64_t> votes, wins, losses, ties;
};
BattleTally tally_battles(const VoteSet& set);

// Counted ratings per roster entrant.
std::vector<RunningMean> tally_ratings(const VoteSet& set);

// Strengths (log p, centred over the field) and expected win probability against the field
// (the mean over the other field entrants j of p_e / (p_e + p_j)), per roster entrant; NaN
// outside the field.
struct BattleFit {
  std::vector<double> strength, win_prob;
  int iterations = 0;
};
// An error when there is no finite MLE (possible only with prior 0), naming who never won or lost.
Result<BattleFit> fit_battles(const BattleTally& tally, const std::vector<Entrant>& roster, double prior);
// Win probability against the field for each field position, from field-position strengths.
std::vector<double> field_win_probabilities(const std::vector<double>& strength);

struct Hooks {
  std::function<bool()> cancelled;              // polled between resamples
  std::function<void(double, double)> progress;  // (done, total) resamples
};

// 95% percentile bootstrap intervals per roster entrant (NaN outside the field or when every
// resample failed). An error "cancelled" when hooks.cancelled says so.
struct BattleIntervals {
  std::vector<std::pair<double, double>> strength, win_prob;
  uint32_t resamples = 0, failed = 0;
};
Result<BattleIntervals> bootstrap_battles(const BattleTally& tally, const VoteOptions& opt, const Hooks& hooks);

// The result of a round: one user-score payload per roster entrant (roster order), the
// user-evaluation summary payload, and every rejected row (the summary lists the first
// options().rejected_listed of them).
struct Evaluation {
  std::vector<Value> entrants;
  Value summary;
  Array rejected;
};
Result<Evaluation> evaluate(const VoteSet& set, const std::string& round_id, const Hooks& hooks = {});

// The artifact: the summary with every entrant payload and every rejected row, as JSON, written
// to dir/name. Sets summary.artifact and summary.artifact_sha256. Returns the path.
Result<std::string> write_artifact(Evaluation& ev, const std::string& dir, const std::string& name);

}  // namespace evald::scores
