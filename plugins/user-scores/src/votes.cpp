#include "votes.hpp"
#include "strings.hpp"

#include <evald/time.hpp>

#include "csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <tuple>

namespace evald::scores {

using text::lower_ascii;
using text::trim;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string fmt(double d) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

Value num(double d) { return std::isfinite(d) ? Value(d) : Value(); }
Value interval(std::pair<double, double> iv) {
  if (!std::isfinite(iv.first) || !std::isfinite(iv.second)) return Value();
  return Value(Array{Value(iv.first), Value(iv.second)});
}

std::string_view trim_view(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// A field as trimmed text without copying when it is a string (the common case: every CSV
// field is); other values go through field_text into scratch.
std::string_view field_view(const Value& fields, std::string_view name, std::string& scratch) {
  const Value* v = fields.find(name);
  if (v && v->is_string()) return trim_view(v->as_string());
  if (!v || v->is_null()) return {};
  scratch = text::field_text(fields, name);
  return trim_view(scratch);
}

// Column aliases, the documented name first.
const std::vector<std::string> kA = {"a", "entrant_a", "model_a"};
const std::vector<std::string> kB = {"b", "entrant_b", "model_b"};
const std::vector<std::string> kEntrant = {"entrant", "model"};
const std::vector<std::string> kScore = {"score", "rating"};

// The value of the first alias that is present and not empty. Two aliases with different
// values make the row malformed: which one the voter meant cannot be known.
struct Pick {
  std::string_view value;
  const std::string* name = nullptr;
  std::string conflict;
  std::string scratch[2];
};
void pick(const Value& fields, const std::vector<std::string>& names, Pick& p) {
  p.name = nullptr;
  p.value = {};
  p.conflict.clear();
  std::string other;
  for (auto& n : names) {
    std::string_view v = field_view(fields, n, p.name ? other : p.scratch[0]);
    if (v.empty()) continue;
    if (!p.name) {
      p.value = v;
      p.name = &n;
    } else if (v != p.value && p.conflict.empty()) {
      p.conflict = "fields " + dq(*p.name) + " and " + dq(n) + " disagree (" + dq(p.value) + ", " + dq(v) + ")";
    }
  }
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Vote ids in a stable order: numeric ids by value (so "9" before "10"), before all others,
// which go bytewise. A strict weak order, as std::sort needs.
bool id_less(const std::string& x, const std::string& y) {
  bool dx = all_digits(x), dy = all_digits(y);
  if (dx != dy) return dx;
  if (dx) {
    size_t zx = std::min(x.find_first_not_of('0'), x.size()), zy = std::min(y.find_first_not_of('0'), y.size());
    size_t lx = x.size() - zx, ly = y.size() - zy;
    if (lx != ly) return lx < ly;
    int c = x.compare(zx, lx, y, zy, ly);
    if (c != 0) return c < 0;
  }
  return x < y;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

// Code points of valid UTF-8 (the caller checked it).
std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3F);
    out.push_back(cp);
    i += size_t(n);
  }
  return out;
}

}  // namespace

const char* vote_type_name(VoteType t) { return t == VoteType::Rating ? "rating" : "battle"; }

const char* reject_code(Reject r) {
  static const char* names[kRejectReasons] = {
      "malformed",   "missing_id",     "missing_user",       "missing_entrant", "unknown_entrant",
      "ambiguous_entrant", "same_entrant", "bad_outcome",    "bad_score",       "score_out_of_range",
      "bad_time",    "missing_time",   "bad_type",           "conflicting_id"};
  return names[size_t(r)];
}

const char* exclusion_code(Exclusion e) {
  switch (e) {
    case Exclusion::OutsideWindow: return "outside_window";
    case Exclusion::UserShare: return "max_user_share";
    case Exclusion::PairLimit: return "max_votes_per_pair";
    case Exclusion::None: break;
  }
  return "none";
}

// ---------------------------------------------------------------------------------------
// Configuration

ConfigSchema vote_config_schema() {
  return ConfigSchema()
      .list("ratings", "rating files (.csv with a header, .json, .jsonl): id, user, entrant (or model; id or roster name), "
                       "score (or rating) on the Likert scale, optional time (ISO 8601)")
      .def(Value(Array{}))
      .list("battles", "battle files: id, user, a and b (or entrant_a/entrant_b, model_a/model_b; id or roster name), "
                       "outcome (A, B or tie, any case), optional time (ISO 8601)")
      .def(Value(Array{}))
      .string("intake", "intake channel whose records (type: rating or battle, with the same fields) are read too; empty: none")
      .def("")
      .number("likert_min", "lowest point of the rating scale").def(1.0)
      .number("likert_max", "highest point of the rating scale").def(5.0)
      .integer("max_votes_per_pair", "most votes a user may cast on one unordered pair (ratings: on one entrant); later votes "
                                     "(by time, then id) are excluded; 0: no limit")
      .def(0).min(0)
      .number("max_user_share", "a user casting more than this share of the valid votes of a type (battles or ratings) "
                                "has all those votes excluded; shares are taken once, before any exclusion; 0 or 1: off")
      .def(0.0).min(0).max(1)
      .string("window_opens", "votes before this ISO 8601 time are excluded; empty: unbounded (a vote's time is its time "
                              "field, else the intake received_at)")
      .def("")
      .string("window_closes", "votes at or after this ISO 8601 time are excluded; empty: unbounded").def("")
      .number("prior", "virtual ties added between every pair of entrants in the fit, so an undefeated or winless entrant "
                       "still gets a finite strength; 0: plain maximum likelihood")
      .def(0.5).min(0).max(1e6)
      .integer("resamples", "bootstrap resamples for the 95% intervals; 0: no intervals").def(1000).min(0).max(1000000)
      .integer("seed", "bootstrap seed; the same seed and votes give the same result").def(1).min(0)
      .string("score", "what the points come from: battles (expected win probability against the field), ratings "
                       "(mean rating on the scale) or blend (battle_weight of one, the rest of the other)")
      .def("battles").choices({"battles", "ratings", "blend"})
      .number("battle_weight", "weight of battles in blend").def(0.5).min(0).max(1)
      .string("scaling", "relative_to_best: points = scale * u / best u (the best entrant gets the full scale); "
                         "absolute: points = scale * u")
      .def("relative_to_best").choices({"relative_to_best", "absolute"})
      .number("scale", "points of the user evaluation in the round").def(25.0).min(0)
      .integer("rejected_listed", "rejected rows listed in the summary message (all are in the artifact)").def(1000).min(0).max(1000000);
}

Result<VoteOptions> vote_options(const Value& c) {
  VoteOptions o;
  auto files = [&](const char* key, std::vector<std::string>& out) -> Status {
    const Value* v = c.find(key);
    if (!v || v->is_null()) return {};
    if (!v->is_array()) return Status::error(std::string("config.") + key + ": expected a list of file paths");
    for (size_t i = 0; i < v->as_array().size(); ++i) {
      const Value& e = v->as_array()[i];
      if (!e.is_string() || e.as_string().empty())
        return Status::error(std::string("config.") + key + "[" + std::to_string(i) + "]: expected a file path, got " +
                             (e.is_string() ? "an empty string" : type_name(e.type())));
      out.push_back(e.as_string());
    }
    return {};
  };
  if (auto st = files("ratings", o.ratings_files); !st) return st;
  if (auto st = files("battles", o.battles_files); !st) return st;
  o.intake_channel = c.get_string("intake");
  o.likert_min = c.get_double("likert_min", 1);
  o.likert_max = c.get_double("likert_max", 5);
  if (!std::isfinite(o.likert_min) || !std::isfinite(o.likert_max) || !(o.likert_min < o.likert_max))
    return Status::error("config.likert_max: must be greater than likert_min (" + fmt(o.likert_min) + " .. " + fmt(o.likert_max) + ")");
  o.max_votes_per_pair = uint64_t(std::max<int64_t>(0, c.get_int("max_votes_per_pair", 0)));
  o.max_user_share = c.get_double("max_user_share", 0);
  if (!(o.max_user_share >= 0 && o.max_user_share <= 1)) return Status::error("config.max_user_share: must be from 0 to 1");
  o.window_opens = c.get_string("window_opens");
  o.window_closes = c.get_string("window_closes");
  for (auto [key, text, out] : {std::tuple{"window_opens", &o.window_opens, &o.opens_ms}, std::tuple{"window_closes", &o.window_closes, &o.closes_ms}}) {
    if (text->empty()) continue;
    *out = parse_utc_time(*text);
    if (!*out)
      return Status::error(std::string("config.") + key + ": " + dq(*text) +
                           " is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])");
  }
  if (o.opens_ms && o.closes_ms && *o.closes_ms <= *o.opens_ms)
    return Status::error("config.window_closes: " + o.window_closes + " is not after window_opens " + o.window_opens);
  o.prior = c.get_double("prior", 0.5);
  if (!(o.prior >= 0) || !std::isfinite(o.prior)) return Status::error("config.prior: must be a finite number >= 0");
  int64_t r = c.get_int("resamples", 1000);
  if (r < 0 || r > 1000000) return Status::error("config.resamples: must be from 0 to 1000000");
  o.resamples = uint32_t(r);
  int64_t seed = c.get_int("seed", 1);
  if (seed < 0) return Status::error("config.seed: must be >= 0");
  o.seed = uint64_t(seed);
  std::string score = c.get_string("score", "battles");
  if (score == "battles") o.score = ScoreFrom::Battles;
  else if (score == "ratings") o.score = ScoreFrom::Ratings;
  else if (score == "blend") o.score = ScoreFrom::Blend;
  else return Status::error("config.score: " + dq(score) + " is not one of: battles, ratings, blend");
  o.battle_weight = c.get_double("battle_weight", 0.5);
  if (!(o.battle_weight >= 0 && o.battle_weight <= 1)) return Status::error("config.battle_weight: must be from 0 to 1");
  std::string scaling = c.get_string("scaling", "relative_to_best");
  if (scaling == "relative_to_best") o.scaling = Scaling::RelativeToBest;
  else if (scaling == "absolute") o.scaling = Scaling::Absolute;
  else return Status::error("config.scaling: " + dq(scaling) + " is not one of: relative_to_best, absolute");
  o.scale = c.get_double("scale", 25);
  if (!std::isfinite(o.scale) || !(o.scale > 0)) return Status::error("config.scale: must be a finite number above 0");
  int64_t listed = c.get_int("rejected_listed", 1000);
  if (listed < 0) return Status::error("config.rejected_listed: must be >= 0");
  o.rejected_listed = uint64_t(listed);

  bool intake = !o.intake_channel.empty();
  bool battles = !o.battles_files.empty() || intake, ratings = !o.ratings_files.empty() || intake;
  if (!battles && !ratings)
    return Status::error("config: no votes to read: give battles or ratings files, or an intake channel");
  if (o.score != ScoreFrom::Ratings && !battles)
    return Status::error("config.score: " + score + " needs battle votes: give battles files or an intake channel");
  if (o.score != ScoreFrom::Battles && !ratings)
    return Status::error("config.score: " + score + " needs ratings: give ratings files or an intake channel");
  return o;
}

Result<std::vector<Entrant>> roster_from_round(const Value& round) {
  std::vector<Entrant> out;
  if (const Value* r = round.find("roster"); r && r->is_array() && !r->as_array().empty()) {
    for (auto& e : r->as_array()) {
      std::string id = e.get_string("id");
      if (id.empty()) return Status::error("round roster: an entry has no id");
      std::string name = e.get_string("name");
      out.push_back({id, name.empty() ? id : name});
    }
  } else if (const Value* es = round.find("entrants"); es && es->is_array()) {
    for (auto& e : es->as_array()) {
      if (!e.is_string() || e.as_string().empty()) return Status::error("round entrants: an entry is not an entrant id");
      out.push_back({e.as_string(), e.as_string()});
    }
  }
  if (out.empty()) return Status::error("the round lists no entrants (job.round.roster and job.round.entrants are empty)");
  std::set<std::string> seen;
  for (auto& e : out)
    if (!seen.insert(e.id).second) return Status::error("round roster lists entrant " + dq(e.id) + " twice");
  return out;
}

// ---------------------------------------------------------------------------------------
// Names

std::string name_key(std::string_view text) {
  std::string s = lower_ascii(trim(text));
  // Collapse runs of blanks into one space.
  std::string flat;
  for (char c : s) {
    bool blank = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (blank && !flat.empty() && flat.back() == ' ') continue;
    flat += blank ? ' ' : c;
  }
  if (text::invalid_utf8_at(flat) != std::string::npos) return flat;
  // Hangul canonical composition (Unicode 3.12): L V -> LV, LV T -> LVT.
  constexpr char32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
  constexpr char32_t LCount = 19, VCount = 21, TCount = 28, SCount = LCount * VCount * TCount;
  std::vector<char32_t> in = decode_utf8(flat), out;
  for (char32_t c : in) {
    if (!out.empty()) {
      char32_t last = out.back();
      if (last >= LBase && last < LBase + LCount && c >= VBase && c < VBase + VCount) {
        out.back() = SBase + ((last - LBase) * VCount + (c - VBase)) * TCount;
        continue;
      }
      if (last >= SBase && last < SBase + SCount && (last - SBase) % TCount == 0 && c > TBase && c < TBase + TCount) {
        out.back() = last + (c - TBase);
        continue;
      }
    }
    out.push_back(c);
  }
  std::string key;
  for (char32_t c : out) append_utf8(key, c);
  return key;
}

EntrantIndex::EntrantIndex(const std::vector<Entrant>& roster) {
  for (uint32_t i = 0; i < roster.size(); ++i) {
    ids_.emplace(roster[i].id, i);
    for (const std::string* t : {&roster[i].id, &roster[i].name}) {
      auto& v = keys_[name_key(*t)];
      if (std::find(v.begin(), v.end(), i) == v.end()) v.push_back(i);
    }
  }
}

EntrantIndex::Found EntrantIndex::resolve(std::string_view text, uint32_t* index) const {
  if (auto it = ids_.find(std::string(text)); it != ids_.end()) {
    *index = it->second;
    return Found::Yes;
  }
  auto it = keys_.find(name_key(text));
  if (it == keys_.end()) return Found::Unknown;
  if (it->second.size() > 1) return Found::Ambiguous;
  *index = it->second[0];
  return Found::Yes;
}

// ---------------------------------------------------------------------------------------
// Ingestion

VoteSet::VoteSet(std::vector<Entrant> roster, VoteOptions options)
    : roster_(std::move(roster)), opt_(std::move(options)), index_(roster_) {}

std::string VoteSet::where(uint32_t source, const std::string& id) const {
  const Source& s = sources_[source];
  return s.format == "intake" ? s.path + "#" + id : s.path;
}

uint32_t VoteSet::intern_user(std::string_view user) {
  auto [it, added] = user_index_.try_emplace(std::string(user), uint32_t(users_.size()));
  if (added) users_.push_back(it->first);
  return it->second;
}

void VoteSet::reject(TypeCounts& c, uint32_t source, uint64_t line, const std::string& id, Reject code, std::string reason) {
  ++c.rejected[size_t(code)];
  ++c.rejected_total;
  rejected_.push_back({source, line, id, code, std::move(reason)});
}

// A CSV header without a required column would reject every row for the same reason: say it once.
static Status check_columns(const text::RecordFile& file, VoteType type) {
  if (file.format != "csv") return {};
  auto has = [&](const std::vector<std::string>& names) {
    return std::any_of(names.begin(), names.end(),
                       [&](const std::string& n) { return std::find(file.columns.begin(), file.columns.end(), n) != file.columns.end(); });
  };
  std::vector<std::vector<std::string>> need = {{"id"}, {"user"}};
  if (type == VoteType::Battle) need.insert(need.end(), {kA, kB, {"outcome"}});
  else need.insert(need.end(), {kEntrant, kScore});
  for (auto& n : need)
    if (!has(n)) {
      std::string cols;
      for (auto& c : file.columns) cols += (cols.empty() ? "" : ", ") + c;
      return Status::error(file.path + ":1: " + vote_type_name(type) + " file has no column " + dq(n[0]) +
                           (n.size() > 1 ? " (or " + n[1] + ")" : "") + "; its columns: " + cols);
    }
  return {};
}

Status VoteSet::add_file(const std::string& path, VoteType type) {
  // Streamed: a million votes held as record maps would take over a gigabyte.
  text::RecordFile file;
  bool started = false;
  uint32_t src = 0;
  std::string scratch;
  auto begin = [&]() -> Status {
    if (started) return {};
    started = true;
    if (auto st = check_columns(file, type); !st) return st;
    src = uint32_t(sources_.size());
    sources_.push_back({file.path, file.format, file.sha256, file.bytes, 0, type});
    return {};
  };
  auto st = text::scan_records(path, &file, [&](text::Record&& r) -> Status {
    if (auto st = begin(); !st) return st;
    ++sources_[src].records;
    add_row(r.fields, r.defect, type, src, r.line, field_view(r.fields, "id", scratch), nullptr);
    return {};
  });
  if (!st) return st;
  return begin();
}

Status VoteSet::add_records(const text::RecordFile& file, VoteType type) {
  if (auto st = check_columns(file, type); !st) return st;
  uint32_t src = uint32_t(sources_.size());
  sources_.push_back({file.path, file.format, file.sha256, file.bytes, file.records.size(), type});
  votes_.reserve(votes_.size() + file.records.size());
  by_id_[size_t(type)].reserve(by_id_[size_t(type)].size() + file.records.size());
  std::string scratch;
  for (auto& r : file.records) add_row(r.fields, r.defect, type, src, r.line, field_view(r.fields, "id", scratch), nullptr);
  return {};
}

void VoteSet::add_intake(const std::string& channel, const Value& record) {
  auto [it, added] = intake_sources_.emplace(channel, uint32_t(sources_.size()));
  if (added) sources_.push_back({"intake:" + channel, "intake", "", 0, 0, std::nullopt});
  uint32_t src = it->second;
  ++sources_[src].records;
  ++intake_records_;
  std::string id = trim(text::field_text(record, "id"));
  std::string type = lower_ascii(trim(text::field_text(record, "type")));
  std::string received = record.get_string("received_at");
  if (type == "rating") return add_row(record, "", VoteType::Rating, src, 0, id, &received);
  if (type == "battle") return add_row(record, "", VoteType::Battle, src, 0, id, &received);
  ++untyped_.records;
  reject(untyped_, src, 0, id, Reject::BadType,
         type.empty() ? "field \"type\" is missing (rating or battle)" : "type " + dq(type) + " is not rating or battle");
}

void VoteSet::add_row(const Value& fields, const std::string& defect, VoteType type, uint32_t src, uint64_t line,
                      std::string_view id, const std::string* received_at) {
  TypeCounts& c = counts_[size_t(type)];
  ++c.records;
  auto no = [&](Reject code, std::string why) { reject(c, src, line, std::string(id), code, std::move(why)); };
  if (!defect.empty()) return no(Reject::Malformed, defect);
  if (id.empty()) return no(Reject::MissingId, "field \"id\" is missing");
  std::string scratch;
  std::string_view user = field_view(fields, "user", scratch);
  if (user.empty()) return no(Reject::MissingUser, "field \"user\" is missing");
  uint32_t user_index = intern_user(user);  // before other fields reuse scratch

  Vote v;
  v.id = id;
  v.source = src;
  v.line = line;
  v.type = type;
  // Resolves one entrant field; false (row rejected) when it cannot.
  Pick p;
  auto entrant = [&](const std::vector<std::string>& names, uint32_t* out) {
    pick(fields, names, p);
    if (!p.conflict.empty()) return no(Reject::Malformed, p.conflict), false;
    if (!p.name) return no(Reject::MissingEntrant, "field " + dq(names[0]) + " is missing"), false;
    switch (index_.resolve(p.value, out)) {
      case EntrantIndex::Found::Yes: return true;
      case EntrantIndex::Found::Unknown:
        return no(Reject::UnknownEntrant, "entrant " + dq(p.value) + " (field " + dq(*p.name) + ") is not in the round's roster"), false;
      case EntrantIndex::Found::Ambiguous:
        return no(Reject::AmbiguousEntrant, "entrant " + dq(p.value) + " (field " + dq(*p.name) + ") matches several entrants by name"), false;
    }
    return false;
  };
  if (type == VoteType::Battle) {
    if (!entrant(kA, &v.a) || !entrant(kB, &v.b)) return;
    if (v.a == v.b) return no(Reject::SameEntrant, "a and b are the same entrant " + dq(roster_[v.a].id));
    std::string_view o = field_view(fields, "outcome", scratch);
    std::string lo = lower_ascii(std::string(o));
    if (lo == "a") v.outcome = Outcome::A;
    else if (lo == "b") v.outcome = Outcome::B;
    else if (lo == "tie") v.outcome = Outcome::Tie;
    else return no(Reject::BadOutcome, o.empty() ? "field \"outcome\" is missing (A, B or tie)" : "outcome " + dq(o) + " is not A, B or tie");
  } else {
    if (!entrant(kEntrant, &v.a)) return;
    pick(fields, kScore, p);
    if (!p.conflict.empty()) return no(Reject::Malformed, p.conflict);
    auto score = text::field_number(fields, p.name ? *p.name : kScore[0]);
    if (!score) return no(Reject::BadScore, score.error());
    if (*score < opt_.likert_min || *score > opt_.likert_max)
      return no(Reject::ScoreOutOfRange, "score " + fmt(*score) + " is outside the Likert scale [" + fmt(opt_.likert_min) + ", " + fmt(opt_.likert_max) + "]");
    v.score = *score;
  }
  std::string_view t = field_view(fields, "time", scratch);
  if (!t.empty()) {
    auto ms = parse_utc_time(t);
    if (!ms) return no(Reject::BadTime, "time " + dq(t) + " is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])");
    v.time_ms = *ms;
    v.has_time = v.explicit_time = true;
  } else if (received_at && !received_at->empty()) {
    auto ms = parse_utc_time(*received_at);
    if (!ms) return no(Reject::BadTime, "received_at " + dq(*received_at) + " is not an ISO 8601 time");
    v.time_ms = *ms;
    v.has_time = true;
  } else if (opt_.window()) {
    return no(Reject::MissingTime, "no time (field \"time\") while a voting window is set");
  }
  v.user = user_index;

  auto& ids = by_id_[size_t(type)];
  auto [it, fresh] = ids.try_emplace(v.id, uint32_t(votes_.size()));
  if (!fresh) {
    const Vote& first = votes_[it->second];
    bool same = first.user == v.user && first.a == v.a && first.b == v.b && first.outcome == v.outcome && first.score == v.score &&
                first.explicit_time == v.explicit_time && (!v.explicit_time || first.time_ms == v.time_ms);
    if (same) {
      ++c.duplicates;
      return;
    }
    std::string at = where(first.source, first.id) + (first.line ? ":" + std::to_string(first.line) : "");
    return no(Reject::ConflictingId, "id " + dq(id) + " already used by a " + vote_type_name(type) + " with other content (" + at + ")");
  }
  ++c.valid;
  votes_.push_back(std::move(v));
}

// ---------------------------------------------------------------------------------------
// Hygiene

void VoteSet::apply_hygiene() {
  if (hygiene_done_) return;
  hygiene_done_ = true;
  auto exclude = [&](Vote& v, Exclusion why) {
    v.excluded = why;
    auto& c = counts_[size_t(v.type)];
    ++c.excluded[size_t(why) - 1];
    ++c.excluded_total;
  };
  // 1. The window: [opens, closes), like the daemon's intake window.
  if (opt_.window())
    for (auto& v : votes_)
      if ((opt_.opens_ms && v.time_ms < *opt_.opens_ms) || (opt_.closes_ms && v.time_ms >= *opt_.closes_ms)) exclude(v, Exclusion::OutsideWindow);

  // 2. Share per user and type, counted once over all valid votes (before any exclusion), so
  // excluding one heavy voter never pushes another over the line.
  if (opt_.max_user_share > 0 && opt_.max_user_share < 1) {
    std::vector<std::array<uint64_t, 2>> per(users_.size(), {0, 0});
    for (auto& v : votes_) ++per[v.user][size_t(v.type)];
    for (VoteType t : {VoteType::Battle, VoteType::Rating}) {
      uint64_t total = counts_[size_t(t)].valid;
      for (uint32_t u = 0; u < users_.size(); ++u)
        if (double(per[u][size_t(t)]) > opt_.max_user_share * double(total))
          excluded_users_.push_back({users_[u], t, per[u][size_t(t)], total});
    }
    if (!excluded_users_.empty()) {
      std::vector<std::array<bool, 2>> out(users_.size(), {false, false});
      for (auto& e : excluded_users_) out[user_index_.at(e.user)][size_t(e.type)] = true;
      for (auto& v : votes_)
        if (v.excluded == Exclusion::None && out[v.user][size_t(v.type)]) exclude(v, Exclusion::UserShare);
    }
  }

  // 3. Votes per user and unordered pair (ratings: per user and entrant), earliest first. The
  // sort keys are packed once: comparing through the votes themselves is several times slower
  // at a million votes.
  if (opt_.max_votes_per_pair > 0) {
    struct Key {
      uint64_t group, pair;  // (type, user), (lo, hi)
      int64_t time;          // timed votes first (INT64_MAX for none), by time
      uint32_t vote;
    };
    std::vector<Key> keys;
    keys.reserve(votes_.size());
    for (uint32_t i = 0; i < votes_.size(); ++i) {
      const Vote& v = votes_[i];
      if (v.excluded != Exclusion::None) continue;
      uint64_t lo = v.type == VoteType::Rating ? v.a : std::min(v.a, v.b), hi = v.type == VoteType::Rating ? v.a : std::max(v.a, v.b);
      keys.push_back({(uint64_t(v.type) << 32) | v.user, (lo << 32) | hi, v.has_time ? v.time_ms : INT64_MAX, i});
    }
    std::sort(keys.begin(), keys.end(), [&](const Key& x, const Key& y) {
      if (x.group != y.group) return x.group < y.group;
      if (x.pair != y.pair) return x.pair < y.pair;
      const Vote &a = votes_[x.vote], &b = votes_[y.vote];
      if (a.has_time != b.has_time) return a.has_time;
      if (x.time != y.time) return x.time < y.time;
      return id_less(a.id, b.id);  // unique within a type
    });
    uint64_t run = 0;
    for (size_t k = 0; k < keys.size(); ++k) {
      bool same = k > 0 && keys[k].group == keys[k - 1].group && keys[k].pair == keys[k - 1].pair;
      run = same ? run + 1 : 1;
      if (run > opt_.max_votes_per_pair) exclude(votes_[keys[k].vote], Exclusion::PairLimit);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Aggregation

BattleTally tally_battles(const VoteSet& set) {
  size_t n = set.roster().size();
  BattleTally t(n);
  for (auto& v : set.votes()) {
    if (v.type != VoteType::Battle || v.excluded != Exclusion::None) continue;
    t.all.add(v.a, v.b, v.outcome);
    ++t.votes[v.a];
    ++t.votes[v.b];
    if (v.outcome == Outcome::Tie) {
      ++t.ties[v.a];
      ++t.ties[v.b];
    } else {
      uint32_t w = v.outcome == Outcome::A ? v.a : v.b, l = v.outcome == Outcome::A ? v.b : v.a;
      ++t.wins[w];
      ++t.losses[l];
    }
  }
  std::vector<int64_t> pos(n, -1);
  for (uint32_t i = 0; i < n; ++i)
    if (t.votes[i] > 0) {
      pos[i] = int64_t(t.field.size());
      t.field.push_back(i);
    }
  t.field_counts = PairCounts(t.field.size());
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t j = 0; j < n; ++j) {
      if (i == j || pos[i] < 0 || pos[j] < 0) continue;
      if (uint64_t w = t.all.wins(i, j)) t.field_counts.add(size_t(pos[i]), size_t(pos[j]), Outcome::A, w);
      if (i < j)
        if (uint64_t d = t.all.ties(i, j)) t.field_counts.add(size_t(pos[i]), size_t(pos[j]), Outcome::Tie, d);
    }
  return t;
}

std::vector<RunningMean> tally_ratings(const VoteSet& set) {
  std::vector<RunningMean> out(set.roster().size());
  for (auto& v : set.votes())
    if (v.type == VoteType::Rating && v.excluded == Exclusion::None) out[v.a].add(v.score);
  return out;
}

std::vector<double> field_win_probabilities(const std::vector<double>& s) {
  size_t n = s.size();
  std::vector<double> out(n, kNaN);
  if (n < 2) return out;
  for (size_t e = 0; e < n; ++e) {
    double sum = 0;
    for (size_t j = 0; j < n; ++j)
      if (j != e) sum += 1 / (1 + std::exp(s[j] - s[e]));
    out[e] = sum / double(n - 1);
  }
  return out;
}

Result<BattleFit> fit_battles(const BattleTally& t, const std::vector<Entrant>& roster, double prior) {
  size_t n = roster.size();
  BattleFit out;
  out.strength.assign(n, kNaN);
  out.win_prob.assign(n, kNaN);
  if (t.field.empty()) return out;
  auto fit = fit_bradley_terry(t.field_counts, prior);
  if (!fit) {
    std::string never_won, never_lost;
    for (uint32_t e : t.field) {
      if (t.wins[e] + t.ties[e] == 0) never_won += (never_won.empty() ? "" : ", ") + roster[e].id;
      if (t.losses[e] + t.ties[e] == 0) never_lost += (never_lost.empty() ? "" : ", ") + roster[e].id;
    }
    std::string why;
    if (!never_won.empty()) why += "never won: " + never_won;
    if (!never_lost.empty()) why += (why.empty() ? "" : "; ") + std::string("never lost: ") + never_lost;
    if (why.empty()) why = "the comparison graph is not strongly connected";
    return Status::error("battles: no finite Bradley-Terry estimate with prior " + fmt(prior) + " (" + why +
                         "); set prior above 0 to add virtual ties between every pair");
  }
  std::vector<double> wp = field_win_probabilities(fit->strength);
  for (size_t k = 0; k < t.field.size(); ++k) {
    out.strength[t.field[k]] = fit->strength[k];
    out.win_prob[t.field[k]] = wp[k];
  }
  out.iterations = fit->iterations;
  return out;
}

Result<BattleIntervals> bootstrap_battles(const BattleTally& t, const VoteOptions& opt, const Hooks& hooks) {
  size_t n = t.all.size();
  BattleIntervals out;
  out.strength.assign(n, {kNaN, kNaN});
  out.win_prob.assign(n, {kNaN, kNaN});
  if (t.field.empty() || opt.resamples == 0) return out;
  uint32_t step = std::max<uint32_t>(1, opt.resamples / 100);
  bool cancelled = false;
  auto keep_going = [&](uint32_t done) {
    if (hooks.progress && (done % step == 0 || done == opt.resamples)) hooks.progress(double(done), double(opt.resamples));
    if (hooks.cancelled && hooks.cancelled()) cancelled = true;
    return !cancelled;
  };
  BtDraws draws = bootstrap_draws(t.field_counts, opt.resamples, opt.seed, opt.prior, keep_going);
  if (cancelled) return Status::error("cancelled during the bootstrap (after " + std::to_string(draws.resamples) + " of " + std::to_string(opt.resamples) + " resamples)");
  out.resamples = draws.resamples;
  out.failed = draws.failed;
  size_t m = t.field.size();
  std::vector<std::vector<double>> s(m), w(m);
  for (auto& d : draws.strength) {
    std::vector<double> wp = field_win_probabilities(d);
    for (size_t k = 0; k < m; ++k) {
      s[k].push_back(d[k]);
      w[k].push_back(wp[k]);
    }
  }
  for (size_t k = 0; k < m; ++k) {
    out.strength[t.field[k]] = percentile_interval(std::move(s[k]));
    out.win_prob[t.field[k]] = percentile_interval(std::move(w[k]));
  }
  return out;
}

namespace {

Value counts_value(const TypeCounts& c) {
  Value v;
  v.set("records", c.records);
  v.set("valid", c.valid);
  v.set("duplicates", c.duplicates);
  Value rej = Map{};
  for (size_t r = 0; r < kRejectReasons; ++r) rej.set(reject_code(Reject(r)), c.rejected[r]);
  v.set("rejected", std::move(rej));
  v.set("rejected_total", c.rejected_total);
  Value exc = Map{};
  for (size_t e = 0; e < kExclusionReasons; ++e) exc.set(exclusion_code(Exclusion(e + 1)), c.excluded[e]);
  v.set("excluded", std::move(exc));
  v.set("excluded_total", c.excluded_total);
  v.set("counted", c.counted());
  return v;
}

TypeCounts operator+(TypeCounts a, const TypeCounts& b) {
  a.records += b.records;
  a.valid += b.valid;
  a.duplicates += b.duplicates;
  a.rejected_total += b.rejected_total;
  a.excluded_total += b.excluded_total;
  for (size_t r = 0; r < kRejectReasons; ++r) a.rejected[r] += b.rejected[r];
  for (size_t e = 0; e < kExclusionReasons; ++e) a.excluded[e] += b.excluded[e];
  return a;
}

std::string rule_text(const VoteOptions& o) {
  std::string u;
  std::string lik = "(mean rating - " + fmt(o.likert_min) + ") / (" + fmt(o.likert_max) + " - " + fmt(o.likert_min) + ")";
  std::string wp = "expected win probability against the field (Bradley-Terry: mean over the other entrants j of p_e / (p_e + p_j))";
  if (o.score == ScoreFrom::Battles) u = "u = " + wp;
  else if (o.score == ScoreFrom::Ratings) u = "u = " + lik;
  else u = "u = " + fmt(o.battle_weight) + " * " + wp + " + " + fmt(1 - o.battle_weight) + " * " + lik;
  std::string p = o.scaling == Scaling::RelativeToBest
                      ? "points = " + fmt(o.scale) + " * u / max u over complete entrants (the best entrant gets " + fmt(o.scale) + ")"
                      : "points = " + fmt(o.scale) + " * u";
  return u + "; " + p +
         "; points_ci maps the 95% interval of u (bootstrap percentiles for battles, the t-interval for ratings, "
         "the weighted interval ends for blend) through the same rule with the best u held fixed, within [0, scale]; "
         "an entrant without counted votes for the score gets no points (complete: false)";
}

}  // namespace

Result<Evaluation> evaluate(const VoteSet& set, const std::string& round_id, const Hooks& hooks) {
  const VoteOptions& o = set.options();
  const auto& roster = set.roster();
  size_t n = roster.size();
  BattleTally bt = tally_battles(set);
  std::vector<RunningMean> rt = tally_ratings(set);
  auto fit = fit_battles(bt, roster, o.prior);
  if (!fit) return fit.status();
  auto iv = bootstrap_battles(bt, o, hooks);
  if (!iv) return iv.status();

  // u and its interval per entrant, or why there is none.
  double span = o.likert_max - o.likert_min;
  auto clamp01 = [](double x) { return std::min(1.0, std::max(0.0, x)); };
  std::vector<double> u(n, kNaN);
  std::vector<std::pair<double, double>> u_ci(n, {kNaN, kNaN});
  std::vector<std::string> reason(n);
  for (size_t e = 0; e < n; ++e) {
    bool has_b = bt.votes[e] > 0, has_r = rt[e].n() > 0;
    double ub = fit->win_prob[e];
    auto ub_ci = iv->win_prob[e];
    double ur = has_r ? (rt[e].mean() - o.likert_min) / span : kNaN;
    double hw = rt[e].half_width();
    std::pair<double, double> ur_ci = {clamp01((rt[e].mean() - hw - o.likert_min) / span), clamp01((rt[e].mean() + hw - o.likert_min) / span)};
    if (!std::isfinite(hw)) ur_ci = {kNaN, kNaN};
    if (o.score == ScoreFrom::Battles) {
      if (!has_b) reason[e] = "no counted battle votes";
      u[e] = ub;
      u_ci[e] = ub_ci;
    } else if (o.score == ScoreFrom::Ratings) {
      if (!has_r) reason[e] = "no counted ratings";
      u[e] = ur;
      u_ci[e] = ur_ci;
    } else {
      if (!has_b && !has_r) reason[e] = "no counted battle votes or ratings";
      else if (!has_b) reason[e] = "no counted battle votes (blend needs battles and ratings)";
      else if (!has_r) reason[e] = "no counted ratings (blend needs battles and ratings)";
      double w = o.battle_weight;
      u[e] = w * ub + (1 - w) * ur;
      u_ci[e] = {w * ub_ci.first + (1 - w) * ur_ci.first, w * ub_ci.second + (1 - w) * ur_ci.second};
    }
    if (!reason[e].empty()) {
      u[e] = kNaN;
      u_ci[e] = {kNaN, kNaN};
    }
  }
  double best = 0;
  for (size_t e = 0; e < n; ++e)
    if (reason[e].empty()) best = std::max(best, u[e]);
  // relative_to_best: the best gets scale exactly (u / u == 1); when every u is 0, all get 0.
  auto to_points = [&](double x) {
    if (!std::isfinite(x)) return kNaN;
    double p = o.scaling == Scaling::Absolute ? o.scale * x : best > 0 ? o.scale * (x / best) : 0.0;
    return std::min(o.scale, std::max(0.0, p));
  };
  std::vector<double> points(n, kNaN);
  for (size_t e = 0; e < n; ++e) points[e] = to_points(u[e]);

  Evaluation ev;
  for (size_t e = 0; e < n; ++e) {
    Value b;
    b.set("votes", bt.votes[e]);
    b.set("wins", bt.wins[e]);
    b.set("losses", bt.losses[e]);
    b.set("ties", bt.ties[e]);
    b.set("strength", num(fit->strength[e]));
    b.set("ci", interval(iv->strength[e]));
    b.set("win_prob", num(fit->win_prob[e]));
    b.set("win_prob_ci", interval(iv->win_prob[e]));
    Value r;
    r.set("n", rt[e].n());
    r.set("mean", rt[e].n() ? Value(rt[e].mean()) : Value());
    r.set("sd", num(rt[e].sd()));
    double hw = rt[e].half_width();
    r.set("ci", interval({rt[e].mean() - hw, rt[e].mean() + hw}));
    Value p;
    p.set("entrant", roster[e].id);
    p.set("name", roster[e].name);
    p.set("complete", reason[e].empty());
    if (!reason[e].empty()) p.set("reason", reason[e]);
    p.set("points", num(points[e]));
    p.set("points_ci", interval({to_points(u_ci[e].first), to_points(u_ci[e].second)}));
    p.set("scale", o.scale);
    p.set("u", num(u[e]));
    p.set("u_ci", interval(u_ci[e]));
    Value rank;
    if (reason[e].empty()) {
      int64_t above = 0;
      for (size_t j = 0; j < n; ++j)
        if (reason[j].empty() && points[j] > points[e]) ++above;
      rank = Value(above + 1);
    }
    p.set("rank", rank);
    p.set("battles", std::move(b));
    p.set("ratings", std::move(r));
    ev.entrants.push_back(std::move(p));
  }

  Value s;
  s.set("round", round_id);
  s.set("method", "battles: Bradley-Terry maximum likelihood (minorisation-maximisation), a tie half a win to each side, " + fmt(o.prior) +
                      " virtual ties between every pair of entrants with counted battles (prior); 95% percentile bootstrap of " +
                      std::to_string(o.resamples) + " multinomial resamples of the counted votes (seed " + std::to_string(o.seed) +
                      "); ratings: mean with a 95% Student t-interval (undefined below 2 ratings)");
  const char* score = o.score == ScoreFrom::Battles ? "battles" : o.score == ScoreFrom::Ratings ? "ratings" : "blend";
  s.set("score", score);
  if (o.score == ScoreFrom::Blend) s.set("battle_weight", o.battle_weight);
  s.set("scaling", o.scaling == Scaling::Absolute ? "absolute" : "relative_to_best");
  s.set("rule", rule_text(o));
  s.set("scale", o.scale);
  s.set("resamples", int64_t(o.resamples));
  s.set("seed", o.seed);
  s.set("prior", o.prior);
  Value lik;
  lik.set("min", o.likert_min);
  lik.set("max", o.likert_max);
  s.set("likert", std::move(lik));
  Value hyg;
  hyg.set("max_votes_per_pair", o.max_votes_per_pair);
  hyg.set("max_user_share", o.max_user_share);
  hyg.set("window_opens", o.window_opens);
  hyg.set("window_closes", o.window_closes);
  s.set("hygiene", std::move(hyg));
  Value counts;
  counts.set("battles", counts_value(set.counts(VoteType::Battle)));
  counts.set("ratings", counts_value(set.counts(VoteType::Rating)));
  counts.set("total", counts_value(set.counts(VoteType::Battle) + set.counts(VoteType::Rating) + set.untyped()));
  s.set("counts", std::move(counts));
  Array xu;
  for (auto& x : set.excluded_users()) {
    Value v;
    v.set("user", x.user);
    v.set("type", vote_type_name(x.type));
    v.set("votes", x.votes);
    v.set("of", x.total);
    v.set("share", double(x.votes) / double(x.total));
    xu.push_back(std::move(v));
  }
  s.set("excluded_users", std::move(xu));
  Value wr;
  Array ids, matrix, games;
  for (size_t i = 0; i < n; ++i) {
    ids.push_back(roster[i].id);
    Array row, grow;
    for (size_t j = 0; j < n; ++j) {
      row.push_back(i == j ? Value() : num(win_rate(bt.all, i, j)));
      grow.push_back(i == j ? uint64_t(0) : bt.all.wins(i, j) + bt.all.wins(j, i) + bt.all.ties(i, j));
    }
    matrix.push_back(std::move(row));
    games.push_back(std::move(grow));
  }
  wr.set("entrants", std::move(ids));
  wr.set("matrix", std::move(matrix));
  wr.set("games", std::move(games));
  s.set("win_rate", std::move(wr));
  Value boot;
  boot.set("resamples", int64_t(iv->resamples));
  boot.set("failed", int64_t(iv->failed));
  boot.set("field", int64_t(bt.field.size()));
  boot.set("fit_iterations", int64_t(fit->iterations));
  s.set("bootstrap", std::move(boot));
  Array inputs;
  for (auto& src : set.sources()) {
    if (src.format == "intake") continue;
    Value v;
    v.set("path", src.path);
    v.set("type", src.type ? vote_type_name(*src.type) : "");
    v.set("format", src.format);
    v.set("sha256", src.sha256);
    v.set("bytes", src.bytes);
    v.set("records", src.records);
    inputs.push_back(std::move(v));
  }
  s.set("inputs", std::move(inputs));
  Value intake;
  intake.set("channel", o.intake_channel);
  intake.set("records", set.intake_records());
  s.set("intake", std::move(intake));
  // Ranking of complete entrants, best first; ties keep roster order.
  std::vector<size_t> order;
  for (size_t e = 0; e < n; ++e)
    if (reason[e].empty()) order.push_back(e);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return points[a] > points[b]; });
  Array ranking, incomplete;
  for (size_t e : order) {
    Value v;
    v.set("entrant", roster[e].id);
    v.set("points", points[e]);
    v.set("rank", *ev.entrants[e].find("rank"));
    ranking.push_back(std::move(v));
  }
  for (size_t e = 0; e < n; ++e)
    if (!reason[e].empty()) {
      Value v;
      v.set("entrant", roster[e].id);
      v.set("reason", reason[e]);
      incomplete.push_back(std::move(v));
    }
  s.set("ranking", std::move(ranking));
  s.set("incomplete", std::move(incomplete));

  Array listed;
  for (auto& r : set.rejections()) {
    Value v;
    v.set("file", set.where(r.source, r.id));
    v.set("line", r.line ? Value(r.line) : Value());
    v.set("id", r.id);
    v.set("code", reject_code(r.code));
    v.set("reason", r.reason);
    if (listed.size() < o.rejected_listed) listed.push_back(v);
    ev.rejected.push_back(std::move(v));
  }
  s.set("rejected", std::move(listed));
  s.set("rejected_total", uint64_t(ev.rejected.size()));
  ev.summary = std::move(s);
  return ev;
}

Result<std::string> write_artifact(Evaluation& ev, const std::string& dir, const std::string& name) {
  Value full = ev.summary;
  full.set("entrants", Value(Array(ev.entrants.begin(), ev.entrants.end())));
  full.set("rejected", Value(ev.rejected));
  std::string json = to_json(full);
  json += '\n';
  std::filesystem::path path = std::filesystem::path(dir) / name;
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json;
  out.close();
  if (!out) return Status::error(path.string() + ": cannot write the user evaluation artifact");
  ev.summary.set("artifact", path.string());
  ev.summary.set("artifact_sha256", text::sha256_hex(json));
  return path.string();
}

}  // namespace evald::scores
