// The user-scores plugin as the daemon loads it: the real shared library through the SDK
// harness, with vote files written to a temp dir and intake records as the daemon stores them.
#include <evald/testing.hpp>

#include "../common/test_util.hpp"
#include "records.hpp"

#include <cmath>

using namespace evald::test;
using evald::Array;
using evald::Message;
using evald::Value;
using evald::testing::PluginHarness;

namespace {

const std::string kPlugin = std::string(EVALD_PLUGIN_DIR) + "/user-scores.so";

using Roster = std::vector<std::pair<std::string, std::string>>;  // id, name

const Roster kAbc = {{"team-a", "Alpha"}, {"team-b", "Beta"}, {"team-c", "Gamma"}};

evald::Job round_job(const Roster& roster) {
  evald::Job j = PluginHarness::round_job({});
  j.round.set("id", "round-1");
  j.round.set("competition", "k-ai");
  Array ids, people;
  for (auto& [id, name] : roster) {
    ids.push_back(id);
    Value who;
    who.set("id", id);
    who.set("name", name);
    people.push_back(who);
  }
  j.round.set("entrants", ids);
  j.round.set("roster", people);
  return j;
}

Value list(std::initializer_list<std::string> xs) {
  Array a;
  for (auto& x : xs) a.push_back(x);
  return Value(a);
}

struct Outcome {
  std::vector<Message> messages;
  std::string artifact;  // its text, read before the harness removes its directory
  const Value& summary() const {
    for (auto& m : messages)
      if (m.kind == "user-evaluation") return m.payload;
    throw std::runtime_error("no user-evaluation message");
  }
  const Value& entrant(const std::string& id) const {
    for (auto& m : messages)
      if (m.kind == "user-score" && m.payload.get_string("entrant") == id) return m.payload;
    throw std::runtime_error("no user-score message for " + id);
  }
  double points(const std::string& id) const { return entrant(id).get_double("points", -1); }
  const Value& counts(const char* type) const { return *summary().find("counts")->find(type); }
  int64_t rejected(const char* type, const char* code) const { return counts(type).find("rejected")->get_int(code, -1); }
  int64_t excluded(const char* type, const char* code) const { return counts(type).find("excluded")->get_int(code, -1); }
};

// Configures a fresh harness and runs one round job; fails the test on any error.
Outcome run_round(const Value& config, const Roster& roster = kAbc, const std::vector<std::pair<std::string, Value>>& intake = {}) {
  PluginHarness h(kPlugin);
  auto st = h.configure(config);
  EXPECT_TRUE(st) << st.message();
  for (auto& [ch, rec] : intake) h.add_intake(ch, rec);
  auto out = h.finish(round_job(roster));
  EXPECT_TRUE(out) << out.error();
  Outcome o{out ? *out : std::vector<Message>{}, {}};
  if (out) o.artifact = read_file(o.summary().get_string("artifact"));
  return o;
}

// The error a round job fails with ("" when it succeeds).
std::string round_error(const Value& config, const Roster& roster = kAbc) {
  PluginHarness h(kPlugin);
  auto st = h.configure(config);
  if (!st) return "configure: " + st.message();
  auto out = h.finish(round_job(roster));
  return out ? std::string() : out.error();
}

std::string configure_error(const Value& config) {
  PluginHarness h(kPlugin);
  auto st = h.configure(config);
  return st ? std::string() : st.message();
}

// The worked example: strengths proportional to 4 : 2 : 1 and vote counts that match the
// model exactly (A-B 4:2, A-C 4:1, B-C 2:1), so with prior 0 the MLE is p = (4, 2, 1) by hand:
// each entrant's wins equal its expected wins (A: 6*4/6 + 5*4/5 = 8, B: 6*2/6 + 3*2/3 = 4,
// C: 5*1/5 + 3*1/3 = 2).
std::string worked_example_csv() {
  std::string s = "id,user,a,b,outcome,time\n";
  int id = 0;
  auto add = [&](const char* a, const char* b, const char* o, int times) {
    for (int i = 0; i < times; ++i) {
      ++id;
      s += std::to_string(id) + ",user" + std::to_string(id % 5) + "," + a + "," + b + "," + o + ",2025-03-01T10:00:" +
           (id < 10 ? "0" : "") + std::to_string(id) + "Z\n";
    }
  };
  add("team-a", "team-b", "A", 4);
  add("team-a", "team-b", "B", 2);
  add("team-a", "team-c", "A", 4);
  add("team-c", "team-a", "A", 1);  // C wins, named first
  add("team-b", "team-c", "a", 2);  // lower-case outcome
  add("team-b", "team-c", "B", 1);
  return s;
}

TEST(UserScoresPlugin, HandCheckedBattles) {
  TempDir tmp;
  write_file(tmp / "battles.csv", worked_example_csv());
  Value c;
  c.set("battles", list({tmp / "battles.csv"}));
  c.set("prior", 0.0);
  c.set("resamples", 200);
  Outcome o = run_round(c);
  ASSERT_EQ(o.messages.size(), 4u);
  const double ln2 = std::log(2.0);
  EXPECT_NEAR(o.entrant("team-a").find("battles")->get_double("strength"), ln2, 1e-8);
  EXPECT_NEAR(o.entrant("team-b").find("battles")->get_double("strength"), 0.0, 1e-8);
  EXPECT_NEAR(o.entrant("team-c").find("battles")->get_double("strength"), -ln2, 1e-8);
  // Win probability against the field: A mean(4/6, 4/5) = 11/15, B mean(2/6, 2/3) = 1/2, C mean(1/5, 1/3) = 4/15.
  EXPECT_NEAR(o.entrant("team-a").find("battles")->get_double("win_prob"), 11.0 / 15, 1e-8);
  EXPECT_NEAR(o.entrant("team-b").find("battles")->get_double("win_prob"), 0.5, 1e-8);
  EXPECT_NEAR(o.entrant("team-c").find("battles")->get_double("win_prob"), 4.0 / 15, 1e-8);
  // relative_to_best: 25, 25 * (1/2) / (11/15) = 375/22, 25 * (4/15) / (11/15) = 100/11.
  EXPECT_EQ(o.points("team-a"), 25.0);
  EXPECT_NEAR(o.points("team-b"), 375.0 / 22, 1e-6);
  EXPECT_NEAR(o.points("team-c"), 100.0 / 11, 1e-6);
  EXPECT_EQ(o.entrant("team-a").get_int("rank"), 1);
  EXPECT_EQ(o.entrant("team-b").get_int("rank"), 2);
  EXPECT_EQ(o.entrant("team-c").get_int("rank"), 3);
  const Value& ab = *o.entrant("team-a").find("battles");
  EXPECT_EQ(ab.get_int("votes"), 11);
  EXPECT_EQ(ab.get_int("wins"), 8);
  EXPECT_EQ(ab.get_int("losses"), 3);
  EXPECT_EQ(ab.get_int("ties"), 0);
  // Intervals bracket the estimates; points_ci stays within [0, scale].
  for (const char* e : {"team-a", "team-b", "team-c"}) {
    const Value& p = o.entrant(e);
    const Value& b = *p.find("battles");
    auto& ci = b.find("ci")->as_array();
    EXPECT_LE(ci[0].as_double(), b.get_double("strength")) << e;
    EXPECT_GE(ci[1].as_double(), b.get_double("strength")) << e;
    auto& wci = b.find("win_prob_ci")->as_array();
    EXPECT_LE(wci[0].as_double(), b.get_double("win_prob")) << e;
    EXPECT_GE(wci[1].as_double(), b.get_double("win_prob")) << e;
    auto& pci = p.find("points_ci")->as_array();
    EXPECT_GE(pci[0].as_double(), 0.0);
    EXPECT_LE(pci[1].as_double(), 25.0);
    EXPECT_TRUE(p.get_bool("complete"));
    EXPECT_EQ(p.get_double("scale"), 25.0);
  }
  const Value& s = o.summary();
  EXPECT_EQ(o.counts("battles").get_int("records"), 14);
  EXPECT_EQ(o.counts("battles").get_int("valid"), 14);
  EXPECT_EQ(o.counts("battles").get_int("counted"), 14);
  EXPECT_EQ(o.counts("battles").get_int("duplicates"), 0);
  EXPECT_EQ(s.get_string("score"), "battles");
  EXPECT_EQ(s.get_string("scaling"), "relative_to_best");
  EXPECT_NE(s.get_string("rule").find("points = 25 * u / max u"), std::string::npos) << s.get_string("rule");
  EXPECT_EQ(s.get_int("resamples"), 200);
  EXPECT_EQ(s.get_int("seed"), 1);
  EXPECT_EQ(s.get_double("prior", -1), 0.0);
  // The win-rate matrix in roster order; null on the diagonal.
  const Value& wr = *s.find("win_rate");
  EXPECT_EQ(*wr.find("entrants"), list({"team-a", "team-b", "team-c"}));
  auto& m = wr.find("matrix")->as_array();
  EXPECT_TRUE(m[0].as_array()[0].is_null());
  EXPECT_DOUBLE_EQ(m[0].as_array()[1].as_double(), 4.0 / 6);
  EXPECT_DOUBLE_EQ(m[2].as_array()[0].as_double(), 1.0 / 5);
  EXPECT_DOUBLE_EQ(m[1].as_array()[2].as_double(), 2.0 / 3);
  EXPECT_EQ(wr.find("games")->as_array()[0].as_array()[2].as_int(), 5);
  // Inputs named with their digest; the artifact holds the same result.
  auto& in = s.find("inputs")->as_array();
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].get_string("path"), tmp / "battles.csv");
  EXPECT_EQ(in[0].get_string("sha256"), evald::text::sha256_hex(read_file(tmp / "battles.csv")));
  EXPECT_EQ(in[0].get_int("records"), 14);
  EXPECT_EQ(in[0].get_string("type"), "battle");
  const std::string& art = o.artifact;
  EXPECT_EQ(evald::text::sha256_hex(art), s.get_string("artifact_sha256"));
  EXPECT_EQ(s.get_string("artifact"), s.get_string("artifact").substr(0, s.get_string("artifact").rfind('/')) + "/user-evaluation.json");
  EXPECT_NE(art.find("\"entrants\":[{"), std::string::npos);
  ASSERT_EQ(s.find("ranking")->as_array().size(), 3u);
  EXPECT_EQ(s.find("ranking")->as_array()[0].get_string("entrant"), "team-a");
}

// Ratings by hand: team-a 3, 4, 5 -> mean 4, sd 1, 95% CI 4 -/+ t(0.975, 2) / sqrt(3);
// team-b one rating: a mean, but no interval (undefined, not zero width).
TEST(UserScoresPlugin, HandCheckedRatings) {
  TempDir tmp;
  write_file(tmp / "ratings.jsonl",
             "{\"id\": \"r1\", \"user\": \"u1\", \"entrant\": \"team-a\", \"score\": 3}\n"
             "{\"id\": \"r2\", \"user\": \"u2\", \"entrant\": \"Alpha\", \"score\": 5}\n"
             "{\"id\": \"r3\", \"user\": \"u3\", \"model\": \"team-a\", \"rating\": \"4\"}\n"
             "{\"id\": \"r4\", \"user\": \"u1\", \"entrant\": \"team-b\", \"score\": 2}\n"
             "{\"id\": \"r5\", \"user\": \"u1\", \"entrant\": \"team-c\", \"score\": 1}\n"
             "{\"id\": \"r6\", \"user\": \"u2\", \"entrant\": \"team-c\", \"score\": 1}\n");
  Value c;
  c.set("ratings", list({tmp / "ratings.jsonl"}));
  c.set("score", "ratings");
  Outcome o = run_round(c);
  const Value& ra = *o.entrant("team-a").find("ratings");
  EXPECT_EQ(ra.get_int("n"), 3);
  EXPECT_DOUBLE_EQ(ra.get_double("mean"), 4.0);
  EXPECT_DOUBLE_EQ(ra.get_double("sd"), 1.0);
  double hw = 4.30265272974946 / std::sqrt(3.0);
  EXPECT_NEAR(ra.find("ci")->as_array()[0].as_double(), 4 - hw, 1e-9);
  EXPECT_NEAR(ra.find("ci")->as_array()[1].as_double(), 4 + hw, 1e-9);
  const Value& rb = *o.entrant("team-b").find("ratings");
  EXPECT_EQ(rb.get_int("n"), 1);
  EXPECT_DOUBLE_EQ(rb.get_double("mean"), 2.0);
  EXPECT_TRUE(rb.find("ci")->is_null());
  EXPECT_TRUE(rb.find("sd")->is_null());
  EXPECT_TRUE(o.entrant("team-b").find("points_ci")->is_null());
  // u = (mean - 1) / 4: a 0.75, b 0.25, c 0 (sd 0: a zero-width interval is right here).
  EXPECT_DOUBLE_EQ(o.entrant("team-a").get_double("u"), 0.75);
  EXPECT_EQ(o.points("team-a"), 25.0);
  EXPECT_NEAR(o.points("team-b"), 25.0 / 3, 1e-12);
  EXPECT_EQ(o.points("team-c"), 0.0);
  EXPECT_EQ(*o.entrant("team-c").find("ratings")->find("ci"), Value(Array{Value(1.0), Value(1.0)}));
  // points_ci of a: the t-interval mapped to u (clamped to [0, 1]) and scaled by the best u.
  auto& pci = o.entrant("team-a").find("points_ci")->as_array();
  EXPECT_NEAR(pci[0].as_double(), 25 * ((4 - hw - 1) / 4) / 0.75, 1e-9);
  EXPECT_EQ(pci[1].as_double(), 25.0);
  EXPECT_EQ(o.counts("ratings").get_int("counted"), 6);
  EXPECT_EQ(o.counts("battles").get_int("records"), 0);
}

TEST(UserScoresPlugin, KoreanRosterAndCsvWithBom) {
  TempDir tmp;
  const std::string hanbit = "\xED\x95\x9C\xEB\xB9\x9B";  // 한빛
  const std::string nuri = "\xEB\x88\x84\xEB\xA6\xAC";    // 누리
  const std::string byeol = "\xEB\xB3\x84";               // 별
  const std::string hanbit_nfd = "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB\xE1\x84\x87\xE1\x85\xB5\xE1\x86\xBE";
  Roster roster = {{"team-1", hanbit + " AI"}, {"team-2", nuri}, {"team-3", byeol + " \xEC\x97\xB0\xEA\xB5\xAC\xEC\x86\x8C"}};
  write_file(tmp / "battles.csv", "\xEF\xBB\xBFid,user,entrant_a,entrant_b,outcome\n"
                                  "1,\xEA\xB9\x80\xEC\xB2\xA0\xEC\x88\x98," + hanbit + " AI," + nuri + ",A\n" +
                                  "2,\xEC\x9D\xB4\xEC\x98\x81\xED\x9D\xAC,team-2," + byeol + " \xEC\x97\xB0\xEA\xB5\xAC\xEC\x86\x8C,B\n" +
                                  "3,\xEB\xB0\x95\xEB\xAF\xBC\xEC\xA4\x80," + hanbit_nfd + " ai,team-3,tie\n" +
                                  "4,\xEB\xB0\x95\xEB\xAF\xBC\xEC\xA4\x80," + nuri + ",\xEC\x97\x86\xEB\x8A\x94\xED\x8C\x80,A\n");
  Value c;
  c.set("battles", list({tmp / "battles.csv"}));
  c.set("resamples", 50);
  Outcome o = run_round(c, roster);
  EXPECT_EQ(o.counts("battles").get_int("valid"), 3) << "the BOM is not part of the first column's name";
  EXPECT_EQ(o.rejected("battles", "unknown_entrant"), 1);
  EXPECT_EQ(o.entrant("team-1").get_string("name"), hanbit + " AI");
  EXPECT_EQ(o.entrant("team-1").find("battles")->get_int("votes"), 2) << "NFD Hangul and ASCII case still name team-1";
  EXPECT_EQ(o.entrant("team-3").find("battles")->get_int("votes"), 2);
  auto& rej = o.summary().find("rejected")->as_array();
  ASSERT_EQ(rej.size(), 1u);
  EXPECT_EQ(rej[0].get_int("line"), 5);
  EXPECT_NE(rej[0].get_string("reason").find("\xEC\x97\x86\xEB\x8A\x94\xED\x8C\x80"), std::string::npos) << "the reason quotes the name as written";
  // The artifact is UTF-8 JSON with the names as they are.
  EXPECT_NE(o.artifact.find(nuri), std::string::npos);
}

// One row per rejection reason, with exact counts, file and line; identical repeats are
// duplicates, kept once.
TEST(UserScoresPlugin, EveryRejectionReasonIsCountedAndListed) {
  TempDir tmp;
  Roster roster = {{"A", "Alpha"}, {"B", "Beta"}, {"C", "Twin"}, {"D", "twin"}};
  write_file(tmp / "battles.csv",
             "id,user,a,b,outcome,time\n"           // line 1
             "1,u1,A,B,A,\n"                        // 2 valid
             "2,u1,A,B,A,,extra\n"                  // 3 malformed: more fields than the header
             ",u1,A,B,A,\n"                         // 4 missing_id
             "4,,A,B,A,\n"                          // 5 missing_user
             "5,u1,,B,A,\n"                         // 6 missing_entrant
             "6,u1,Zeta,B,A,\n"                     // 7 unknown_entrant
             "7,u1,twin,B,A,\n"                     // 8 ambiguous_entrant
             "8,u1,A,Alpha,A,\n"                    // 9 same_entrant (by id and by name)
             "9,u1,A,B,win,\n"                      // 10 bad_outcome
             "10,u1,A,B,B,yesterday\n"              // 11 bad_time
             "1,u1,A,B,B,\n"                        // 12 conflicting_id
             "1,u1,alpha,B,a,\n"                    // 13 duplicate of line 2 (same entrant, same outcome)
             "11,u2,B,C,tie,2025-01-01T00:00:00Z\n" // 14 valid
             "12,u2,A,B,,\n");                      // 15 bad_outcome (missing)
  write_file(tmp / "ratings.json",
             "{\"ratings\": [\n"
             "  {\"id\": \"r1\", \"user\": \"u1\", \"entrant\": \"A\", \"score\": 4},\n"
             "  {\"id\": \"r2\", \"user\": \"u1\", \"entrant\": \"A\", \"score\": \"abc\"},\n"
             "  {\"id\": \"r3\", \"user\": \"u1\", \"entrant\": \"A\", \"score\": 6},\n"
             "  {\"id\": \"r4\", \"user\": \"u1\", \"entrant\": \"A\"},\n"
             "  {\"id\": \"r5\", \"user\": \"u1\", \"entrant\": \"A\", \"score\": 4, \"rating\": 5},\n"
             "  {\"id\": \"r1\", \"user\": \"u1\", \"entrant\": \"A\", \"score\": 4.0}\n"
             "]}\n");
  Value c;
  c.set("battles", list({tmp / "battles.csv"}));
  c.set("ratings", list({tmp / "ratings.json"}));
  c.set("intake", "votes");
  c.set("resamples", 20);
  Value bad_type;
  bad_type.set("id", "i1");
  bad_type.set("type", "vote");
  bad_type.set("received_at", "2025-01-01T00:00:00.000Z");
  Value unknown;
  unknown.set("id", "i2");
  unknown.set("type", "Battle");
  unknown.set("user", "u3");
  unknown.set("a", "A");
  unknown.set("b", "Q");
  unknown.set("outcome", "A");
  unknown.set("received_at", "2025-01-01T00:00:00.000Z");
  Outcome o = run_round(c, roster, {{"votes", bad_type}, {"votes", unknown}});

  EXPECT_EQ(o.counts("battles").get_int("records"), 15);
  EXPECT_EQ(o.counts("battles").get_int("valid"), 2);
  EXPECT_EQ(o.counts("battles").get_int("duplicates"), 1);
  EXPECT_EQ(o.counts("battles").get_int("rejected_total"), 12);
  for (auto [code, n] : std::vector<std::pair<const char*, int64_t>>{{"malformed", 1}, {"missing_id", 1}, {"missing_user", 1},
                                                                      {"missing_entrant", 1}, {"unknown_entrant", 2}, {"ambiguous_entrant", 1},
                                                                      {"same_entrant", 1}, {"bad_outcome", 2}, {"bad_time", 1},
                                                                      {"conflicting_id", 1}, {"bad_score", 0}, {"missing_time", 0}})
    EXPECT_EQ(o.rejected("battles", code), n) << code;
  EXPECT_EQ(o.counts("ratings").get_int("records"), 6);
  EXPECT_EQ(o.counts("ratings").get_int("valid"), 1);
  EXPECT_EQ(o.counts("ratings").get_int("duplicates"), 1) << "4 and 4.0 are the same score";
  EXPECT_EQ(o.rejected("ratings", "bad_score"), 2);
  EXPECT_EQ(o.rejected("ratings", "score_out_of_range"), 1);
  EXPECT_EQ(o.rejected("ratings", "malformed"), 1) << "score and rating disagree";
  EXPECT_EQ(o.rejected("total", "bad_type"), 1);
  EXPECT_EQ(o.counts("total").get_int("records"), 22);
  EXPECT_EQ(o.counts("total").get_int("rejected_total"), 17);
  // Nothing is dropped silently: every record is valid, a duplicate or rejected.
  for (const char* t : {"battles", "ratings", "total"})
    EXPECT_EQ(o.counts(t).get_int("records"),
              o.counts(t).get_int("valid") + o.counts(t).get_int("duplicates") + o.counts(t).get_int("rejected_total")) << t;
  // Every code is reported, zero or not.
  EXPECT_EQ(o.counts("battles").find("rejected")->as_map().size(), 14u);
  EXPECT_EQ(o.counts("battles").find("excluded")->as_map().size(), 3u);

  const Value& s = o.summary();
  EXPECT_EQ(s.get_int("rejected_total"), 17);
  auto& rej = s.find("rejected")->as_array();
  ASSERT_EQ(rej.size(), 17u);
  const std::string battles = tmp / "battles.csv", ratings = tmp / "ratings.json";
  auto find = [&](const std::string& code, const std::string& file) -> const Value& {
    for (auto& r : rej)
      if (r.get_string("code") == code && r.get_string("file") == file) return r;
    throw std::runtime_error("no rejection " + code + " in " + file);
  };
  EXPECT_EQ(find("malformed", battles).get_int("line"), 3);
  EXPECT_EQ(find("malformed", battles).get_string("reason"), "row has 7 fields, the header 6");
  EXPECT_EQ(find("missing_id", battles).get_int("line"), 4);
  EXPECT_EQ(find("ambiguous_entrant", battles).get_int("line"), 8);
  EXPECT_EQ(find("same_entrant", battles).get_int("line"), 9);
  EXPECT_NE(find("malformed", ratings).get_string("reason").find("fields \"score\" and \"rating\" disagree"), std::string::npos);
  EXPECT_EQ(find("bad_time", battles).get_string("reason"), "time \"yesterday\" is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])");
  EXPECT_EQ(find("conflicting_id", battles).get_int("line"), 12);
  EXPECT_NE(find("conflicting_id", battles).get_string("reason").find(tmp / "battles.csv:2"), std::string::npos) << "names the first use";
  EXPECT_EQ(find("score_out_of_range", ratings).get_string("reason"), "score 6 is outside the Likert scale [1, 5]");
  EXPECT_EQ(find("score_out_of_range", ratings).get_int("line"), 4);
  EXPECT_TRUE(find("bad_type", "intake:votes#i1").find("line")->is_null());
  bool intake_unknown = false;
  for (auto& r : rej) intake_unknown |= r.get_string("file") == "intake:votes#i2" && r.get_string("code") == "unknown_entrant";
  EXPECT_TRUE(intake_unknown);
  EXPECT_EQ(s.find("intake")->get_int("records"), 2);
}

TEST(UserScoresPlugin, RejectedListIsCappedButCountsAndArtifactAreComplete) {
  TempDir tmp;
  std::string csv = "id,user,a,b,outcome\n1,u,team-a,team-b,A\n";
  for (int i = 0; i < 5; ++i) csv += "x" + std::to_string(i) + ",u,team-a,nobody,A\n";
  write_file(tmp / "b.csv", csv);
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("rejected_listed", 2);
  c.set("resamples", 0);
  Outcome o = run_round(c);
  EXPECT_EQ(o.summary().find("rejected")->as_array().size(), 2u);
  EXPECT_EQ(o.summary().get_int("rejected_total"), 5);
  const std::string& art = o.artifact;
  for (int i = 0; i < 5; ++i) EXPECT_NE(art.find("\"id\":\"x" + std::to_string(i) + "\""), std::string::npos) << i;
  // Without resamples there are no intervals, and they say so with null.
  EXPECT_TRUE(o.entrant("team-a").find("battles")->find("ci")->is_null());
  EXPECT_TRUE(o.entrant("team-a").find("points_ci")->is_null());
}

// The same votes sent twice (a resent file, a resent intake batch) change nothing but the
// duplicate count.
TEST(UserScoresPlugin, DuplicatesAreIdempotent) {
  TempDir tmp;
  std::string csv = worked_example_csv();
  write_file(tmp / "once.csv", csv);
  write_file(tmp / "again.csv", csv);
  Value once;
  once.set("battles", list({tmp / "once.csv"}));
  once.set("resamples", 100);
  Value twice = once;
  twice.set("battles", list({tmp / "once.csv", tmp / "again.csv"}));
  twice.set("intake", "v");
  Value rec;  // vote 1 again through intake, its values as strings the way a CSV upload sends them
  rec.set("id", "1");
  rec.set("type", "battle");
  rec.set("user", "user1");
  rec.set("a", "team-a");
  rec.set("b", "team-b");
  rec.set("outcome", "A");
  rec.set("time", "2025-03-01T10:00:01Z");
  rec.set("received_at", "2025-03-05T00:00:00.000Z");
  Outcome a = run_round(once), b = run_round(twice, kAbc, {{"v", rec}});
  EXPECT_EQ(b.counts("battles").get_int("duplicates"), 15);
  EXPECT_EQ(b.counts("battles").get_int("valid"), 14);
  for (const char* e : {"team-a", "team-b", "team-c"}) EXPECT_EQ(a.entrant(e), b.entrant(e)) << e;
}

TEST(UserScoresPlugin, IntakeRecordsJoinFileVotes) {
  TempDir tmp;
  write_file(tmp / "b.csv", "id,user,a,b,outcome\n1,u1,team-a,team-b,A\n2,u2,team-b,team-c,A\n");
  write_file(tmp / "r.csv", "id,user,entrant,score\nr1,u1,team-a,5\n");
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("ratings", list({tmp / "r.csv"}));
  c.set("intake", "user-votes");
  c.set("score", "blend");
  c.set("resamples", 50);
  auto rec = [](const char* id, const char* type) {
    Value r;
    r.set("id", id);
    r.set("type", type);
    r.set("received_at", "2025-03-01T09:00:00.000Z");
    return r;
  };
  Value b1 = rec("i1", "battle");
  b1.set("user", "u3");
  b1.set("a", "Gamma");
  b1.set("b", "team-a");
  b1.set("outcome", "TIE");
  Value r1 = rec("i2", "rating");
  r1.set("user", "u3");
  r1.set("entrant", "team-b");
  r1.set("score", 4);  // a number, as a JSON upload sends it
  Value r2 = rec("i3", "rating");
  r2.set("user", "u4");
  r2.set("entrant", "team-c");
  r2.set("score", "2.5");  // a string, as a CSV upload sends it
  Value r3 = rec("i4", "rating");
  r3.set("user", "u4");
  r3.set("entrant", "team-a");
  r3.set("score", 3);
  Outcome o = run_round(c, kAbc, {{"user-votes", b1}, {"user-votes", r1}, {"user-votes", r2}, {"user-votes", r3}});
  EXPECT_EQ(o.counts("battles").get_int("counted"), 3);
  EXPECT_EQ(o.counts("ratings").get_int("counted"), 4);
  EXPECT_EQ(o.entrant("team-c").find("battles")->get_int("ties"), 1);
  EXPECT_DOUBLE_EQ(o.entrant("team-c").find("ratings")->get_double("mean"), 2.5);
  EXPECT_DOUBLE_EQ(o.entrant("team-a").find("ratings")->get_double("mean"), 4.0);
  EXPECT_EQ(o.summary().find("intake")->get_string("channel"), "user-votes");
  EXPECT_EQ(o.summary().find("intake")->get_int("records"), 4);
  EXPECT_EQ(o.summary().find("inputs")->as_array().size(), 2u);
  // blend: u = 0.5 * win_prob + 0.5 * (mean - 1) / 4.
  for (const char* e : {"team-a", "team-b", "team-c"}) {
    const Value& p = o.entrant(e);
    double ub = p.find("battles")->get_double("win_prob"), ur = (p.find("ratings")->get_double("mean") - 1) / 4;
    EXPECT_NEAR(p.get_double("u"), 0.5 * ub + 0.5 * ur, 1e-12) << e;
  }
  EXPECT_TRUE(o.entrant("team-b").find("points_ci")->is_null()) << "one rating: the blend has no interval";
}

TEST(UserScoresPlugin, WindowExcludesLateAndEarlyVotesAndNeedsTimes) {
  TempDir tmp;
  write_file(tmp / "b.csv",
             "id,user,a,b,outcome,time\n"
             "1,u1,team-a,team-b,A,2025-02-28T23:59:59Z\n"       // before
             "2,u1,team-a,team-b,A,2025-03-01T08:30:00+09:00\n"  // 2025-02-28T23:30Z: before
             "3,u1,team-a,team-b,B,2025-03-01T00:00:00Z\n"       // at opening: in
             "4,u1,team-a,team-c,B,2025-03-01T23:59:59.999Z\n"   // in
             "5,u1,team-a,team-c,A,2025-03-02T00:00:00Z\n"       // at closing: out
             "6,u1,team-b,team-c,A,\n");                         // no time: rejected
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("intake", "v");
  c.set("window_opens", "2025-03-01T00:00:00Z");
  c.set("window_closes", "2025-03-02T09:00:00+09:00");
  c.set("resamples", 0);
  Value late;  // no time of its own: received_at decides
  late.set("id", "i1");
  late.set("type", "battle");
  late.set("user", "u2");
  late.set("a", "team-b");
  late.set("b", "team-c");
  late.set("outcome", "A");
  late.set("received_at", "2025-03-02T00:00:00.001Z");
  Value ontime = late;
  ontime.set("id", "i2");
  ontime.set("received_at", "2025-03-01T12:00:00.000Z");
  Outcome o = run_round(c, kAbc, {{"v", late}, {"v", ontime}});
  EXPECT_EQ(o.excluded("battles", "outside_window"), 4);
  EXPECT_EQ(o.excluded("battles", "max_user_share"), 0);
  EXPECT_EQ(o.excluded("battles", "max_votes_per_pair"), 0);
  EXPECT_EQ(o.rejected("battles", "missing_time"), 1);
  EXPECT_EQ(o.counts("battles").get_int("counted"), 3);
  EXPECT_EQ(o.entrant("team-b").find("battles")->get_int("wins"), 2);
  EXPECT_EQ(o.summary().find("hygiene")->get_string("window_closes"), "2025-03-02T09:00:00+09:00");
}

TEST(UserScoresPlugin, PairCapExcludesLaterVotes) {
  TempDir tmp;
  write_file(tmp / "b.csv",
             "id,user,a,b,outcome,time\n"
             "1,u1,team-a,team-b,B,2025-03-01T12:00:00Z\n"  // third by time: out
             "2,u1,team-a,team-b,A,2025-03-01T10:00:00Z\n"
             "3,u1,team-b,team-a,B,2025-03-01T11:00:00Z\n"  // the same unordered pair
             "4,u1,team-a,team-c,A,2025-03-01T13:00:00Z\n"
             "5,u2,team-a,team-b,B,2025-03-01T13:00:00Z\n");
  write_file(tmp / "r.csv", "id,user,entrant,score\n1,u1,team-a,5\n2,u1,team-a,1\n3,u1,team-a,1\n4,u2,team-a,3\n");
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("ratings", list({tmp / "r.csv"}));
  c.set("max_votes_per_pair", 2);
  c.set("resamples", 0);
  Outcome o = run_round(c);
  EXPECT_EQ(o.excluded("battles", "max_votes_per_pair"), 1);
  EXPECT_EQ(o.excluded("ratings", "max_votes_per_pair"), 1);
  EXPECT_EQ(o.excluded("battles", "outside_window"), 0);
  EXPECT_EQ(o.excluded("battles", "max_user_share"), 0);
  EXPECT_EQ(o.entrant("team-a").find("battles")->get_int("wins"), 3) << "votes 2, 3 (u1) and 4 count; 1 does not";
  EXPECT_EQ(o.entrant("team-b").find("battles")->get_int("wins"), 1);
  // Ratings without times go by id: u1's ratings 1 and 2 count (5 and 1), 3 does not.
  EXPECT_DOUBLE_EQ(o.entrant("team-a").find("ratings")->get_double("mean"), 3.0);
  EXPECT_EQ(o.entrant("team-a").find("ratings")->get_int("n"), 3);
}

TEST(UserScoresPlugin, UserShareExcludesAndListsHeavyVoters) {
  TempDir tmp;
  std::string csv = "id,user,a,b,outcome\n";
  int id = 0;
  auto add = [&](const char* user, int n) {
    for (int i = 0; i < n; ++i) csv += std::to_string(++id) + "," + user + ",team-a,team-b," + (i % 2 ? "A" : "B") + "\n";
  };
  add("heavy", 6);
  add("mid", 3);
  add("light", 1);
  write_file(tmp / "b.csv", csv);
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("max_user_share", 0.5);
  c.set("resamples", 0);
  Outcome o = run_round(c);
  // Shares over all 10 valid votes: heavy 0.6 is out. Single pass: mid, 3 of the 4 left, stays.
  EXPECT_EQ(o.excluded("battles", "max_user_share"), 6);
  EXPECT_EQ(o.counts("battles").get_int("counted"), 4);
  auto& users = o.summary().find("excluded_users")->as_array();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].get_string("user"), "heavy");
  EXPECT_EQ(users[0].get_string("type"), "battle");
  EXPECT_EQ(users[0].get_int("votes"), 6);
  EXPECT_EQ(users[0].get_int("of"), 10);
  EXPECT_DOUBLE_EQ(users[0].get_double("share"), 0.6);

  // Off (0 or 1): nothing excluded, and the counts still say so.
  for (double off : {0.0, 1.0}) {
    c.set("max_user_share", off);
    Outcome none = run_round(c);
    EXPECT_EQ(none.excluded("battles", "max_user_share"), 0);
    EXPECT_EQ(none.counts("battles").get_int("counted"), 10);
    EXPECT_TRUE(none.summary().find("excluded_users")->as_array().empty());
  }
}

TEST(UserScoresPlugin, ScalingRules) {
  TempDir tmp;
  write_file(tmp / "b.csv", worked_example_csv());
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("resamples", 0);
  c.set("scale", 40.0);
  Outcome rel = run_round(c);
  double best = 0;
  for (const char* e : {"team-a", "team-b", "team-c"}) best = std::max(best, rel.entrant(e).get_double("u"));
  EXPECT_EQ(rel.points("team-a"), 40.0) << "the best entrant gets exactly the scale";
  for (const char* e : {"team-a", "team-b", "team-c"}) {
    EXPECT_DOUBLE_EQ(rel.points(e), 40 * rel.entrant(e).get_double("u") / best) << e;
    EXPECT_EQ(rel.entrant(e).get_double("scale"), 40.0);
  }
  c.set("scaling", "absolute");
  Outcome ab = run_round(c);
  for (const char* e : {"team-a", "team-b", "team-c"}) EXPECT_DOUBLE_EQ(ab.points(e), 40 * ab.entrant(e).get_double("u")) << e;
  EXPECT_LT(ab.points("team-a"), 40.0);
  EXPECT_NE(ab.summary().get_string("rule").find("points = 40 * u"), std::string::npos);
}

TEST(UserScoresPlugin, SameSeedSameOutput) {
  TempDir tmp;
  write_file(tmp / "b.csv", worked_example_csv());
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("resamples", 300);
  c.set("seed", 7);
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(c));
  auto first = h.finish(round_job(kAbc));
  auto second = h.finish(round_job(kAbc));
  ASSERT_TRUE(first && second);
  ASSERT_EQ(first->size(), second->size());
  for (size_t i = 0; i < first->size(); ++i) EXPECT_EQ((*first)[i].payload, (*second)[i].payload) << i;
  EXPECT_FALSE(h.progress().empty());
  EXPECT_EQ(h.progress().back(), std::make_pair(300.0, 300.0));
  // Another harness, the same seed: the same numbers.
  Outcome again = run_round(c);
  EXPECT_EQ(again.entrant("team-b"), (*first)[1].payload);
  c.set("seed", 8);
  Outcome other = run_round(c);
  EXPECT_NE(*other.entrant("team-b").find("battles")->find("win_prob_ci"), *again.entrant("team-b").find("battles")->find("win_prob_ci"))
      << "the seed matters";
  EXPECT_EQ(other.points("team-b"), again.points("team-b")) << "the estimate does not depend on the seed";
}

TEST(UserScoresPlugin, AnotherWinNeverLowersPoints) {
  TempDir tmp;
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("resamples", 0);
  for (const char* pair : {"team-b,team-a", "team-c,team-a", "team-c,team-b", "team-b,team-c", "team-a,team-c"}) {
    write_file(tmp / "b.csv", worked_example_csv());
    Outcome before = run_round(c);
    write_file(tmp / "b.csv", worked_example_csv() + "99,new," + pair + ",A\n");
    Outcome after = run_round(c);
    std::string winner = std::string(pair).substr(0, 6);
    EXPECT_GE(after.points(winner), before.points(winner)) << pair;
  }
}

TEST(UserScoresPlugin, EntrantWithoutVotesIsIncompleteNotZero) {
  TempDir tmp;
  write_file(tmp / "b.csv", worked_example_csv());
  write_file(tmp / "r.csv", "id,user,entrant,score\n1,u,team-a,4\n2,u,team-b,3\n3,v,team-b,5\n");
  Roster roster = kAbc;
  roster.push_back({"team-d", "Delta"});
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  c.set("ratings", list({tmp / "r.csv"}));
  c.set("resamples", 30);
  Outcome o = run_round(c, roster);
  ASSERT_EQ(o.messages.size(), 5u);
  const Value& d = o.entrant("team-d");
  EXPECT_FALSE(d.get_bool("complete", true));
  EXPECT_TRUE(d.find("points")->is_null()) << "no invented score";
  EXPECT_TRUE(d.find("rank")->is_null());
  EXPECT_EQ(d.get_string("reason"), "no counted battle votes");
  EXPECT_EQ(d.get_string("name"), "Delta");
  EXPECT_EQ(d.find("battles")->get_int("votes"), 0);
  EXPECT_TRUE(d.find("battles")->find("strength")->is_null());
  EXPECT_TRUE(d.find("ratings")->find("mean")->is_null());
  EXPECT_EQ(o.summary().find("incomplete")->as_array().size(), 1u);
  EXPECT_EQ(o.points("team-a"), 25.0) << "the best complete entrant still gets the full scale";
  // Blend needs both kinds: team-c has battles but no ratings.
  c.set("score", "blend");
  Outcome b = run_round(c, roster);
  EXPECT_FALSE(b.entrant("team-c").get_bool("complete", true));
  EXPECT_EQ(b.entrant("team-c").get_string("reason"), "no counted ratings (blend needs battles and ratings)");
  EXPECT_TRUE(b.entrant("team-a").get_bool("complete"));
}

// An intake channel nobody voted on: every entrant incomplete, nothing invented, and the
// summary still says what was read.
TEST(UserScoresPlugin, NoVotesAtAll) {
  Value c;
  c.set("intake", "votes");
  c.set("score", "blend");
  Outcome o = run_round(c);
  ASSERT_EQ(o.messages.size(), 4u);
  for (const char* e : {"team-a", "team-b", "team-c"}) {
    EXPECT_FALSE(o.entrant(e).get_bool("complete", true)) << e;
    EXPECT_TRUE(o.entrant(e).find("points")->is_null()) << e;
    EXPECT_EQ(o.entrant(e).get_string("reason"), "no counted battle votes or ratings");
  }
  EXPECT_EQ(o.counts("total").get_int("records"), 0);
  EXPECT_EQ(o.summary().find("intake")->get_int("records"), 0);
  EXPECT_TRUE(o.summary().find("ranking")->as_array().empty());
  EXPECT_EQ(o.summary().find("incomplete")->as_array().size(), 3u);
}

TEST(UserScoresPlugin, ConfigIsChecked) {
  Value ok;
  ok.set("battles", list({"/x.csv"}));
  EXPECT_EQ(configure_error(ok), "");
  auto with = [&](const char* key, Value v) {
    Value c = ok;
    c.set(key, std::move(v));
    return configure_error(c);
  };
  EXPECT_NE(with("likert_min", 5.0).find("config.likert_max: must be greater than likert_min"), std::string::npos);
  EXPECT_NE(with("window_opens", "tomorrow").find("config.window_opens: \"tomorrow\" is not an ISO 8601 time"), std::string::npos);
  Value order = ok;
  order.set("window_opens", "2025-03-02T00:00:00Z");
  order.set("window_closes", "2025-03-01T00:00:00Z");
  EXPECT_NE(configure_error(order).find("config.window_closes: 2025-03-01T00:00:00Z is not after window_opens"), std::string::npos);
  EXPECT_NE(with("score", "ratings").find("config.score: ratings needs ratings"), std::string::npos);
  EXPECT_NE(with("battles", Value(Array{})).find("config: no votes to read"), std::string::npos);
  EXPECT_NE(with("battles", Value(Array{Value(3)})).find("config.battles[0]: expected a file path, got int"), std::string::npos);
  EXPECT_NE(with("battle_weight", 1.5).find("config.battle_weight"), std::string::npos);
  EXPECT_NE(with("score", "elo").find("config.score"), std::string::npos);
  EXPECT_NE(with("max_user_share", 2.0).find("config.max_user_share"), std::string::npos);
  EXPECT_NE(with("scale", 0.0).find("config.scale: must be a finite number above 0"), std::string::npos);
  EXPECT_NE(with("colour", "red").find("config.colour: unknown key"), std::string::npos);
  Value intake_only;
  intake_only.set("intake", "votes");
  intake_only.set("score", "blend");
  EXPECT_EQ(configure_error(intake_only), "") << "an intake channel may carry both kinds";
}

TEST(UserScoresPlugin, FileProblemsFailTheJobNamingTheFile) {
  TempDir tmp;
  Value c;
  c.set("battles", list({tmp / "missing.csv"}));
  EXPECT_NE(round_error(c).find(tmp / "missing.csv"), std::string::npos);
  write_file(tmp / "broken.csv", "id,user,a,b,outcome\n1,u,team-a,team-b,A\n2,u,\"team-a,team-b,A\n");
  c.set("battles", list({tmp / "broken.csv"}));
  std::string err = round_error(c);
  EXPECT_NE(err.find(tmp / "broken.csv:3"), std::string::npos) << err;
  write_file(tmp / "cols.csv", "id,user,a,winner\n1,u,team-a,A\n");
  c.set("battles", list({tmp / "cols.csv"}));
  err = round_error(c);
  EXPECT_NE(err.find(tmp / "cols.csv:1: battle file has no column \"b\" (or entrant_b); its columns: id, user, a, winner"), std::string::npos) << err;
  // No finite MLE without a prior: the error says who and what to do.
  write_file(tmp / "b.csv", "id,user,a,b,outcome\n1,u,team-a,team-b,A\n2,u,team-b,team-c,A\n");
  c.set("battles", list({tmp / "b.csv"}));
  c.set("prior", 0.0);
  err = round_error(c);
  EXPECT_NE(err.find("never won: team-c; never lost: team-a"), std::string::npos) << err;
  EXPECT_NE(err.find("set prior above 0"), std::string::npos) << err;
  // The round must name its entrants.
  c.set("prior", 0.5);
  EXPECT_NE(round_error(c, {}).find("the round lists no entrants"), std::string::npos);
}

TEST(UserScoresPlugin, CancelledJobFails) {
  TempDir tmp;
  write_file(tmp / "b.csv", worked_example_csv());
  Value c;
  c.set("battles", list({tmp / "b.csv"}));
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(c));
  h.cancel();
  auto out = h.finish(round_job(kAbc));
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().find("cancelled"), std::string::npos);
}

}  // namespace
