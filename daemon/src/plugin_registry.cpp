#include "plugin_registry.hpp"

#include "util.hpp"

#include <boost/dll/shared_library.hpp>

#include <algorithm>

namespace evald::daemon {

namespace fs = std::filesystem;

Result<std::shared_ptr<PluginLibrary>> load_plugin_library(const fs::path& path) {
  auto p = std::make_shared<PluginLibrary>();
  p->path = path;
  try {
    p->lib = std::make_shared<boost::dll::shared_library>(path.string(), boost::dll::load_mode::rtld_now |
                                                                             boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return Status::error(path.string() + ": cannot load shared library: " + e.what());
  }
  if (!p->lib->has(EVALD_PLUGIN_ENTRY))
    return Status::error(path.string() + ": missing symbol " EVALD_PLUGIN_ENTRY
                         " (not an evald plugin, or built without EVALD_PLUGIN)");
  const evald_plugin_api* api = nullptr;
  try {
    auto entry = *p->lib->get<evald_plugin_entry_fn>(EVALD_PLUGIN_ENTRY);
    api = entry();
  } catch (const std::exception& e) {
    return Status::error(path.string() + ": entry point failed: " + e.what());
  }
  if (!api) return Status::error(path.string() + ": entry point returned no plugin descriptor");
  std::string theirs = std::to_string(api->abi_major) + "." + std::to_string(api->abi_minor);
  std::string ours = std::to_string(EVALD_ABI_MAJOR) + "." + std::to_string(EVALD_ABI_MINOR);
  if (api->abi_major != EVALD_ABI_MAJOR)
    return Status::error(path.string() + ": plugin is built for evald SDK ABI " + theirs + ", this daemon speaks ABI " +
                         ours + " (major versions differ; rebuild the plugin against SDK " +
                         std::to_string(EVALD_ABI_MAJOR) + ".x)");
  if (api->abi_minor > EVALD_ABI_MINOR)
    return Status::error(path.string() + ": plugin is built for evald SDK ABI " + theirs +
                         ", newer than this daemon's ABI " + ours + " (upgrade the daemon)");
  if (api->struct_size < sizeof(evald_plugin_api) || !api->name || !api->version || !api->create ||
      !api->destroy || !api->process || !api->finish || !api->start || !api->stop || !api->validate_config)
    return Status::error(path.string() + ": plugin descriptor is incomplete");
  p->name = api->name;
  p->version = api->version;
  p->description = api->description ? api->description : "";
  p->abi_major = api->abi_major;
  p->abi_minor = api->abi_minor;
  p->api = api;
  auto sv = msgpack::decode(api->config_schema.data, api->config_schema.size);
  if (!sv) return Status::error(path.string() + ": config schema is not valid msgpack: " + sv.error());
  auto schema = ConfigSchema::from_value(*sv);
  if (!schema) return Status::error(path.string() + ": " + schema.error());
  p->schema = std::move(*schema);
  auto h = sha256_file(path);
  if (!h) return h.status();
  p->sha256 = *h;
  return p;
}

void PluginRegistry::scan(const std::vector<fs::path>& dirs) {
  for (auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      errors_.push_back({dir, dir.string() + ": plugin directory does not exist"});
      continue;
    }
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".so") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      auto lib = load_plugin_library(f);
      if (!lib) {
        errors_.push_back({f, lib.error()});
        continue;
      }
      auto name = (*lib)->name;
      if (auto prev = plugins_.find(name); prev != plugins_.end()) {
        errors_.push_back({f, "duplicate plugin \"" + name + "\" (already loaded from " + prev->second->path.string() + ")"});
        continue;
      }
      plugins_.emplace(name, std::move(*lib));
    }
  }
}

std::shared_ptr<const PluginLibrary> PluginRegistry::find(std::string_view name) const {
  auto it = plugins_.find(name);
  return it == plugins_.end() ? nullptr : it->second;
}

Value PluginRegistry::to_value() const {
  Array ps, errs;
  for (auto& [_, p] : plugins_) {
    Value e;
    e.set("name", p->name);
    e.set("version", p->version);
    e.set("description", p->description);
    e.set("abi", std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor));
    e.set("path", p->path.string());
    e.set("sha256", p->sha256);
    ps.push_back(std::move(e));
  }
  for (auto& e : errors_) {
    Value v;
    v.set("path", e.path.string());
    v.set("error", e.error);
    errs.push_back(std::move(v));
  }
  Value r;
  r.set("plugins", std::move(ps));
  r.set("errors", std::move(errs));
  return r;
}

std::vector<std::shared_ptr<const PluginLibrary>> PluginRegistry::list() const {
  std::vector<std::shared_ptr<const PluginLibrary>> out;
  for (auto& [_, p] : plugins_) out.push_back(p);
  return out;
}

}  // namespace evald::daemon
