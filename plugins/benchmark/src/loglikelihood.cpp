#include "loglikelihood.hpp"

#include <evald/value.hpp>

namespace evald::bench {

const std::vector<std::string>& TokenCounter::tokenize_shapes() {
  static const std::vector<std::string> shapes{"llama.cpp", "vllm", "tgi"};
  return shapes;
}

std::string TokenCounter::describe() const {
  if (shape == "llama.cpp") return "the server's POST /tokenize {content, add_special: true} (llama.cpp's shape)";
  if (shape == "vllm") return "the server's POST /tokenize {model, prompt, add_special_tokens: true} (vLLM's and SGLang's shape)";
  if (shape == "tgi") return "the server's POST /tokenize {inputs} (TGI's shape)";
  return "an echo of the context alone";
}

HttpRequest EchoParams::request(const std::string& prompt) const {
  Value b;
  b.set("model", model);
  b.set("prompt", prompt);
  b.set("max_tokens", int64_t(max_tokens));
  b.set("temperature", temperature);
  b.set("seed", seed);
  b.set("echo", true);
  b.set("logprobs", 1);
  return {"/completions", to_json(b)};
}

HttpRequest TokenCounter::request(const EchoParams& echo, const std::string& text) const {
  Value b;
  if (shape == "llama.cpp") {
    b.set("content", text);
    b.set("add_special", true);
  } else if (shape == "vllm") {
    b.set("model", echo.model);
    b.set("prompt", text);
    b.set("add_special_tokens", true);
  } else if (shape == "tgi") {
    b.set("inputs", text);
  } else {
    return echo.request(text);
  }
  HttpRequest r{"/tokenize", to_json(b)};
  r.from_root = true;
  return r;
}

Result<size_t> TokenCounter::count(const HttpOutcome& o, std::string_view text) const {
  if (!o.ok()) return Status::error(o.error);
  if (shape != "echo") return token_count_from_json(o.body);
  auto reply = read_echo_reply(o.body, text);
  if (!reply) return reply.status();
  if (!reply->no_logprobs.empty()) return Status::error("echo of the context: " + reply->no_logprobs);
  auto a = align_echo(reply->tokens, text);
  if (!a) return Status::error("echo of the context: " + a.error());
  return a->prompt_tokens;
}

namespace {

bool refused(const HttpOutcome& o) { return o.status >= 400 && o.status < 500 && o.status != 429; }

}  // namespace

Result<LoglikelihoodSetup> probe_loglikelihood(HttpClient& client, const EchoParams& echo, const std::string& mode,
                                               const std::vector<std::string>& prompts, const std::function<bool()>& cancelled) {
  LoglikelihoodSetup setup;
  std::vector<HttpRequest> reqs;
  for (auto& p : prompts) reqs.push_back(echo.request(p));
  std::vector<HttpOutcome> outs(reqs.size());
  client.run(reqs, [&](size_t i, HttpOutcome o) { outs[i] = std::move(o); }, cancelled);
  size_t prompt_tokens = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    if (refused(outs[i])) {
      setup.why = "the endpoint refuses echo requests: " + outs[i].error;
      return setup;
    }
    if (!outs[i].ok()) return Status::error("probing whether " + client.endpoint().url() + " returns prompt logprobs failed: " + outs[i].error);
    auto reply = read_echo_reply(outs[i].body, prompts[i]);
    if (!reply) return Status::error("probing " + client.endpoint().url() + " for prompt logprobs: " + reply.error());
    if (!reply->no_logprobs.empty()) {
      setup.why = "no prompt logprobs: " + reply->no_logprobs;
      return setup;
    }
    auto a = align_echo(reply->tokens, prompts[i]);
    if (!a) return Status::error(client.endpoint().url() + ": " + a.error());
    if (i == 0) prompt_tokens = a->prompt_tokens;
  }
  setup.available = true;
  if (mode == "echo") {
    setup.why = "config.context_tokens: echo";
    return setup;
  }
  // Each tokenize shape in turn on the first prompt: the one whose count equals the echo's
  // is the one whose convention (BOS, special tokens) is the echo's.
  std::string tried;
  for (auto& shape : TokenCounter::tokenize_shapes()) {
    TokenCounter tc{shape};
    HttpOutcome out;
    client.run({tc.request(echo, prompts[0])}, [&](size_t, HttpOutcome o) { out = std::move(o); }, cancelled);
    auto n = tc.count(out, prompts[0]);
    std::string got = !n ? n.error() : *n == prompt_tokens ? "" : std::to_string(*n) + " tokens";
    if (got.empty()) {
      setup.counter = tc;
      setup.why = "its count of a prompt equals the echo's (" + std::to_string(prompt_tokens) + " tokens)";
      return setup;
    }
    tried += (tried.empty() ? "" : "; ") + shape + ": " + got;
  }
  std::string why = "no tokenize endpoint agrees with the echo's " + std::to_string(prompt_tokens) + " tokens (" + tried + ")";
  if (mode == "tokenize") return Status::error("config.context_tokens: tokenize, but " + why);
  setup.why = why;
  return setup;
}

}  // namespace evald::bench
