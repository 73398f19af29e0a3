// The openai backend over real HTTP against the toy server: scoring by logprobs and by
// generation, debiasing, resume from stored items, retries, timeouts, body cap, bad answers.
#include "toy_server.hpp"

#include "http_client.hpp"
#include "runner.hpp"
#include "scoring.hpp"
#include "suite.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

using namespace evald::bench;
using bench_test::MapKv;
using bench_test::TempDir;
using bench_test::ToyServer;
using bench_test::write_file;

namespace {

Suite sample(const std::string& name) {
  auto s = load_suite(bench_test::kSuites + "/" + name + "/suite.yaml");
  if (!s) throw std::runtime_error(s.error());
  return *s;
}

HttpClient client_for(const ToyServer& srv, ClientOptions o = {}) {
  o.backoff_s = 0.01;
  return HttpClient(*parse_endpoint(srv.url()), o);
}

RunOptions opts(std::string model, std::string scoring = "auto", std::string api = "completions") {
  RunOptions r;
  r.model = std::move(model);
  r.decoding.scoring = std::move(scoring);
  r.decoding.api = std::move(api);
  return r;
}

// What the toy model must score: it answers known items right and says "A" otherwise.
struct Expect {
  int64_t plain = 0, debiased = 0, n = 0;
};
Expect expected(const Suite& s, double know) {
  Expect e;
  for (auto& it : s.items) {
    bool k = bench_test::toy_knows(it.id, know);
    ++e.n;
    e.plain += k || it.answer == 0;
    e.debiased += k;
  }
  return e;
}

}  // namespace

TEST(BenchmarkEndpoint, Parse) {
  auto e = parse_endpoint("http://127.0.0.1:8000/v1/");
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8000);
  EXPECT_EQ(e->base_path, "/v1");
  e = parse_endpoint("http://model.local/v1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 80);
  e = parse_endpoint("http://[::1]:9/v1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 9);
  EXPECT_FALSE(parse_endpoint("https://x/v1"));
  EXPECT_FALSE(parse_endpoint("http://x:99999/v1"));
  EXPECT_FALSE(parse_endpoint("ftp://x"));
  EXPECT_FALSE(parse_endpoint("http://:80/v1"));
}

TEST(BenchmarkRunner, LogprobScoringAndDebiasing) {
  ToyServer srv(0.75);
  Suite s = sample("sample-en-reasoning");
  auto c = client_for(srv);
  MapKv kv;
  auto r = run_suite(s, c, kv, opts("toy"));
  ASSERT_TRUE(r) << r.error();
  Expect e = expected(s, 0.75);
  EXPECT_EQ(r->get_string("method"), "logprobs");
  EXPECT_EQ(r->get_int("n"), e.n);
  EXPECT_EQ(r->get_int("correct"), e.plain);
  EXPECT_EQ(r->get_int("debiased_correct"), e.debiased);
  EXPECT_LT(e.debiased, e.plain);  // the position bias is there to be exposed
  EXPECT_DOUBLE_EQ(r->get_double("score"), double(e.debiased) / double(e.n));
  auto* ci = r->find("ci");
  auto [lo, hi] = wilson_interval(double(e.plain), double(e.n));
  EXPECT_DOUBLE_EQ(ci->as_array()[0].as_double(), lo);
  EXPECT_DOUBLE_EQ(ci->as_array()[1].as_double(), hi);
  // 24 items x 4 rotations x (4 choices + an echo of the context: the toy has no tokenize
  // endpoint), plus the probe: 4 echoes and one try of each tokenize shape.
  EXPECT_EQ(srv.requests(), 24 * 4 * 5 + 4 + 3);
  EXPECT_NE(r->get_string("method_why").find("an echo of the context alone"), std::string::npos) << r->get_string("method_why");
  EXPECT_EQ(r->find("execution")->get_int("run"), 96);
  EXPECT_EQ(r->find("categories")->as_array().size(), 4u);
  EXPECT_EQ(r->find("throughput")->get_string("measured"), "this run");
  EXPECT_GT(r->find("throughput")->get_double("items_per_s"), 0);
  EXPECT_EQ(r->find("latency_s")->get_int("n"), 24 * 4 * 4);
  EXPECT_EQ(r->find("decoding")->get_string("method"), "logprobs");
  EXPECT_EQ(r->find("item_files")->as_array().size(), 2u);  // items + few-shot file

  // Resume: a second run finds every item stored and sends nothing.
  srv.reset();
  auto again = run_suite(s, c, kv, opts("toy"));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(srv.requests(), 0);
  EXPECT_EQ(again->get_int("correct"), e.plain);
  EXPECT_EQ(again->find("execution")->get_int("cached"), 96);
  EXPECT_EQ(again->find("throughput")->get_string("measured"), "an earlier run (every item was stored)");

  // Another model is another identity: nothing cached for it.
  srv.reset();
  ASSERT_TRUE(run_suite(s, c, kv, opts("toy-500once")));
  EXPECT_GT(srv.requests(), 96);
}

TEST(BenchmarkRunner, PartialResumeRunsOnlyMissingItems) {
  ToyServer srv(0.5);
  Suite s = sample("sample-ko-general");
  auto c = client_for(srv);
  MapKv kv;
  ASSERT_TRUE(run_suite(s, c, kv, opts("toy", "generate")));
  // Forget 5 items (as if the daemon died with them in flight).
  int dropped = 0;
  for (auto it = kv.m.begin(); it != kv.m.end() && dropped < 5;) {
    if (it->first.rfind("item/", 0) == 0 && it->first.find("#r") == std::string::npos) {
      it = kv.m.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  srv.reset();
  auto r = run_suite(s, c, kv, opts("toy", "generate"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(srv.requests(), 5);
  Expect e = expected(s, 0.5);
  EXPECT_EQ(r->get_int("correct"), e.plain);
  EXPECT_EQ(r->get_int("debiased_correct"), e.debiased);
}

TEST(BenchmarkRunner, GenerationWhenNoLogprobs) {
  ToyServer srv(0.75);
  Suite s = sample("sample-ko-general");
  s.debias_rotate = false;
  auto c = client_for(srv);
  MapKv kv;
  auto r = run_suite(s, c, kv, opts("toy-nolp"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->get_string("method"), "generate");
  Expect e = expected(s, 0.75);
  EXPECT_EQ(r->get_int("correct"), e.plain);
  EXPECT_FALSE(r->find("debiased_accuracy"));
  EXPECT_EQ(srv.requests(), 4 + 24);  // probe, then one generation per item
  // The probe's answer is remembered: a rerun with a fresh item cache probes nothing.
  for (auto it = kv.m.begin(); it != kv.m.end();) it = it->first.rfind("probe/", 0) == 0 ? std::next(it) : kv.m.erase(it);
  srv.reset();
  ASSERT_TRUE(run_suite(s, c, kv, opts("toy-nolp")));
  EXPECT_EQ(srv.requests(), 24);
  // Chat completions generate too, with the same answers.
  MapKv kv2;
  auto chat = run_suite(s, c, kv2, opts("toy", "auto", "chat"));
  ASSERT_TRUE(chat) << chat.error();
  EXPECT_EQ(chat->get_string("method"), "generate");
  EXPECT_EQ(chat->get_int("correct"), e.plain);
  // Forcing logprobs on an endpoint without them fails the items clearly.
  MapKv kv3;
  auto forced = run_suite(s, c, kv3, opts("toy-nolp", "logprobs"));
  ASSERT_FALSE(forced);
  EXPECT_NE(forced.error().find("no prompt logprobs"), std::string::npos) << forced.error();
}

TEST(BenchmarkRunner, ExactMatchAndGenerationSuites) {
  TempDir d;
  write_file(d / "em/items.jsonl",
             "{\"id\":\"em1\",\"prompt\":\"What is the capital of France?\",\"answers\":[\"Paris\"]}\n"
             "{\"id\":\"em2\",\"prompt\":\"대한민국의 수도는?\",\"answers\":[\"서울\",\"Seoul\"]}\n"
             "{\"id\":\"em3\",\"prompt\":\"What colour is the sky on a clear day?\",\"answers\":[\"blue\"]}\n");
  write_file(d / "em/suite.yaml", "name: em\nversion: 2\ntask: exact_match\nnormalise: [lowercase, strip_punctuation, strip_whitespace]\nitems: [items.jsonl]\n");
  write_file(d / "gen/items.jsonl",
             "{\"id\":\"g1\",\"prompt\":\"Name two primary colours.\",\"contains\":[\"red\",\"blue\"]}\n"
             "{\"id\":\"g2\",\"prompt\":\"Say a number between 10 and 20.\",\"regex\":\"1[0-9]\",\"contains\":\"15\"}\n");
  write_file(d / "gen/suite.yaml", "name: gen\nversion: 1\ntask: generation\nnormalise: [lowercase]\nitems: [items.jsonl]\n");
  ToyServer srv(1.0, {d.path().string()});
  auto c = client_for(srv);
  MapKv kv;
  auto em = run_suite(*load_suite(d / "em/suite.yaml"), c, kv, opts("toy"));
  ASSERT_TRUE(em) << em.error();
  EXPECT_EQ(em->get_int("correct"), 3);  // "  PARIS.\nBecause I know." normalises to "paris"
  EXPECT_EQ(em->get_string("method"), "generate");
  auto gen = run_suite(*load_suite(d / "gen/suite.yaml"), c, kv, opts("toy"));
  ASSERT_TRUE(gen) << gen.error();
  // g1: "Here: red and blue" passes; g2: "Here: 15" matches the regex and contains 15.
  EXPECT_EQ(gen->get_int("correct"), 2);
  ToyServer dunce(0.0, {d.path().string()});
  auto c2 = client_for(dunce);
  MapKv kv2;
  auto none = run_suite(*load_suite(d / "em/suite.yaml"), c2, kv2, opts("toy"));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->get_int("correct"), 0);
}

TEST(BenchmarkClient, RetriesOn429And500) {
  ToyServer srv;
  std::vector<HttpRequest> reqs;
  for (int i = 0; i < 6; ++i) reqs.push_back({"/completions", "{\"model\":\"toy-429\",\"prompt\":\"p" + std::to_string(i) + "\"}"});
  ClientOptions o;
  o.retries = 2;
  o.concurrency = 3;
  auto c = client_for(srv, o);
  std::vector<HttpOutcome> out(reqs.size());
  c.run(reqs, [&](size_t i, HttpOutcome r) { out[i] = std::move(r); });
  for (auto& r : out) {
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.attempts, 2);
  }
  EXPECT_EQ(srv.requests(), 12);

  // Always 500: gives up after 1 + retries attempts and says so.
  std::vector<HttpRequest> bad{{"/completions", "{\"model\":\"toy-500\",\"prompt\":\"x\"}"}};
  HttpOutcome b;
  c.run(bad, [&](size_t, HttpOutcome r) { b = std::move(r); });
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(b.attempts, 3);
  EXPECT_EQ(b.status, 500);
  EXPECT_NE(b.error.find("HTTP 500"), std::string::npos) << b.error;
  EXPECT_NE(b.error.find("after 3 attempts"), std::string::npos) << b.error;

  // A 4xx other than 429 is not retried.
  std::vector<HttpRequest> nf{{"/nowhere", "{}"}};
  c.run(nf, [&](size_t, HttpOutcome r) { b = std::move(r); });
  EXPECT_EQ(b.attempts, 1);
  EXPECT_EQ(b.status, 404);
}

TEST(BenchmarkClient, TimeoutBodyCapAndConnectionErrors) {
  ToyServer srv(0.75, {bench_test::kSuites}, 3.0);
  ClientOptions o;
  o.timeout_s = 0.3;
  o.retries = 1;
  o.max_body_bytes = 1 << 20;
  auto c = client_for(srv, o);
  HttpOutcome r;
  auto t0 = std::chrono::steady_clock::now();
  c.run({{"/completions", "{\"model\":\"toy-slow\",\"prompt\":\"x\"}"}}, [&](size_t, HttpOutcome x) { r = std::move(x); });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("no complete response within 0.3 s (timeout_s)"), std::string::npos) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_LT(took, 2.0);  // not the server's 3 s

  c.run({{"/completions", "{\"model\":\"toy-huge\",\"prompt\":\"x\"}"}}, [&](size_t, HttpOutcome x) { r = std::move(x); });
  EXPECT_FALSE(r.ok()) << "status " << r.status << " attempts " << r.attempts << " body " << r.body.size() << " " << r.body.substr(0, 100);
  EXPECT_NE(r.error.find("response body over 1048576 bytes (max_body_bytes)"), std::string::npos) << r.error;
  EXPECT_EQ(r.attempts, 1);

  // Nothing listening: a connection error after the retries.
  auto dead = HttpClient(*parse_endpoint("http://127.0.0.1:1/v1"), o);
  dead.run({{"/completions", "{}"}}, [&](size_t, HttpOutcome x) { r = std::move(x); });
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("cannot connect to 127.0.0.1:1"), std::string::npos) << r.error;
  EXPECT_EQ(r.attempts, 2);
}

TEST(BenchmarkClient, KeepAliveRateCapAndServerCloses) {
  ToyServer srv;
  ClientOptions o;
  o.concurrency = 2;
  o.rate_limit = 20;
  auto c = client_for(srv, o);
  std::vector<HttpRequest> reqs;
  for (int i = 0; i < 11; ++i) reqs.push_back({"/completions", "{\"model\":\"toy\",\"prompt\":\"q" + std::to_string(i) + "\"}"});
  int ok = 0;
  auto t0 = std::chrono::steady_clock::now();
  c.run(reqs, [&](size_t, HttpOutcome r) { ok += r.ok(); });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ok, 11);
  EXPECT_GE(took, 0.49);  // 11 starts at 20/s: the last one 0.5 s after the first
  // A server that closes after each answer: every request still succeeds (reconnects).
  std::vector<HttpRequest> closing;
  for (int i = 0; i < 5; ++i) closing.push_back({"/completions", "{\"model\":\"toy-close\",\"prompt\":\"c" + std::to_string(i) + "\"}"});
  ok = 0;
  c.run(closing, [&](size_t, HttpOutcome r) { ok += r.ok(); });
  EXPECT_EQ(ok, 5);
}

TEST(BenchmarkClient, CancelStopsRemainingRequests) {
  ToyServer srv(0.75, {bench_test::kSuites}, 1.0);
  ClientOptions o;
  o.concurrency = 1;
  o.timeout_s = 10;
  auto c = client_for(srv, o);
  std::vector<HttpRequest> reqs(5, HttpRequest{"/completions", "{\"model\":\"toy-slow\",\"prompt\":\"x\"}"});
  auto t0 = std::chrono::steady_clock::now();
  int cancelled = 0;
  c.run(reqs, [&](size_t, HttpOutcome r) { cancelled += r.error == "cancelled"; },
        [&] { return std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(300); });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(cancelled, 5);
  EXPECT_LT(took, 1.0);
}

TEST(BenchmarkRunner, BadAnswersFailTheSuiteButKeepTheRest) {
  ToyServer srv;
  Suite s = sample("sample-ko-general");
  s.debias_rotate = false;
  auto c = client_for(srv);
  MapKv kv;
  auto r = run_suite(s, c, kv, opts("toy-nonjson", "generate"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("sample-ko-general@1: 24 of 24 items failed"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("response is not JSON"), std::string::npos) << r.error();
  ClientOptions o;
  o.retries = 0;
  auto c0 = client_for(srv, o);
  auto five = run_suite(s, c0, kv, opts("toy-500", "generate"));
  ASSERT_FALSE(five);
  EXPECT_NE(five.error().find("HTTP 500"), std::string::npos) << five.error();
  // The probe of an endpoint that is down fails the suite instead of guessing a method.
  auto probe = run_suite(s, c0, kv, opts("toy-500"));
  ASSERT_FALSE(probe);
  EXPECT_NE(probe.error().find("probing whether"), std::string::npos) << probe.error();
}

TEST(BenchmarkRunner, EchoWithOneGeneratedTokenScoresOnlyTheChoice) {
  // Some servers refuse max_tokens 0 with echo: with 1, the generated token (" ok", -0.5)
  // lies past the choice and must not count.
  ToyServer srv(0.75);
  Suite s = sample("sample-ko-general");
  s.debias_rotate = false;
  auto c = client_for(srv);
  MapKv kv;
  RunOptions o = opts("toy", "logprobs");
  o.decoding.logprob_max_tokens = 1;
  auto r = run_suite(s, c, kv, o);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->get_int("correct"), expected(s, 0.75).plain);
  EXPECT_EQ(r->find("decoding")->get_int("logprob_max_tokens"), 1);
  // Each stored record has the four choices' sums: -0.1 for the pick, -4 for the others.
  int picks = 0;
  for (auto& [k, v] : kv.m) {
    if (k.rfind("item/", 0) != 0) continue;
    auto rec = evald::msgpack::decode(v);
    ASSERT_TRUE(rec);
    for (auto& lp : rec->find("choice_logprobs")->as_array()) picks += lp.as_double() == -0.1;
  }
  EXPECT_EQ(picks, 24);
}

TEST(BenchmarkRunner, DegenerateSuitesAreFlagged) {
  // A model that knows nothing answers "A" to everything, while the right letters vary.
  ToyServer srv(0.0);
  Suite s = sample("sample-en-reasoning");
  auto c = client_for(srv);
  MapKv kv;
  auto gen = run_suite(s, c, kv, opts("toy", "generate"));
  ASSERT_TRUE(gen) << gen.error();
  auto& flags = gen->find("flags")->as_array();
  ASSERT_EQ(flags.size(), 1u) << evald::to_json(*gen->find("flags"));
  EXPECT_EQ(flags[0].get_string("flag"), "one_letter");
  EXPECT_EQ(flags[0].get_string("letter"), "A");
  EXPECT_NE(flags[0].get_string("message").find("while the right answers vary (A: 24, B: 24, C: 24, D: 24)"), std::string::npos)
      << flags[0].get_string("message");

  // An echo whose logprobs are flat: every choice ties, and the first wins every time.
  auto flat = run_suite(s, c, kv, opts("toy-flat", "logprobs"));
  ASSERT_TRUE(flat) << flat.error();
  std::set<std::string> kinds;
  for (auto& f : flat->find("flags")->as_array()) kinds.insert(f.get_string("flag"));
  EXPECT_EQ(kinds, (std::set<std::string>{"one_letter", "ties"}));
  for (auto& rec : flat->find("records")->as_array()) {
    EXPECT_TRUE(rec.get_bool("tie"));
    // Each choice's continuation is one token here, its logprob kept for review.
    for (auto& ch : rec.find("choices_scored")->as_array()) {
      EXPECT_EQ(ch.get_int("tokens"), 1);
      EXPECT_DOUBLE_EQ(ch.get_double("logprob"), -1.0);
    }
  }

  // A healthy toy is not flagged.
  ToyServer good(0.75);
  auto c2 = client_for(good);
  MapKv kv2;
  auto ok = run_suite(s, c2, kv2, opts("toy", "logprobs"));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_TRUE(ok->find("flags")->as_array().empty());
}
