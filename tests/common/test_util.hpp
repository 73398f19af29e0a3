// Helpers shared by the tests: temp dirs, running commands, a real evald process.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace evald::test {

namespace fs = std::filesystem;

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "evald-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& s) const { return (path_ / s).string(); }

 private:
  fs::path path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct CommandResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs a shell command line, capturing its output and exit code.
inline CommandResult run(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A real evald process on its own data dir.
class Daemon {
 public:
  Daemon(std::string data_dir, std::vector<std::string> extra = {}) : data_dir_(std::move(data_dir)), extra_(std::move(extra)) {}
  ~Daemon() { kill(SIGKILL); }

  // Starts evald and waits until its control socket answers. Returns false on failure.
  bool start() {
    if (!spawn()) return false;
    for (int i = 0; i < 400; ++i) {
      if (ctl("status").code == 0) return true;
      if (reaped()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }

  // Starts the process without waiting for it to serve.
  bool spawn() {
    std::vector<std::string> args = {EVALD_BIN, "--data-dir", data_dir_, "--log-file", data_dir_ + ".log",
                                     "--plugin-dir", EVALD_PLUGIN_DIR, "--plugin-dir", EVALD_TEST_PLUGIN_DIR};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (!cwd_.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd_.c_str());
    bool ok = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    return ok;
  }

  // The directory the daemon runs in (relative paths in pipelines resolve against it);
  // by default the test's own.
  void set_cwd(std::string dir) { cwd_ = std::move(dir); }

  // evalctl against this daemon.
  CommandResult ctl(const std::string& args) const {
    return run(std::string(EVALCTL_BIN) + " --data-dir " + quote(data_dir_) + " " + args);
  }

  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT) wait_exit();
  }

  // Waits for the process to end; returns its exit code (or 128+signal).
  int wait_exit(int timeout_ms = 60000) {
    if (pid_ <= 0) return exit_code_;
    for (int i = 0; i < timeout_ms / 10; ++i) {
      if (reaped()) return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log() const { return read_file(data_dir_ + ".log"); }

 private:
  // Whether the process has ended; records its exit code (or 128+signal) if so.
  bool reaped() {
    int st;
    if (waitpid(pid_, &st, WNOHANG) != pid_) return false;
    pid_ = -1;
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
  }

  std::string data_dir_;
  std::vector<std::string> extra_;
  std::string cwd_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace evald::test

#ifdef EVALD_TEST_WITH_ZMQ
#include <evald/value.hpp>

#include <zmq.hpp>

namespace evald::test {

// One control request straight over ZeroMQ, as evalctl sends it; returns the decoded reply.
inline Value control(const std::string& data_dir, const Value& request) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::req);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvtimeo, 10000);
  s.connect("ipc://" + data_dir + "/control.sock");
  Bytes b = msgpack::encode(request);
  s.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none);
  zmq::message_t reply;
  if (!s.recv(reply)) return Value("no reply");
  auto v = msgpack::decode(static_cast<const uint8_t*>(reply.data()), reply.size());
  return v.ok() ? *v : Value(v.error());
}

// Sends raw bytes as a request; returns the raw reply.
inline std::string control_raw(const std::string& data_dir, const std::string& bytes) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::req);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvtimeo, 10000);
  s.connect("ipc://" + data_dir + "/control.sock");
  s.send(zmq::buffer(bytes), zmq::send_flags::none);
  zmq::message_t reply;
  if (!s.recv(reply)) return "";
  return reply.to_string();
}

}  // namespace evald::test
#endif
