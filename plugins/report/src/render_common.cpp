#include "render_common.hpp"

namespace evald::report {

DocView::DocView(const Value& d) : doc(d) {
  lang = d.get_string("lang") == "ko" ? Lang::Ko : Lang::En;
  const Value& tl = tally();
  if (const Value* rule = map_at(tl, "rule"))
    if (auto dec = num_at(*rule, "decimals"); dec && *dec >= 0 && *dec <= 6) decimals = int(*dec);
  auto read = [&](const char* key, std::vector<ComponentInfo>& out) {
    for (auto& c : list_at(tl, key)) {
      if (!c.is_map()) continue;
      ComponentInfo ci;
      ci.name = c.get_string("name");
      const Value* lab = map_at(c, "label");
      ci.label = lab ? lab->get_string(lang == Lang::Ko ? "ko" : "en") : "";
      if (ci.label.empty() && lab) ci.label = lab->get_string("en");
      if (ci.label.empty()) ci.label = ci.name;
      ci.scale = num_at(c, "scale").value_or(0);
      out.push_back(std::move(ci));
    }
  };
  read("components", components);
  read("gates", gates);
  total_scale = num_at(tl, "total_scale").value_or(0);
  if (total_scale <= 0)
    for (auto& c : components) total_scale += c.scale;
  for (auto& e : entrants()) names[e.get_string("entrant")] = e.get_string("name");
}

const Value& DocView::tally() const {
  static const Value empty = Map{};
  const Value* t = map_at(doc, "tally");
  return t ? *t : empty;
}

std::string DocView::name_of(const std::string& id) const {
  auto it = names.find(id);
  return it == names.end() || it->second.empty() ? id : it->second;
}

std::string DocView::title() const {
  std::string t = doc.get_string("title");
  if (!t.empty()) return t;
  std::string comp = doc.get_string("competition"), round = doc.get_string("round");
  return comp + (comp.empty() || round.empty() ? "" : " · ") + round;
}

const Value* DocView::detail(const Value& entrant, std::string_view slot) {
  const Value* d = map_at(entrant, "details");
  if (!d) return nullptr;
  return map_at(*d, slot);
}

bool DocView::any_detail(std::string_view slot) const {
  for (auto& e : entrants())
    if (detail(e, slot)) return true;
  return false;
}

std::string truncate_utf8(const std::string& s, size_t max) {
  size_t cps = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) {
      if (cps == max) return s.substr(0, i) + "\xE2\x80\xA6";  // …
      ++cps;
    }
  }
  return s;
}

std::vector<std::pair<L, std::string>> agreement_facts(const Value& panel) {
  std::vector<std::pair<L, std::string>> out;
  const Value* ag = map_at(panel, "agreement");
  if (!ag) return out;
  auto row = [&](L l, std::string v) {
    if (!v.empty()) out.emplace_back(l, std::move(v));
  };
  row(L::AlphaInterval, stat(num_at(*ag, "alpha_interval")));
  row(L::AlphaOrdinal, stat(num_at(*ag, "alpha_ordinal")));
  if (const Value* icc = map_at(*ag, "icc")) {
    row(L::Icc21, stat(num_at(*icc, "icc2_1")));
    row(L::Icc2k, stat(num_at(*icc, "icc2_k")));
  } else {
    row(L::IccUnavailable, ag->get_string("icc_unavailable"));
  }
  if (const Value* by = map_at(*ag, "alpha_interval_by_criterion")) {
    std::string s;
    for (auto& [k, a] : by->as_map()) s += (s.empty() ? "" : "; ") + k + " " + (num(&a) ? stat(num(&a)) : "—");
    row(L::AlphaByCriterion, s);
  }
  if (const Value* c = map_at(panel, "counts")) {
    row(L::RowsUsed, text_at(*c, "used"));
    row(L::RowsRejected, text_at(panel, "rejected_total").empty() ? text_at(*c, "rejected") : text_at(panel, "rejected_total"));
  }
  return out;
}

}  // namespace evald::report
