// The daemon's GPU pool: which GPU indices jobs of stages with `gpus: N` may lease.
#pragma once

#include <string>
#include <vector>

namespace evald::daemon {

struct GpuPool {
  std::vector<int> gpus;
  std::string note;  // where the list came from, or why it is empty
};

// spec: "" (no GPUs), "auto" (every device NVML counts, NVML loaded with dlopen from
// nvml_library at run time: no build-time CUDA), or "0,1,3" (checked by finalize_config).
// Without NVML, "auto" gives an empty pool with the reason in note; never an error.
GpuPool resolve_gpu_pool(const std::string& spec, const std::string& nvml_library);

}  // namespace evald::daemon
