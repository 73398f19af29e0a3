// A plugin descriptor from a future SDK major version: the loader must refuse it.
#include <evald/abi.h>

#include <boost/dll/alias.hpp>

namespace {
const evald_plugin_api* entry() {
  static evald_plugin_api api{};
  api.abi_major = EVALD_ABI_MAJOR + 1;
  api.abi_minor = 0;
  api.struct_size = sizeof api;
  api.name = "test-future-major";
  api.version = "9.0.0";
  return &api;
}
}  // namespace
BOOST_DLL_ALIAS(entry, evald_plugin_entry)
