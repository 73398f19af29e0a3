#include "competition.hpp"

#include "format.hpp"
#include "signing.hpp"

#include <filesystem>

namespace evald::report {

namespace {

std::string names(const Value* list, const std::map<std::string, std::string>& name_of) {
  std::string s;
  if (list && list->is_array())
    for (auto& e : list->as_array()) {
      std::string id = e.is_string() ? e.as_string() : std::string();
      auto it = name_of.find(id);
      s += (s.empty() ? "" : ", ") + (it != name_of.end() && !it->second.empty() ? it->second + " (" + id + ")" : id);
    }
  return s;
}

// A labelled fact of a round; hash: shown in a fixed-width font.
struct Fact {
  L label;
  std::string value;
  bool hash = false;
};

// The facts both formats show, read once from the daemon's answer.
struct RoundView {
  const Value& r;
  Lang lang;

  std::string label_of(const Value& component) const {
    const Value* l = map_at(component, "label");
    std::string s = l ? text_at(*l, lang == Lang::Ko ? "ko" : "en") : std::string();
    return s.empty() ? text_at(component, "name") : s;
  }
  std::string weights() const {
    std::string s;
    if (const Value* rules = map_at(r, "rules"))
      if (const Value* w = map_at(*rules, "weights"); w && w->is_map())
        for (auto& [k, v] : w->as_map()) s += (s.empty() ? "" : ", ") + k + " " + fixed(num(&v), 1);
    if (s.empty())
      if (const Value* b = map_at(r, "scoreboard"))
        for (auto& c : list_at(*b, "components")) s += (s.empty() ? "" : ", ") + text_at(c, "name") + " " + fixed(num_at(c, "scale"), 1);
    return s;
  }
  std::string advance() const {
    std::string s;
    if (const Value* rules = map_at(r, "rules"))
      if (const Value* a = map_at(*rules, "advance")) {
        if (auto top = num_at(*a, "top")) s += (lang == Lang::Ko ? "상위 " : "best ") + fixed(top, 0);
        if (auto min = num_at(*a, "min_total")) s += (s.empty() ? "" : ", ") + std::string(lang == Lang::Ko ? "총점 " : "total at least ") + fixed(min, 1);
      }
    return s;
  }
  std::string call() const {
    const Value* c = map_at(r, "call");
    if (!c) return {};
    std::string s = text_at(*c, "state") + " (" + text_at(*c, "opened");
    if (!text_at(*c, "closed").empty()) s += " – " + text_at(*c, "closed");
    return s + ")";
  }
  std::vector<Fact> rules() const {
    return {{L::Pipeline, text_at(r, "pipeline")}, {L::FromRound, text_at(r, "from_round")}, {L::Weights, weights()},
            {L::AdvanceRule, advance()}, {L::AdditionalCall, call()}};
  }
  // Empty when the round is not decided.
  std::vector<Fact> decision(const std::map<std::string, std::string>& name_of) const {
    const Value* dec = map_at(r, "decision");
    if (!dec) return {};
    return {{L::DecAdvance, names(dec->find("advance"), name_of)},
            {L::DecEliminated, names(dec->find("eliminated"), name_of)},
            {L::DecDisqualified, names(dec->find("disqualified"), name_of)},
            {L::DecidedFrom, text_at(*dec, "run") + " · tally sha256 " + text_at(*dec, "tally_sha256"), true},
            {L::DecidedBy, text_at(*dec, "decided_by") + " · " + text_at(*dec, "decided_at")},
            {L::ReplacesDecision, text_at(*dec, "reason")}};
  }
  std::vector<Fact> report() const {
    const Value* rep = map_at(r, "report");
    if (!rep) return {};
    return {{L::RoundReport, text_at(*rep, "html")},
            {L::PublicKey, text_at(*rep, "public_key"), true},
            {L::Manifest, "manifest.json sha256 " + text_at(*rep, "manifest_sha256"), true}};
  }
};

class Writer {
 public:
  Writer(const Value& data, Lang lang, std::string generated_at) : d_(data), lang_(lang), at_(std::move(generated_at)) {
    for (auto& e : list_at(d_, "entrants")) name_of_[text_at(e, "id")] = text_at(e, "name");
  }
  std::string t(L l) const { return std::string(label(l, lang_)); }
  const Value& comp() const {
    static const Value kNone;
    const Value* c = map_at(d_, "competition");
    return c ? *c : kNone;
  }
  std::string finalists() const {
    const Value* f = d_.find("finalists");
    return f && f->is_array() ? names(f, name_of_) : t(L::NoFinalistsYet);
  }

  std::string html() const {
    auto e = [](const std::string& s) { return html_escape(s); };
    std::string o = "<!doctype html>\n<html lang=\"" + std::string(lang_ == Lang::Ko ? "ko" : "en") + "\">\n<head>\n<meta charset=\"utf-8\">\n";
    o += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n";
    o += "<title>" + e(text_at(comp(), "name")) + " — " + e(t(L::CompetitionTitle)) + "</title>\n<style>";
    o += "body{font-family:'Noto Sans CJK KR','Noto Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
         "td.n{text-align:right}.hash{font-family:monospace;font-size:.85em;word-break:break-all}.advance{color:#0a6b2f;font-weight:bold}"
         ".disqualified{color:#a40000}td.advance,td.eliminated,td.disqualified{white-space:nowrap}"
         "dt{font-weight:bold;float:left;clear:left;width:12em}dd{margin-left:13em}dd.hash{margin-left:15.3em}h2,h3,section,table,p{clear:both}";
    o += "</style>\n</head>\n<body>\n";
    o += "<h1>" + e(text_at(comp(), "name")) + " — " + e(t(L::CompetitionTitle)) + "</h1>\n";
    o += "<p>" + e(t(L::Competition)) + " " + e(text_at(comp(), "id")) + " · " + e(t(L::GeneratedAt)) + " " + e(at_) + "</p>\n";
    o += "<h2>" + e(t(L::Finalists)) + "</h2>\n<p class=\"advance\">" + e(finalists()) + "</p>\n";
    for (auto& r : list_at(d_, "rounds")) {
      RoundView v{r, lang_};
      auto facts = [&](const std::vector<Fact>& fs) {
        o += "<dl>\n";
        for (auto& f : fs)
          if (!f.value.empty()) o += "<dt>" + e(t(f.label)) + "</dt><dd" + (f.hash ? " class=\"hash\"" : "") + ">" + e(f.value) + "</dd>\n";
        o += "</dl>\n";
      };
      o += "<section>\n<h2>" + e(t(L::Round)) + " " + e(text_at(r, "id")) + "</h2>\n";
      facts(v.rules());
      o += "<h3>" + e(t(L::Roster)) + "</h3>\n<table>\n<tr><th>" + e(t(L::Entrant)) + "</th><th>" + e(t(L::Name)) + "</th><th>" +
           e(t(L::Via)) + "</th><th>" + e(t(L::Joined)) + "</th></tr>\n";
      for (auto& who : list_at(r, "entrants"))
        o += "<tr><td>" + e(text_at(who, "id")) + "</td><td>" + e(text_at(who, "name")) + "</td><td>" + e(text_at(who, "via")) + "</td><td>" +
             e(text_at(who, "joined")) + "</td></tr>\n";
      o += "</table>\n";
      if (const Value* b = map_at(r, "scoreboard")) {
        o += "<h3>" + e(t(L::Scoreboard)) + "</h3>\n<table>\n<tr><th>" + e(t(L::Rank)) + "</th><th>" + e(t(L::Team)) + "</th>";
        for (auto& c : list_at(*b, "components")) o += "<th>" + e(v.label_of(c)) + " (" + e(fixed(num_at(c, "scale"), 1)) + ")</th>";
        o += "<th>" + e(t(L::Total)) + " (" + e(fixed(num_at(*b, "total_scale"), 1)) + ")</th><th>" + e(t(L::Decision)) + "</th><th>" +
             e(t(L::Reason)) + "</th></tr>\n";
        for (auto& row : list_at(*b, "entrants")) {
          std::string dec = text_at(row, "decision");
          o += "<tr><td class=\"n\">" + e(text_at(row, "rank")) + "</td><td>" + e(text_at(row, "name")) + " (" + e(text_at(row, "entrant")) + ")</td>";
          for (auto& c : list_at(*b, "components")) {
            const Value* pts = map_at(row, "components") ? map_at(row, "components")->find(text_at(c, "name")) : nullptr;
            o += "<td class=\"n\">" + e(fixed(num(pts), 1)) + "</td>";
          }
          o += "<td class=\"n\">" + e(fixed(num_at(row, "total"), 1)) + "</td><td class=\"" + e(dec) + "\">" + e(std::string(decision_label(dec, lang_))) +
               "</td><td>" + e(text_at(row, "decision_reason")) + "</td></tr>\n";
        }
        o += "</table>\n";
      }
      if (auto dec = v.decision(name_of_); !dec.empty()) {
        o += "<h3>" + e(t(L::Decision)) + "</h3>\n";
        facts(dec);
      } else {
        o += "<p>" + e(t(L::NotDecided)) + "</p>\n";
      }
      facts(v.report());
      o += "</section>\n";
    }
    o += "<section>\n<h2>" + e(t(L::Entrants)) + "</h2>\n<table>\n<tr><th>" + e(t(L::Entrant)) + "</th><th>" + e(t(L::Name)) + "</th><th>" +
         e(t(L::Registered)) + "</th><th>" + e(t(L::Submissions)) + "</th></tr>\n";
    for (auto& en : list_at(d_, "entrants")) {
      std::string subs;
      for (auto& s : list_at(en, "submissions"))
        subs += (subs.empty() ? "" : "<br>") + e(text_at(s, "round").empty() ? "-" : text_at(s, "round")) + " · " + e(text_at(s, "at")) +
                " · <span class=\"hash\">" + e(text_at(s, "sha256")) + "</span>";
      o += "<tr><td>" + e(text_at(en, "id")) + "</td><td>" + e(text_at(en, "name")) + "</td><td>" + e(text_at(en, "registered")) + "</td><td>" + subs +
           "</td></tr>\n";
    }
    o += "</table>\n</section>\n<p>" + e(t(L::CompetitionHow)) + "</p>\n</body>\n</html>\n";
    return o;
  }

  std::string markdown() const {
    auto m = [](const std::string& s) { return md_escape(s); };
    std::string o = "# " + m(text_at(comp(), "name")) + " — " + m(t(L::CompetitionTitle)) + "\n\n";
    o += "- **" + m(t(L::Competition)) + ":** " + m(text_at(comp(), "id")) + "\n- **" + m(t(L::GeneratedAt)) + ":** " + m(at_) + "\n- **" +
         m(t(L::Finalists)) + ":** " + m(finalists()) + "\n";
    for (auto& r : list_at(d_, "rounds")) {
      RoundView v{r, lang_};
      o += "\n## " + m(t(L::Round)) + " " + m(text_at(r, "id")) + "\n\n";
      auto facts = [&](const std::vector<Fact>& fs) {
        for (auto& f : fs)
          if (!f.value.empty()) o += "- **" + m(t(f.label)) + ":** " + m(f.value) + "\n";
      };
      facts(v.rules());
      o += "\n### " + m(t(L::Roster)) + "\n\n| " + m(t(L::Entrant)) + " | " + m(t(L::Name)) + " | " + m(t(L::Via)) + " | " + m(t(L::Joined)) +
           " |\n| --- | --- | --- | --- |\n";
      for (auto& who : list_at(r, "entrants"))
        o += "| " + m(text_at(who, "id")) + " | " + m(text_at(who, "name")) + " | " + m(text_at(who, "via")) + " | " + m(text_at(who, "joined")) + " |\n";
      if (const Value* b = map_at(r, "scoreboard")) {
        o += "\n### " + m(t(L::Scoreboard)) + "\n\n| " + m(t(L::Rank)) + " | " + m(t(L::Team)) + " |";
        std::string sep = "| ---: | --- |";
        for (auto& c : list_at(*b, "components")) o += " " + m(v.label_of(c)) + " (" + fixed(num_at(c, "scale"), 1) + ") |", sep += " ---: |";
        o += " " + m(t(L::Total)) + " (" + fixed(num_at(*b, "total_scale"), 1) + ") | " + m(t(L::Decision)) + " |\n" + sep + " ---: | --- |\n";
        for (auto& row : list_at(*b, "entrants")) {
          o += "| " + m(text_at(row, "rank")) + " | " + m(text_at(row, "name")) + " (" + m(text_at(row, "entrant")) + ") |";
          for (auto& c : list_at(*b, "components")) {
            const Value* pts = map_at(row, "components") ? map_at(row, "components")->find(text_at(c, "name")) : nullptr;
            o += " " + fixed(num(pts), 1) + " |";
          }
          o += " " + fixed(num_at(row, "total"), 1) + " | " + m(std::string(decision_label(text_at(row, "decision"), lang_))) + " |\n";
        }
      }
      o += "\n";
      if (auto dec = v.decision(name_of_); !dec.empty()) facts(dec);
      else o += m(t(L::NotDecided)) + "\n";
      facts(v.report());
    }
    o += "\n## " + m(t(L::Entrants)) + "\n\n| " + m(t(L::Entrant)) + " | " + m(t(L::Name)) + " | " + m(t(L::Registered)) + " | " + m(t(L::Submissions)) +
         " |\n| --- | --- | --- | --- |\n";
    for (auto& en : list_at(d_, "entrants")) {
      std::string subs;
      for (auto& s : list_at(en, "submissions"))
        subs += (subs.empty() ? "" : "; ") + (text_at(s, "round").empty() ? "-" : text_at(s, "round")) + " · " + text_at(s, "at") + " · " + text_at(s, "sha256");
      o += "| " + m(text_at(en, "id")) + " | " + m(text_at(en, "name")) + " | " + m(text_at(en, "registered")) + " | " + m(subs) + " |\n";
    }
    o += "\n" + m(t(L::CompetitionHow)) + "\n";
    return o;
  }

 private:
  const Value& d_;
  Lang lang_;
  std::string at_;
  std::map<std::string, std::string> name_of_;
};

}  // namespace

Result<Value> write_competition_report(const Value& data, const std::string& dir, Lang lang, const std::string& generated_at) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::error(dir + ": cannot create the directory: " + ec.message());
  const Value clean = valid_utf8_tree(data);
  Writer w(clean, lang, generated_at);
  Value doc;
  doc.set("schema", "evald.competition-report/1");
  doc.set("generated_at", generated_at);
  doc.set("lang", lang == Lang::Ko ? "ko" : "en");
  doc.set("report", clean);
  Array files;
  for (auto& [name, bytes] : {std::pair<std::string, std::string>{"competition.json", pretty_json(doc)},
                              {"competition.html", w.html()},
                              {"competition.md", w.markdown()}}) {
    std::string path = (std::filesystem::path(dir) / name).string();
    if (auto st = write_file(path, bytes); !st) return st;
    Value f;
    f.set("file", name);
    f.set("path", path);
    f.set("bytes", int64_t(bytes.size()));
    f.set("sha256", sha256_hex_of(bytes));
    files.push_back(std::move(f));
  }
  Value out;
  out.set("dir", dir);
  out.set("files", std::move(files));
  return out;
}

}  // namespace evald::report
