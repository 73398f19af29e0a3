// RunWatch: what `evalctl run watch` shows of a run, built from successive run.status
// answers: every job's state and, for jobs that report progress (scanning, benchmarking), a
// bar with the rate and the time left. Pure: no I/O, so the view is tested without a daemon.
#pragma once

#include <evald/value.hpp>

#include <map>
#include <string>
#include <vector>

namespace evalctl {

class RunWatch {
 public:
  // Takes one run.status answer, seen at now_s (seconds on a monotonic clock). Returns a line
  // per change since the previous answer: a job appearing or changing state (with its error
  // when it failed), or its progress crossing a tenth. Not thread-safe.
  std::vector<std::string> update(const evald::Value& status, double now_s);

  // The whole view as lines no wider than width: the run, a line per stage with its counts,
  // then the jobs (running first, then failed, queued and done), at most max_jobs of them and
  // a line saying how many more.
  std::vector<std::string> frame(size_t width, size_t max_jobs) const;

  // The last answer, and the run's state in it ("running", "done", "failed", ...).
  const evald::Value& status() const { return status_; }
  const std::string& state() const { return state_; }

 private:
  struct Job {
    std::string stage, unit, state, error;
    int64_t attempt = 0;
    bool has_progress = false;
    double done = 0, total = 0;
    double seen_s = 0, seen_done = 0;  // where this attempt's progress was first seen
    double rate = 0;                   // units per second since then
    int tenth = -1;                    // last tenth of progress reported by update()
  };
  std::string line_of(const Job& j, size_t width) const;

  std::map<std::string, Job> jobs_;  // by stage/unit
  std::vector<std::string> order_;   // first seen first
  evald::Value status_;
  std::string state_;
  double first_s_ = -1, now_s_ = 0;
};

// "[#####...............]": done out of total in `cells` cells (empty when total is not
// above 0).
std::string progress_bar(double done, double total, int cells = 20);

// "1:05", "12:00:07": a duration for humans.
std::string format_duration(double seconds);

}  // namespace evalctl
