// Wilson intervals, percentiles and section points, checked against numbers worked by hand.
#include "scoring.hpp"

#include <gtest/gtest.h>

using namespace evald::bench;
using evald::Array;
using evald::Value;

TEST(BenchmarkScoring, WilsonByHand) {
  // x = 18, n = 24, z = 1.96: p = 0.75, z^2 = 3.8416, denom = 1 + 3.8416/24 = 1.160067;
  // centre = (0.75 + 3.8416/48) / denom = 0.830033/1.160067 = 0.715503;
  // half = 1.96/denom * sqrt(0.75*0.25/24 + 3.8416/2304) = 1.689557 * sqrt(0.0078125 + 0.0016674)
  //      = 1.689557 * 0.097365 = 0.164504 -> [0.5510, 0.8800].
  auto [lo, hi] = wilson_interval(18, 24, 1.96);
  EXPECT_NEAR(lo, 0.5510, 5e-4);
  EXPECT_NEAR(hi, 0.8800, 5e-4);
  // All wrong: the interval starts at 0 and is not empty. x = 0, n = 10:
  // hi = (z^2/2n + z/denom*... ) = 2*0.19208/1.38416 = 0.27754.
  auto [lo0, hi0] = wilson_interval(0, 10, 1.96);
  EXPECT_DOUBLE_EQ(lo0, 0.0);
  EXPECT_NEAR(hi0, 0.27754, 5e-5);
  auto [lo1, hi1] = wilson_interval(10, 10, 1.96);
  EXPECT_NEAR(lo1, 1 - 0.27754, 5e-5);
  EXPECT_DOUBLE_EQ(hi1, 1.0);
}

TEST(BenchmarkScoring, PercentileNearestRank) {
  std::vector<double> v{5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 5);
  EXPECT_DOUBLE_EQ(percentile(v, 95), 10);
  EXPECT_DOUBLE_EQ(percentile(v, 10), 1);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
}

namespace {
Value section(std::string name, double points, std::vector<std::string> suites, std::string norm) {
  Value s;
  s.set("name", name);
  s.set("points", points);
  s.set("suites", Array(suites.begin(), suites.end()));
  s.set("normalisation", norm);
  return s;
}
}  // namespace

TEST(BenchmarkScoring, SectionsPerEntrant) {
  Value list = Array{section("knowledge", 20, {"ko", "en"}, "absolute"), section("reasoning", 20, {"en"}, "relative_to_target")};
  auto secs = sections_from(list);
  ASSERT_TRUE(secs) << secs.error();
  // absolute: 20 * (0.5 + 0.75)/2 = 12.5; relative_to_target 0.75/0.6 -> capped at 1 -> 20.
  Value r = score_sections(*secs, {{"ko", 0.5}, {"en", 0.75}}, {{"en", 0.6}}, nullptr);
  EXPECT_TRUE(r.get_bool("complete"));
  EXPECT_DOUBLE_EQ(r.get_double("points"), 32.5);
  EXPECT_DOUBLE_EQ(r.get_double("scale"), 40);
  // Target 0.9: 20 * 0.75/0.9 = 16.6667.
  r = score_sections(*secs, {{"ko", 0.5}, {"en", 0.75}}, {{"en", 0.9}}, nullptr);
  EXPECT_NEAR(r.get_double("points"), 12.5 + 16.6666667, 1e-6);
  // No target: incomplete, never zero.
  r = score_sections(*secs, {{"ko", 0.5}, {"en", 0.75}}, {}, nullptr);
  EXPECT_FALSE(r.get_bool("complete"));
  EXPECT_TRUE(r.find("points")->is_null());
  EXPECT_NE(r.get_string("reason").find("no target for suite en"), std::string::npos);
}

TEST(BenchmarkScoring, SectionsNeedingTheRound) {
  Value list = Array{section("best", 10, {"en"}, "relative_to_best"), section("mm", 10, {"en"}, "min_max")};
  auto secs = sections_from(list);
  ASSERT_TRUE(secs);
  Value pending = score_sections(*secs, {{"en", 0.6}}, {}, nullptr);
  EXPECT_FALSE(pending.get_bool("complete"));
  EXPECT_NE(pending.get_string("reason").find("needs every entrant"), std::string::npos);
  std::map<std::string, std::vector<double>> round{{"en", {0.4, 0.6, 0.8}}};
  // best: 10 * 0.6/0.8 = 7.5; min_max: 10 * (0.6-0.4)/(0.8-0.4) = 5.
  Value r = score_sections(*secs, {{"en", 0.6}}, {}, &round);
  EXPECT_TRUE(r.get_bool("complete"));
  EXPECT_DOUBLE_EQ(r.get_double("points"), 12.5);
}

TEST(BenchmarkScoring, SectionConfigErrors) {
  auto bad = sections_from(Array{section("x", 10, {"en"}, "zscore")});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("config.sections[0].normalisation: \"zscore\""), std::string::npos);
  Value s = section("x", 10, {"en"}, "absolute");
  s.set("weight", 1);
  bad = sections_from(Array{s});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("config.sections[0]: unknown key \"weight\""), std::string::npos);
  bad = sections_from(Array{section("x", 10, {}, "absolute")});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("config.sections[0].suites"), std::string::npos);
}
