// evald-bench-benchmark-client: how many requests per second the benchmark plugin's HTTP
// client (evald::bench::HttpClient) sustains at a given concurrency against a server that
// answers instantly, beside wrk on the same endpoint as the ceiling of what that server can
// serve. The server runs in this process (Beast, keep-alive, a fixed ~300-byte completion).
//
//   evald-bench-benchmark-client [--requests N] [--concurrency C] [--seconds S] [--repeat R]
//                                [--server-threads T] [--no-wrk] [--json]
#include "bench_cli.hpp"
#include "http_client.hpp"
#include "scoring.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kAnswer =
    R"({"id":"cmpl-bench","object":"text_completion","model":"bench","choices":[{"index":0,"text":" B","logprobs":null,)"
    R"("finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":1,"total_tokens":43}})";
const std::string kRequest =
    R"({"model":"bench","prompt":"Question: Which planet is closest to the Sun?\nA. Venus\nB. Mercury\nC. Earth\nD. Mars\nAnswer:",)"
    R"("max_tokens":8,"temperature":0,"seed":1234})";

asio::awaitable<void> session(tcp::socket s) {
  beast::flat_buffer b;
  beast::error_code ec;
  auto tok = asio::redirect_error(asio::use_awaitable, ec);
  s.set_option(tcp::no_delay(true), ec);
  for (;;) {
    http::request<http::string_body> req;
    co_await http::async_read(s, b, req, tok);
    if (ec) break;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = kAnswer;
    res.prepare_payload();
    co_await http::async_write(s, res, tok);
    if (ec || !req.keep_alive()) break;
  }
  s.shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> listen(tcp::acceptor& a) {
  for (;;) {
    beast::error_code ec;
    tcp::socket s = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(a.get_executor(), session(std::move(s)), asio::detached);
  }
}

struct ClientRun {
  double rps = 0, p50_ms = 0, p99_ms = 0, wall_s = 0;
  size_t failed = 0;
};

ClientRun run_client(int port, size_t n, size_t concurrency) {
  evald::bench::ClientOptions o;
  o.concurrency = concurrency;
  o.timeout_s = 30;
  o.retries = 0;
  evald::bench::HttpClient c(*evald::bench::parse_endpoint("http://127.0.0.1:" + std::to_string(port) + "/v1"), o);
  std::vector<evald::bench::HttpRequest> reqs(n, {"/completions", kRequest});
  std::vector<double> lat;
  lat.reserve(n);
  ClientRun r;
  auto t0 = Clock::now();
  c.run(reqs, [&](size_t, evald::bench::HttpOutcome out) {
    if (!out.ok()) ++r.failed;
    lat.push_back(out.latency_s);
  });
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  r.rps = double(n) / r.wall_s;
  r.p50_ms = evald::bench::percentile(lat, 50) * 1e3;
  r.p99_ms = evald::bench::percentile(lat, 99) * 1e3;
  return r;
}

bool have_wrk() { return std::system("command -v wrk >/dev/null 2>&1") == 0; }

// wrk -t2 -cC -dS with a POST of the same body; returns its Requests/sec (0 on failure).
double run_wrk(int port, size_t concurrency, int seconds) {
  char dir[] = "/tmp/evald-bench-wrk-XXXXXX";
  if (!mkdtemp(dir)) return 0;
  std::string script = std::string(dir) + "/post.lua";
  {
    std::ofstream f(script);
    std::string body = kRequest;
    std::string escaped;
    for (char ch : body) {
      if (ch == '\\' || ch == '"') escaped += '\\';
      if (ch == '\n') {
        escaped += "\\n";
        continue;
      }
      escaped += ch;
    }
    f << "wrk.method = \"POST\"\nwrk.body = \"" << escaped << "\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n";
  }
  return evald::bench::run_wrk_script("-t2 -c" + std::to_string(concurrency) + " -d" + std::to_string(seconds) + "s http://127.0.0.1:" +
                                          std::to_string(port) + "/v1/completions",
                                      dir, script);
}

}  // namespace

using evald::bench::median;

int main(int argc, char** argv) {
  size_t requests = 200000, concurrency = 64, server_threads = 1;
  int seconds = 10, repeat = 3;
  bool wrk = true, json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--requests") requests = std::strtoul(next(), nullptr, 10);
    else if (a == "--concurrency") concurrency = std::strtoul(next(), nullptr, 10);
    else if (a == "--seconds") seconds = std::atoi(next());
    else if (a == "--repeat") repeat = std::max(1, std::atoi(next()));
    else if (a == "--server-threads") server_threads = std::max<size_t>(1, std::strtoul(next(), nullptr, 10));
    else if (a == "--no-wrk") wrk = false;
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr,
                   "usage: evald-bench-benchmark-client [--requests N] [--concurrency C] [--seconds S (wrk)] [--repeat R]\n"
                   "                                    [--server-threads T] [--no-wrk] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }

  asio::io_context io{int(server_threads)};
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  acc.listen(1024);
  int port = acc.local_endpoint().port();
  asio::co_spawn(io, listen(acc), asio::detached);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < server_threads; ++i) threads.emplace_back([&io] { io.run(); });

  run_client(port, std::min<size_t>(requests, 5000), concurrency);  // warm-up: connections, caches
  std::vector<double> rps, p50, p99;
  size_t failed = 0;
  for (int r = 0; r < repeat; ++r) {
    auto c = run_client(port, requests, concurrency);
    rps.push_back(c.rps);
    p50.push_back(c.p50_ms);
    p99.push_back(c.p99_ms);
    failed += c.failed;
    if (!json) std::fprintf(stderr, "client run %d: %.0f req/s (%.2f s), p50 %.3f ms, p99 %.3f ms, %zu failed\n", r + 1, c.rps, c.wall_s, c.p50_ms, c.p99_ms, c.failed);
  }
  std::vector<double> wrk_rps;
  bool wrk_ran = wrk && have_wrk();
  if (wrk_ran)
    for (int r = 0; r < repeat; ++r) {
      wrk_rps.push_back(run_wrk(port, concurrency, seconds));
      if (!json) std::fprintf(stderr, "wrk run %d: %.0f req/s\n", r + 1, wrk_rps.back());
    }
  io.stop();
  for (auto& t : threads) t.join();

  double client = median(rps), ceiling = median(wrk_rps);
  if (json) {
    std::printf("{\"concurrency\":%zu,\"requests\":%zu,\"repeat\":%d,\"server_threads\":%zu,\"client_rps\":%.1f,\"client_p50_ms\":%.4f,"
                "\"client_p99_ms\":%.4f,\"failed\":%zu,\"wrk_rps\":%s,\"ratio\":%s}\n",
                concurrency, requests, repeat, server_threads, client, median(p50), median(p99), failed,
                wrk_ran ? std::to_string(ceiling).c_str() : "null",
                wrk_ran && ceiling > 0 ? std::to_string(client / ceiling).c_str() : "null");
  } else {
    std::printf("| | requests/s | p50 / p99 |\n| --- | ---: | ---: |\n");
    std::printf("| evald HttpClient, %zu concurrent, %zu requests (median of %d) | %.0f | %.3f ms / %.3f ms |\n", concurrency, requests, repeat,
                client, median(p50), median(p99));
    if (wrk_ran)
      std::printf("| wrk -t2 -c%zu -d%ds (median of %d) | %.0f | |\n\nclient / wrk = %.2f\n", concurrency, seconds, repeat, ceiling,
                  ceiling > 0 ? client / ceiling : 0.0);
    else
      std::printf("\nwrk not run (%s)\n", wrk ? "not installed: apt-get install wrk" : "--no-wrk");
  }
  return failed ? 1 : 0;
}
