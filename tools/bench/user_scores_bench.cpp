// evald-bench-user-scores: what the user-scores plugin's vote path costs at arena scale.
//
// Method. Votes are drawn from known Bradley-Terry strengths (evenly spaced from +1 to -1
// over the entrants, 10% ties, fixed seed, 2,000 users, one time stamp per second) and written
// as a battles CSV (id,user,a,b,outcome,time) into a fresh temp dir; writing is not timed.
// Then, in this order, each phase is timed on the wall clock with the page cache warm:
//   baseline read  the file's bytes into memory (read(2) through an ifstream): the floor for
//                  any reader;
//   read+validate  VoteSet::add_file: the CSV streamed record by record, every row validated,
//                  entrants resolved, ids deduplicated;
//   count          VoteSet::apply_hygiene (window, user share and pair cap all on, set so
//                  they exclude nothing) and tally_battles;
//   fit            fit_battles: the Bradley-Terry MLE and win probabilities;
//   bootstrap      bootstrap_battles: R multinomial resamples over the vote-count cells,
//                  each refitted, then percentile intervals.
// Baseline for the bootstrap: a naive bootstrap that draws N vote indices with replacement per
// resample and recounts them, run for --naive resamples (default 10) and extrapolated to R.
// Peak memory is getrusage(RUSAGE_SELF).ru_maxrss after each phase (it only grows, so the
// phase where it jumps is the one that set it). The fitted strengths are compared with the
// generating ones, so a fast wrong answer shows; every vote must be counted, or the run fails.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <evald/time.hpp>
#include <evald/value.hpp>

#include "votes.hpp"

#include "bench_cli.hpp"

namespace fs = std::filesystem;
namespace sc = evald::scores;
using evald::bench::die;
using evald::bench::parse_u64;
using evald::Value;

namespace {

const char* kUsage = R"(usage: evald-bench-user-scores [options]

Times the user-scores vote path on synthetic pairwise votes: reading and validating a CSV,
counting with hygiene rules, the Bradley-Terry fit and the bootstrap, with a read-only
baseline and a naive per-vote bootstrap for comparison. Peak RSS from getrusage.

  --votes N        pairwise votes to generate (default 1000000)
  --entrants K     entrants (default 10, at least 2)
  --resamples R    bootstrap resamples (default 1000)
  --naive M        naive bootstrap resamples to time and extrapolate (default 10; 0: skip)
  --users U        distinct voters (default 2000)
  --seed S         generator seed (default 42)
  --keep           keep the generated CSV (its path is printed)
  --json           one JSON object on stdout instead of the table
  --help           this text
)";

struct Options {
  uint64_t votes = 1000000, entrants = 10, resamples = 1000, naive = 10, users = 2000, seed = 42;
  bool keep = false, json = false;
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) die(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--votes") {
      o.votes = parse_u64(a, next(), 1, 100000000);
    } else if (a == "--entrants") {
      o.entrants = parse_u64(a, next(), 2, 1000);
    } else if (a == "--resamples") {
      o.resamples = parse_u64(a, next(), 1, 1000000);
    } else if (a == "--naive") {
      o.naive = parse_u64(a, next(), 0, 1000);
    } else if (a == "--users") {
      o.users = parse_u64(a, next(), 1, 100000000);
    } else if (a == "--seed") {
      o.seed = parse_u64(a, next(), 0, UINT64_MAX);
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--json") {
      o.json = true;
    } else {
      die("unknown option \"" + a + "\" (see --help)");
    }
  }
  return o;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

std::string entrant_id(uint64_t k) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "m%03u", unsigned(k));
  return buf;
}

std::vector<double> generating_strengths(uint64_t k) {
  std::vector<double> t(k);
  for (uint64_t i = 0; i < k; ++i) t[i] = 1.0 - 2.0 * double(i) / double(k - 1);
  return t;
}

// Writes the votes; returns the file size.
uint64_t write_votes(const std::string& path, const Options& o, const std::vector<double>& theta) {
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<uint64_t> pick(0, o.entrants - 1), user(0, o.users - 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::string out = "id,user,a,b,outcome,time\n";
  out.reserve(size_t(o.votes) * 56);
  const int64_t t0 = 1740787200000;  // 2025-03-01T00:00:00Z
  for (uint64_t v = 0; v < o.votes; ++v) {
    uint64_t a = pick(rng), b = pick(rng);
    while (b == a) b = pick(rng);
    const char* outcome = u(rng) < 0.1 ? "tie" : u(rng) < 1 / (1 + std::exp(theta[b] - theta[a])) ? "A" : "B";
    out += std::to_string(v + 1) + ",u" + std::to_string(user(rng)) + "," + entrant_id(a) + "," + entrant_id(b) + "," + outcome + "," +
           evald::format_utc_time(t0 + int64_t(v) * 1000) + "\n";
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << out;
  f.close();
  if (!f) die("cannot write " + path);
  return out.size();
}

// The comparison bootstrap: resample individual votes, recount, refit.
double naive_bootstrap_seconds_each(const sc::VoteSet& set, const sc::BattleTally& t, uint64_t resamples, double prior, uint64_t seed) {
  std::vector<const sc::Vote*> votes;
  for (auto& v : set.votes())
    if (v.type == sc::VoteType::Battle && v.excluded == sc::Exclusion::None) votes.push_back(&v);
  std::vector<int64_t> pos(set.roster().size(), -1);
  for (size_t k = 0; k < t.field.size(); ++k) pos[t.field[k]] = int64_t(k);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> draw(0, votes.size() - 1);
  double start = now_s();
  for (uint64_t r = 0; r < resamples; ++r) {
    sc::PairCounts pc(t.field.size());
    for (size_t i = 0; i < votes.size(); ++i) {
      const sc::Vote& v = *votes[draw(rng)];
      pc.add(size_t(pos[v.a]), size_t(pos[v.b]), v.outcome);
    }
    if (!sc::fit_bradley_terry(pc, prior)) die("naive bootstrap: a resample has no fit");
  }
  return (now_s() - start) / double(resamples);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  std::string tmpl = (fs::temp_directory_path() / "evald-bench-user-scores-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) die("mkdtemp failed under " + fs::temp_directory_path().string());
  fs::path dir = tmpl;
  std::string csv = (dir / "battles.csv").string();
  std::vector<double> theta = generating_strengths(o.entrants);

  double t = now_s();
  uint64_t bytes = write_votes(csv, o, theta);
  double gen_s = now_s() - t;

  struct Phase {
    const char* name;
    double seconds, rss_mib;
  };
  std::vector<Phase> phases;
  auto phase = [&](const char* name, double start) { phases.push_back({name, now_s() - start, peak_rss_mib()}); };

  // Baseline: the bytes only.
  t = now_s();
  {
    std::ifstream in(csv, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (all.size() != bytes) die("baseline read " + std::to_string(all.size()) + " of " + std::to_string(bytes) + " bytes");
  }
  phase("baseline read", t);
  double rss_before = peak_rss_mib();

  Value cfg;
  cfg.set("battles", Value(evald::Array{Value(csv)}));
  cfg.set("resamples", int64_t(o.resamples));
  cfg.set("window_opens", "2025-01-01T00:00:00Z");
  cfg.set("max_votes_per_pair", int64_t(o.votes));
  cfg.set("max_user_share", 0.99);
  auto checked = sc::vote_config_schema().validate(cfg);
  if (!checked) die(checked.error());
  auto opt = sc::vote_options(*checked);
  if (!opt) die(opt.error());
  std::vector<sc::Entrant> roster;
  for (uint64_t k = 0; k < o.entrants; ++k) roster.push_back({entrant_id(k), "Model " + std::to_string(k)});

  double total_start = now_s();
  sc::VoteSet set(roster, *opt);
  // add_file streams the file: each row is validated as it is read, never held as a record.
  t = now_s();
  if (auto st = set.add_file(csv, sc::VoteType::Battle); !st) die(st.message());
  phase("read+validate", t);

  t = now_s();
  set.apply_hygiene();
  sc::BattleTally tally = sc::tally_battles(set);
  phase("count", t);

  t = now_s();
  auto fit = sc::fit_battles(tally, roster, opt->prior);
  if (!fit) die(fit.error());
  phase("fit", t);

  t = now_s();
  auto iv = sc::bootstrap_battles(tally, *opt, {});
  if (!iv) die(iv.error());
  phase("bootstrap", t);
  double total_s = now_s() - total_start;

  const sc::TypeCounts& c = set.counts(sc::VoteType::Battle);
  if (c.valid != o.votes || c.counted() != o.votes || c.rejected_total != 0)
    die("expected " + std::to_string(o.votes) + " counted votes, got " + std::to_string(c.counted()) + " (" +
        std::to_string(c.rejected_total) + " rejected, " + std::to_string(c.excluded_total) + " excluded)");
  // Recovery: ties pull strengths together, so compare differences to the best-vs-worst spread.
  double mean_theta = 0;
  for (double x : theta) mean_theta += x / double(theta.size());
  double max_err = 0;
  for (size_t k = 0; k < theta.size(); ++k) max_err = std::max(max_err, std::fabs(fit->strength[k] - (theta[k] - mean_theta)));
  bool ordered = true;
  for (size_t k = 1; k < theta.size(); ++k) ordered &= fit->strength[k] < fit->strength[k - 1];

  double naive_each = o.naive ? naive_bootstrap_seconds_each(set, tally, o.naive, opt->prior, o.seed) : std::nan("");
  double naive_total = naive_each * double(o.resamples);
  auto seconds = [&](const std::string& name) {
    for (auto& p : phases)
      if (p.name == name) return p.seconds;
    return std::nan("");
  };
  double boot_s = seconds("bootstrap"), read_s = seconds("baseline read");
  double read_validate_s = seconds("read+validate");

  if (o.json) {
    Value j;
    j.set("votes", o.votes);
    j.set("entrants", o.entrants);
    j.set("resamples", o.resamples);
    j.set("file_bytes", bytes);
    j.set("cpus", int64_t(sysconf(_SC_NPROCESSORS_ONLN)));
    j.set("cpu", evald::bench::cpu_model());
    j.set("generate_s", gen_s);
    Value ph;
    for (auto& p : phases) {
      Value e;
      e.set("seconds", p.seconds);
      e.set("peak_rss_mib", p.rss_mib);
      ph.set(p.name, e);
    }
    j.set("phases", ph);
    j.set("total_s", total_s);
    j.set("peak_rss_mib", peak_rss_mib());
    j.set("peak_rss_before_mib", rss_before);
    j.set("read_validate_s", read_validate_s);
    j.set("read_validate_vs_baseline", read_validate_s / read_s);
    j.set("naive_bootstrap_s_each", naive_each);
    j.set("naive_bootstrap_s_extrapolated", naive_total);
    j.set("bootstrap_speedup_vs_naive", naive_total / boot_s);
    j.set("bootstrap_failed", int64_t(iv->failed));
    j.set("max_strength_error", max_err);
    j.set("order_recovered", ordered);
    j.set("csv", o.keep ? csv : std::string());
    std::printf("%s\n", evald::to_json(j).c_str());
  } else {
    std::printf("evald-bench-user-scores: %llu votes, %llu entrants, %llu resamples; CSV %.1f MB (generated in %.2f s)\n",
                (unsigned long long)o.votes, (unsigned long long)o.entrants, (unsigned long long)o.resamples, double(bytes) / 1e6, gen_s);
    std::printf("cpu: %s, %ld online\n\n", evald::bench::cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN));
    std::printf("%-16s %12s %14s\n", "phase", "wall ms", "peak RSS MiB");
    for (auto& p : phases) std::printf("%-16s %12.3f %14.1f\n", p.name, p.seconds * 1e3, p.rss_mib);
    std::printf("%-16s %12.3f %14.1f\n\n", "total (no base)", total_s * 1e3, peak_rss_mib());
    std::printf("read+validate (streamed): %.3f s, %.1fx the baseline read (%.0f votes/s)\n", read_validate_s,
                read_validate_s / read_s, double(o.votes) / read_validate_s);
    if (o.naive)
      std::printf("naive per-vote bootstrap: %.3f s per resample, %.1f s for %llu (extrapolated from %llu): %.0fx the multinomial bootstrap\n",
                  naive_each, naive_total, (unsigned long long)o.resamples, (unsigned long long)o.naive, naive_total / boot_s);
    std::printf("bootstrap: %u failed resamples; fit: max |strength - generating| = %.4f, order %s\n", iv->failed, max_err,
                ordered ? "recovered" : "NOT recovered");
    if (o.keep) std::printf("kept %s\n", csv.c_str());
  }
  if (!o.keep) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // A wrong order is reported, not fatal: a few thousand votes cannot separate neighbours 0.22 apart.
  return 0;
}
