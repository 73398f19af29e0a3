#include "runner.hpp"

#include "json.hpp"
#include "records.hpp"
#include "scoring.hpp"

#include <chrono>
#include <cmath>
#include <map>

namespace evald::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRecordVersion = 1;

std::string h16(std::string_view s) { return text::sha256_hex(s).substr(0, 16); }

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One answered request, parsed.
struct Reply {
  std::string text;                 // generated text
  std::optional<double> logprob;    // sum over the continuation's tokens (echo requests)
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double latency_s = 0;
  int attempts = 0;
  std::string error;
};

// A unit: one item in one choice order (rotation), answered by one request (generation) or
// one request per choice (log-likelihood).
struct Unit {
  const Item* item = nullptr;
  size_t rotation = 0;
  std::vector<std::string> choices;  // rotated
  int answer = -1;                   // index of the right choice after rotation
  std::string prompt;
  std::string key;
  size_t pending = 0;
  std::vector<Reply> replies;
};

std::vector<std::string> rotate(const std::vector<std::string>& c, size_t r) {
  std::vector<std::string> out(c.size());
  for (size_t i = 0; i < c.size(); ++i) out[i] = c[(i + r) % c.size()];
  return out;
}

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

// Parses an OpenAI completions / chat completions answer. For echo requests, sums the
// logprobs of the tokens that reach past ctx_cp code points (the continuation) and start
// before full_cp (not the generated token of a max_tokens 1 request).
Reply parse_reply(const HttpOutcome& o, bool chat, bool echo, size_t ctx_cp, size_t full_cp) {
  Reply r;
  r.latency_s = o.latency_s;
  r.attempts = o.attempts;
  if (!o.ok()) {
    r.error = o.error;
    return r;
  }
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
  if (echo) {
    auto* lp = path(j, {"choices", "#0", "logprobs"});
    auto* toks = lp ? lp->find("tokens") : nullptr;
    auto* lps = lp ? lp->find("token_logprobs") : nullptr;
    auto* offs = lp ? lp->find("text_offset") : nullptr;
    if (!toks || !lps || !offs || !toks->is_array() || !lps->is_array() || !offs->is_array() ||
        toks->items().size() != lps->items().size() || offs->items().size() != toks->items().size())
      return r;  // no usable prompt logprobs: logprob stays empty
    double sum = 0;
    bool any = false;
    for (size_t i = 0; i < toks->items().size(); ++i) {
      auto& off = offs->items()[i];
      auto& tok = toks->items()[i];
      if (!off.is_number() || !tok.is_string()) return r;
      size_t start = size_t(off.as_double());
      size_t end = start + code_points(tok.str());
      if (end <= ctx_cp || start >= full_cp) continue;
      auto& l = lps->items()[i];
      if (!l.is_number()) return r;  // the first prompt token has none; a continuation token must
      sum += l.as_double();
      any = true;
    }
    if (any) r.logprob = sum;
  }
  return r;
}

}  // namespace

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

Result<Value> run_suite(const Suite& suite, HttpClient& client, KvStore& kv, const RunOptions& opt) {
  const bool mc = suite.task == TaskType::MultipleChoice;
  const bool chat = opt.decoding.api == "chat";
  const std::string model_id = model_identity(client.endpoint().url(), opt.model);
  const int gen_tokens = opt.decoding.max_tokens > 0 ? opt.decoding.max_tokens : suite.max_tokens;

  auto body_for = [&](const std::string& prompt, bool echo) {
    Value b;
    b.set("model", opt.model);
    b.set("temperature", opt.decoding.temperature);
    b.set("seed", opt.decoding.seed);
    if (echo) {
      b.set("prompt", prompt);
      b.set("max_tokens", int64_t(opt.decoding.logprob_max_tokens));
      b.set("echo", true);
      b.set("logprobs", 1);
      return to_json(b);
    }
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
    return to_json(b);
  };
  const std::string target = chat ? "/chat/completions" : "/completions";

  // Units of work, in item order, rotation 0 first.
  std::vector<Unit> units;
  for (auto& item : suite.items) {
    size_t rotations = mc && suite.debias_rotate ? item.choices.size() : 1;
    for (size_t r = 0; r < rotations; ++r) {
      Unit u;
      u.item = &item;
      u.rotation = r;
      if (mc) {
        u.choices = rotate(item.choices, r);
        u.answer = int((size_t(item.answer) + item.choices.size() - r) % item.choices.size());
      }
      u.prompt = render_prompt(suite, item, u.choices);
      units.push_back(std::move(u));
    }
  }

  // Scoring method. Chat endpoints have no prompt logprobs; auto asks the endpoint once (with
  // the first unit's requests) and remembers the answer in plugin state.
  std::string method = "generate";
  if (mc && !chat && opt.decoding.scoring != "generate") {
    if (opt.decoding.scoring == "logprobs") {
      method = "logprobs";
    } else {
      std::string probe_key = "probe/" + model_id + "/" + h16(to_json(opt.decoding.to_value()));
      if (auto got = kv.get(probe_key)) {
        method = std::string(got->begin(), got->end());
      } else {
        auto& u = units.front();
        std::vector<HttpRequest> reqs;
        for (size_t c = 0; c < u.choices.size(); ++c) reqs.push_back({target, body_for(u.prompt + suite.answer_prefix + letter(c), true)});
        std::vector<Reply> replies(reqs.size());
        size_t ctx_cp = code_points(u.prompt);
        client.run(reqs, [&](size_t i, HttpOutcome o) {
          replies[i] = parse_reply(o, false, true, ctx_cp, ctx_cp + code_points(suite.answer_prefix + letter(i)));
        }, opt.cancelled);
        bool have = true;
        for (auto& r : replies) {
          // 4xx: the server refuses echo/logprobs requests; any other failure is the endpoint's.
          if (!r.error.empty() && !(r.error.rfind("HTTP 4", 0) == 0 && r.error.rfind("HTTP 429", 0) != 0))
            return Status::error(suite.key() + ": probing whether " + client.endpoint().url() + " returns prompt logprobs failed: " + r.error);
          if (!r.error.empty() || !r.logprob) have = false;
        }
        method = have ? "logprobs" : "generate";
        std::string m = method;
        if (auto st = kv.put(probe_key, Bytes(m.begin(), m.end())); !st) return st;
      }
    }
  }
  Value decoding = opt.decoding.to_value();
  decoding.set("method", method);
  decoding.set("max_tokens", int64_t(gen_tokens));
  decoding.set("stop", Array(suite.stop.begin(), suite.stop.end()));
  const std::string dec_hash = h16(to_json(decoding));
  const bool by_logprobs = method == "logprobs";

  // Cached units are taken as they are, when their prompt is still the same.
  std::vector<Value> records(units.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < units.size(); ++i) {
    auto& u = units[i];
    u.key = "item/" + suite.key() + "/" + model_id + "/" + dec_hash + "/" + u.item->id + (u.rotation ? "#r" + std::to_string(u.rotation) : "");
    if (auto got = kv.get(u.key)) {
      auto v = msgpack::decode(*got);
      if (v && v->get_string("prompt_sha256") == text::sha256_hex(u.prompt) && v->get_int("record_version") == kRecordVersion) {
        records[i] = std::move(*v);
        continue;
      }
    }
    todo.push_back(i);
  }

  std::vector<HttpRequest> reqs;
  struct Slot {
    size_t unit, choice;
    size_t ctx_cp, full_cp;
  };
  std::vector<Slot> slots;
  for (size_t i : todo) {
    auto& u = units[i];
    if (by_logprobs) {
      size_t ctx_cp = code_points(u.prompt);
      for (size_t c = 0; c < u.choices.size(); ++c) {
        std::string cont = suite.answer_prefix + letter(c);
        reqs.push_back({target, body_for(u.prompt + cont, true)});
        slots.push_back({i, c, ctx_cp, ctx_cp + code_points(cont)});
      }
      u.pending = u.choices.size();
    } else {
      reqs.push_back({target, body_for(u.prompt, false)});
      slots.push_back({i, 0, 0, 0});
      u.pending = 1;
    }
    u.replies.resize(u.pending);
  }

  std::vector<std::string> failures;
  size_t done_units = units.size() - todo.size();
  int64_t run_completion_tokens = 0;
  Status store_error;
  auto finish_unit = [&](size_t ui) {
    auto& u = units[ui];
    Value rec;
    int64_t pt = 0, ct = 0;
    int attempts = 0;
    Array lat;
    for (auto& r : u.replies) {
      if (!r.error.empty()) {
        failures.push_back(u.item->id + (u.rotation ? "#r" + std::to_string(u.rotation) : "") + ": " + r.error);
        return;
      }
      pt += r.prompt_tokens;
      ct += r.completion_tokens;
      attempts += r.attempts;
      lat.push_back(r.latency_s);
    }
    std::string extracted, response;
    bool correct = false;
    if (by_logprobs) {
      Array lps;
      int best = -1;
      for (size_t c = 0; c < u.replies.size(); ++c) {
        if (!u.replies[c].logprob) {
          failures.push_back(u.item->id + ": the endpoint returned no prompt logprobs for choice " + letter(c) + " (scoring: logprobs)");
          return;
        }
        lps.push_back(*u.replies[c].logprob);
        if (best < 0 || *u.replies[c].logprob > *u.replies[size_t(best)].logprob) best = int(c);
      }
      rec.set("choice_logprobs", std::move(lps));
      extracted = letter(size_t(best));
      response = extracted;
      correct = best == u.answer;
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
    rec.set("method", method);
    rec.set("response", response);
    rec.set("extracted", extracted);
    if (mc) rec.set("answer", letter(size_t(u.answer)));
    rec.set("correct", correct);
    rec.set("latencies_s", std::move(lat));
    rec.set("prompt_tokens", pt);
    rec.set("completion_tokens", ct);
    rec.set("attempts", int64_t(attempts));
    rec.set("model", opt.model);
    rec.set("endpoint", client.endpoint().url());
    rec.set("decoding", decoding);
    rec.set("at_ms", unix_ms());
    if (auto st = kv.put(u.key, msgpack::encode(rec)); !st && store_error.ok()) store_error = Status::error(u.key + ": " + st.message());
    run_completion_tokens += ct;
    records[ui] = std::move(rec);
    ++done_units;
  };

  auto t0 = Clock::now();
  if (opt.progress) opt.progress(done_units, units.size());
  client.run(reqs, [&](size_t ri, HttpOutcome o) {
    auto& s = slots[ri];
    auto& u = units[s.unit];
    u.replies[s.choice] = parse_reply(o, chat && !by_logprobs, by_logprobs, s.ctx_cp, s.full_cp);
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

  // Throughput is measured on the items run now; a run that found everything stored reports
  // the figures of the last run that did work.
  std::string tp_key = "throughput/" + suite.key() + "/" + model_id + "/" + dec_hash;
  Value throughput;
  if (!todo.empty() && wall > 0) {
    throughput.set("items_per_s", double(todo.size()) / wall);
    throughput.set("output_tokens_per_s", double(run_completion_tokens) / wall);
    throughput.set("wall_s", wall);
    throughput.set("items_measured", int64_t(todo.size()));
    throughput.set("requests", int64_t(reqs.size()));
    throughput.set("concurrency_note", "items (rotations count as items) per wall second of this job's requests");
    if (auto st = kv.put(tp_key, msgpack::encode(throughput)); !st) return st;
    throughput.set("measured", "this run");
  } else if (auto got = kv.get(tp_key); got && msgpack::decode(*got)) {
    throughput = *msgpack::decode(*got);
    throughput.set("measured", "an earlier run (every item was stored)");
  } else {
    throughput.set("measured", "none");
  }

  // Aggregates: plain accuracy on rotation 0, debiased accuracy when every rotation is right.
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
  out.set("throughput", throughput);
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
  out.set("few_shot", int64_t(suite.few_shot));
  out.set("debias", suite.debias_rotate ? "rotate" : "none");
  // Every item's record, for the artifact (the plugin leaves them out of the message).
  out.set("records", Array(std::make_move_iterator(records.begin()), std::make_move_iterator(records.end())));
  return out;
}

}  // namespace evald::bench
