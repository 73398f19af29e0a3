// The vote library without the plugin: name matching, hygiene order, the bootstrap hooks and
// the monotonicity of points in wins.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "votes.hpp"

using namespace evald::scores;
using evald::Value;

namespace {

std::vector<Entrant> abc() { return {{"A", "Alpha"}, {"B", "Beta"}, {"C", "Gamma"}}; }

VoteOptions options(std::initializer_list<std::pair<const char*, Value>> kv = {}) {
  Value c;
  c.set("battles", Value(evald::Array{Value("mem.csv")}));
  for (auto& [k, v] : kv) c.set(k, v);
  auto checked = vote_config_schema().validate(c);
  EXPECT_TRUE(checked) << checked.error();
  auto o = vote_options(*checked);
  EXPECT_TRUE(o) << o.error();
  return *o;
}

evald::text::RecordFile csv(const std::string& body) {
  auto f = evald::text::parse_records(body, "mem.csv", "csv");
  EXPECT_TRUE(f) << f.error();
  return *f;
}

TEST(NameKey, ComposesHangulAndFoldsAsciiCase) {
  // "한빛" precomposed (NFC) and as conjoining jamo (NFD, as macOS file names and some editors write it).
  std::string nfc = "\xED\x95\x9C\xEB\xB9\x9B";
  std::string nfd = "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB\xE1\x84\x87\xE1\x85\xB5\xE1\x86\xBE";
  ASSERT_NE(nfc, nfd);
  EXPECT_EQ(name_key(nfd), nfc);
  EXPECT_EQ(name_key(nfc), nfc);
  EXPECT_EQ(name_key("  Team   ALPHA \t"), "team alpha");
  EXPECT_EQ(name_key("\xFF\xFE"), "\xFF\xFE") << "invalid UTF-8 is compared as it is";

  EntrantIndex idx({{"team-a", nfc}, {"team-b", "Twin"}, {"team-c", "twin"}});
  uint32_t i = 99;
  EXPECT_EQ(idx.resolve("team-a", &i), EntrantIndex::Found::Yes);
  EXPECT_EQ(i, 0u);
  EXPECT_EQ(idx.resolve(nfd, &i), EntrantIndex::Found::Yes);
  EXPECT_EQ(i, 0u);
  EXPECT_EQ(idx.resolve("TEAM-B", &i), EntrantIndex::Found::Yes);
  EXPECT_EQ(i, 1u);
  EXPECT_EQ(idx.resolve("TWIN", &i), EntrantIndex::Found::Ambiguous);
  EXPECT_EQ(idx.resolve("team-z", &i), EntrantIndex::Found::Unknown);
}

// Numeric ids order by value, then other ids bytewise: which votes a pair cap keeps must not
// depend on how ids happen to sort as text.
TEST(Hygiene, PairCapKeepsTimedVotesFirstThenIdsByValue) {
  VoteSet set(abc(), options({{"max_votes_per_pair", 2}}));
  ASSERT_TRUE(set.add_records(csv("id,user,a,b,outcome,time\n"
                                  "100,u,A,B,B,\n"
                                  "x1,u,A,B,B,\n"
                                  "9,u,A,B,A,\n"
                                  "10,u,B,A,B,\n"  // the same unordered pair, A wins
                                  "500,w,A,B,B,2025-01-02T00:00:00Z\n"
                                  "600,w,A,B,B,2025-01-01T23:59:59+09:00\n"  // earlier: 14:59:59Z
                                  "7,w,A,B,A,\n"),
                              VoteType::Battle));
  set.apply_hygiene();
  std::vector<std::string> kept;
  for (auto& v : set.votes())
    if (v.excluded == Exclusion::None) kept.push_back(v.id);
  EXPECT_EQ(kept, (std::vector<std::string>{"9", "10", "500", "600"}));
  EXPECT_EQ(set.counts(VoteType::Battle).excluded[size_t(Exclusion::PairLimit) - 1], 3u);
  BattleTally t = tally_battles(set);
  EXPECT_EQ(t.wins[0], 2u);
  EXPECT_EQ(t.wins[1], 2u);
}

// Each excluded vote counts under the first rule that applies: window, then share, then pair.
TEST(Hygiene, EachExclusionHasOneReason) {
  VoteSet set(abc(), options({{"max_votes_per_pair", 1}, {"max_user_share", 0.5}, {"window_opens", "2025-01-01T00:00:00Z"}}));
  ASSERT_TRUE(set.add_records(csv("id,user,a,b,outcome,time\n"
                                  "1,heavy,A,B,A,2024-12-31T00:00:00Z\n"   // window (also heavy)
                                  "2,heavy,A,B,A,2025-01-02T00:00:00Z\n"   // share
                                  "3,heavy,A,B,A,2025-01-03T00:00:00Z\n"   // share (also over the pair cap)
                                  "4,heavy,A,C,A,2025-01-03T00:00:00Z\n"   // share
                                  "5,light,B,C,A,2025-01-02T00:00:00Z\n"   // counted
                                  "6,light,C,B,A,2025-01-04T00:00:00Z\n"), // pair cap
                              VoteType::Battle));
  set.apply_hygiene();
  const TypeCounts& c = set.counts(VoteType::Battle);
  EXPECT_EQ(c.valid, 6u);
  EXPECT_EQ(c.excluded[0], 1u) << "outside_window";
  EXPECT_EQ(c.excluded[1], 3u) << "max_user_share";
  EXPECT_EQ(c.excluded[2], 1u) << "max_votes_per_pair";
  EXPECT_EQ(c.excluded_total, 5u);
  EXPECT_EQ(c.counted(), 1u);
  ASSERT_EQ(set.excluded_users().size(), 1u);
  EXPECT_EQ(set.excluded_users()[0].user, "heavy");
  EXPECT_EQ(set.excluded_users()[0].votes, 4u);
  EXPECT_EQ(set.excluded_users()[0].total, 6u);
}

TEST(Bootstrap, ReportsProgressAndStopsWhenCancelled) {
  VoteOptions o = options({{"resamples", 100}});
  VoteSet set(abc(), o);
  ASSERT_TRUE(set.add_records(csv("id,user,a,b,outcome\n1,u,A,B,A\n2,u,B,C,A\n3,u,C,A,tie\n4,v,A,C,B\n"), VoteType::Battle));
  set.apply_hygiene();
  BattleTally t = tally_battles(set);
  std::vector<std::pair<double, double>> progress;
  int polls = 0;
  Hooks hooks{[&] { return ++polls >= 5; }, [&](double d, double n) { progress.emplace_back(d, n); }};
  auto r = bootstrap_battles(t, o, hooks);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cancelled during the bootstrap (after 5 of 100 resamples)"), std::string::npos) << r.error();
  EXPECT_EQ(progress.size(), 5u);
  EXPECT_EQ(progress.back(), std::make_pair(5.0, 100.0));

  auto full = bootstrap_battles(t, o, {});
  ASSERT_TRUE(full);
  EXPECT_EQ(full->resamples, 100u);
  EXPECT_EQ(full->failed, 0u) << "the prior makes every resample fit";
  for (size_t e = 0; e < 3; ++e) EXPECT_LT(full->win_prob[e].first, full->win_prob[e].second);
}

// Adding a win for X over Y never lowers X's points, whichever pair, scaling and data.
TEST(Points, AWinNeverLowersTheWinnersPoints) {
  std::mt19937_64 rng(17);
  std::vector<Entrant> roster = {{"A", "A"}, {"B", "B"}, {"C", "C"}, {"D", "D"}, {"E", "E"}};
  for (const char* scaling : {"relative_to_best", "absolute"})
    for (int data = 0; data < 6; ++data) {
      std::string body = "id,user,a,b,outcome\n";
      std::uniform_int_distribution<int> who(0, 4), out(0, 2);
      int id = 0;
      for (int v = 0; v < 25; ++v) {
        int a = who(rng), b = who(rng);
        if (a == b) continue;
        body += std::to_string(++id) + ",u" + std::to_string(v % 4) + "," + roster[size_t(a)].id + "," + roster[size_t(b)].id + "," +
                (out(rng) == 0 ? "A" : out(rng) == 1 ? "B" : "tie") + "\n";
      }
      VoteOptions o = options({{"resamples", 0}, {"scaling", scaling}});
      auto points = [&](const std::string& text) {
        VoteSet set(roster, o);
        EXPECT_TRUE(set.add_records(csv(text), VoteType::Battle));
        set.apply_hygiene();
        auto ev = evaluate(set, "r");
        EXPECT_TRUE(ev) << ev.error();
        std::vector<double> p;
        for (auto& e : ev->entrants) p.push_back(e.get_double("points", -1));
        return p;
      };
      std::vector<double> base = points(body);
      for (size_t x = 0; x < 5; ++x)
        for (size_t y = 0; y < 5; ++y) {
          if (x == y) continue;
          std::vector<double> more = points(body + "extra,u9," + roster[x].id + "," + roster[y].id + ",A\n");
          if (base[x] < 0) {
            EXPECT_GE(more[x], 0) << "an entrant with a new vote gets points";
            continue;
          }
          EXPECT_GE(more[x], base[x] - 1e-9) << scaling << " data " << data << ": " << roster[x].id << " beat " << roster[y].id;
        }
    }
}

}  // namespace
