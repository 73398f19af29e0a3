// What the HTML and Markdown renderers share: the document read into plain structs, once,
// defensively (every field optional), so both show the same facts.
#pragma once

#include "format.hpp"
#include "labels.hpp"

#include <evald/value.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evald::report {

struct ComponentInfo {
  std::string name, label;  // label in the report's language
  double scale = 0;
};

struct DocView {
  const Value& doc;
  Lang lang = Lang::En;
  int decimals = 1;
  std::vector<ComponentInfo> components;
  std::vector<ComponentInfo> gates;  // scale unused
  double total_scale = 0;
  std::map<std::string, std::string> names;  // entrant id -> name

  explicit DocView(const Value& d);
  std::string_view t(L l) const { return label(l, lang); }
  std::string name_of(const std::string& id) const;
  std::string title() const;
  // A number with the tally's decimals; "" when absent.
  std::string pts(std::optional<double> x) const { return fixed(x, decimals); }
  const Array& entrants() const { return list_at(doc, "entrants"); }
  const Value& tally() const;
  // An entrant's details of one kind (expert, user, benchmark, provenance), or nullptr.
  static const Value* detail(const Value& entrant, std::string_view slot);
  bool any_detail(std::string_view slot) const;
};

// The expert panel's agreement as (label, text) rows, empty ones left out, in the order both
// formats show them: alpha (interval, ordinal), ICC or why it is unavailable, alpha per
// criterion, rows used and rejected.
std::vector<std::pair<L, std::string>> agreement_facts(const Value& panel);

// Code points, for truncating labels in charts.
std::string truncate_utf8(const std::string& s, size_t max_code_points);

}  // namespace evald::report
