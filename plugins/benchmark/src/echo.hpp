// Reading a server's echo of a prompt (completions with echo + logprobs) by tokens, not
// characters: which echoed tokens spell the prompt, where each one ends in the prompt's bytes,
// and the log-likelihood of a continuation as lm-evaluation-harness defines it (the tokens of
// context + continuation after as many tokens as the context alone has). Servers spell tokens
// differently (decoded text, SentencePiece or GPT-2 byte-level pieces, OpenAI's "bytes:\xNN",
// U+FFFD for a partial character, a BOS token's text, a tokenizer's leading space); every
// convention read is named, and an echo no convention explains is an error, never a guess.
// Pure functions of their arguments: no I/O, thread-safe.
#pragma once

#include <evald/value.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evald::bench {

// One echoed token as the server sent it.
struct EchoToken {
  std::string text;
  std::optional<std::string> bytes;  // exact bytes, where the server sends them (a "bytes" array)
  std::optional<double> logprob;     // none for the first token of a prompt
};

// An OpenAI completions answer to an echo request for prompt.
struct EchoReply {
  std::vector<EchoToken> tokens;  // the echo, less the usage.completion_tokens generated after it
  std::string no_logprobs;  // set when the answer holds no prompt logprobs: why (echo ignored, logprobs null)
  int64_t prompt_tokens = 0, completion_tokens = 0;  // usage, where given
};

// Reads choices[0].text and choices[0].logprobs: the legacy shape {tokens, token_logprobs} or
// the newer {content: [{token, logprob, bytes?}]}. A malformed answer is an error naming the
// field; an answer without prompt logprobs is not (see no_logprobs).
Result<EchoReply> read_echo_reply(std::string_view body, std::string_view prompt);

struct EchoAlignment {
  size_t prompt_tokens = 0;        // the first tokens spell the prompt; any after were generated
  std::vector<size_t> end;         // per prompt token: the prompt byte it ends at
  std::vector<bool> exact;         // per prompt token: false inside a run of U+FFFD tokens
  std::vector<std::string> conventions;  // how the server's tokens were read, each named once
};

// Aligns tokens with prompt. Errors name the token (index and text), the prompt byte and what
// the prompt has there, and the conventions this reader knows.
Result<EchoAlignment> align_echo(const std::vector<EchoToken>& tokens, std::string_view prompt);

struct ContinuationScore {
  double logprob = 0;
  size_t tokens = 0;        // how many tokens were summed
  bool merged = false;      // the context's last token reaches into the continuation (or stops short of it)
  std::vector<std::string> texts;  // the summed tokens as the server spelled them
};

// lm-evaluation-harness's rule: the continuation's tokens are tokens [context_tokens,
// prompt_tokens) of the echo of context + continuation, where context_tokens is the count of
// the context alone as the same server tokenizes it (BOS included when the echo has one), and
// context_bytes the context's length. A continuation left with no tokens, a boundary inside
// tokens read from U+FFFD, or a token without a logprob is an error.
Result<ContinuationScore> score_continuation(const std::vector<EchoToken>& tokens, const EchoAlignment& a, size_t context_tokens,
                                             size_t context_bytes);

// lm-evaluation-harness moves a context's trailing whitespace to the continuation before
// tokenizing (a space belongs with the word after it): the length of context without it.
size_t context_split(std::string_view context);

// Whether one of a token's readings (those align_echo knows, lossy ones aside) is exactly text.
bool token_reads_as(const EchoToken& token, std::string_view text);

// Token count of a tokenize endpoint's answer: {"count": n}, {"tokens": [...]} or a bare array.
Result<size_t> token_count_from_json(std::string_view body);

}  // namespace evald::bench
