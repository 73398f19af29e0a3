// The competition's life across rounds: rosters (registration, advancers, additional calls),
// rounds' decisions, competition definitions and the whole competition's report.
#include "control.hpp"
#include "util.hpp"

#include <evald/time.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

namespace evald::daemon {

namespace {

// A round's rules, from its competition definition or round.create: {weights: {component:
// points}, advance: {top?, min_total?}}. The tally stage applies them over its own config,
// so one pipeline serves rounds with different cuts. Component names are checked against the
// pipeline's tally stage where it has one; errors name the field.
Status check_rules(const Value& rules, const PipelineSpec& spec, const std::string& at) {
  if (!rules.is_map()) return Status::error(at + ": expected a map {weights?, advance?}");
  std::set<std::string> components;
  for (auto& st : spec.stages)
    if (st.plugin == "tally")
      if (auto* cs = st.config.find("components"); cs && cs->is_array())
        for (auto& c : cs->as_array()) components.insert(c.get_string("name"));
  for (auto& [k, v] : rules.as_map()) {
    if (k == "weights") {
      if (!v.is_map() || v.as_map().empty()) return Status::error(at + ".weights: expected a map {component: points}");
      for (auto& [name, w] : v.as_map()) {
        if (!w.is_number() || !(w.as_double() > 0)) return Status::error(at + ".weights." + name + ": a number of points above 0 is required");
        if (!components.empty() && !components.count(name)) {
          std::string known;
          for (auto& c : components) known += (known.empty() ? "" : ", ") + c;
          return Status::error(at + ".weights." + name + ": pipeline " + spec.name + "'s tally has no component \"" + name + "\" (" + known + ")");
        }
      }
    } else if (k == "advance") {
      if (!v.is_map() || v.as_map().empty()) return Status::error(at + ".advance: expected a map {top?, min_total?}");
      for (auto& [ak, av] : v.as_map()) {
        if (ak == "top") {
          if (!av.is_int() || av.as_int() < 0) return Status::error(at + ".advance.top: a whole number of at least 0 is required");
        } else if (ak == "min_total") {
          if (!av.is_number() || av.as_double() < 0) return Status::error(at + ".advance.min_total: a number of at least 0 is required");
        } else {
          return Status::error(at + ".advance: unknown key \"" + ak + "\" (top, min_total)");
        }
      }
    } else {
      return Status::error(at + ": unknown key \"" + k + "\" (weights, advance)");
    }
  }
  return {};
}

// The rules part of a round's definition entry (null when it sets none).
Value round_rules(const Value& rd) {
  Value rules;
  for (const char* k : {"weights", "advance"})
    if (auto* v = rd.find(k)) rules.set(k, *v);
  return rules;
}

bool lists(const Value* list, const std::string& id) {
  if (list && list->is_array())
    for (auto& e : list->as_array())
      if (e.is_string() && e.as_string() == id) return true;
  return false;
}

}  // namespace

Result<Value> ControlApi::round_create(const Value& req, const std::string& actor) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto id = need_id(req, "id");
  if (!id) return id.status();
  auto pname = need_string(req, "pipeline");
  if (!pname) return pname.status();
  auto spec = pipeline(*pname);
  if (!spec) return Status::error("pipeline \"" + *pname + "\" is not loaded (evalctl pipeline load FILE)");
  const Value* rules = req.find("rules");
  if (rules && !rules->is_null())
    if (auto st = check_rules(*rules, *spec, "rules"); !st) return st;
  std::lock_guard lock(mu_);
  auto c = store_.get(Family::Competitions, *comp);
  if (!c) return c.status();
  if (!*c) return Status::error("no competition \"" + *comp + "\"");
  auto existing = store_.get(Family::Rounds, *comp + "/" + *id);
  if (!existing) return existing.status();
  if (*existing) return Status::error("round \"" + *id + "\" already exists in competition \"" + *comp + "\"");
  // A later round's roster starts with those the earlier round's decision advanced; an
  // additional call (call.open, then entrant.add --round) adds to it.
  Array roster;
  std::string from = req.get_string("from_round");
  if (!from.empty()) {
    if (auto st = check_id("from_round", from); !st) return st;
    auto prev = store_.get_value(Family::Rounds, *comp + "/" + from);
    if (!prev) return prev.status();
    if (!*prev) return Status::error("no round \"" + from + "\" in competition \"" + *comp + "\"");
    auto* d = (*prev)->find("decision");
    if (!d || !d->is_map()) return Status::error("round " + from + " is not decided yet (evalctl round decide " + *comp + " " + from + ")");
    if (auto* adv = d->find("advance"); adv && adv->is_array()) roster = adv->as_array();
  }
  Value rec;
  rec.set("id", *id);
  rec.set("competition", *comp);
  rec.set("pipeline", *pname);
  rec.set("entrants", roster);
  if (!from.empty()) rec.set("from_round", from);
  if (rules && !rules->is_null()) rec.set("rules", *rules);
  rec.set("additional_call", req.get_bool("additional_call", true));
  rec.set("created", now_iso8601());
  // Each entrant is evaluated on the submission it had when it joined the round (or sent to
  // the round later), so a resubmission for a later round never changes an earlier one.
  Value joined = Map{}, submissions = Map{};
  for (auto& e : roster) {
    Value j;
    j.set("at", rec.get_string("created"));
    j.set("via", "advanced from " + from);
    joined.set(e.as_string(), j);
    auto erec = store_.get_value(Family::Entrants, *comp + "/" + e.as_string());
    if (!erec) return erec.status();
    if (*erec)
      if (auto* sub = (*erec)->find("submission")) submissions.set(e.as_string(), *sub);
  }
  rec.set("joined", joined);
  rec.set("submissions", submissions);
  auto b = store_.batch();
  b.put(Family::Rounds, *comp + "/" + *id, rec);
  if (auto st = commit(b, actor, "round.create", rec); !st) return st;
  return rec;
}

// Registers an entrant, or takes a new submission from one. With a round, the entrant joins
// that round's roster (a first round: registration; a later round: only while an additional
// call is open) or, already on it, resubmits for it.
Result<Value> ControlApi::entrant_add(const Value& req, const std::string& actor) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto id = need_id(req, "id");
  if (!id) return id.status();
  auto* sub = req.find("submission");
  if (sub && !sub->is_map()) return Status::error("request field \"submission\" must be a map");
  std::string round = req.get_string("round");
  if (!round.empty())
    if (auto st = check_id("round", round); !st) return st;
  std::lock_guard lock(mu_);
  auto c = store_.get(Family::Competitions, *comp);
  if (!c) return c.status();
  if (!*c) return Status::error("no competition \"" + *comp + "\"");
  auto b = store_.batch();
  auto existing = store_.get_value(Family::Entrants, *comp + "/" + *id);
  if (!existing) return existing.status();
  const std::string now = now_iso8601();
  Value rec;
  if (*existing) {
    rec = **existing;
    if (sub) rec.set("submission", *sub);
    if (req.find("name")) rec.set("name", req.get_string("name"));
  } else {
    rec.set("id", *id);
    rec.set("name", req.get_string("name", *id));
    rec.set("submission", sub ? *sub : Value(Map{}));
    rec.set("created", now);
  }
  // Every submission is kept, with when, by whom, for which round and its digest.
  if (sub || !*existing) {
    Value s;
    s.set("at", now);
    s.set("by", actor);
    s.set("round", round);
    s.set("fields", *rec.find("submission"));
    s.set("sha256", sha256_hex(to_json(*rec.find("submission"))));
    if (!rec.find("submissions") || !rec.find("submissions")->is_array()) rec.set("submissions", Value(Array{}));
    rec.as_map()["submissions"].push_back(std::move(s));
  }
  b.put(Family::Entrants, *comp + "/" + *id, rec);
  Value d = rec;
  d.as_map().erase("submissions");
  d.set("competition", *comp);
  if (!round.empty()) {
    auto rrec = store_.get_value(Family::Rounds, *comp + "/" + round);
    if (!rrec) return rrec.status();
    if (!*rrec) return Status::error("no round \"" + round + "\" in competition \"" + *comp + "\"");
    Value r = **rrec;
    if (auto* dec = r.find("decision"); dec && dec->is_map())
      return Status::error("round " + round + " is decided (from " + dec->get_string("run") + "); its roster and submissions are final");
    const std::string from = r.get_string("from_round");
    const bool present = lists(r.find("entrants"), *id);
    std::string via = "registered";
    if (!present && !from.empty()) {
      const Value* call = r.find("call");
      if (!call || call->get_string("state") != "open")
        return Status::error("round " + round + "'s roster is " + from + "'s advancers; others join it through an additional call (evalctl call open " +
                             *comp + " " + round + ")");
      if (auto closes = call->get_string("closes"); !closes.empty())
        if (auto t = parse_utc_time(closes); t && *t <= now_ms())
          return Status::error("the additional call for round " + round + " closed at " + closes);
      via = "additional call";
      // An entrant the earlier round eliminated may re-apply; the roster says so.
      auto prev = store_.get_value(Family::Rounds, *comp + "/" + from);
      if (prev && *prev)
        if (auto* pd = (*prev)->find("decision"); pd && pd->is_map()) {
          if (lists(pd->find("eliminated"), *id)) via += " (re-applied after elimination in " + from + ")";
          if (lists(pd->find("disqualified"), *id)) via += " (re-applied after disqualification in " + from + ")";
        }
    }
    if (!present) {
      r.as_map()["entrants"].push_back(*id);
      Value j;
      j.set("at", now);
      j.set("via", via);
      j.set("by", actor);
      if (!r.find("joined") || !r.find("joined")->is_map()) r.set("joined", Value(Map{}));
      r.as_map()["joined"].set(*id, j);
    }
    if (!r.find("submissions") || !r.find("submissions")->is_map()) r.set("submissions", Value(Map{}));
    r.as_map()["submissions"].set(*id, *rec.find("submission"));
    b.put(Family::Rounds, *comp + "/" + round, r);
    d.set("round", round);
    d.set("via", present ? "resubmitted" : via);
  }
  if (auto st = commit(b, actor, "entrant.add", d); !st) return st;
  rec.as_map().erase("submissions");
  if (!round.empty()) {
    rec.set("round", round);
    rec.set("via", d.get_string("via"));
  }
  return rec;
}

// An additional call: while it is open, entrants join a later round beside its advancers.
Result<Value> ControlApi::call_open_close(const std::string& op, const Value& req, const std::string& actor) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto round = need_id(req, "round");
  if (!round) return round.status();
  std::string closes = req.get_string("closes");
  if (!closes.empty()) {
    auto t = parse_utc_time(closes);
    if (!t) return Status::error("closes: \"" + closes + "\" is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)");
    if (*t <= now_ms()) return Status::error("closes: " + closes + " is already past");
  }
  std::lock_guard lock(mu_);
  auto rrec = store_.get_value(Family::Rounds, *comp + "/" + *round);
  if (!rrec) return rrec.status();
  if (!*rrec) return Status::error("no round \"" + *round + "\" in competition \"" + *comp + "\"");
  Value r = **rrec;
  Value call = r.find("call") ? *r.find("call") : Value();
  if (!call.is_map()) call = Value(Map{});
  if (op == "call.open") {
    if (r.get_string("from_round").empty())
      return Status::error("round " + *round + " is a first round: entrants register for it directly (evalctl entrant add --round " + *round + ")");
    if (!r.get_bool("additional_call", true)) return Status::error("the competition's definition allows no additional call for round " + *round);
    if (auto* dec = r.find("decision"); dec && dec->is_map()) return Status::error("round " + *round + " is decided; its roster is final");
    if (call.get_string("state") == "open") return Status::error("an additional call for round " + *round + " is already open");
    call.set("state", "open");
    call.set("opened", now_iso8601());
    call.set("opened_by", actor);
    call.set("closes", closes);
  } else {
    if (call.get_string("state") != "open") return Status::error("no additional call for round " + *round + " is open");
    call.set("state", "closed");
    call.set("closed", now_iso8601());
    call.set("closed_by", actor);
  }
  r.set("call", call);
  auto b = store_.batch();
  b.put(Family::Rounds, *comp + "/" + *round, r);
  Value d = call;
  d.set("competition", *comp);
  d.set("round", *round);
  if (auto st = commit(b, actor, op, d); !st) return st;
  return call;
}

// Records a round's decision from the tally of its latest finished run: who advances, who was
// eliminated or disqualified, traceable to that run and its tally's artifact hash. A round the
// tally left undecided is refused with the reasons; a new decision replaces an earlier one
// only with a reason, and both are in the audit log.
Result<Value> ControlApi::round_decide(const Value& req, const std::string& actor) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto round = need_id(req, "round");
  if (!round) return round.status();
  std::string want_run = req.get_string("run");
  std::string latest;
  auto st = store_.scan(Family::Runs, "", [&](std::string_view key, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (v && v->get_string("competition") == *comp && v->get_string("round") == *round && v->get_string("state") != "running" &&
        (want_run.empty() || key == want_run))
      latest = std::string(key);
    return true;
  });
  if (!st) return st;
  if (latest.empty())
    return Status::error(want_run.empty() ? "round " + *round + " has no finished run to decide from" : "no finished run " + want_run + " of round " + *round);
  auto msgs = engine_.run_outputs(latest);
  if (!msgs) return msgs.status();
  const Message* tally = nullptr;
  for (auto& m : *msgs)
    if (m.payload.get_string("schema") == "evald.tally/1") {
      if (tally) return Status::error(latest + " holds more than one tally result");
      tally = &m;
    }
  if (!tally) return Status::error(latest + " has no tally result (its pipeline needs a tally stage, or the tally job failed)");
  const Value& t = tally->payload;
  if (!t.get_bool("decided")) {
    std::string why;
    if (auto* u = t.find("undecided"); u && u->is_array())
      for (auto& x : u->as_array()) why += "\n  " + x.as_string();
    return Status::error("the tally of " + latest + " leaves round " + *round + " undecided (rerun the failed jobs, or record a decision with "
                         "evalctl decision record, then run the round again):" + why);
  }
  Value decision;
  decision.set("run", latest);
  decision.set("tally_job", tally->envelope.job);
  decision.set("tally_sha256", t.get_string("artifact_sha256"));
  decision.set("decided_at", now_iso8601());
  decision.set("decided_by", actor);
  Array advance, eliminated, disqualified;
  for (auto& e : t.find("entrants")->as_array()) {
    std::string d = e.get_string("decision");
    (d == "advance" ? advance : d == "disqualified" ? disqualified : eliminated).push_back(e.get_string("entrant"));
  }
  decision.set("advance", std::move(advance));
  decision.set("eliminated", std::move(eliminated));
  decision.set("disqualified", std::move(disqualified));
  std::unique_lock lock(mu_);
  auto rrec = store_.get_value(Family::Rounds, *comp + "/" + *round);
  if (!rrec) return rrec.status();
  if (!*rrec) return Status::error("no round \"" + *round + "\" in competition \"" + *comp + "\"");
  Value r = **rrec;
  const Value* prev = r.find("decision");
  if (prev && prev->is_map() && prev->get_string("run") == latest) {
    decision = *prev;  // already decided from this run: nothing to record, but see below
  } else {
    if (prev && prev->is_map()) {
      std::string reason = req.get_string("reason");
      if (reason.empty())
        return Status::error("round " + *round + " was decided from " + prev->get_string("run") + "; deciding it again from " + latest +
                             " needs --reason");
      decision.set("replaces", *prev);
      decision.set("reason", reason);
    }
    r.set("decision", decision);
    auto b = store_.batch();
    b.put(Family::Rounds, *comp + "/" + *round, r);
    Value d = decision;
    d.set("competition", *comp);
    d.set("round", *round);
    if (auto st2 = commit(b, actor, "round.decide", d); !st2) return st2;
  }
  lock.unlock();  // creating the next round takes the lock again
  // A defined competition goes on: the rounds that start from this one are created now, with
  // its advancers as their roster. Also when the round was already decided: a daemon killed
  // between the decision and the next round's creation finishes the step when asked again.
  auto crec = store_.get_value(Family::Competitions, *comp);
  if (crec && *crec)
    if (auto* def = (*crec)->find("definition"); def && def->find("rounds"))
      for (auto& rd : def->find("rounds")->as_array()) {
        if (rd.get_string("from") != *round) continue;
        auto made = ensure_defined_round(*comp, rd, actor);
        if (!made) return Status::error("round " + *round + " decided, but its next round " + rd.get_string("id") + " could not be created: " + made.error());
        decision.set("next_round", rd.get_string("id"));
      }
  return decision;
}

// A competition from its definition (YAML): {id, name?, rounds: [{id, pipeline, from?, schedule?:
// {at | cron, catch_up?}, weights?: {component: points}, advance?: {top?, min_total?},
// additional_call?: bool}]} in order. The competition and its first rounds (those without
// `from`) are created now; each later round when the round it starts from is decided.
Result<Value> ControlApi::competition_define(const Value& req, const std::string& actor) {
  auto text = need_string(req, "yaml");
  if (!text) return text.status();
  std::string source = req.get_string("source", "<request>");
  auto def = yaml_to_value(*text, source);
  if (!def) return def.status();
  if (!def->is_map()) return Status::error(source + ": a competition definition is a map {id, name, rounds}");
  for (auto& [k, _] : def->as_map())
    if (k != "id" && k != "name" && k != "rounds") return Status::error(source + ": unknown key \"" + k + "\" (id, name, rounds)");
  std::string id = def->get_string("id");
  if (auto st = check_id(source + ": id", id); !st) return st;
  auto* rounds = def->find("rounds");
  if (!rounds || !rounds->is_array() || rounds->as_array().empty()) return Status::error(source + ": rounds: at least one round is required");
  std::set<std::string> seen;
  for (size_t i = 0; i < rounds->as_array().size(); ++i) {
    const Value& r = rounds->as_array()[i];
    std::string at = source + ": rounds[" + std::to_string(i) + "]";
    if (!r.is_map()) return Status::error(at + ": expected a map {id, pipeline, from?, schedule?}");
    for (auto& [k, _] : r.as_map())
      if (k != "id" && k != "pipeline" && k != "from" && k != "schedule" && k != "weights" && k != "advance" && k != "additional_call")
        return Status::error(at + ": unknown key \"" + k + "\" (id, pipeline, from, schedule, weights, advance, additional_call)");
    if (auto st = check_id(at + ".id", r.get_string("id")); !st) return st;
    auto spec = pipeline(r.get_string("pipeline"));
    if (!spec) return Status::error(at + ".pipeline: \"" + r.get_string("pipeline") + "\" is not loaded (evalctl pipeline load FILE)");
    if (auto rules = round_rules(r); !rules.is_null())
      if (auto st = check_rules(rules, *spec, at); !st) return st;
    if (auto* ac = r.find("additional_call"); ac && !ac->is_bool()) return Status::error(at + ".additional_call: true or false");
    std::string from = r.get_string("from");
    if (i == 0 && !from.empty()) return Status::error(at + ".from: the first round has no earlier round to start from");
    if (!from.empty() && !seen.count(from)) return Status::error(at + ".from: \"" + from + "\" is not an earlier round");
    if (auto* sch = r.find("schedule"); sch && !sch->is_map()) return Status::error(at + ".schedule: expected {at | cron, catch_up?}");
    if (!seen.insert(r.get_string("id")).second) return Status::error(at + ".id: \"" + r.get_string("id") + "\" used twice");
  }
  {
    std::lock_guard lock(mu_);
    auto existing = store_.get_value(Family::Competitions, id);
    if (!existing) return existing.status();
    if (*existing) {
      // The same definition again finishes a define a restart interrupted (its first rounds).
      if ((*existing)->get_string("definition_sha256") != sha256_hex(*text))
        return Status::error("competition \"" + id + "\" already exists" +
                             ((*existing)->find("definition") ? " (defined from " + (*existing)->get_string("definition_source") + ", another text)" : ""));
    } else {
      Value rec;
      rec.set("id", id);
      rec.set("name", def->get_string("name", id));
      rec.set("created", now_iso8601());
      rec.set("actor", actor);
      rec.set("definition", *def);
      rec.set("definition_source", source);
      rec.set("definition_sha256", sha256_hex(*text));
      auto b = store_.batch();
      b.put(Family::Competitions, id, rec);
      if (auto st = commit(b, actor, "competition.define", rec); !st) return st;
    }
  }
  Array created;
  for (auto& r : rounds->as_array())
    if (r.get_string("from").empty()) {
      auto made = ensure_defined_round(id, r, actor);
      if (!made) return made.status();
      created.push_back(r.get_string("id"));
    }
  Value out;
  out.set("id", id);
  out.set("rounds", Value(int64_t(rounds->as_array().size())));
  out.set("created_rounds", std::move(created));
  return out;
}

Result<Value> ControlApi::ensure_defined_round(const std::string& comp, const Value& rd, const std::string& actor) {
  const std::string id = rd.get_string("id");
  auto existing = store_.get_value(Family::Rounds, comp + "/" + id);
  if (!existing) return existing.status();
  if (*existing) {
    // Made before a restart; its schedule may not have been.
    bool scheduled = false;
    auto st = store_.scan(Family::Schedules, "", [&](std::string_view, std::string_view raw) {
      auto v = msgpack::decode(raw);
      scheduled |= v && v->get_string("competition") == comp && v->get_string("round") == id;
      return !scheduled;
    });
    if (!st) return st;
    if (auto* sch = rd.find("schedule"); sch && sch->is_map() && !scheduled) {
      Value sreq = *sch;
      sreq.set("competition", comp);
      sreq.set("round", id);
      if (auto s = schedule_add(sreq, actor); !s) return Status::error("round " + id + " exists, but its schedule was refused: " + s.error());
    }
    return **existing;
  }
  Value req;
  req.set("op", "round.create");
  req.set("competition", comp);
  req.set("id", rd.get_string("id"));
  req.set("pipeline", rd.get_string("pipeline"));
  if (!rd.get_string("from").empty()) req.set("from_round", rd.get_string("from"));
  req.set("rules", round_rules(rd));
  req.set("additional_call", rd.get_bool("additional_call", true));
  auto made = dispatch("round.create", req, actor);
  if (!made) return made;
  if (auto* sch = rd.find("schedule"); sch && sch->is_map()) {
    Value sreq = *sch;
    sreq.set("competition", comp);
    sreq.set("round", rd.get_string("id"));
    auto s = schedule_add(sreq, actor);
    if (!s) return Status::error("round " + rd.get_string("id") + " created, but its schedule was refused: " + s.error());
  }
  return made;
}

// The whole competition as the store has it: its rounds in the order they were created, who
// entered each and how (registered, advanced, additional call), each round's runs, decision
// and signed report, and the finalists once the last round is decided.
Result<Value> ControlApi::competition_report(const Value& req) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto crec = store_.get_value(Family::Competitions, *comp);
  if (!crec) return crec.status();
  if (!*crec) return Status::error("no competition \"" + *comp + "\"");
  std::map<std::string, Value> entrants;
  auto st = store_.scan(Family::Entrants, *comp + "/", [&](std::string_view, std::string_view raw) {
    if (auto v = msgpack::decode(raw)) entrants[v->get_string("id")] = *v;
    return true;
  });
  if (!st) return st;
  std::vector<Value> rounds;
  st = store_.scan(Family::Rounds, *comp + "/", [&](std::string_view, std::string_view raw) {
    if (auto v = msgpack::decode(raw)) rounds.push_back(std::move(*v));
    return true;
  });
  if (!st) return st;
  std::stable_sort(rounds.begin(), rounds.end(), [](const Value& a, const Value& b) { return a.get_string("created") < b.get_string("created"); });
  std::map<std::string, Array> runs_of;
  st = store_.scan(Family::Runs, "", [&](std::string_view key, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (!v || v->get_string("competition") != *comp) return true;
    Value r;
    r.set("id", std::string(key));
    r.set("state", v->get_string("state"));
    r.set("created", v->get_string("created"));
    r.set("finished", v->get_string("finished"));
    runs_of[v->get_string("round")].push_back(std::move(r));
    return true;
  });
  if (!st) return st;
  Array out_rounds;
  Value finalists;
  for (auto& r : rounds) {
    Value x;
    std::string id = r.get_string("id");
    x.set("id", id);
    x.set("pipeline", r.get_string("pipeline"));
    x.set("created", r.get_string("created"));
    x.set("from_round", r.get_string("from_round"));
    Array roster;
    if (auto* es = r.find("entrants"); es && es->is_array())
      for (auto& e : es->as_array()) {
        Value who;
        who.set("id", e.as_string());
        who.set("name", entrants.count(e.as_string()) ? entrants[e.as_string()].get_string("name") : std::string());
        if (auto* j = r.find("joined"); j && j->find(e.as_string())) {
          who.set("joined", j->find(e.as_string())->get_string("at"));
          who.set("via", j->find(e.as_string())->get_string("via"));
        }
        roster.push_back(std::move(who));
      }
    x.set("entrants", std::move(roster));
    x.set("runs", runs_of[id]);
    const Value* d = r.find("decision");
    x.set("decision", d ? *d : Value());
    x.set("rules", r.find("rules") ? *r.find("rules") : Value());
    x.set("call", r.find("call") ? *r.find("call") : Value());
    if (d && d->is_map()) {
      auto msgs = engine_.run_outputs(d->get_string("run"));
      if (msgs)
        for (auto& m : *msgs) {
          if (m.kind == "report" && m.payload.find("dir")) {
            Value rep;
            const std::string dir = m.payload.get_string("dir");
            rep.set("dir", dir);
            rep.set("public_key", m.payload.get_string("public_key"));
            if (auto* f = m.payload.find("formats"); f && f->find("html")) rep.set("html", f->find("html")->get_string("path"));
            // The manifest as it is now (it holds the hashes of the report's other files); a
            // reader checks the whole report with evalctl report verify.
            auto h = sha256_file(std::filesystem::path(dir) / "manifest.json");
            rep.set("manifest_sha256", h ? Value(*h) : Value());
            x.set("report", rep);
          }
          // The scoreboard the decision was taken from, as the tally gave it.
          if (m.payload.get_string("schema") == "evald.tally/1") {
            Value board;
            board.set("total_scale", m.payload.get_double("total_scale"));
            if (auto* rule = m.payload.find("rule")) board.set("rule", rule->get_string("text"));
            Array rows;
            if (auto* es = m.payload.find("entrants"); es && es->is_array())
              for (auto& e : es->as_array()) {
                Value row;
                for (const char* k : {"entrant", "name", "rank", "total", "decision", "decision_reason"}) row.set(k, e.find(k) ? *e.find(k) : Value());
                Value comps = Map{};
                if (auto* cs = e.find("components"); cs && cs->is_map())
                  for (auto& [cn, cv] : cs->as_map()) comps.set(cn, cv.find("points") ? *cv.find("points") : Value());
                row.set("components", comps);
                rows.push_back(std::move(row));
              }
            board.set("entrants", std::move(rows));
            Array comps;
            if (auto* cs = m.payload.find("components"); cs && cs->is_array())
              for (auto& c : cs->as_array()) {
                Value ci;
                ci.set("name", c.get_string("name"));
                ci.set("scale", c.get_double("scale"));
                ci.set("label", c.find("label") ? *c.find("label") : Value());
                comps.push_back(std::move(ci));
              }
            board.set("components", std::move(comps));
            x.set("scoreboard", board);
          }
        }
      finalists = *d->find("advance");
    } else {
      finalists = Value();
    }
    out_rounds.push_back(std::move(x));
  }
  Value out;
  out.set("competition", **crec);
  out.set("rounds", std::move(out_rounds));
  // The finalists are the last round's advancers, once it is decided.
  out.set("finalists", finalists);
  Array es;
  for (auto& [id, e] : entrants) {
    Value x;
    x.set("id", id);
    x.set("name", e.get_string("name"));
    x.set("registered", e.get_string("created"));
    Array subs;
    if (auto* h = e.find("submissions"); h && h->is_array())
      for (auto& sub : h->as_array()) {
        Value y;
        for (const char* k : {"at", "round", "sha256"}) y.set(k, sub.get_string(k));
        subs.push_back(std::move(y));
      }
    x.set("submissions", std::move(subs));
    es.push_back(std::move(x));
  }
  out.set("entrants", std::move(es));
  return out;
}

}  // namespace evald::daemon
