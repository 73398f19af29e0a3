// A plugin descriptor from a newer minor version than the daemon: the loader must refuse it.
#include <evald/abi.h>

#include <boost/dll/alias.hpp>

namespace {
const evald_plugin_api* entry() {
  static evald_plugin_api api{};
  api.abi_major = EVALD_ABI_MAJOR;
  api.abi_minor = EVALD_ABI_MINOR + 1;
  api.struct_size = sizeof api;
  api.name = "test-future-minor";
  api.version = "1.1.0";
  return &api;
}
}  // namespace
BOOST_DLL_ALIAS(entry, evald_plugin_entry)
