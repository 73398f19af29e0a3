#include "gpu.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

namespace evald::bench {

namespace {

// The few NVML entry points used, with the C types of nvml.h (stable across driver versions).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct Nvml {
  void* lib = nullptr;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long*) = nullptr;  // optional (Volta and later)
  const char* (*error_string)(nvmlReturn_t) = nullptr;
};

using Clock = std::chrono::steady_clock;

struct GpuStats {
  int index = 0;
  std::string name;
  nvmlDevice_t dev = nullptr;
  int64_t samples = 0, power_samples = 0;
  double util_sum = 0, util_max = 0, mem_max = 0, mem_total = 0, power_sum = 0, power_max = 0, energy_j = 0;
  double last_power = -1;
  Clock::time_point last_t;
  unsigned long long energy_start_mj = 0, energy_end_mj = 0;
  bool energy_counter = false;
};

}  // namespace

struct GpuTelemetry::Impl {
  Nvml n;
  bool ok = false;
  bool inited = false;
  std::string reason;
  double interval_s = 0.5;
  std::vector<GpuStats> gpus;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  Clock::time_point t_start;

  std::string err(nvmlReturn_t r) const { return n.error_string ? n.error_string(r) : "NVML error " + std::to_string(r); }

  void sample_all() {
    auto now = Clock::now();
    for (auto& g : gpus) {
      nvmlUtilization_t u{};
      nvmlMemory_t m{};
      unsigned int mw = 0;
      ++g.samples;
      if (n.util(g.dev, &u) == 0) {
        g.util_sum += u.gpu;
        g.util_max = std::max(g.util_max, double(u.gpu));
      }
      if (n.memory(g.dev, &m) == 0) {
        g.mem_max = std::max(g.mem_max, double(m.used) / (1024.0 * 1024.0));
        g.mem_total = double(m.total) / (1024.0 * 1024.0);
      }
      if (n.power(g.dev, &mw) == 0) {
        double w = mw / 1000.0;
        if (g.last_power >= 0) g.energy_j += (w + g.last_power) / 2 * std::chrono::duration<double>(now - g.last_t).count();
        g.last_power = w;
        g.last_t = now;
        g.power_sum += w;
        g.power_max = std::max(g.power_max, w);
        ++g.power_samples;
      }
    }
  }

  void loop() {
    std::unique_lock lk(mu);
    while (!stopping) {
      lk.unlock();
      sample_all();
      lk.lock();
      cv.wait_for(lk, std::chrono::duration<double>(interval_s), [&] { return stopping; });
    }
  }
};

GpuTelemetry::GpuTelemetry(const std::string& library, std::vector<int> indices, double interval_s) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.interval_s = std::max(0.01, interval_s);
  if (indices.empty()) {
    m.reason = "no GPUs configured (gpus)";
    return;
  }
  m.n.lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m.n.lib) {
    const char* e = dlerror();
    m.reason = "NVML not loadable (" + library + "): " + (e ? e : "unknown error");
    return;
  }
  auto sym = [&](auto& fn, const char* a, const char* b = nullptr) {
    void* p = dlsym(m.n.lib, a);
    if (!p && b) p = dlsym(m.n.lib, b);
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    return p != nullptr;
  };
  bool all = sym(m.n.init, "nvmlInit_v2", "nvmlInit") && sym(m.n.shutdown, "nvmlShutdown") &&
             sym(m.n.count, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount") &&
             sym(m.n.handle, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex") && sym(m.n.name, "nvmlDeviceGetName") &&
             sym(m.n.util, "nvmlDeviceGetUtilizationRates") && sym(m.n.memory, "nvmlDeviceGetMemoryInfo") &&
             sym(m.n.power, "nvmlDeviceGetPowerUsage");
  sym(m.n.energy, "nvmlDeviceGetTotalEnergyConsumption");
  sym(m.n.error_string, "nvmlErrorString");
  if (!all) {
    m.reason = library + " lacks an NVML entry point this plugin needs";
    return;
  }
  if (nvmlReturn_t r = m.n.init(); r != 0) {
    m.reason = "nvmlInit failed: " + m.err(r);
    return;
  }
  m.inited = true;
  unsigned int count = 0;
  if (nvmlReturn_t r = m.n.count(&count); r != 0) {
    m.reason = "nvmlDeviceGetCount failed: " + m.err(r);
    return;
  }
  for (int i : indices) {
    if (i < 0 || unsigned(i) >= count) {
      m.reason = "GPU " + std::to_string(i) + " does not exist (NVML sees " + std::to_string(count) + ")";
      m.gpus.clear();
      return;
    }
    GpuStats g;
    g.index = i;
    if (nvmlReturn_t r = m.n.handle(unsigned(i), &g.dev); r != 0) {
      m.reason = "GPU " + std::to_string(i) + ": " + m.err(r);
      m.gpus.clear();
      return;
    }
    char name[96] = {};
    if (m.n.name(g.dev, name, sizeof name) == 0) g.name = name;
    m.gpus.push_back(std::move(g));
  }
  m.ok = true;
}

GpuTelemetry::~GpuTelemetry() {
  stop();
  if (impl_->inited) impl_->n.shutdown();
  if (impl_->n.lib) dlclose(impl_->n.lib);
}

bool GpuTelemetry::available() const { return impl_->ok; }
const std::string& GpuTelemetry::reason() const { return impl_->reason; }

void GpuTelemetry::start() {
  auto& m = *impl_;
  m.t_start = Clock::now();
  if (!m.ok || m.thread.joinable()) return;
  for (auto& g : m.gpus)
    if (m.n.energy && m.n.energy(g.dev, &g.energy_start_mj) == 0) g.energy_counter = true;
  m.stopping = false;
  m.thread = std::thread([&m] { m.loop(); });
}

Value GpuTelemetry::stop() {
  auto& m = *impl_;
  Value out;
  out.set("available", m.ok);
  if (!m.ok) {
    out.set("reason", m.reason);
    return out;
  }
  if (m.thread.joinable()) {
    {
      std::lock_guard lk(m.mu);
      m.stopping = true;
    }
    m.cv.notify_all();
    m.thread.join();
    m.sample_all();  // closes the last interval of the energy integral
  }
  out.set("interval_s", m.interval_s);
  out.set("wall_s", std::chrono::duration<double>(Clock::now() - m.t_start).count());
  out.set("energy_method", "trapezoidal integral of nvmlDeviceGetPowerUsage samples");
  Array rows;
  double total = 0;
  for (auto& g : m.gpus) {
    Value r;
    r.set("index", g.index);
    r.set("name", g.name);
    r.set("samples", g.samples);
    r.set("util_mean_pct", g.samples ? g.util_sum / double(g.samples) : 0.0);
    r.set("util_max_pct", g.util_max);
    r.set("mem_used_max_mib", g.mem_max);
    r.set("mem_total_mib", g.mem_total);
    r.set("power_mean_w", g.power_samples ? g.power_sum / double(g.power_samples) : 0.0);
    r.set("power_max_w", g.power_max);
    r.set("energy_j", g.energy_j);
    if (g.energy_counter && m.n.energy(g.dev, &g.energy_end_mj) == 0 && g.energy_end_mj >= g.energy_start_mj)
      r.set("energy_counter_j", double(g.energy_end_mj - g.energy_start_mj) / 1000.0);
    total += g.energy_j;
    rows.push_back(std::move(r));
  }
  out.set("gpus", std::move(rows));
  out.set("energy_j", total);
  return out;
}

namespace {
std::mutex g_pool_mu;
std::condition_variable g_pool_cv;
std::set<int> g_busy;
}  // namespace

GpuPool::Lease::Lease(Lease&& o) noexcept : gpus_(std::move(o.gpus_)), shared_(o.shared_) { o.gpus_.clear(); }
GpuPool::Lease& GpuPool::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    gpus_ = std::move(o.gpus_);
    shared_ = o.shared_;
    o.gpus_.clear();
  }
  return *this;
}
GpuPool::Lease::~Lease() { release(); }
void GpuPool::Lease::release() {
  if (shared_ || gpus_.empty()) return;
  {
    std::lock_guard lk(g_pool_mu);
    for (int g : gpus_) g_busy.erase(g);
  }
  gpus_.clear();
  g_pool_cv.notify_all();
}

Result<GpuPool::Lease> GpuPool::acquire(const std::vector<int>& pool, size_t count, bool share, const std::function<bool()>& cancelled) {
  if (count > pool.size())
    return Status::error("a job needs " + std::to_string(count) + " GPUs, the pool (gpus) has " + std::to_string(pool.size()));
  Lease l;
  l.shared_ = share;
  if (share || count == 0) {
    l.gpus_.assign(pool.begin(), pool.begin() + std::ptrdiff_t(count));
    return l;
  }
  std::unique_lock lk(g_pool_mu);
  while (true) {
    std::vector<int> free;
    for (int g : pool)
      if (!g_busy.count(g)) free.push_back(g);
    if (free.size() >= count) {
      free.resize(count);
      for (int g : free) g_busy.insert(g);
      l.gpus_ = std::move(free);
      return l;
    }
    if (cancelled && cancelled()) return Status::error("cancelled while waiting for a free GPU");
    g_pool_cv.wait_for(lk, std::chrono::milliseconds(100));
  }
}

std::vector<int> GpuPool::busy() {
  std::lock_guard lk(g_pool_mu);
  return {g_busy.begin(), g_busy.end()};
}

}  // namespace evald::bench
