// evald-bench-provenance: how fast provenance fingerprinting reads a model, and what comparing
// one model against a library of reference fingerprints costs.
//
// In one run, on synthetic Llama-shaped safetensors models it writes itself:
//   (a) a read() pass over the file (warms the page cache, and is the ceiling for read()ers);
//   (b) fingerprint_model (hash_files = false) on 1 and 2 threads, in a fresh child process per
//       run, so each run's peak memory is its own; on two model sizes, to show whether memory
//       grows with the model;
//   (c) `sha256sum` of the same file and a straightforward numpy script computing the same
//       statistics (provenance_numpy.py), both as child processes, timed the same way;
//   (d) scan_model of the model against 0, 1 and N (default 100) reference fingerprints.
// Throughputs are reported as ratios against the baselines measured in the same run.
#include <evald/value.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fingerprint.hpp"
#include "json.hpp"
#include "lineage.hpp"
#include "model.hpp"

namespace fs = std::filesystem;
using namespace evald::prov;
using namespace evald::text;
using evald::Value;

#include "bench_cli.hpp"

using evald::bench::cpu_model;
using evald::bench::die;
using evald::bench::parse_double;
using evald::bench::parse_u64;

namespace {

// ---------------------------------------------------------------------------------------
// Options

struct Options {
  double gb = 2.0;          // main model size (1e9 bytes)
  double small_gb = 1.0;    // second model for the memory comparison; 0: none
  std::string dtype = "BF16";
  uint64_t seed = 42;
  std::vector<unsigned> threads{1, 2};
  int repeat = 3;            // fingerprint, sha256sum
  int repeat_slow = 1;       // numpy, scans: tens of seconds each on 2 cores
  uint32_t refs = 100;
  fs::path workdir = "/var/tmp/evald-bench-provenance";
  fs::path make_dir;        // --make: only write a model there
  std::string python = "/usr/bin/python3";
  fs::path numpy_script;
  std::string projection = "sparse";
  bool do_sha = true, do_numpy = true, do_scan = true;
  bool keep = false, json = false, progress = true;
  fs::path json_out;         // also write the JSON object here
};

const char* kUsage = R"(usage: evald-bench-provenance [options]

Measures provenance fingerprinting throughput from the page cache and the cost of comparing a
model against a library of reference fingerprints, on synthetic Llama-shaped safetensors models
(d_model 2048, MLP 5632, 32 query / 4 key-value heads, vocab 32000, as many layers as fit the
size; values normal(0, 0.02) from a fixed seed). In one run:
  read()       one pass over the file with read(): warms the page cache
  fingerprint  fingerprint_model (no sha256 of the files) on each --threads count, each run in a
               fresh child process: wall time, GB/s, peak RSS; repeated on a second, smaller
               model to show that memory does not grow with the model
  sha256sum    the coreutils tool on the same file
  numpy        provenance_numpy.py: the same statistics (count sketches, their Gram matrices,
               mean/std, a sha256 of each tensor's bytes) in straightforward numpy over
               np.memmap; its results are checked against evald's
  compare      scan_model of the model against 0, 1 and --refs reference fingerprints
Figures are the best of their runs; ratios are against baselines measured in the same run.

options:
  --gb X              main model size in GB (1e9 bytes; default 2)
  --small-gb X        second model for the memory comparison (default 1; 0: none)
  --dtype T           bf16, f16 or f32 (default bf16)
  --seed N            value seed (default 42)
  --threads LIST      thread counts for fingerprinting, comma-separated (default 1,2)
  --repeat R          fingerprint and sha256sum runs, the best reported (default 3)
  --repeat-slow R     numpy and scan runs, the best reported (default 1)
  --refs N            reference fingerprints for the comparison (default 100)
  --workdir DIR       where the models go (default /var/tmp/evald-bench-provenance); removed
                      at the end unless --keep; a model kept there by --keep is reused
  --make DIR          only write a model (--gb, --dtype, --seed) to DIR and exit
  --python PATH       interpreter with numpy (default /usr/bin/python3)
  --numpy-script P    the numpy baseline (default: provenance_numpy.py beside this source)
  --projection P      numpy count sketch: sparse (gather + reduceat, default) or dense (W @ S;
                      slow with the reference BLAS Debian's numpy uses)
  --no-sha256, --no-numpy, --no-compare   leave a part out
  --keep              keep the work directory
  --json              one JSON object on stdout instead of the table
  --json-out FILE     the table on stdout and the JSON object in FILE
  --no-progress       no progress lines on stderr
  --help              this text
)";

Options parse_args(int argc, char** argv) {
  Options o;
  o.numpy_script = EVALD_BENCH_PROVENANCE_NUMPY;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) die(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--gb") {
      o.gb = parse_double(a, val(), 0.01, 1000);
    } else if (a == "--small-gb") {
      o.small_gb = parse_double(a, val(), 0, 1000);
    } else if (a == "--dtype") {
      std::string t = val();
      for (char& c : t) c = char(std::toupper(static_cast<unsigned char>(c)));
      if (t != "BF16" && t != "F16" && t != "F32") die("--dtype: bf16, f16 or f32, got \"" + t + "\"");
      o.dtype = t;
    } else if (a == "--seed") {
      o.seed = parse_u64(a, val(), 0, UINT64_MAX);
    } else if (a == "--threads") {
      o.threads.clear();
      std::stringstream ss(val());
      for (std::string item; std::getline(ss, item, ',');) o.threads.push_back(unsigned(parse_u64(a, item.c_str(), 1, 256)));
      if (o.threads.empty()) die("--threads: empty list");
    } else if (a == "--repeat") {
      o.repeat = int(parse_u64(a, val(), 1, 100));
    } else if (a == "--repeat-slow") {
      o.repeat_slow = int(parse_u64(a, val(), 1, 100));
    } else if (a == "--refs") {
      o.refs = uint32_t(parse_u64(a, val(), 1, 10000));
    } else if (a == "--workdir") {
      o.workdir = val();
    } else if (a == "--make") {
      o.make_dir = val();
    } else if (a == "--python") {
      o.python = val();
    } else if (a == "--numpy-script") {
      o.numpy_script = val();
    } else if (a == "--projection") {
      o.projection = val();
      if (o.projection != "sparse" && o.projection != "dense") die("--projection: sparse or dense");
    } else if (a == "--no-sha256") {
      o.do_sha = false;
    } else if (a == "--no-numpy") {
      o.do_numpy = false;
    } else if (a == "--no-compare") {
      o.do_scan = false;
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--json-out") {
      o.json_out = val();
    } else if (a == "--no-progress") {
      o.progress = false;
    } else {
      die("unknown option \"" + a + "\" (see --help)");
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------
// Small helpers

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool g_progress = true;
void note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char* fmt, ...) {
  if (!g_progress) return;
  va_list ap;
  va_start(ap, fmt);
  std::fputs("  ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string loadavg() {
  std::string s = read_text("/proc/loadavg");
  size_t third = 0;
  for (int k = 0; k < 3 && third != std::string::npos; ++k) third = s.find(' ', third + 1);
  return s.substr(0, third);
}

uint64_t fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// ---------------------------------------------------------------------------------------
// Synthetic model

// Normal(0,1) quantiles at 65536 evenly spaced probabilities: a 16-bit draw then gives a
// normal value far faster than Box-Muller, and the bf16 the values end up in keeps 8 bits.
const std::vector<float>& normal_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (size_t k = 0; k < v.size(); ++k) {
      double p = (double(k) + 0.5) / 65536.0, lo = -10, hi = 10;
      for (int it = 0; it < 80; ++it) {  // bisection on Phi(x) = erfc(-x / sqrt 2) / 2
        double mid = (lo + hi) / 2;
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
      }
      v[k] = float((lo + hi) / 2);
    }
    return v;
  }();
  return t;
}

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return uint16_t((b + 0x7fff + ((b >> 16) & 1)) >> 16);  // round to nearest even; values are finite
}

uint16_t to_f16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  uint32_t sign = (b >> 16) & 0x8000, abs = b & 0x7fffffff;
  if (abs >= 0x477ff000) return uint16_t(sign | 0x7c00);
  if (abs < 0x33000001) return uint16_t(sign);
  int exp = int(abs >> 23) - 127;
  uint32_t man = (abs & 0x7fffff) | 0x800000;
  if (exp < -14) {
    int shift = -14 - exp + 13;
    uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = uint32_t(exp + 15) << 10 | (man >> 13 & 0x3ff), rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return uint16_t(sign | r);
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> shape;
  float mean = 0, scale = 0.02f;
  uint64_t numel() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    return n;
  }
};

constexpr uint64_t kDModel = 2048, kMlp = 5632, kVocab = 32000, kKvDim = 256;  // TinyLlama-1.1B

std::vector<TensorSpec> llama_specs(int layers) {
  std::vector<TensorSpec> t;
  t.push_back({"model.embed_tokens.weight", {kVocab, kDModel}});
  for (int l = 0; l < layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "self_attn.q_proj.weight", {kDModel, kDModel}});
    t.push_back({p + "self_attn.k_proj.weight", {kKvDim, kDModel}});
    t.push_back({p + "self_attn.v_proj.weight", {kKvDim, kDModel}});
    t.push_back({p + "self_attn.o_proj.weight", {kDModel, kDModel}});
    t.push_back({p + "mlp.gate_proj.weight", {kMlp, kDModel}});
    t.push_back({p + "mlp.up_proj.weight", {kMlp, kDModel}});
    t.push_back({p + "mlp.down_proj.weight", {kDModel, kMlp}});
    t.push_back({p + "input_layernorm.weight", {kDModel}, 1.0f});
    t.push_back({p + "post_attention_layernorm.weight", {kDModel}, 1.0f});
  }
  t.push_back({"model.norm.weight", {kDModel}, 1.0f});
  t.push_back({"lm_head.weight", {kVocab, kDModel}});
  return t;
}

uint64_t elem_bytes(const std::string& dtype) { return dtype == "F32" ? 4 : 2; }

uint64_t specs_bytes(const std::vector<TensorSpec>& s, uint64_t eb) {
  uint64_t n = 0;
  for (const auto& t : s) n += t.numel() * eb;
  return n;
}

int layers_for(double gb, const std::string& dtype) {
  uint64_t eb = elem_bytes(dtype), fixed = specs_bytes(llama_specs(0), eb);
  uint64_t per = specs_bytes(llama_specs(1), eb) - fixed, target = uint64_t(gb * 1e9);
  return target > fixed + per ? int((target - fixed) / per) : 1;
}

struct ModelInfo {
  fs::path dir, file;
  double gb = 0;
  int layers = 0;
  uint64_t bytes = 0;    // file size
  size_t tensors = 0;
  double write_s = 0;    // 0 when reused
};

// Writes DIR/model.safetensors (real format: 8-byte header length, JSON header with
// __metadata__, space padding to 8 bytes, data in header order) and a Llama config.json.
ModelInfo make_model(const fs::path& dir, double gb, const std::string& dtype, uint64_t seed) {
  ModelInfo mi;
  mi.dir = dir;
  mi.file = dir / "model.safetensors";
  mi.gb = gb;
  mi.layers = layers_for(gb, dtype);
  auto specs = llama_specs(mi.layers);
  mi.tensors = specs.size();
  const uint64_t eb = elem_bytes(dtype);
  std::string stamp = fmt("layers=%d dtype=%s seed=%llu format=1\n", mi.layers, dtype.c_str(), (unsigned long long)seed);

  std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"generator\":\"evald-bench-provenance\",\"seed\":\"" +
                       std::to_string(seed) + "\"}";
  uint64_t off = 0;
  for (const auto& t : specs) {
    std::string shape;
    for (uint64_t d : t.shape) {
      if (!shape.empty()) shape += ',';
      shape += std::to_string(d);
    }
    uint64_t n = t.numel() * eb;
    header += ",\"" + t.name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(off) + "," + std::to_string(off + n) + "]}";
    off += n;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  uint64_t expect = 8 + header.size() + off;

  std::error_code ec;
  if (read_text(dir / "bench-stamp.txt") == stamp && fs::file_size(mi.file, ec) == expect) {
    mi.bytes = expect;
    note("reusing %s (%.2f GB, %d layers)", mi.file.c_str(), double(expect) / 1e9, mi.layers);
    return mi;
  }
  fs::create_directories(dir);
  fs::remove(dir / "bench-stamp.txt", ec);
  note("writing %s: %.2f GB, %d layers, %s ...", mi.file.c_str(), double(expect) / 1e9, mi.layers, dtype.c_str());
  auto t0 = Clock::now();
  int fd = ::open(mi.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("cannot create " + mi.file.string() + ": " + std::strerror(errno));
  std::vector<uint8_t> buf;
  buf.reserve(8 << 20);
  auto flush = [&] {
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t w = ::write(fd, buf.data() + done, buf.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) die("write " + mi.file.string() + ": " + std::strerror(errno));
      done += size_t(w);
    }
    buf.clear();
  };
  uint64_t hl = header.size();
  for (int i = 0; i < 8; ++i) buf.push_back(uint8_t(hl >> (8 * i)));
  buf.insert(buf.end(), header.begin(), header.end());
  const auto& table = normal_table();
  for (const auto& t : specs) {
    uint64_t state = seed ^ fnv(t.name), n = t.numel(), bits = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if ((i & 3) == 0) bits = mix64(state += 0x9e3779b97f4a7c15ull);  // splitmix64: 4 draws per call
      float v = t.mean + t.scale * table[(bits >> (16 * (i & 3))) & 0xffff];
      if (eb == 4) {
        uint8_t b[4];
        std::memcpy(b, &v, 4);
        buf.insert(buf.end(), b, b + 4);
      } else {
        uint16_t h = dtype == "BF16" ? to_bf16(v) : to_f16(v);
        buf.push_back(uint8_t(h));
        buf.push_back(uint8_t(h >> 8));
      }
      if (buf.size() >= (8u << 20)) flush();
    }
  }
  flush();
  if (::close(fd) != 0) die("close " + mi.file.string() + ": " + std::strerror(errno));
  std::ofstream(dir / "config.json")
      << "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": " << kDModel
      << ", \"intermediate_size\": " << kMlp << ", \"num_hidden_layers\": " << mi.layers
      << ", \"num_attention_heads\": 32, \"num_key_value_heads\": 4, \"vocab_size\": " << kVocab
      << ", \"torch_dtype\": \"" << (dtype == "BF16" ? "bfloat16" : dtype == "F16" ? "float16" : "float32") << "\"}\n";
  std::ofstream(dir / "bench-stamp.txt") << stamp;
  mi.write_s = since(t0);
  mi.bytes = fs::file_size(mi.file);
  if (mi.bytes != expect) die("wrote " + std::to_string(mi.bytes) + " bytes, expected " + std::to_string(expect));
  return mi;
}

// ---------------------------------------------------------------------------------------
// Child processes: wall time, CPU time and memory, sampled from /proc while they run

struct ProcRun {
  double wall_s = 0, user_s = 0, sys_s = 0;
  uint64_t maxrss_kb = 0;      // getrusage ru_maxrss: peak RSS, mapped page-cache pages included
  uint64_t peak_anon_kb = 0;   // peak of (resident - file-backed) pages: memory the process allocated
  uint64_t peak_file_kb = 0;   // peak of resident file-backed pages: the mapped page cache
  std::string out;             // stdout
  int status = 0;
};

ProcRun run_process(const std::vector<std::string>& argv) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) die(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "evald-bench-provenance: exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(p[1]);
  ProcRun r;
  int statm = ::open(("/proc/" + std::to_string(pid) + "/statm").c_str(), O_RDONLY | O_CLOEXEC);
  const uint64_t page_kb = uint64_t(::sysconf(_SC_PAGESIZE)) / 1024;
  auto sample = [&] {
    char b[256];
    ssize_t n = statm >= 0 ? ::pread(statm, b, sizeof b - 1, 0) : -1;
    if (n <= 0) return;
    b[n] = 0;
    unsigned long long size = 0, resident = 0, shared = 0;
    if (std::sscanf(b, "%llu %llu %llu", &size, &resident, &shared) != 3) return;
    r.peak_anon_kb = std::max<uint64_t>(r.peak_anon_kb, (resident - std::min(resident, shared)) * page_kb);
    r.peak_file_kb = std::max<uint64_t>(r.peak_file_kb, shared * page_kb);
  };
  for (;;) {
    pollfd pf{p[0], POLLIN, 0};
    int k = ::poll(&pf, 1, 5);  // 5 ms: a fine enough grain for peak memory, cheap for the CPU
    sample();
    if (k > 0) {
      char b[4096];
      ssize_t n = ::read(p[0], b, sizeof b);
      if (n > 0) r.out.append(b, size_t(n));
      else if (n == 0 || errno != EINTR) break;
    }
  }
  ::close(p[0]);
  rusage ru{};
  for (;;) {
    sample();
    pid_t w = ::wait4(pid, &r.status, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) die(std::string("wait4: ") + std::strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.wall_s = since(t0);
  if (statm >= 0) ::close(statm);
  r.user_s = double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6;
  r.sys_s = double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) / 1e6;
  r.maxrss_kb = uint64_t(ru.ru_maxrss);
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    die(argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + ": exited with status " + std::to_string(r.status));
  return r;
}

std::map<std::string, std::string> parse_kv(const std::string& s) {
  std::map<std::string, std::string> m;
  std::stringstream ss(s);
  for (std::string line; std::getline(ss, line);) {
    size_t sp = line.find(' ');
    if (sp != std::string::npos) m[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return m;
}

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) die("cannot read /proc/self/exe");
  return p.string();
}

// The child side of a fingerprint run: prints key/value lines for the parent. `dontneed`
// instead runs fingerprint_tensor over the tensors on one thread and unmaps each tensor's pages
// from the process (MADV_DONTNEED; they stay in the page cache) once it is done: what peak RSS
// becomes if fingerprinting let go of what it has read.
int child_fingerprint(const std::string& path, unsigned threads, bool dontneed) {
  auto t0 = Clock::now();
  Model m;
  FormatError err;
  if (!open_model(path, &m, &err)) {
    std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return 1;
  }
  double open_s = since(t0);
  auto t1 = Clock::now();
  Fingerprint f;
  if (!dontneed) {
    f = fingerprint_model(m, ComponentRules(), "bench", "", threads, false);
  } else {
    ComponentRules rules;
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    for (const Tensor& t : m.weights.tensors) {
      f.tensors.push_back(fingerprint_tensor(t, rules.classify(t.name), kReferenceUnits));
      uintptr_t a = reinterpret_cast<uintptr_t>(t.data) & ~(page - 1);
      uintptr_t e = std::min(reinterpret_cast<uintptr_t>(t.file->data()) + t.file->size(),
                             (reinterpret_cast<uintptr_t>(t.data) + t.nbytes + page - 1) & ~(page - 1));
      if (e > a) ::madvise(reinterpret_cast<void*>(a), e - a, MADV_DONTNEED);
    }
  }
  double fp_s = since(t1);
  // The fingerprint itself stays in memory: working memory is the peak beyond it.
  uint64_t result = 0;
  for (const TensorPrint& t : f.tensors) {
    for (const auto* s : {&t.by_row, &t.by_col}) result += (s->data.size() + s->gram.size() + s->ids.size()) * 4;
    result += t.vec.size() * 4 + sizeof t;
  }
  // A digest of the results: equal across thread counts, or the threads change the answer.
  uint64_t digest = 0;
  for (const TensorPrint& t : f.tensors) {
    uint64_t g = 0;
    for (const auto* s : {&t.by_row.gram, &t.by_col.gram})
      for (float x : *s) {
        uint32_t b;
        std::memcpy(&b, &x, 4);
        g = g * 31 + b;
      }
    digest = mix64(digest ^ t.hashes.exact ^ t.hashes.rows ^ t.hashes.cols ^ g);
  }
  std::printf("open_s %.6f\nfingerprint_s %.6f\nbytes %llu\ntensors %zu\ndigest %016llx\nresult_bytes %llu\n", open_s, fp_s,
              (unsigned long long)m.weights.total_bytes, f.tensors.size(), (unsigned long long)digest, (unsigned long long)result);
  return 0;
}

// ---------------------------------------------------------------------------------------
// Measurements

struct Measure {
  Measure(std::string w, uint64_t b) : what(std::move(w)), bytes(b) {}
  std::string what;
  uint64_t bytes = 0;      // what the throughput divides
  std::vector<ProcRun> runs;
  uint64_t result_bytes = 0;  // fingerprint runs: memory the fingerprint itself holds
  unsigned threads = 0;
  bool dontneed = false;
  std::vector<double> inner_s;  // time measured inside the process (fingerprint_model, numpy loop)
  double best_wall() const {
    double b = INFINITY;
    for (const auto& r : runs) b = std::min(b, r.wall_s);
    return b;
  }
  double best_inner() const {
    double b = INFINITY;
    for (double x : inner_s) b = std::min(b, x);
    return inner_s.empty() ? best_wall() : b;
  }
  const ProcRun& best_run() const {
    size_t k = 0;
    for (size_t i = 1; i < runs.size(); ++i)
      if (runs[i].wall_s < runs[k].wall_s) k = i;
    return runs[k];
  }
  uint64_t max_of(uint64_t ProcRun::*f) const {
    uint64_t m = 0;
    for (const auto& r : runs) m = std::max(m, r.*f);
    return m;
  }
  double gbps() const { return double(bytes) / best_inner() / 1e9; }
};

// One read() pass over the file: warms the page cache.
double read_pass(const fs::path& file, uint64_t* bytes) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open " + file.string() + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  auto t0 = Clock::now();
  uint64_t n = 0;
  for (ssize_t k; (k = ::read(fd, buf.data(), buf.size())) != 0;) {
    if (k < 0) {
      if (errno == EINTR) continue;
      die("read " + file.string() + ": " + std::strerror(errno));
    }
    n += uint64_t(k);
  }
  ::close(fd);
  *bytes = n;
  return since(t0);
}

// Fingerprint runs of one model on each thread count, interleaved across repeats so that a
// burst of load from other processes does not land on one thread count only.
std::vector<Measure> measure_fingerprint(const Options& o, const ModelInfo& mi, std::string* digest_out) {
  std::vector<Measure> ms;
  for (unsigned th : o.threads) {
    ms.emplace_back(fmt("fingerprint %u thread%s", th, th == 1 ? "" : "s"), mi.bytes);
    ms.back().threads = th;
  }
  ms.emplace_back("1 thread + MADV_DONTNEED", mi.bytes);
  ms.back().threads = 1;
  ms.back().dontneed = true;
  std::string digest;
  for (int rep = 0; rep < o.repeat; ++rep)
    for (size_t k = 0; k < ms.size(); ++k) {
      std::vector<std::string> cmd{self_exe(), "--child-fingerprint", mi.file.string(), "--threads", std::to_string(ms[k].threads)};
      if (ms[k].dontneed) cmd.push_back("--dontneed");
      ProcRun r = run_process(cmd);
      auto kv = parse_kv(r.out);
      if (!kv.count("fingerprint_s")) die("fingerprint child printed no result: " + r.out);
      if (digest.empty()) digest = kv["digest"];
      if (kv["digest"] != digest) die("fingerprints differ between runs (" + digest + " vs " + kv["digest"] + ")");
      double s = std::stod(kv["fingerprint_s"]);
      ms[k].result_bytes = std::stoull(kv["result_bytes"]);
      note("%s, %.2f GB: %.3f s (%.2f GB/s), process %.3f s, peak RSS %.0f MB (anon %.0f MB)", ms[k].what.c_str(),
           double(mi.bytes) / 1e9, s, double(mi.bytes) / s / 1e9, r.wall_s, double(r.maxrss_kb) / 1024,
           double(r.peak_anon_kb) / 1024);
      ms[k].runs.push_back(std::move(r));
      ms[k].inner_s.push_back(s);
    }
  *digest_out = digest;
  return ms;
}

// ---------------------------------------------------------------------------------------
// numpy check: the baseline computed the same statistics, so they must agree with evald's

struct NumpyCheck {
  size_t tensors = 0, grams = 0;
  double max_mean_err = 0;   // |mean diff| / stddev
  double max_std_rel = 0;    // relative stddev difference
  double max_gram_rel = 0;   // ||G_numpy - G_evald|| / ||G_evald||
  std::string worst;
  bool ok = false;
  std::string error;
};

NumpyCheck check_numpy(const fs::path& stats, const fs::path& grams, const Fingerprint& f) {
  NumpyCheck c;
  std::string text = read_text(stats);
  Json root;
  JsonError je;
  if (!parse_json(text, &root, &je, 16) || !root.find("tensors")) {
    c.error = "cannot parse " + stats.string();
    return c;
  }
  std::string gbytes = read_text(grams);
  std::vector<float> g(gbytes.size() / 4);
  std::memcpy(g.data(), gbytes.data(), g.size() * 4);
  std::map<std::string, const TensorPrint*> by_name;
  for (const auto& t : f.tensors) by_name[t.name] = &t;
  const size_t gs = size_t(kSketchWidth) * (kSketchWidth + 1) / 2;
  size_t at = 0;
  auto cmp = [&](const std::vector<float>& ours, const std::string& label) {
    if (at + gs > g.size() || ours.size() != gs) {
      c.error = "gram sizes differ at " + label;
      return;
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < gs; ++i) {
      double d = double(g[at + i]) - ours[i];
      num += d * d, den += double(ours[i]) * ours[i];
    }
    at += gs;
    ++c.grams;
    double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    if (rel > c.max_gram_rel) c.max_gram_rel = rel, c.worst = label;
  };
  for (const Json& t : root.find("tensors")->items()) {
    const Json* name = t.find("name");
    if (!name || !t.find("mean")) continue;
    auto it = by_name.find(name->str());
    if (it == by_name.end()) {
      c.error = "numpy saw tensor " + name->str() + " that evald did not";
      return c;
    }
    const TensorPrint& p = *it->second;
    ++c.tensors;
    double sd = std::max(p.stddev, 1e-30);
    c.max_mean_err = std::max(c.max_mean_err, std::fabs(t.find("mean")->as_double() - p.mean) / sd);
    c.max_std_rel = std::max(c.max_std_rel, std::fabs(t.find("std")->as_double() - p.stddev) / sd);
    bool row = t.find("row") && t.find("row")->as_bool(), col = t.find("col") && t.find("col")->as_bool();
    if (row != !p.by_row.empty() || col != !p.by_col.empty()) {
      c.error = "numpy and evald sketch different dimensions of " + p.name;
      return c;
    }
    if (row) cmp(p.by_row.gram, p.name + " (rows)");
    if (col) cmp(p.by_col.gram, p.name + " (cols)");
    if (!c.error.empty()) return c;
  }
  if (at != g.size()) c.error = "numpy wrote more Gram matrices than it listed";
  // float32 sums in different orders: agreement to ~1e-5 is the same statistic.
  c.ok = c.error.empty() && c.tensors == f.tensors.size() && c.max_gram_rel < 1e-3 && c.max_mean_err < 1e-3 && c.max_std_rel < 1e-4;
  if (c.error.empty() && c.tensors != f.tensors.size())
    c.error = fmt("numpy listed %zu tensors, evald %zu", c.tensors, f.tensors.size());
  return c;
}

// ---------------------------------------------------------------------------------------
// Comparison against a reference library

struct ScanFigure {
  uint32_t refs = 0;
  std::vector<double> wall_s, compare_s;  // per repeat; compare_s is ScanResult::seconds_compare
  uint64_t unit_tests = 0, tensor_tests = 0;
  double best_wall() const { return *std::min_element(wall_s.begin(), wall_s.end()); }
  double best_compare() const { return *std::min_element(compare_s.begin(), compare_s.end()); }
};

// References with the base fingerprint's sizes and fresh random sketches, Grams, vectors and
// hashes: the comparison's cost depends only on the sizes, and random values make no
// reference a verbatim copy.
std::vector<Fingerprint> make_references(const Fingerprint& base, uint32_t n, uint64_t seed) {
  std::vector<Fingerprint> refs;
  const auto& table = normal_table();
  uint64_t state = seed;
  auto normal = [&] { return table[mix64(state += 0x9e3779b97f4a7c15ull) & 0xffff]; };
  for (uint32_t k = 0; k < n; ++k) {
    Fingerprint f = base;
    f.name = fmt("synthetic-ref-%03u", k);
    f.revision = "r1";
    for (TensorPrint& t : f.tensors) {
      for (UnitSketch* s : {&t.by_row, &t.by_col}) {
        for (float& x : s->data) x = normal();
        for (float& x : s->gram) x = normal();
      }
      for (float& x : t.vec) x = 1.0f + 0.02f * normal();
      t.hashes.exact = mix64(state += 1), t.hashes.bf16 = mix64(state += 1), t.hashes.f16 = mix64(state += 1);
      t.hashes.rows = mix64(state += 1), t.hashes.cols = mix64(state += 1);
    }
    refs.push_back(std::move(f));
  }
  return refs;
}

std::vector<ScanFigure> measure_scan(const Options& o, const Model& m, const std::vector<Fingerprint>& refs) {
  std::vector<ScanFigure> out;
  std::vector<uint32_t> counts{0, 1, o.refs};
  for (uint32_t c : counts) out.push_back({c, {}, {}, 0, 0});
  DecisionConfig cfg;  // defaults, as `evald-provenance scan` runs it (2 threads)
  for (int rep = 0; rep < o.repeat_slow; ++rep)
    for (ScanFigure& sf : out) {
      std::vector<const Fingerprint*> ptrs;
      for (uint32_t k = 0; k < sf.refs; ++k) ptrs.push_back(&refs[k]);
      auto t0 = Clock::now();
      ScanResult r = scan_model(m, ptrs, ComponentRules(), cfg);
      double wall = since(t0);
      sf.wall_s.push_back(wall);
      sf.compare_s.push_back(r.seconds_compare);
      sf.unit_tests = sf.tensor_tests = 0;
      for (const auto& c : r.components)
        for (const auto& rr : c.references) {
          sf.tensor_tests += rr.tests.size();
          for (const auto& t : rr.tests) sf.unit_tests += t.tested ? 1 : 0;
        }
      note("scan against %u reference%s: %.3f s (comparison %.3f s), %llu unit tests", sf.refs, sf.refs == 1 ? "" : "s", wall,
           r.seconds_compare, (unsigned long long)sf.unit_tests);
    }
  return out;
}

// ---------------------------------------------------------------------------------------
// Output

Value proc_value(const Measure& m) {
  Value v;
  v.set("what", m.what);
  v.set("bytes", m.bytes);
  v.set("best_s", m.best_inner());
  v.set("best_process_s", m.best_wall());
  v.set("gb_per_s", m.gbps());
  const ProcRun& b = m.best_run();
  v.set("cpu_s", b.user_s + b.sys_s);
  v.set("maxrss_kb", m.max_of(&ProcRun::maxrss_kb));
  v.set("peak_anon_kb", m.max_of(&ProcRun::peak_anon_kb));
  v.set("peak_file_kb", m.max_of(&ProcRun::peak_file_kb));
  if (m.threads) {
    v.set("threads", m.threads);
    v.set("madv_dontneed", m.dontneed);
    v.set("result_bytes", m.result_bytes);
  }
  Value runs = Value(evald::Array{});
  for (size_t i = 0; i < m.runs.size(); ++i) {
    Value r;
    r.set("process_s", m.runs[i].wall_s);
    if (i < m.inner_s.size()) r.set("inner_s", m.inner_s[i]);
    r.set("user_s", m.runs[i].user_s);
    r.set("sys_s", m.runs[i].sys_s);
    r.set("maxrss_kb", m.runs[i].maxrss_kb);
    r.set("peak_anon_kb", m.runs[i].peak_anon_kb);
    runs.push_back(r);
  }
  v.set("runs", runs);
  return v;
}

std::string mb(uint64_t kb) { return fmt("%.0f MB", double(kb) / 1024); }

}  // namespace

int main(int argc, char** argv) {
  if ((argc == 5 || argc == 6) && std::string(argv[1]) == "--child-fingerprint" && std::string(argv[3]) == "--threads")
    return child_fingerprint(argv[2], unsigned(std::strtoul(argv[4], nullptr, 10)), argc == 6 && std::string(argv[5]) == "--dontneed");
  Options o = parse_args(argc, argv);
  g_progress = o.progress;

  if (!o.make_dir.empty()) {
    ModelInfo mi = make_model(o.make_dir, o.gb, o.dtype, o.seed);
    std::printf("%s: %.3f GB, %d layers, %zu tensors, %s, written in %.1f s\n", mi.file.c_str(), double(mi.bytes) / 1e9,
                mi.layers, mi.tensors, o.dtype.c_str(), mi.write_s);
    return 0;
  }
  if (o.do_numpy && !fs::exists(o.numpy_script)) die("numpy script " + o.numpy_script.string() + " not found (--numpy-script, or --no-numpy)");

  // Room for both models plus slack, or the run would fail half-way through writing.
  fs::create_directories(o.workdir);
  struct statvfs sv {};
  if (::statvfs(o.workdir.c_str(), &sv) == 0) {
    double free_gb = double(sv.f_bavail) * double(sv.f_frsize) / 1e9, need = (o.gb + o.small_gb) * 1.05 + 0.5;
    if (free_gb < need) die(fmt("%s has %.1f GB free, the models need %.1f GB", o.workdir.c_str(), free_gb, need));
  }
  const std::string load_before = loadavg();

  std::vector<ModelInfo> models;
  if (o.small_gb > 0) models.push_back(make_model(o.workdir / fmt("llama-%gGB-%s", o.small_gb, o.dtype.c_str()), o.small_gb, o.dtype, o.seed));
  models.push_back(make_model(o.workdir / fmt("llama-%gGB-%s", o.gb, o.dtype.c_str()), o.gb, o.dtype, o.seed));
  const ModelInfo& main_model = models.back();

  // (a) + (b) per model
  struct PerModel {
    double read_s = 0;
    uint64_t read_bytes = 0;
    std::vector<Measure> fp;
    std::string digest;
  };
  std::vector<PerModel> pm(models.size());
  for (size_t i = 0; i < models.size(); ++i) {
    pm[i].read_s = read_pass(models[i].file, &pm[i].read_bytes);
    note("read() pass over %s: %.3f s (%.2f GB/s)", models[i].file.c_str(), pm[i].read_s, double(pm[i].read_bytes) / pm[i].read_s / 1e9);
    pm[i].fp = measure_fingerprint(o, models[i], &pm[i].digest);
  }

  // (c) baselines on the main model, interleaved across repeats
  Measure sha("sha256sum", main_model.bytes), np("numpy", main_model.bytes);
  std::string sha_digest;
  fs::path np_stats = main_model.dir / "numpy-stats.json", np_grams = main_model.dir / "numpy-grams.f32",
           np_plan = main_model.dir / "numpy-plan.json";
  if (o.do_numpy) {
    // The numpy script sketches the dimensions evald's component rules choose.
    Model m;
    FormatError err;
    if (!open_model(main_model.file.string(), &m, &err)) die(err.to_string());
    ComponentRules rules;
    std::ofstream plan(np_plan);
    plan << "{";
    for (size_t k = 0; k < m.weights.tensors.size(); ++k) {
      auto u = rules.classify(m.weights.tensors[k].name).units;
      plan << (k ? ",\n" : "") << "\"" << m.weights.tensors[k].name << "\": \""
           << (u == TensorRole::Units::Rows ? "rows" : u == TensorRole::Units::Cols ? "cols" : "both") << "\"";
    }
    plan << "}\n";
  }
  for (int rep = 0; rep < std::max(o.repeat, o.repeat_slow); ++rep) {
    if (o.do_sha && rep < o.repeat) {
      ProcRun r = run_process({"sha256sum", main_model.file.string()});
      sha_digest = r.out.substr(0, r.out.find(' '));
      note("sha256sum: %.3f s (%.2f GB/s)", r.wall_s, double(sha.bytes) / r.wall_s / 1e9);
      sha.runs.push_back(std::move(r));
    }
    if (o.do_numpy && rep < o.repeat_slow) {
      std::vector<std::string> cmd{o.python, o.numpy_script.string(), main_model.file.string(), "--plan", np_plan.string(), "--out",
                                   np_stats.string(), "--grams", np_grams.string(), "--projection", o.projection};
      if (!o.progress) cmd.push_back("--quiet");
      ProcRun r = run_process(cmd);
      note("numpy: %.3f s (%.2f GB/s), peak RSS %s (anon %s)", r.wall_s, double(np.bytes) / r.wall_s / 1e9, mb(r.maxrss_kb).c_str(),
           mb(r.peak_anon_kb).c_str());
      np.runs.push_back(std::move(r));
    }
  }

  // (d) comparison, and the reference fingerprint the numpy check uses
  std::vector<ScanFigure> scans;
  NumpyCheck npc;
  uint64_t ref_bytes = 0;
  size_t ref_tensors = 0;
  if (o.do_scan || o.do_numpy) {
    Model m;
    FormatError err;
    if (!open_model(main_model.file.string(), &m, &err)) die(err.to_string());
    Fingerprint base = fingerprint_model(m, ComponentRules(), "base", "", 2, false);
    if (o.do_numpy) npc = check_numpy(np_stats, np_grams, base);
    if (o.do_scan) {
      ref_bytes = evald::msgpack::encode(to_value(base)).size();
      ref_tensors = base.tensors.size();
      auto t0 = Clock::now();
      std::vector<Fingerprint> refs = make_references(base, o.refs, o.seed);
      note("%u references of %.1f MB each built in %.1f s", o.refs, double(ref_bytes) / 1e6, since(t0));
      scans = measure_scan(o, m, refs);
    }
  }
  const std::string load_after = loadavg();

  // Report
  auto ratio = [](double a, double b) { return b > 0 ? a / b : NAN; };
  Value out;
  {
    Value mach;
    mach.set("cpu", cpu_model());
    mach.set("cpus", uint64_t(std::thread::hardware_concurrency()));
    mach.set("loadavg_before", load_before);
    mach.set("loadavg_after", load_after);
    mach.set("build_type", EVALD_BENCH_BUILD_TYPE);
    out.set("machine", mach);
    Value ms = Value(evald::Array{});
    for (size_t i = 0; i < models.size(); ++i) {
      Value v;
      v.set("file", models[i].file.string());
      v.set("bytes", models[i].bytes);
      v.set("layers", models[i].layers);
      v.set("tensors", uint64_t(models[i].tensors));
      v.set("dtype", o.dtype);
      v.set("write_s", models[i].write_s);
      v.set("read_pass_s", pm[i].read_s);
      v.set("read_pass_gb_per_s", double(pm[i].read_bytes) / pm[i].read_s / 1e9);
      v.set("digest", pm[i].digest);
      Value fps = Value(evald::Array{});
      for (const auto& f : pm[i].fp) {
        Value fv = proc_value(f);
        if (o.do_sha) fv.set("speed_vs_sha256sum", ratio(sha.best_wall(), f.best_inner()));
        if (o.do_numpy) fv.set("speed_vs_numpy", ratio(np.best_wall(), f.best_inner()));
        fps.push_back(fv);
      }
      v.set("fingerprint", fps);
      ms.push_back(v);
    }
    out.set("models", ms);
    if (o.do_sha) {
      Value v = proc_value(sha);
      v.set("sha256", sha_digest);
      out.set("sha256sum", v);
    }
    if (o.do_numpy) {
      Value v = proc_value(np);
      v.set("projection", o.projection);
      Value c;
      c.set("ok", npc.ok);
      c.set("error", npc.error);
      c.set("tensors", uint64_t(npc.tensors));
      c.set("grams", uint64_t(npc.grams));
      c.set("max_gram_rel_diff", npc.max_gram_rel);
      c.set("max_mean_diff_in_sd", npc.max_mean_err);
      c.set("max_std_rel_diff", npc.max_std_rel);
      v.set("check", c);
      out.set("numpy", v);
    }
    if (o.do_scan) {
      Value v;
      v.set("reference_bytes", uint64_t(ref_bytes));
      v.set("reference_tensors", uint64_t(ref_tensors));
      Value rows = Value(evald::Array{});
      for (const auto& s : scans) {
        Value r;
        r.set("refs", s.refs);
        r.set("best_s", s.best_wall());
        r.set("best_compare_s", s.best_compare());
        r.set("unit_tests", s.unit_tests);
        r.set("tensor_tests", s.tensor_tests);
        Value w = Value(evald::Array{});
        for (double x : s.wall_s) w.push_back(x);
        r.set("runs_s", w);
        rows.push_back(r);
      }
      v.set("scans", rows);
      v.set("added_s", scans.back().best_wall() - scans.front().best_wall());
      out.set("compare", v);
    }
  }
  if (!o.json_out.empty()) std::ofstream(o.json_out) << evald::to_json(out) << "\n";
  if (o.json) {
    std::printf("%s\n", evald::to_json(out).c_str());
  } else {
    std::printf("evald-bench-provenance: %s, %u CPUs, load %s before / %s after, build %s\n", cpu_model().c_str(),
                std::thread::hardware_concurrency(), load_before.c_str(), load_after.c_str(), EVALD_BENCH_BUILD_TYPE);
    std::printf("synthetic Llama (d_model 2048, MLP 5632, vocab 32000), %s; best of %d (numpy, scans: of %d)\n\n", o.dtype.c_str(),
                o.repeat, o.repeat_slow);
    std::printf("%-26s %9s %8s %8s %10s %10s %10s  %s\n", "", "GB", "s", "GB/s", "peak RSS", "anon", "file", "vs");
    for (size_t i = 0; i < models.size(); ++i) {
      const ModelInfo& mi = models[i];
      double gb = double(mi.bytes) / 1e9;
      std::printf("-- model %.2f GB (%d layers, %zu tensors)\n", gb, mi.layers, mi.tensors);
      std::printf("%-26s %9.2f %8.3f %8.2f %10s %10s %10s\n", "read() pass (warms cache)", gb, pm[i].read_s,
                  double(pm[i].read_bytes) / pm[i].read_s / 1e9, "", "", "");
      for (const auto& f : pm[i].fp) {
        std::string vs;
        if (i + 1 == models.size()) {
          if (o.do_sha) vs += fmt("%.2fx sha256sum", ratio(sha.best_wall(), f.best_inner()));
          if (o.do_numpy) vs += fmt("%s%.2fx numpy", vs.empty() ? "" : ", ", ratio(np.best_wall(), f.best_inner()));
        }
        std::printf("%-26s %9.2f %8.3f %8.2f %10s %10s %10s  %s\n", f.what.c_str(), gb, f.best_inner(), f.gbps(),
                    mb(f.max_of(&ProcRun::maxrss_kb)).c_str(), mb(f.max_of(&ProcRun::peak_anon_kb)).c_str(),
                    mb(f.max_of(&ProcRun::peak_file_kb)).c_str(), vs.c_str());
      }
    }
    double gb = double(main_model.bytes) / 1e9;
    for (const Measure* b : {&sha, &np}) {
      if (b->runs.empty()) continue;
      std::printf("%-26s %9.2f %8.3f %8.2f %10s %10s %10s  (whole process)\n", b->what.c_str(), gb, b->best_wall(),
                  double(b->bytes) / b->best_wall() / 1e9, mb(b->max_of(&ProcRun::maxrss_kb)).c_str(),
                  mb(b->max_of(&ProcRun::peak_anon_kb)).c_str(), mb(b->max_of(&ProcRun::peak_file_kb)).c_str());
    }
    std::printf("\nfingerprint s: fingerprint_model alone (the child process also maps the file and exits).\n"
                "peak RSS = ru_maxrss; anon = allocated memory (the fingerprint it returns included); file = mapped\n"
                "page cache, shared and reclaimable. + MADV_DONTNEED: fingerprint_tensor per tensor on 1 thread,\n"
                "each tensor's pages unmapped (left in the page cache) when it is done.\n");
    if (pm.size() == 2) {
      auto line = [&](const char* label, size_t k) {
        const Measure &a = pm[0].fp[k], &b = pm[1].fp[k];
        auto work = [](const Measure& m) { return m.max_of(&ProcRun::peak_anon_kb) - std::min(m.max_of(&ProcRun::peak_anon_kb), m.result_bytes / 1024); };
        std::printf("  %-26s peak RSS %s -> %s; anon %s -> %s, of which the fingerprint %s -> %s, working memory %s -> %s\n", label,
                    mb(a.max_of(&ProcRun::maxrss_kb)).c_str(), mb(b.max_of(&ProcRun::maxrss_kb)).c_str(),
                    mb(a.max_of(&ProcRun::peak_anon_kb)).c_str(), mb(b.max_of(&ProcRun::peak_anon_kb)).c_str(),
                    mb(a.result_bytes / 1024).c_str(), mb(b.result_bytes / 1024).c_str(), mb(work(a)).c_str(), mb(work(b)).c_str());
      };
      std::printf("memory vs model size (%.2f GB -> %.2f GB):\n", double(models[0].bytes) / 1e9, double(models[1].bytes) / 1e9);
      line(pm[1].fp.front().what.c_str(), 0);
      line(pm[1].fp.back().what.c_str(), pm[1].fp.size() - 1);
    }
    if (o.do_numpy)
      std::printf("numpy check (%s projection): %s; %zu tensors, %zu Gram matrices, max Gram rel. diff %.2g, mean diff %.2g sd, std rel. diff %.2g%s%s\n",
                  o.projection.c_str(), npc.ok ? "same statistics" : "MISMATCH", npc.tensors, npc.grams, npc.max_gram_rel,
                  npc.max_mean_err, npc.max_std_rel, npc.error.empty() ? "" : ": ", npc.error.c_str());
    if (o.do_scan) {
      std::printf("\ncomparison: scan_model (2 threads, 999 permutations) of the %.2f GB model; references %.1f MB, %zu tensors each\n",
                  gb, double(ref_bytes) / 1e6, ref_tensors);
      std::printf("%-26s %8s %12s %11s %11s\n", "", "s", "comparison s", "unit tests", "tensor rows");
      for (const auto& s : scans)
        std::printf("%-26s %8.3f %12.3f %11llu %11llu\n", fmt("against %u reference%s", s.refs, s.refs == 1 ? "" : "s").c_str(),
                    s.best_wall(), s.best_compare(), (unsigned long long)s.unit_tests, (unsigned long long)s.tensor_tests);
      std::printf("%u references add %.3f s of wall time to the scan (%.3f s over 1 reference)\n", o.refs,
                  scans.back().best_wall() - scans.front().best_wall(), scans.back().best_wall() - scans[1].best_wall());
    }
  }

  if (!o.keep) {
    // Only what this run put there: --workdir may name a directory that holds other things.
    std::error_code ec;
    for (const ModelInfo& mi : models) {
      fs::remove_all(mi.dir, ec);
      if (ec) std::fprintf(stderr, "evald-bench-provenance: could not remove %s: %s\n", mi.dir.c_str(), ec.message().c_str());
    }
    if (fs::is_empty(o.workdir, ec)) fs::remove(o.workdir, ec);
  }
  return o.do_numpy && !npc.ok ? 1 : 0;
}
