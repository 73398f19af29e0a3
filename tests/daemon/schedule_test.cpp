// Cron expressions and the catch-up rule of schedules.
#include "schedule.hpp"

#include <evald/time.hpp>

#include <gtest/gtest.h>

using namespace evald;
using namespace evald::daemon;

namespace {

int64_t at(const char* iso) { return *parse_utc_time(iso); }

std::string next(const char* cron, const char* after) {
  auto c = CronExpr::parse(cron);
  EXPECT_TRUE(c.ok()) << c.error();
  auto n = c->next_after(at(after));
  return n ? format_utc_time(*n) : "never";
}

}  // namespace

TEST(Cron, NextTimes) {
  // 2026-11-26 is a Thursday.
  EXPECT_EQ(next("0 9 * * 1", "2026-11-26T12:00:00Z"), "2026-11-30T09:00:00.000Z");
  EXPECT_EQ(next("*/15 * * * *", "2026-11-26T12:07:30Z"), "2026-11-26T12:15:00.000Z");
  EXPECT_EQ(next("*/15 * * * *", "2026-11-26T12:15:00Z"), "2026-11-26T12:30:00.000Z") << "strictly after";
  EXPECT_EQ(next("0 0 1 1 *", "2026-11-26T12:00:00Z"), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(next("30 18 * * 7", "2026-11-26T12:00:00Z"), "2026-11-29T18:30:00.000Z") << "7 is Sunday too";
  EXPECT_EQ(next("0 12 1-5,15 * *", "2026-11-26T12:00:00Z"), "2026-12-01T12:00:00.000Z");
  EXPECT_EQ(next("5/20 * * * *", "2026-11-26T12:06:00Z"), "2026-11-26T12:25:00.000Z");
  // Both day fields restricted: either matches (the 1st, or a Friday).
  EXPECT_EQ(next("0 0 1 * 5", "2026-11-26T12:00:00Z"), "2026-11-27T00:00:00.000Z");
  EXPECT_EQ(next("0 0 29 2 *", "2026-11-26T12:00:00Z"), "2028-02-29T00:00:00.000Z") << "the next leap day";
  EXPECT_EQ(next("0 0 30 2 *", "2026-11-26T12:00:00Z"), "never");
}

TEST(Cron, ErrorsNameTheField) {
  auto err = [](const char* text) {
    auto c = CronExpr::parse(text);
    return c.ok() ? std::string() : c.error();
  };
  EXPECT_NE(err("* * * *").find("expected 5 fields"), std::string::npos);
  EXPECT_NE(err("60 * * * *").find("minute field \"60\": 60-60 is outside 0-59"), std::string::npos) << err("60 * * * *");
  EXPECT_NE(err("* 24 * * *").find("hour field"), std::string::npos);
  EXPECT_NE(err("* * 0 * *").find("day-of-month field"), std::string::npos);
  EXPECT_NE(err("* * * 1-13 *").find("month field"), std::string::npos);
  EXPECT_NE(err("* * * * mon").find("day-of-week field \"mon\": \"mon\" is not a number"), std::string::npos) << err("* * * * mon");
  EXPECT_NE(err("*/0 * * * *").find("step \"0\""), std::string::npos);
  EXPECT_NE(err("5-1 * * * *").find("5-1 is outside"), std::string::npos);
}

TEST(Schedule, DueLateMissedAndCaughtUp) {
  Value rec;
  rec.set("state", "active");
  rec.set("at", "2026-11-26T10:00:00Z");
  rec.set("next_due_ms", at("2026-11-26T10:00:00Z"));
  rec.set("catch_up", "once");
  auto early = schedule_step(rec, at("2026-11-26T09:59:59Z"));
  EXPECT_FALSE(early.fire);
  auto on_time = schedule_step(rec, at("2026-11-26T10:00:01Z"));
  EXPECT_TRUE(on_time.fire);
  EXPECT_FALSE(on_time.missed);
  EXPECT_FALSE(on_time.next_due_ms) << "a one-off schedule is done";
  auto after_outage = schedule_step(rec, at("2026-11-26T13:00:00Z"));
  EXPECT_TRUE(after_outage.missed);
  EXPECT_TRUE(after_outage.fire) << "catch_up once: one run at the next start";
  rec.set("catch_up", "skip");
  EXPECT_FALSE(schedule_step(rec, at("2026-11-26T13:00:00Z")).fire);

  // A recurring schedule missed three times while down runs once (or not), then waits for
  // the next time after now.
  Value daily;
  daily.set("state", "active");
  daily.set("cron", "0 9 * * *");
  daily.set("catch_up", "once");
  daily.set("next_due_ms", at("2026-11-23T09:00:00Z"));
  auto s = schedule_step(daily, at("2026-11-26T12:00:00Z"));
  EXPECT_TRUE(s.fire);
  EXPECT_TRUE(s.missed);
  ASSERT_TRUE(s.next_due_ms);
  EXPECT_EQ(format_utc_time(*s.next_due_ms), "2026-11-27T09:00:00.000Z");
}
