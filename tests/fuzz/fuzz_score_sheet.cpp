// fuzz_score_sheet: an expert panel's score sheet from arbitrary bytes, end to end. The first
// byte picks the format (CSV, JSON, JSONL); the rest is the file. When it reads, the rows are
// scored against a fixed roster and criteria. Properties:
//   * every row ends up exactly once as used, rejected or excluded (nothing silently dropped);
//   * every rejection names the sheet and a line within it;
//   * an entrant's points, when complete, lie within 0..scale, and its criteria within range.
#include "fuzz_common.hpp"
#include "panel.hpp"
#include "records.hpp"

#include <algorithm>
#include <cmath>

using evald::Value;
using namespace evald::scores;

namespace {

const PanelConfig& config() {
  static const PanelConfig cfg = [] {
    Value v;
    evald::Array cs;
    for (auto [name, label, lo, hi] : {std::tuple{"utility", "활용성", 0.0, 10.0}, {"efficiency", "효율성", 1.0, 5.0}}) {
      Value c;
      c.set("name", name);
      c.set("label", label);
      c.set("weight", 1.0);
      c.set("min", lo);
      c.set("max", hi);
      cs.push_back(c);
    }
    v.set("criteria", cs);
    v.set("scale", 35.0);
    Value coi;
    coi.set("rater", "r9");
    coi.set("entrant", "t2");
    v.set("conflicts", evald::Array{coi});
    return *panel_config_from(v);
  }();
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* formats[] = {"csv", "json", "jsonl"};
  std::string format = formats[data[0] % 3];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto file = evald::text::parse_records(text, "sheet." + format, format);
  if (!file) {
    FUZZ_CHECK(file.error().rfind("sheet." + format, 0) == 0, "error does not name the file: %s", file.error().c_str());
    return 0;
  }
  const uint64_t lines = 1 + uint64_t(std::count(text.begin(), text.end(), '\n'));
  std::vector<SheetRow> rows;
  for (auto& r : file->records) {
    FUZZ_CHECK(r.line >= 1 && r.line <= lines, "record at line %llu of %llu", (unsigned long long)r.line, (unsigned long long)lines);
    rows.push_back({file->path, r.line, "", r.fields, r.defect});
  }
  std::vector<RosterEntry> roster = {{"t1", "한빛팀"}, {"t2", "바다팀"}, {"t3", "t1"}};
  Value result = score_panel(config(), roster, rows);
  auto& counts = *result.find("counts");
  FUZZ_CHECK(counts.get_int("used") + counts.get_int("rejected") + counts.get_int("excluded_conflict") == int64_t(rows.size()),
             "%lld used + %lld rejected + %lld excluded != %zu rows", (long long)counts.get_int("used"),
             (long long)counts.get_int("rejected"), (long long)counts.get_int("excluded_conflict"), rows.size());
  for (auto& r : result.find("rejected")->as_array()) {
    std::string where = r.get_string("where");
    FUZZ_CHECK(where.rfind(file->path + ":", 0) == 0, "rejection without its place: %s", where.c_str());
    FUZZ_CHECK(!r.get_string("reason").empty(), "rejection without a reason at %s", where.c_str());
  }
  for (auto& e : result.find("entrants")->as_array()) {
    if (!e.get_bool("complete")) continue;
    double p = e.get_double("points");
    FUZZ_CHECK(std::isfinite(p) && p >= -1e-9 && p <= 35 + 1e-9, "points %g outside 0..35", p);
    for (auto& c : e.find("criteria")->as_array()) {
      auto& range = c.find("range")->as_array();
      double s = c.get_double("score");
      FUZZ_CHECK(s >= range[0].as_double() - 1e-9 && s <= range[1].as_double() + 1e-9, "criterion score %g out of range", s);
    }
  }
  return 0;
}
