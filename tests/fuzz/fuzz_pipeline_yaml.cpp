// fuzz_pipeline_yaml: evald::daemon::parse_pipeline on arbitrary text, and
// evald::daemon::yaml_to_value, whose result must survive a msgpack round trip.
//
// The plugin registry is empty, so every pipeline must be refused (no stage's plugin can be
// found). With EVALD_FUZZ_PLUGIN_DIR=<dir> set, the registry scans that directory instead
// (e.g. <build>/lib/evald/plugins, with file-value and sum), which reaches the config checks
// against the plugins' schemas; a pipeline that validates must then list its stages in an
// order where each comes after the stages in its `after`.
#include "fuzz_common.hpp"

#include "pipeline.hpp"
#include "plugin_registry.hpp"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <string>
#include <string_view>

using evald::Value;
namespace mp = evald::msgpack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const evald::daemon::PluginRegistry registry = [] {
    evald::daemon::PluginRegistry r;
    if (const char* dir = std::getenv("EVALD_FUZZ_PLUGIN_DIR")) {
      r.scan({dir});
      for (auto& e : r.errors()) std::fprintf(stderr, "fuzz_pipeline_yaml: %s: %s\n", e.path.c_str(), e.error.c_str());
      std::fprintf(stderr, "fuzz_pipeline_yaml: %zu plugin(s) from %s\n", r.list().size(), dir);
    }
    return r;
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto spec = evald::daemon::parse_pipeline(text, "fuzz.yaml", registry);
  if (registry.list().empty()) FUZZ_CHECK(!spec.ok(), "a pipeline validated with no plugins loaded");
  if (spec) {
    std::set<std::string> seen;
    for (auto& s : spec->stages) {
      FUZZ_CHECK(s.library != nullptr, "stage %s has no plugin library", s.id.c_str());
      FUZZ_CHECK(s.config.is_map(), "stage %s config is a %s", s.id.c_str(), evald::type_name(s.config.type()));
      for (auto& a : s.after) FUZZ_CHECK(seen.count(a), "stage %s listed before its upstream %s", s.id.c_str(), a.c_str());
      FUZZ_CHECK(seen.insert(s.id).second, "duplicate stage %s", s.id.c_str());
    }
  } else {
    FUZZ_CHECK(!spec.error().empty(), "parse_pipeline failed without a message");
  }

  auto v = evald::daemon::yaml_to_value(text, "fuzz.yaml");
  if (v) {
    evald::Bytes b = mp::encode(*v);
    auto back = mp::decode(b, mp::Limits{std::numeric_limits<size_t>::max(), 1u << 20,
                                         std::numeric_limits<size_t>::max(), std::numeric_limits<size_t>::max()});
    FUZZ_CHECK(back.ok(), "yaml_to_value result does not round-trip through msgpack: %s", back.error().c_str());
    FUZZ_CHECK(evald::fuzz::same_value(*v, *back), "yaml_to_value result changed in a msgpack round trip");
  } else {
    FUZZ_CHECK(v.error().rfind("fuzz.yaml:", 0) == 0, "yaml error does not name the source: %s", v.error().c_str());
  }
  return 0;
}
