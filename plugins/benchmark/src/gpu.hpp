// GPUs for benchmark jobs: telemetry through NVML, loaded with dlopen at run time so the
// build needs no CUDA (a machine without the driver reports telemetry as unavailable, never
// as zeros), and a pool that hands GPUs to concurrent jobs.
#pragma once

#include <evald/value.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace evald::bench {

// Samples utilisation, memory and power of the given GPU indices every interval on its own
// thread from start() until stop(), and integrates power over time into energy (trapezoids).
class GpuTelemetry {
 public:
  // library: usually "libnvidia-ml.so.1". Never fails: when NVML cannot be loaded or
  // initialised, stop() reports {available: false, reason}.
  GpuTelemetry(const std::string& library, std::vector<int> gpus, double interval_s);
  ~GpuTelemetry();
  GpuTelemetry(const GpuTelemetry&) = delete;
  GpuTelemetry& operator=(const GpuTelemetry&) = delete;

  bool available() const;
  const std::string& reason() const;  // why not available
  void start();
  // Stops sampling and returns {available, reason?, interval_s, wall_s, gpus: [{index, name,
  // samples, util_mean_pct, util_max_pct, mem_used_max_mib, mem_total_mib, power_mean_w,
  // power_max_w, energy_j, energy_counter_j?}], energy_j}.
  Value stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GPUs shared by every job of this plugin in one process (all thread workers of a stage, and
// every stage using the plugin in the same daemon). Jobs in other processes (isolation:
// process, or other machines) do not see each other's leases.
class GpuPool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) noexcept;
    ~Lease();
    const std::vector<int>& gpus() const { return gpus_; }

   private:
    friend class GpuPool;
    void release();
    std::vector<int> gpus_;
    bool shared_ = true;
  };
  // Takes count GPUs of pool (the configured list) that no other lease holds, waiting while
  // they are busy; share: take the first count regardless. Fails when cancelled() turns true
  // or when count exceeds the pool.
  static Result<Lease> acquire(const std::vector<int>& pool, size_t count, bool share, const std::function<bool()>& cancelled);
  // GPUs currently leased exclusively in this process (for tests).
  static std::vector<int> busy();
};

}  // namespace evald::bench
