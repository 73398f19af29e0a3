#include "gpus.hpp"

#include <dlfcn.h>

namespace evald::daemon {

GpuPool resolve_gpu_pool(const std::string& spec, const std::string& nvml_library) {
  GpuPool pool;
  if (spec.empty()) {
    pool.note = "config gpus is empty";
    return pool;
  }
  if (spec != "auto") {
    size_t pos = 0;
    while (pos <= spec.size()) {
      size_t end = spec.find(',', pos);
      if (end == std::string::npos) end = spec.size();
      pool.gpus.push_back(std::stoi(spec.substr(pos, end - pos)));
      pos = end + 1;
    }
    pool.note = "config gpus: " + spec;
    return pool;
  }
  void* lib = dlopen(nvml_library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    pool.note = "gpus: auto, but NVML is not available (" + std::string(e ? e : nvml_library) + ")";
    return pool;
  }
  using InitFn = int (*)();
  using CountFn = int (*)(unsigned*);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "nvmlInit_v2"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "nvmlDeviceGetCount_v2"));
  auto shutdown = reinterpret_cast<InitFn>(dlsym(lib, "nvmlShutdown"));
  unsigned n = 0;
  if (!init || !count || !shutdown) {
    pool.note = "gpus: auto, but " + nvml_library + " lacks nvmlInit_v2, nvmlDeviceGetCount_v2 or nvmlShutdown";
  } else if (int rc = init(); rc != 0) {
    pool.note = "gpus: auto, but nvmlInit_v2 failed (NVML error " + std::to_string(rc) + ")";
  } else {
    if (int rc2 = count(&n); rc2 != 0) pool.note = "gpus: auto, but nvmlDeviceGetCount_v2 failed (NVML error " + std::to_string(rc2) + ")";
    else pool.note = "gpus: auto, " + std::to_string(n) + " device(s) found by NVML";
    shutdown();
    for (unsigned i = 0; i < n; ++i) pool.gpus.push_back(int(i));
  }
  dlclose(lib);
  return pool;
}

}  // namespace evald::daemon
