// user-scores: the user-evaluation share of a round's points. A per-round (barrier) stage that
// reads the specialist users' Likert ratings and pairwise battle votes from files and from an
// intake channel, validates and deduplicates them, applies the vote hygiene rules, fits
// Bradley-Terry strengths with bootstrap intervals and rating means with t-intervals, and
// scales the result to the round's points. Emits one "user-score" message per roster entrant
// and one "user-evaluation" summary; the full result, every rejected row included, goes to the
// job's artifact directory. The logic is in src/votes.hpp; this file only talks to the host.
#include <evald/plugin.hpp>

#include "votes.hpp"

namespace sc = evald::scores;
using evald::Status;
using evald::Value;

class UserScores : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() { return sc::vote_config_schema(); }

  // likert_min < likert_max, window times, at least one source: what the schema cannot say.
  static Status validate(const Value& config) {
    auto o = sc::vote_options(config);
    return o ? Status() : o.status();
  }

  UserScores(const Value& config, evald::Context&) : config_(config) {}

  Status start() override {
    auto o = sc::vote_options(config_);
    if (!o) return o.status();
    opt_ = std::move(*o);
    return {};
  }

  Status finish(const evald::Job& job, evald::Context& ctx) override {
    auto roster = sc::roster_from_round(job.round);
    if (!roster) return roster.status();
    sc::VoteSet set(std::move(*roster), opt_);
    for (auto& f : opt_.ratings_files)
      if (auto st = set.add_file(f, sc::VoteType::Rating); !st) return st;
    for (auto& f : opt_.battles_files)
      if (auto st = set.add_file(f, sc::VoteType::Battle); !st) return st;
    if (!opt_.intake_channel.empty()) {
      auto st = ctx.intake(opt_.intake_channel, [&](const Value& rec) {
        set.add_intake(opt_.intake_channel, rec);
        return Status();
      });
      if (!st) return st;
    }
    if (ctx.cancelled()) return Status::error("cancelled");
    set.apply_hygiene();

    sc::Hooks hooks{[&ctx] { return ctx.cancelled(); }, [&ctx](double done, double total) { ctx.progress(done, total); }};
    std::string round = job.round.get_string("id", job.envelope.round);
    auto ev = sc::evaluate(set, round, hooks);
    if (!ev) return ev.status();
    auto artifact = sc::write_artifact(*ev, ctx.artifact_dir(), "user-evaluation.json");
    if (!artifact) return artifact.status();

    for (auto& e : ev->entrants)
      if (auto st = ctx.emit("user-score", e); !st) return st;
    const Value* total = ev->summary.find("counts")->find("total");
    ctx.info("user evaluation of round " + round + ": " + std::to_string(total->get_int("counted")) + " votes counted, " +
             std::to_string(total->get_int("duplicates")) + " duplicates, " + std::to_string(total->get_int("rejected_total")) +
             " rejected, " + std::to_string(total->get_int("excluded_total")) + " excluded; " + *artifact);
    return ctx.emit("user-evaluation", ev->summary);
  }

 private:
  Value config_;
  sc::VoteOptions opt_;
};

EVALD_PLUGIN(UserScores, "user-scores", "1.0.0",
             "Barrier: user ratings and pairwise battle votes (files and intake) to the round's user-evaluation points")
