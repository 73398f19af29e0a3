// The benchmark plugin against real llama.cpp inference: node-llama-cpp's prebuilt CPU engine
// (installed by tools/install-deps.sh) serving a tiny random GGUF model through
// tests/benchmark/engine/server.mjs, which spells echoed tokens as real servers do (decoded
// text with OpenAI's "bytes:\xNN", raw SentencePiece pieces, or lossy U+FFFD). Every choice's
// log-likelihood is checked against tests/benchmark/engine/oracle.mjs, computed with the
// engine's own tokenizer and no HTTP or token text, to 1e-4.
#include "engine_server.hpp"

#include "json.hpp"
#include "runner.hpp"
#include "suite.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace evald::bench;
using bench_test::EngineServer;
using bench_test::kEngineDir;
using bench_test::kEngineSrc;
using bench_test::MapKv;
using bench_test::node;
using bench_test::scratch;
using bench_test::tiny_model;

namespace {

// Runs oracle.mjs over requests (one JSON object each) and returns its answers in order.
std::vector<evald::text::Json> oracle(const std::vector<evald::Value>& requests) {
  std::string in = scratch() / "oracle-in.jsonl", out = scratch() / "oracle-out.jsonl";
  std::string text;
  for (auto& r : requests) text += evald::to_json(r) + "\n";
  bench_test::write_file(in, text);
  std::string cmd = node() + " " + kEngineSrc + "/oracle.mjs --modules " + kEngineDir + "/node_modules --model " + tiny_model() + " < " + in +
                    " > " + out;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("oracle failed: " + cmd);
  std::ifstream f(out);
  std::vector<evald::text::Json> answers;
  for (std::string line; std::getline(f, line);) {
    evald::text::Json j;
    evald::text::JsonError e;
    if (!evald::text::parse_json(line, &j, &e)) throw std::runtime_error("oracle answer is not JSON: " + line);
    answers.push_back(std::move(j));
  }
  if (answers.size() != requests.size()) throw std::runtime_error("oracle gave " + std::to_string(answers.size()) + " answers");
  return answers;
}

Suite sample(const std::string& name, bool rotate) {
  auto s = load_suite(bench_test::kSuites + "/" + name + "/suite.yaml");
  if (!s) throw std::runtime_error(s.error());
  s->debias_rotate = rotate;
  return *s;
}

RunOptions opts(std::string scoring, std::string context_tokens = "auto") {
  RunOptions r;
  r.model = "tiny";
  r.decoding.scoring = std::move(scoring);
  r.context_tokens = std::move(context_tokens);
  return r;
}

HttpClient client_for(const EngineServer& srv) {
  ClientOptions o;
  o.concurrency = 4;
  o.timeout_s = 60;
  return HttpClient(*parse_endpoint(srv.url()), o);
}

const Item& item_of(const Suite& s, const std::string& id) {
  for (auto& it : s.items)
    if (it.id == id) return it;
  throw std::runtime_error("no item " + id);
}

// Checks every choice of every record of result against the oracle: the same log-likelihood
// to 1e-4 and the same number of continuation tokens. Returns how many choices were checked.
size_t check_against_oracle(const Suite& s, const evald::Value& result) {
  std::vector<evald::Value> reqs;
  std::vector<std::pair<const evald::Value*, size_t>> where;
  for (auto& rec : result.find("records")->as_array()) {
    const Item* item = &item_of(s, rec.get_string("item"));
    std::string prompt = render_prompt(s, *item, rotate_choices(item->choices, size_t(rec.get_int("rotation"))));
    auto& scored = rec.find("choices_scored")->as_array();
    EXPECT_EQ(scored.size(), item->choices.size());
    for (size_t c = 0; c < scored.size(); ++c) {
      evald::Value q;
      q.set("op", "loglikelihood");
      q.set("context", prompt);
      q.set("continuation", s.answer_prefix + letter(c));
      reqs.push_back(std::move(q));
      where.push_back({&scored[c], c});
    }
  }
  auto answers = oracle(reqs);
  for (size_t i = 0; i < answers.size(); ++i) {
    const evald::Value& got = *where[i].first;
    double want = answers[i].find("logprob")->as_double();
    EXPECT_NEAR(got.get_double("logprob"), want, 1e-4) << "choice " << got.get_string("choice") << " of " << evald::to_json(got);
    EXPECT_EQ(uint64_t(got.get_int("tokens")), answers[i].find("tokens")->as_uint()) << evald::to_json(got);
  }
  return answers.size();
}

bool has(const evald::Value& list, const std::string& needle) {
  for (auto& x : list.as_array())
    if (x.as_string().find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

class BenchmarkEngine : public ::testing::TestWithParam<std::string> {};

// The issue this guards against: reading text offsets made every choice of a real server's
// echo sum the same prompt tokens, and every answer "A".
TEST_P(BenchmarkEngine, LoglikelihoodsMatchTheEngine) {
  EngineServer srv(GetParam());
  auto c = client_for(srv);
  for (std::string name : {"sample-ko-general", "sample-en-reasoning"}) {
    // Every rotation of the Korean suite with decoded text; else the first order only.
    Suite s = sample(name, GetParam() == "openai" && name == "sample-ko-general");
    MapKv kv;
    auto r = run_suite(s, c, kv, opts("logprobs"));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->get_string("method"), "logprobs");
    EXPECT_NE(r->get_string("method_why").find("llama.cpp's shape"), std::string::npos) << r->get_string("method_why");
    EXPECT_TRUE(r->find("flags")->as_array().empty()) << evald::to_json(*r->find("flags"));
    auto& conv = *r->find("loglikelihood")->find("echo_conventions");
    EXPECT_TRUE(has(conv, "leading special token \"<s>\"")) << evald::to_json(conv);
    EXPECT_TRUE(has(conv, "leading space")) << evald::to_json(conv);
    if (name == "sample-ko-general") {
      const char* bytes = GetParam() == "openai" ? "bytes:" : GetParam() == "pieces" ? "<0xNN>" : "U+FFFD";
      EXPECT_TRUE(has(conv, bytes)) << evald::to_json(conv);
    }
    EXPECT_EQ(r->find("loglikelihood")->get_int("units_with_merged_boundary"), 0);
    size_t checked = check_against_oracle(s, *r);
    EXPECT_EQ(checked, s.items.size() * 4 * (s.debias_rotate ? 4 : 1));
    // Not one letter for everything: the answers are the model's.
    std::set<std::string> letters;
    for (auto& rec : r->find("records")->as_array()) letters.insert(rec.get_string("extracted"));
    EXPECT_GT(letters.size(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(TokenSpellings, BenchmarkEngine, ::testing::Values("openai", "pieces", "lossy"));

TEST(BenchmarkEngineCounts, TokenizeAndEchoOfTheContextAgree) {
  EngineServer srv("openai");
  auto c = client_for(srv);
  Suite s = sample("sample-ko-general", false);
  MapKv kv1, kv2;
  auto by_tokenize = run_suite(s, c, kv1, opts("logprobs", "tokenize"));
  auto by_echo = run_suite(s, c, kv2, opts("logprobs", "echo"));
  ASSERT_TRUE(by_tokenize) << by_tokenize.error();
  ASSERT_TRUE(by_echo) << by_echo.error();
  EXPECT_NE(by_echo->find("loglikelihood")->get_string("context_tokens").find("echo of the context"), std::string::npos);
  EXPECT_NE(by_tokenize->find("loglikelihood")->get_string("context_tokens").find("/tokenize"), std::string::npos);
  EXPECT_EQ(by_echo->find("loglikelihood")->get_string("context_tokens_by"), "echo");
  EXPECT_EQ(by_tokenize->find("loglikelihood")->get_string("context_tokens_by"), "llama.cpp");
  auto& a = by_tokenize->find("records")->as_array();
  auto& b = by_echo->find("records")->as_array();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].get_int("context_tokens"), b[i].get_int("context_tokens"));
    EXPECT_EQ(evald::to_json(*a[i].find("choice_logprobs")), evald::to_json(*b[i].find("choice_logprobs")));
  }
}

// Some servers refuse max_tokens 0 with echo: with 1, the token generated after the prompt is
// echoed too and must not be counted.
TEST(BenchmarkEngineCounts, AGeneratedTokenAfterTheEchoIsNotCounted) {
  EngineServer srv("openai");
  auto c = client_for(srv);
  Suite s = sample("sample-ko-general", false);
  RunOptions o = opts("logprobs");
  o.decoding.logprob_max_tokens = 1;
  MapKv kv;
  auto r = run_suite(s, c, kv, o);
  ASSERT_TRUE(r) << r.error();
  int64_t generated = 0;  // one per choice, unless the model ends its answer at once
  for (auto& rec : r->find("records")->as_array()) generated += rec.get_int("completion_tokens");
  EXPECT_GT(generated, 0);
  check_against_oracle(s, *r);
}

// A continuation whose first characters merge with the context's last token (" t" + "he A"
// is tokenized "▁the", "▁A"): as lm-evaluation-harness does, the merged token counts as
// context and only the tokens after as many as the context alone has are summed.
TEST(BenchmarkEngineCounts, MergedBoundaryIsScoredAsLmEvalDoes) {
  EngineServer srv("pieces");
  auto c = client_for(srv);
  Suite s = sample("sample-en-reasoning", false);
  s.prompt_template = "Question: {question}\n{choices}\nAnswer: t";
  s.answer_prefix = "he ";
  MapKv kv;
  auto r = run_suite(s, c, kv, opts("logprobs"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->find("loglikelihood")->get_int("units_with_merged_boundary"), int64_t(s.items.size()));
  for (auto& rec : r->find("records")->as_array())
    for (auto& ch : rec.find("choices_scored")->as_array()) {
      EXPECT_EQ(ch.get_string("boundary"), "merged");
      EXPECT_EQ(ch.get_int("tokens"), 1) << evald::to_json(ch);
    }
  EXPECT_NE(r->find("loglikelihood")->get_string("boundary_rule").find("merged token counts as context"), std::string::npos);
  check_against_oracle(s, *r);
}

TEST(BenchmarkEngineGeneration, ResponsesAreTheEnginesGreedyDecoding) {
  EngineServer srv("openai");
  auto c = client_for(srv);
  Suite s = sample("sample-en-reasoning", false);
  MapKv kv;
  auto r = run_suite(s, c, kv, opts("generate"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->get_string("method"), "generate");
  std::vector<evald::Value> reqs;
  for (auto& rec : r->find("records")->as_array()) {
    const Item* item = &item_of(s, rec.get_string("item"));
    evald::Value q;
    q.set("op", "greedy");
    q.set("prompt", render_prompt(s, *item, item->choices));
    q.set("max_tokens", int64_t(s.max_tokens));
    q.set("stop", evald::Array(s.stop.begin(), s.stop.end()));
    reqs.push_back(std::move(q));
  }
  auto answers = oracle(reqs);
  auto& records = r->find("records")->as_array();
  for (size_t i = 0; i < records.size(); ++i)
    EXPECT_EQ(records[i].get_string("response"), answers[i].find("text")->str()) << records[i].get_string("item");

  // Chat completions against the same engine generate as well.
  RunOptions chat = opts("auto");
  chat.decoding.api = "chat";
  MapKv kv2;
  auto rc = run_suite(s, c, kv2, chat);
  ASSERT_TRUE(rc) << rc.error();
  EXPECT_EQ(rc->get_string("method"), "generate");
  EXPECT_EQ(rc->get_int("n"), int64_t(s.items.size()));
}

// evald-endpoint-check, as an operator runs it before a round: the plugin's log-likelihoods
// beside the top logprobs of the first generated token (another path through the engine).
TEST(BenchmarkEngineCheck, EndpointCheckAgreesWithTheGenerationPath) {
  EngineServer srv("pieces");
  std::string cmd = std::string(ENDPOINT_CHECK_BIN) + " --endpoint " + srv.url() +
                    " --model tiny --suite " + bench_test::kSuites + "/sample-ko-general/suite.yaml --suite " + bench_test::kSuites +
                    "/sample-en-reasoning/suite.yaml --items 6 --top-logprobs 100 --json";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  evald::text::Json j;
  evald::text::JsonError e;
  ASSERT_TRUE(evald::text::parse_json(out, &j, &e)) << out;
  EXPECT_EQ(j.find("verdict")->str(), "ok");
  EXPECT_EQ(j.find("choices")->as_uint(), 48u);
  EXPECT_GE(j.find("checked")->as_uint(), 8u);
  EXPECT_LT(j.find("max_abs_diff")->as_double(), 1e-6);
}
