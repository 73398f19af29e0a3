#include "schedule.hpp"

#include <ctime>
#include <sstream>
#include <vector>

namespace evald::daemon {

namespace {

// Parses one field into bits [lo, hi]; any is set when the field is "*" (or "*/1").
template <size_t N>
Status parse_field(const std::string& field, const char* name, int lo, int hi, std::bitset<N>& bits, bool& any) {
  any = field == "*" || field == "*/1";
  auto bad = [&](const std::string& why) { return Status::error("cron " + std::string(name) + " field \"" + field + "\": " + why); };
  auto number = [&](const std::string& s, int& out) {
    if (s.empty() || s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::stoi(s);
    return true;
  };
  std::stringstream ss(field);
  std::string part;
  bool seen = false;
  while (std::getline(ss, part, ',')) {
    seen = true;
    int step = 1;
    if (size_t slash = part.find('/'); slash != std::string::npos) {
      if (!number(part.substr(slash + 1), step) || step == 0) return bad("step \"" + part.substr(slash + 1) + "\" is not a positive number");
      part = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (part != "*") {
      if (size_t dash = part.find('-'); dash != std::string::npos) {
        if (!number(part.substr(0, dash), a) || !number(part.substr(dash + 1), b)) return bad("\"" + part + "\" is not a range a-b");
      } else {
        if (!number(part, a)) return bad("\"" + part + "\" is not a number");
        b = step > 1 ? hi : a;
      }
    }
    if (a < lo || b > hi || a > b)
      return bad(std::to_string(a) + "-" + std::to_string(b) + " is outside " + std::to_string(lo) + "-" + std::to_string(hi));
    for (int v = a; v <= b; v += step) bits.set(size_t(v));
  }
  if (!seen) return bad("empty");
  return {};
}

}  // namespace

Result<CronExpr> CronExpr::parse(const std::string& text) {
  std::stringstream ss(text);
  std::vector<std::string> f;
  std::string x;
  while (ss >> x) f.push_back(x);
  if (f.size() != 5) return Status::error("cron \"" + text + "\": expected 5 fields (minute hour day-of-month month day-of-week), found " + std::to_string(f.size()));
  CronExpr c;
  c.text_ = text;
  bool any = false;
  if (auto st = parse_field(f[0], "minute", 0, 59, c.minute_, any); !st) return st;
  if (auto st = parse_field(f[1], "hour", 0, 23, c.hour_, any); !st) return st;
  if (auto st = parse_field(f[2], "day-of-month", 1, 31, c.dom_, c.dom_any_); !st) return st;
  if (auto st = parse_field(f[3], "month", 1, 12, c.month_, any); !st) return st;
  std::bitset<8> dow;
  if (auto st = parse_field(f[4], "day-of-week", 0, 7, dow, c.dow_any_); !st) return st;
  for (size_t d = 0; d < 7; ++d) c.dow_[d] = dow[d];
  if (dow[7]) c.dow_[0] = true;
  return c;
}

std::optional<int64_t> CronExpr::next_after(int64_t after_ms) const {
  int64_t t = (after_ms / 60000 + 1) * 60;  // seconds, the next whole minute
  for (int64_t i = 0; i < int64_t(5) * 366 * 24 * 60; ++i, t += 60) {
    std::time_t tt = std::time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    if (!month_[size_t(tm.tm_mon + 1)] || !hour_[size_t(tm.tm_hour)] || !minute_[size_t(tm.tm_min)]) continue;
    bool dom = dom_[size_t(tm.tm_mday)], dow = dow_[size_t(tm.tm_wday)];
    bool day = dom_any_ && dow_any_ ? true : dom_any_ ? dow : dow_any_ ? dom : (dom || dow);
    if (day) return t * 1000;
  }
  return std::nullopt;
}

ScheduleStep schedule_step(const Value& rec, int64_t now_ms) {
  ScheduleStep s;
  int64_t due = rec.get_int("next_due_ms");
  s.next_due_ms = due;
  if (rec.get_string("state") != "active" || due > now_ms) return s;
  s.missed = now_ms - due > kScheduleGraceMs;
  s.fire = !s.missed || rec.get_string("catch_up", "once") == "once";
  s.next_due_ms.reset();
  if (std::string cron = rec.get_string("cron"); !cron.empty())
    if (auto c = CronExpr::parse(cron)) s.next_due_ms = c->next_after(now_ms);
  return s;
}

}  // namespace evald::daemon
