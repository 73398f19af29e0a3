// PluginRegistry: finds plugin libraries in the configured directories, loads them with
// Boost.DLL and checks their ABI. A library that fails to load is recorded with the reason
// and skipped; it never stops the daemon. Read-only after scan(): thread-safe for lookups.
#pragma once

#include <evald/abi.h>
#include <evald/schema.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace evald::daemon {

// One loaded library. Anything created from it holds a shared_ptr to this, so the library
// stays mapped while any of its objects lives.
struct PluginLibrary {
  std::string name;
  std::string version;
  std::string description;
  std::filesystem::path path;
  std::string sha256;
  uint32_t abi_major = 0, abi_minor = 0;
  ConfigSchema schema;
  const evald_plugin_api* api = nullptr;
  std::shared_ptr<boost::dll::shared_library> lib;
};

struct PluginLoadError {
  std::filesystem::path path;
  std::string error;
};

// Loads one library; the error names the path and what was wrong.
Result<std::shared_ptr<PluginLibrary>> load_plugin_library(const std::filesystem::path& path);

class PluginRegistry {
 public:
  // Loads every *.so in dirs (in order; the first plugin of a name wins, later ones are
  // reported as duplicates). Missing directories are reported, not fatal.
  void scan(const std::vector<std::filesystem::path>& dirs);

  std::shared_ptr<const PluginLibrary> find(std::string_view name) const;
  std::vector<std::shared_ptr<const PluginLibrary>> list() const;
  const std::vector<PluginLoadError>& errors() const { return errors_; }
  // {plugins: [{name, version, description, abi, path, sha256}], errors: [{path, error}]}
  Value to_value() const;

 private:
  std::map<std::string, std::shared_ptr<const PluginLibrary>, std::less<>> plugins_;
  std::vector<PluginLoadError> errors_;
};

}  // namespace evald::daemon
