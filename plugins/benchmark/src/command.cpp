#include "command.hpp"

#include "records.hpp"
#include "scoring.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace evald::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Result<std::string> expand(const std::string& s, const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t open = s.find('{', pos);
    if (open == std::string::npos) break;
    size_t close = s.find('}', open);
    if (close == std::string::npos) break;
    std::string name = s.substr(open + 1, close - open - 1);
    auto it = vars.find(name);
    if (it == vars.end()) {
      std::string known;
      for (auto& [k, _] : vars) known += (known.empty() ? "{" : ", {") + k + "}";
      return Status::error("\"" + s + "\": unknown placeholder {" + name + "} (known: " + known + ")");
    }
    out.append(s, pos, open - pos);
    out += it->second;
    pos = close + 1;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

Result<CommandResult> run_command(const CommandSpec& spec, const std::function<bool()>& cancelled) {
  if (spec.argv.empty()) return Status::error("command: empty argv");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    std::string key = kv.substr(0, kv.find('='));
    if (!spec.env.count(key)) env_strings.push_back(kv);
  }
  for (auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, spec.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!spec.workdir.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.workdir.c_str());
  // Its own process group: a timeout kills what the script started, too.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  pid_t pid = 0;
  auto t0 = Clock::now();
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::error("command " + spec.argv[0] + " could not be started: " + std::strerror(rc));

  CommandResult res;
  int status = 0;
  Clock::time_point term_at{};
  bool termed = false;
  while (true) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return Status::error(std::string("waitpid: ") + std::strerror(errno));
    double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!termed && (elapsed > spec.timeout_s || (cancelled && cancelled()))) {
      res.timed_out = elapsed > spec.timeout_s;
      res.cancelled = !res.timed_out;
      kill(-pid, SIGTERM);
      termed = true;
      term_at = Clock::now();
    }
    if (termed && Clock::now() - term_at > std::chrono::seconds(2)) kill(-pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (termed) kill(-pid, SIGKILL);  // whatever of the group outlived the leader
  res.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  return res;
}

std::string find_results_file(const std::string& dir) {
  std::string best;
  fs::file_time_type best_t{};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    if (name.rfind("results", 0) != 0 || it->path().extension() != ".json") continue;
    auto t = it->last_write_time(ec);
    if (best.empty() || t > best_t) best = it->path().string(), best_t = t;
  }
  return best;
}

Result<std::vector<Value>> harness_suites(const std::string& path, const std::string& metric) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error(path + ": cannot read the harness results");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  auto scores = parse_harness_results(text, path);
  if (!scores) return scores.status();
  std::string sha = text::sha256_hex(text);
  std::map<std::string, const HarnessScore*> pick;
  for (auto& s : *scores) {
    if (s.metric != metric) continue;
    auto& cur = pick[s.task];
    if (!cur || (s.filter == "none" && cur->filter != "none")) cur = &s;
  }
  if (pick.empty()) return Status::error(path + ": no task reports metric \"" + metric + "\" (harness_metric)");
  std::vector<Value> out;
  for (auto& [task, s] : pick) {
    Value v;
    v.set("name", task);
    v.set("version", "harness");
    v.set("method", "harness");
    v.set("metric", s->metric + (s->filter.empty() ? "" : "," + s->filter));
    v.set("accuracy", s->value);
    v.set("score", s->value);
    v.set("score_is", "accuracy");
    if (s->stderr_value) v.set("stderr", *s->stderr_value);
    if (s->n && *s->n > 0 && s->value >= 0 && s->value <= 1) {
      // The harness says how many items it scored: the same Wilson interval as our suites.
      double n = double(*s->n);
      auto [lo, hi] = wilson_interval(std::round(s->value * n), n);
      v.set("n", int64_t(*s->n));
      v.set("ci", Array{lo, hi});
      v.set("ci_method", "Wilson, n from the harness's n-samples");
    } else if (s->stderr_value) {
      double half = 1.959963984540054 * *s->stderr_value;
      v.set("ci", Array{std::max(0.0, s->value - half), std::min(1.0, s->value + half)});
      v.set("ci_method", "normal approximation from the harness's stderr (no n-samples)");
    }
    Value metrics;
    for (auto& x : *scores)
      if (x.task == task) metrics.set(x.metric + (x.filter.empty() ? "" : "," + x.filter), x.value);
    v.set("metrics", metrics);
    Value file;
    file.set("path", path);
    file.set("sha256", sha);
    file.set("format", "lm-evaluation-harness results");
    v.set("item_files", Array{file});
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace evald::bench
