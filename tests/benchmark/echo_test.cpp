// Reading a server's echo by tokens: every token spelling real servers use, the lm-eval
// boundary rule, and clear errors for echoes that cannot be read (never a guess).
#include "echo.hpp"

#include <gtest/gtest.h>

using namespace evald::bench;

namespace {

std::vector<EchoToken> toks(std::vector<std::string> texts, bool bos_null = true) {
  std::vector<EchoToken> out;
  for (size_t i = 0; i < texts.size(); ++i) out.push_back({texts[i], std::nullopt, i == 0 && bos_null ? std::nullopt : std::optional<double>(-1.0 - double(i))});
  return out;
}

std::string legacy(const std::string& text, const std::string& tokens_json, const std::string& lps_json) {
  return R"({"choices":[{"text":)" + text + R"(,"logprobs":{"tokens":)" + tokens_json + R"(,"token_logprobs":)" + lps_json +
         R"(,"text_offset":[0,0,0]}}],"usage":{"prompt_tokens":3,"completion_tokens":0}})";
}

}  // namespace

TEST(BenchmarkEcho, DecodedTextWithBosAndTheTokenizersLeadingSpace) {
  // llama.cpp with a SentencePiece vocabulary: "<s>" first, " Answer" for a prompt "Answer".
  std::string prompt = "Answer: B";
  auto t = toks({"<s>", " Answer", ":", " B"});
  auto a = align_echo(t, prompt);
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->prompt_tokens, 4u);
  EXPECT_EQ(a->end, (std::vector<size_t>{0, 6, 7, 9}));
  ASSERT_EQ(a->conventions.size(), 2u);
  EXPECT_NE(a->conventions[0].find("\"<s>\""), std::string::npos);
  EXPECT_NE(a->conventions[1].find("leading space"), std::string::npos);
  // Context "Answer:" is BOS + 2 tokens: the continuation is " B" alone, a clean boundary.
  auto s = score_continuation(t, *a, 3, 7);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->tokens, 1u);
  EXPECT_DOUBLE_EQ(s->logprob, -4.0);
  EXPECT_FALSE(s->merged);
  EXPECT_EQ(s->texts, std::vector<std::string>{" B"});
}

TEST(BenchmarkEcho, EveryTokenSpelling) {
  const std::string ko = "\xEB\x8B\xA4 A";  // "다 A"
  struct Case {
    std::vector<std::string> tokens;
    std::string convention;
  } cases[] = {
      {{"<s>", "bytes:\\xeb", "bytes:\\x8b\\xa4", " A"}, "bytes:"},
      {{"<s>", "<0xEB>", "<0x8B>", "<0xA4>", "\xE2\x96\x81" "A"}, "<0xNN>"},
      {{"<s>", "\xEB\x8B\xA4", "\xE2\x96\x81" "A"}, "SentencePiece"},
      {{"\xC3\xAB\xC4\xAD\xC2\xA4", "\xC4\xA0" "A"}, "GPT-2"},  // ë, ĭ (byte 0x8B), ¤, Ġ
      {{"<s>", "\xEF\xBF\xBD", "\xEF\xBF\xBD", "\xEF\xBF\xBD", " A"}, "U+FFFD"},
  };
  for (auto& c : cases) {
    auto t = toks(c.tokens, c.tokens[0] == "<s>");
    auto a = align_echo(t, ko);
    ASSERT_TRUE(a) << c.convention << ": " << a.error();
    EXPECT_EQ(a->prompt_tokens, c.tokens.size()) << c.convention;
    EXPECT_EQ(a->end.back(), ko.size());
    bool named = false;
    for (auto& conv : a->conventions) named = named || conv.find(c.convention) != std::string::npos;
    EXPECT_TRUE(named) << c.convention;
    // The context "다" ends where the last token before " A" ends: a clean boundary.
    auto s = score_continuation(t, *a, c.tokens.size() - 1, 3);
    ASSERT_TRUE(s) << c.convention << ": " << s.error();
    EXPECT_FALSE(s->merged) << c.convention;
    EXPECT_EQ(s->tokens, 1u);
  }
  // Exact bytes, where the server sends them, win over a lossy text.
  std::vector<EchoToken> with_bytes{{"\xEF\xBF\xBD", std::string("\xEB\x8B"), -1.0}, {"\xEF\xBF\xBD", std::string("\xA4"), -2.0}, {" A", std::nullopt, -3.0}};
  auto a = align_echo(with_bytes, ko);
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->end, (std::vector<size_t>{2, 3, 5}));
  EXPECT_TRUE(a->exact[0]);
}

TEST(BenchmarkEcho, LossyRunsAreInexactInside) {
  // Two U+FFFD tokens for the three bytes of "다": where the first ends is not known.
  auto t = toks({"<s>", "\xEF\xBF\xBD", "\xEF\xBF\xBD", "A"});
  auto a = align_echo(t, "\xEB\x8B\xA4" "A");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->end.back(), 4u);
  EXPECT_FALSE(a->exact[1]);
  EXPECT_TRUE(a->exact[2]);
  auto s = score_continuation(t, *a, 2, 1);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("inside a run of U+FFFD tokens"), std::string::npos) << s.error();
}

TEST(BenchmarkEcho, GeneratedTokensAfterThePromptAreNotCounted) {
  // max_tokens 1: the server appends a generated token after the prompt's.
  auto t = toks({"<s>", "Q", ":", " B", " ok"});
  auto a = align_echo(t, "Q: B");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->prompt_tokens, 4u);
  auto s = score_continuation(t, *a, 3, 2);
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->logprob, -4.0);
  // A prompt ending in a character echoed as U+FFFD, then a generated U+FFFD: the answer's
  // usage says one token was generated, and it is dropped before the echo is read.
  const std::string body = R"({"choices":[{"text":"A \ub2e4\ufffd","logprobs":{"tokens":["<s>","A"," ","\ufffd","\ufffd","\ufffd","\ufffd"],)"
                           R"("token_logprobs":[null,-1,-1,-1,-1,-1,-1]}}],"usage":{"prompt_tokens":6,"completion_tokens":1}})";
  auto r = read_echo_reply(body, "A \xEB\x8B\xA4");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->tokens.size(), 6u);
  auto al = align_echo(r->tokens, "A \xEB\x8B\xA4");
  ASSERT_TRUE(al) << al.error();
  EXPECT_EQ(al->prompt_tokens, 6u);
}

TEST(BenchmarkEcho, MergedBoundaryFollowsLmEval) {
  // Context "x t", continuation "he A": the whole is "x", " the", " A"; the context alone "x",
  // " t". The continuation is what follows as many tokens as the context has: " A" only.
  auto t = toks({"<s>", "x", " the", " A"});
  auto a = align_echo(t, "x the A");
  ASSERT_TRUE(a) << a.error();
  auto s = score_continuation(t, *a, 3, 3);
  ASSERT_TRUE(s) << s.error();
  EXPECT_TRUE(s->merged);
  EXPECT_EQ(s->texts, std::vector<std::string>{" A"});
  // A continuation swallowed whole by the context's last token is an error, not a zero.
  auto t2 = toks({"<s>", "x", ":A"});
  auto a2 = align_echo(t2, "x:A");
  ASSERT_TRUE(a2);
  auto s2 = score_continuation(t2, *a2, 3, 2);
  ASSERT_FALSE(s2);
  EXPECT_NE(s2.error().find("no tokens of its own"), std::string::npos) << s2.error();
  EXPECT_EQ(context_split("Answer: \n"), 7u);
  EXPECT_EQ(context_split("Answer:"), 7u);
}

TEST(BenchmarkEcho, UnreadableEchoesAreErrorsNamingTheToken) {
  auto a = align_echo(toks({"<s>", "Quest", "ion", "?"}), "Question!");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().find("token 3 \"?\" where the prompt has \"!\" at byte 8"), std::string::npos) << a.error();
  EXPECT_NE(a.error().find("not one evald reads"), std::string::npos);
  // An echo that stops short of the prompt (a truncated or partial echo).
  auto b = align_echo(toks({"<s>", "Q"}), "Q: A");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("spell only the first 1 of the prompt's 4 bytes"), std::string::npos) << b.error();
  // A continuation token without a logprob.
  std::vector<EchoToken> t{{"<s>", std::nullopt, std::nullopt}, {"Q", std::nullopt, -1.0}, {" A", std::nullopt, std::nullopt}};
  auto al = align_echo(t, "Q A");
  ASSERT_TRUE(al);
  auto s = score_continuation(t, *al, 2, 1);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("has no logprob"), std::string::npos);
}

TEST(BenchmarkEcho, ReadingAnswers) {
  auto r = read_echo_reply(legacy("\"Q A\"", R"(["<s>","Q"," A"])", "[null,-1.5,-2]"), "Q A");
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->no_logprobs.empty());
  ASSERT_EQ(r->tokens.size(), 3u);
  EXPECT_FALSE(r->tokens[0].logprob);
  EXPECT_DOUBLE_EQ(*r->tokens[2].logprob, -2);
  EXPECT_EQ(r->prompt_tokens, 3);
  // The newer shape, with exact bytes.
  auto c = read_echo_reply(R"({"choices":[{"text":"Q A","logprobs":{"content":[{"token":"Q","logprob":-1,"bytes":[81]},{"token":" A","logprob":-2,"bytes":[32,65]}]}}]})", "Q A");
  ASSERT_TRUE(c) << c.error();
  ASSERT_EQ(c->tokens.size(), 2u);
  EXPECT_EQ(*c->tokens[1].bytes, " A");
  // No prompt logprobs: null, or an answer that does not start with the prompt (echo ignored,
  // as llama.cpp's server does: its logprobs are the generated tokens').
  auto n = read_echo_reply(R"({"choices":[{"text":"Q A","logprobs":null}]})", "Q A");
  ASSERT_TRUE(n);
  EXPECT_NE(n->no_logprobs.find("missing or null"), std::string::npos);
  auto ig = read_echo_reply(legacy("\" ok\"", R"([" ok"])", "[-0.5]"), "Q A");
  ASSERT_TRUE(ig);
  EXPECT_NE(ig->no_logprobs.find("ignores echo"), std::string::npos);
  // Malformed answers name the field.
  EXPECT_NE(read_echo_reply("<html>", "Q").error().find("not JSON"), std::string::npos);
  EXPECT_NE(read_echo_reply(R"({"choices":[]})", "Q").error().find("no choices[0]"), std::string::npos);
  EXPECT_NE(read_echo_reply(legacy("\"Q\"", "[1,2]", "[null,-1]"), "Q").error().find("tokens[0]: expected a string"), std::string::npos);
  EXPECT_NE(read_echo_reply(legacy("\"Q\"", R"(["token_id:5"])", "[null]"), "Q").error().find("--return-tokens-as-token-ids"), std::string::npos);
  EXPECT_NE(read_echo_reply(legacy("\"Q\"", R"(["Q","x"])", "[null]"), "Q").error().find("2 tokens but 1 token_logprobs"), std::string::npos);
  EXPECT_NE(read_echo_reply(R"({"choices":[{"text":"Q","logprobs":{"content":[{"token":"Q","bytes":[300]}]}}]})", "Q").error().find("content[0].bytes"),
            std::string::npos);
}

TEST(BenchmarkEcho, TokenizeAnswers) {
  EXPECT_EQ(*token_count_from_json(R"({"tokens":[1,2,3]})"), 3u);                          // llama.cpp
  EXPECT_EQ(*token_count_from_json(R"({"count":4,"max_model_len":8,"tokens":[1,2,3,4]})"), 4u);  // vLLM, SGLang
  EXPECT_EQ(*token_count_from_json(R"([{"id":1,"text":"<s>","start":0,"stop":0}])"), 1u);        // TGI
  EXPECT_FALSE(token_count_from_json(R"({"error":"no"})"));
  EXPECT_FALSE(token_count_from_json("nope"));
  EXPECT_FALSE(token_count_from_json("7"));
}
