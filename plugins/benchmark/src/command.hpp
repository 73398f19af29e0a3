// The `command` backend: an evaluation harness or a team's own script run as a child process
// (its own process group, so a timeout kills everything it started), with its stdout and
// stderr saved as files and its lm-evaluation-harness results JSON read back as suite scores.
#pragma once

#include "suite.hpp"

#include <evald/value.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace evald::bench {

struct CommandSpec {
  std::vector<std::string> argv;              // argv[0] is looked up in PATH when it has no '/'
  std::map<std::string, std::string> env;     // added to (or replacing in) the daemon's environment
  std::string workdir;                        // the child's working directory
  std::string stdout_path, stderr_path;
  double timeout_s = 3600;
};

struct CommandResult {
  int exit_code = -1;   // when it exited
  int signal = 0;       // when a signal ended it
  bool timed_out = false;
  bool cancelled = false;
  double wall_s = 0;
};

// Runs the command to the end, or until timeout_s / cancelled(): then SIGTERM to its process
// group, SIGKILL 2 s later. An error only when it cannot be started.
Result<CommandResult> run_command(const CommandSpec& spec, const std::function<bool()>& cancelled);

// Replaces {name} in s with vars[name]; an unknown {name} is an error naming it.
Result<std::string> expand(const std::string& s, const std::map<std::string, std::string>& vars);

// The newest file named results*.json under dir (lm-evaluation-harness writes
// <output_path>/<model>/results_<time>.json), or empty.
std::string find_results_file(const std::string& dir);

// Suite results from a harness results file: one per task that has `metric` (filter "none"
// preferred), with a 95% interval from the harness's stderr (normal approximation, clipped to
// [0, 1]) when it gives one.
Result<std::vector<Value>> harness_suites(const std::string& results_path, const std::string& metric);

}  // namespace evald::bench
