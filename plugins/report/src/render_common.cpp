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

}  // namespace evald::report
