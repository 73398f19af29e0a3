#include "http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <exception>

namespace evald::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Result<Endpoint> parse_endpoint(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, 8) == "https://")
    return Status::error("endpoint \"" + std::string(url) + "\": https is not supported; use http (a local TLS-terminating proxy for remote servers)");
  if (url.substr(0, scheme.size()) != scheme) return Status::error("endpoint \"" + std::string(url) + "\": expected http://host[:port][/path]");
  std::string_view rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  Endpoint ep;
  ep.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  std::string_view port_text;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {  // [IPv6]:port
    size_t rb = hostport.find(']');
    if (rb == std::string_view::npos) return Status::error("endpoint \"" + std::string(url) + "\": unclosed '['");
    std::string_view after = hostport.substr(rb + 1);
    if (!after.empty() && after.front() != ':') return Status::error("endpoint \"" + std::string(url) + "\": junk after ']'");
    if (!after.empty()) port_text = after.substr(1), has_port = true;
    hostport = hostport.substr(1, rb - 1);
  } else if (size_t colon = hostport.find(':'); colon != std::string_view::npos) {
    port_text = hostport.substr(colon + 1);
    has_port = true;
    hostport = hostport.substr(0, colon);
  }
  if (has_port) {
    unsigned v = 0;
    auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (port_text.empty() || r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() || v == 0 || v > 65535)
      return Status::error("endpoint \"" + std::string(url) + "\": bad port \"" + std::string(port_text) + "\"");
    ep.port = uint16_t(v);
  }
  if (hostport.empty()) return Status::error("endpoint \"" + std::string(url) + "\": no host");
  ep.host = std::string(hostport);
  return ep;
}

namespace {

struct Conn {
  explicit Conn(asio::io_context& io) : stream(io) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool open = false;
  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    buffer.consume(buffer.size());
    open = false;
  }
};

struct Attempt {
  int status = 0;
  std::string body;
  std::string error;
  bool retryable = false;
  double retry_after = -1;
};

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", s);
  return buf;
}

}  // namespace

struct HttpClient::Impl {
  Impl(Endpoint e, ClientOptions o) : ep(std::move(e)), opt(std::move(o)), io(1), resolver(io), watch(io) {
    opt.concurrency = std::max<size_t>(1, opt.concurrency);
    for (size_t i = 0; i < opt.concurrency; ++i) conns.push_back(std::make_unique<Conn>(io));
  }

  Endpoint ep;
  ClientOptions opt;
  asio::io_context io;
  tcp::resolver resolver;
  tcp::resolver::results_type resolved;
  bool have_resolved = false;
  std::vector<std::unique_ptr<Conn>> conns;
  asio::steady_timer watch;
  uint64_t attempts = 0;
  Clock::time_point next_start{};

  // State of one run().
  const std::vector<HttpRequest>* reqs = nullptr;
  const std::function<void(size_t, HttpOutcome)>* done = nullptr;
  size_t next = 0, finished = 0;
  bool stop = false;
  std::exception_ptr failure;

  std::chrono::nanoseconds timeout() const { return std::chrono::nanoseconds(int64_t(opt.timeout_s * 1e9)); }

  asio::awaitable<Attempt> attempt(Conn& c, const HttpRequest& r) {
    Attempt a;
    beast::error_code ec;
    auto tok = asio::redirect_error(asio::use_awaitable, ec);
    bool reused = c.open;
    for (int round = 0; round < 2; ++round) {
      if (!c.open) {
        if (!have_resolved) {
          resolved = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), tok);
          if (ec) {
            a.error = "cannot resolve " + ep.host + ": " + ec.message();
            a.retryable = true;
            co_return a;
          }
          have_resolved = true;
        }
        c.stream.expires_after(timeout());
        co_await c.stream.async_connect(resolved, tok);
        if (ec) {
          a.error = ec == beast::error::timeout ? "connect to " + ep.host + ":" + std::to_string(ep.port) + " timed out after " + seconds_text(opt.timeout_s)
                                                 : "cannot connect to " + ep.host + ":" + std::to_string(ep.port) + ": " + ec.message();
          a.retryable = true;
          c.close();
          co_return a;
        }
        c.stream.socket().set_option(tcp::no_delay(true), ec);
        c.open = true;
        reused = false;
      }
      http::request<http::string_body> req{http::verb::post, r.path(ep), 11};
      req.set(http::field::host, ep.host + ":" + std::to_string(ep.port));
      req.set(http::field::content_type, "application/json");
      req.set(http::field::accept, "application/json");
      if (!opt.api_key.empty()) req.set(http::field::authorization, "Bearer " + opt.api_key);
      req.keep_alive(true);
      req.body() = r.body;
      req.prepare_payload();
      c.stream.expires_after(timeout());
      ++attempts;
      co_await http::async_write(c.stream, req, tok);
      if (!ec) {
        http::response_parser<http::string_body> p;
        p.body_limit(opt.max_body_bytes);
        // The cap is checked here as well as by the parser: Beast 1.74's parser was seen to let
        // a Content-Length past body_limit through when it read the header and body together.
        co_await http::async_read_header(c.stream, c.buffer, p, tok);
        bool over = !ec && p.content_length() && *p.content_length() > opt.max_body_bytes;
        if (!ec && !over) co_await http::async_read(c.stream, c.buffer, p, tok);
        if (!ec && p.get().body().size() > opt.max_body_bytes) over = true;
        if (over) ec = http::error::body_limit;
        if (!ec) {
          auto res = p.release();
          a.status = int(res.result_int());
          if (auto ra = res[http::field::retry_after]; !ra.empty()) {
            double v = 0;
            auto rr = std::from_chars(ra.data(), ra.data() + ra.size(), v);
            if (rr.ec == std::errc() && v >= 0) a.retry_after = v;
          }
          if (!res.keep_alive()) c.close();
          a.body = std::move(res.body());
          co_return a;
        }
        if (ec == http::error::body_limit) {
          a.error = "response body over " + std::to_string(opt.max_body_bytes) + " bytes (max_body_bytes)";
          c.close();
          co_return a;
        }
      }
      // A kept-alive connection the server closed while idle fails at once: reconnect once,
      // without counting it as a retry.
      bool stale = reused && !stop && (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
                                       ec == asio::error::broken_pipe);
      c.close();
      if (stale && round == 0) continue;
      a.error = ec == beast::error::timeout ? "no complete response within " + seconds_text(opt.timeout_s) + " (timeout_s)"
                                            : "connection error: " + ec.message();
      a.retryable = true;
      co_return a;
    }
    co_return a;
  }

  asio::awaitable<void> rate_gate() {
    if (opt.rate_limit <= 0) co_return;
    auto now = Clock::now();
    if (next_start < now) next_start = now;
    auto mine = next_start;
    next_start += std::chrono::nanoseconds(int64_t(1e9 / opt.rate_limit));
    if (mine > now) {
      asio::steady_timer t(io, mine);
      beast::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<HttpOutcome> perform(Conn& c, const HttpRequest& r) {
    HttpOutcome out;
    auto begin = Clock::now();
    auto secs = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
    std::string where = " (http://" + ep.host + ":" + std::to_string(ep.port) + r.path(ep) + ")";
    for (int n = 0;; ++n) {
      co_await rate_gate();
      if (stop) {
        out.error = "cancelled";
        co_return out;
      }
      auto t0 = Clock::now();
      Attempt a = co_await attempt(c, r);
      out.attempts = n + 1;
      out.status = a.status;
      std::string after = n > 0 ? ", after " + std::to_string(n + 1) + " attempts" : "";
      if (stop) {
        out.error = "cancelled";
        co_return out;
      }
      if (a.error.empty() && a.status == 200) {
        out.body = std::move(a.body);
        out.latency_s = secs(t0);
        co_return out;
      }
      bool retryable = a.error.empty() ? a.status == 429 || a.status >= 500 : a.retryable;
      if (!retryable || n >= opt.retries) {
        if (a.error.empty())
          out.error = "HTTP " + std::to_string(a.status) + where + after + ": " + a.body.substr(0, 200);
        else
          out.error = a.error + where + after;
        out.body = std::move(a.body);
        out.latency_s = secs(begin);
        co_return out;
      }
      double delay = std::min(opt.backoff_max_s, opt.backoff_s * std::pow(2.0, n));
      if (a.retry_after >= 0) delay = std::min(opt.backoff_max_s, a.retry_after);
      if (delay > 0) {
        asio::steady_timer t(io, std::chrono::nanoseconds(int64_t(delay * 1e9)));
        beast::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  }

  asio::awaitable<void> worker(size_t slot) {
    while (!stop && next < reqs->size()) {
      size_t i = next++;
      HttpOutcome o = co_await perform(*conns[slot], (*reqs)[i]);
      ++finished;
      if (finished == reqs->size()) watch.cancel();
      (*done)(i, std::move(o));
    }
  }

  asio::awaitable<void> watcher(const std::function<bool()>& cancelled) {
    while (finished < reqs->size() && !stop) {
      watch.expires_after(std::chrono::milliseconds(100));
      beast::error_code ec;
      co_await watch.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (cancelled && cancelled()) {
        stop = true;
        for (auto& c : conns)
          if (c->open) c->close();
      }
    }
  }
};

HttpClient::HttpClient(Endpoint endpoint, ClientOptions options) : impl_(std::make_unique<Impl>(std::move(endpoint), std::move(options))) {}
HttpClient::~HttpClient() = default;
uint64_t HttpClient::attempts_sent() const { return impl_->attempts; }
const Endpoint& HttpClient::endpoint() const { return impl_->ep; }

void HttpClient::run(const std::vector<HttpRequest>& requests, const std::function<void(size_t, HttpOutcome)>& done,
                     const std::function<bool()>& cancelled) {
  if (requests.empty()) return;
  auto& m = *impl_;
  m.reqs = &requests;
  m.done = &done;
  m.next = m.finished = 0;
  m.stop = false;
  m.failure = nullptr;
  m.io.restart();
  auto on_end = [&m](std::exception_ptr e) {
    if (e && !m.failure) {
      m.failure = e;
      m.stop = true;
      m.watch.cancel();
    }
  };
  size_t workers = std::min(m.conns.size(), requests.size());
  for (size_t i = 0; i < workers; ++i) asio::co_spawn(m.io, m.worker(i), on_end);
  asio::co_spawn(m.io, m.watcher(cancelled), on_end);
  m.io.run();
  size_t started = m.next;
  m.reqs = nullptr;
  m.done = nullptr;
  if (m.failure) {
    for (auto& c : m.conns) c->close();
    std::rethrow_exception(m.failure);
  }
  for (size_t i = started; i < requests.size(); ++i) done(i, HttpOutcome{0, {}, "cancelled", 0, 0});
}

}  // namespace evald::bench
