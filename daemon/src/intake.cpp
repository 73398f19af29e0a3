#include "intake.hpp"

#include "util.hpp"

#include <evald/time.hpp>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>

namespace evald::daemon {

namespace {

constexpr size_t kMaxRecordsPerRequest = 10000;
constexpr size_t kMaxRecordBytes = 64 * 1024;
constexpr size_t kMaxIdBytes = 128;

std::string window_key(const std::string& c, const std::string& r, const std::string& ch) {
  return "w/" + c + "/" + r + "/" + ch;
}

// Record ids come from outside systems (UUIDs, ballot numbers): printable ASCII without
// spaces or '/', so they stay one key component.
Status check_record_id(const Value& rec) {
  auto* id = rec.find("id");
  if (!id || !id->is_string() || id->as_string().empty()) return Status::error("record has no string \"id\"");
  const std::string& s = id->as_string();
  if (s.size() > kMaxIdBytes) return Status::error("id longer than " + std::to_string(kMaxIdBytes) + " bytes");
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7F || c == '/') return Status::error("id \"" + s + "\" has a character other than printable ASCII without space and '/'");
  return {};
}

}  // namespace

std::string intake_record_prefix(const std::string& competition, const std::string& round, const std::string& channel) {
  return "r/" + competition + "/" + round + "/" + channel + "/";
}

Result<Value> Intake::window(const std::string& key) const {
  auto w = store_.get_value(Family::Intake, key);
  if (!w) return w.status();
  return *w ? **w : Value();
}

Result<Value> Intake::open(const std::string& comp, const std::string& round, const std::string& channel,
                           const std::string& closes, const std::string& actor) {
  if (auto st = check_id("channel", channel); !st) return st;
  std::optional<int64_t> closes_ms;
  if (!closes.empty()) {
    closes_ms = parse_utc_time(closes);
    if (!closes_ms) return Status::error("closes \"" + closes + "\" is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)");
    if (*closes_ms <= now_ms()) return Status::error("closes " + closes + " is already past");
  }
  std::lock_guard lock(mu_);
  auto r = store_.get(Family::Rounds, comp + "/" + round);
  if (!r) return r.status();
  if (!*r) return Status::error("no round \"" + round + "\" in competition \"" + comp + "\"");
  std::string key = window_key(comp, round, channel);
  auto w = window(key);
  if (!w) return w.status();
  if (w->get_string("state") == "open")
    return Status::error("intake window " + channel + " of round " + round + " is already open (since " + w->get_string("opened") + ")");
  Value rec = w->is_map() ? *w : Value(Map{});
  rec.set("competition", comp);
  rec.set("round", round);
  rec.set("channel", channel);
  rec.set("state", "open");
  rec.set("opened", now_iso8601());
  rec.set("opened_by", actor);
  rec.set("closes", closes_ms ? format_utc_time(*closes_ms) : std::string());
  if (!rec.find("count")) rec.set("count", int64_t(0));
  auto b = store_.batch();
  b.put(Family::Intake, key, rec);
  if (auto st = audit_.commit(b, actor, "intake.open", rec); !st) return st;
  return rec;
}

Result<Value> Intake::close(const std::string& comp, const std::string& round, const std::string& channel,
                            const std::string& actor) {
  std::lock_guard lock(mu_);
  std::string key = window_key(comp, round, channel);
  auto w = window(key);
  if (!w) return w.status();
  if (w->get_string("state") != "open")
    return Status::error("intake window " + channel + " of round " + round + " is not open");
  Value rec = *w;
  rec.set("state", "closed");
  rec.set("closed", now_iso8601());
  rec.set("closed_by", actor);
  auto b = store_.batch();
  b.put(Family::Intake, key, rec);
  if (auto st = audit_.commit(b, actor, "intake.close", rec); !st) return st;
  return rec;
}

Result<Value> Intake::submit(const std::string& comp, const std::string& round, const std::string& channel,
                             const Value& records, const std::string& actor) {
  if (!records.is_array()) return Status::error("request field \"records\" must be an array of maps");
  if (records.as_array().size() > kMaxRecordsPerRequest)
    return Status::error(std::to_string(records.as_array().size()) + " records in one request; at most " +
                         std::to_string(kMaxRecordsPerRequest));
  std::lock_guard lock(mu_);
  std::string key = window_key(comp, round, channel);
  auto w = window(key);
  if (!w) return w.status();
  if (!w->is_map()) return Status::error("intake window " + channel + " of round " + round + " was never opened (evalctl intake open)");
  if (w->get_string("state") != "open")
    return Status::error("intake window " + channel + " of round " + round + " is closed (since " + w->get_string("closed") + ")");
  std::string closes = w->get_string("closes");
  if (!closes.empty()) {
    auto at = parse_utc_time(closes);
    if (at && now_ms() >= *at) return Status::error("intake window " + channel + " of round " + round + " closed at " + closes);
  }

  const std::string prefix = intake_record_prefix(comp, round, channel);
  const std::string received = now_iso8601();
  auto b = store_.batch();
  std::map<std::string, Bytes> in_request;  // id -> content, for repeats within one request
  int64_t accepted = 0, duplicates = 0;
  Array rejected;
  auto reject = [&](size_t i, const std::string& id, const std::string& why) {
    Value r;
    r.set("index", int64_t(i));
    r.set("id", id);
    r.set("reason", why);
    rejected.push_back(std::move(r));
  };
  const auto& arr = records.as_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const Value& rec = arr[i];
    if (!rec.is_map()) {
      reject(i, "", "record is not a map");
      continue;
    }
    if (auto st = check_record_id(rec); !st) {
      reject(i, rec.get_string("id"), st.message());
      continue;
    }
    std::string id = rec.get_string("id");
    if (rec.find("received_at")) {
      reject(i, id, "\"received_at\" is set by the daemon, not the client");
      continue;
    }
    Bytes content = msgpack::encode(rec);
    if (content.size() > kMaxRecordBytes) {
      reject(i, id, "record of " + std::to_string(content.size()) + " bytes; at most " + std::to_string(kMaxRecordBytes));
      continue;
    }
    std::optional<Bytes> earlier;
    if (auto it = in_request.find(id); it != in_request.end()) {
      earlier = it->second;
    } else {
      auto stored = store_.get_value(Family::Intake, prefix + id);
      if (!stored) return stored.status();
      if (*stored) {
        Value old = **stored;
        old.as_map().erase("received_at");
        earlier = msgpack::encode(old);
      }
    }
    if (earlier) {
      if (*earlier == content) ++duplicates;
      else reject(i, id, "id already used by a record with other content (a record is never changed once stored)");
      continue;
    }
    in_request.emplace(id, content);
    Value stored = rec;
    stored.set("received_at", received);
    b.put(Family::Intake, prefix + id, stored);
    ++accepted;
  }
  Value win = *w;
  win.set("count", w->get_int("count") + accepted);
  Value d;
  d.set("competition", comp);
  d.set("round", round);
  d.set("channel", channel);
  d.set("accepted", accepted);
  d.set("duplicates", duplicates);
  d.set("rejected", int64_t(rejected.size()));
  Bytes all = msgpack::encode(records);
  d.set("records_sha256", sha256_hex(std::string_view(reinterpret_cast<const char*>(all.data()), all.size())));
  if (accepted > 0) {
    b.put(Family::Intake, key, win);
    if (auto st = audit_.commit(b, actor, "intake.submit", d); !st) return st;
  }
  d.set("count", win.get_int("count"));
  d.set("rejected", std::move(rejected));
  return d;
}

Result<Value> Intake::record_decision(const std::string& comp, const std::string& round, const std::string& entrant,
                                     const std::string& decision, const std::string& reason, const std::string& actor) {
  static const char* const kDecisions[] = {"advance", "eliminate", "disqualify", "count_missing_as_zero", "accept_inconclusive"};
  if (std::find(std::begin(kDecisions), std::end(kDecisions), decision) == std::end(kDecisions))
    return Status::error("decision \"" + decision + "\" is not advance, eliminate, disqualify, count_missing_as_zero or accept_inconclusive");
  if (reason.find_first_not_of(" \t\n") == std::string::npos) return Status::error("a decision needs a reason");
  std::lock_guard lock(mu_);
  auto r = store_.get_value(Family::Rounds, comp + "/" + round);
  if (!r) return r.status();
  if (!*r) return Status::error("no round \"" + round + "\" in competition \"" + comp + "\"");
  bool listed = false;
  if (auto* es = (*r)->find("entrants"); es && es->is_array())
    for (auto& e : es->as_array()) listed |= e.is_string() && e.as_string() == entrant;
  if (!listed) return Status::error("entrant \"" + entrant + "\" is not in the roster of round " + round);
  const std::string prefix = intake_record_prefix(comp, round, "decisions");
  auto last = store_.last(Family::Intake, prefix + "d-");
  uint64_t n = 1;
  if (last) n = std::stoull(last->first.substr(prefix.size() + 2)) + 1;
  Value rec;
  rec.set("id", "d-" + zero_pad(n, 6));
  rec.set("entrant", entrant);
  rec.set("decision", decision);
  rec.set("reason", reason);
  rec.set("by", actor);
  rec.set("received_at", now_iso8601());
  auto b = store_.batch();
  b.put(Family::Intake, prefix + rec.get_string("id"), rec);
  Value d = rec;
  d.set("competition", comp);
  d.set("round", round);
  if (auto st = audit_.commit(b, actor, "decision.record", d); !st) return st;
  return rec;
}

Result<Value> Intake::status(const std::string& comp, const std::string& round, const std::string& channel) const {
  Array out;
  std::string prefix = "w/" + comp + "/" + round + "/" + channel;
  auto st = store_.scan(Family::Intake, prefix, [&](std::string_view, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (v && (channel.empty() || v->get_string("channel") == channel)) out.push_back(std::move(*v));
    return true;
  });
  if (!st) return st;
  return Value(std::move(out));
}

}  // namespace evald::daemon
