// evald-endpoint-check: before a round, whether an OpenAI-compatible endpoint's prompt
// logprobs work with evald. It scores the first items of each suite by log-likelihood exactly
// as the benchmark plugin does (echo + token counts), and beside each choice puts the same
// log-likelihood taken another way: the top logprobs of the first token generated after the
// context (one request per item, no echo), matched to the continuation by its text. Agreement
// within --tolerance on every checkable choice, and no degenerate flag, passes (exit 0).
#include "echo.hpp"
#include "http_client.hpp"
#include "json.hpp"
#include "runner.hpp"
#include "suite.hpp"

#include <evald/value.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace evald;
using namespace evald::bench;

namespace {

constexpr const char* kUsage =
    "usage: evald-endpoint-check --endpoint URL --model NAME --suite MANIFEST [--suite ...]\n"
    "                            [--items N] [--top-logprobs K] [--tolerance T]\n"
    "                            [--context-tokens auto|tokenize|echo] [--concurrency C]\n"
    "                            [--timeout S] [--json]\n"
    "\n"
    "Scores the first N items (default 8) of each suite by log-likelihood as evald's benchmark\n"
    "plugin does, and checks every choice against the top-K logprobs (default 20) of the first\n"
    "token the endpoint generates after the context. Prints a row per choice and a verdict.\n"
    "Exit status: 0 every checkable choice agrees within T (default 1e-3) and no suite is\n"
    "degenerate; 1 a disagreement, a degenerate suite or a plugin error; 2 usage; 3 nothing\n"
    "could be checked (continuations of several tokens, or not among the top K).\n";

struct Options {
  std::string endpoint, model, context_tokens = "auto";
  std::vector<std::string> suites;
  size_t items = 8, top = 20, concurrency = 4;
  double tolerance = 1e-3, timeout_s = 120;
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "evald-endpoint-check: %s\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](double lo, double hi) {
      std::string v = value();
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (!end || *end || !(d >= lo && d <= hi)) usage_error(a + ": expected a number from " + std::to_string(lo) + " to " + std::to_string(hi));
      return d;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--endpoint") o.endpoint = value();
    else if (a == "--model") o.model = value();
    else if (a == "--suite") o.suites.push_back(value());
    else if (a == "--items") o.items = size_t(number(1, 1e6));
    else if (a == "--top-logprobs") o.top = size_t(number(1, 100));
    else if (a == "--tolerance") o.tolerance = number(0, 1e3);
    else if (a == "--concurrency") o.concurrency = size_t(number(1, 1024));
    else if (a == "--timeout") o.timeout_s = number(0.1, 86400);
    else if (a == "--context-tokens") {
      o.context_tokens = value();
      if (o.context_tokens != "auto" && o.context_tokens != "tokenize" && o.context_tokens != "echo")
        usage_error("--context-tokens: expected auto, tokenize or echo");
    } else if (a == "--json") o.json = true;
    else usage_error("unknown argument " + a);
  }
  if (o.endpoint.empty() || o.model.empty() || o.suites.empty()) usage_error("--endpoint, --model and at least one --suite are required");
  return o;
}

// token text -> logprob of the first generated position, from either answer shape.
Result<std::vector<EchoToken>> first_top_logprobs(const std::string& body) {
  text::Json j;
  text::JsonError e;
  if (!text::parse_json(body, &j, &e)) return Status::error("answer is not JSON (byte " + std::to_string(e.offset) + ")");
  auto* ch = j.find("choices");
  if (!ch || !ch->is_array() || ch->items().empty()) return Status::error("answer has no choices[0]");
  auto* lp = ch->items()[0].find("logprobs");
  if (!lp || !lp->is_object()) return Status::error("answer has no logprobs for the generated token");
  std::vector<EchoToken> out;
  if (auto* content = lp->find("content"); content && content->is_array() && !content->items().empty()) {
    auto* top = content->items()[0].find("top_logprobs");
    if (top && top->is_array())
      for (auto& t : top->items()) {
        auto* tok = t.find("token");
        auto* l = t.find("logprob");
        if (tok && tok->is_string() && l && l->is_number()) out.push_back({tok->str(), std::nullopt, l->as_double()});
      }
    return out;
  }
  auto* tops = lp->find("top_logprobs");
  if (!tops || !tops->is_array() || tops->items().empty() || !tops->items()[0].is_object())
    return Status::error("answer has no top_logprobs for the generated token");
  for (auto& [k, v] : tops->items()[0].members())
    if (v.is_number()) out.push_back({k, std::nullopt, v.as_double()});
  return out;
}

struct Row {
  std::string suite, item, choice, continuation, note;
  double plugin = 0;
  int64_t tokens = 0;
  std::optional<double> independent;
};

// The independent reading of one item: a generation request after its context.
void check_item(HttpClient& client, const Options& o, const Suite& s, const Value& rec, std::vector<Row>* rows) {
  const Item* item = nullptr;
  for (auto& it : s.items)
    if (it.id == rec.get_string("item")) item = &it;
  std::string prompt = render_prompt(s, *item, item->choices);
  std::string context = prompt.substr(0, context_split(prompt));
  Value b;
  b.set("model", o.model);
  b.set("prompt", context);
  b.set("max_tokens", int64_t(1));
  b.set("temperature", 0.0);
  b.set("logprobs", int64_t(o.top));
  HttpOutcome out;
  client.run({HttpRequest{"/completions", to_json(b)}}, [&](size_t, HttpOutcome r) { out = std::move(r); });
  auto top = out.ok() ? first_top_logprobs(out.body) : Result<std::vector<EchoToken>>(Status::error(out.error));
  for (auto& ch : rec.find("choices_scored")->as_array()) {
    Row r{s.key(), item->id, ch.get_string("choice"), ch.get_string("continuation"), "", ch.get_double("logprob"), ch.get_int("tokens"), std::nullopt};
    if (!top) r.note = "no independent reading: " + top.error();
    else if (r.tokens != 1) r.note = "continuation is " + std::to_string(r.tokens) + " tokens; the generation path reads one";
    else if (ch.get_string("boundary") != "clean") r.note = "boundary merged with the context";
    else {
      for (auto& tok : *top)
        if (token_reads_as(tok, r.continuation)) r.independent = tok.logprob;
      if (!r.independent) r.note = "not among the top " + std::to_string(o.top);
    }
    rows->push_back(std::move(r));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  auto ep = parse_endpoint(o.endpoint);
  if (!ep) usage_error("--endpoint: " + ep.error());
  ClientOptions co;
  co.concurrency = o.concurrency;
  co.timeout_s = o.timeout_s;
  HttpClient client(*ep, co);
  std::vector<Row> rows;
  Array suites_out;
  std::vector<std::string> problems;
  for (auto& path : o.suites) {
    auto s = load_suite(path);
    if (!s) usage_error("--suite: " + s.error());
    if (s->task != TaskType::MultipleChoice) usage_error("--suite " + path + ": not multiple choice");
    if (s->items.size() > o.items) s->items.resize(o.items);
    s->debias_rotate = false;
    MemoryKv kv;
    RunOptions ro;
    ro.model = o.model;
    ro.decoding.scoring = "logprobs";
    ro.context_tokens = o.context_tokens;
    auto r = run_suite(*s, client, kv, ro);
    Value so;
    so.set("suite", s->key());
    if (!r) {
      problems.push_back(r.error());
      so.set("error", r.error());
      suites_out.push_back(std::move(so));
      continue;
    }
    for (auto& f : r->find("flags")->as_array()) problems.push_back(s->key() + ": " + f.get_string("message"));
    so.set("method_why", r->get_string("method_why"));
    so.set("loglikelihood", *r->find("loglikelihood"));
    so.set("flags", *r->find("flags"));
    suites_out.push_back(std::move(so));
    for (auto& rec : r->find("records")->as_array()) check_item(client, o, *s, rec, &rows);
  }

  size_t checked = 0, disagree = 0;
  double max_diff = 0;
  Array rows_out;
  for (auto& r : rows) {
    Value v;
    v.set("suite", r.suite);
    v.set("item", r.item);
    v.set("choice", r.choice);
    v.set("plugin_logprob", r.plugin);
    v.set("tokens", r.tokens);
    v.set("independent_logprob", r.independent ? Value(*r.independent) : Value());
    if (r.independent) {
      double d = std::abs(r.plugin - *r.independent);
      ++checked;
      max_diff = std::max(max_diff, d);
      if (d > o.tolerance) {
        ++disagree;
        r.note = "DISAGREES";
      }
    }
    v.set("note", r.note);
    rows_out.push_back(std::move(v));
  }
  int code = !problems.empty() || disagree ? 1 : checked == 0 ? 3 : 0;
  const char* verdict = code == 0 ? "ok" : code == 3 ? "unchecked" : "fail";
  if (o.json) {
    Value out;
    out.set("endpoint", ep->url());
    out.set("model", o.model);
    out.set("verdict", verdict);
    out.set("choices", int64_t(rows.size()));
    out.set("checked", int64_t(checked));
    out.set("disagreements", int64_t(disagree));
    out.set("max_abs_diff", max_diff);
    out.set("tolerance", o.tolerance);
    out.set("problems", Array(problems.begin(), problems.end()));
    out.set("suites", std::move(suites_out));
    out.set("rows", std::move(rows_out));
    std::printf("%s\n", to_json(out).c_str());
    return code;
  }
  std::printf("%-26s %-10s %-6s %14s %14s %10s  %s\n", "suite", "item", "choice", "plugin", "independent", "|diff|", "note");
  for (auto& r : rows) {
    std::string ind = r.independent ? std::to_string(*r.independent) : "-";
    std::string diff = r.independent ? std::to_string(std::abs(r.plugin - *r.independent)) : "-";
    std::printf("%-26s %-10s %-6s %14.6f %14s %10s  %s\n", r.suite.c_str(), r.item.c_str(), r.choice.c_str(), r.plugin, ind.c_str(), diff.c_str(),
                r.note.c_str());
  }
  for (auto& s : suites_out)
    if (!s.get_string("method_why").empty()) std::printf("\n%s: %s\n", s.get_string("suite").c_str(), s.get_string("method_why").c_str());
  for (auto& p : problems) std::printf("problem: %s\n", p.c_str());
  std::printf("\n%s: %zu of %zu choices checked, %zu disagree (max |diff| %.3g, tolerance %.3g)\n", verdict, checked, rows.size(), disagree,
              max_diff, o.tolerance);
  return code;
}
