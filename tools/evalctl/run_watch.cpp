#include "run_watch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace evalctl {

using evald::Value;

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 99 * 3600) return "--:--";
  auto s = int64_t(std::llround(seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

std::string progress_bar(double done, double total, int cells) {
  int n = total > 0 ? int(cells * std::clamp(done / total, 0.0, 1.0)) : 0;
  return "[" + std::string(size_t(n), '#') + std::string(size_t(cells - n), '.') + "]";
}

namespace {

std::string number(double x) {
  char buf[32];
  if (std::fabs(x - std::round(x)) < 1e-9 && std::fabs(x) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", x);
  else std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

int rank(const std::string& state) {
  if (state == "running") return 0;
  if (state == "failed") return 1;
  if (state == "pending") return 2;
  return 3;
}

}  // namespace

std::vector<std::string> RunWatch::update(const Value& status, double now_s) {
  std::vector<std::string> changes;
  if (first_s_ < 0) first_s_ = now_s;
  now_s_ = now_s;
  status_ = status;
  state_ = status.get_string("state");
  const auto* jobs = status.find("jobs");
  if (!jobs || !jobs->is_array()) return changes;
  for (auto& v : jobs->as_array()) {
    std::string key = v.get_string("stage") + "/" + v.get_string("unit");
    auto [it, fresh] = jobs_.try_emplace(key);
    Job& j = it->second;
    if (fresh) {
      order_.push_back(key);
      j.stage = v.get_string("stage");
      j.unit = v.get_string("unit");
    }
    const std::string state = v.get_string("state");
    const int64_t attempt = v.get_int("attempt");
    if (attempt != j.attempt) j.has_progress = false, j.tenth = -1;  // a retry starts over
    const std::string before = j.state;
    j.state = state;
    j.attempt = attempt;
    j.error = v.get_string("error");
    if (auto* p = v.find("progress"); p && p->is_map() && state == "running") {
      double done = p->get_double("done"), total = p->get_double("total");
      if (!j.has_progress) j.seen_s = now_s, j.seen_done = done;
      j.has_progress = true;
      j.done = done;
      j.total = total;
      j.rate = now_s - j.seen_s >= 0.5 ? (done - j.seen_done) / (now_s - j.seen_s) : 0;
      int tenth = total > 0 ? int(10 * std::clamp(done / total, 0.0, 1.0)) : 0;
      if (tenth != j.tenth && before == state) changes.push_back(line_of(j, 200));
      j.tenth = tenth;
    } else if (state != "running") {
      j.has_progress = false;
    }
    if (before != state) {
      std::string line = key + " " + (state == "pending" ? "queued" : state);
      if (attempt > 1) line += " (attempt " + std::to_string(attempt) + ")";
      if (state == "failed" && !j.error.empty()) line += ": " + j.error;
      changes.push_back(line);
    }
  }
  return changes;
}

std::string RunWatch::line_of(const Job& j, size_t width) const {
  std::string name = j.stage + "/" + j.unit;
  std::string s = name + std::string(name.size() < 28 ? 28 - name.size() : 1, ' ') + (j.state == "pending" ? "queued" : j.state);
  if (j.attempt > 1) s += " #" + std::to_string(j.attempt);
  if (j.state == "running" && j.has_progress) {
    int pct = j.total > 0 ? int(100 * std::clamp(j.done / j.total, 0.0, 1.0)) : 0;
    char buf[64];
    std::snprintf(buf, sizeof buf, " %3d%% ", pct);
    s += " " + progress_bar(j.done, j.total) + buf + number(j.done) + "/" + number(j.total);
    if (j.rate > 0) {
      std::snprintf(buf, sizeof buf, "  %.1f/s", j.rate);
      s += buf;
      s += "  left " + format_duration((j.total - j.done) / j.rate);
    }
  } else if (j.state == "failed" && !j.error.empty()) {
    s += ": " + j.error;
  }
  if (s.size() > width) s = s.substr(0, width > 3 ? width - 3 : 0) + "...";
  return s;
}

std::vector<std::string> RunWatch::frame(size_t width, size_t max_jobs) const {
  std::vector<std::string> out;
  size_t final_jobs = 0;
  for (auto& [_, j] : jobs_) final_jobs += j.state == "done" || j.state == "failed" || j.state == "skipped";
  std::string head = "run " + status_.get_string("id") + "  " + state_ + "  " + status_.get_string("competition") + "/" +
                     status_.get_string("round") + "  " + std::to_string(final_jobs) + "/" + std::to_string(jobs_.size()) +
                     " jobs final  " + format_duration(now_s_ - std::max(first_s_, 0.0)) + " watched";
  out.push_back(head.substr(0, width));
  if (auto* sc = status_.find("stage_counters"); sc && sc->is_array())
    for (auto& c : sc->as_array()) {
      std::string s = "  " + c.get_string("stage") + ": " + std::to_string(c.get_int("jobs")) + " jobs";
      for (const char* k : {"running", "queued", "done", "failed", "skipped", "retried"})
        if (c.get_int(k) > 0) s += ", " + std::to_string(c.get_int(k)) + " " + k;
      out.push_back(s.substr(0, width));
    }
  std::vector<const Job*> shown;
  for (auto& key : order_) shown.push_back(&jobs_.at(key));
  std::stable_sort(shown.begin(), shown.end(), [](const Job* a, const Job* b) { return rank(a->state) < rank(b->state); });
  for (size_t i = 0; i < shown.size() && i < max_jobs; ++i) out.push_back("  " + line_of(*shown[i], width > 2 ? width - 2 : 0));
  if (shown.size() > max_jobs) {
    std::map<std::string, size_t> rest;
    for (size_t i = max_jobs; i < shown.size(); ++i) ++rest[shown[i]->state == "pending" ? "queued" : shown[i]->state];
    std::string s = "  ... " + std::to_string(shown.size() - max_jobs) + " more (";
    bool first = true;
    for (auto& [st, n] : rest) s += (first ? "" : ", ") + std::to_string(n) + " " + st, first = false;
    out.push_back((s + ")").substr(0, width));
  }
  return out;
}

}  // namespace evalctl
