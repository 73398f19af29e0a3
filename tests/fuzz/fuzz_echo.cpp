// fuzz_echo: the benchmark plugin's reader of a server's echo of a prompt (echo.hpp:
// read_echo_reply, align_echo, score_continuation, context_split, token_count_from_json) on
// arbitrary bytes.
// Input: a prompt, then the server's JSON answer (the body). When the input holds a NUL byte,
// the prompt is everything before the first NUL and the body everything after it (prompts with
// newlines; a JSON text never holds a raw NUL); otherwise the prompt is the first line (without
// its '\n') and the body the rest. The whole input also goes to token_count_from_json, and so
// does the body.
// Properties: an answer without prompt logprobs has no tokens; an alignment has one end and one
// exactness flag per prompt token, ends non-decreasing, within the prompt and ending at its last
// byte, the last prompt token exact, and unchanged by a generated token appended after the
// prompt's; score_continuation refuses a context of 0 tokens or of all of them, and a score
// sums prompt_tokens - context_tokens tokens; context_split only drops trailing whitespace. A violated property prints what it saw and traps (__builtin_trap).
#include "echo.hpp"
#include "fuzz_common.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace bench = evald::bench;


namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void check_split(std::string_view context) {
  size_t n = bench::context_split(context);
  FUZZ_CHECK(n <= context.size(), "context_split gave %zu of %zu bytes", n, context.size());
  FUZZ_CHECK(n == 0 || !is_space(context[n - 1]), "context_split kept trailing whitespace at %zu", n - 1);
  for (size_t k = n; k < context.size(); ++k) FUZZ_CHECK(is_space(context[k]), "context_split dropped a non-space at %zu", k);
}

void check_scores(const std::vector<bench::EchoToken>& tokens, const bench::EchoAlignment& a, std::string_view prompt) {
  const size_t pt = a.prompt_tokens;
  for (size_t ct : {size_t(0), size_t(1), pt / 2, pt}) {
    const size_t end = ct == 0 ? 0 : ct <= pt ? a.end[ct - 1] : prompt.size();  // ct = 1 > pt = 0: the whole prompt
    const std::string_view context = prompt.substr(0, end);
    check_split(context);
    const size_t context_bytes = bench::context_split(context);
    auto s = bench::score_continuation(tokens, a, ct, context_bytes);
    if (!s) {
      FUZZ_CHECK(!s.error().empty(), "score_continuation(%zu of %zu) failed without a message", ct, pt);
      continue;
    }
    FUZZ_CHECK(ct >= 1 && ct < pt, "score_continuation accepted context_tokens %zu of %zu prompt tokens", ct, pt);
    FUZZ_CHECK(s->tokens == pt - ct, "score_continuation(%zu of %zu) summed %zu tokens", ct, pt, s->tokens);
    FUZZ_CHECK(s->texts.size() == s->tokens, "score_continuation(%zu of %zu): %zu texts for %zu tokens", ct, pt, s->texts.size(), s->tokens);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t cut = input.find('\0');
  if (cut == std::string_view::npos) cut = input.find('\n');
  const std::string_view prompt = input.substr(0, cut);
  const std::string_view body = cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);

  for (std::string_view j : {input, body}) {
    auto n = bench::token_count_from_json(j);
    if (!n) FUZZ_CHECK(!n.error().empty(), "token_count_from_json failed without a message");
  }
  check_split(prompt);

  auto r = bench::read_echo_reply(body, prompt);
  if (!r) {
    FUZZ_CHECK(!r.error().empty(), "read_echo_reply failed without a message");
    return 0;
  }
  if (!r->no_logprobs.empty()) {
    FUZZ_CHECK(r->tokens.empty(), "an answer without prompt logprobs (%s) has %zu tokens", r->no_logprobs.c_str(), r->tokens.size());
    return 0;
  }
  if (r->tokens.empty()) return 0;

  auto a = bench::align_echo(r->tokens, prompt);
  if (!a) {
    FUZZ_CHECK(!a.error().empty(), "align_echo failed without a message");
    return 0;
  }
  const size_t pt = a->prompt_tokens;
  FUZZ_CHECK(pt <= r->tokens.size(), "%zu prompt tokens of %zu echoed", pt, r->tokens.size());
  FUZZ_CHECK(a->end.size() == pt && a->exact.size() == pt, "%zu ends and %zu exact flags for %zu prompt tokens", a->end.size(),
             a->exact.size(), pt);
  for (size_t k = 0; k < pt; ++k) {
    FUZZ_CHECK(a->end[k] <= prompt.size(), "token %zu ends at %zu of a %zu-byte prompt", k, a->end[k], prompt.size());
    FUZZ_CHECK(k == 0 || a->end[k - 1] <= a->end[k], "token %zu ends at %zu, before token %zu's %zu", k, a->end[k], k - 1, a->end[k - 1]);
  }
  if (!prompt.empty() && pt > 0)
    FUZZ_CHECK(a->end.back() == prompt.size(), "the prompt tokens end at %zu of %zu bytes", a->end.back(), prompt.size());
  if (pt > 0) FUZZ_CHECK(a->exact.back(), "the last prompt token (%zu) is not exact", pt - 1);
  check_scores(r->tokens, *a, prompt);

  // An echo request with max_tokens > 0 (config logprob_max_tokens) gets generated tokens
  // after the prompt's: an ASCII token appended to an echo that spells the whole prompt must
  // change nothing.
  if (pt == r->tokens.size()) {
    auto more = r->tokens;
    more.push_back({"!", std::nullopt, -1.0});
    auto b = bench::align_echo(more, prompt);
    FUZZ_CHECK(bool(b), "a generated token after the prompt breaks the alignment: %s", b ? "" : b.error().c_str());
    FUZZ_CHECK(b->prompt_tokens == pt && b->end == a->end && b->exact == a->exact,
               "a generated token after the prompt changes the alignment (%zu prompt tokens, then %zu)", pt, b->prompt_tokens);
  }
  return 0;
}
