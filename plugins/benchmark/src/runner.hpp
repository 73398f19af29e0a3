// Runs one suite against an OpenAI-compatible endpoint: builds the requests, scores each item
// (multiple choice by the log-likelihood of each choice when the endpoint returns prompt
// logprobs, else by generating and extracting the letter), stores every item's record in
// durable plugin state as soon as it is complete, and skips items already stored, so a rerun
// after kill -9 repeats at most the requests that were in flight.
#pragma once

#include "http_client.hpp"
#include "suite.hpp"

#include <evald/value.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace evald::bench {

// Durable key-value state (the plugin's Context in the daemon, a map in tests).
class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual std::optional<Bytes> get(const std::string& key) = 0;
  virtual Status put(const std::string& key, const Bytes& value) = 0;
};

// Plugin state in memory, for tools that run suites outside the daemon. Not thread-safe.
class MemoryKv : public KvStore {
 public:
  std::optional<Bytes> get(const std::string& key) override;
  Status put(const std::string& key, const Bytes& value) override;

 private:
  std::map<std::string, Bytes> m_;
};

// How answers are asked for. Everything here goes into the decoding hash that keys cached
// items, and is recorded with every result.
struct Decoding {
  std::string api = "completions";  // completions or chat
  std::string scoring = "auto";     // auto, logprobs or generate (multiple choice)
  double temperature = 0;
  int64_t seed = 1234;
  int max_tokens = 0;               // 0: the suite's max_tokens
  int logprob_max_tokens = 0;       // max_tokens of echo requests (some servers refuse 0)
  Value to_value() const;
};

struct RunOptions {
  std::string model;     // the entrant's model name, sent as "model"
  Decoding decoding;
  std::string context_tokens = "auto";  // logprobs: how the context's tokens are counted: auto, tokenize or echo
  double max_tie_share = 0.05;  // a suite whose best choices tie on more units than this is flagged
  std::function<bool()> cancelled;
  std::function<void(size_t done, size_t total)> progress;
};

// The entrant model's identity in cache keys: sha256(endpoint "\n" model), 16 hex digits.
std::string model_identity(const std::string& endpoint_url, const std::string& model);

// Runs suite and returns its result (see README: accuracy, ci, categories, throughput,
// latency, method, decoding, item_files, flags, ...). An item whose request failed is not
// stored and fails the run with the item and the reason, after every other item is stored.
// A degenerate suite (ties, one letter for every answer) is not an error here: its result
// carries "flags", and the caller decides.
Result<Value> run_suite(const Suite& suite, HttpClient& client, KvStore& kv, const RunOptions& opt);

}  // namespace evald::bench
