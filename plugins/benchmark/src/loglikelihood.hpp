// Multiple choice by log-likelihood over HTTP: each choice's context + continuation is echoed
// with prompt logprobs, and the context's own token count comes from the server's tokenize
// endpoint (its request shape found once and checked against an echo) or from an echo of the
// context alone. See echo.hpp for how an echo is read.
#pragma once

#include "echo.hpp"
#include "http_client.hpp"

#include <functional>
#include <string>
#include <vector>

namespace evald::bench {

// How echo requests are made: completions with echo and logprobs 1.
struct EchoParams {
  std::string model;
  int max_tokens = 0;  // some servers refuse 0; a generated token is told apart from the prompt's
  double temperature = 0;
  int64_t seed = 0;
  HttpRequest request(const std::string& prompt) const;
};

// Counts a text's tokens the way the server's echo does (BOS included where it adds one).
struct TokenCounter {
  // "echo" (the completions endpoint, echoing the text alone) or a tokenize shape:
  // "llama.cpp" POST /tokenize {content, add_special: true}; "vllm" POST /tokenize {model,
  // prompt, add_special_tokens: true} (SGLang takes it too); "tgi" POST /tokenize {inputs}.
  std::string shape = "echo";

  static const std::vector<std::string>& tokenize_shapes();
  std::string describe() const;
  HttpRequest request(const EchoParams& echo, const std::string& text) const;
  // The count from the answer to request(text); errors say what was wrong with it.
  Result<size_t> count(const HttpOutcome& o, std::string_view text) const;
};

// What probing an endpoint found.
struct LoglikelihoodSetup {
  bool available = false;  // the endpoint echoes prompt logprobs that spell the prompt
  std::string why;         // when not available: why not; else how the context is counted and why
  TokenCounter counter;
};

// Asks the endpoint with one unit's prompts (context + each continuation): whether it returns
// prompt logprobs that spell the prompts (an echo that does not is an error, never a guess),
// and, unless mode is "echo", which tokenize shape agrees with the echo's token count. mode
// "tokenize" with no agreeing shape is an error; "auto" then counts by echo and says why.
// A 4xx other than 429 to the echo means the endpoint refuses it (not available); any other
// failure is an error.
Result<LoglikelihoodSetup> probe_loglikelihood(HttpClient& client, const EchoParams& echo, const std::string& mode,
                                               const std::vector<std::string>& prompts, const std::function<bool()>& cancelled);

}  // namespace evald::bench
