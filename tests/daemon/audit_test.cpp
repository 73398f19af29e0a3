#include "audit.hpp"

#include <gtest/gtest.h>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::daemon;

namespace {
void append(Store& s, AuditLog& log, int n) {
  for (int i = 0; i < n; ++i) {
    auto b = s.batch();
    Value d;
    d.set("i", i);
    b.put(Family::Competitions, std::string_view("c" + std::to_string(i)), std::string_view("x"));
    ASSERT_TRUE(log.commit(b, "alice", "test.append", d).ok());
  }
}
}  // namespace

TEST(AuditLog, ChainVerifiesAndSurvivesReopen) {
  test::TempDir tmp;
  {
    auto s = Store::open(tmp.path());
    auto log = AuditLog::open(**s);
    append(**s, **log, 5);
    auto v = (*log)->verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.entries, 5u);
  }
  auto s = Store::open(tmp.path());
  auto log = AuditLog::open(**s);
  append(**s, **log, 2);
  auto v = (*log)->verify();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.entries, 7u);
  auto entries = (*log)->list(6, 10);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].get_string("actor"), "alice");
  // The state change and its entry landed together.
  EXPECT_TRUE((*s)->get(Family::Competitions, "c4")->has_value());
}

TEST(AuditLog, EditedEntryIsDetected) {
  test::TempDir tmp;
  auto s = Store::open(tmp.path());
  auto log = AuditLog::open(**s);
  append(**s, **log, 4);
  auto raw = (*s)->get_value(Family::Audit, "0000000000000002");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  Value e = **raw;
  e.set("actor", "mallory");
  auto b = (*s)->batch();
  b.put(Family::Audit, std::string_view("0000000000000002"), e);
  ASSERT_TRUE((*s)->write(b).ok());
  auto v = (*log)->verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.entries, 1u);
  EXPECT_NE(v.problem.find("entry 2: content does not match its hash"), std::string::npos) << v.problem;
}

TEST(AuditLog, RemovedEntryIsDetected) {
  test::TempDir tmp;
  auto s = Store::open(tmp.path());
  auto log = AuditLog::open(**s);
  append(**s, **log, 4);
  ASSERT_TRUE((*s)->del(Family::Audit, "0000000000000002").ok());
  auto v = (*log)->verify();
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("expected sequence 2"), std::string::npos) << v.problem;
}
