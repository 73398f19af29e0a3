#include "scoring.hpp"

#include <algorithm>
#include <cmath>

namespace evald::bench {

std::pair<double, double> wilson_interval(double x, double n, double z) {
  if (n <= 0) return {0, 1};
  double p = x / n, z2 = z * z;
  double denom = 1 + z2 / n;
  double centre = (p + z2 / (2 * n)) / denom;
  double half = z / denom * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

const char* normalisation_name(Normalisation n) {
  switch (n) {
    case Normalisation::Absolute: return "absolute";
    case Normalisation::RelativeToTarget: return "relative_to_target";
    case Normalisation::RelativeToBest: return "relative_to_best";
    case Normalisation::MinMax: return "min_max";
  }
  return "?";
}

bool needs_round(const SectionSpec& s) {
  return s.normalisation == Normalisation::RelativeToBest || s.normalisation == Normalisation::MinMax;
}

Result<std::vector<SectionSpec>> sections_from(const Value& list) {
  std::vector<SectionSpec> out;
  if (!list.is_array()) return Status::error("config.sections: expected a list");
  for (size_t i = 0; i < list.as_array().size(); ++i) {
    auto& e = list.as_array()[i];
    std::string at = "config.sections[" + std::to_string(i) + "]";
    if (!e.is_map()) return Status::error(at + ": expected a map {name, points, suites, normalisation?, targets?}");
    for (auto& [k, _] : e.as_map())
      if (k != "name" && k != "points" && k != "suites" && k != "normalisation" && k != "targets")
        return Status::error(at + ": unknown key \"" + k + "\" (name, points, suites, normalisation, targets)");
    SectionSpec s;
    s.name = e.get_string("name");
    if (s.name.empty()) return Status::error(at + ".name: required, a non-empty string");
    auto* pts = e.find("points");
    if (!pts || !pts->is_number() || pts->as_double() < 0) return Status::error(at + ".points: required, a number >= 0");
    s.points = pts->as_double();
    auto* su = e.find("suites");
    if (!su || !su->is_array() || su->as_array().empty()) return Status::error(at + ".suites: required, a non-empty list of suite names");
    for (auto& x : su->as_array()) {
      if (!x.is_string() || x.as_string().empty()) return Status::error(at + ".suites: every entry must be a suite name");
      s.suites.push_back(x.as_string());
    }
    std::string n = e.get_string("normalisation", "absolute");
    if (n == "absolute") s.normalisation = Normalisation::Absolute;
    else if (n == "relative_to_target") s.normalisation = Normalisation::RelativeToTarget;
    else if (n == "relative_to_best") s.normalisation = Normalisation::RelativeToBest;
    else if (n == "min_max") s.normalisation = Normalisation::MinMax;
    else return Status::error(at + ".normalisation: \"" + n + "\" is not one of absolute, relative_to_target, relative_to_best, min_max");
    if (auto* t = e.find("targets")) {
      if (!t->is_map()) return Status::error(at + ".targets: expected a map suite -> target accuracy");
      for (auto& [k, v] : t->as_map()) {
        if (!v.is_number() || v.as_double() <= 0 || v.as_double() > 1)
          return Status::error(at + ".targets." + k + ": a target accuracy must be a number in (0, 1]");
        s.targets[k] = v.as_double();
      }
    }
    for (auto& prev : out)
      if (prev.name == s.name) return Status::error(at + ".name: section \"" + s.name + "\" is defined twice");
    out.push_back(std::move(s));
  }
  return out;
}

Value score_sections(const std::vector<SectionSpec>& sections, const std::map<std::string, double>& accuracy,
                     const std::map<std::string, double>& targets, const std::map<std::string, std::vector<double>>* round) {
  Value out;
  double total = 0, scale = 0;
  bool complete = true;
  std::string reason;
  Array rows;
  auto incomplete = [&](const std::string& why) {
    if (complete) reason = why;
    complete = false;
  };
  for (auto& s : sections) {
    Value row;
    row.set("name", s.name);
    row.set("points_max", s.points);
    row.set("normalisation", normalisation_name(s.normalisation));
    scale += s.points;
    Array per;
    double sum = 0;
    bool ok = true;
    for (auto& name : s.suites) {
      Value r;
      r.set("suite", name);
      auto it = accuracy.find(name);
      if (it == accuracy.end()) {
        ok = false;
        r.set("error", "no accuracy for this suite");
        incomplete("section " + s.name + ": suite " + name + " has no result");
        per.push_back(std::move(r));
        continue;
      }
      double acc = it->second, norm = 0;
      r.set("accuracy", acc);
      switch (s.normalisation) {
        case Normalisation::Absolute: norm = acc; break;
        case Normalisation::RelativeToTarget: {
          double target = 0;
          if (auto t = targets.find(name); t != targets.end()) target = t->second;
          else if (auto c = s.targets.find(name); c != s.targets.end()) target = c->second;
          if (target <= 0) {
            ok = false;
            incomplete("section " + s.name + ": no target for suite " + name + " (submission.targets or the section's targets)");
            r.set("error", "no target");
            break;
          }
          r.set("target", target);
          norm = std::min(1.0, acc / target);
          break;
        }
        case Normalisation::RelativeToBest:
        case Normalisation::MinMax: {
          if (!round) {
            ok = false;
            incomplete("section " + s.name + " (" + normalisation_name(s.normalisation) +
                       ") needs every entrant's accuracy: its points come from the per-round stage");
            r.set("pending", true);
            break;
          }
          auto rv = round->find(name);
          double best = acc, worst = acc;
          if (rv != round->end())
            for (double x : rv->second) best = std::max(best, x), worst = std::min(worst, x);
          if (s.normalisation == Normalisation::RelativeToBest) {
            r.set("best", best);
            norm = best > 0 ? acc / best : 0;
          } else {
            r.set("min", worst);
            r.set("max", best);
            // All entrants equal: every one of them is the best.
            norm = best > worst ? (acc - worst) / (best - worst) : 1.0;
          }
          break;
        }
      }
      r.set("normalised", norm);
      r.set("points", s.points * norm / double(s.suites.size()));
      sum += norm;
      per.push_back(std::move(r));
    }
    row.set("suites", std::move(per));
    if (ok) {
      double pts = s.points * sum / double(s.suites.size());
      row.set("points", pts);
      total += pts;
    } else {
      row.set("points", Value());
    }
    rows.push_back(std::move(row));
  }
  out.set("sections", std::move(rows));
  out.set("scale", scale);
  out.set("complete", complete);
  out.set("points", complete ? Value(total) : Value());
  if (!complete) out.set("reason", reason);
  return out;
}

}  // namespace evald::bench
