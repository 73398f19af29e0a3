// fuzz_vote_file: a user-evaluation vote file from arbitrary bytes, end to end. The first byte
// picks the format (CSV, JSON, JSONL) and whether the rows are ratings or battles; the rest is
// the file. When it reads, the votes go through validation, hygiene (window, user share and
// pair cap on), the Bradley-Terry fit and a small bootstrap. Properties:
//   * every record is exactly one of valid, duplicate or rejected, and every valid vote is
//     counted or excluded for one reason (nothing silently dropped);
//   * every rejection names the file and a line within it;
//   * a complete entrant's points lie within 0..scale, its interval around them.
#include "fuzz_common.hpp"
#include "votes.hpp"

#include <algorithm>
#include <cmath>

using evald::Value;
namespace sc = evald::scores;

namespace {

const sc::VoteOptions& options() {
  static const sc::VoteOptions opt = [] {
    Value cfg;
    cfg.set("battles", evald::Array{Value("x.csv")});
    cfg.set("ratings", evald::Array{Value("y.csv")});
    cfg.set("score", "blend");
    cfg.set("resamples", int64_t(20));
    cfg.set("window_opens", "2026-01-01T00:00:00Z");
    cfg.set("window_closes", "2027-01-01T00:00:00Z");
    cfg.set("max_votes_per_pair", int64_t(2));
    cfg.set("max_user_share", 0.5);
    auto checked = sc::vote_config_schema().validate(cfg);
    FUZZ_CHECK(checked.ok(), "fixed config: %s", checked.error().c_str());
    auto o = sc::vote_options(*checked);
    FUZZ_CHECK(o.ok(), "fixed options: %s", o.error().c_str());
    return *o;
  }();
  return opt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* formats[] = {"csv", "json", "jsonl"};
  std::string format = formats[data[0] % 3];
  sc::VoteType type = (data[0] / 3) % 2 ? sc::VoteType::Rating : sc::VoteType::Battle;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto file = evald::text::parse_records(text, "votes." + format, format);
  if (!file) return 0;
  std::vector<sc::Entrant> roster = {{"t1", "한빛팀"}, {"t2", "바다팀"}, {"t3", "산팀"}};
  sc::VoteSet set(roster, options());
  if (!set.add_records(*file, type).ok()) return 0;  // a CSV header without a required column
  set.apply_hygiene();
  const auto& c = set.counts(type);
  FUZZ_CHECK(c.records == c.valid + c.duplicates + c.rejected_total, "%llu records != %llu valid + %llu duplicates + %llu rejected",
             (unsigned long long)c.records, (unsigned long long)c.valid, (unsigned long long)c.duplicates,
             (unsigned long long)c.rejected_total);
  uint64_t by_reason = 0;
  for (auto n : c.excluded) by_reason += n;
  FUZZ_CHECK(by_reason == c.excluded_total && c.excluded_total <= c.valid, "exclusions do not add up");
  const uint64_t lines = 1 + uint64_t(std::count(text.begin(), text.end(), '\n'));
  for (auto& r : set.rejections()) {
    FUZZ_CHECK(r.line >= 1 && r.line <= lines, "rejection at line %llu of %llu", (unsigned long long)r.line, (unsigned long long)lines);
    FUZZ_CHECK(!r.reason.empty(), "rejection without a reason");
  }
  auto ev = sc::evaluate(set, "r1");
  if (!ev) return 0;
  for (auto& e : ev->entrants) {
    if (!e.get_bool("complete")) continue;
    double p = e.get_double("points");
    FUZZ_CHECK(std::isfinite(p) && p >= -1e-9 && p <= 25 + 1e-9, "points %g outside 0..25", p);
    if (auto* ci = e.find("points_ci"); ci && ci->is_array() && ci->as_array().size() == 2 && ci->as_array()[0].is_number()) {
      double lo = ci->as_array()[0].as_double(), hi = ci->as_array()[1].as_double();
      FUZZ_CHECK(lo <= hi + 1e-9 && lo >= -1e-9 && hi <= 25 + 1e-9, "interval [%g, %g] outside 0..25", lo, hi);
    }
  }
  return 0;
}
