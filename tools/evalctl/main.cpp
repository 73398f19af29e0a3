// evalctl: the operator's command line for a running evald, over the control API.
#include <evald/time.hpp>
#include <evald/value.hpp>

#include "records.hpp"
#include "competition.hpp"
#include "run_watch.hpp"
#include "verify.hpp"

#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.hpp>

#include <chrono>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using evald::Array;
using evald::Value;

namespace {

// Exit codes scripts can rely on.
enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3, kRunFailed = 4 };

const char* kMain = R"(evalctl - operate a running evald daemon

Usage: evalctl [global options] <command> [arguments]

Global options:
  --data-dir DIR     the daemon's data dir (control socket DIR/control.sock; default evald-data)
  --socket ENDPOINT  control endpoint, overrides --data-dir (ipc://PATH or tcp://HOST:PORT)
  --json             print machine-readable JSON instead of tables
  --timeout S        seconds to wait for the daemon's answer (default 30)

Commands:
  status                                  is the daemon up; version, pid, uptime
  plugins                                 loaded plugins with versions, and load errors
  plugin help NAME                        a plugin's config keys
  pipeline validate FILE                  check a pipeline against the daemon's plugins
  pipeline load FILE                      load (or replace) a pipeline
  pipeline list                           loaded pipelines
  pipeline reload                         re-read every pipeline file (as SIGHUP does)
  competition create ID [--name NAME]     a new competition
  competition list
  competition define FILE                 a competition from its definition (rounds, pipelines, rosters, schedules)
  competition report COMP [--out DIR]     rounds, who entered when, decisions, reports, finalists
  round create COMP ROUND --pipeline NAME [--from-round PREV]   a round; its roster from PREV's advancers
  call open COMP ROUND [--closes TIME]    an additional call: entrants may join a later round
  call close COMP ROUND
  round decide COMP ROUND                 record who advances, from the round's tally
  round schedule COMP ROUND (--at TIME | --cron "M H DOM MON DOW") [--catch-up once|skip]
  schedule list [COMP]                    schedules with their next time and last run
  schedule remove ID
  round list COMP
  round show COMP ROUND
  entrant add COMP ID [--name NAME] [--round ROUND] [--set KEY=VALUE]...
                                          register an entrant or take a new submission (fields by --set)
  entrant list COMP
  run start COMP ROUND [--wait] [--reuse RUN --rerun STAGE,...]   start a run of the round's pipeline
  run list
  run status RUN [--jobs]                 per-stage counters (and every job)
  run wait RUN [--timeout S]              wait until the run ends; exit 4 if any job failed
  run watch RUN [--timeout S]             every job's state and progress bar until the run ends
  run outputs RUN [--stage STAGE]         messages the run's jobs emitted
  intake open COMP ROUND CHANNEL [--closes TIME]   let records (votes, score rows) in
  intake submit COMP ROUND CHANNEL FILE...         send records from CSV, JSON or JSONL files
  intake close COMP ROUND CHANNEL
  intake status COMP ROUND [CHANNEL]
  decision record COMP ROUND ENTRANT DECISION --reason TEXT   an operator's decision, for the tally
  report verify DIR [--key HEX] [--base DIR]   check a report's signature and re-hash what it depends on
  audit verify                            check the audit log's hash chain
  audit list [--from N] [--limit N]
  shutdown                                drain in-flight jobs and stop the daemon

Every command takes --help. Exit codes: 0 ok, 1 the daemon refused or failed the request,
2 usage error, 3 daemon not reachable, 4 a waited-for run ended with failed jobs.
)";

struct Command {
  std::vector<std::string> words;
  std::string usage;
  std::string help;
};

const std::vector<Command> kCommands = {
    {{"status"}, "evalctl status", "Asks the daemon for its version, pid, data dir and uptime."},
    {{"plugins"}, "evalctl plugins", "Lists loaded plugins (name, version, description) and libraries that failed to load, with the reason."},
    {{"plugin", "help"}, "evalctl plugin help NAME", "Prints a plugin's description and its config keys (type, default, range)."},
    {{"pipeline", "validate"}, "evalctl pipeline validate FILE", "Checks a pipeline file exactly as a run would, against the daemon's plugins. Errors name file, line and field."},
    {{"pipeline", "load"}, "evalctl pipeline load FILE", "Validates and stores a pipeline; replaces one of the same name. Runs already started keep their definition."},
    {{"pipeline", "list"}, "evalctl pipeline list", "Lists loaded pipelines with their stages and hashes."},
    {{"pipeline", "reload"}, "evalctl pipeline reload", "Re-reads every pipeline file the daemon loaded; invalid files keep the previous definition."},
    {{"competition", "create"}, "evalctl competition create ID [--name NAME]", "Creates a competition."},
    {{"competition", "list"}, "evalctl competition list", "Lists competitions."},
    {{"competition", "define"}, "evalctl competition define FILE", "Creates a competition from a YAML definition (see pipelines/sample-competition.yaml): {id, name, rounds: [{id, pipeline, from?, weights?: {component: points}, advance?: {top?, min_total?}, additional_call?: true|false, schedule?: {at | cron, catch_up?}}]}, rounds in order, pipelines already loaded. weights and advance override the pipeline tally's for that round. The first round is created now; each round with `from` is created, its roster the advancers, when that round is decided (evalctl round decide). Entrants register for the first round with entrant add --round; others join a later round through an additional call (evalctl call open)."},
    {{"competition", "report"}, "evalctl competition report COMP [--out DIR [--lang ko|en]]", "The whole competition: each round in order with its rules, who entered it and how (registered, advanced from the previous round, additional call, re-applied), its runs, its scoreboard and decision and its signed report; every entrant's submissions; and the finalists once the last round is decided. --out writes it for publication as DIR/competition.html (self-contained), competition.md and competition.json (evald.competition-report/1), in Korean (the default) or English, and prints each file's sha256."},
    {{"round", "create"}, "evalctl round create COMP ROUND --pipeline NAME [--from-round PREV]", "Creates a round of a competition, evaluated by a loaded pipeline. --from-round starts its roster with the entrants the decided round PREV advanced; add the entrants of an additional call with entrant add --round."},
    {{"call", "open"}, "evalctl call open COMP ROUND [--closes TIME]", "Opens an additional call for a later round (one created from an earlier round's advancers): while it is open, entrant add --round ROUND adds entrants to its roster, new ones or ones an earlier round eliminated re-applying. --closes (ISO 8601) ends it by itself. Refused for a first round, a decided round, or where the competition's definition says additional_call: false."},
    {{"call", "close"}, "evalctl call close COMP ROUND", "Closes a round's additional call; later additions are refused."},
    {{"round", "decide"}, "evalctl round decide COMP ROUND [--run RUN] [--reason TEXT]", "Records the round's decision from the tally of its latest finished run (or RUN): who advances, who was eliminated or disqualified. Refused while the tally leaves the round undecided (it says why). Deciding a decided round again from another run needs --reason; both decisions stay in the audit log."},
    {{"round", "schedule"}, "evalctl round schedule COMP ROUND (--at TIME | --cron \"M H DOM MON DOW\") [--catch-up once|skip]", "Starts the round's run at TIME (ISO 8601), or every time a five-field cron expression (UTC) comes due, for recurring evaluation. Schedules are stored and survive restarts. A time missed while the daemon was down is caught up by one run at the next start (--catch-up once, the default) or skipped (--catch-up skip)."},
    {{"schedule", "list"}, "evalctl schedule list [COMP]", "Lists schedules: round, time or cron, catch-up policy, state, next time, runs started, last run and error."},
    {{"schedule", "remove"}, "evalctl schedule remove ID", "Stops a schedule; runs it already started are kept."},
    {{"round", "list"}, "evalctl round list COMP", "Lists a competition's rounds and their rosters."},
    {{"round", "show"}, "evalctl round show COMP ROUND", "Shows a round: pipeline, rules, roster with how each entrant joined, additional call and decision."},
    {{"entrant", "add"}, "evalctl entrant add COMP ID [--name NAME] [--round ROUND] [--set KEY=VALUE]...", "Registers an entrant, or takes a new submission from one, and optionally adds it to a round's roster: a first round's by registration, a later round's only while its additional call is open (evalctl call open); an entrant already on the roster resubmits for that round. --set gives submission fields, e.g. --set weights=/data/team1/model.safetensors. Every submission is kept with its time and sha256; a round evaluates the one each entrant had for it, so a resubmission never changes an earlier round."},
    {{"entrant", "list"}, "evalctl entrant list COMP", "Lists a competition's entrants."},
    {{"run", "start"}, "evalctl run start COMP ROUND [--wait] [--reuse RUN --rerun STAGE[,STAGE...]]", "Starts a run of the round's pipeline over its roster; prints the run id. --wait waits for it to end. --reuse RUN --rerun STAGES runs only those stages and the ones that depend on them again and takes every other stage's results from RUN (a finished run of the round with the same pipeline text and unchanged submissions; refused otherwise), e.g. --rerun tally after evalctl decision record: scans and benchmarks are not repeated. Each reused job names RUN (reused_from) and its messages keep the job that made them."},
    {{"run", "list"}, "evalctl run list", "Lists runs with their state."},
    {{"run", "status"}, "evalctl run status RUN [--jobs]", "Shows a run's per-stage counters (in, out, queued, running, done, failed, skipped, retried); --jobs lists every job with its error."},
    {{"run", "wait"}, "evalctl run wait RUN [--timeout S]", "Waits until the run ends, showing progress. Exit 0 when every job succeeded, 4 when some failed, 1 on timeout."},
    {{"run", "watch"}, "evalctl run watch RUN [--timeout S]", "Shows every job of a run with its state and, for long jobs (scanning, benchmarking), a progress bar with rate and time left, redrawn until the run ends. Without a terminal it prints a line per change instead (elapsed time first); with --json only the final status, as JSON. Exit codes as run wait."},
    {{"run", "outputs"}, "evalctl run outputs RUN [--stage STAGE]", "Prints the messages a run's jobs emitted."},
    {{"intake", "open"}, "evalctl intake open COMP ROUND CHANNEL [--closes TIME]", "Opens a round's intake window for a channel (e.g. user-votes): records can then be submitted until it is closed or until --closes (ISO 8601, e.g. 2026-12-01T18:00:00Z)."},
    {{"intake", "close"}, "evalctl intake close COMP ROUND CHANNEL", "Closes an intake window; records already stored stay, later submissions are refused."},
    {{"intake", "status"}, "evalctl intake status COMP ROUND [CHANNEL]", "Shows a round's intake windows: state, who opened them, when they close, records stored."},
    {{"intake", "submit"}, "evalctl intake submit COMP ROUND CHANNEL FILE... [--batch N]", "Sends records from CSV (header row), JSON (array of objects) or JSONL files, or JSONL on stdin as -, in batches of N (default 1000). Every record needs an id; a record sent again is counted as a duplicate, never stored twice. Exit 1 when any record was rejected; each is listed with its file and line."},
    {{"decision", "record"}, "evalctl decision record COMP ROUND ENTRANT DECISION --reason TEXT", "Records an operator's decision about an entrant, with its reason, in the audit log; the round's tally applies it on its next run. DECISION: advance, eliminate, disqualify (override the rule), count_missing_as_zero (a missing result counts as 0 instead of holding the round), accept_inconclusive (an inconclusive gate passes)."},
    {{"report", "verify"}, "evalctl report verify DIR [--key HEX] [--base DIR]", "Checks a round report (the report stage's artifact directory, or a copy of it): the ed25519 signature over report.json and manifest.json, the report files against the manifest, and every input file the manifest lists (score sheets, vote files, plugin libraries, the pipeline file, ...) re-hashed where it was. Says exactly what changed. --key is the office's published public key (hex); without it the key in report.pub is used, which only shows the files agree with each other. Relative input paths are looked for under --base, else under the daemon's working directory the manifest records. Needs no daemon. Exit 0 when everything verifies, 1 otherwise."},
    {{"audit", "verify"}, "evalctl audit verify", "Walks the audit log's hash chain; exit 1 and the first bad entry if it was altered."},
    {{"audit", "list"}, "evalctl audit list [--from N] [--limit N]", "Prints audit entries: who did what, when."},
    {{"shutdown"}, "evalctl shutdown", "Asks the daemon to drain in-flight jobs and stop."},
};

struct Opts {
  std::string endpoint;
  std::string data_dir = "evald-data";
  bool json = false;
  int timeout_s = 30;
  std::vector<std::string> pos;
  std::map<std::string, std::vector<std::string>> flags;
  bool help = false;

  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::string get(const std::string& f, const std::string& fallback = {}) const {
    auto it = flags.find(f);
    return it == flags.end() || it->second.empty() ? fallback : it->second.back();
  }
};

std::string actor() {
  struct passwd* pw = getpwuid(geteuid());
  return std::string(pw ? pw->pw_name : "uid" + std::to_string(geteuid())) + "@evalctl";
}

class Client {
 public:
  explicit Client(const Opts& o) : o_(o), ctx_(1) {}

  // The reply's result; exits the process with kUnreachable or kFailed on errors.
  Value call(Value req) {
    req.set("actor", actor());
    if (o_.endpoint.rfind("ipc://", 0) == 0) {
      struct stat st;
      std::string path = o_.endpoint.substr(6);
      if (stat(path.c_str(), &st) != 0) die(kUnreachable, "evald is not running (no control socket at " + path + "); start it with: evald --data-dir " + o_.data_dir);
      if (access(path.c_str(), R_OK | W_OK) != 0) die(kUnreachable, "no permission to use the control socket " + path + " (it belongs to the daemon's user and control group)");
    }
    zmq::socket_t s(ctx_, zmq::socket_type::req);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, o_.timeout_s * 1000);
    s.set(zmq::sockopt::sndtimeo, o_.timeout_s * 1000);
    try {
      s.connect(o_.endpoint);
      evald::Bytes b = evald::msgpack::encode(req);
      if (!s.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::none))
        die(kUnreachable, "evald at " + o_.endpoint + " did not take the request");
      zmq::message_t reply;
      if (!s.recv(reply)) die(kUnreachable, "evald at " + o_.endpoint + " did not answer within " + std::to_string(o_.timeout_s) + " s (not running?)");
      auto v = evald::msgpack::decode(static_cast<const uint8_t*>(reply.data()), reply.size());
      if (!v) die(kFailed, "malformed reply from evald: " + v.error());
      if (!v->get_bool("ok")) die(kFailed, v->get_string("error", "request failed"));
      auto* r = v->find("result");
      return r ? *r : Value();
    } catch (const zmq::error_t& e) {
      die(kUnreachable, "cannot reach evald at " + o_.endpoint + ": " + e.what());
    }
    return {};
  }

  [[noreturn]] void die(int code, const std::string& msg) {
    if (o_.json) {
      Value v;
      v.set("ok", false);
      v.set("error", msg);
      std::printf("%s\n", evald::to_json(v).c_str());
    } else {
      std::fprintf(stderr, "evalctl: %s\n", msg.c_str());
    }
    std::exit(code);
  }

 private:
  const Opts& o_;
  zmq::context_t ctx_;
};

// --- output --------------------------------------------------------------------------

std::string cell(const Value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return v->as_string().empty() ? "-" : v->as_string();
  if (v->is_double()) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v->as_double());
    return b;
  }
  return evald::to_json(*v);
}

// UTF-8 aware width (counts code points), so Korean names keep columns aligned closely enough.
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

void table(const std::vector<std::string>& cols, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(cols.size());
  for (size_t i = 0; i < cols.size(); ++i) w[i] = width(cols[i]);
  for (auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], std::min<size_t>(width(r[i]), 60));
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < cols.size(); ++i) {
      std::string c = i < r.size() ? r[i] : "";
      out += c;
      if (i + 1 < cols.size()) out += std::string(w[i] > width(c) ? w[i] - width(c) + 2 : 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line(cols);
  for (auto& r : rows) line(r);
  if (rows.empty()) std::printf("(none)\n");
}

void rows_of(const Value& list, const std::vector<std::string>& keys) {
  std::vector<std::vector<std::string>> rows;
  if (list.is_array())
    for (auto& e : list.as_array()) {
      std::vector<std::string> r;
      for (auto& k : keys) r.push_back(cell(e.find(k)));
      rows.push_back(std::move(r));
    }
  std::vector<std::string> cols;
  for (auto& k : keys) {
    std::string u = k;
    for (auto& c : u) c = char(std::toupper(static_cast<unsigned char>(c)));
    cols.push_back(u);
  }
  table(cols, rows);
}

void print_json(const Value& v) { std::printf("%s\n", evald::to_json(v).c_str()); }

std::string read_file(const std::string& path, Client& c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) c.die(kFailed, path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string absolute(const std::string& p) {
  std::error_code ec;
  auto a = std::filesystem::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

void print_counters(const Value& st) {
  std::printf("run %s  %s  competition %s  round %s  pipeline %s\n", st.get_string("id").c_str(),
              st.get_string("state").c_str(), st.get_string("competition").c_str(), st.get_string("round").c_str(),
              st.find("pipeline") ? st.find("pipeline")->get_string("name").c_str() : "-");
  if (st.find("store_error")) std::printf("STORE ERROR: %s\n", st.get_string("store_error").c_str());
  rows_of(st.find("stage_counters") ? *st.find("stage_counters") : Value(Array{}),
          {"stage", "jobs", "in", "out", "queued", "running", "done", "failed", "skipped", "retried"});
}

// --- commands ------------------------------------------------------------------------

int need(const Opts& o, size_t n, const Command& cmd, Client& c) {
  if (o.pos.size() < n) c.die(kUsage, "missing arguments; usage: " + cmd.usage);
  return 0;
}

int run_command(const Command& cmd, const Opts& o, Client& c) {
  const std::string name = cmd.words.size() > 1 ? cmd.words[0] + " " + cmd.words[1] : cmd.words[0];
  Value req;
  auto simple = [&](const std::string& op) { req.set("op", op); return c.call(req); };

  if (name == "status") {
    auto r = simple("ping");
    if (o.json) return print_json(r), kOk;
    std::printf("evald %s running: pid %lld, data dir %s, up %.0f s, plugin ABI %s\n", r.get_string("version").c_str(),
                (long long)r.get_int("pid"), r.get_string("data_dir").c_str(), r.get_double("uptime_s"), r.get_string("abi").c_str());
    return kOk;
  }
  if (name == "plugins") {
    auto r = simple("plugins.list");
    if (o.json) return print_json(r), kOk;
    rows_of(*r.find("plugins"), {"name", "version", "abi", "description"});
    if (auto* e = r.find("errors"); e && !e->as_array().empty()) {
      std::printf("\nnot loaded:\n");
      for (auto& x : e->as_array()) std::printf("  %s\n", x.get_string("error").c_str());
    }
    return kOk;
  }
  if (name == "plugin help") {
    need(o, 1, cmd, c);
    req.set("name", o.pos[0]);
    auto r = simple("plugin.help");
    if (o.json) return print_json(r), kOk;
    std::printf("%s %s - %s\n\nConfig keys:\n%s", r.get_string("name").c_str(), r.get_string("version").c_str(),
                r.get_string("description").c_str(), r.get_string("help").c_str());
    return kOk;
  }
  if (name == "pipeline validate" || name == "pipeline load") {
    need(o, 1, cmd, c);
    req.set("yaml", read_file(o.pos[0], c));
    req.set("source", o.pos[0]);
    if (name == "pipeline load") {
      // The daemon re-reads the file on reload, so it gets the absolute path.
      req.set("path", absolute(o.pos[0]));
      req.as_map().erase("yaml");
    }
    auto r = simple(name == "pipeline load" ? "pipeline.load" : "pipeline.validate");
    if (o.json) return print_json(r), kOk;
    if (name == "pipeline load")
      std::printf("pipeline %s loaded (%s) sha256 %s\n", r.get_string("name").c_str(), r.get_bool("changed") ? "changed" : "unchanged",
                  r.get_string("sha256").c_str());
    else
      std::printf("%s: pipeline %s is valid (sha256 %s)\n", o.pos[0].c_str(), r.get_string("name").c_str(), r.get_string("sha256").c_str());
    return kOk;
  }
  if (name == "pipeline list") {
    auto r = simple("pipeline.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"name", "stages", "source", "sha256"});
    return kOk;
  }
  if (name == "pipeline reload") {
    auto r = simple("pipeline.reload");
    if (o.json) return print_json(r), kOk;
    std::printf("pipelines reloaded\n");
    return kOk;
  }
  if (name == "competition create") {
    need(o, 1, cmd, c);
    req.set("id", o.pos[0]);
    if (o.has("--name")) req.set("name", o.get("--name"));
    auto r = simple("competition.create");
    if (o.json) return print_json(r), kOk;
    std::printf("competition %s created\n", r.get_string("id").c_str());
    return kOk;
  }
  if (name == "competition list") {
    auto r = simple("competition.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"id", "name", "created"});
    return kOk;
  }
  if (name == "competition define") {
    need(o, 1, cmd, c);
    req.set("yaml", read_file(o.pos[0], c));
    req.set("source", o.pos[0]);
    auto r = simple("competition.define");
    if (o.json) return print_json(r), kOk;
    std::printf("competition %s defined: %lld rounds; created now: %s\n", r.get_string("id").c_str(), (long long)r.get_int("rounds"),
                cell(r.find("created_rounds")).c_str());
    return kOk;
  }
  if (name == "competition report") {
    need(o, 1, cmd, c);
    req.set("competition", o.pos[0]);
    auto r = simple("competition.report");
    if (o.has("--out")) {
      std::string lang = o.get("--lang", "ko");
      if (lang != "ko" && lang != "en") c.die(kUsage, "--lang: \"" + lang + "\" is not ko or en");
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      auto w = evald::report::write_competition_report(r, o.get("--out"), lang == "ko" ? evald::report::Lang::Ko : evald::report::Lang::En,
                                                       evald::format_utc_time(now));
      if (!w) c.die(kFailed, w.error());
      if (o.json) return print_json(*w), kOk;
      for (auto& f : w->find("files")->as_array())
        std::printf("%s  %s\n", f.get_string("path").c_str(), f.get_string("sha256").c_str());
      return kOk;
    }
    if (o.json) return print_json(r), kOk;
    const Value& cv = *r.find("competition");
    std::printf("competition %s (%s), created %s\n", cv.get_string("id").c_str(), cv.get_string("name").c_str(), cv.get_string("created").c_str());
    for (auto& rd : r.find("rounds")->as_array()) {
      std::printf("\nround %s (pipeline %s), created %s%s\n", rd.get_string("id").c_str(), rd.get_string("pipeline").c_str(),
                  rd.get_string("created").c_str(), rd.get_string("from_round").empty() ? "" : (", from " + rd.get_string("from_round")).c_str());
      rows_of(*rd.find("entrants"), {"id", "name", "via", "joined"});
      std::string runs;
      for (auto& run : rd.find("runs")->as_array()) runs += (runs.empty() ? "" : ", ") + run.get_string("id") + " " + run.get_string("state");
      std::printf("runs: %s\n", runs.empty() ? "none" : runs.c_str());
      const Value* d = rd.find("decision");
      if (d && d->is_map())
        std::printf("decided from %s: advance %s, eliminated %s, disqualified %s\n", d->get_string("run").c_str(),
                    cell(d->find("advance")).c_str(), cell(d->find("eliminated")).c_str(), cell(d->find("disqualified")).c_str());
      else
        std::printf("not decided\n");
      if (auto* rep = rd.find("report"); rep && rep->is_map())
        std::printf("report: %s (public key %s)\n", rep->get_string("html").c_str(), rep->get_string("public_key").c_str());
    }
    const Value* f = r.find("finalists");
    std::printf("\nfinalists: %s\n", f && f->is_array() ? cell(f).c_str() : "not yet (the last round is not decided)");
    return kOk;
  }
  if (name == "round create") {
    need(o, 2, cmd, c);
    if (!o.has("--pipeline")) c.die(kUsage, "--pipeline NAME is required; usage: " + cmd.usage);
    req.set("competition", o.pos[0]);
    req.set("id", o.pos[1]);
    req.set("pipeline", o.get("--pipeline"));
    if (o.has("--from-round")) req.set("from_round", o.get("--from-round"));
    auto r = simple("round.create");
    if (o.json) return print_json(r), kOk;
    std::printf("round %s/%s created (pipeline %s)%s\n", o.pos[0].c_str(), o.pos[1].c_str(), r.get_string("pipeline").c_str(),
                o.has("--from-round") ? (", roster from " + o.get("--from-round") + ": " + cell(r.find("entrants"))).c_str() : "");
    return kOk;
  }
  if (name == "round decide") {
    need(o, 2, cmd, c);
    req.set("competition", o.pos[0]);
    req.set("round", o.pos[1]);
    if (o.has("--run")) req.set("run", o.get("--run"));
    if (o.has("--reason")) req.set("reason", o.get("--reason"));
    auto r = simple("round.decide");
    if (o.json) return print_json(r), kOk;
    std::printf("round %s/%s decided from %s\n  advance:      %s\n  eliminated:   %s\n  disqualified: %s\n", o.pos[0].c_str(), o.pos[1].c_str(),
                r.get_string("run").c_str(), cell(r.find("advance")).c_str(), cell(r.find("eliminated")).c_str(),
                cell(r.find("disqualified")).c_str());
    if (!r.get_string("next_round").empty())
      std::printf("next round: %s, its roster starting with the advancers\n", r.get_string("next_round").c_str());
    return kOk;
  }
  if (name == "round schedule") {
    need(o, 2, cmd, c);
    if (o.has("--at") == o.has("--cron")) c.die(kUsage, "give --at TIME or --cron EXPR; usage: " + cmd.usage);
    req.set("competition", o.pos[0]);
    req.set("round", o.pos[1]);
    if (o.has("--at")) req.set("at", o.get("--at"));
    if (o.has("--cron")) req.set("cron", o.get("--cron"));
    if (o.has("--catch-up")) req.set("catch_up", o.get("--catch-up"));
    auto r = simple("schedule.add");
    if (o.json) return print_json(r), kOk;
    std::printf("schedule %s: round %s/%s %s, next %s (catch-up %s)\n", r.get_string("id").c_str(), o.pos[0].c_str(), o.pos[1].c_str(),
                r.get_string("at").empty() ? ("cron \"" + r.get_string("cron") + "\"").c_str() : ("at " + r.get_string("at")).c_str(),
                r.get_string("next_due").c_str(), r.get_string("catch_up").c_str());
    return kOk;
  }
  if (name == "schedule list") {
    if (!o.pos.empty()) req.set("competition", o.pos[0]);
    auto r = simple("schedule.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"id", "competition", "round", "at", "cron", "catch_up", "state", "next_due", "fired", "last_run", "last_error"});
    return kOk;
  }
  if (name == "schedule remove") {
    need(o, 1, cmd, c);
    req.set("id", o.pos[0]);
    auto r = simple("schedule.remove");
    if (o.json) return print_json(r), kOk;
    std::printf("schedule %s removed\n", r.get_string("id").c_str());
    return kOk;
  }
  if (name == "round list") {
    need(o, 1, cmd, c);
    req.set("competition", o.pos[0]);
    auto r = simple("round.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"id", "pipeline", "entrants", "created"});
    return kOk;
  }
  if (name == "round show") {
    need(o, 2, cmd, c);
    req.set("competition", o.pos[0]);
    req.set("id", o.pos[1]);
    auto r = simple("round.show");
    if (o.json) return print_json(r), kOk;
    std::printf("round %s/%s  pipeline %s%s\n", o.pos[0].c_str(), o.pos[1].c_str(), r.get_string("pipeline").c_str(),
                r.get_string("from_round").empty() ? "" : (", from " + r.get_string("from_round")).c_str());
    if (auto* rules = r.find("rules"); rules && rules->is_map()) std::printf("rules: %s\n", evald::to_json(*rules).c_str());
    std::vector<std::vector<std::string>> rows;
    if (auto* es = r.find("entrants"); es && es->is_array())
      for (auto& e : es->as_array()) {
        const Value* j = r.find("joined") ? r.find("joined")->find(e.as_string()) : nullptr;
        rows.push_back({e.as_string(), j ? j->get_string("via") : "", j ? j->get_string("at") : ""});
      }
    table({"ENTRANT", "VIA", "JOINED"}, rows);
    if (auto* call = r.find("call"); call && call->is_map())
      std::printf("additional call: %s (opened %s%s)\n", call->get_string("state").c_str(), call->get_string("opened").c_str(),
                  call->get_string("state") == "open" ? (call->get_string("closes").empty() ? "" : ", closes " + call->get_string("closes")).c_str()
                                                     : (", closed " + call->get_string("closed")).c_str());
    if (auto* d = r.find("decision"); d && d->is_map())
      std::printf("decided from %s at %s by %s\n  advance: %s\n  eliminated: %s\n  disqualified: %s\n", d->get_string("run").c_str(),
                  d->get_string("decided_at").c_str(), d->get_string("decided_by").c_str(), cell(d->find("advance")).c_str(),
                  cell(d->find("eliminated")).c_str(), cell(d->find("disqualified")).c_str());
    else
      std::printf("not decided yet\n");
    return kOk;
  }
  if (name == "call open" || name == "call close") {
    need(o, 2, cmd, c);
    req.set("competition", o.pos[0]);
    req.set("round", o.pos[1]);
    if (o.has("--closes")) req.set("closes", o.get("--closes"));
    auto r = simple(name == "call open" ? "call.open" : "call.close");
    if (o.json) return print_json(r), kOk;
    if (name == "call open")
      std::printf("additional call for %s/%s open%s: entrant add %s ID --round %s\n", o.pos[0].c_str(), o.pos[1].c_str(),
                  r.get_string("closes").empty() ? "" : (" until " + r.get_string("closes")).c_str(), o.pos[0].c_str(), o.pos[1].c_str());
    else
      std::printf("additional call for %s/%s closed\n", o.pos[0].c_str(), o.pos[1].c_str());
    return kOk;
  }
  if (name == "entrant add") {
    need(o, 2, cmd, c);
    req.set("competition", o.pos[0]);
    req.set("id", o.pos[1]);
    if (o.has("--name")) req.set("name", o.get("--name"));
    if (o.has("--round")) req.set("round", o.get("--round"));
    if (o.has("--set")) {
      Value sub = evald::Map{};
      for (auto& kv : o.flags.at("--set")) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) c.die(kUsage, "--set expects KEY=VALUE, got \"" + kv + "\"");
        sub.set(kv.substr(0, eq), kv.substr(eq + 1));
      }
      req.set("submission", sub);
    }
    auto r = simple("entrant.add");
    if (o.json) return print_json(r), kOk;
    std::printf("entrant %s (%s)%s\n", r.get_string("id").c_str(), r.get_string("name").c_str(),
                o.has("--round") ? (" in round " + o.get("--round") + ": " + r.get_string("via")).c_str() : " registered");
    return kOk;
  }
  if (name == "entrant list") {
    need(o, 1, cmd, c);
    req.set("competition", o.pos[0]);
    auto r = simple("entrant.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"id", "name", "submission"});
    return kOk;
  }
  if (name == "run list") {
    auto r = simple("run.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"id", "competition", "round", "pipeline", "state", "created", "finished"});
    return kOk;
  }
  if (name == "run status") {
    need(o, 1, cmd, c);
    req.set("run", o.pos[0]);
    auto r = simple("run.status");
    if (o.json) return print_json(r), kOk;
    print_counters(r);
    if (o.has("--jobs")) {
      std::printf("\n");
      rows_of(*r.find("jobs"), {"stage", "unit", "state", "attempt", "inputs", "outputs", "reused_from", "error"});
    }
    return kOk;
  }
  if (name == "run outputs") {
    need(o, 1, cmd, c);
    req.set("run", o.pos[0]);
    if (o.has("--stage")) req.set("stage", o.get("--stage"));
    auto r = simple("run.outputs");
    if (o.json) return print_json(r), kOk;
    std::vector<std::vector<std::string>> rows;
    for (auto& m : r.as_array()) {
      auto* env = m.find("envelope");
      rows.push_back({env->get_string("stage"), cell(env->find("entrant")), m.get_string("kind"), evald::to_json(*m.find("payload"))});
    }
    table({"STAGE", "ENTRANT", "KIND", "PAYLOAD"}, rows);
    return kOk;
  }
  if (name == "run start" || name == "run wait") {
    std::string run;
    if (name == "run start") {
      need(o, 2, cmd, c);
      req.set("competition", o.pos[0]);
      req.set("round", o.pos[1]);
      if (o.has("--reuse") != o.has("--rerun")) c.die(kUsage, "--reuse RUN and --rerun STAGE[,STAGE...] go together; usage: " + cmd.usage);
      if (o.has("--reuse")) {
        req.set("reuse_run", o.get("--reuse"));
        Value stages = evald::Array{};
        for (auto& list : o.flags.at("--rerun"))
          for (size_t at = 0; at <= list.size();) {
            size_t comma = std::min(list.find(',', at), list.size());
            if (comma > at) stages.push_back(list.substr(at, comma - at));
            at = comma + 1;
          }
        req.set("rerun", stages);
      }
      auto r = simple("run.start");
      run = r.get_string("run");
      if (!o.has("--wait")) {
        if (o.json) return print_json(r), kOk;
        std::printf("%s\n", run.c_str());
        return kOk;
      }
    } else {
      need(o, 1, cmd, c);
      run = o.pos[0];
    }
    double limit = o.has("--timeout") ? std::stod(o.get("--timeout")) : 1e12;
    auto t0 = std::chrono::steady_clock::now();
    bool tty = isatty(STDOUT_FILENO) && !o.json;
    while (true) {
      Value q;
      q.set("op", "run.status");
      q.set("run", run);
      auto st = c.call(q);
      std::string state = st.get_string("state");
      if (tty) {
        int64_t jobs = 0, fin = 0;
        for (auto& s : st.find("stage_counters")->as_array()) {
          jobs += s.get_int("jobs");
          fin += s.get_int("done") + s.get_int("failed") + s.get_int("skipped");
        }
        std::string live;
        for (auto& j : st.find("jobs")->as_array())
          if (auto* p = j.find("progress"))
            live += "  " + j.get_string("stage") + "/" + j.get_string("unit") + " " + evalctl::progress_bar(p->get_double("done"), p->get_double("total"));
        std::printf("\r%s %s %lld/%lld jobs final%s\033[K", run.c_str(), evalctl::progress_bar(double(fin), double(std::max<int64_t>(jobs, 1))).c_str(),
                    (long long)fin, (long long)jobs, live.c_str());
        std::fflush(stdout);
      }
      if (state != "running") {
        if (tty) std::printf("\n");
        if (o.json) print_json(st);
        else print_counters(st);
        return state == "done" ? kOk : kRunFailed;
      }
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > limit)
        c.die(kFailed, "run " + run + " still running after " + o.get("--timeout") + " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (name == "run watch") {
    need(o, 1, cmd, c);
    const std::string run = o.pos[0];
    const double limit = o.has("--timeout") ? std::stod(o.get("--timeout")) : 1e12;
    const bool tty = isatty(STDOUT_FILENO) && !o.json;
    const auto t0 = std::chrono::steady_clock::now();
    evalctl::RunWatch watch;
    size_t drawn = 0;
    while (true) {
      Value q;
      q.set("op", "run.status");
      q.set("run", run);
      const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto changes = watch.update(c.call(q), now);
      if (tty) {
        winsize ws{};
        size_t width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col - 1 : 100;
        size_t rows = ws.ws_row > 12 ? ws.ws_row : 24;
        auto lines = watch.frame(width, rows - 8);
        if (drawn) std::printf("\033[%zuA", drawn);
        for (auto& l : lines) std::printf("\r%s\033[K\n", l.c_str());
        for (size_t i = lines.size(); i < drawn; ++i) std::printf("\r\033[K\n");  // what a longer frame left
        drawn = std::max(drawn, lines.size());
      } else if (!o.json) {
        for (auto& l : changes) std::printf("%8s  %s\n", evalctl::format_duration(now).c_str(), l.c_str());
      }
      std::fflush(stdout);
      if (watch.state() != "running") {
        if (o.json) print_json(watch.status());
        else std::printf("\n"), print_counters(watch.status());
        return watch.state() == "done" ? kOk : kRunFailed;
      }
      if (now > limit) c.die(kFailed, "run " + run + " still running after " + o.get("--timeout") + " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  if (name == "audit verify") {
    auto r = simple("audit.verify");
    if (o.json) print_json(r);
    else if (r.get_bool("ok"))
      std::printf("audit log intact: %lld entries, head %s\n", (long long)r.get_int("entries"), r.get_string("head").c_str());
    else
      std::printf("AUDIT LOG BROKEN after %lld good entries: %s\n", (long long)r.get_int("entries"), r.get_string("problem").c_str());
    return r.get_bool("ok") ? kOk : kFailed;
  }
  if (name == "audit list") {
    if (o.has("--from")) req.set("from", std::stoll(o.get("--from")));
    if (o.has("--limit")) req.set("limit", std::stoll(o.get("--limit")));
    auto r = simple("audit.list");
    if (o.json) return print_json(r), kOk;
    rows_of(r, {"seq", "time", "actor", "action", "detail"});
    return kOk;
  }
  if (name == "intake open" || name == "intake close" || name == "intake status") {
    need(o, name == "intake status" ? 2 : 3, cmd, c);
    req.set("competition", o.pos[0]);
    req.set("round", o.pos[1]);
    if (o.pos.size() > 2) req.set("channel", o.pos[2]);
    if (o.has("--closes")) req.set("closes", o.get("--closes"));
    auto r = simple(name == "intake open" ? "intake.open" : name == "intake close" ? "intake.close" : "intake.status");
    if (o.json) return print_json(r), kOk;
    if (name == "intake status") {
      rows_of(r, {"channel", "state", "count", "opened", "opened_by", "closes", "closed"});
    } else {
      std::printf("intake %s of %s/%s is %s%s (%lld records stored)\n", r.get_string("channel").c_str(), o.pos[0].c_str(),
                  o.pos[1].c_str(), r.get_string("state").c_str(),
                  r.get_string("closes").empty() ? "" : (" until " + r.get_string("closes")).c_str(), (long long)r.get_int("count"));
    }
    return kOk;
  }
  if (name == "intake submit") {
    need(o, 4, cmd, c);
    size_t batch = 1000;
    if (o.has("--batch")) {
      try {
        batch = size_t(std::clamp(std::stol(o.get("--batch")), 1L, 10000L));
      } catch (...) {
        c.die(kUsage, "--batch expects a number of records (1-10000)");
      }
    }
    int64_t accepted = 0, duplicates = 0, rejected = 0, count = 0;
    Array rejections;
    for (size_t fi = 3; fi < o.pos.size(); ++fi) {
      const std::string& path = o.pos[fi];
      auto file = path == "-" ? evald::text::parse_records(std::string(std::istreambuf_iterator<char>(std::cin), {}), "<stdin>", "jsonl")
                              : evald::text::read_records(path);
      if (!file) c.die(kFailed, file.error());
      auto& recs = file->records;
      for (size_t at = 0; at < recs.size(); at += batch) {
        size_t end = std::min(recs.size(), at + batch);
        Array records;
        std::vector<size_t> sent;  // index in recs of each record sent
        for (size_t i = at; i < end; ++i) {
          if (!recs[i].defect.empty()) {
            ++rejected;
            Value x;
            x.set("where", file->path + ":" + std::to_string(recs[i].line));
            x.set("reason", recs[i].defect);
            rejections.push_back(std::move(x));
            continue;
          }
          records.push_back(recs[i].fields);
          sent.push_back(i);
        }
        Value rq;
        rq.set("op", "intake.submit");
        rq.set("competition", o.pos[0]);
        rq.set("round", o.pos[1]);
        rq.set("channel", o.pos[2]);
        rq.set("records", std::move(records));
        auto r = c.call(rq);
        accepted += r.get_int("accepted");
        duplicates += r.get_int("duplicates");
        count = r.get_int("count");
        if (auto* rj = r.find("rejected"); rj && rj->is_array())
          for (auto& x : rj->as_array()) {
            ++rejected;
            size_t idx = size_t(x.get_int("index"));
            Value y;
            y.set("where", file->path + ":" + std::to_string(idx < sent.size() ? recs[sent[idx]].line : 0));
            y.set("id", x.get_string("id"));
            y.set("reason", x.get_string("reason"));
            rejections.push_back(std::move(y));
          }
        if (!o.json && isatty(fileno(stderr)))
          std::fprintf(stderr, "\r%s %zu/%zu records of %s", evalctl::progress_bar(double(end), double(recs.size())).c_str(), end, recs.size(), path.c_str());
      }
      if (!o.json && isatty(fileno(stderr))) std::fprintf(stderr, "\n");
    }
    Value out;
    out.set("accepted", accepted);
    out.set("duplicates", duplicates);
    out.set("rejected", rejected);
    out.set("count", count);
    out.set("rejections", std::move(rejections));
    if (o.json) {
      print_json(out);
    } else {
      std::printf("%lld accepted, %lld duplicates (already stored), %lld rejected; %lld records in %s\n", (long long)accepted,
                  (long long)duplicates, (long long)rejected, (long long)count, o.pos[2].c_str());
      for (auto& x : out.find("rejections")->as_array())
        std::printf("  rejected %s%s: %s\n", x.get_string("where").c_str(),
                    x.get_string("id").empty() ? "" : (" (id " + x.get_string("id") + ")").c_str(), x.get_string("reason").c_str());
    }
    return rejected ? kFailed : kOk;
  }
  if (name == "decision record") {
    need(o, 4, cmd, c);
    if (!o.has("--reason")) c.die(kUsage, "--reason TEXT is required: every decision is recorded with its reason");
    req.set("competition", o.pos[0]);
    req.set("round", o.pos[1]);
    req.set("entrant", o.pos[2]);
    req.set("decision", o.pos[3]);
    req.set("reason", o.get("--reason"));
    auto r = simple("decision.record");
    if (o.json) return print_json(r), kOk;
    std::printf("decision %s recorded: %s %s (%s); rerun the round's tally to apply it\n", r.get_string("id").c_str(),
                r.get_string("entrant").c_str(), r.get_string("decision").c_str(), r.get_string("reason").c_str());
    return kOk;
  }
  if (name == "shutdown") {
    auto r = simple("shutdown");
    if (o.json) return print_json(r), kOk;
    std::printf("evald is draining and will stop\n");
    return kOk;
  }
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  std::vector<std::string> args(argv + 1, argv + argc);
  // Flags that take a value; everything else starting with -- is a switch.
  static const std::vector<std::string> kValued = {"--data-dir", "--socket", "--timeout", "--name", "--round", "--set",
                                                   "--pipeline", "--stage", "--from", "--limit", "--closes", "--batch", "--reason", "--key", "--run", "--from-round", "--at", "--cron", "--catch-up", "--out", "--lang", "--base", "--reuse", "--rerun"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--json") o.json = true;
    else if (a.rfind("--", 0) == 0) {
      bool valued = std::find(kValued.begin(), kValued.end(), a) != kValued.end();
      if (valued) {
        if (i + 1 >= args.size()) {
          std::fprintf(stderr, "evalctl: %s needs a value\n", a.c_str());
          return kUsage;
        }
        o.flags[a].push_back(args[++i]);
      } else {
        o.flags[a];
      }
    } else {
      o.pos.push_back(a);
    }
  }
  if (o.has("--data-dir")) o.data_dir = o.get("--data-dir");
  o.endpoint = o.has("--socket") ? o.get("--socket") : "ipc://" + o.data_dir + "/control.sock";
  if (o.has("--timeout") && o.pos.size() > 0 && o.pos[0] != "run") {
    try {
      o.timeout_s = std::max(1, std::stoi(o.get("--timeout")));
    } catch (...) {
      std::fprintf(stderr, "evalctl: --timeout expects seconds\n");
      return kUsage;
    }
  }
  if (o.pos.empty()) {
    std::fputs(kMain, o.help ? stdout : stderr);
    return o.help ? kOk : kUsage;
  }
  const Command* cmd = nullptr;
  for (auto& c : kCommands) {
    if (o.pos.size() < c.words.size()) continue;
    if (std::equal(c.words.begin(), c.words.end(), o.pos.begin())) {
      cmd = &c;
      break;
    }
  }
  if (!cmd) {
    std::fprintf(stderr, "evalctl: unknown command \"%s\" (see evalctl --help)\n", o.pos[0].c_str());
    return kUsage;
  }
  if (o.help) {
    std::printf("Usage: %s\n\n%s\n", cmd->usage.c_str(), cmd->help.c_str());
    return kOk;
  }
  o.pos.erase(o.pos.begin(), o.pos.begin() + long(cmd->words.size()));
  static const std::map<std::string, std::vector<std::string>> kAllowed = {
      {"competition create", {"--name"}}, {"competition report", {"--out", "--lang"}}, {"round create", {"--pipeline", "--from-round"}}, {"round decide", {"--run", "--reason"}}, {"round schedule", {"--at", "--cron", "--catch-up"}}, {"entrant add", {"--name", "--round", "--set"}},
      {"run start", {"--wait", "--timeout", "--reuse", "--rerun"}}, {"run wait", {"--timeout"}}, {"run watch", {"--timeout"}}, {"call open", {"--closes"}}, {"run status", {"--jobs"}},
      {"run outputs", {"--stage"}}, {"audit list", {"--from", "--limit"}}, {"intake open", {"--closes"}},
      {"intake submit", {"--batch"}}, {"decision record", {"--reason"}}, {"report verify", {"--key", "--base"}}};
  std::string key = cmd->words.size() > 1 ? cmd->words[0] + " " + cmd->words[1] : cmd->words[0];
  for (auto& [f, _] : o.flags) {
    if (f == "--data-dir" || f == "--socket" || f == "--timeout") continue;
    auto it = kAllowed.find(key);
    if (it == kAllowed.end() || std::find(it->second.begin(), it->second.end(), f) == it->second.end()) {
      std::fprintf(stderr, "evalctl: %s does not take %s; usage: %s\n", key.c_str(), f.c_str(), cmd->usage.c_str());
      return kUsage;
    }
  }
  if (key == "report verify") {
    if (o.pos.empty()) {
      std::fprintf(stderr, "evalctl: missing arguments; usage: %s\n", cmd->usage.c_str());
      return kUsage;
    }
    auto r = evald::report::verify_report(o.pos[0], o.get("--key"), o.get("--base"));
    if (!r) {
      std::fprintf(stderr, "evalctl: %s\n", r.error().c_str());
      return kFailed;
    }
    if (o.json) print_json(*r);
    else std::fputs(evald::report::format_verification(*r).c_str(), stdout);
    return r->get_bool("ok") ? kOk : kFailed;
  }
  Client client(o);
  return run_command(*cmd, o, client);
}
