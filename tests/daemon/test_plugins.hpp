// The plugin registry the daemon tests share: built-in and test plugins, loaded once.
#pragma once

#include "plugin_registry.hpp"

namespace evald::test {

inline const daemon::PluginRegistry& plugins() {
  static const daemon::PluginRegistry r = [] {
    daemon::PluginRegistry p;
    p.scan({EVALD_PLUGIN_DIR, EVALD_TEST_PLUGIN_DIR});
    return p;
  }();
  return r;
}

}  // namespace evald::test
