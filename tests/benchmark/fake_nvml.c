/* A stand-in for libnvidia-ml.so.1 with fixed readings (2 GPUs, 40% busy, 10 of 80 GiB used,
   150 W), so the telemetry path that needs a driver is tested on machines without one. */
typedef struct { unsigned int gpu, memory; } util_t;
typedef struct { unsigned long long total, free, used; } mem_t;
static int inited;
int nvmlInit_v2(void) { inited = 1; return 0; }
int nvmlShutdown(void) { inited = 0; return 0; }
int nvmlDeviceGetCount_v2(unsigned int* n) { *n = 2; return inited ? 0 : 1; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void** h) { *h = (void*)(unsigned long)(i + 1); return i < 2 ? 0 : 2; }
int nvmlDeviceGetName(void* h, char* name, unsigned int len) {
  const char* s = h == (void*)1 ? "Fake GPU 0" : "Fake GPU 1";
  unsigned int i = 0;
  for (; s[i] && i + 1 < len; ++i) name[i] = s[i];
  name[i] = 0;
  return 0;
}
int nvmlDeviceGetUtilizationRates(void* h, util_t* u) { (void)h; u->gpu = 40; u->memory = 10; return 0; }
int nvmlDeviceGetMemoryInfo(void* h, mem_t* m) {
  (void)h;
  m->total = 80ull << 30;
  m->used = 10ull << 30;
  m->free = m->total - m->used;
  return 0;
}
int nvmlDeviceGetPowerUsage(void* h, unsigned int* mw) { (void)h; *mw = 150000; return 0; }
const char* nvmlErrorString(int r) { return r ? "fake error" : "success"; }
