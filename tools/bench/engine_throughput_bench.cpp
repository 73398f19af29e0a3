// evald-bench-engine-throughput: items/s of the benchmark plugin's suite runner against a real
// inference server, beside the server's own capacity for the very same requests measured by a
// plain concurrent client (wrk, cycling through the requests the plugin sends, at the same
// concurrency). tools/bench/engine-throughput.sh runs it against the tests' llama.cpp engine.
//
//   evald-bench-engine-throughput --endpoint URL --model NAME --suite MANIFEST
//       [--scoring logprobs|generate] [--concurrency C] [--seconds S] [--repeat R] [--json]
#include "bench_cli.hpp"
#include "http_client.hpp"
#include "loglikelihood.hpp"
#include "runner.hpp"
#include "suite.hpp"

#include <evald/value.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace evald;
using namespace evald::bench;

namespace {

// The requests the runner sends for suite (paths from the server's root).
std::vector<HttpRequest> plugin_requests(const Suite& s, const Endpoint& ep, const std::string& model, bool logprobs, const TokenCounter& counter) {
  std::vector<HttpRequest> out;
  EchoParams echo{model, 0, 0, 1234};
  for (auto& item : s.items)
    for (size_t r = 0; r < (s.debias_rotate ? item.choices.size() : 1); ++r) {
      std::string prompt = render_prompt(s, item, rotate_choices(item.choices, r));
      if (logprobs) {
        for (size_t c = 0; c < item.choices.size(); ++c) out.push_back(echo.request(prompt + s.answer_prefix + letter(c)));
        out.push_back(counter.request(echo, prompt.substr(0, context_split(prompt))));
      } else {
        Value b;
        b.set("model", model);
        b.set("temperature", 0.0);
        b.set("seed", int64_t(1234));
        b.set("prompt", prompt);
        b.set("max_tokens", int64_t(s.max_tokens));
        if (!s.stop.empty()) b.set("stop", Array(s.stop.begin(), s.stop.end()));
        out.push_back({"/completions", to_json(b)});
      }
    }
  for (auto& r : out)
    if (!r.from_root) {
      r.target = ep.base_path + r.target;
      r.from_root = true;
    }
  return out;
}

// wrk -t2 -cC -dS cycling through reqs; its Requests/sec (0 on failure).
double run_wrk(const Endpoint& ep, const std::vector<HttpRequest>& reqs, size_t concurrency, int seconds) {
  char dir[] = "/tmp/evald-bench-engine-XXXXXX";
  if (!mkdtemp(dir)) return 0;
  std::string script = std::string(dir) + "/requests.lua";
  {
    std::ofstream f(script);
    f << "local reqs = {\n";
    for (auto& r : reqs) {
      std::string eq = "==";
      while (r.body.find("]" + eq + "]") != std::string::npos) eq += "=";
      f << "  {\"" << r.target << "\", [" << eq << "[" << r.body << "]" << eq << "]},\n";
    }
    f << "}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n"
         "  return wrk.format(\"POST\", reqs[i][1], {[\"Content-Type\"] = \"application/json\"}, reqs[i][2])\nend\n";
  }
  return run_wrk_script("-t2 -c" + std::to_string(concurrency) + " -d" + std::to_string(seconds) + "s --timeout 60s http://" + ep.host + ":" +
                            std::to_string(ep.port) + "/",
                        dir, script);
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint, model, suite_path, scoring = "logprobs";
  size_t concurrency = 4;
  int seconds = 20, repeat = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--endpoint") endpoint = next();
    else if (a == "--model") model = next();
    else if (a == "--suite") suite_path = next();
    else if (a == "--scoring") scoring = next();
    else if (a == "--concurrency") concurrency = parse_u64(a, next(), 1, 1024);
    else if (a == "--seconds") seconds = int(parse_u64(a, next(), 1, 3600));
    else if (a == "--repeat") repeat = int(parse_u64(a, next(), 1, 100));
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr,
                   "usage: evald-bench-engine-throughput --endpoint URL --model NAME --suite MANIFEST\n"
                   "           [--scoring logprobs|generate] [--concurrency C] [--seconds S] [--repeat R] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (endpoint.empty() || model.empty() || suite_path.empty()) die("--endpoint, --model and --suite are required (--help)");
  if (scoring != "logprobs" && scoring != "generate") die("--scoring: logprobs or generate");
  auto ep = parse_endpoint(endpoint);
  if (!ep) die("--endpoint: " + ep.error());
  auto suite = load_suite(suite_path);
  if (!suite) die("--suite: " + suite.error());
  ClientOptions co;
  co.concurrency = concurrency;
  HttpClient client(*ep, co);

  // The plugin's runner, from scratch each time (no stored answers).
  std::vector<double> items_s, reqs_s;
  std::string counter_shape = "echo";
  for (int r = 0; r < repeat; ++r) {
    MemoryKv kv;
    RunOptions ro;
    ro.model = model;
    ro.decoding.scoring = scoring;
    auto res = run_suite(*suite, client, kv, ro);
    if (!res) die(res.error());
    auto* tp = res->find("throughput");
    items_s.push_back(tp->get_double("items_per_s"));
    reqs_s.push_back(double(tp->get_int("requests")) / tp->get_double("wall_s"));
    if (auto* ll = res->find("loglikelihood")) counter_shape = ll->get_string("context_tokens_by");
    if (!json) std::fprintf(stderr, "plugin run %d: %.2f items/s, %.2f requests/s\n", r + 1, items_s.back(), reqs_s.back());
  }
  auto reqs = plugin_requests(*suite, *ep, model, scoring == "logprobs", TokenCounter{counter_shape});
  double per_item = double(reqs.size()) / double(suite->items.size() * (suite->debias_rotate ? 4 : 1));
  std::vector<double> wrk_s;
  for (int r = 0; r < repeat; ++r) {
    wrk_s.push_back(run_wrk(*ep, reqs, concurrency, seconds));
    if (!json) std::fprintf(stderr, "wrk run %d: %.2f requests/s\n", r + 1, wrk_s.back());
  }
  double plugin = median(reqs_s), ceiling = median(wrk_s);
  if (json) {
    std::printf("{\"suite\":\"%s\",\"scoring\":\"%s\",\"concurrency\":%zu,\"repeat\":%d,\"requests_per_item\":%.2f,\"plugin_items_per_s\":%.3f,"
                "\"plugin_requests_per_s\":%.3f,\"wrk_requests_per_s\":%.3f,\"ratio\":%.3f}\n",
                suite->key().c_str(), scoring.c_str(), concurrency, repeat, per_item, median(items_s), plugin, ceiling,
                ceiling > 0 ? plugin / ceiling : 0.0);
  } else {
    std::printf("| %s, %s, %zu concurrent (median of %d) | requests/s | items/s |\n| --- | ---: | ---: |\n", suite->key().c_str(), scoring.c_str(),
                concurrency, repeat);
    std::printf("| plugin (run_suite) | %.2f | %.2f |\n", plugin, median(items_s));
    std::printf("| wrk -t2 -c%zu, the same %zu requests | %.2f | %.2f |\n\nplugin / wrk = %.2f\n", concurrency, reqs.size(), ceiling, ceiling / per_item,
                ceiling > 0 ? plugin / ceiling : 0.0);
  }
  return 0;
}
