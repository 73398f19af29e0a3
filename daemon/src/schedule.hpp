// Schedules: a round started at a given time, or again and again by a cron expression (for
// recurring evaluation). Stored in the store's schedules family, so they survive restarts; the
// daemon checks them every second. A schedule that came due while the daemon was down follows
// its catch-up policy: `once` starts one run at the next start however many times it was
// missed, `skip` starts none and waits for the next time.
#pragma once

#include <evald/value.hpp>

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>

namespace evald::daemon {

// A five-field cron expression (minute hour day-of-month month day-of-week), read in UTC:
// each field is *, a number, a range a-b, a step */s or a-b/s, or a comma list of those;
// day-of-week 0-7 with 0 and 7 for Sunday. As in Vixie cron, when both day fields are
// restricted a day matching either counts.
class CronExpr {
 public:
  // An error names the field and what is wrong.
  static Result<CronExpr> parse(const std::string& text);
  // The first minute strictly after after_ms that matches, in ms since the epoch; nullopt
  // when none does within five years (e.g. 30 February).
  std::optional<int64_t> next_after(int64_t after_ms) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> minute_;
  std::bitset<24> hour_;
  std::bitset<32> dom_;
  std::bitset<13> month_;
  std::bitset<7> dow_;
  bool dom_any_ = true, dow_any_ = true;
};

// A schedule missed by more than this was missed (the daemon was down), not merely late.
constexpr int64_t kScheduleGraceMs = 60'000;

// What a due schedule should do now: start a run or not, and its next due time (nullopt:
// done). record is the stored schedule ({at | cron, catch_up, next_due_ms, ...}).
struct ScheduleStep {
  bool fire = false;
  bool missed = false;  // came due more than kScheduleGraceMs ago
  std::optional<int64_t> next_due_ms;
};
ScheduleStep schedule_step(const Value& record, int64_t now_ms);

}  // namespace evald::daemon
