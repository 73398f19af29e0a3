#include "control.hpp"

#include "schedule.hpp"
#include "util.hpp"

#include <evald/time.hpp>

#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace evald::daemon {

namespace {

const msgpack::Limits kRequestLimits{16u << 20, 32, 16u << 20, 1u << 16};

Value ok(Value result) {
  Value r;
  r.set("ok", true);
  r.set("result", std::move(result));
  return r;
}

Value err(const std::string& msg) {
  Value r;
  r.set("ok", false);
  r.set("error", msg);
  return r;
}

const char* const kOps[] = {"ping", "plugins.list", "plugin.help", "pipeline.validate", "pipeline.load",
                            "pipeline.list", "pipeline.reload", "competition.create", "competition.list",
                            "round.create", "round.show", "round.list", "entrant.add", "entrant.list",
                            "run.start", "run.status", "run.list", "run.outputs", "audit.verify",
                            "audit.list", "intake.open", "intake.close", "intake.submit", "intake.status",
                            "decision.record", "round.decide", "competition.report", "schedule.add",
                            "schedule.list", "schedule.remove", "competition.define", "call.open",
                            "call.close", "shutdown"};

}  // namespace

ControlApi::ControlApi(const DaemonConfig& config, Store& store, AuditLog& audit, const PluginRegistry& plugins,
                       Engine& engine, std::function<void()> request_shutdown)
    : config_(config),
      store_(store),
      audit_(audit),
      plugins_(plugins),
      engine_(engine),
      request_shutdown_(std::move(request_shutdown)),
      started_ms_(now_ms()),
      intake_(store, audit) {}

Status ControlApi::commit(Store::Batch& b, const std::string& actor, const std::string& action, const Value& detail) {
  return audit_.commit(b, actor, action, detail);
}

std::shared_ptr<const PipelineSpec> ControlApi::pipeline(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = pipelines_.find(name);
  return it == pipelines_.end() ? nullptr : it->second;
}

Status ControlApi::load_pipelines() {
  std::string problems;
  auto note = [&](const std::string& e) {
    spdlog::error("{}", e);
    problems += (problems.empty() ? "" : "\n") + e;
  };
  (void)store_.scan(Family::Pipelines, "", [&](std::string_view key, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (!v) return true;
    auto spec = parse_pipeline(v->get_string("yaml"), v->get_string("source"), plugins_);
    if (!spec) {
      note("stored pipeline " + std::string(key) + " no longer validates: " + spec.error());
      return true;
    }
    std::lock_guard lock(mu_);
    // The name is read before the spec is moved from (the right side of = goes first).
    std::string name = spec->name;
    pipelines_[name] = std::make_shared<const PipelineSpec>(std::move(*spec));
    return true;
  });
  for (auto& path : config_.pipelines) {
    Value req;
    req.set("path", path);
    auto r = pipeline_load(req, "config");
    if (!r) note(r.error());
  }
  return problems.empty() ? Status() : Status::error(problems);
}

Status ControlApi::reload_pipelines(const std::string& actor) {
  std::vector<std::string> files;
  {
    std::lock_guard lock(mu_);
    for (auto& [_, p] : pipelines_)
      if (!p->source.empty() && std::filesystem::is_regular_file(p->source)) files.push_back(p->source);
  }
  std::string problems;
  for (auto& f : files) {
    Value req;
    req.set("path", f);
    auto r = pipeline_load(req, actor);
    if (!r) {
      spdlog::error("reload kept the previous definition: {}", r.error());
      problems += (problems.empty() ? "" : "\n") + r.error();
    }
  }
  spdlog::info("pipelines reloaded: {} file(s), {} problem(s)", files.size(), problems.empty() ? 0 : 1);
  return problems.empty() ? Status() : Status::error(problems);
}

Result<Value> ControlApi::pipeline_load(const Value& req, const std::string& actor) {
  std::string yaml, source;
  if (auto* y = req.find("yaml"); y && y->is_string()) {
    yaml = y->as_string();
    source = req.get_string("source", "<request>");
  } else {
    auto path = need_string(req, "path");
    if (!path) return path.status();
    std::ifstream in(*path, std::ios::binary);
    if (!in) return Status::error(*path + ": cannot open pipeline file");
    std::stringstream ss;
    ss << in.rdbuf();
    yaml = ss.str();
    source = *path;
  }
  auto spec = parse_pipeline(yaml, source, plugins_);
  if (!spec) return spec.status();
  auto shared = std::make_shared<const PipelineSpec>(std::move(*spec));
  std::lock_guard lock(mu_);
  if (auto it = pipelines_.find(shared->name); it != pipelines_.end() && it->second->sha256 == shared->sha256) {
    Value r;
    r.set("name", shared->name);
    r.set("sha256", shared->sha256);
    r.set("changed", false);
    return r;
  }
  Value rec;
  rec.set("name", shared->name);
  rec.set("source", shared->source);
  rec.set("sha256", shared->sha256);
  rec.set("yaml", shared->yaml);
  rec.set("loaded", now_iso8601());
  auto b = store_.batch();
  b.put(Family::Pipelines, shared->name, rec);
  Value d;
  d.set("name", shared->name);
  d.set("source", shared->source);
  d.set("sha256", shared->sha256);
  if (auto st = commit(b, actor, "pipeline.load", d); !st) return st;
  pipelines_[shared->name] = shared;
  Value r;
  r.set("name", shared->name);
  r.set("sha256", shared->sha256);
  r.set("changed", true);
  r.set("stages", int64_t(shared->stages.size()));
  return r;
}

Result<Value> ControlApi::schedule_add(const Value& req, const std::string& actor) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto round = need_id(req, "round");
  if (!round) return round.status();
  std::string at = req.get_string("at"), cron = req.get_string("cron"), catch_up = req.get_string("catch_up", "once");
  if (at.empty() == cron.empty()) return Status::error("a schedule needs either \"at\" (an ISO 8601 time) or \"cron\" (five fields), not both");
  if (catch_up != "once" && catch_up != "skip") return Status::error("catch_up: \"" + catch_up + "\" is not once or skip");
  const int64_t now = now_ms();
  int64_t due = 0;
  if (!at.empty()) {
    auto t = parse_utc_time(at);
    if (!t) return Status::error("at: \"" + at + "\" is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)");
    if (*t <= now) return Status::error("at: " + at + " is already past");
    due = *t;
  } else {
    auto c = CronExpr::parse(cron);
    if (!c) return c.status();
    auto next = c->next_after(now);
    if (!next) return Status::error("cron \"" + cron + "\" never comes due");
    due = *next;
  }
  std::lock_guard lock(mu_);
  auto r = store_.get(Family::Rounds, *comp + "/" + *round);
  if (!r) return r.status();
  if (!*r) return Status::error("no round \"" + *round + "\" in competition \"" + *comp + "\"");
  auto counter = store_.get(Family::Meta, "next_schedule");
  if (!counter) return counter.status();
  uint64_t n = *counter ? std::stoull(**counter) : 1;
  Value rec;
  rec.set("id", "s-" + zero_pad(n, 6));
  rec.set("competition", *comp);
  rec.set("round", *round);
  rec.set("at", at);
  rec.set("cron", cron);
  rec.set("catch_up", catch_up);
  rec.set("next_due_ms", due);
  rec.set("next_due", format_utc_time(due));
  rec.set("state", "active");
  rec.set("fired", int64_t(0));
  rec.set("created", now_iso8601());
  rec.set("by", actor);
  auto b = store_.batch();
  b.put(Family::Meta, std::string_view("next_schedule"), std::string_view(std::to_string(n + 1)));
  b.put(Family::Schedules, rec.get_string("id"), rec);
  if (auto st = commit(b, actor, "schedule.add", rec); !st) return st;
  return rec;
}

std::vector<std::string> ControlApi::fire_due_schedules(int64_t now) {
  std::vector<Value> due;
  (void)store_.scan(Family::Schedules, "", [&](std::string_view, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (v && v->get_string("state") == "active" && v->get_int("next_due_ms") <= now) due.push_back(std::move(*v));
    return true;
  });
  std::vector<std::string> started;
  for (auto& rec : due) {
    ScheduleStep step = schedule_step(rec, now);
    const std::string id = rec.get_string("id"), actor = "schedule:" + id;
    Value detail;
    detail.set("schedule", id);
    detail.set("due", rec.get_string("next_due"));
    detail.set("missed", step.missed);
    if (step.fire) {
      Value req;
      req.set("competition", rec.get_string("competition"));
      req.set("round", rec.get_string("round"));
      auto run = run_start(req, actor);
      if (run) {
        std::string run_id = run->get_string("run");
        started.push_back(run_id);
        rec.set("last_run", run_id);
        rec.set("last_error", "");
        detail.set("run", run_id);
        spdlog::info("schedule={} started run={}{}", id, run_id, step.missed ? " (catching up a missed time)" : "");
      } else {
        rec.set("last_error", run.error());
        detail.set("error", run.error());
        spdlog::error("schedule={} could not start its run: {}", id, run.error());
      }
      rec.set("fired", rec.get_int("fired") + 1);
      rec.set("last_fired", now_iso8601());
    } else {
      detail.set("skipped", "missed while the daemon was down; catch_up: skip");
      spdlog::warn("schedule={} missed {} while the daemon was down: skipped (catch_up: skip)", id, rec.get_string("next_due"));
    }
    if (step.next_due_ms) {
      rec.set("next_due_ms", *step.next_due_ms);
      rec.set("next_due", format_utc_time(*step.next_due_ms));
    } else {
      rec.set("state", "done");
    }
    detail.set("next_due", step.next_due_ms ? rec.get_string("next_due") : std::string());
    std::lock_guard lock(mu_);
    auto now_rec = store_.get_value(Family::Schedules, id);  // removed meanwhile: stays removed
    if (!now_rec || !*now_rec || (*now_rec)->get_string("state") != "active") continue;
    auto b = store_.batch();
    b.put(Family::Schedules, id, rec);
    if (auto st = commit(b, actor, "schedule.fired", detail); !st) spdlog::error("schedule={}: {}", id, st.message());
  }
  return started;
}

// A run that takes the results of `from` for every stage but those named in req.rerun and
// what depends on them: after an operator's decision only the tally and the report run again.
// Refused unless `from` is a finished run of the same round, with the same pipeline text and
// every entrant's submission unchanged, so a reused result is the one a full run would give.
Status ControlApi::plan_reuse(const Value& req, const std::string& from, const PipelineSpec& spec, RunRequest& rr) const {
  auto src = store_.get_value(Family::Runs, from);
  if (!src) return src.status();
  if (!*src) return Status::error("reuse: no run \"" + from + "\"");
  const Value& s = **src;
  if (s.get_string("competition") != rr.competition || s.get_string("round") != rr.round)
    return Status::error("reuse: " + from + " is a run of " + s.get_string("competition") + "/" + s.get_string("round") + ", not of " +
                         rr.competition + "/" + rr.round);
  if (s.get_string("state") == "running") return Status::error("reuse: " + from + " is still running");
  const Value* sp = s.find("pipeline");
  if (!sp || sp->get_string("sha256") != spec.sha256)
    return Status::error("reuse: " + from + " ran another text of pipeline " + spec.name + " (sha256 " + (sp ? sp->get_string("sha256") : "?") +
                         ", now " + spec.sha256 + "); run the round in full");
  std::map<std::string, Value> before;
  if (auto* es = s.find("entrants"); es && es->is_array())
    for (auto& e : es->as_array()) before[e.get_string("id")] = e.find("submission") ? *e.find("submission") : Value();
  if (before.size() != rr.entrants.size()) return Status::error("reuse: the roster changed since " + from + "; run the round in full");
  for (auto& e : rr.entrants) {
    auto it = before.find(e.get_string("id"));
    if (it == before.end()) return Status::error("reuse: " + e.get_string("id") + " was not in " + from + "; run the round in full");
    if (!(it->second == (e.find("submission") ? *e.find("submission") : Value())))
      return Status::error("reuse: " + e.get_string("id") + "'s submission changed since " + from + "; run the round in full");
  }
  const Value* rerun = req.find("rerun");
  if (!rerun || !rerun->is_array() || rerun->as_array().empty())
    return Status::error("reuse: name the stages to run again (rerun), e.g. the tally after an operator's decision");
  std::set<std::string> again;
  std::vector<std::string> todo;
  for (auto& x : rerun->as_array()) {
    if (!x.is_string() || !spec.stage(x.as_string())) return Status::error("reuse: pipeline " + spec.name + " has no stage \"" + (x.is_string() ? x.as_string() : "?") + "\"");
    todo.push_back(x.as_string());
  }
  while (!todo.empty()) {  // what depends on a stage run again runs again too
    std::string id = todo.back();
    todo.pop_back();
    if (!again.insert(id).second) continue;
    for (auto* d : spec.downstream(id)) todo.push_back(d->id);
  }
  rr.reuse_run = from;
  for (auto& st : spec.stages)
    if (!again.count(st.id)) rr.reuse_stages.push_back(st.id);
  return {};
}

Result<Value> ControlApi::run_start(const Value& req, const std::string& actor) {
  auto comp = need_id(req, "competition");
  if (!comp) return comp.status();
  auto round = need_id(req, "round");
  if (!round) return round.status();
  auto rrec = store_.get_value(Family::Rounds, *comp + "/" + *round);
  if (!rrec) return rrec.status();
  if (!*rrec) return Status::error("no round \"" + *round + "\" in competition \"" + *comp + "\"");
  auto spec = pipeline((*rrec)->get_string("pipeline"));
  if (!spec) return Status::error("round " + *round + " uses pipeline \"" + (*rrec)->get_string("pipeline") + "\", which is not loaded");
  RunRequest rr;
  rr.competition = *comp;
  rr.round = *round;
  rr.round_info = **rrec;
  rr.pipeline = spec;
  rr.actor = actor;
  // Barrier stages see the roster with names: score sheets name teams as people write them.
  Array roster;
  if (auto* es = (*rrec)->find("entrants"); es && es->is_array())
    for (auto& e : es->as_array()) {
      auto erec = store_.get_value(Family::Entrants, *comp + "/" + e.as_string());
      if (!erec) return erec.status();
      if (!*erec) return Status::error("round roster names unknown entrant \"" + e.as_string() + "\"");
      Value who;
      who.set("id", (*erec)->get_string("id"));
      who.set("name", (*erec)->get_string("name"));
      roster.push_back(std::move(who));
      Value entrant = **erec;
      entrant.as_map().erase("submissions");
      if (auto* subs = (*rrec)->find("submissions"); subs && subs->find(e.as_string())) entrant.set("submission", *subs->find(e.as_string()));
      rr.entrants.push_back(std::move(entrant));
    }
  rr.round_info.set("roster", std::move(roster));
  rr.round_info.as_map().erase("submissions");  // each job has its entrant's own
  // What the result depends on beyond its inputs, for reports' manifests.
  Value pipe;
  pipe.set("name", spec->name);
  pipe.set("source", spec->source);
  pipe.set("sha256", spec->sha256);
  rr.round_info.set("pipeline_info", pipe);
  Array libs;
  std::set<std::string> seen;
  for (auto& st : spec->stages) {
    if (!st.library || !seen.insert(st.plugin).second) continue;
    Value l;
    l.set("name", st.library->name);
    l.set("version", st.library->version);
    l.set("abi", std::to_string(st.library->abi_major) + "." + std::to_string(st.library->abi_minor));
    l.set("path", st.library->path.string());
    l.set("sha256", st.library->sha256);
    libs.push_back(std::move(l));
  }
  rr.round_info.set("plugins", std::move(libs));
  rr.round_info.set("daemon_version", EVALD_VERSION);
  if (std::string from = req.get_string("reuse_run"); !from.empty())
    if (auto st = plan_reuse(req, from, *spec, rr); !st) return st;
  auto id = engine_.start_run(std::move(rr));
  if (!id) return id.status();
  Value r;
  r.set("run", *id);
  return r;
}

Result<Value> ControlApi::dispatch(const std::string& op, const Value& req, const std::string& actor) {
  if (op == "ping") {
    Value r;
    r.set("daemon", "evald");
    r.set("version", EVALD_VERSION);
    r.set("abi", std::to_string(EVALD_ABI_MAJOR) + "." + std::to_string(EVALD_ABI_MINOR));
    r.set("pid", int64_t(getpid()));
    r.set("data_dir", config_.data_dir);
    r.set("uptime_s", double(now_ms() - started_ms_) / 1000.0);
    return r;
  }
  if (op == "plugins.list") return plugins_.to_value();
  if (op == "plugin.help") {
    auto name = need_string(req, "name");
    if (!name) return name.status();
    auto p = plugins_.find(*name);
    if (!p) return Status::error("no plugin \"" + *name + "\" is loaded");
    Value r;
    r.set("name", p->name);
    r.set("version", p->version);
    r.set("description", p->description);
    r.set("help", p->schema.help());
    r.set("schema", p->schema.to_value());
    return r;
  }
  if (op == "pipeline.validate") {
    std::string yaml = req.get_string("yaml");
    std::string source = req.get_string("source", "<request>");
    if (!req.find("yaml")) return Status::error("request field \"yaml\" (string) is required");
    auto spec = parse_pipeline(yaml, source, plugins_);
    if (!spec) return spec.status();
    Value r;
    r.set("name", spec->name);
    r.set("sha256", spec->sha256);
    Array st;
    for (auto& s : spec->stages) st.push_back(s.id);
    r.set("stages", std::move(st));
    return r;
  }
  if (op == "pipeline.load") return pipeline_load(req, actor);
  if (op == "pipeline.reload") {
    auto st = reload_pipelines(actor);
    if (!st) return st;
    return Value(Map{});
  }
  if (op == "pipeline.list") {
    Array out;
    std::lock_guard lock(mu_);
    for (auto& [name, p] : pipelines_) {
      Value e;
      e.set("name", name);
      e.set("source", p->source);
      e.set("sha256", p->sha256);
      Array st;
      for (auto& s : p->stages) st.push_back(s.id + " (" + s.plugin + ", per " + (s.per == Per::Entrant ? "entrant" : "round") + ")");
      e.set("stages", std::move(st));
      out.push_back(std::move(e));
    }
    return Value(std::move(out));
  }
  if (op == "competition.create") {
    auto id = need_id(req, "id");
    if (!id) return id.status();
    std::lock_guard lock(mu_);
    auto existing = store_.get(Family::Competitions, *id);
    if (!existing) return existing.status();
    if (*existing) return Status::error("competition \"" + *id + "\" already exists");
    Value rec;
    rec.set("id", *id);
    rec.set("name", req.get_string("name", *id));
    rec.set("created", now_iso8601());
    rec.set("actor", actor);
    auto b = store_.batch();
    b.put(Family::Competitions, *id, rec);
    if (auto st = commit(b, actor, "competition.create", rec); !st) return st;
    return rec;
  }
  if (op == "competition.list") {
    Array out;
    auto st = store_.scan(Family::Competitions, "", [&](std::string_view, std::string_view raw) {
      if (auto v = msgpack::decode(raw)) out.push_back(std::move(*v));
      return true;
    });
    if (!st) return st;
    return Value(std::move(out));
  }
  if (op == "round.create") return round_create(req, actor);
  if (op == "round.show") {
    auto comp = need_id(req, "competition");
    if (!comp) return comp.status();
    auto id = need_id(req, "id");
    if (!id) return id.status();
    auto rec = store_.get_value(Family::Rounds, *comp + "/" + *id);
    if (!rec) return rec.status();
    if (!*rec) return Status::error("no round \"" + *id + "\" in competition \"" + *comp + "\"");
    return **rec;
  }
  if (op == "round.list" || op == "entrant.list") {
    auto comp = need_id(req, "competition");
    if (!comp) return comp.status();
    Array out;
    auto st = store_.scan(op == "round.list" ? Family::Rounds : Family::Entrants, *comp + "/",
                          [&](std::string_view, std::string_view raw) {
                            if (auto v = msgpack::decode(raw)) out.push_back(std::move(*v));
                            return true;
                          });
    if (!st) return st;
    return Value(std::move(out));
  }
  if (op == "entrant.add") return entrant_add(req, actor);
  if (op.starts_with("intake.")) {
    auto comp = need_id(req, "competition");
    if (!comp) return comp.status();
    auto round = need_id(req, "round");
    if (!round) return round.status();
    if (op == "intake.status") {
      std::string ch = req.get_string("channel");
      if (!ch.empty())
        if (auto st = check_id("channel", ch); !st) return st;
      return intake_.status(*comp, *round, ch);
    }
    auto channel = need_id(req, "channel");
    if (!channel) return channel.status();
    if (op == "intake.open") return intake_.open(*comp, *round, *channel, req.get_string("closes"), actor);
    if (op == "intake.close") return intake_.close(*comp, *round, *channel, actor);
    if (op == "intake.submit") {
      auto* recs = req.find("records");
      if (!recs) return Status::error("request field \"records\" (array) is required");
      return intake_.submit(*comp, *round, *channel, *recs, actor);
    }
  }
  if (op == "decision.record") {
    auto comp = need_id(req, "competition");
    if (!comp) return comp.status();
    auto round = need_id(req, "round");
    if (!round) return round.status();
    auto entrant = need_id(req, "entrant");
    if (!entrant) return entrant.status();
    auto decision = need_string(req, "decision");
    if (!decision) return decision.status();
    return intake_.record_decision(*comp, *round, *entrant, *decision, req.get_string("reason"), actor);
  }
  if (op == "round.decide") return round_decide(req, actor);
  if (op == "call.open" || op == "call.close") return call_open_close(op, req, actor);
  if (op == "schedule.add") return schedule_add(req, actor);
  if (op == "competition.define") return competition_define(req, actor);
  if (op == "schedule.list") {
    Array out;
    std::string comp = req.get_string("competition");
    auto st = store_.scan(Family::Schedules, "", [&](std::string_view, std::string_view raw) {
      auto v = msgpack::decode(raw);
      if (v && (comp.empty() || v->get_string("competition") == comp)) out.push_back(std::move(*v));
      return true;
    });
    if (!st) return st;
    return Value(std::move(out));
  }
  if (op == "schedule.remove") {
    auto id = need_id(req, "id");
    if (!id) return id.status();
    std::lock_guard lock(mu_);
    auto rec = store_.get_value(Family::Schedules, *id);
    if (!rec) return rec.status();
    if (!*rec) return Status::error("no schedule \"" + *id + "\"");
    Value r = **rec;
    if (r.get_string("state") != "active") return Status::error("schedule " + *id + " is " + r.get_string("state") + ", not active");
    r.set("state", "removed");
    r.set("removed", now_iso8601());
    auto b = store_.batch();
    b.put(Family::Schedules, *id, r);
    if (auto st = commit(b, actor, "schedule.remove", r); !st) return st;
    return r;
  }
  if (op == "competition.report") return competition_report(req);
  if (op == "run.start") return run_start(req, actor);
  if (op == "run.status") {
    auto run = need_string(req, "run");
    if (!run) return run.status();
    return engine_.run_status(*run);
  }
  if (op == "run.list") {
    Array out;
    auto st = store_.scan(Family::Runs, "", [&](std::string_view, std::string_view raw) {
      if (auto v = msgpack::decode(raw)) {
        Value e;
        for (auto* k : {"id", "competition", "round", "state", "created", "finished", "failed_jobs"})
          if (auto* x = v->find(k)) e.set(k, *x);
        if (auto* p = v->find("pipeline")) e.set("pipeline", p->get_string("name"));
        out.push_back(std::move(e));
      }
      return true;
    });
    if (!st) return st;
    return Value(std::move(out));
  }
  if (op == "run.outputs") {
    auto run = need_string(req, "run");
    if (!run) return run.status();
    auto msgs = engine_.run_outputs(*run, req.get_string("stage"));
    if (!msgs) return msgs.status();
    Array out;
    for (auto& m : *msgs) out.push_back(m.to_value());
    return Value(std::move(out));
  }
  if (op == "audit.verify") {
    auto v = audit_.verify();
    Value r;
    r.set("ok", v.ok);
    r.set("entries", int64_t(v.entries));
    r.set("head", v.head);
    if (!v.ok) r.set("problem", v.problem);
    return r;
  }
  if (op == "audit.list") {
    auto from = req.get_int("from", 1);
    auto limit = req.get_int("limit", 100);
    if (from < 1 || limit < 1 || limit > 100000) return Status::error("audit.list: from >= 1 and 1 <= limit <= 100000");
    Array out;
    for (auto& e : audit_.list(uint64_t(from), size_t(limit))) out.push_back(std::move(e));
    return Value(std::move(out));
  }
  if (op == "shutdown") {
    auto b = store_.batch();
    Value d;
    d.set("drain", true);
    if (auto st = commit(b, actor, "daemon.shutdown", d); !st) return st;
    request_shutdown_();
    return Value(Map{});
  }
  std::string known;
  for (auto* k : kOps) known += (known.empty() ? "" : ", ") + std::string(k);
  return Status::error("unknown op \"" + op + "\" (known: " + known + ")");
}

std::string describe_actor(const std::string& declared, const std::string& peer) {
  if (peer.empty()) return declared;
  // ipc: "localhost:<uid>:<gid>:<pid>", from SO_PEERCRED.
  unsigned uid = 0, gid = 0, pid = 0;
  char host[64] = {0};
  if (std::sscanf(peer.c_str(), "%63[^:]:%u:%u:%u", host, &uid, &gid, &pid) == 4) {
    struct passwd* pw = getpwuid(uid_t(uid));
    std::string name = pw ? pw->pw_name : "uid" + std::to_string(uid);
    return name + " (uid " + std::to_string(uid) + ", pid " + std::to_string(pid) + ") via " + declared;
  }
  return declared + " from " + peer;
}

Value ControlApi::handle(const Value& request, const std::string& peer) {
  if (!request.is_map()) return err("request must be a msgpack map with an \"op\" field");
  auto* op = request.find("op");
  if (!op || !op->is_string()) return err("request field \"op\" (string) is required");
  std::string actor = describe_actor(request.get_string("actor", "unknown"), peer);
  try {
    auto r = dispatch(op->as_string(), request, actor);
    if (!r) return err(r.error());
    return ok(std::move(*r));
  } catch (const std::exception& e) {
    spdlog::error("control op={} failed: {}", op->as_string(), e.what());
    return err(std::string("internal error: ") + e.what());
  }
}

Bytes ControlApi::handle_bytes(const uint8_t* data, size_t size, const std::string& peer) {
  auto req = msgpack::decode(data, size, kRequestLimits);
  if (!req) return msgpack::encode(err("malformed request: " + req.error()));
  return msgpack::encode(handle(*req, peer));
}

// ---------------------------------------------------------------------------------------

ControlServer::ControlServer(ControlApi& api, const DaemonConfig& config)
    : api_(api), config_(config), ctx_(std::make_unique<zmq::context_t>(1)) {}

ControlServer::~ControlServer() {
  stop();
  if (ctx_) ctx_->close();
}

Status ControlServer::start() {
  if (sock_) return Status::error("control server already started");
  sock_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::rep);
  sock_->set(zmq::sockopt::linger, 0);
  sock_->set(zmq::sockopt::maxmsgsize, int64_t(16) << 20);
  bool ipc = config_.control.rfind("ipc://", 0) == 0;
  std::string path = ipc ? config_.control.substr(6) : "";
  if (ipc) {
    // A stale socket file from a killed daemon: the data dir lock already proved no other
    // daemon owns it.
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  // Created owner-only from the start, so no other user can connect before the chmod below.
  mode_t old = umask(config_.control_group.empty() ? 0177 : 0117);
  try {
    sock_->bind(config_.control);
  } catch (const zmq::error_t& e) {
    umask(old);
    sock_.reset();
    return Status::error("cannot bind control endpoint " + config_.control + ": " + e.what());
  }
  umask(old);
  if (ipc) {
    if (!config_.control_group.empty()) {
      struct group* g = getgrnam(config_.control_group.c_str());
      if (!g) return Status::error("control_group: no group named \"" + config_.control_group + "\"");
      if (chown(path.c_str(), uid_t(-1), g->gr_gid) != 0)
        return Status::error("cannot give control socket " + path + " to group " + config_.control_group);
      chmod(path.c_str(), 0660);
    } else {
      chmod(path.c_str(), 0600);
    }
  }
  thread_ = std::thread([this] { serve(); });
  spdlog::info("control api listening on {}", config_.control);
  return {};
}

void ControlServer::serve() {
  while (!stop_) {
    zmq::pollitem_t items[] = {{sock_->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq::message_t req;
    if (!sock_->recv(req, zmq::recv_flags::dontwait)) continue;
    while (req.more()) {  // a multi-part request: answer the whole as one malformed request
      zmq::message_t extra;
      if (!sock_->recv(extra, zmq::recv_flags::dontwait)) break;
      req = std::move(extra);
    }
    const char* peer = zmq_msg_gets(req.handle(), "Peer-Address");
    Bytes reply = api_.handle_bytes(static_cast<const uint8_t*>(req.data()), req.size(), peer ? peer : "");
    try {
      sock_->send(zmq::buffer(reply.data(), reply.size()), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      spdlog::warn("control reply not sent: {}", e.what());
    }
  }
}

void ControlServer::stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (sock_) {
    sock_->close();
    if (config_.control.rfind("ipc://", 0) == 0) {
      std::error_code ec;
      std::filesystem::remove(config_.control.substr(6), ec);
    }
  }
  sock_.reset();
}

}  // namespace evald::daemon
