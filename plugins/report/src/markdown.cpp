// report.md (the page's content as Markdown, without the charts) and scoreboard.csv.
#include "render_common.hpp"
#include "report.hpp"

#include <algorithm>

namespace evald::report {

namespace {

class Md {
 public:
  explicit Md(const Value& doc) : v_(doc) {}

  std::string render() {
    const Value& d = v_.doc;
    o_ += "# " + md_escape(v_.title()) + "\n\n*" + md_escape(v_.t(L::ReportTitle)) + "*\n\n";
    if (std::string n = d.get_string("notice"); !n.empty()) o_ += "> **" + md_escape(v_.t(L::Notice)) + ": " + md_escape(n) + "**\n\n";
    item(L::Competition, md_escape(d.get_string("competition")));
    item(L::Round, md_escape(d.get_string("round")));
    item(L::Run, "`" + md_escape(d.get_string("run")) + "`");
    item(L::Status, "**" + md_escape(v_.t(d.get_bool("decided") ? L::Decided : L::Undecided)) + "**");
    item(L::GeneratedAt, md_escape(d.get_string("generated_at")));
    if (!d.get_bool("decided"))
      for (auto& u : list_at(d, "undecided"))
        if (u.is_string()) o_ += "  - " + md_escape(v_.t(L::WaitingFor)) + ": " + md_escape(u.as_string()) + "\n";
    o_ += "\n";
    scoreboard();
    benchmark();
    panel();
    users();
    provenance();
    rules();
    manifest();
    return std::move(o_);
  }

 private:
  std::string e(std::string_view s) { return md_escape(s); }
  std::string t(L l) { return md_escape(v_.t(l)); }
  void item(L l, const std::string& md) { o_ += "- **" + t(l) + ":** " + md + "\n"; }
  void h2(L l) { o_ += "## " + t(l) + "\n\n"; }
  // A table: header cells, which are numeric (right-aligned), then rows of escaped cells.
  void table(const std::vector<std::string>& head, const std::vector<bool>& numeric, const std::vector<std::vector<std::string>>& rows) {
    o_ += "|";
    for (auto& h : head) o_ += " " + h + " |";
    o_ += "\n|";
    for (size_t i = 0; i < head.size(); ++i) o_ += i < numeric.size() && numeric[i] ? " ---: |" : " --- |";
    o_ += "\n";
    for (auto& r : rows) {
      o_ += "|";
      for (auto& c : r) o_ += " " + (c.empty() ? std::string(" ") : c) + " |";
      o_ += "\n";
    }
    o_ += "\n";
  }
  std::string iv(std::optional<std::pair<double, double>> x, int dec) { return x ? "[" + fixed(x->first, dec) + ", " + fixed(x->second, dec) + "]" : ""; }

  void scoreboard() {
    h2(L::Scoreboard);
    std::vector<std::string> head = {t(L::Rank), t(L::Team)};
    std::vector<bool> numeric = {true, false};
    for (auto& c : v_.components) head.push_back(e(c.label + " (" + v_.pts(c.scale) + ")")), numeric.push_back(true);
    head.push_back(e(std::string(v_.t(L::Total)) + " (" + v_.pts(v_.total_scale) + ")"));
    numeric.push_back(true);
    head.push_back(t(L::Decision));
    head.push_back(t(L::Reason));
    std::vector<std::vector<std::string>> rows;
    for (auto& x : v_.entrants()) {
      std::string dec = x.get_string("decision");
      bool dq = dec == "disqualified";
      std::vector<std::string> r;
      std::string rank = x.find("rank") && x.find("rank")->is_int() ? std::to_string(x.find("rank")->as_int()) : "—";
      if (x.get_bool("tied")) rank += " (" + t(L::Tied) + ")";
      if (dq && num_at(x, "would_be_rank")) rank += " (" + t(L::WouldHaveRanked) + " " + std::to_string(int64_t(*num_at(x, "would_be_rank"))) + ")";
      r.push_back(rank);
      r.push_back(e(x.get_string("name")) + " (" + e(x.get_string("entrant")) + ")");
      const Value* comps = map_at(x, "components");
      for (auto& c : v_.components) {
        const Value* cv = comps ? map_at(*comps, c.name) : nullptr;
        auto p = cv ? num_at(*cv, "points") : std::nullopt;
        std::string cell = p ? v_.pts(p) : "—";
        if (cv && cv->get_bool("counted_as_zero")) cell += " (" + t(L::CountedAsZero) + ")";
        else if (!p && cv && !cv->get_string("reason").empty()) cell += " (" + e(cv->get_string("reason")) + ")";
        r.push_back(cell);
      }
      auto total = num_at(x, "total");
      r.push_back(!total ? "—" : dq ? "**" + v_.pts(total) + "** (" + t(L::WouldHaveTotal) + " — " + t(L::NotCounted) + ")" : "**" + v_.pts(total) + "**");
      r.push_back(dq ? "**" + e(decision_label(dec, v_.lang)) + "**" : e(decision_label(dec, v_.lang)));
      r.push_back(dq ? "**" + e(x.get_string("decision_reason")) + "**" : e(x.get_string("decision_reason")));
      rows.push_back(std::move(r));
    }
    table(head, numeric, rows);
  }

  void benchmark() {
    if (!v_.any_detail("benchmark")) return;
    h2(L::Benchmark);
    std::vector<std::vector<std::string>> rows;
    for (auto& x : v_.entrants()) {
      const Value* b = DocView::detail(x, "benchmark");
      if (!b) continue;
      std::string team = e(v_.name_of(x.get_string("entrant")));
      std::string total = num_at(*b, "points") ? "**" + v_.pts(num_at(*b, "points")) + "**" + (num_at(*b, "scale") ? " / " + v_.pts(num_at(*b, "scale")) : "")
                                              : e(b->get_string("reason"));
      bool any = false;
      for (auto& s : list_at(*b, "suites"))
        if (s.is_map()) {
          any = true;
          rows.push_back({team, total, e(s.get_string("name").empty() ? s.get_string("suite") : s.get_string("name")), stat(num_at(s, "accuracy")),
                          iv(interval_at(s, "ci"), 3), e(text_at(s, "n")), v_.pts(num_at(s, "points"))});
        }
      if (!any) rows.push_back({team, total, "", "", "", "", ""});
    }
    table({t(L::Team), t(L::Points), t(L::Suite), t(L::Accuracy), t(L::Interval95), t(L::Items), t(L::Points)}, {false, true, false, true, true, true, true}, rows);
  }

  void panel() {
    const Value* pn = map_at(v_.doc, "panel");
    if (!pn && !v_.any_detail("expert")) return;
    h2(L::Panel);
    std::vector<std::vector<std::string>> rows;
    for (auto& x : v_.entrants()) {
      const Value* ex = DocView::detail(x, "expert");
      if (!ex) continue;
      std::string crit;
      for (auto& c : list_at(*ex, "criteria"))
        if (c.is_map())
          crit += (crit.empty() ? "" : "; ") + e(c.get_string("criterion")) + " " + fixed(num_at(c, "score"), 2) +
                  (num_at(c, "sd") ? " (" + fixed(num_at(c, "sd"), 2) + ")" : "");
      std::string spread;
      if (const Value* sp = map_at(*ex, "spread"); sp && num_at(*sp, "min"))
        spread = stat(num_at(*sp, "sd")) + "; " + v_.pts(num_at(*sp, "min")) + "–" + v_.pts(num_at(*sp, "max"));
      std::string pts = num_at(*ex, "points") ? v_.pts(num_at(*ex, "points")) : "—";
      if (num_at(*ex, "scale")) pts += " / " + v_.pts(num_at(*ex, "scale"));
      if (!ex->get_string("reason").empty()) pts += " (" + e(ex->get_string("reason")) + ")";
      rows.push_back({e(v_.name_of(x.get_string("entrant"))), pts, e(text_at(*ex, "raters")), spread, crit});
    }
    if (!rows.empty()) {
      table({t(L::Team), t(L::Points), t(L::Raters), t(L::Spread), t(L::PanelScores)}, {false, true, true, true, false}, rows);
    }
    if (!pn) return;
    if (map_at(*pn, "agreement")) {
      o_ += "### " + t(L::Agreement) + "\n\n";
      for (auto& [l, v] : agreement_facts(*pn)) item(l, e(v));
      o_ += "\n";
    }
    std::vector<std::vector<std::string>> raters;
    bool any = false;
    for (auto& r : list_at(*pn, "raters")) {
      if (!r.is_map()) continue;
      std::string why;
      for (auto& w : list_at(r, "reasons"))
        if (w.is_string()) why += (why.empty() ? "" : "; ") + w.as_string();
      any |= r.get_bool("flagged");
      raters.push_back({e(r.get_string("rater")), stat(num_at(r, "loo_correlation")), stat(num_at(r, "mean_deviation")),
                        r.get_bool("flagged") ? "**" + t(L::FlaggedYes) + "** " + e(why) : ""});
    }
    if (!raters.empty()) {
      o_ += "### " + t(L::Raters) + "\n\n";
      if (!any) o_ += t(L::NoneFlagged) + "\n\n";
      table({t(L::Rater), t(L::LooCorrelation), t(L::MeanDeviation), t(L::Flagged)}, {false, true, true, false}, raters);
    }
  }

  void users() {
    const Value* ue = map_at(v_.doc, "user_evaluation");
    if (!ue && !v_.any_detail("user")) return;
    h2(L::Users);
    std::vector<std::vector<std::string>> rows;
    for (auto& x : v_.entrants()) {
      const Value* u = DocView::detail(x, "user");
      if (!u) continue;
      const Value* b = map_at(*u, "battles");
      const Value* r = map_at(*u, "ratings");
      std::string pts = num_at(*u, "points") ? v_.pts(num_at(*u, "points")) + " " + iv(interval_at(*u, "points_ci"), v_.decimals) : "—";
      if (!u->get_string("reason").empty()) pts += " (" + e(u->get_string("reason")) + ")";
      rows.push_back({e(v_.name_of(x.get_string("entrant"))), pts,
                      b && num_at(*b, "strength") ? stat(num_at(*b, "strength")) + " " + iv(interval_at(*b, "ci"), 3) : "",
                      b ? stat(num_at(*b, "win_prob")) : "", b ? e(text_at(*b, "votes")) : "",
                      r && num_at(*r, "mean") ? fixed(num_at(*r, "mean"), 2) + " " + iv(interval_at(*r, "ci"), 2) + " (n " + e(text_at(*r, "n")) + ")" : ""});
    }
    if (!rows.empty())
      table({t(L::Team), t(L::UserPoints), t(L::Strength), t(L::WinProb), t(L::Battles), t(L::Ratings)}, {false, true, true, true, true, true}, rows);
    const Value* wr = ue ? map_at(*ue, "win_rate") : nullptr;
    if (!wr) return;
    auto& ids = list_at(*wr, "entrants");
    auto& m = list_at(*wr, "matrix");
    if (ids.empty() || m.size() != ids.size()) return;
    o_ += "### " + t(L::WinRate) + "\n\n" + t(L::WinRateCaption) + "\n\n";
    std::vector<std::string> head = {" "};
    std::vector<bool> numeric = {false};
    for (auto& id : ids) head.push_back(e(v_.name_of(id.is_string() ? id.as_string() : ""))), numeric.push_back(true);
    std::vector<std::vector<std::string>> wrows;
    for (size_t i = 0; i < ids.size(); ++i) {
      std::vector<std::string> r = {e(v_.name_of(ids[i].is_string() ? ids[i].as_string() : ""))};
      for (size_t j = 0; j < ids.size(); ++j) {
        auto x = m[i].is_array() && j < m[i].as_array().size() ? num(&m[i].as_array()[j]) : std::nullopt;
        r.push_back(x ? fixed(*x * 100, 0) + "%" : "—");
      }
      wrows.push_back(std::move(r));
    }
    table(head, numeric, wrows);
  }

  void provenance() {
    if (!v_.any_detail("provenance")) return;
    h2(L::Provenance);
    for (auto& x : v_.entrants()) {
      const Value* p = DocView::detail(x, "provenance");
      if (!p) continue;
      const Value* gate = map_at(*p, "gate");
      std::string result = gate ? gate->get_string("result") : "";
      o_ += "### " + e(v_.name_of(x.get_string("entrant"))) + (result.empty() ? "" : " — " + e(verdict_label(result, v_.lang))) + "\n\n";
      if (gate) item(L::GateReason, result == "fail" ? "**" + e(gate->get_string("reason")) + "**" : e(gate->get_string("reason")));
      if (const Value* mdl = p->find("model"); mdl && mdl->is_string()) item(L::Model, e(mdl->as_string()));
      if (!p->get_string("report_file").empty())
        item(L::EvidenceFile, e(p->get_string("report_file")) + " (sha256 `" + e(p->get_string("report_sha256")) + "`)");
      if (const Value* err = p->find("error"); err && err->is_string()) item(L::Error, e(err->as_string()));
      o_ += "\n";
      std::vector<std::vector<std::string>> rows;
      for (auto& c : list_at(*p, "components")) {
        if (!c.is_map()) continue;
        std::string verdict = c.get_string("verdict");
        std::string src = c.get_string("source");
        rows.push_back({e(c.get_string("component")), verdict == "derived" ? "**" + e(verdict_label(verdict, v_.lang)) + "**" : e(verdict_label(verdict, v_.lang)),
                        e(src.empty() ? c.get_string("reference") : src), stat(num_at(c, "p_holm")), stat(num_at(c, "effect")), e(c.get_string("reason"))});
      }
      if (!rows.empty())
        table({t(L::Component), t(L::Verdict), t(L::DerivedFrom), t(L::PHolm), t(L::Effect), t(L::Reason)}, {false, false, false, true, true, false}, rows);
    }
  }

  void rules() {
    const Value& tl = v_.tally();
    h2(L::Rule);
    if (const Value* r = map_at(tl, "rule"); r && !r->get_string("text").empty()) {
      o_ += e(r->get_string("text")) + "\n\n";
      if (v_.lang == Lang::Ko) o_ += "*" + t(L::RuleInEnglish) + "*\n\n";
    }
    o_ += "### " + t(L::OperatorDecisions) + "\n\n";
    std::vector<std::vector<std::string>> rows;
    for (auto& d : list_at(tl, "operator_decisions"))
      if (d.is_map())
        rows.push_back({e(d.get_string("id")), e(v_.name_of(d.get_string("entrant"))), e(d.get_string("decision")), e(d.get_string("reason")),
                        e(d.get_string("by")), e(d.get_string("received_at"))});
    if (rows.empty()) o_ += t(L::None) + "\n\n";
    else table({t(L::Id), t(L::Team), t(L::Decision), t(L::Reason), t(L::DecisionBy), t(L::ReceivedAt)}, {}, rows);
    auto& ign = list_at(tl, "ignored_decisions");
    if (!ign.empty()) {
      o_ += "### " + t(L::IgnoredDecisions) + "\n\n";
      for (auto& d : ign)
        if (d.is_map()) o_ += "- " + e(d.get_string("id")) + ": " + e(d.get_string("reason")) + "\n";
      o_ += "\n";
    }
    std::vector<std::vector<std::string>> failed;
    for (auto& f : list_at(v_.doc, "failed_upstream"))
      if (f.is_map()) failed.push_back({e(f.get_string("stage")), e(f.get_string("entrant")), e(f.get_string("error"))});
    if (!failed.empty()) {
      o_ += "### " + t(L::FailedUpstream) + "\n\n";
      table({t(L::Stage), t(L::Entrant), t(L::Error)}, {}, failed);
    }
    auto& notes = list_at(v_.doc, "notes");
    if (!notes.empty()) {
      o_ += "### " + t(L::Notes) + "\n\n";
      for (auto& n : notes)
        if (n.is_string()) o_ += "- " + e(n.as_string()) + "\n";
      o_ += "\n";
    }
  }

  void manifest() {
    const Value& d = v_.doc;
    h2(L::Manifest);
    const Value* ri = map_at(d, "run_info");
    if (ri) {
      if (const Value* p = map_at(*ri, "pipeline_info"))
        item(L::Pipeline, e(p->get_string("name")) + " · " + e(p->get_string("source")) + " (sha256 `" + e(p->get_string("sha256")) + "`)");
      if (!ri->get_string("daemon_version").empty()) item(L::DaemonVersion, e(ri->get_string("daemon_version")));
    }
    if (const Value* man = map_at(d, "manifest")) item(L::PublicKey, "`" + e(man->get_string("public_key")) + "`");
    o_ += "\n";
    std::vector<std::vector<std::string>> plugins;
    if (ri)
      for (auto& p : list_at(*ri, "plugins"))
        if (p.is_map())
          plugins.push_back({e(p.get_string("name")), e(p.get_string("version")), e(text_at(p, "abi")), e(p.get_string("path")), "`" + e(p.get_string("sha256")) + "`"});
    if (!plugins.empty()) {
      o_ += "### " + t(L::Plugins) + "\n\n";
      table({t(L::Name), t(L::Version), "ABI", t(L::Path), t(L::Sha256)}, {}, plugins);
    }
    std::vector<std::vector<std::string>> inputs;
    for (auto& in : list_at(d, "inputs")) {
      if (!in.is_map()) continue;
      std::string at = in.get_string("at_report");
      std::string_view atl = at == "same" ? v_.t(L::InputSame) : at == "changed" ? v_.t(L::InputChanged) : at == "missing" ? v_.t(L::InputMissing) : at;
      inputs.push_back({e(in.get_string("role")), e(in.get_string("path")), "`" + e(in.get_string("sha256")) + "`", at == "same" ? e(atl) : "**" + e(atl) + "**"});
    }
    if (!inputs.empty()) {
      o_ += "### " + t(L::Inputs) + "\n\n";
      table({t(L::Role), t(L::Path), t(L::Sha256), t(L::AtReport)}, {}, inputs);
    }
    o_ += "### " + t(L::Signature) + "\n\n" + t(L::SignatureHow) + "\n";
  }

  DocView v_;
  std::string o_;
};

}  // namespace

std::string render_markdown(const Value& doc) { return Md(doc).render(); }

std::string render_csv(const Value& doc) {
  DocView v(doc);
  // The byte order mark makes Excel read the file as UTF-8 (Korean names); RFC 4180 lines end in CRLF.
  std::string out = "\xEF\xBB\xBF";
  std::vector<std::string> head = {"rank", "entrant", "name"};
  for (auto& c : v.components) head.push_back(c.name);
  for (const char* h : {"total", "decision", "reason"}) head.push_back(h);
  for (size_t i = 0; i < head.size(); ++i) out += (i ? "," : "") + csv_field(head[i], true);
  out += "\r\n";
  for (auto& e : v.entrants()) {
    std::vector<std::string> r;
    r.push_back(e.find("rank") && e.find("rank")->is_int() ? std::to_string(e.find("rank")->as_int()) : "");
    r.push_back(csv_field(e.get_string("entrant"), true));
    r.push_back(csv_field(e.get_string("name"), true));
    const Value* comps = map_at(e, "components");
    for (auto& c : v.components) {
      const Value* cv = comps ? map_at(*comps, c.name) : nullptr;
      r.push_back(cv ? v.pts(num_at(*cv, "points")) : "");
    }
    // A disqualified entrant's total is the one it would have had; decision says it does not count.
    r.push_back(v.pts(num_at(e, "total")));
    r.push_back(csv_field(e.get_string("decision"), true));
    r.push_back(csv_field(e.get_string("decision_reason"), true));
    for (size_t i = 0; i < r.size(); ++i) out += (i ? "," : "") + r[i];
    out += "\r\n";
  }
  return out;
}

}  // namespace evald::report
