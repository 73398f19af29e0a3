#include "store.hpp"

#include <gtest/gtest.h>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::daemon;

TEST(Store, BatchIsAtomicAndDurableAcrossReopen) {
  test::TempDir tmp;
  {
    auto s = Store::open(tmp.path());
    ASSERT_TRUE(s.ok()) << s.error();
    auto b = (*s)->batch();
    Value v;
    v.set("state", "done");
    b.put(Family::Jobs, std::string_view("run-1/a/x"), v);
    b.put(Family::Messages, std::string_view("run-1/a/x/00000000"), std::string_view("m"));
    ASSERT_TRUE((*s)->write(b).ok());
  }
  auto s = Store::open(tmp.path());
  ASSERT_TRUE(s.ok());
  auto v = (*s)->get_value(Family::Jobs, "run-1/a/x");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((**v).get_string("state"), "done");
  auto missing = (*s)->get(Family::Jobs, "nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST(Store, SecondOpenOfTheSameDirIsRefusedClearly) {
  test::TempDir tmp;
  auto a = Store::open(tmp.path());
  ASSERT_TRUE(a.ok());
  auto b = Store::open(tmp.path());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().find("in use by another evald process"), std::string::npos) << b.error();
}

TEST(Store, ScanIsOrderedAndBoundedByPrefix) {
  test::TempDir tmp;
  auto s = Store::open(tmp.path());
  ASSERT_TRUE(s.ok());
  for (auto* k : {"r/2", "r/1", "q/1", "r/10", "s/1"}) ASSERT_TRUE((*s)->put(Family::Runs, k, k).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE((*s)->scan(Family::Runs, "r/", [&](std::string_view k, std::string_view) {
                 keys.emplace_back(k);
                 return true;
               }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"r/1", "r/10", "r/2"}));
  auto last = (*s)->last(Family::Runs, "r/");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->first, "r/2");
  EXPECT_FALSE((*s)->last(Family::Runs, "x/").has_value());
}

TEST(Store, CorruptRecordIsReportedWithItsKey) {
  test::TempDir tmp;
  auto s = Store::open(tmp.path());
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->put(Family::Runs, "run-9", std::string_view("\xdd\xff\xff\xff\xff", 5)).ok());
  auto v = (*s)->get_value(Family::Runs, "run-9");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find("runs/run-9"), std::string::npos) << v.error();
}
