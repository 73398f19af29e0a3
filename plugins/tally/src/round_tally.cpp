#include "round_tally.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace evald::tally {

namespace {

std::string fmt(double x, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, round_points(x, decimals));
  return b;
}

Label label_of(const Value& v, const std::string& fallback) {
  Label l{v.get_string("label_en", fallback), v.get_string("label_ko", v.get_string("label_en", fallback))};
  return l;
}

Value label_value(const Label& l) {
  Value v;
  v.set("en", l.en);
  v.set("ko", l.ko);
  return v;
}

// The entrant a message is about: barrier stages emit per-entrant messages from one job, so
// the payload's "entrant" comes first.
std::string entrant_of(const Message& m) {
  std::string e = m.payload.get_string("entrant");
  return e.empty() ? m.envelope.entrant : e;
}

Value source_of(const Message& m) {
  Value s;
  s.set("stage", m.envelope.stage);
  s.set("job", m.envelope.job);  // with seq, names the message; which attempt made it is the run's business
  s.set("seq", m.seq);
  return s;
}

struct Row {
  Row(std::string i, std::string n) : id(std::move(i)), name(std::move(n)) {}
  std::string id, name;
  Value components = Map{};
  Value gates = Map{};
  double total = 0;
  bool incomplete = false, disqualified = false;
  std::vector<std::string> pending;   // why it cannot be decided yet
  std::vector<std::string> dq;        // why it is disqualified
  const OperatorDecision* op = nullptr;
  std::vector<double> tie;            // tie-break subtotals, in order
};

}  // namespace

double round_points(double x, int decimals) {
  double p = std::pow(10.0, decimals);
  // A nudge past the representation error, so 33.65 stored as 33.6499999... prints 33.7.
  return std::round(x * p + (x >= 0 ? 1e-7 : -1e-7)) / p;
}

Result<TallyConfig> tally_config_from(const Value& config) {
  TallyConfig c;
  std::set<std::string> names;
  auto* comps = config.find("components");
  if (!comps || !comps->is_array() || comps->as_array().empty()) return Status::error("components: at least one component is required");
  for (size_t i = 0; i < comps->as_array().size(); ++i) {
    const Value& v = comps->as_array()[i];
    std::string at = "components[" + std::to_string(i) + "]";
    if (!v.is_map()) return Status::error(at + ": expected a map {name, kind, scale, stage?, field?, label_en?, label_ko?}");
    for (auto& [k, _] : v.as_map())
      if (k != "name" && k != "kind" && k != "scale" && k != "stage" && k != "field" && k != "label_en" && k != "label_ko")
        return Status::error(at + ": unknown key \"" + k + "\"");
    Component cm;
    cm.name = v.get_string("name");
    cm.kind = v.get_string("kind");
    cm.stage = v.get_string("stage");
    cm.field = v.get_string("field", "points");
    if (cm.name.empty() || cm.kind.empty()) return Status::error(at + ": name and kind are required");
    auto* sc = v.find("scale");
    if (!sc || !sc->is_number() || !(sc->as_double() > 0)) return Status::error(at + ".scale: a number above 0 is required");
    cm.scale = sc->as_double();
    cm.label = label_of(v, cm.name);
    if (!names.insert(cm.name).second) return Status::error(at + ": name \"" + cm.name + "\" used twice");
    c.components.push_back(cm);
  }
  if (auto* gates = config.find("gates"); gates && gates->is_array())
    for (size_t i = 0; i < gates->as_array().size(); ++i) {
      const Value& v = gates->as_array()[i];
      std::string at = "gates[" + std::to_string(i) + "]";
      if (!v.is_map()) return Status::error(at + ": expected a map {name, kind, stage?, field?, inconclusive?, label_en?, label_ko?}");
      for (auto& [k, _] : v.as_map())
        if (k != "name" && k != "kind" && k != "stage" && k != "field" && k != "inconclusive" && k != "label_en" && k != "label_ko")
          return Status::error(at + ": unknown key \"" + k + "\"");
      Gate g;
      g.name = v.get_string("name");
      g.kind = v.get_string("kind");
      g.stage = v.get_string("stage");
      g.field = v.get_string("field", "gate");
      if (g.name.empty() || g.kind.empty()) return Status::error(at + ": name and kind are required");
      std::string inc = v.get_string("inconclusive", "hold");
      if (inc == "hold") g.inconclusive = Inconclusive::Hold;
      else if (inc == "fail") g.inconclusive = Inconclusive::Fail;
      else if (inc == "pass") g.inconclusive = Inconclusive::Pass;
      else return Status::error(at + ".inconclusive: \"" + inc + "\" is not hold, fail or pass");
      g.label = label_of(v, g.name);
      if (!names.insert(g.name).second) return Status::error(at + ": name \"" + g.name + "\" used twice");
      c.gates.push_back(g);
    }
  if (auto* tb = config.find("tie_breaks"); tb && tb->is_array())
    for (auto& t : tb->as_array()) {
      if (!t.is_string()) return Status::error("tie_breaks: component names expected");
      bool known = false;
      for (auto& cm : c.components) known |= cm.name == t.as_string();
      if (!known) return Status::error("tie_breaks: \"" + t.as_string() + "\" is not a component");
      c.tie_breaks.push_back(t.as_string());
    }
  c.top = int(config.get_int("advance_top", 0));
  c.min_total = config.get_double("advance_min_total", -1);
  c.decimals = int(config.get_int("decimals", 1));
  if (c.top <= 0 && c.min_total < 0) return Status::error("advancement: set advance_top, advance_min_total or both");
  return c;
}

Result<TallyConfig> apply_round_rules(TallyConfig cfg, const Value& rules) {
  if (rules.is_null()) return cfg;
  if (!rules.is_map()) return Status::error("round rules: expected a map {weights?, advance?}");
  if (auto* w = rules.find("weights"); w && w->is_map())
    for (auto& [name, pts] : w->as_map()) {
      auto it = std::find_if(cfg.components.begin(), cfg.components.end(), [&](const Component& c) { return c.name == name; });
      if (it == cfg.components.end()) return Status::error("round rules: weights." + name + ": the tally has no such component");
      if (!pts.is_number() || !(pts.as_double() > 0)) return Status::error("round rules: weights." + name + ": points above 0 expected");
      it->scale = pts.as_double();
    }
  if (auto* a = rules.find("advance"); a && a->is_map()) {
    // The round's cut replaces the pipeline's whole: what it leaves out does not apply.
    cfg.top = int(a->get_int("top", 0));
    cfg.min_total = a->get_double("min_total", -1);
    if (cfg.top <= 0 && cfg.min_total < 0) return Status::error("round rules: advance: set top, min_total or both");
  }
  cfg.rules_from = "competition definition";
  return cfg;
}

std::string rule_text(const TallyConfig& cfg) {
  std::string s = "Total = sum of the components' points (";
  double scale = 0;
  for (size_t i = 0; i < cfg.components.size(); ++i) {
    s += (i ? " + " : "") + cfg.components[i].name + " " + fmt(cfg.components[i].scale, cfg.decimals);
    scale += cfg.components[i].scale;
  }
  s += " = " + fmt(scale, cfg.decimals) + "), from unrounded values; points are shown rounded half away from zero to " +
       std::to_string(cfg.decimals) + " decimal(s). ";
  if (!cfg.gates.empty()) {
    s += "A failed gate (";
    for (size_t i = 0; i < cfg.gates.size(); ++i) s += (i ? ", " : "") + cfg.gates[i].name;
    s += ") disqualifies whatever the total. ";
  }
  s += "Ranked by total";
  for (auto& t : cfg.tie_breaks) s += ", then " + t;
  s += " (higher first). ";
  if (cfg.top > 0 && cfg.min_total >= 0)
    s += "The best " + std::to_string(cfg.top) + " with a total of at least " + fmt(cfg.min_total, cfg.decimals) + " advance.";
  else if (cfg.top > 0)
    s += "The best " + std::to_string(cfg.top) + " not disqualified advance.";
  else
    s += "Every entrant not disqualified with a total of at least " + fmt(cfg.min_total, cfg.decimals) + " advances.";
  if (cfg.rules_from != "pipeline") s += " Weights and cut as the competition's definition sets them for this round.";
  s += " A missing or incomplete result is never counted as zero: the round waits for a rerun or an operator's recorded decision.";
  return s;
}

Value tally_round(const TallyConfig& cfg, const Job& job, const std::vector<OperatorDecision>& decisions) {
  // The roster, with names.
  std::vector<Row> rows;
  if (auto* r = job.round.find("roster"); r && r->is_array())
    for (auto& e : r->as_array()) rows.emplace_back(e.get_string("id"), e.get_string("name"));
  else if (auto* ids = job.round.find("entrants"); ids && ids->is_array())
    for (auto& e : ids->as_array())
      if (e.is_string()) rows.emplace_back(e.as_string(), e.as_string());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < rows.size(); ++i) index[rows[i].id] = i;

  // The latest decision per entrant; decisions about unknown entrants are listed, not used.
  Array ignored, used;
  std::map<std::string, const OperatorDecision*> latest;
  static const std::set<std::string> kDecisions = {"advance", "eliminate", "disqualify", "count_missing_as_zero", "accept_inconclusive"};
  for (auto& d : decisions) {
    Value x;
    x.set("id", d.id);
    if (!index.count(d.entrant)) {
      x.set("reason", "entrant \"" + d.entrant + "\" is not in this round");
      ignored.push_back(std::move(x));
    } else if (!kDecisions.count(d.decision)) {
      x.set("reason", "decision \"" + d.decision + "\" is not advance, eliminate, disqualify, count_missing_as_zero or accept_inconclusive");
      ignored.push_back(std::move(x));
    } else if (d.reason.empty()) {
      x.set("reason", "a decision needs a reason");
      ignored.push_back(std::move(x));
    } else {
      latest[d.entrant] = &d;
    }
  }
  for (auto& [e, d] : latest) {
    rows[index[e]].op = d;
    Value x;
    x.set("id", d->id);
    x.set("entrant", d->entrant);
    x.set("decision", d->decision);
    x.set("reason", d->reason);
    x.set("by", d->by);
    x.set("received_at", d->received_at);
    used.push_back(std::move(x));
  }

  auto failed_stage = [&](const std::string& stage, const std::string& entrant) -> std::string {
    for (auto& f : job.failed_upstream)
      if ((stage.empty() || f.stage == stage) && (f.entrant.empty() || f.entrant == entrant))
        return "stage " + f.stage + (f.entrant.empty() ? "" : "/" + f.entrant) + " " + f.error;
    return {};
  };

  for (auto& row : rows) {
    const std::string op = row.op ? row.op->decision : "";
    for (auto& cm : cfg.components) {
      std::vector<const Message*> found;
      for (auto& m : job.inputs)
        if (m.kind == cm.kind && (cm.stage.empty() || m.envelope.stage == cm.stage) && entrant_of(m) == row.id) found.push_back(&m);
      Value c;
      c.set("scale", cm.scale);
      std::string problem;
      double exact = 0;
      if (found.empty()) {
        std::string f = failed_stage(cm.stage, row.id);
        problem = "no " + cm.kind + " result" + (f.empty() ? "" : " (" + f + ")");
      } else if (found.size() > 1) {
        problem = std::to_string(found.size()) + " " + cm.kind + " results for one entrant";
      } else {
        const Message& m = *found[0];
        c.set("source", source_of(m));
        const Value* pts = m.payload.find(cm.field);
        if (m.payload.find("complete") && !m.payload.get_bool("complete", true)) {
          problem = "incomplete " + cm.kind + ": " + m.payload.get_string("reason", "no reason given");
        } else if (!pts || !pts->is_number() || !std::isfinite(pts->as_double())) {
          problem = cm.kind + " result has no number in \"" + cm.field + "\"";
        } else {
          exact = pts->as_double();
          // A plugin that reports on another scale is brought onto the round's.
          double their = m.payload.get_double("scale", cm.scale);
          if (their > 0 && their != cm.scale) exact = exact * cm.scale / their;
          if (exact < -1e-9 || exact > cm.scale + 1e-9)
            problem = cm.kind + " points " + fmt(exact, 3) + " outside 0.." + fmt(cm.scale, cfg.decimals);
        }
      }
      if (problem.empty()) {
        c.set("complete", true);
        c.set("exact", exact);
        c.set("points", round_points(exact, cfg.decimals));
      } else {
        c.set("complete", false);
        c.set("reason", problem);
        c.set("points", Value());
        if (op == "count_missing_as_zero") {
          c.set("exact", 0.0);
          c.set("points", 0.0);
          c.set("counted_as_zero", true);
        } else {
          row.incomplete = true;
          row.pending.push_back(cm.name + ": " + problem);
        }
      }
      row.total += c.get_double("exact", 0.0);
      row.components.set(cm.name, c);
    }
    for (auto& g : cfg.gates) {
      std::vector<const Message*> found;
      for (auto& m : job.inputs)
        if (m.kind == g.kind && (g.stage.empty() || m.envelope.stage == g.stage) && entrant_of(m) == row.id) found.push_back(&m);
      Value gv;
      std::string result, reason;
      if (found.size() != 1) {
        std::string f = failed_stage(g.stage, row.id);
        result = "missing";
        reason = found.empty() ? "no " + g.kind + " result" + (f.empty() ? "" : " (" + f + ")")
                               : std::to_string(found.size()) + " " + g.kind + " results for one entrant";
      } else {
        const Message& m = *found[0];
        gv.set("source", source_of(m));
        const Value* f = m.payload.find(g.field);
        if (f && f->is_map()) {
          result = f->get_string("result");
          reason = f->get_string("reason");
        } else if (f && f->is_string()) {
          result = f->as_string();
        }
        if (result != "pass" && result != "fail" && result != "inconclusive") {
          reason = g.kind + " result has no gate verdict in \"" + g.field + "\"";
          result = "missing";
        }
      }
      gv.set("result", result);
      gv.set("reason", reason);
      row.gates.set(g.name, gv);
      bool fails = result == "fail" || (result == "inconclusive" && g.inconclusive == Inconclusive::Fail);
      bool holds = result == "missing" || (result == "inconclusive" && g.inconclusive == Inconclusive::Hold && op != "accept_inconclusive");
      if (fails) row.dq.push_back(g.name + ": " + (reason.empty() ? result : reason));
      else if (holds) {
        row.incomplete = true;
        row.pending.push_back(g.name + ": " + (result == "missing" ? reason : "inconclusive, " + reason));
      }
    }
    row.disqualified = !row.dq.empty() || op == "disqualify";
    for (auto& t : cfg.tie_breaks) row.tie.push_back(row.components.find(t)->get_double("exact", 0.0));
  }

  // Ranking among entrants that are complete and not disqualified.
  auto better = [&](const Row* a, const Row* b) {
    if (a->total != b->total) return a->total > b->total;
    return a->tie > b->tie;
  };
  auto same = [&](const Row* a, const Row* b) { return a->total == b->total && a->tie == b->tie; };
  std::vector<Row*> ranked, all_complete;
  for (auto& r : rows) {
    if (r.incomplete) continue;
    all_complete.push_back(&r);
    if (!r.disqualified) ranked.push_back(&r);
  }
  std::stable_sort(ranked.begin(), ranked.end(), better);
  std::stable_sort(all_complete.begin(), all_complete.end(), better);
  std::map<const Row*, int64_t> rank, would;
  std::map<const Row*, bool> tied;
  for (size_t i = 0; i < ranked.size(); ++i) {
    rank[ranked[i]] = (i > 0 && same(ranked[i], ranked[i - 1])) ? rank[ranked[i - 1]] : int64_t(i + 1);
    if ((i > 0 && same(ranked[i], ranked[i - 1])) || (i + 1 < ranked.size() && same(ranked[i], ranked[i + 1]))) tied[ranked[i]] = true;
  }
  for (size_t i = 0; i < all_complete.size(); ++i)
    would[all_complete[i]] = (i > 0 && same(all_complete[i], all_complete[i - 1])) ? would[all_complete[i - 1]] : int64_t(i + 1);

  Array undecided;
  // Advancement by the rule; a tie across the cut cannot be settled by the rule.
  std::map<const Row*, std::string> decision, why;
  for (auto* r : ranked) {
    bool by_min = cfg.min_total < 0 || r->total >= cfg.min_total - 1e-9;
    int64_t k = rank[r];
    bool by_top = cfg.top <= 0 || k <= cfg.top;
    if (by_top && by_min && cfg.top > 0) {
      // Entrants sharing this rank that would overflow the cut.
      int64_t sharing = 0;
      for (auto* q : ranked) sharing += rank[q] == k && (cfg.min_total < 0 || q->total >= cfg.min_total - 1e-9);
      if (k + sharing - 1 > cfg.top) {
        decision[r] = "pending";
        why[r] = "tied at rank " + std::to_string(k) + " across the cut of " + std::to_string(cfg.top) + " (tie-breaks exhausted)";
        continue;
      }
    }
    if (by_top && by_min) {
      decision[r] = "advance";
      why[r] = cfg.top > 0 ? "rank " + std::to_string(k) + " of " + std::to_string(ranked.size()) + " within the best " + std::to_string(cfg.top)
                           : "total " + fmt(r->total, cfg.decimals) + " at least " + fmt(cfg.min_total, cfg.decimals);
    } else {
      decision[r] = "eliminated";
      why[r] = !by_min ? "total " + fmt(r->total, cfg.decimals) + " below the minimum " + fmt(cfg.min_total, cfg.decimals)
                       : "rank " + std::to_string(k) + ", outside the best " + std::to_string(cfg.top);
    }
  }

  Array entrants;
  std::vector<Row*> order = ranked;
  for (auto& r : rows)
    if (!r.incomplete && r.disqualified) order.push_back(&r);
  for (auto& r : rows)
    if (r.incomplete) order.push_back(&r);
  for (auto* r : order) {
    Value e;
    e.set("entrant", r->id);
    e.set("name", r->name);
    e.set("components", r->components);
    e.set("gates", r->gates);
    e.set("total_exact", r->incomplete ? Value() : Value(r->total));
    e.set("total", r->incomplete ? Value() : Value(round_points(r->total, cfg.decimals)));
    e.set("rank", rank.count(r) ? Value(rank[r]) : Value());
    e.set("tied", tied[r]);
    std::string dec, reason;
    if (r->disqualified && !r->incomplete) {
      e.set("would_be_rank", would[r]);
      dec = "disqualified";
      std::string all;
      for (auto& d : r->dq) all += (all.empty() ? "" : "; ") + d;
      reason = all.empty() ? "by operator decision" : all;
    } else if (r->incomplete) {
      dec = "pending";
      for (auto& p : r->pending) reason += (reason.empty() ? "" : "; ") + p;
      e.set("would_be_rank", Value());
    } else {
      dec = decision[r];
      reason = why[r];
    }
    e.set("status", r->incomplete ? "incomplete" : r->disqualified ? "disqualified" : "complete");
    // An operator's decision overrides the rule for that entrant, and says so.
    if (r->op && (r->op->decision == "advance" || r->op->decision == "eliminate" || r->op->decision == "disqualify")) {
      std::string d = r->op->decision == "advance" ? "advance" : r->op->decision == "eliminate" ? "eliminated" : "disqualified";
      if (d != dec) reason = "operator decision " + r->op->id + " (" + r->op->reason + "); by the rule: " + dec + (reason.empty() ? "" : ", " + reason);
      dec = d;
    }
    if (r->op) {
      Value o;
      o.set("id", r->op->id);
      o.set("decision", r->op->decision);
      o.set("reason", r->op->reason);
      o.set("by", r->op->by);
      o.set("received_at", r->op->received_at);
      e.set("operator_decision", o);
    }
    if (dec == "pending") undecided.push_back(r->id + ": " + reason);
    e.set("decision", dec);
    e.set("decision_reason", reason);
    entrants.push_back(std::move(e));
  }

  Value out;
  out.set("schema", "evald.tally/1");
  out.set("competition", job.round.get_string("competition"));
  out.set("round", job.envelope.round);
  out.set("run", job.envelope.run);
  out.set("decided", undecided.empty());
  out.set("undecided", std::move(undecided));
  Value rule;
  Value adv = Map{};
  if (cfg.top > 0) adv.set("top", int64_t(cfg.top));
  if (cfg.min_total >= 0) adv.set("min_total", cfg.min_total);
  rule.set("advance", adv);
  Array tb;
  for (auto& t : cfg.tie_breaks) tb.push_back(t);
  rule.set("tie_breaks", std::move(tb));
  rule.set("decimals", int64_t(cfg.decimals));
  rule.set("text", rule_text(cfg));
  rule.set("from", cfg.rules_from);
  out.set("rule", rule);
  Array comps, gates;
  double total_scale = 0;
  for (auto& c : cfg.components) {
    Value x;
    x.set("name", c.name);
    x.set("label", label_value(c.label));
    x.set("kind", c.kind);
    x.set("stage", c.stage);
    x.set("field", c.field);
    x.set("scale", c.scale);
    comps.push_back(std::move(x));
    total_scale += c.scale;
  }
  for (auto& g : cfg.gates) {
    Value x;
    x.set("name", g.name);
    x.set("label", label_value(g.label));
    x.set("kind", g.kind);
    x.set("stage", g.stage);
    x.set("inconclusive", g.inconclusive == Inconclusive::Hold ? "hold" : g.inconclusive == Inconclusive::Fail ? "fail" : "pass");
    gates.push_back(std::move(x));
  }
  out.set("components", std::move(comps));
  out.set("gates", std::move(gates));
  out.set("total_scale", total_scale);
  out.set("entrants", std::move(entrants));
  out.set("operator_decisions", std::move(used));
  out.set("ignored_decisions", std::move(ignored));
  return out;
}

}  // namespace evald::tally
