// Inter-rater reliability against the worked examples their authors published.
#include <gtest/gtest.h>

#include "agreement.hpp"

using namespace evald::scores;

namespace {

using Ratings = std::vector<std::vector<std::optional<double>>>;
constexpr std::nullopt_t _ = std::nullopt;

// Units x raters from rater rows.
Ratings by_unit(const std::vector<std::vector<std::optional<double>>>& raters) {
  Ratings units(raters[0].size());
  for (const auto& r : raters)
    for (size_t u = 0; u < r.size(); ++u) units[u].push_back(r[u]);
  return units;
}

// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
// twelve units, values 1-5, missing data. Published: nominal .743, ordinal .815, interval .849,
// ratio .797.
TEST(KrippendorffAlpha, PublishedExampleWithMissingData) {
  Ratings r = by_unit({
      {1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _},
      {1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3},
      {_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _},
      {1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _},
  });
  EXPECT_NEAR(*krippendorff_alpha(r, Metric::Nominal), 0.743, 5e-4);
  EXPECT_NEAR(*krippendorff_alpha(r, Metric::Ordinal), 0.815, 5e-4);
  EXPECT_NEAR(*krippendorff_alpha(r, Metric::Interval), 0.849, 5e-4);
  EXPECT_NEAR(*krippendorff_alpha(r, Metric::Ratio), 0.797, 5e-4);
}

// Same paper, section A: two observers, ten units, binary values. Published nominal .095.
TEST(KrippendorffAlpha, PublishedBinaryExample) {
  Ratings r = by_unit({{0, 1, 0, 0, 0, 0, 0, 0, 1, 0}, {1, 1, 1, 0, 0, 1, 0, 0, 0, 0}});
  EXPECT_NEAR(*krippendorff_alpha(r, Metric::Nominal), 0.095, 5e-4);
}

TEST(KrippendorffAlpha, EdgeCases) {
  // Perfect agreement with variation: 1.
  EXPECT_DOUBLE_EQ(*krippendorff_alpha(by_unit({{1, 2, 3}, {1, 2, 3}}), Metric::Interval), 1.0);
  // No variation at all: undefined, not 1 or 0.
  EXPECT_FALSE(krippendorff_alpha(by_unit({{4, 4, 4}, {4, 4, 4}}), Metric::Interval));
  // Nothing pairable.
  EXPECT_FALSE(krippendorff_alpha(by_unit({{1, _}, {_, 2}}), Metric::Nominal));
  // Units with one score do not count: adding one changes nothing.
  Ratings a = by_unit({{1, 2, 3, 4}, {1, 3, 3, 4}});
  Ratings b = a;
  b.push_back({5, _});
  EXPECT_DOUBLE_EQ(*krippendorff_alpha(a, Metric::Ordinal), *krippendorff_alpha(b, Metric::Ordinal));
  // Systematic disagreement goes below zero.
  EXPECT_LT(*krippendorff_alpha(by_unit({{1, 5, 1, 5}, {5, 1, 5, 1}}), Metric::Interval), 0.0);
}

// Shrout and Fleiss (1979), Table 2: six targets, four judges. Published (Table 4): ICC(1,1)
// .17, ICC(2,1) .29, ICC(3,1) .71, ICC(1,4) .44, ICC(2,4) .62, ICC(3,4) .91.
TEST(IntraclassCorrelation, ShroutFleissExample) {
  auto icc = intraclass_correlation({{9, 2, 5, 8}, {6, 1, 3, 2}, {8, 4, 6, 8}, {7, 1, 2, 6}, {10, 5, 6, 9}, {6, 2, 4, 7}});
  ASSERT_TRUE(icc);
  EXPECT_NEAR(icc->icc1_1, 0.17, 5e-3);
  EXPECT_NEAR(icc->icc2_1, 0.29, 5e-3);
  EXPECT_NEAR(icc->icc3_1, 0.71, 5e-3);
  EXPECT_NEAR(icc->icc1_k, 0.44, 5e-3);
  EXPECT_NEAR(icc->icc2_k, 0.62, 5e-3);
  EXPECT_NEAR(icc->icc3_k, 0.91, 5e-3);
  EXPECT_EQ(icc->targets, 6u);
  EXPECT_EQ(icc->raters, 4u);
}

TEST(IntraclassCorrelation, RefusesIncompleteDesigns) {
  EXPECT_FALSE(intraclass_correlation({{1, 2}}));
  EXPECT_FALSE(intraclass_correlation({{1}, {2}}));
  EXPECT_FALSE(intraclass_correlation({{1, 2}, {3}}));
}

}  // namespace
