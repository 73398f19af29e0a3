// report.html: one self-contained page. Inline CSS and inline SVG only; no script, no link,
// no image or font that would be fetched (a Content-Security-Policy of default-src 'none'
// says so to the browser too). Every piece of text from the inputs goes through html_escape.
#include "render_common.hpp"
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace evald::report {

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};

constexpr const char* kCss = R"css(
:root{color-scheme:light}
body{font-family:system-ui,"Noto Sans CJK KR","Noto Sans KR","Malgun Gothic","Apple SD Gothic Neo",sans-serif;margin:2rem auto;max-width:1120px;padding:0 1rem;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6rem;margin:.1rem 0 .4rem}
h2{font-size:1.25rem;border-bottom:2px solid #333;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
.kicker{text-transform:uppercase;letter-spacing:.06em;font-size:.8rem;color:#555}
.notice{border:3px solid #b00020;background:#fff0f0;color:#7a0010;font-weight:700;font-size:1.15rem;padding:.8rem 1rem;margin:1rem 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.6rem 0}
dl.meta dt{font-weight:600;color:#444}
dl.meta dd{margin:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.num{white-space:normal}
td.reason{min-width:14rem}
.wide{overflow-x:auto;max-width:100%}
tr.dq td{background:#fdecea}
tr.pending td{background:#fff8e1}
tr.flag td{background:#fff3e0}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.6rem;font-size:.82rem;font-weight:700;white-space:nowrap}
.b-advance,.b-pass,.b-independent{background:#e3f4e6;color:#1b5e20}
.b-eliminated,.b-absent{background:#eceff1;color:#37474f}
.b-disqualified,.b-fail,.b-derived{background:#b00020;color:#fff}
.b-pending,.b-inconclusive,.b-missing{background:#ffe082;color:#5d4000}
.dqnote{display:block;font-size:.8rem;color:#7a0010;font-weight:600;white-space:normal}
.why{font-weight:600;color:#7a0010}
.decided{color:#1b5e20;font-weight:700}
.undecided{color:#a15c00;font-weight:700}
.small{font-size:.82rem;color:#555}
.hash,code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.8rem;word-break:break-all}
svg{max-width:100%;height:auto;font-family:inherit}
figure{margin:.8rem 0}
figcaption{font-size:.85rem;color:#555}
footer{margin-top:3rem;border-top:1px solid #bbb;padding-top:.6rem;font-size:.82rem;color:#555}
@media print{body{margin:0;max-width:none}h2,h3{break-after:avoid}table,figure{break-inside:avoid}}
)css";

std::string f1(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", x);
  return b;
}

// Ticks at 1, 2 or 5 times a power of ten, about `want` of them across [0, hi].
double nice_step(double span, int want) {
  if (!(span > 0)) return 1;
  double raw = span / want, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

// Sequential colour for an effect in [0, 1]: pale to dark red.
std::string heat(double e) {
  static const double stops[][3] = {{255, 247, 236}, {253, 212, 158}, {252, 141, 89}, {215, 48, 31}, {127, 0, 0}};
  e = std::clamp(e, 0.0, 1.0) * 4;
  int i = std::min(3, int(e));
  double f = e - i;
  char b[16];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", int(std::lround(stops[i][0] + (stops[i + 1][0] - stops[i][0]) * f)),
                int(std::lround(stops[i][1] + (stops[i + 1][1] - stops[i][1]) * f)), int(std::lround(stops[i][2] + (stops[i + 1][2] - stops[i][2]) * f)));
  return b;
}

class Page {
 public:
  explicit Page(const Value& doc) : v_(doc) {}

  std::string render() {
    head();
    o_ += "<main>\n";
    scoreboard();
    chart();
    benchmark();
    panel();
    users();
    provenance();
    rules();
    manifest();
    o_ += "</main>\n";
    o_ += "<footer>evald report " + esc(v_.doc.get_string("plugin_version")) + " · " + esc(v_.doc.get_string("generated_at")) + "</footer>\n";
    o_ += "</body>\n</html>\n";
    return std::move(o_);
  }

 private:
  static std::string esc(std::string_view s) { return html_escape(s); }
  std::string t(L l) const { return esc(v_.t(l)); }
  void th(std::string_view s, bool num = false) { o_ += std::string(num ? "<th class=\"num\">" : "<th>") + esc(s) + "</th>"; }
  void td(std::string_view s, bool num = false) { o_ += std::string(num ? "<td class=\"num\">" : "<td>") + esc(s) + "</td>"; }
  void td_raw(const std::string& html, bool num = false) { o_ += std::string(num ? "<td class=\"num\">" : "<td>") + html + "</td>"; }
  std::string badge(const std::string& word, std::string_view text) {
    std::string cls;
    for (char c : word) cls += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    return "<span class=\"badge b-" + cls + "\">" + esc(text) + "</span>";
  }
  std::string dash(const std::string& s) { return s.empty() ? "—" : esc(s); }
  std::string interval(std::optional<std::pair<double, double>> iv, int dec) {
    if (!iv) return "";
    return "[" + fixed(iv->first, dec) + ", " + fixed(iv->second, dec) + "]";
  }

  void head() {
    const Value& d = v_.doc;
    o_ += "<!DOCTYPE html>\n<html lang=\"" + std::string(v_.lang == Lang::Ko ? "ko" : "en") + "\">\n<head>\n<meta charset=\"utf-8\">\n";
    o_ += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    // Nothing on this page may load or run anything, whatever a team name contains.
    o_ += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n";
    o_ += "<meta name=\"referrer\" content=\"no-referrer\">\n";
    o_ += "<meta name=\"generator\" content=\"evald report " + esc(d.get_string("plugin_version")) + "\">\n";
    o_ += "<title>" + esc(v_.title()) + " — " + t(L::ReportTitle) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<header>\n";
    o_ += "<div class=\"kicker\">" + t(L::ReportTitle) + "</div>\n<h1>" + esc(v_.title()) + "</h1>\n";
    if (std::string n = d.get_string("notice"); !n.empty())
      o_ += "<div class=\"notice\" role=\"note\"><span>" + t(L::Notice) + ":</span> " + esc(n) + "</div>\n";
    o_ += "<dl class=\"meta\">\n";
    auto row = [&](L l, const std::string& html) { o_ += "<dt>" + t(l) + "</dt><dd>" + html + "</dd>\n"; };
    row(L::Competition, esc(d.get_string("competition")));
    row(L::Round, esc(d.get_string("round")));
    row(L::Run, "<span class=\"hash\">" + esc(d.get_string("run")) + "</span>");
    bool decided = d.get_bool("decided");
    row(L::Status, decided ? "<span class=\"decided\">" + t(L::Decided) + "</span>" : "<span class=\"undecided\">" + t(L::Undecided) + "</span>");
    row(L::GeneratedAt, esc(d.get_string("generated_at")));
    o_ += "</dl>\n";
    auto& und = list_at(d, "undecided");
    if (!decided && !und.empty()) {
      o_ += "<p><strong>" + t(L::WaitingFor) + ":</strong></p>\n<ul>\n";
      for (auto& u : und)
        if (u.is_string()) o_ += "<li>" + esc(u.as_string()) + "</li>\n";
      o_ += "</ul>\n";
    }
    o_ += "</header>\n";
  }

  void scoreboard() {
    o_ += "<section id=\"scoreboard\">\n<h2>" + t(L::Scoreboard) + "</h2>\n<div class=\"wide\">\n<table>\n<thead><tr>";
    th(v_.t(L::Rank), true);
    th(v_.t(L::Team));
    for (auto& c : v_.components) th(c.label + " (" + v_.pts(c.scale) + ")", true);
    th(std::string(v_.t(L::Total)) + " (" + v_.pts(v_.total_scale) + ")", true);
    th(v_.t(L::Decision));
    th(v_.t(L::Reason));
    o_ += "</tr></thead>\n<tbody>\n";
    for (auto& e : v_.entrants()) {
      std::string dec = e.get_string("decision");
      bool dq = dec == "disqualified";
      o_ += std::string("<tr") + (dq ? " class=\"dq\"" : dec == "pending" ? " class=\"pending\"" : "") + ">";
      // Rank; a disqualified team shows the rank its total would have had.
      std::string rank = e.find("rank") && e.find("rank")->is_int() ? std::to_string(e.find("rank")->as_int()) : "—";
      if (e.get_bool("tied")) rank += " <span class=\"small\">(" + t(L::Tied) + ")</span>";
      if (dq && num_at(e, "would_be_rank"))
        rank += "<span class=\"dqnote\">" + t(L::WouldHaveRanked) + " " + std::to_string(int64_t(*num_at(e, "would_be_rank"))) + "</span>";
      td_raw(rank, true);
      td_raw(esc(e.get_string("name")) + "<br><span class=\"small\">" + esc(e.get_string("entrant")) + "</span>");
      const Value* comps = map_at(e, "components");
      for (auto& c : v_.components) {
        const Value* cv = comps ? map_at(*comps, c.name) : nullptr;
        std::string cell;
        if (cv && num_at(*cv, "points")) {
          cell = esc(v_.pts(num_at(*cv, "points")));
          if (cv->get_bool("counted_as_zero")) cell += "<span class=\"small\">* " + t(L::CountedAsZero) + "</span>";
        } else {
          cell = "—";
          if (cv && !cv->get_string("reason").empty()) cell += "<span class=\"small\"><br>" + esc(cv->get_string("reason")) + "</span>";
        }
        td_raw(cell, true);
      }
      std::string total = num_at(e, "total") ? esc(v_.pts(num_at(e, "total"))) : "—";
      if (dq && num_at(e, "total")) total = "<strong>" + total + "</strong><span class=\"dqnote\">" + t(L::WouldHaveTotal) + " — " + t(L::NotCounted) + "</span>";
      else if (num_at(e, "total")) total = "<strong>" + total + "</strong>";
      td_raw(total, true);
      td_raw(badge(dec, decision_label(dec, v_.lang)));
      std::string reason = dq ? "<span class=\"why\">" + esc(e.get_string("decision_reason")) + "</span>" : esc(e.get_string("decision_reason"));
      if (const Value* op = map_at(e, "operator_decision"))
        reason += "<br><span class=\"small\">" + t(L::OperatorDecisions) + ": " + esc(op->get_string("id")) + " · " + esc(op->get_string("decision")) + " · " +
                  esc(op->get_string("by")) + "</span>";
      o_ += "<td class=\"reason\">" + reason + "</td>";
      o_ += "</tr>\n";
    }
    o_ += "</tbody>\n</table>\n</div>\n</section>\n";
  }

  // Stacked horizontal bars of the component points, on the round's scale.
  void chart() {
    std::vector<const Value*> rows;
    for (auto& e : v_.entrants())
      if (map_at(e, "components")) rows.push_back(&e);
    if (rows.empty() || v_.components.empty() || !(v_.total_scale > 0)) return;
    const double left = 210, width = 520, rowh = 28, top = 10;
    const double axis_y = top + rowh * double(rows.size()) + 4;
    const int per_line = 3;
    const double legend_y = axis_y + 42, legend_h = 22 * double((v_.components.size() + per_line - 1) / per_line);
    const double W = left + width + 150, H = legend_y + legend_h + 6;
    auto x = [&](double p) { return left + width * std::clamp(p / v_.total_scale, 0.0, 1.0); };
    o_ += "<section id=\"chart\">\n<h2>" + t(L::ChartTitle) + "</h2>\n<figure>\n";
    o_ += "<svg viewBox=\"0 0 " + f1(W) + " " + f1(H) + "\" width=\"" + f1(W) + "\" height=\"" + f1(H) + "\" role=\"img\" aria-label=\"" + t(L::ChartTitle) + "\">\n";
    double step = nice_step(v_.total_scale, 10);
    for (double g = 0; g <= v_.total_scale + 1e-9; g += step) {
      o_ += "<line x1=\"" + f1(x(g)) + "\" y1=\"" + f1(top - 4) + "\" x2=\"" + f1(x(g)) + "\" y2=\"" + f1(axis_y) + "\" stroke=\"#ddd\"/>";
      o_ += "<text x=\"" + f1(x(g)) + "\" y=\"" + f1(axis_y + 16) + "\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">" + esc(fixed(g, step < 1 ? 1 : 0)) + "</text>\n";
    }
    o_ += "<line x1=\"" + f1(left) + "\" y1=\"" + f1(axis_y) + "\" x2=\"" + f1(left + width) + "\" y2=\"" + f1(axis_y) + "\" stroke=\"#333\"/>\n";
    o_ += "<text x=\"" + f1(left + width) + "\" y=\"" + f1(axis_y + 30) + "\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">" + t(L::Scale) + " " +
          esc(v_.pts(v_.total_scale)) + "</text>\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Value& e = *rows[i];
      double y = top + rowh * double(i);
      bool dq = e.get_string("decision") == "disqualified";
      std::string name = e.get_string("name").empty() ? e.get_string("entrant") : e.get_string("name");
      o_ += "<g" + std::string(dq ? " opacity=\"0.45\"" : "") + "><title>" + esc(name) + "</title>";
      o_ += "<text x=\"" + f1(left - 8) + "\" y=\"" + f1(y + 15) + "\" font-size=\"13\" text-anchor=\"end\">" + esc(truncate_utf8(name, 22)) + "</text>";
      double acc = 0;
      const Value* comps = map_at(e, "components");
      for (size_t c = 0; c < v_.components.size(); ++c) {
        const Value* cv = map_at(*comps, v_.components[c].name);
        auto p = cv ? num_at(*cv, "points") : std::nullopt;
        if (!p || *p <= 0) continue;
        double x0 = x(acc), x1 = x(acc + *p);
        o_ += "<rect x=\"" + f1(x0) + "\" y=\"" + f1(y + 3) + "\" width=\"" + f1(std::max(0.0, x1 - x0)) + "\" height=\"18\" fill=\"" +
              kPalette[c % std::size(kPalette)] + "\" stroke=\"#fff\" stroke-width=\"0.5\"><title>" + esc(name) + " — " + esc(v_.components[c].label) + ": " +
              esc(v_.pts(p)) + " / " + esc(v_.pts(v_.components[c].scale)) + "</title></rect>";
        acc += *p;
      }
      std::string end = num_at(e, "total") ? v_.pts(num_at(e, "total")) : std::string("—");
      if (dq) end += " (" + std::string(v_.t(L::DecDisqualified)) + ")";
      o_ += "<text x=\"" + f1(x(acc) + 6) + "\" y=\"" + f1(y + 16) + "\" font-size=\"12\" font-weight=\"700\">" + esc(end) + "</text></g>\n";
    }
    for (size_t c = 0; c < v_.components.size(); ++c) {
      double lx = left + double(c % per_line) * 230, ly = legend_y + 22 * double(c / per_line);
      o_ += "<rect x=\"" + f1(lx) + "\" y=\"" + f1(ly) + "\" width=\"14\" height=\"14\" fill=\"" + kPalette[c % std::size(kPalette)] + "\"/>";
      o_ += "<text x=\"" + f1(lx + 20) + "\" y=\"" + f1(ly + 12) + "\" font-size=\"12\">" + esc(v_.components[c].label) + " (" + t(L::Scale) + " " +
            esc(v_.pts(v_.components[c].scale)) + ")</text>\n";
    }
    o_ += "</svg>\n<figcaption>" + t(L::ChartCaption) + "</figcaption>\n</figure>\n</section>\n";
  }

  // A dot with its interval on [lo, hi], as a small inline SVG.
  std::string mini_interval(std::optional<double> x, std::optional<std::pair<double, double>> iv, double lo, double hi) {
    if (!x || !(hi > lo)) return "";
    const double w = 160, pad = 6;
    auto px = [&](double v) { return pad + (w - 2 * pad) * std::clamp((v - lo) / (hi - lo), 0.0, 1.0); };
    std::string s = "<svg viewBox=\"0 0 " + f1(w) + " 16\" width=\"" + f1(w) + "\" height=\"16\" role=\"img\">";
    s += "<line x1=\"" + f1(pad) + "\" y1=\"8\" x2=\"" + f1(w - pad) + "\" y2=\"8\" stroke=\"#ddd\"/>";
    if (iv)
      s += "<line x1=\"" + f1(px(iv->first)) + "\" y1=\"8\" x2=\"" + f1(px(iv->second)) + "\" y2=\"8\" stroke=\"#1f77b4\" stroke-width=\"2\"/>" +
           "<line x1=\"" + f1(px(iv->first)) + "\" y1=\"4\" x2=\"" + f1(px(iv->first)) + "\" y2=\"12\" stroke=\"#1f77b4\"/>" + "<line x1=\"" +
           f1(px(iv->second)) + "\" y1=\"4\" x2=\"" + f1(px(iv->second)) + "\" y2=\"12\" stroke=\"#1f77b4\"/>";
    s += "<circle cx=\"" + f1(px(*x)) + "\" cy=\"8\" r=\"3.5\" fill=\"#0b3d66\"/></svg>";
    return s;
  }

  void benchmark() {
    if (!v_.any_detail("benchmark")) return;
    // One axis for every suite: [0, 1] for accuracies, wider when a value falls outside.
    double lo = 0, hi = 1;
    for (auto& e : v_.entrants())
      if (const Value* b = DocView::detail(e, "benchmark"))
        for (auto& s : list_at(*b, "suites")) {
          if (!s.is_map()) continue;
          for (auto v : {num_at(s, "accuracy")})
            if (v) lo = std::min(lo, *v), hi = std::max(hi, *v);
          if (auto iv = interval_at(s, "ci")) lo = std::min(lo, iv->first), hi = std::max(hi, iv->second);
        }
    // One table for every team, so a suite reads down the page across teams.
    o_ += "<section id=\"benchmark\">\n<h2>" + t(L::Benchmark) + "</h2>\n<table>\n<thead><tr>";
    th(v_.t(L::Team));
    th(v_.t(L::Suite));
    th(v_.t(L::Accuracy), true);
    th(v_.t(L::Interval95), true);
    o_ += "<th></th>";
    th(v_.t(L::Items), true);
    th(v_.t(L::Points), true);
    o_ += "</tr></thead>\n<tbody>\n";
    for (auto& e : v_.entrants()) {
      const Value* b = DocView::detail(e, "benchmark");
      if (!b) continue;
      std::vector<const Value*> suites;
      for (auto& s : list_at(*b, "suites"))
        if (s.is_map()) suites.push_back(&s);
      std::string team = esc(v_.name_of(e.get_string("entrant")));
      if (auto pts = num_at(*b, "points"))
        team += "<br>" + t(L::Points) + " <strong>" + esc(v_.pts(pts)) + "</strong>" + (num_at(*b, "scale") ? " / " + esc(v_.pts(num_at(*b, "scale"))) : "");
      if (!b->get_string("reason").empty()) team += "<br><span class=\"small\">" + esc(b->get_string("reason")) + "</span>";
      o_ += "<tr><td rowspan=\"" + std::to_string(std::max<size_t>(1, suites.size())) + "\">" + team + "</td>";
      if (suites.empty()) o_ += "<td colspan=\"6\"></td></tr>\n";
      for (size_t i = 0; i < suites.size(); ++i) {
        const Value& s = *suites[i];
        if (i) o_ += "<tr>";
        td(s.get_string("name").empty() ? s.get_string("suite") : s.get_string("name"));
        td(stat(num_at(s, "accuracy")), true);
        td(interval(interval_at(s, "ci"), 3), true);
        td_raw(mini_interval(num_at(s, "accuracy"), interval_at(s, "ci"), lo, hi));
        td(text_at(s, "n"), true);
        td(v_.pts(num_at(s, "points")), true);
        o_ += "</tr>\n";
      }
    }
    o_ += "</tbody>\n</table>\n";
    o_ += "</section>\n";
  }

  void panel() {
    const Value* pn = map_at(v_.doc, "panel");
    if (!pn && !v_.any_detail("expert")) return;
    o_ += "<section id=\"panel\">\n<h2>" + t(L::Panel) + "</h2>\n";
    if (v_.any_detail("expert")) {
      // Criteria in the order the entrants list them.
      std::vector<std::string> crit;
      for (auto& e : v_.entrants())
        if (const Value* x = DocView::detail(e, "expert"))
          for (auto& c : list_at(*x, "criteria"))
            if (c.is_map() && std::find(crit.begin(), crit.end(), c.get_string("criterion")) == crit.end()) crit.push_back(c.get_string("criterion"));
      o_ += "<table>\n<thead><tr>";
      th(v_.t(L::Team));
      th(v_.t(L::Points), true);
      th(v_.t(L::Raters), true);
      th(v_.t(L::Spread), true);
      for (auto& c : crit) th(c, true);
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& e : v_.entrants()) {
        const Value* x = DocView::detail(e, "expert");
        if (!x) continue;
        o_ += "<tr>";
        td(v_.name_of(e.get_string("entrant")));
        std::string p = num_at(*x, "points") ? "<strong>" + esc(v_.pts(num_at(*x, "points"))) + "</strong>" : "—";
        if (num_at(*x, "scale")) p += " / " + esc(v_.pts(num_at(*x, "scale")));
        if (!x->get_string("reason").empty()) p += "<br><span class=\"small\">" + esc(x->get_string("reason")) + "</span>";
        td_raw(p, true);
        td(text_at(*x, "raters"), true);
        std::string spread;
        if (const Value* sp = map_at(*x, "spread"); sp && num_at(*sp, "min"))
          spread = stat(num_at(*sp, "sd")) + "; " + v_.pts(num_at(*sp, "min")) + "–" + v_.pts(num_at(*sp, "max"));
        td(spread, true);
        for (auto& cname : crit) {
          std::string cell;
          for (auto& c : list_at(*x, "criteria"))
            if (c.is_map() && c.get_string("criterion") == cname) {
              cell = fixed(num_at(c, "score"), 2);
              if (auto sd = num_at(c, "sd")) cell += " (" + fixed(sd, 2) + ")";
            }
          td(cell, true);
        }
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n<p class=\"small\">" + t(L::PanelScores) + "</p>\n";
    }
    if (!pn) {
      o_ += "</section>\n";
      return;
    }
    if (map_at(*pn, "agreement")) {
      o_ += "<h3>" + t(L::Agreement) + "</h3>\n<dl class=\"meta\">\n";
      for (auto& [l, v] : agreement_facts(*pn)) o_ += "<dt>" + t(l) + "</dt><dd>" + esc(v) + "</dd>\n";
      o_ += "</dl>\n";
    }
    auto& raters = list_at(*pn, "raters");
    if (!raters.empty()) {
      bool any = false;
      for (auto& r : raters) any |= r.is_map() && r.get_bool("flagged");
      o_ += "<h3>" + t(L::Raters) + "</h3>\n";
      if (!any) o_ += "<p>" + t(L::NoneFlagged) + "</p>\n";
      o_ += "<table>\n<thead><tr>";
      th(v_.t(L::Rater));
      th(v_.t(L::LooCorrelation), true);
      th(v_.t(L::MeanDeviation), true);
      th(v_.t(L::Flagged));
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& r : raters) {
        if (!r.is_map()) continue;
        bool fl = r.get_bool("flagged");
        o_ += fl ? "<tr class=\"flag\">" : "<tr>";
        td(r.get_string("rater"));
        td(stat(num_at(r, "loo_correlation")), true);
        td(stat(num_at(r, "mean_deviation")), true);
        std::string why;
        for (auto& w : list_at(r, "reasons"))
          if (w.is_string()) why += (why.empty() ? "" : "; ") + w.as_string();
        td_raw(fl ? badge("fail", v_.t(L::FlaggedYes)) + " " + esc(why) : "");
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n";
    }
    o_ += "</section>\n";
  }

  void users() {
    const Value* ue = map_at(v_.doc, "user_evaluation");
    if (!ue && !v_.any_detail("user")) return;
    o_ += "<section id=\"users\">\n<h2>" + t(L::Users) + "</h2>\n";
    if (v_.any_detail("user")) {
      o_ += "<table>\n<thead><tr>";
      th(v_.t(L::Team));
      th(v_.t(L::UserPoints), true);
      th(v_.t(L::Strength), true);
      th(v_.t(L::WinProb), true);
      th(v_.t(L::Battles), true);
      th(v_.t(L::Ratings), true);
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& e : v_.entrants()) {
        const Value* u = DocView::detail(e, "user");
        if (!u) continue;
        o_ += "<tr>";
        td(v_.name_of(e.get_string("entrant")));
        std::string p = num_at(*u, "points") ? "<strong>" + esc(v_.pts(num_at(*u, "points"))) + "</strong> " + esc(interval(interval_at(*u, "points_ci"), v_.decimals)) : "—";
        if (!u->get_string("reason").empty()) p += "<br><span class=\"small\">" + esc(u->get_string("reason")) + "</span>";
        td_raw(p, true);
        const Value* b = map_at(*u, "battles");
        td(b && num_at(*b, "strength") ? stat(num_at(*b, "strength")) + " " + interval(interval_at(*b, "ci"), 3) : "", true);
        td(b ? stat(num_at(*b, "win_prob")) : "", true);
        td(b ? text_at(*b, "votes") : "", true);
        const Value* r = map_at(*u, "ratings");
        td(r && num_at(*r, "mean") ? fixed(num_at(*r, "mean"), 2) + " " + interval(interval_at(*r, "ci"), 2) + " (n " + text_at(*r, "n") + ")" : "", true);
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n";
      strength_chart();
    }
    if (ue) win_rates(*ue);
    o_ += "</section>\n";
  }

  // Bradley-Terry strengths with their intervals as error bars.
  void strength_chart() {
    struct Row {
      std::string name;
      double s;
      std::optional<std::pair<double, double>> ci;
    };
    std::vector<Row> rows;
    double lo = 0, hi = 0;
    for (auto& e : v_.entrants()) {
      const Value* u = DocView::detail(e, "user");
      const Value* b = u ? map_at(*u, "battles") : nullptr;
      auto s = b ? num_at(*b, "strength") : std::nullopt;
      if (!s) continue;
      auto ci = interval_at(*b, "ci");
      rows.push_back({v_.name_of(e.get_string("entrant")), *s, ci});
      lo = std::min({lo, *s, ci ? ci->first : *s});
      hi = std::max({hi, *s, ci ? ci->second : *s});
    }
    if (rows.empty()) return;
    double pad = std::max(0.1, (hi - lo) * 0.08);
    lo -= pad, hi += pad;
    const double left = 210, width = 520, rowh = 26, top = 8, axis_y = top + rowh * double(rows.size()) + 2;
    const double W = left + width + 170, H = axis_y + 24;
    auto x = [&](double v) { return left + width * (v - lo) / (hi - lo); };
    o_ += "<figure>\n<svg viewBox=\"0 0 " + f1(W) + " " + f1(H) + "\" width=\"" + f1(W) + "\" height=\"" + f1(H) + "\" role=\"img\" aria-label=\"" + t(L::Strength) + "\">\n";
    double step = nice_step(hi - lo, 8);
    for (double g = std::ceil(lo / step) * step; g <= hi + 1e-9; g += step) {
      o_ += "<line x1=\"" + f1(x(g)) + "\" y1=\"" + f1(top) + "\" x2=\"" + f1(x(g)) + "\" y2=\"" + f1(axis_y) + "\" stroke=\"" + (std::fabs(g) < step / 2 ? "#888\" stroke-dasharray=\"4 3" : "#eee") + "\"/>";
      o_ += "<text x=\"" + f1(x(g)) + "\" y=\"" + f1(axis_y + 15) + "\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">" + esc(stat(std::fabs(g) < step / 2 ? 0.0 : g)) + "</text>\n";
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      double y = top + rowh * double(i) + 13;
      auto& r = rows[i];
      o_ += "<g><title>" + esc(r.name) + ": " + esc(stat(r.s)) + (r.ci ? " " + esc(interval(r.ci, 3)) : "") + "</title>";
      o_ += "<text x=\"" + f1(left - 8) + "\" y=\"" + f1(y + 4) + "\" font-size=\"13\" text-anchor=\"end\">" + esc(truncate_utf8(r.name, 22)) + "</text>";
      if (r.ci) {
        o_ += "<line x1=\"" + f1(x(r.ci->first)) + "\" y1=\"" + f1(y) + "\" x2=\"" + f1(x(r.ci->second)) + "\" y2=\"" + f1(y) + "\" stroke=\"#1f77b4\" stroke-width=\"2\"/>";
        for (double v : {r.ci->first, r.ci->second})
          o_ += "<line x1=\"" + f1(x(v)) + "\" y1=\"" + f1(y - 6) + "\" x2=\"" + f1(x(v)) + "\" y2=\"" + f1(y + 6) + "\" stroke=\"#1f77b4\" stroke-width=\"2\"/>";
      }
      o_ += "<circle cx=\"" + f1(x(r.s)) + "\" cy=\"" + f1(y) + "\" r=\"4.5\" fill=\"#0b3d66\"/>";
      o_ += "<text x=\"" + f1(left + width + 8) + "\" y=\"" + f1(y + 4) + "\" font-size=\"12\">" + esc(stat(r.s)) + (r.ci ? " " + esc(interval(r.ci, 2)) : "") + "</text></g>\n";
    }
    o_ += "</svg>\n<figcaption>" + t(L::StrengthCaption) + "</figcaption>\n</figure>\n";
  }

  void win_rates(const Value& ue) {
    const Value* wr = map_at(ue, "win_rate");
    if (!wr) return;
    auto& ids = list_at(*wr, "entrants");
    auto& m = list_at(*wr, "matrix");
    if (ids.empty() || m.size() != ids.size()) return;
    o_ += "<h3>" + t(L::WinRate) + "</h3>\n<div class=\"wide\">\n<table>\n<thead><tr><th></th>";
    for (auto& id : ids) th(v_.name_of(id.is_string() ? id.as_string() : ""));
    o_ += "</tr></thead>\n<tbody>\n";
    for (size_t i = 0; i < ids.size(); ++i) {
      o_ += "<tr>";
      o_ += "<th>" + esc(v_.name_of(ids[i].is_string() ? ids[i].as_string() : "")) + "</th>";
      const Value& row = m[i];
      for (size_t j = 0; j < ids.size(); ++j) {
        auto x = row.is_array() && j < row.as_array().size() ? num(&row.as_array()[j]) : std::nullopt;
        if (!x) {
          o_ += "<td class=\"num\">—</td>";
          continue;
        }
        // Blue above one half, red below.
        double d = std::clamp(*x - 0.5, -0.5, 0.5) * 2;
        char bg[32];
        std::snprintf(bg, sizeof bg, "rgba(%s,%.2f)", d >= 0 ? "31,119,180" : "214,39,40", std::fabs(d) * 0.45);
        o_ += std::string("<td class=\"num\" style=\"background:") + bg + "\">" + esc(fixed(*x * 100, 0)) + "%</td>";
      }
      o_ += "</tr>\n";
    }
    o_ += "</tbody>\n</table>\n</div>\n<p class=\"small\">" + t(L::WinRateCaption) + "</p>\n";
  }

  void provenance() {
    if (!v_.any_detail("provenance")) return;
    o_ += "<section id=\"provenance\">\n<h2>" + t(L::Provenance) + "</h2>\n";
    for (auto& e : v_.entrants()) {
      const Value* p = DocView::detail(e, "provenance");
      if (!p) continue;
      const Value* gate = map_at(*p, "gate");
      std::string result = gate ? gate->get_string("result") : "";
      o_ += "<h3>" + esc(v_.name_of(e.get_string("entrant"))) + " " + (result.empty() ? "" : badge(result, verdict_label(result, v_.lang))) + "</h3>\n";
      o_ += "<dl class=\"meta\">\n";
      auto row = [&](L l, const std::string& html) {
        if (!html.empty()) o_ += "<dt>" + t(l) + "</dt><dd>" + html + "</dd>\n";
      };
      if (gate) row(L::GateReason, "<span" + std::string(result == "fail" ? " class=\"why\"" : "") + ">" + esc(gate->get_string("reason")) + "</span>");
      if (const Value* mdl = p->find("model")) row(L::Model, mdl->is_string() ? esc(mdl->as_string()) : mdl->is_map() ? esc(text_at(*mdl, "path")) : "");
      if (!p->get_string("report_file").empty())
        row(L::EvidenceFile, esc(p->get_string("report_file")) + "<br><span class=\"hash\">sha256 " + esc(p->get_string("report_sha256")) + "</span>");
      if (const Value* err = p->find("error"); err && err->is_string()) row(L::Error, esc(err->as_string()));
      o_ += "</dl>\n";
      auto& comps = list_at(*p, "components");
      if (!comps.empty()) {
        o_ += "<table>\n<thead><tr>";
        th(v_.t(L::Component));
        th(v_.t(L::Verdict));
        th(v_.t(L::DerivedFrom));
        th(v_.t(L::PHolm), true);
        th(v_.t(L::Effect), true);
        th(v_.t(L::Reason));
        o_ += "</tr></thead>\n<tbody>\n";
        for (auto& c : comps) {
          if (!c.is_map()) continue;
          std::string verdict = c.get_string("verdict");
          o_ += verdict == "derived" ? "<tr class=\"dq\">" : "<tr>";
          td(c.get_string("component"));
          td_raw(verdict.empty() ? "" : badge(verdict, verdict_label(verdict, v_.lang)));
          std::string src = c.get_string("source");
          td(src.empty() ? c.get_string("reference") : src);
          td(stat(num_at(c, "p_holm")), true);
          td(stat(num_at(c, "effect")), true);
          td(c.get_string("reason"));
          o_ += "</tr>\n";
        }
        o_ += "</tbody>\n</table>\n";
      }
      heatmap(e, *p);
    }
    o_ += "</section>\n";
  }

  // Rows: component and tensor role; columns: block index; colour: effect.
  void heatmap(const Value& entrant, const Value& p) {
    struct Cell {
      std::optional<double> effect;
      bool verbatim = false;
      std::string title;
    };
    std::vector<std::string> rows;
    std::set<int64_t> layer_set;
    std::map<std::pair<std::string, int64_t>, Cell> cells;
    for (auto& c : list_at(p, "components")) {
      if (!c.is_map()) continue;
      std::string comp = c.get_string("component");
      for (auto& l : list_at(c, "layers")) {
        if (!l.is_map()) continue;
        std::string row = comp + " · " + (l.get_string("role").empty() ? l.get_string("tensor") : l.get_string("role"));
        int64_t layer = num_at(l, "layer") ? int64_t(*num_at(l, "layer")) : -1;
        if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
        layer_set.insert(layer);
        Cell cell;
        cell.effect = num_at(l, "effect");
        cell.verbatim = l.get_string("verbatim") != "";
        cell.title = l.get_string("tensor") + " → " + l.get_string("ref_tensor") + ": " + std::string(v_.t(L::Effect)) + " " +
                     (cell.effect ? stat(cell.effect) : "—") + ", z " + stat(num_at(l, "z")) + ", p " + stat(num_at(l, "p")) +
                     (cell.verbatim ? ", verbatim " + l.get_string("verbatim") : "");
        auto key = std::make_pair(row, layer);
        // Two tensors of one role in one block: the stronger evidence is shown.
        auto it = cells.find(key);
        if (it == cells.end() || cell.effect.value_or(-1) > it->second.effect.value_or(-1) || cell.verbatim) cells[key] = cell;
      }
    }
    if (rows.empty()) return;
    std::vector<int64_t> layers(layer_set.begin(), layer_set.end());
    // Cells grow when there are few layers, so a small model's map is still readable.
    const double left = 230, cw = std::clamp(560.0 / double(layers.size()), 12.0, 36.0), ch = 18, top = 30;
    const double W = std::max(left + cw * double(layers.size()) + 20, left + 420), grid_bottom = top + ch * double(rows.size());
    const double H = grid_bottom + 56;
    size_t label_every = layers.size() > 40 ? 5 : 1;
    std::string name = v_.name_of(entrant.get_string("entrant"));
    o_ += "<figure>\n<svg viewBox=\"0 0 " + f1(W) + " " + f1(H) + "\" width=\"" + f1(W) + "\" height=\"" + f1(H) + "\" role=\"img\" aria-label=\"" + t(L::Heatmap) + " " + esc(name) + "\">\n";
    o_ += "<text x=\"" + f1(left) + "\" y=\"12\" font-size=\"11\" fill=\"#444\">" + t(L::Layer) + "</text>\n";
    for (size_t j = 0; j < layers.size(); ++j)
      if (j % label_every == 0 || layers[j] < 0)
        o_ += "<text x=\"" + f1(left + cw * double(j) + cw / 2) + "\" y=\"" + f1(top - 4) + "\" font-size=\"9\" text-anchor=\"middle\" fill=\"#444\">" +
              (layers[j] < 0 ? std::string("–") : std::to_string(layers[j])) + "</text>";
    o_ += "\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      double y = top + ch * double(i);
      o_ += "<text x=\"" + f1(left - 6) + "\" y=\"" + f1(y + 12) + "\" font-size=\"11\" text-anchor=\"end\">" + esc(truncate_utf8(rows[i], 34)) + "</text>";
      for (size_t j = 0; j < layers.size(); ++j) {
        auto it = cells.find({rows[i], layers[j]});
        if (it == cells.end()) continue;
        double x = left + cw * double(j);
        const Cell& c = it->second;
        o_ += "<rect x=\"" + f1(x) + "\" y=\"" + f1(y) + "\" width=\"" + f1(cw - 1) + "\" height=\"" + f1(ch - 1) + "\" fill=\"" +
              (c.effect ? heat(*c.effect) : std::string("#cfcfcf")) + "\"><title>" + esc(c.title) + "</title></rect>";
        if (c.verbatim) o_ += "<circle cx=\"" + f1(x + (cw - 1) / 2) + "\" cy=\"" + f1(y + (ch - 1) / 2) + "\" r=\"3\" fill=\"#000\"/>";
      }
      o_ += "\n";
    }
    // Legend: the colour ramp, not tested, verbatim.
    double ly = grid_bottom + 14;
    for (int k = 0; k <= 10; ++k)
      o_ += "<rect x=\"" + f1(left + k * 14.0) + "\" y=\"" + f1(ly) + "\" width=\"14\" height=\"12\" fill=\"" + heat(k / 10.0) + "\"/>";
    o_ += "<text x=\"" + f1(left) + "\" y=\"" + f1(ly + 26) + "\" font-size=\"10\">0</text><text x=\"" + f1(left + 154) + "\" y=\"" + f1(ly + 26) +
          "\" font-size=\"10\" text-anchor=\"end\">1</text>";
    o_ += "<text x=\"" + f1(left - 6) + "\" y=\"" + f1(ly + 10) + "\" font-size=\"10\" text-anchor=\"end\">" + t(L::Effect) + "</text>";
    o_ += "<rect x=\"" + f1(left + 180) + "\" y=\"" + f1(ly) + "\" width=\"14\" height=\"12\" fill=\"#cfcfcf\"/><text x=\"" + f1(left + 198) + "\" y=\"" +
          f1(ly + 10) + "\" font-size=\"10\">" + t(L::NotTested) + "</text>";
    o_ += "<circle cx=\"" + f1(left + 287) + "\" cy=\"" + f1(ly + 6) + "\" r=\"3\" fill=\"#000\"/><text x=\"" + f1(left + 295) + "\" y=\"" + f1(ly + 10) +
          "\" font-size=\"10\">" + t(L::Verbatim) + "</text>";
    o_ += "<text x=\"" + f1(left + 180) + "\" y=\"" + f1(ly + 26) + "\" font-size=\"10\">" + t(L::Layer) + " – = " + t(L::NoLayer) + "</text>\n";
    o_ += "</svg>\n<figcaption>" + t(L::Heatmap) + ": " + esc(name) + ". " + t(L::HeatmapCaption) + "</figcaption>\n</figure>\n";
  }

  void rules() {
    const Value& tl = v_.tally();
    o_ += "<section id=\"rule\">\n<h2>" + t(L::Rule) + "</h2>\n";
    if (const Value* r = map_at(tl, "rule"); r && !r->get_string("text").empty()) {
      o_ += "<p>" + esc(r->get_string("text")) + "</p>\n";
      if (v_.lang == Lang::Ko) o_ += "<p class=\"small\">" + t(L::RuleInEnglish) + "</p>\n";
    }
    o_ += "<h3>" + t(L::OperatorDecisions) + "</h3>\n";
    auto& ops = list_at(tl, "operator_decisions");
    if (ops.empty()) {
      o_ += "<p>" + t(L::None) + "</p>\n";
    } else {
      o_ += "<table>\n<thead><tr>";
      for (L l : {L::Id, L::Team, L::Decision, L::Reason, L::DecisionBy, L::ReceivedAt}) th(v_.t(l));
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& d : ops) {
        if (!d.is_map()) continue;
        o_ += "<tr>";
        td(d.get_string("id"));
        td(v_.name_of(d.get_string("entrant")));
        td(d.get_string("decision"));
        td(d.get_string("reason"));
        td(d.get_string("by"));
        td(d.get_string("received_at"));
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n";
    }
    auto& ign = list_at(tl, "ignored_decisions");
    if (!ign.empty()) {
      o_ += "<h3>" + t(L::IgnoredDecisions) + "</h3>\n<ul>\n";
      for (auto& d : ign)
        if (d.is_map()) o_ += "<li>" + esc(d.get_string("id")) + ": " + esc(d.get_string("reason")) + "</li>\n";
      o_ += "</ul>\n";
    }
    auto& failed = list_at(v_.doc, "failed_upstream");
    if (!failed.empty()) {
      o_ += "<h3>" + t(L::FailedUpstream) + "</h3>\n<table>\n<thead><tr>";
      th(v_.t(L::Stage));
      th(v_.t(L::Entrant));
      th(v_.t(L::Error));
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& f : failed) {
        if (!f.is_map()) continue;
        o_ += "<tr>";
        td(f.get_string("stage"));
        td(f.get_string("entrant"));
        td(f.get_string("error"));
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n";
    }
    auto& notes = list_at(v_.doc, "notes");
    if (!notes.empty()) {
      o_ += "<h3>" + t(L::Notes) + "</h3>\n<ul>\n";
      for (auto& n : notes)
        if (n.is_string()) o_ += "<li>" + esc(n.as_string()) + "</li>\n";
      o_ += "</ul>\n";
    }
    o_ += "</section>\n";
  }

  void manifest() {
    const Value& d = v_.doc;
    o_ += "<section id=\"manifest\">\n<h2>" + t(L::Manifest) + "</h2>\n<dl class=\"meta\">\n";
    const Value* ri = map_at(d, "run_info");
    if (ri) {
      if (const Value* p = map_at(*ri, "pipeline_info"))
        o_ += "<dt>" + t(L::Pipeline) + "</dt><dd>" + esc(p->get_string("name")) + " · " + esc(p->get_string("source")) + "<br><span class=\"hash\">sha256 " +
              esc(p->get_string("sha256")) + "</span></dd>\n";
      if (!ri->get_string("daemon_version").empty()) o_ += "<dt>" + t(L::DaemonVersion) + "</dt><dd>" + esc(ri->get_string("daemon_version")) + "</dd>\n";
    }
    const Value* man = map_at(d, "manifest");
    if (man) o_ += "<dt>" + t(L::PublicKey) + "</dt><dd class=\"hash\">" + esc(man->get_string("public_key")) + "</dd>\n";
    o_ += "</dl>\n";
    if (ri && !list_at(*ri, "plugins").empty()) {
      o_ += "<h3>" + t(L::Plugins) + "</h3>\n<table>\n<thead><tr>";
      th(v_.t(L::Name));
      th(v_.t(L::Version));
      th("ABI");
      th(v_.t(L::Path));
      th(v_.t(L::Sha256));
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& p : list_at(*ri, "plugins")) {
        if (!p.is_map()) continue;
        o_ += "<tr>";
        td(p.get_string("name"));
        td(p.get_string("version"));
        td(text_at(p, "abi"));
        td(p.get_string("path"));
        td_raw("<span class=\"hash\">" + esc(p.get_string("sha256")) + "</span>");
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n";
    }
    auto& inputs = list_at(d, "inputs");
    if (!inputs.empty()) {
      o_ += "<h3>" + t(L::Inputs) + "</h3>\n<table>\n<thead><tr>";
      th(v_.t(L::Role));
      th(v_.t(L::Path));
      th(v_.t(L::Sha256));
      th(v_.t(L::AtReport));
      o_ += "</tr></thead>\n<tbody>\n";
      for (auto& in : inputs) {
        if (!in.is_map()) continue;
        std::string at = in.get_string("at_report");
        o_ += at == "changed" || at == "missing" ? "<tr class=\"dq\">" : "<tr>";
        td(in.get_string("role"));
        td(in.get_string("path"));
        td_raw("<span class=\"hash\">" + esc(in.get_string("sha256")) + "</span>");
        td(at == "same" ? v_.t(L::InputSame) : at == "changed" ? v_.t(L::InputChanged) : at == "missing" ? v_.t(L::InputMissing) : at);
        o_ += "</tr>\n";
      }
      o_ += "</tbody>\n</table>\n";
    }
    o_ += "<h3>" + t(L::Signature) + "</h3>\n<p>" + t(L::SignatureHow) + "</p>\n</section>\n";
  }

  DocView v_;
  std::string o_;
};

}  // namespace

std::string render_html(const Value& doc) { return Page(doc).render(); }

}  // namespace evald::report
