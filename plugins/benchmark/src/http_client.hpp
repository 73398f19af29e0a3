// An HTTP/1.1 client for OpenAI-compatible servers (Boost.Beast): keep-alive connections, at
// most `concurrency` requests in flight, a deadline per attempt, retries with exponential
// backoff on 429, 5xx and connection errors (Retry-After honoured up to the backoff cap), a
// cap on requests per second and on response body size. Plain http only: an endpoint behind
// TLS needs a local terminating proxy.
#pragma once

#include <evald/value.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace evald::bench {

struct Endpoint {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // "/v1", no trailing slash
  std::string url() const { return "http://" + host + ":" + std::to_string(port) + base_path; }
};
// Accepts http://host[:port][/path]; errors name what is wrong.
Result<Endpoint> parse_endpoint(std::string_view url);

struct ClientOptions {
  size_t concurrency = 8;
  double timeout_s = 60;        // per attempt: connect, send and the whole response
  int retries = 3;              // extra attempts after a retryable failure
  double backoff_s = 0.25;      // first retry delay; doubles each time
  double backoff_max_s = 10;
  double rate_limit = 0;        // requests started per second; 0: no cap
  size_t max_body_bytes = 8u << 20;
  std::string api_key;          // sent as "Authorization: Bearer ..." when set
};

struct HttpRequest {
  std::string target;      // appended to the endpoint's base path, e.g. "/completions"
  std::string body;        // JSON
  bool from_root = false;  // target is the whole path (a server's /tokenize beside its /v1)
  std::string path(const Endpoint& ep) const { return from_root ? target : ep.base_path + target; }
};

struct HttpOutcome {
  int status = 0;         // last HTTP status (0: none received)
  std::string body;
  std::string error;      // empty on success (status 200)
  int attempts = 0;
  double latency_s = 0;   // of the successful attempt, else of the whole effort
  bool ok() const { return error.empty(); }
};

class HttpClient {
 public:
  HttpClient(Endpoint endpoint, ClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends every request and calls done(index, outcome) on the calling thread as each one
  // finishes, in completion order; returns when all have. When cancelled() turns true (polled
  // every 100 ms), requests not yet started end with error "cancelled" and those in flight are
  // aborted. Connections stay open for the next call.
  void run(const std::vector<HttpRequest>& requests, const std::function<void(size_t, HttpOutcome)>& done,
           const std::function<bool()>& cancelled = {});

  // Requests put on the wire (attempts included) since construction.
  uint64_t attempts_sent() const;
  const Endpoint& endpoint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evald::bench
