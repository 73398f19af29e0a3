// Starts tests/benchmark/toy_openai_server.py (a test double for scripted faults, degenerate
// answers and known accuracies) on a free localhost port for one test and stops it
// afterwards; plus small helpers shared by the benchmark tests.
#pragma once

#include "records.hpp"
#include "runner.hpp"

#include <evald/value.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace bench_test {

inline const std::string kSource = EVALD_SOURCE_DIR;
inline const std::string kSuites = kSource + "/suites";

// A server process started for one test: argv[0] is looked up in PATH, and its first line
// on stdout must be "<ready_prefix><port>". Killed (SIGKILL) and reaped on destruction.
class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> args, const std::string& ready_prefix) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    int rc = posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      throw std::runtime_error("cannot start " + args[0]);
    }
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    if (line.rfind(ready_prefix, 0) != 0) {
      stop();
      throw std::runtime_error(args[0] + " " + (args.size() > 1 ? args[1] : "") + " did not start: \"" + line + "\"");
    }
    port_ = std::stoi(line.substr(ready_prefix.size()));
  }
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
    pid_ = 0;
  }
  pid_t pid_ = 0;
  int port_ = 0;
};

class ToyServer {
 public:
  explicit ToyServer(double know = 0.75, std::vector<std::string> suite_dirs = {kSuites}, double slow_s = 2.0)
      : proc_(args(know, std::move(suite_dirs), slow_s), "PORT "), port_(proc_.port()) {}
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

  // GET/POST on the control paths, synchronously.
  std::string call(boost::beast::http::verb verb, const std::string& target) const {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), uint16_t(port_)});
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = verb == http::verb::post ? "{}" : "";
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer b;
    http::response<http::string_body> res;
    http::read(s, b, res);
    return res.body();
  }
  int64_t requests() const {
    std::string body = call(boost::beast::http::verb::get, "/stats");
    auto p = body.find("\"requests\": ");
    return std::stoll(body.substr(p + 12));
  }
  void reset() const { call(boost::beast::http::verb::post, "/reset"); }

 private:
  static std::vector<std::string> args(double know, std::vector<std::string> suite_dirs, double slow_s) {
    std::vector<std::string> a{"python3", kSource + "/tests/benchmark/toy_openai_server.py", "--port", "0", "--know",
                               std::to_string(know), "--slow", std::to_string(slow_s), "--suites"};
    a.insert(a.end(), suite_dirs.begin(), suite_dirs.end());
    return a;
  }
  ServerProcess proc_;
  int port_ = 0;
};

class MapKv : public evald::bench::KvStore {
 public:
  std::optional<evald::Bytes> get(const std::string& key) override {
    auto it = m.find(key);
    if (it == m.end()) return std::nullopt;
    return it->second;
  }
  evald::Status put(const std::string& key, const evald::Bytes& value) override {
    m[key] = value;
    return {};
  }
  std::map<std::string, evald::Bytes> m;
};

// The toy model's rule for "knows this item" (see toy_openai_server.py).
inline bool toy_knows(const std::string& id, double know) {
  unsigned long h = std::stoul(evald::text::sha256_hex(id).substr(0, 8), nullptr, 16);
  return double(h % 1000) < know * 1000;
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << text;
}

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    auto base = std::filesystem::temp_directory_path() / "evald-bench-test";
    std::filesystem::create_directories(base);
    std::string t = (base / "XXXXXX").string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace bench_test
