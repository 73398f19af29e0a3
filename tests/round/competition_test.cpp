// The whole SAMPLE competition that tools/demo.sh runs, from its shipped definition and
// pipelines, through evalctl against a real evald: played twice, once straight through and
// once with the daemon killed (SIGKILL) and restarted as round 1 starts, in the middle of its
// benchmarks and after them, between the rounds, and in the middle of round 2. Both plays must come to the same decisions and write
// the same reports and artifacts, byte for byte once timestamps, measured durations and
// signatures are set aside (see Normaliser for exactly what is).
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "../benchmark/toy_server.hpp"
#include "../common/test_util.hpp"
#include "hash.hpp"
#include "json.hpp"

using namespace evald::test;
namespace fs = std::filesystem;

namespace {

const std::string kSource = EVALD_SOURCE_DIR;

struct Team {
  const char* id;
  const char* name;
  const char* weights;  // a model under tests/provenance/fixtures
  int server;           // which toy model serves it: 0 strong, 1 middling, 2 weak
  const char* round;
};
const Team kTeams[] = {{"team-a", "한빛 AI", "indep_same_data", 0, "round-1"},        {"team-b", "바다 랩스", "indep_diff_width", 1, "round-1"},
                       {"team-c", "산들 모델", "reinit_then_train", 1, "round-1"},    {"team-d", "누리 테크", "indep_same_data", 2, "round-1"},
                       {"team-e", "강산 AI", "vlm_reuse_Q", 0, "round-1"},            {"team-f", "별빛 연구소", "reinit_then_train", 1, "round-2"}};

// What may differ between two plays of the same competition, and nothing else:
//  - times: ISO 8601 timestamps anywhere, and the epoch milliseconds of "at_ms";
//  - process ids, which the actor of each request names ("root (uid 0, pid 4242) via ...");
//  - measured durations and rates (the JSON values of kMeasured): latencies, the wall time of
//    a benchmark and of a weight scan;
//  - the sha256 of a file or message payload that differs only in those: each hash of an
//    artifact (or payload) is replaced by the hash of that artifact (payload) once
//    normalised, so it must still name the same content;
//  - the sizes of the report files a manifest lists under "outputs", which hold measured
//    numbers of varying length (their hashes are compared as above);
//  - signatures (report.sig is not compared).
//  - how a job's work went rather than what it found (the benchmark's "execution": items
//    found stored from the killed attempt, requests sent), and its "throughput", measured on
//    the items an attempt ran;
const std::set<std::string, std::less<>> kMeasured = {"at_ms",   "latencies_s", "p50",     "p95",        "p99",     "wall_s",
                                                     "seconds", "seconds_compare", "bytes_per_second", "throughput", "execution"};

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Length of the ISO 8601 time at text[i] (YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm]), or 0.
size_t time_at(std::string_view t, size_t i) {
  static const char kShape[] = "dddd-dd-ddTdd:dd:dd";
  size_t n = 0;
  for (; kShape[n]; ++n)
    if (i + n >= t.size() || (kShape[n] == 'd' ? !is_digit(t[i + n]) : t[i + n] != kShape[n])) return 0;
  if (i + n < t.size() && t[i + n] == '.')
    for (++n; i + n < t.size() && is_digit(t[i + n]);) ++n;
  if (i + n < t.size() && t[i + n] == 'Z') return n + 1;
  if (i + n + 6 <= t.size() && (t[i + n] == '+' || t[i + n] == '-') && is_digit(t[i + n + 1]) && t[i + n + 3] == ':') return n + 6;
  return n;
}

// End of the JSON value starting at text[i].
size_t value_end(std::string_view t, size_t i) {
  if (i < t.size() && t[i] == '"') return std::min(t.size(), t.find('"', i + 1) + 1);
  int depth = 0;
  bool in_string = false;
  for (size_t k = i; k < t.size(); ++k) {
    char c = t[k];
    if (in_string) {
      if (c == '\\') ++k;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (depth == 0) return k;
      if (--depth == 0) return k + 1;
    } else if (depth == 0 && (c == ',' || c == '\n' || c == ' ')) {
      return k;
    }
  }
  return t.size();
}

// A manifest's "outputs" with their sizes set aside.
std::string without_output_sizes(std::string text) {
  size_t at = text.find("\"outputs\"");
  while (at != std::string::npos && (at = text.find("\"bytes\": ", at)) != std::string::npos) {
    size_t end = value_end(text, at + 9);
    text.replace(at + 9, end - at - 9, "\"~\"");
    at += 9;
  }
  return text;
}

class Normaliser {
 public:
  // Learns one play's artifacts (path -> bytes) and message payloads (their hash -> JSON):
  // the hash of each and its hash once normalised, repeated until stable, as a report hashes
  // files that hash other files.
  Normaliser(const std::map<std::string, std::string>& files, const std::map<std::string, std::string>& payloads) {
    for (int pass = 0; pass < 10; ++pass) {
      std::map<std::string, std::string, std::less<>> next;
      for (auto& [path, bytes] : files) next[evald::text::sha256_hex(bytes)] = evald::text::sha256_hex(file(path, bytes));
      for (auto& [hash, json] : payloads) next[hash] = evald::text::sha256_hex(apply(json));
      if (next == hashes_) return;
      hashes_ = std::move(next);
    }
    ADD_FAILURE() << "artifact hashes did not settle";
  }

  // An artifact as compared: apply(), and a manifest's output sizes set aside.
  std::string file(const std::string& path, std::string_view bytes) const {
    return path.ends_with("manifest.json") ? without_output_sizes(apply(bytes)) : apply(bytes);
  }

  std::string apply(std::string_view t) const {
    std::string out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
      char c = t[i];
      bool starts = i == 0 || !is_word(t[i - 1]);
      if (c == '"') {
        size_t close = t.find('"', i + 1);
        if (close != std::string_view::npos && kMeasured.count(t.substr(i + 1, close - i - 1))) {
          size_t k = close + 1;
          while (k < t.size() && t[k] == ' ') ++k;
          if (k < t.size() && t[k] == ':') {
            for (++k; k < t.size() && t[k] == ' ';) ++k;
            out.append(t.substr(i, k - i)).append("\"~\"");
            i = value_end(t, k);
            continue;
          }
        }
      }
      if (c == 'p' && t.substr(i, 4) == "pid " && i + 4 < t.size() && is_digit(t[i + 4])) {
        out += "pid <pid>";
        for (i += 4; i < t.size() && is_digit(t[i]);) ++i;
        continue;
      }
      if (starts && is_digit(c))
        if (size_t n = time_at(t, i)) {
          out += "<time>";
          i += n;
          continue;
        }
      if (starts && is_hex(c)) {
        size_t n = 0;
        while (i + n < t.size() && is_hex(t[i + n])) ++n;
        if (n == 64 && (i + n == t.size() || !is_word(t[i + n]))) {
          auto it = hashes_.find(t.substr(i, 64));
          out += it == hashes_.end() ? std::string(t.substr(i, 64)) : "<artifact " + it->second.substr(0, 16) + ">";
        } else {
          out.append(t.substr(i, n));
        }
        i += n;
        continue;
      }
      out += c;
      ++i;
    }
    return out;
  }

 private:
  std::map<std::string, std::string, std::less<>> hashes_;
};

// Where two texts part, with some context, for a failure message.
std::string where_they_differ(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  size_t from = i > 120 ? i - 120 : 0;
  return "at byte " + std::to_string(i) + "\n  straight through: ..." + a.substr(from, 240) + "\n  killed and restarted: ..." + b.substr(from, 240);
}

struct Play {
  std::map<std::string, std::string> files;  // the data dir's artifacts/, by path under it
  std::map<std::string, std::string> payloads;  // every message's payload as JSON, by the sha256 of its msgpack
  std::string competition;                   // evalctl --json competition report
  std::map<std::string, std::string> publication;  // competition report --out: file -> bytes
  std::vector<std::string> decisions;        // evalctl --json round decide, round by round
  int64_t requests = 0;                      // sent to the teams' endpoints
  int kills = 0;
  std::string public_key;                    // the reports' verifying key, hex
};

// Polls the run until `when` holds for its jobs (false once the run is over first).
template <typename Pred>
bool wait_for(const Daemon& d, const std::string& run, Pred when) {
  for (int i = 0; i < 3000; ++i) {
    auto r = d.ctl("--json run status " + run);
    evald::text::Json st;
    evald::text::JsonError err;
    if (r.code != 0 || !evald::text::parse_json(r.out, &st, &err)) return false;
    if (!st.find("state") || st.find("state")->str() != "running") return false;
    if (when(st.find("jobs")->items())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A benchmark job has answered some of its items.
bool mid_benchmark(const std::vector<evald::text::Json>& jobs) {
  for (auto& j : jobs) {
    auto* p = j.find("progress");
    if (p && j.find("stage")->str() == "bench" && j.find("state")->str() == "running" && p->find("done")->as_double() > 0) return true;
  }
  return false;
}

// Every benchmark is done, the round-level stages (scores, tally, report) are not.
bool after_benchmarks(const std::vector<evald::text::Json>& jobs) {
  size_t bench = 0;
  for (auto& j : jobs)
    if (j.find("stage")->str() == "bench") {
      if (j.find("state")->str() != "done") return false;
      ++bench;
    }
  return bench > 0;
}

// The competition as tools/demo.sh plays it, from the directory `root` laid out like the
// repository (the shipped pipelines name their inputs relative to it).
void play(const std::string& root, const std::vector<bench_test::ToyServer*>& models, bool interrupt, Play* out) {
  const std::string data = root + "/out/demo/evald-data";
  fs::remove_all(data);
  for (auto* m : models) m->reset();
  Daemon d(data);
  d.set_cwd(root);
  ASSERT_TRUE(d.start()) << d.log();
  auto ctl = [&](const std::string& args) {
    auto r = d.ctl(args);
    EXPECT_EQ(r.code, 0) << "evalctl " << args << "\n" << r.out << d.log();
    return r.out;
  };
  auto restart = [&] {
    d.kill(SIGKILL);
    ++out->kills;
    ASSERT_TRUE(d.start()) << d.log();
  };
  auto add = [&](const Team& t, const std::string& round, const std::string& model) {
    ctl("entrant add sample " + std::string(t.id) + " --name " + quote(t.name) + " --round " + round + " --set weights=tests/provenance/fixtures/" +
        t.weights + " --set endpoint=" + models[size_t(t.server)]->url() + " --set model=" + model);
  };
  auto run_round = [&](const std::string& round) {
    std::string run = ctl("run start sample " + round);
    run.erase(run.find_last_not_of(" \n") + 1);
    if (interrupt) {
      // Round 1 is also killed as soon as it starts, and once its benchmarks are done (when
      // that moment is caught: the round-level stages take well under a second).
      if (round == "round-1") restart();
      ASSERT_TRUE(wait_for(d, run, mid_benchmark)) << "the benchmark of " << run << " was not caught in the middle";
      restart();
      if (round == "round-1" && wait_for(d, run, after_benchmarks)) restart();
      if (testing::Test::HasFatalFailure()) return;
    }
    // Straight through, the operator watches the run; killed, it waits again after each restart.
    auto waited = d.ctl((interrupt ? "run wait " : "run watch ") + run);
    ASSERT_EQ(waited.code, 0) << waited.out << d.log();
    if (!interrupt) {
      EXPECT_NE(waited.out.find("bench/team-b "), std::string::npos) << waited.out;
      EXPECT_NE(waited.out.find("report/_round done"), std::string::npos) << waited.out;
    }
    out->decisions.push_back(ctl("--json round decide sample " + round));
  };

  ctl("pipeline load " + quote(root + "/pipelines/sample-round-1.yaml"));
  ctl("pipeline load " + quote(root + "/pipelines/sample-round-2.yaml"));
  ctl("competition define " + quote(root + "/pipelines/sample-competition.yaml"));
  for (auto& t : kTeams)
    if (std::string(t.round) == "round-1") add(t, "round-1", "toy");
  // Votes from the evaluation site come in through intake while round 1 is open.
  std::string votes;
  for (int i = 0; i < 12; ++i)
    votes += "{\"id\": \"site-" + std::to_string(i) + "\", \"type\": \"battle\", \"user\": \"site-user-" + std::to_string(i % 5) +
             "\", \"a\": \"team-c\", \"b\": \"team-" + std::string(1, char('a' + i % 2)) + "\", \"outcome\": \"" + (i % 3 ? "A" : "tie") +
             "\", \"time\": \"2026-11-20T12:00:00+09:00\"}\n";
  write_file(root + "/site-votes.jsonl", votes);
  ctl("intake open sample round-1 user-votes");
  ctl("intake submit sample round-1 user-votes " + quote(root + "/site-votes.jsonl"));
  ctl("intake close sample round-1 user-votes");

  run_round("round-1");
  if (testing::Test::HasFatalFailure()) return;
  if (interrupt) restart();  // between the rounds: round 2 exists, with the advancers
  if (testing::Test::HasFatalFailure()) return;
  // The advancers submit their round-2 models (served under another name, so the benchmark
  // runs them anew); team-f joins through the additional call.
  for (auto& t : kTeams)
    if (std::string(t.id) <= "team-c") add(t, "round-2", "toy-round2");
  ctl("call open sample round-2");
  add(kTeams[5], "round-2", "toy-round2");
  ctl("call close sample round-2");
  run_round("round-2");
  if (testing::Test::HasFatalFailure()) return;

  out->competition = ctl("--json competition report sample");
  ctl("competition report sample --out " + quote(root + "/competition"));
  for (const char* f : {"competition.html", "competition.md", "competition.json"}) out->publication[f] = read_file(root + "/competition/" + f);
  ctl("audit verify");
  // Both plays sign with the office's key (out/demo/keys): the first play's published key.
  if (out->public_key.empty()) out->public_key = read_file(data + "/artifacts/run-000001/report/_round/report.pub").substr(0, 64);
  const std::string pub = out->public_key;
  ASSERT_EQ(pub.size(), 64u);
  // Checked from another directory: relative inputs resolve against the daemon's working
  // directory the manifest records, or against --base.
  for (const char* run : {"run-000001", "run-000002"}) {
    auto v = d.ctl("report verify " + quote(data + "/artifacts/" + run + "/report/_round") + " --key " + pub);
    EXPECT_EQ(v.code, 0) << v.out;
  }
  auto based = d.ctl("report verify " + quote(data + "/artifacts/run-000002/report/_round") + " --key " + pub + " --base " + quote(root));
  EXPECT_EQ(based.code, 0) << based.out;
  auto elsewhere = d.ctl("report verify " + quote(data + "/artifacts/run-000002/report/_round") + " --key " + pub + " --base /nonexistent");
  EXPECT_NE(elsewhere.out.find("missing /nonexistent/suites/sample-ko-general/items.jsonl"), std::string::npos) << elsewhere.out;
  for (const char* run : {"run-000001", "run-000002"}) {
    evald::Value q;
    q.set("op", "run.outputs");
    q.set("run", run);
    evald::Value r = control(data, q);
    ASSERT_TRUE(r.get_bool("ok")) << evald::to_json(r);
    for (auto& m : r.find("result")->as_array()) {
      evald::Bytes b = evald::msgpack::encode(*m.find("payload"));
      out->payloads[evald::text::sha256_hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()))] = evald::to_json(*m.find("payload"));
    }
  }
  ctl("shutdown");
  EXPECT_EQ(d.wait_exit(), 0);
  for (auto& e : fs::recursive_directory_iterator(data + "/artifacts"))
    if (e.is_regular_file()) out->files[fs::relative(e.path(), data + "/artifacts").string()] = read_file(e.path().string());
  for (auto* m : models) out->requests += m->requests();
}

// The decision a `round decide --json` answer gives for a list ("advance", ...), as JSON text.
std::string decided(const std::string& answer, const std::string& list) {
  evald::text::Json v;
  evald::text::JsonError err;
  if (!evald::text::parse_json(answer, &v, &err) || !v.find(list)) return "?";
  std::string s = "[";
  for (auto& e : v.find(list)->items()) s += (s.size() > 1 ? "," : "") + e.str();
  return s + "]";
}

}  // namespace

TEST(Competition, KilledAnywhereItEndsWithTheSameDecisionsAndReports) {
  TempDir tmp;
  const std::string root = tmp / "repo";
  fs::create_directories(root + "/tools");
  fs::create_directories(root + "/out/demo");
  fs::create_directories(root + "/tests/provenance");
  fs::create_directory_symlink(kSource + "/suites", root + "/suites");
  fs::create_directory_symlink(kSource + "/pipelines", root + "/pipelines");
  fs::create_directory_symlink(kSource + "/tools/demo", root + "/tools/demo");
  fs::create_directory_symlink(kSource + "/tests/provenance/fixtures", root + "/tests/provenance/fixtures");
  for (const char* ref : {"open_P", "open_Q"}) {
    auto r = run(std::string(EVALD_PROVENANCE_TOOL) + " add -q --library " + quote(root + "/out/demo/library") + " --name " + ref +
                 " --revision v1 " + quote(root + "/tests/provenance/fixtures/" + ref));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  bench_test::ToyServer strong(0.9), middling(0.75), weak(0.5);
  const std::vector<bench_test::ToyServer*> models = {&strong, &middling, &weak};

  Play straight, killed;
  play(root, models, false, &straight);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(straight.decisions.size(), 2u);
  EXPECT_EQ(decided(straight.decisions[0], "advance"), "[team-a,team-b,team-c]") << straight.decisions[0];
  EXPECT_EQ(decided(straight.decisions[0], "eliminated"), "[team-d]");
  EXPECT_EQ(decided(straight.decisions[0], "disqualified"), "[team-e]") << "team-e reuses the open VLM's vision encoder";
  EXPECT_EQ(decided(straight.decisions[1], "advance"), "[team-a,team-c]") << straight.decisions[1];
  EXPECT_EQ(decided(straight.decisions[1], "eliminated"), "[team-b,team-f]");
  EXPECT_NE(straight.competition.find("\"finalists\":[\"team-a\",\"team-c\"]"), std::string::npos) << straight.competition;
  EXPECT_NE(straight.competition.find("\"via\":\"additional call\""), std::string::npos);

  killed.public_key = straight.public_key;
  play(root, models, true, &killed);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_GE(killed.kills, 4);
  std::cout << "killed " << killed.kills << " times; requests: " << straight.requests << " straight through, " << killed.requests
            << " killed and restarted\n";

  // The same files, and the same bytes in each once normalised.
  Normaliser ns(straight.files, straight.payloads), nk(killed.files, killed.payloads);
  std::set<std::string> a, b;
  for (auto& [p, _] : straight.files) a.insert(p);
  for (auto& [p, _] : killed.files) b.insert(p);
  EXPECT_EQ(a, b);
  size_t compared = 0;
  for (auto& [path, bytes] : straight.files) {
    if (path.ends_with("report.sig") || !killed.files.count(path)) continue;
    std::string x = ns.file(path, bytes), y = nk.file(path, killed.files[path]);
    EXPECT_TRUE(x == y) << path << " differs " << where_they_differ(x, y);
    ++compared;
  }
  EXPECT_GE(compared, 30u);
  for (auto& [file, bytes] : straight.publication)
    EXPECT_TRUE(ns.apply(bytes) == nk.apply(killed.publication[file])) << file << " differs " << where_they_differ(ns.apply(bytes), nk.apply(killed.publication[file]));
  const std::string& page = straight.publication["competition.html"];
  EXPECT_NE(page.find("한빛 AI (team-a), 산들 모델 (team-c)"), std::string::npos) << "the finalists head the page";
  EXPECT_NE(page.find("additional call"), std::string::npos);
  EXPECT_NE(page.find("상위 2"), std::string::npos) << "round 2's cut, from the definition";
  EXPECT_TRUE(ns.apply(straight.competition) == nk.apply(killed.competition))
      << "competition report differs " << where_they_differ(ns.apply(straight.competition), nk.apply(killed.competition));
  ASSERT_EQ(killed.decisions.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(ns.apply(straight.decisions[i]) == nk.apply(killed.decisions[i]))
        << "decision of round " << i + 1 << " " << where_they_differ(ns.apply(straight.decisions[i]), nk.apply(killed.decisions[i]));

  // A restarted benchmark resumes: at most the requests in flight at each kill inside a round
  // (8 concurrent, plus the 4 requests of the method probe a restarted job sends) are sent again.
  EXPECT_GE(killed.requests, straight.requests);
  EXPECT_LE(killed.requests, straight.requests + (killed.kills - 1) * (8 + 4)) << "straight through: " << straight.requests << " requests";
}
