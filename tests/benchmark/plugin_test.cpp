// The benchmark plugin as the daemon loads it (PluginHarness on benchmark.so): the openai
// backend end to end, resume across instances, sections and the per-round stage, the command
// backend with real child processes, GPU telemetry with and without NVML, the GPU pool.
#include "toy_server.hpp"

#include "gpu.hpp"
#include "json.hpp"
#include "records.hpp"
#include "scoring.hpp"

#include <evald/testing.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <thread>

using evald::Array;
using evald::Value;
using evald::testing::PluginHarness;
using bench_test::TempDir;
using bench_test::ToyServer;
using bench_test::write_file;

namespace {

const std::string kPlugin = std::string(EVALD_PLUGIN_DIR) + "/benchmark.so";

Value section(std::string name, double points, std::vector<std::string> suites, std::string norm) {
  Value s;
  s.set("name", name);
  s.set("points", points);
  s.set("suites", Array(suites.begin(), suites.end()));
  s.set("normalisation", norm);
  return s;
}

Value openai_config(const ToyServer&) {
  Value c;
  c.set("suites", Array{bench_test::kSuites + "/sample-ko-general/suite.yaml", bench_test::kSuites + "/sample-en-reasoning/suite.yaml"});
  c.set("sections", Array{section("knowledge", 20, {"sample-ko-general"}, "absolute"),
                          section("reasoning", 20, {"sample-en-reasoning"}, "relative_to_target")});
  c.set("backoff_s", 0.01);
  return c;
}

Value submission(const ToyServer& srv, std::string model = "toy") {
  Value s;
  s.set("endpoint", srv.url());
  s.set("model", model);
  Value t;
  t.set("sample-en-reasoning", 0.8);
  s.set("targets", t);
  return s;
}

int64_t debiased_known(const std::string& suite, double know) {
  auto s = evald::bench::load_suite(bench_test::kSuites + "/" + suite + "/suite.yaml");
  int64_t n = 0;
  for (auto& it : s->items) n += bench_test::toy_knows(it.id, know);
  return n;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void make_script(const std::string& path, const std::string& body) {
  write_file(path, "#!/bin/sh\n" + body);
  chmod(path.c_str(), 0755);
}

}  // namespace

TEST(BenchmarkPlugin, OpenAiBackendScoresAndResumes) {
  ToyServer srv(0.75);
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(openai_config(srv))) << "configure";
  auto out = h.process(PluginHarness::entrant_job("team-a", submission(srv)));
  ASSERT_TRUE(out) << out.error();
  ASSERT_EQ(out->size(), 1u);
  auto& m = (*out)[0];
  EXPECT_EQ(m.kind, "benchmark-score");
  auto& p = m.payload;
  double ko = double(debiased_known("sample-ko-general", 0.75)) / 24, en = double(debiased_known("sample-en-reasoning", 0.75)) / 24;
  EXPECT_TRUE(p.get_bool("complete")) << p.get_string("reason");
  EXPECT_NEAR(p.get_double("points"), 20 * ko + 20 * std::min(1.0, en / 0.8), 1e-9);
  EXPECT_DOUBLE_EQ(p.get_double("scale"), 40);
  auto& suites = p.find("suites")->as_array();
  ASSERT_EQ(suites.size(), 2u);
  EXPECT_EQ(suites[0].get_string("name"), "sample-ko-general");
  EXPECT_EQ(suites[0].get_string("method"), "logprobs");
  EXPECT_NEAR(suites[0].get_double("points"), 20 * ko, 1e-9);
  EXPECT_NEAR(suites[1].get_double("points"), 20 * std::min(1.0, en / 0.8), 1e-9);
  EXPECT_FALSE(suites[0].find("records"));  // item records go to the artifact only
  EXPECT_EQ(suites[0].find("item_files")->as_array()[0].get_string("sha256"),
            evald::text::sha256_hex(slurp(bench_test::kSuites + "/sample-ko-general/items.jsonl")));
  EXPECT_FALSE(p.find("telemetry")->get_bool("available"));
  EXPECT_EQ(p.find("telemetry")->get_string("reason"), "no GPUs configured (gpus)");
  // The artifact: the same result plus every item's record, with its sha256 in the message.
  std::string path = p.get_string("artifact");
  std::string art = slurp(path);
  EXPECT_EQ(p.get_string("artifact_sha256"), evald::text::sha256_hex(art));
  // Every file the scores rest on, hashed as read, for a report's manifest.
  auto& inputs = p.find("inputs")->as_array();
  ASSERT_GE(inputs.size(), 2u);
  for (auto& in : inputs) EXPECT_EQ(in.get_string("sha256").size(), 64u) << evald::to_json(in);
  evald::text::Json j;
  evald::text::JsonError e;
  ASSERT_TRUE(evald::text::parse_json(art, &j, &e)) << e.message;
  EXPECT_EQ(j.find("suites")->items()[0].find("records")->items().size(), 24u * 4);
  EXPECT_GT(h.progress().size(), 2u);

  // A new plugin instance on the same durable state (a restarted daemon) sends no request.
  int64_t before = srv.requests();
  PluginHarness h2(kPlugin);
  h2.kv() = h.kv();
  ASSERT_TRUE(h2.configure(openai_config(srv)));
  auto again = h2.process(PluginHarness::entrant_job("team-a", submission(srv)));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(srv.requests(), before);
  EXPECT_DOUBLE_EQ((*again)[0].payload.get_double("points"), p.get_double("points"));
}

TEST(BenchmarkPlugin, DegenerateResultsFailTheJobUnlessAccepted) {
  ToyServer srv(0.0);  // answers "A" to everything
  Value cfg = openai_config(srv);
  cfg.set("scoring", "generate");
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(cfg));
  auto out = h.process(PluginHarness::entrant_job("team-a", submission(srv)));
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().find("degenerate benchmark results, not scored: sample-ko-general: every one of the 96 answers is \"A\""), std::string::npos)
      << out.error();
  EXPECT_NE(out.error().find("benchmark-team-a.json"), std::string::npos) << out.error();  // the records are there to review

  // The operator accepts it: the same stored answers, scored, the flags kept and marked.
  int64_t before = srv.requests();
  cfg.set("accept_degenerate", true);
  PluginHarness h2(kPlugin);
  h2.kv() = h.kv();
  ASSERT_TRUE(h2.configure(cfg));
  auto accepted = h2.process(PluginHarness::entrant_job("team-a", submission(srv)));
  ASSERT_TRUE(accepted) << accepted.error();
  EXPECT_EQ(srv.requests(), before);
  auto& suite = (*accepted)[0].payload.find("suites")->as_array()[0];
  EXPECT_TRUE(suite.get_bool("flags_accepted"));
  EXPECT_EQ(suite.find("flags")->as_array()[0].get_string("flag"), "one_letter");
}

TEST(BenchmarkPlugin, SubmissionAndConfigErrors) {
  ToyServer srv;
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(openai_config(srv)));
  Value sub;
  sub.set("model", "toy");
  auto r = h.process(PluginHarness::entrant_job("team-a", sub));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("submission.endpoint: required"), std::string::npos) << r.error();
  sub.set("endpoint", "https://example.org/v1");
  r = h.process(PluginHarness::entrant_job("team-a", sub));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("https is not supported"), std::string::npos) << r.error();

  PluginHarness bad(kPlugin);
  Value c = openai_config(srv);
  c.set("suites", Array{std::string("/nonexistent/suite.yaml")});
  auto st = bad.configure(c);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("config.suites[0]: /nonexistent/suite.yaml: no such file"), std::string::npos) << st.message();
  PluginHarness bad3(kPlugin);
  c = openai_config(srv);
  c.set("api", "chat");
  c.set("scoring", "logprobs");
  st = bad3.configure(c);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("config.scoring: logprobs needs api: completions"), std::string::npos) << st.message();
  PluginHarness bad2(kPlugin);
  c = openai_config(srv);
  c.set("sections", Array{section("x", 10, {"a"}, "median")});
  st = bad2.configure(c);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("config.sections[0].normalisation"), std::string::npos) << st.message();
  PluginHarness bad4(kPlugin);
  c = openai_config(srv);
  c.set("sections", Array{section("x", 10, {"sample-ko"}, "absolute")});
  st = bad4.configure(c);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("config.sections[0].suites: \"sample-ko\" is not the name of a configured suite"), std::string::npos) << st.message();
}

TEST(BenchmarkPlugin, PerRoundSectionsNeedEveryEntrant) {
  Value c;
  c.set("suites", Array{bench_test::kSuites + "/sample-ko-general/suite.yaml"});
  c.set("sections", Array{section("best", 10, {"sample-ko-general"}, "relative_to_best"), section("spread", 10, {"sample-ko-general"}, "min_max")});
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(c));
  auto msg = [](const std::string& e, double score) {
    Value s;
    s.set("name", "sample-ko-general");
    s.set("score", score);
    Value p;
    p.set("suites", Array{s});
    return PluginHarness::message("bench", e, "benchmark-score", p);
  };
  auto job = PluginHarness::round_job({msg("a", 0.5), msg("b", 0.75), msg("c", 0.25)});
  job.failed_upstream.push_back({"bench", "d", "endpoint down"});
  auto out = h.finish(job);
  ASSERT_TRUE(out) << out.error();
  ASSERT_EQ(out->size(), 4u);
  std::map<std::string, Value> by;
  for (auto& m : *out) by[m.payload.get_string("entrant")] = m.payload;
  // a: 10 * 0.5/0.75 + 10 * (0.5-0.25)/(0.75-0.25) = 6.667 + 5
  EXPECT_NEAR(by["a"].get_double("points"), 10 * 0.5 / 0.75 + 5, 1e-9);
  EXPECT_NEAR(by["b"].get_double("points"), 20, 1e-9);
  EXPECT_NEAR(by["c"].get_double("points"), 10 * 0.25 / 0.75, 1e-9);
  EXPECT_FALSE(by["d"].get_bool("complete"));
  EXPECT_TRUE(by["d"].find("points")->is_null());
  EXPECT_NE(by["d"].get_string("reason").find("endpoint down"), std::string::npos);
  EXPECT_EQ((*out)[0].kind, "benchmark-total");
}

TEST(BenchmarkPlugin, CommandBackendReadsHarnessResults) {
  TempDir d;
  make_script(d / "eval.sh",
              "echo \"gpus=$CUDA_VISIBLE_DEVICES model=$2\"\n"
              "echo warming up >&2\n"
              "mkdir -p \"$1/toy\"\n"
              "cat > \"$1/toy/results_2026-11-26.json\" <<'J'\n"
              "{\"results\": {\"kmmlu\": {\"alias\": \"kmmlu\", \"acc,none\": 0.41, \"acc_stderr,none\": 0.01},\n"
              "  \"haerae\": {\"acc,none\": 0.6, \"acc_stderr,none\": \"N/A\"}},\n"
              " \"n-samples\": {\"haerae\": {\"original\": 50, \"effective\": 50}}}\n"
              "J\n");
  Value c;
  c.set("backend", "command");
  c.set("command", Array{d / "eval.sh", "{output_dir}", "{model}"});
  c.set("gpus", Array{3, 5});
  c.set("gpus_per_job", 1);
  c.set("sections", Array{section("all", 40, {"kmmlu", "haerae"}, "absolute")});
  c.set("nvml_library", "/nonexistent/libnvidia-ml.so.1");
  PluginHarness h(kPlugin);
  ASSERT_TRUE(h.configure(c));
  Value sub;
  sub.set("model", "team-model");
  auto out = h.process(PluginHarness::entrant_job("team-a", sub));
  ASSERT_TRUE(out) << out.error();
  auto& p = (*out)[0].payload;
  EXPECT_NEAR(p.get_double("points"), 40 * (0.41 + 0.6) / 2, 1e-9);
  auto& suites = p.find("suites")->as_array();
  ASSERT_EQ(suites.size(), 2u);
  EXPECT_EQ(suites[0].get_string("name"), "haerae");
  // haerae has n-samples: a Wilson interval on 30 of 50; kmmlu has only a stderr.
  EXPECT_EQ(suites[0].get_int("n"), 50);
  auto [lo, hi] = evald::bench::wilson_interval(30, 50);
  EXPECT_DOUBLE_EQ(suites[0].find("ci")->as_array()[0].as_double(), lo);
  EXPECT_DOUBLE_EQ(suites[0].find("ci")->as_array()[1].as_double(), hi);
  EXPECT_NEAR(suites[1].find("ci")->as_array()[0].as_double(), 0.41 - 1.959963984540054 * 0.01, 1e-12);
  auto* cmd = p.find("command");
  EXPECT_EQ(slurp(cmd->get_string("stdout")), "gpus=3 model=team-model\n");
  EXPECT_EQ(slurp(cmd->get_string("stderr")), "warming up\n");
  EXPECT_EQ(cmd->get_string("cuda_visible_devices"), "3");
  // GPUs were leased to the job and NVML is missing here: telemetry says why, with no numbers.
  EXPECT_FALSE(p.find("telemetry")->get_bool("available"));
  EXPECT_NE(p.find("telemetry")->get_string("reason").find("NVML not loadable"), std::string::npos);
  EXPECT_FALSE(p.find("telemetry")->find("energy_j"));
  EXPECT_TRUE(evald::bench::GpuPool::busy().empty());

  // With the daemon's lease in the job (a stage with `gpus: 2`), those GPUs are the job's,
  // whatever the plugin's own list says.
  auto job = PluginHarness::entrant_job("team-b", sub);
  job.resources.set("gpus", Array{6, 7});
  auto leased = h.process(job);
  ASSERT_TRUE(leased) << leased.error();
  auto* cmd2 = (*leased)[0].payload.find("command");
  EXPECT_EQ(cmd2->get_string("cuda_visible_devices"), "6,7");
  EXPECT_EQ(slurp(cmd2->get_string("stdout")), "gpus=6,7 model=team-model\n");

  // With telemetry (a stand-in NVML with GPUs 0 and 1): GPU time and energy per 100 items.
  c.set("nvml_library", FAKE_NVML);
  PluginHarness h3(kPlugin);
  ASSERT_TRUE(h3.configure(c));
  auto job3 = PluginHarness::entrant_job("team-c", sub);
  job3.resources.set("gpus", Array{0, 1});
  auto measured = h3.process(job3);
  ASSERT_TRUE(measured) << measured.error();
  auto& tel = *(*measured)[0].payload.find("telemetry");
  ASSERT_TRUE(tel.get_bool("available")) << evald::to_json(tel);
  int64_t items = tel.get_int("items");
  ASSERT_GT(items, 0);
  EXPECT_NEAR(tel.get_double("gpu_seconds"), 2 * tel.get_double("wall_s"), 1e-9);
  EXPECT_NEAR(tel.get_double("gpu_seconds_per_100_items"), tel.get_double("gpu_seconds") * 100 / double(items), 1e-9);
  EXPECT_NEAR(tel.get_double("joules_per_100_items"), tel.get_double("energy_j") * 100 / double(items), 1e-9);
}

TEST(BenchmarkPlugin, CommandBackendFailures) {
  TempDir d;
  make_script(d / "fail.sh", "echo 'CUDA out of memory' >&2\nexit 3\n");
  make_script(d / "hang.sh", "sleep 30\n");
  make_script(d / "quiet.sh", "exit 0\n");
  auto run = [&](const std::string& script, double timeout) {
    Value c;
    c.set("backend", "command");
    c.set("command", Array{d / script});
    c.set("command_timeout_s", timeout);
    c.set("telemetry", false);
    PluginHarness h(kPlugin);
    EXPECT_TRUE(h.configure(c));
    return h.process(PluginHarness::entrant_job("team-a", Value(evald::Map{}))).status();
  };
  auto st = run("fail.sh", 10);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("exited with status 3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("CUDA out of memory"), std::string::npos) << st.message();
  auto t0 = std::chrono::steady_clock::now();
  st = run("hang.sh", 0.5);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("ran past command_timeout_s"), std::string::npos) << st.message();
  EXPECT_LT(took, 5.0);
  st = run("quiet.sh", 10);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("wrote no results*.json"), std::string::npos) << st.message();
}

TEST(BenchmarkGpu, TelemetryFromFakeNvml) {
  evald::bench::GpuTelemetry t(FAKE_NVML, {0, 1}, 0.02);
  ASSERT_TRUE(t.available()) << t.reason();
  t.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Value v = t.stop();
  ASSERT_TRUE(v.get_bool("available"));
  auto& gpus = v.find("gpus")->as_array();
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1].get_string("name"), "Fake GPU 1");
  EXPECT_GE(gpus[0].get_int("samples"), 5);
  EXPECT_DOUBLE_EQ(gpus[0].get_double("util_mean_pct"), 40);
  EXPECT_DOUBLE_EQ(gpus[0].get_double("mem_used_max_mib"), 10240);
  EXPECT_DOUBLE_EQ(gpus[0].get_double("power_mean_w"), 150);
  // Constant 150 W over ~0.3 s, integrated from the first sample to the last.
  double wall = v.get_double("wall_s");
  EXPECT_NEAR(gpus[0].get_double("energy_j"), 150 * wall, 150 * 0.05);
  EXPECT_NEAR(v.get_double("energy_j"), 2 * gpus[0].get_double("energy_j"), 1e-6);

  evald::bench::GpuTelemetry missing(FAKE_NVML, {7}, 0.02);
  EXPECT_FALSE(missing.available());
  EXPECT_EQ(missing.reason(), "GPU 7 does not exist (NVML sees 2)");
  evald::bench::GpuTelemetry none("/nonexistent/libnvidia-ml.so.1", {0}, 0.02);
  EXPECT_FALSE(none.available());
  Value nv = none.stop();
  EXPECT_FALSE(nv.get_bool("available"));
  EXPECT_FALSE(nv.find("gpus"));
}

TEST(BenchmarkGpu, PoolNeverSharesUnlessAllowed) {
  using evald::bench::GpuPool;
  auto a = GpuPool::acquire({0, 1}, 1, false, {});
  ASSERT_TRUE(a);
  auto b = GpuPool::acquire({0, 1}, 1, false, {});
  ASSERT_TRUE(b);
  EXPECT_NE(a->gpus(), b->gpus());
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto c = GpuPool::acquire({0, 1}, 1, false, {});
    got = c.ok();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(got);  // both GPUs are leased
  { auto drop = std::move(*a); }
  waiter.join();
  EXPECT_TRUE(got);
  auto shared = GpuPool::acquire({0, 1}, 2, true, {});
  ASSERT_TRUE(shared);
  EXPECT_EQ(shared->gpus(), (std::vector<int>{0, 1}));
  auto too_many = GpuPool::acquire({0}, 2, false, {});
  EXPECT_FALSE(too_many);
  auto cancelled = GpuPool::acquire({1}, 1, false, [] { return true; });
  ASSERT_FALSE(cancelled);  // GPU 1 is b's
  EXPECT_NE(cancelled.error().find("cancelled while waiting"), std::string::npos);
}
