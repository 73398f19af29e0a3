#include "panel.hpp"

#include "agreement.hpp"
#include "records.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace evald::scores {

namespace {

const char* aggregation_name(Aggregation a) {
  switch (a) {
    case Aggregation::Mean: return "mean";
    case Aggregation::Median: return "median";
    case Aggregation::TrimmedMean: return "trimmed_mean";
  }
  return "?";
}

// A column by its English name or the Korean header panels use.
std::string field(const Value& fields, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string v = text::field_text(fields, n);
    if (!v.empty()) return v;
  }
  return {};
}
const Value* field_value(const Value& fields, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto* v = fields.find(n); v && !v->is_null() && !(v->is_string() && v->as_string().empty())) return v;
  return nullptr;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}
double sample_sd(const std::vector<double>& v) {
  if (v.size() < 2) return NAN;
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}
double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = mean(a), mb = mean(b), sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : NAN;
}
Value num(double x) { return std::isfinite(x) ? Value(x) : Value(); }
Value opt(const std::optional<double>& x) { return x ? num(*x) : Value(); }

std::string where(const SheetRow& r) {
  if (r.line) return r.source + ":" + std::to_string(r.line);
  return r.source + (r.id.empty() ? "" : "#" + r.id);
}

std::string fmt(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}

}  // namespace

Result<PanelConfig> panel_config_from(const Value& config) {
  PanelConfig c;
  c.scale = config.get_double("scale", 35);
  std::string agg = config.get_string("aggregation", "mean");
  if (agg == "mean") c.aggregation = Aggregation::Mean;
  else if (agg == "median") c.aggregation = Aggregation::Median;
  else if (agg == "trimmed_mean") c.aggregation = Aggregation::TrimmedMean;
  else return Status::error("aggregation: \"" + agg + "\" is not mean, median or trimmed_mean");
  c.trim = int(config.get_int("trim", 1));
  c.standardise = config.get_bool("standardise", false);
  c.flag_min_correlation = config.get_double("flag_min_correlation", 0.0);
  c.flag_max_deviation = config.get_double("flag_max_deviation", 0.2);
  c.min_raters = int(config.get_int("min_raters", 1));
  auto* crit = config.find("criteria");
  if (!crit || !crit->is_array() || crit->as_array().empty()) return Status::error("criteria: at least one criterion is required");
  std::set<std::string> names;
  for (size_t i = 0; i < crit->as_array().size(); ++i) {
    const Value& v = crit->as_array()[i];
    std::string at = "criteria[" + std::to_string(i) + "]";
    if (!v.is_map()) return Status::error(at + ": expected a map {name, weight, min, max, label?}");
    for (auto& [k, _] : v.as_map())
      if (k != "name" && k != "weight" && k != "min" && k != "max" && k != "label")
        return Status::error(at + ": unknown key \"" + k + "\" (name, weight, min, max, label)");
    Criterion cr;
    cr.name = v.get_string("name");
    cr.label = v.get_string("label");
    if (cr.name.empty()) return Status::error(at + ".name: required");
    for (const char* k : {"weight", "min", "max"})
      if (auto* x = v.find(k); !x || !x->is_number()) return Status::error(at + "." + k + ": a number is required");
    cr.weight = v.get_double("weight");
    cr.min = v.get_double("min");
    cr.max = v.get_double("max");
    if (!(cr.weight > 0) || !std::isfinite(cr.weight)) return Status::error(at + ".weight: must be above 0");
    if (!(cr.max > cr.min)) return Status::error(at + ": max must be above min");
    if (!names.insert(cr.name).second || (!cr.label.empty() && !names.insert(cr.label).second))
      return Status::error(at + ": criterion name or label \"" + cr.name + "\" used twice");
    c.criteria.push_back(cr);
  }
  if (auto* co = config.find("conflicts"); co && co->is_array())
    for (size_t i = 0; i < co->as_array().size(); ++i) {
      const Value& v = co->as_array()[i];
      if (!v.is_map() || v.get_string("rater").empty() || v.get_string("entrant").empty())
        return Status::error("conflicts[" + std::to_string(i) + "]: expected {rater, entrant}");
      c.conflicts.emplace_back(v.get_string("rater"), v.get_string("entrant"));
    }
  return c;
}

std::string panel_rule(const PanelConfig& cfg) {
  std::string s;
  if (cfg.standardise)
    s += "Each rater's scores per criterion are turned into z-scores over the entrants that rater scored, then mapped back "
         "onto the criterion's scale with the mean and standard deviation of all raw scores for that criterion (a rater "
         "whose scores do not vary gets the panel mean). ";
  switch (cfg.aggregation) {
    case Aggregation::Mean: s += "Per entrant and criterion, the mean over raters. "; break;
    case Aggregation::Median: s += "Per entrant and criterion, the median over raters. "; break;
    case Aggregation::TrimmedMean:
      s += "Per entrant and criterion, the mean over raters after dropping the " + std::to_string(cfg.trim) +
           " highest and lowest scores (the median when there are too few raters to trim). ";
      break;
  }
  s += "Each criterion is normalised to 0-1 over its range and weighted; points = " + fmt(cfg.scale) +
       " x the weighted mean. Rows of a conflicted rater-entrant pair are excluded before anything else.";
  return s;
}

Value score_panel(const PanelConfig& cfg, const std::vector<RosterEntry>& roster, const std::vector<SheetRow>& rows) {
  const size_t E = roster.size(), C = cfg.criteria.size();
  std::map<std::string, size_t> entrant_by;
  for (size_t i = 0; i < E; ++i) {
    entrant_by.emplace(roster[i].id, i);
    if (!roster[i].name.empty()) entrant_by.emplace(roster[i].name, i);
  }
  std::map<std::string, size_t> criterion_by;
  for (size_t i = 0; i < C; ++i) {
    criterion_by.emplace(cfg.criteria[i].name, i);
    if (!cfg.criteria[i].label.empty()) criterion_by.emplace(cfg.criteria[i].label, i);
  }
  std::set<std::pair<std::string, size_t>> conflicted;
  for (auto& [r, e] : cfg.conflicts)
    if (auto it = entrant_by.find(e); it != entrant_by.end()) conflicted.emplace(r, it->second);

  Array rejected, excluded;
  auto reject = [&](const SheetRow& r, const std::string& why) {
    Value x;
    x.set("where", where(r));
    x.set("reason", why);
    rejected.push_back(std::move(x));
  };

  struct Score {
    std::string rater;
    size_t e, c;
    double value;
    size_t row;
    bool dropped = false;
  };
  std::vector<Score> scores;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SheetRow& r = rows[i];
    if (!r.defect.empty()) {
      reject(r, r.defect);
      continue;
    }
    std::string rater = field(r.fields, {"rater", "평가위원"});
    std::string ent = field(r.fields, {"entrant", "참가팀", "팀"});
    std::string crit = field(r.fields, {"criterion", "평가항목", "항목"});
    const Value* sv = field_value(r.fields, {"score", "점수"});
    if (rater.empty()) { reject(r, "field \"rater\" is missing"); continue; }
    if (ent.empty()) { reject(r, "field \"entrant\" is missing"); continue; }
    if (crit.empty()) { reject(r, "field \"criterion\" is missing"); continue; }
    if (!sv) { reject(r, "field \"score\" is missing"); continue; }
    auto eit = entrant_by.find(ent);
    if (eit == entrant_by.end()) { reject(r, "unknown entrant \"" + ent + "\" (not in the round's roster)"); continue; }
    auto cit = criterion_by.find(crit);
    if (cit == criterion_by.end()) { reject(r, "unknown criterion \"" + crit + "\""); continue; }
    Value holder = Map{};
    holder.set("score", *sv);
    auto value = text::field_number(holder, "score");
    if (!value) { reject(r, value.error()); continue; }
    const Criterion& cr = cfg.criteria[cit->second];
    if (*value < cr.min || *value > cr.max) {
      reject(r, "score " + fmt(*value) + " outside " + fmt(cr.min) + ".." + fmt(cr.max) + " for criterion " + cr.name);
      continue;
    }
    if (conflicted.count({rater, eit->second})) {
      Value x;
      x.set("where", where(r));
      x.set("reason", "conflict of interest: rater " + rater + " and entrant " + roster[eit->second].id);
      excluded.push_back(std::move(x));
      continue;
    }
    scores.push_back({rater, eit->second, cit->second, *value, i});
  }

  // Duplicates: an identical repeat is rejected and the first kept; differing repeats leave
  // no way to tell which is meant, so all of them are rejected.
  std::map<std::tuple<std::string, size_t, size_t>, size_t> first;
  for (size_t k = 0; k < scores.size(); ++k) {
    auto key = std::make_tuple(scores[k].rater, scores[k].e, scores[k].c);
    auto [it, fresh] = first.emplace(key, k);
    if (fresh) continue;
    Score& a = scores[it->second];
    Score& b = scores[k];
    b.dropped = true;
    if (a.value == b.value) {
      reject(rows[b.row], "duplicate of " + where(rows[a.row]) + " (same rater, entrant and criterion)");
    } else {
      reject(rows[b.row], "conflicts with " + where(rows[a.row]) + " (same rater, entrant and criterion, score " +
                              fmt(b.value) + " there " + fmt(a.value) + "): both rejected");
      if (!a.dropped) {
        a.dropped = true;
        reject(rows[a.row], "conflicts with " + where(rows[b.row]) + " (same rater, entrant and criterion, score " +
                                fmt(a.value) + " there " + fmt(b.value) + "): both rejected");
      }
    }
  }
  // A rater's sheet for an entrant must cover every criterion, or its weighted total would
  // silently rest on fewer criteria than the others'.
  std::map<std::pair<std::string, size_t>, std::vector<size_t>> sheet;
  for (size_t k = 0; k < scores.size(); ++k)
    if (!scores[k].dropped) sheet[{scores[k].rater, scores[k].e}].push_back(k);
  for (auto& [key, ks] : sheet) {
    if (ks.size() == C) continue;
    std::vector<bool> have(C, false);
    for (size_t k : ks) have[scores[k].c] = true;
    std::string missing;
    for (size_t c = 0; c < C; ++c)
      if (!have[c]) missing += (missing.empty() ? "" : ", ") + cfg.criteria[c].name;
    for (size_t k : ks) {
      scores[k].dropped = true;
      reject(rows[scores[k].row], "rater " + key.first + " scored entrant " + roster[key.second].id + " on " +
                                      std::to_string(ks.size()) + " of " + std::to_string(C) + " criteria (missing: " + missing + ")");
    }
  }

  // raw[r][e][c]
  std::map<std::string, std::vector<std::vector<double>>> raw;
  for (auto& s : scores) {
    if (s.dropped) continue;
    auto& m = raw[s.rater];
    if (m.empty()) m.assign(E, std::vector<double>(C, NAN));
    m[s.e][s.c] = s.value;
  }
  std::vector<std::string> raters;
  for (auto& [r, _] : raw) raters.push_back(r);
  const size_t R = raters.size();
  auto scored = [&](size_t r, size_t e) { return !std::isnan(raw[raters[r]][e][0]); };

  // adj[r][e][c]: what is aggregated (raw, or standardised and mapped back).
  std::vector<std::vector<std::vector<double>>> adj(R);
  for (size_t r = 0; r < R; ++r) adj[r] = raw[raters[r]];
  if (cfg.standardise) {
    for (size_t c = 0; c < C; ++c) {
      std::vector<double> all;
      for (size_t r = 0; r < R; ++r)
        for (size_t e = 0; e < E; ++e)
          if (scored(r, e)) all.push_back(raw[raters[r]][e][c]);
      double M = mean(all), S = sample_sd(all);
      if (!std::isfinite(S)) S = 0;
      for (size_t r = 0; r < R; ++r) {
        std::vector<double> mine;
        for (size_t e = 0; e < E; ++e)
          if (scored(r, e)) mine.push_back(raw[raters[r]][e][c]);
        double m = mean(mine), sd = sample_sd(mine);
        for (size_t e = 0; e < E; ++e) {
          if (!scored(r, e)) continue;
          double z = std::isfinite(sd) && sd > 0 ? (raw[raters[r]][e][c] - m) / sd : 0.0;
          adj[r][e][c] = std::clamp(M + S * z, cfg.criteria[c].min, cfg.criteria[c].max);
        }
      }
    }
  }
  double wsum = 0;
  for (auto& c : cfg.criteria) wsum += c.weight;
  auto points_of = [&](const std::vector<double>& per_criterion) {
    double s = 0;
    for (size_t c = 0; c < C; ++c)
      s += cfg.criteria[c].weight * (per_criterion[c] - cfg.criteria[c].min) / (cfg.criteria[c].max - cfg.criteria[c].min);
    return cfg.scale * s / wsum;
  };
  // total[r][e]: each rater's own points for an entrant (NaN where not scored).
  std::vector<std::vector<double>> total(R, std::vector<double>(E, NAN));
  for (size_t r = 0; r < R; ++r)
    for (size_t e = 0; e < E; ++e)
      if (scored(r, e)) total[r][e] = points_of(adj[r][e]);

  Array entrants;
  for (size_t e = 0; e < E; ++e) {
    Value out;
    out.set("entrant", roster[e].id);
    out.set("name", roster[e].name);
    out.set("scale", cfg.scale);
    std::vector<size_t> who;
    for (size_t r = 0; r < R; ++r)
      if (scored(r, e)) who.push_back(r);
    out.set("raters", int64_t(who.size()));
    if (int(who.size()) < cfg.min_raters || who.empty()) {
      out.set("complete", false);
      out.set("points", Value());
      out.set("reason", std::to_string(who.size()) + " rater(s) with a complete sheet; at least " +
                            std::to_string(std::max(1, cfg.min_raters)) + " needed");
      entrants.push_back(std::move(out));
      continue;
    }
    std::vector<double> agg(C);
    Array crit;
    std::string note;
    for (size_t c = 0; c < C; ++c) {
      std::vector<double> v;
      for (size_t r : who) v.push_back(adj[r][e][c]);
      double a = 0;
      switch (cfg.aggregation) {
        case Aggregation::Mean: a = mean(v); break;
        case Aggregation::Median: a = median(v); break;
        case Aggregation::TrimmedMean:
          if (v.size() <= size_t(2 * cfg.trim)) {
            a = median(v);
            note = "too few raters to trim " + std::to_string(cfg.trim) + " at each end: median used";
          } else {
            std::sort(v.begin(), v.end());
            a = mean(std::vector<double>(v.begin() + cfg.trim, v.end() - cfg.trim));
          }
          break;
      }
      agg[c] = a;
      std::vector<double> rv;
      for (size_t r : who) rv.push_back(raw[raters[r]][e][c]);
      Value x;
      x.set("criterion", cfg.criteria[c].name);
      x.set("score", a);
      x.set("raw_mean", mean(rv));
      x.set("sd", num(sample_sd(rv)));
      x.set("min", *std::min_element(rv.begin(), rv.end()));
      x.set("max", *std::max_element(rv.begin(), rv.end()));
      x.set("range", Array{Value(cfg.criteria[c].min), Value(cfg.criteria[c].max)});
      x.set("weight", cfg.criteria[c].weight);
      crit.push_back(std::move(x));
    }
    out.set("complete", true);
    out.set("points", points_of(agg));
    out.set("criteria", std::move(crit));
    std::vector<double> t;
    Array per;
    for (size_t r : who) {
      t.push_back(total[r][e]);
      Value x;
      x.set("rater", raters[r]);
      x.set("points", total[r][e]);
      per.push_back(std::move(x));
    }
    Value spread;
    spread.set("sd", num(sample_sd(t)));
    spread.set("min", *std::min_element(t.begin(), t.end()));
    spread.set("max", *std::max_element(t.begin(), t.end()));
    out.set("spread", spread);
    out.set("per_rater", std::move(per));
    if (!note.empty()) out.set("note", note);
    entrants.push_back(std::move(out));
  }

  // Agreement on the raw scores: units are (entrant, criterion), one column per rater.
  Value agreement;
  std::vector<std::vector<std::optional<double>>> units;
  std::vector<std::vector<std::vector<std::optional<double>>>> by_crit(C);
  for (size_t e = 0; e < E; ++e)
    for (size_t c = 0; c < C; ++c) {
      std::vector<std::optional<double>> u(R);
      for (size_t r = 0; r < R; ++r)
        if (scored(r, e)) u[r] = raw[raters[r]][e][c];
      units.push_back(u);
      by_crit[c].push_back(u);
    }
  agreement.set("alpha_interval", opt(krippendorff_alpha(units, Metric::Interval)));
  agreement.set("alpha_ordinal", opt(krippendorff_alpha(units, Metric::Ordinal)));
  Value per_crit = Map{};
  for (size_t c = 0; c < C; ++c) per_crit.set(cfg.criteria[c].name, opt(krippendorff_alpha(by_crit[c], Metric::Interval)));
  agreement.set("alpha_interval_by_criterion", per_crit);
  agreement.set("alpha_units", "entrant x criterion, raw scores");
  // ICC needs a complete table: the raters who scored every entrant that has scores.
  std::vector<size_t> targets, icc_raters;
  for (size_t e = 0; e < E; ++e) {
    bool any = false;
    for (size_t r = 0; r < R; ++r) any |= scored(r, e);
    if (any) targets.push_back(e);
  }
  for (size_t r = 0; r < R; ++r) {
    bool all = !targets.empty();
    for (size_t e : targets) all &= scored(r, e);
    if (all) icc_raters.push_back(r);
  }
  std::vector<std::vector<double>> table;
  for (size_t e : targets) {
    std::vector<double> row;
    std::vector<double> raw_total;
    for (size_t r : icc_raters) {
      double s = 0;
      for (size_t c = 0; c < C; ++c)
        s += cfg.criteria[c].weight * (raw[raters[r]][e][c] - cfg.criteria[c].min) / (cfg.criteria[c].max - cfg.criteria[c].min);
      row.push_back(cfg.scale * s / wsum);
    }
    table.push_back(std::move(row));
  }
  if (auto icc = intraclass_correlation(table)) {
    Value x;
    x.set("icc1_1", num(icc->icc1_1));
    x.set("icc2_1", num(icc->icc2_1));
    x.set("icc3_1", num(icc->icc3_1));
    x.set("icc1_k", num(icc->icc1_k));
    x.set("icc2_k", num(icc->icc2_k));
    x.set("icc3_k", num(icc->icc3_k));
    x.set("targets", int64_t(icc->targets));
    x.set("raters", int64_t(icc->raters));
    Array names;
    for (size_t r : icc_raters) names.push_back(raters[r]);
    x.set("rater_ids", std::move(names));
    x.set("on", "each rater's weighted raw total per entrant; raters who scored every entrant");
    agreement.set("icc", x);
  } else {
    agreement.set("icc", Value());
    agreement.set("icc_unavailable", std::to_string(icc_raters.size()) + " rater(s) scored all " + std::to_string(targets.size()) +
                                         " scored entrant(s); ICC needs at least two of each");
  }

  // A rater stands out when their totals do not follow the rest of the panel (leave-one-out
  // correlation) or sit far from it (mean absolute deviation as a share of the scale).
  Array rater_rows;
  int64_t flagged = 0;
  for (size_t r = 0; r < R; ++r) {
    std::vector<double> mine, others;
    for (size_t e = 0; e < E; ++e) {
      if (!scored(r, e)) continue;
      std::vector<double> o;
      for (size_t q = 0; q < R; ++q)
        if (q != r && scored(q, e)) o.push_back(total[q][e]);
      if (o.empty()) continue;
      mine.push_back(total[r][e]);
      others.push_back(mean(o));
    }
    Value x;
    x.set("rater", raters[r]);
    int64_t n = 0;
    for (size_t e = 0; e < E; ++e) n += scored(r, e);
    x.set("entrants", n);
    double corr = mine.size() >= 3 ? pearson(mine, others) : NAN;
    double dev = NAN;
    if (!mine.empty()) {
      dev = 0;
      for (size_t i = 0; i < mine.size(); ++i) dev += std::fabs(mine[i] - others[i]);
      dev = dev / double(mine.size()) / cfg.scale;
    }
    x.set("loo_correlation", num(corr));
    x.set("mean_deviation", num(dev));
    Array why;
    if (std::isfinite(corr) && corr < cfg.flag_min_correlation)
      why.push_back("correlation " + fmt(corr) + " with the rest of the panel, below " + fmt(cfg.flag_min_correlation));
    if (std::isfinite(dev) && dev > cfg.flag_max_deviation)
      why.push_back("mean deviation " + fmt(dev) + " of the scale from the rest of the panel, above " + fmt(cfg.flag_max_deviation));
    x.set("flagged", !why.empty());
    flagged += !why.empty();
    x.set("reasons", std::move(why));
    rater_rows.push_back(std::move(x));
  }

  Value counts;
  int64_t used = 0;
  for (auto& s : scores) used += !s.dropped;
  counts.set("rows", int64_t(rows.size()));
  counts.set("used", used);
  counts.set("rejected", int64_t(rejected.size()));
  counts.set("excluded_conflict", int64_t(excluded.size()));
  counts.set("raters", int64_t(R));
  counts.set("flagged_raters", flagged);

  Value method;
  method.set("aggregation", aggregation_name(cfg.aggregation));
  if (cfg.aggregation == Aggregation::TrimmedMean) method.set("trim", int64_t(cfg.trim));
  method.set("standardise", cfg.standardise);
  method.set("scale", cfg.scale);
  method.set("min_raters", int64_t(cfg.min_raters));
  method.set("rule", panel_rule(cfg));
  Array crits;
  for (auto& c : cfg.criteria) {
    Value x;
    x.set("name", c.name);
    if (!c.label.empty()) x.set("label", c.label);
    x.set("weight", c.weight);
    x.set("min", c.min);
    x.set("max", c.max);
    crits.push_back(std::move(x));
  }
  method.set("criteria", std::move(crits));

  Value result;
  result.set("method", method);
  result.set("entrants", std::move(entrants));
  result.set("agreement", agreement);
  result.set("raters", std::move(rater_rows));
  result.set("counts", counts);
  result.set("rejected", std::move(rejected));
  result.set("excluded", std::move(excluded));
  return result;
}

}  // namespace evald::scores
