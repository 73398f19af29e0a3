#include "runner.hpp"

#include "json.hpp"
#include "loglikelihood.hpp"
#include "records.hpp"
#include "scoring.hpp"

#include <chrono>
#include <cmath>
#include <map>
#include <set>

namespace evald::bench {

namespace {

using Clock = std::chrono::steady_clock;
// 2: log-likelihoods found by tokens (version 1 read text offsets, wrong on real servers).
constexpr int kRecordVersion = 2;

std::string h16(std::string_view s) { return text::sha256_hex(s).substr(0, 16); }

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One answered request, parsed.
struct Reply {
  std::string text;                 // generated text
  EchoReply echo;                   // echo requests: the echoed tokens
  size_t count = 0;                 // the context's token count request
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double latency_s = 0;
  int attempts = 0;
  std::string error;
};

// A unit: one item in one choice order (rotation), answered by one request (generation) or
// one request per choice plus one counting the context's tokens (log-likelihood).
struct Unit {
  const Item* item = nullptr;
  size_t rotation = 0;
  std::vector<std::string> choices;  // rotated
  int answer = -1;                   // index of the right choice after rotation
  std::string prompt;
  std::string key;
  size_t pending = 0;
  std::vector<Reply> replies;
  Reply context;
  std::string name() const { return item->id + (rotation ? "#r" + std::to_string(rotation) : ""); }
};

const text::Json* path(const text::Json& j, std::initializer_list<const char*> keys) {
  const text::Json* cur = &j;
  for (const char* k : keys) {
    if (!cur) return nullptr;
    if (k[0] == '#') {
      size_t idx = size_t(std::atoi(k + 1));
      if (!cur->is_array() || cur->items().size() <= idx) return nullptr;
      cur = &cur->items()[idx];
    } else {
      cur = cur->find(k);
    }
  }
  return cur;
}

Reply base_reply(const HttpOutcome& o) {
  Reply r;
  r.latency_s = o.latency_s;
  r.attempts = o.attempts;
  r.error = o.error;
  return r;
}

// Parses an OpenAI completions / chat completions answer to a generation request.
Reply parse_generation(const HttpOutcome& o, bool chat) {
  Reply r = base_reply(o);
  if (!o.ok()) return r;
  text::Json j;
  text::JsonError e;
  if (!text::parse_json(o.body, &j, &e)) {
    r.error = "response is not JSON (byte " + std::to_string(e.offset) + ": " + e.message + "): \"" + o.body.substr(0, 80) + "\"";
    return r;
  }
  if (auto* u = j.find("usage")) {
    if (auto* p = u->find("prompt_tokens"); p && p->is_uint()) r.prompt_tokens = int64_t(p->as_uint());
    if (auto* c = u->find("completion_tokens"); c && c->is_uint()) r.completion_tokens = int64_t(c->as_uint());
  }
  const text::Json* text = chat ? path(j, {"choices", "#0", "message", "content"}) : path(j, {"choices", "#0", "text"});
  if (!text || !text->is_string()) {
    r.error = std::string("response has no ") + (chat ? "choices[0].message.content" : "choices[0].text") + " string: \"" + o.body.substr(0, 120) + "\"";
    return r;
  }
  r.text = text->str();
  return r;
}

// Parses the answer to the echo request of prompt.
Reply parse_echo(const HttpOutcome& o, const std::string& prompt) {
  Reply r = base_reply(o);
  if (!o.ok()) return r;
  auto e = read_echo_reply(o.body, prompt);
  if (!e) {
    r.error = e.error();
    return r;
  }
  if (!e->no_logprobs.empty()) r.error = "the endpoint returned no prompt logprobs (" + e->no_logprobs + ")";
  r.prompt_tokens = e->prompt_tokens;
  r.completion_tokens = e->completion_tokens;
  r.echo = std::move(*e);
  return r;
}

// The context of a log-likelihood unit: its prompt less trailing whitespace, which lm-eval
// moves to the continuation.
std::string_view context_of(const Unit& u) { return std::string_view(u.prompt).substr(0, context_split(u.prompt)); }

constexpr const char* kBoundaryRule =
    "lm-evaluation-harness: the context's trailing whitespace moves to the continuation; the continuation's tokens are the "
    "tokens of context + continuation after as many tokens as the context alone has; where the context's last token merges "
    "with the continuation's first (boundary \"merged\"), the merged token counts as context";

// How a suite's multiple-choice items are scored on this endpoint, decided once per model and
// decoding and kept in plugin state.
struct Method {
  std::string name = "generate";  // logprobs or generate
  std::string why;                // auto: what the probe found
  TokenCounter counter;           // logprobs: how the context's tokens are counted
  Value to_value() const {
    Value v;
    v.set("name", name);
    v.set("why", why);
    v.set("context_tokens", counter.shape);
    return v;
  }
  static Method from(const Value& v) {
    Method m;
    m.name = v.get_string("name");
    m.why = v.get_string("why");
    m.counter.shape = v.get_string("context_tokens", "echo");
    return m;
  }
};

Result<Method> choose_method(const Suite& suite, const Unit& first, HttpClient& client, KvStore& kv, const RunOptions& opt,
                             const std::string& model_id, const EchoParams& echo) {
  Method m;
  if (suite.task != TaskType::MultipleChoice || opt.decoding.api == "chat" || opt.decoding.scoring == "generate") {
    m.why = suite.task != TaskType::MultipleChoice ? "not multiple choice"
            : opt.decoding.api == "chat"           ? "chat completions return no prompt logprobs"
                                                   : "config.scoring: generate";
    return m;
  }
  std::string key = "probe/" + model_id + "/" + h16(to_json(opt.decoding.to_value()) + "\n" + opt.context_tokens) + "/v2";
  if (auto got = kv.get(key)) {
    if (auto v = msgpack::decode(*got); v && v->is_map()) return Method::from(*v);
  }
  std::vector<std::string> prompts;
  for (size_t c = 0; c < first.choices.size(); ++c) prompts.push_back(first.prompt + suite.answer_prefix + letter(c));
  auto setup = probe_loglikelihood(client, echo, opt.context_tokens, prompts, opt.cancelled);
  if (!setup) return Status::error(suite.key() + ": " + setup.error());
  if (!setup->available) {
    if (opt.decoding.scoring == "logprobs")
      return Status::error(suite.key() + ": config.scoring is logprobs, but " + client.endpoint().url() + " gives " + setup->why);
    m.why = setup->why;
  } else {
    m.name = "logprobs";
    m.counter = setup->counter;
    m.why = "the endpoint echoes prompt logprobs that spell the prompt; context tokens counted by " + m.counter.describe() + ": " + setup->why;
  }
  if (auto st = kv.put(key, msgpack::encode(m.to_value())); !st) return st;
  return m;
}

// A log-likelihood unit's record fields: every choice's summed logprob, token count, tokens
// and boundary; an error names the choice.
Result<Value> score_by_logprobs(const Unit& u, const Suite& suite) {
  Value rec;
  std::set<std::string> conventions;
  Array lps, scored;
  int best = -1;
  bool tie = false;
  const std::string_view context = context_of(u);
  for (size_t c = 0; c < u.replies.size(); ++c) {
    const std::string cont = suite.answer_prefix + letter(c);
    auto& r = u.replies[c];
    auto a = align_echo(r.echo.tokens, u.prompt + cont);
    if (!a) return Status::error("choice " + letter(c) + ": " + a.error());
    auto s = score_continuation(r.echo.tokens, *a, u.context.count, context.size());
    if (!s) return Status::error("choice " + letter(c) + ": " + s.error());
    conventions.insert(a->conventions.begin(), a->conventions.end());
    Value row;
    row.set("choice", letter(c));
    row.set("continuation", std::string(std::string_view(u.prompt).substr(context.size())) + cont);
    row.set("logprob", s->logprob);
    row.set("tokens", int64_t(s->tokens));
    row.set("token_texts", Array(s->texts.begin(), s->texts.end()));
    row.set("boundary", s->merged ? "merged" : "clean");
    scored.push_back(std::move(row));
    lps.push_back(s->logprob);
    if (best >= 0 && std::abs(s->logprob - lps[size_t(best)].as_double()) <= 1e-9 * std::max(1.0, std::abs(s->logprob))) tie = true;
    else if (best < 0 || s->logprob > lps[size_t(best)].as_double()) {
      best = int(c);
      tie = false;
    }
  }
  rec.set("context_tokens", int64_t(u.context.count));
  rec.set("choice_logprobs", std::move(lps));
  rec.set("choices_scored", std::move(scored));
  rec.set("tie", tie);
  rec.set("extracted", letter(size_t(best)));
  rec.set("echo_conventions", Array(conventions.begin(), conventions.end()));
  return rec;
}

// Flags a suite whose answers say more about the scoring than the model: the best choices
// tie on more than max_tie_share of units, or every answer is the same letter while the right
// answers vary.
Array degenerate_flags(const std::vector<Unit>& units, const std::vector<Value>& records, double max_tie_share) {
  Array flags;
  if (units.size() < 2 || units[0].choices.empty()) return flags;
  size_t ties = 0;
  std::map<std::string, size_t> answered, right;
  for (size_t i = 0; i < units.size(); ++i) {
    ties += records[i].get_bool("tie");
    answered[records[i].get_string("extracted")]++;
    right[letter(size_t(units[i].answer))]++;
  }
  double share = double(ties) / double(units.size());
  if (ties > 0 && share > max_tie_share) {
    Value f;
    f.set("flag", "ties");
    f.set("message", "the best choices tie on " + std::to_string(ties) + " of " + std::to_string(units.size()) +
                         " units (more than max_tie_share " + std::to_string(max_tie_share) + "): ties go to the first choice, so these answers are not the model's");
    f.set("units", int64_t(ties));
    f.set("share", share);
    flags.push_back(std::move(f));
  }
  if (answered.size() == 1 && right.size() > 1) {
    std::string dist;
    for (auto& [l, n] : right) dist += (dist.empty() ? "" : ", ") + l + ": " + std::to_string(n);
    const std::string& only = answered.begin()->first;
    Value f;
    f.set("flag", "one_letter");
    f.set("message", "every one of the " + std::to_string(units.size()) + " answers is " + (only.empty() ? "without a letter" : "\"" + only + "\"") +
                         " while the right answers vary (" + dist + ")");
    f.set("letter", only);
    flags.push_back(std::move(f));
  }
  return flags;
}

}  // namespace

std::optional<Bytes> MemoryKv::get(const std::string& key) {
  auto it = m_.find(key);
  return it == m_.end() ? std::nullopt : std::optional<Bytes>(it->second);
}

Status MemoryKv::put(const std::string& key, const Bytes& value) {
  m_[key] = value;
  return {};
}

Value Decoding::to_value() const {
  Value v;
  v.set("api", api);
  v.set("scoring", scoring);
  v.set("temperature", temperature);
  v.set("seed", seed);
  v.set("max_tokens", int64_t(max_tokens));
  v.set("logprob_max_tokens", int64_t(logprob_max_tokens));
  return v;
}

std::string model_identity(const std::string& endpoint_url, const std::string& model) { return h16(endpoint_url + "\n" + model); }


namespace {

std::vector<Unit> build_units(const Suite& suite) {
  const bool mc = suite.task == TaskType::MultipleChoice;
  std::vector<Unit> units;
  for (auto& item : suite.items) {
    size_t rotations = mc && suite.debias_rotate ? item.choices.size() : 1;
    for (size_t r = 0; r < rotations; ++r) {
      Unit u;
      u.item = &item;
      u.rotation = r;
      if (mc) {
        u.choices = rotate_choices(item.choices, r);
        u.answer = int((size_t(item.answer) + item.choices.size() - r) % item.choices.size());
      }
      u.prompt = render_prompt(suite, item, u.choices);
      units.push_back(std::move(u));
    }
  }
  return units;
}

// The record of a unit whose replies have all come; an error names the unit.
Result<Value> record_of(const Unit& u, const Suite& suite, const Method& method) {
  const bool mc = suite.task == TaskType::MultipleChoice;
  Value rec;
  int64_t pt = 0, ct = 0;
  int attempts = u.context.attempts;
  Array lat;
  if (method.name == "logprobs" && !u.context.error.empty()) return Status::error(u.name() + ": counting the context's tokens: " + u.context.error);
  for (auto& r : u.replies) {
    if (!r.error.empty()) return Status::error(u.name() + ": " + r.error);
    pt += r.prompt_tokens;
    ct += r.completion_tokens;
    attempts += r.attempts;
    lat.push_back(r.latency_s);
  }
  std::string extracted, response;
  bool correct = false;
  if (method.name == "logprobs") {
    auto scored = score_by_logprobs(u, suite);
    if (!scored) return Status::error(u.name() + ": " + scored.error());
    rec = std::move(*scored);
    extracted = rec.get_string("extracted");
    response = extracted;
    correct = extracted == letter(size_t(u.answer));
  } else {
    response = u.replies[0].text;
    if (mc) {
      int l = extract_letter(response, u.choices.size());
      extracted = l >= 0 ? letter(size_t(l)) : "";
      correct = l >= 0 && l == u.answer;
    } else {
      correct = grade_text(suite, *u.item, response, &extracted);
    }
  }
  rec.set("record_version", kRecordVersion);
  rec.set("suite", suite.key());
  rec.set("item", u.item->id);
  rec.set("category", u.item->category);
  rec.set("rotation", int64_t(u.rotation));
  rec.set("prompt_sha256", text::sha256_hex(u.prompt));
  rec.set("method", method.name);
  rec.set("response", response);
  rec.set("extracted", extracted);
  if (mc) rec.set("answer", letter(size_t(u.answer)));
  rec.set("correct", correct);
  rec.set("latencies_s", std::move(lat));
  rec.set("prompt_tokens", pt);
  rec.set("completion_tokens", ct);
  rec.set("attempts", int64_t(attempts));
  rec.set("at_ms", unix_ms());
  return rec;
}

// Throughput is measured on the units run now; a run that found everything stored reports
// the figures of the last run that did work.
Result<Value> throughput_of(KvStore& kv, const std::string& key, size_t units_run, size_t requests, int64_t completion_tokens, double wall) {
  Value throughput;
  if (units_run > 0 && wall > 0) {
    throughput.set("items_per_s", double(units_run) / wall);
    throughput.set("output_tokens_per_s", double(completion_tokens) / wall);
    throughput.set("wall_s", wall);
    throughput.set("items_measured", int64_t(units_run));
    throughput.set("requests", int64_t(requests));
    throughput.set("concurrency_note", "items (rotations count as items) per wall second of this job's requests");
    if (auto st = kv.put(key, msgpack::encode(throughput)); !st) return st;
    throughput.set("measured", "this run");
    return throughput;
  }
  auto stored = kv.get(key);
  auto earlier = stored ? msgpack::decode(*stored) : Result<Value>(Status::error("none"));
  if (!earlier) {
    throughput.set("measured", "none");
    return throughput;
  }
  throughput = std::move(*earlier);
  throughput.set("measured", "an earlier run (every item was stored)");
  return throughput;
}

// How log-likelihoods were read, over every record (stored ones included).
Value loglikelihood_summary(const Method& method, const std::vector<Value>& records) {
  Value ll;
  std::set<std::string> conventions;
  int64_t merged = 0;
  for (auto& r : records) {
    if (auto* c = r.find("echo_conventions"))
      for (auto& x : c->as_array()) conventions.insert(x.as_string());
    bool any = false;
    if (auto* sc = r.find("choices_scored"))
      for (auto& row : sc->as_array()) any = any || row.get_string("boundary") == "merged";
    merged += any;
  }
  ll.set("context_tokens", method.counter.describe());
  ll.set("context_tokens_by", method.counter.shape);
  ll.set("boundary_rule", kBoundaryRule);
  ll.set("units_with_merged_boundary", merged);
  ll.set("echo_conventions", Array(conventions.begin(), conventions.end()));
  return ll;
}

// The files a suite's result was computed from, hashed as read.
void describe_inputs(const Suite& suite, Value& out) {
  Array files;
  for (auto& f : suite.files) {
    Value fv;
    fv.set("path", f.path);
    fv.set("format", f.format);
    fv.set("sha256", f.sha256);
    fv.set("items", int64_t(f.items));
    files.push_back(std::move(fv));
  }
  if (!suite.few_shot_file.path.empty()) {
    Value fv;
    fv.set("path", suite.few_shot_file.path);
    fv.set("format", "jsonl (few-shot)");
    fv.set("sha256", suite.few_shot_file.sha256);
    fv.set("items", int64_t(suite.few_shot_file.items));
    files.push_back(std::move(fv));
  }
  out.set("item_files", std::move(files));
  Value man;
  man.set("path", suite.manifest_path);
  man.set("sha256", suite.manifest_sha256);
  out.set("manifest", man);
}

// Accuracy blocks (plain on rotation 0, debiased when every rotation is right), categories
// and the suite's identity, from every unit's record.
Value summarize(const Suite& suite, const std::vector<Unit>& units, const std::vector<Value>& records, const std::string& method) {
  struct Tally {
    int64_t n = 0, plain = 0, debiased = 0;
  };
  std::map<std::string, Tally> cats;
  Tally all;
  std::vector<double> latencies;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  for (size_t i = 0; i < units.size();) {
    const Item* item = units[i].item;
    bool plain = records[i].get_bool("correct"), every = true;
    size_t j = i;
    for (; j < units.size() && units[j].item == item; ++j) {
      every = every && records[j].get_bool("correct");
      if (auto* l = records[j].find("latencies_s"))
        for (auto& x : l->as_array()) latencies.push_back(x.as_double());
      prompt_tokens += records[j].get_int("prompt_tokens");
      completion_tokens += records[j].get_int("completion_tokens");
    }
    for (Tally* t : {&all, &cats[item->category.empty() ? "(none)" : item->category]}) {
      ++t->n;
      t->plain += plain;
      t->debiased += every;
    }
    i = j;
  }
  auto acc_block = [&](Value& v, const Tally& t) {
    v.set("n", t.n);
    v.set("correct", t.plain);
    v.set("accuracy", t.n ? double(t.plain) / double(t.n) : 0.0);
    auto [lo, hi] = wilson_interval(double(t.plain), double(t.n));
    v.set("ci", Array{lo, hi});
    if (suite.debias_rotate) {
      v.set("debiased_correct", t.debiased);
      v.set("debiased_accuracy", t.n ? double(t.debiased) / double(t.n) : 0.0);
      auto [dlo, dhi] = wilson_interval(double(t.debiased), double(t.n));
      v.set("debiased_ci", Array{dlo, dhi});
    }
  };
  Value out;
  out.set("name", suite.name);
  out.set("version", suite.version);
  out.set("task", task_name(suite.task));
  out.set("language", suite.language);
  out.set("sample", suite.sample);
  out.set("method", method);
  acc_block(out, all);
  out.set("score", suite.debias_rotate ? out.get_double("debiased_accuracy") : out.get_double("accuracy"));
  out.set("score_is", suite.debias_rotate ? "debiased_accuracy" : "accuracy");
  Array cat_rows;
  for (auto& [name, t] : cats) {
    Value c;
    c.set("name", name);
    acc_block(c, t);
    cat_rows.push_back(std::move(c));
  }
  out.set("categories", std::move(cat_rows));
  Value lat;
  lat.set("n", int64_t(latencies.size()));
  lat.set("p50", percentile(latencies, 50));
  lat.set("p95", percentile(latencies, 95));
  lat.set("p99", percentile(latencies, 99));
  out.set("latency_s", lat);
  Value tokens;
  tokens.set("prompt", prompt_tokens);
  tokens.set("completion", completion_tokens);
  out.set("tokens", tokens);
  return out;
}

}  // namespace


Result<Value> run_suite(const Suite& suite, HttpClient& client, KvStore& kv, const RunOptions& opt) {
  const bool chat = opt.decoding.api == "chat";
  const std::string model_id = model_identity(client.endpoint().url(), opt.model);
  const int gen_tokens = opt.decoding.max_tokens > 0 ? opt.decoding.max_tokens : suite.max_tokens;
  const EchoParams echo{opt.model, opt.decoding.logprob_max_tokens, opt.decoding.temperature, opt.decoding.seed};

  auto generation_request = [&](const std::string& prompt) {
    Value b;
    b.set("model", opt.model);
    b.set("temperature", opt.decoding.temperature);
    b.set("seed", opt.decoding.seed);
    if (chat) {
      Value m;
      m.set("role", "user");
      m.set("content", prompt);
      b.set("messages", Array{m});
    } else {
      b.set("prompt", prompt);
    }
    b.set("max_tokens", int64_t(gen_tokens));
    if (!suite.stop.empty()) b.set("stop", Array(suite.stop.begin(), suite.stop.end()));
    return HttpRequest{chat ? "/chat/completions" : "/completions", to_json(b)};
  };

  std::vector<Unit> units = build_units(suite);
  if (units.empty()) return Status::error(suite.key() + ": the suite has no items");
  auto method = choose_method(suite, units.front(), client, kv, opt, model_id, echo);
  if (!method) return method.status();
  const bool by_logprobs = method->name == "logprobs";
  Value decoding = opt.decoding.to_value();
  decoding.set("method", method->name);
  decoding.set("max_tokens", int64_t(gen_tokens));
  decoding.set("stop", Array(suite.stop.begin(), suite.stop.end()));
  const std::string dec_hash = h16(to_json(decoding));

  // Cached units are taken as they are, when their prompt is still the same.
  std::vector<Value> records(units.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < units.size(); ++i) {
    auto& u = units[i];
    u.key = "item/" + suite.key() + "/" + model_id + "/" + dec_hash + "/" + u.name();
    if (auto got = kv.get(u.key)) {
      auto v = msgpack::decode(*got);
      if (v && v->get_string("prompt_sha256") == text::sha256_hex(u.prompt) && v->get_int("record_version") == kRecordVersion) {
        records[i] = std::move(*v);
        continue;
      }
    }
    todo.push_back(i);
  }

  // Requests: per unit, one generation, or one echo per choice and one context count.
  constexpr size_t kContext = SIZE_MAX;
  std::vector<HttpRequest> reqs;
  struct Slot {
    size_t unit, choice;
  };
  std::vector<Slot> slots;
  for (size_t i : todo) {
    auto& u = units[i];
    if (by_logprobs) {
      for (size_t c = 0; c < u.choices.size(); ++c) {
        reqs.push_back(echo.request(u.prompt + suite.answer_prefix + letter(c)));
        slots.push_back({i, c});
      }
      reqs.push_back(method->counter.request(echo, std::string(context_of(u))));
      slots.push_back({i, kContext});
      u.pending = u.choices.size() + 1;
      u.replies.resize(u.choices.size());
    } else {
      reqs.push_back(generation_request(u.prompt));
      slots.push_back({i, 0});
      u.pending = 1;
      u.replies.resize(1);
    }
  }

  std::vector<std::string> failures;
  size_t done_units = units.size() - todo.size();
  int64_t run_completion_tokens = 0;
  Status store_error;
  auto finish_unit = [&](size_t ui) {
    auto rec = record_of(units[ui], suite, *method);
    if (!rec) {
      failures.push_back(rec.error());
      return;
    }
    rec->set("model", opt.model);
    rec->set("endpoint", client.endpoint().url());
    rec->set("decoding", decoding);
    if (auto st = kv.put(units[ui].key, msgpack::encode(*rec)); !st && store_error.ok()) store_error = Status::error(units[ui].key + ": " + st.message());
    run_completion_tokens += rec->get_int("completion_tokens");
    records[ui] = std::move(*rec);
    ++done_units;
  };

  auto t0 = Clock::now();
  if (opt.progress) opt.progress(done_units, units.size());
  client.run(reqs, [&](size_t ri, HttpOutcome o) {
    auto& s = slots[ri];
    auto& u = units[s.unit];
    if (s.choice == kContext) {
      u.context = base_reply(o);
      auto n = method->counter.count(o, context_of(u));
      if (n) u.context.count = *n;
      else if (u.context.error.empty()) u.context.error = n.error();
    } else if (by_logprobs) {
      u.replies[s.choice] = parse_echo(o, u.prompt + suite.answer_prefix + letter(s.choice));
    } else {
      u.replies[0] = parse_generation(o, chat);
    }
    if (--u.pending == 0) {
      finish_unit(s.unit);
      if (opt.progress) opt.progress(done_units, units.size());
    }
  }, opt.cancelled);
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!store_error) return store_error;
  if (opt.cancelled && opt.cancelled()) return Status::error(suite.key() + ": cancelled (" + std::to_string(done_units) + " of " + std::to_string(units.size()) + " items stored)");
  if (!failures.empty()) {
    std::string msg = suite.key() + ": " + std::to_string(failures.size()) + " of " + std::to_string(units.size()) +
                      " items failed (the others are stored; a rerun retries only these): ";
    for (size_t i = 0; i < failures.size() && i < 5; ++i) msg += (i ? "; " : "") + failures[i];
    return Status::error(msg);
  }

  auto throughput = throughput_of(kv, "throughput/" + suite.key() + "/" + model_id + "/" + dec_hash, todo.size(), reqs.size(),
                                  run_completion_tokens, wall);
  if (!throughput) return throughput.status();

  Value out = summarize(suite, units, records, method->name);
  out.set("method_why", method->why);
  if (by_logprobs) out.set("loglikelihood", loglikelihood_summary(*method, records));
  if (suite.task == TaskType::MultipleChoice) out.set("flags", degenerate_flags(units, records, opt.max_tie_share));
  out.set("throughput", *throughput);
  out.set("decoding", decoding);
  out.set("decoding_sha256", text::sha256_hex(to_json(decoding)));
  out.set("model", opt.model);
  out.set("endpoint", client.endpoint().url());
  Value counts;
  counts.set("units", int64_t(units.size()));
  out.set("counts", counts);
  // How this job's work went, apart from what it found: a job resumed after a crash finds
  // part of its items stored. The results above are the same either way.
  Value execution;
  execution.set("cached", int64_t(units.size() - todo.size()));
  execution.set("run", int64_t(todo.size()));
  execution.set("requests", int64_t(reqs.size()));
  out.set("execution", execution);
  describe_inputs(suite, out);
  out.set("few_shot", int64_t(suite.few_shot));
  out.set("debias", suite.debias_rotate ? "rotate" : "none");
  // Every item's record, for the artifact (the plugin leaves them out of the message).
  out.set("records", Array(std::make_move_iterator(records.begin()), std::make_move_iterator(records.end())));
  return out;
}

}  // namespace evald::bench
