// evald-provenance: builds the reference fingerprint library and runs the provenance analysis
// without a competition (the plugin runs the same code). See --help.
#include <evald/value.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "library.hpp"
#include "report.hpp"

using namespace evald::prov;

namespace {

const char* kUsage = R"(Usage: evald-provenance COMMAND [options]

Commands:
  add --library DIR --name NAME [--revision REV] [--no-hash] [--independent] MODEL
        Fingerprint an open model (a directory or weight file) and store it in the library
        (created when missing). The fingerprint carries NAME, REV and the sha256 of the files.
        --independent stores a model known to be unrelated to every reference: never a
        source, its effects form the empirical null a "derived" verdict must exceed.
  list --library DIR            The library's fingerprints.
  remove --library DIR KEY      Remove NAME@REV (or NAME) from the library.
  export --library DIR KEY FILE Write one fingerprint record (msgpack) to FILE, to share it.
  import --library DIR [--name NAME [--revision REV]] FILE
        Add a record written by export (checked before it is stored), under NAME@REV when
        given instead of the name it was exported with.
  scan --library DIR MODEL      Decide, per component, whether MODEL derives from a reference.
  trajectory --library DIR (RUN_DIR | CKPT CKPT...)
        Check a checkpoint series: step 0 independent of every reference, each checkpoint
        descending from the one before, and the final model. RUN_DIR's subfolders are taken
        in the order of the step number in their names ("final" last).
  inspect MODEL                 Read MODEL strictly and list its tensors and components.

Options (scan, trajectory):
  --alpha A            family-wise error rate per component, Holm across the library (0.01)
  --min-effect E       mean matched unit correlation needed to call a component derived (0.2)
  --permutations N     permutations per test (999)
  --screen G           Gram similarity below which units are not matched by content (0.1)
  --seed S             permutation seed (1)
  --rule REGEX=COMP    extra component rule (COMP: llm, embeddings, vision, other); repeatable
  --min-null-models N  known-independent models needed before calibrated evidence decides (3)
  --null-z Z           standard deviations above their mean calibrated evidence needs (3)
  --max-unassigned-share S
                       share of the parameters that may lie in tensors placed in no component
                       before the gate is inconclusive (0.05)
  --brief              leave per-tensor evidence out of --json output
Common:
  --threads N          worker threads (2)
  --json               machine-readable output on stdout
  -q, --quiet          no progress on stderr
  -h, --help           this text

Exit status: 0 pass (or success), 1 gate failed (a component derives from a reference, or the
trajectory is inconsistent), 3 inconclusive (malformed input, unanalysable weights, or parts of
the model not judged), 2 usage or library error (also: scan or trajectory with a library that
holds no reference model).
)";

struct Args {
  std::string cmd, library, name, revision;
  std::vector<std::string> positional;
  evald::Value config = evald::Value(evald::Map{});
  bool json = false, quiet = false, hash = true, brief = false, independent = false;
  unsigned threads = 2;
};

int usage_error(const std::string& msg) {
  std::cerr << "evald-provenance: " << msg << "\n(see evald-provenance --help)\n";
  return 2;
}

// A redrawn line on a terminal; elsewhere (logs, CI) one line per 10%.
ProgressFn progress_printer(bool quiet) {
  if (quiet) return {};
  bool tty = isatty(2);
  auto last = std::make_shared<int>(-1);
  return [last, tty](uint64_t done, uint64_t total) {
    int pct = total ? int(done * 100 / total) : 100;
    int step = tty ? pct : pct / 10 * 10;
    if (step == *last) return;
    *last = step;
    std::fprintf(stderr, tty ? "\r  %3d%%  %.1f / %.1f MB" : "  %3d%%  %.1f / %.1f MB\n", pct, double(done) / 1e6, double(total) / 1e6);
    if (tty && pct == 100) std::fprintf(stderr, "\n");
  };
}

int exit_for(const evald::Value& report) {
  const evald::Value* g = report.find("gate");
  std::string r = g ? g->get_string("result") : "inconclusive";
  return r == "pass" ? 0 : r == "fail" ? 1 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  evald::Value rules = evald::Value(evald::Array{});
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto need = [&](const char* what) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)what;
      return argv[++i];
    };
    if (s == "-h" || s == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (s == "--json") {
      a.json = true;
    } else if (s == "-q" || s == "--quiet") {
      a.quiet = true;
    } else if (s == "--no-hash") {
      a.hash = false;
    } else if (s == "--brief") {
      a.brief = true;
    } else if (s == "--independent") {
      a.independent = true;
    } else if (s == "--library" || s == "--name" || s == "--revision" || s == "--alpha" || s == "--min-effect" ||
               s == "--permutations" || s == "--screen" || s == "--seed" || s == "--rule" || s == "--threads" ||
               s == "--max-unassigned-share" || s == "--min-null-models" || s == "--null-z") {
      const char* v = need(s.c_str());
      if (!v) return usage_error(s + " needs a value");
      std::string val = v;
      if (s == "--library") a.library = val;
      else if (s == "--name") a.name = val;
      else if (s == "--revision") a.revision = val;
      else if (s == "--rule") {
        size_t eq = val.rfind('=');
        if (eq == std::string::npos) return usage_error("--rule wants REGEX=COMPONENT");
        evald::Value r;
        r.set("pattern", val.substr(0, eq));
        r.set("component", val.substr(eq + 1));
        rules.push_back(r);
      } else {
        char* end = nullptr;
        double d = std::strtod(val.c_str(), &end);
        if (!end || *end) return usage_error(s + ": not a number: " + val);
        std::string key = s.substr(2);
        for (char& c : key)
          if (c == '-') c = '_';
        if (key == "threads") a.threads = unsigned(d);
        a.config.set(key, d);
      }
    } else if (!s.empty() && s[0] == '-' && s != "-") {
      return usage_error("unknown option " + s);
    } else if (a.cmd.empty()) {
      a.cmd = s;
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.cmd.empty()) return usage_error("no command");
  a.config.set("component_rules", rules);
  a.config.set("threads", double(a.threads));
  auto opts = scan_options_from(a.config);
  if (!opts) return usage_error(opts.error());
  opts.value();
  ScanOptions opt = *opts;
  opt.detail = !a.brief;
  ProgressFn progress = progress_printer(a.quiet);

  if (a.cmd == "inspect") {
    if (a.positional.size() != 1) return usage_error("inspect takes one MODEL");
    Model m;
    FormatError err;
    if (!open_model(a.positional[0], &m, &err)) {
      if (a.json) {
        evald::Value v;
        v.set("error", err.to_string());
        std::cout << evald::to_json(v) << "\n";
      } else {
        std::cerr << "malformed: " << err.to_string() << "\n";
      }
      return 3;
    }
    ComponentRules cr;
    cr.add(opt.rules);
    evald::Value v;
    v.set("format", m.weights.format);
    evald::Value ts = evald::Value(evald::Array{});
    for (const Tensor& t : m.weights.tensors) {
      TensorRole r = cr.classify(t.name);
      evald::Value tv;
      tv.set("name", t.name);
      tv.set("dtype", dtype_name(t.dtype));
      evald::Value shape = evald::Value(evald::Array{});
      for (auto d : t.shape) shape.push_back(d);
      tv.set("shape", shape);
      tv.set("component", r.component);
      tv.set("role", r.role);
      tv.set("layer", r.layer);
      ts.push_back(tv);
      if (!a.json) {
        std::string sh;
        for (auto d : t.shape) sh += (sh.empty() ? "" : "x") + std::to_string(d);
        std::printf("%-60s %-8s %-14s %-10s %s\n", t.name.c_str(), dtype_name(t.dtype), sh.c_str(), r.component.c_str(), r.role.c_str());
      }
    }
    v.set("tensors", ts);
    evald::Value claims = evald::Value(evald::Array{});
    for (const auto& c : m.claims) {
      claims.push_back(c.key + " = " + c.value + " (" + c.source + ")");
      if (!a.json) std::printf("declared lineage (unverified): %s = %s (%s)\n", c.key.c_str(), c.value.c_str(), c.source.c_str());
    }
    v.set("declared_lineage", claims);
    v.set("vocab", uint64_t(m.vocab.size()));
    if (a.json) std::cout << evald::to_json(v) << "\n";
    return 0;
  }

  if (a.library.empty()) return usage_error(a.cmd + " needs --library DIR");
  bool writes = a.cmd == "add" || a.cmd == "remove" || a.cmd == "import";
  auto lib = FingerprintLibrary::open(a.library, !writes, a.cmd == "add" || a.cmd == "import");
  if (!lib) {
    std::cerr << "evald-provenance: " << lib.error() << "\n";
    return 2;
  }
  if (a.cmd == "add") {
    if (a.positional.size() != 1 || a.name.empty()) return usage_error("add takes --name NAME and one MODEL");
    Model m;
    FormatError err;
    if (!open_model(a.positional[0], &m, &err)) {
      std::cerr << "evald-provenance: malformed: " << err.to_string() << "\n";
      return 3;
    }
    ComponentRules cr;
    cr.add(opt.rules);
    if (!a.quiet) std::fprintf(stderr, "fingerprinting %s (%s, %zu tensors)\n", a.positional[0].c_str(), m.weights.format.c_str(), m.weights.tensors.size());
    Fingerprint f;
    try {
      f = fingerprint_model(m, cr, a.name, a.revision, a.threads, a.hash, progress);
    } catch (const std::exception& e) {
      std::cerr << "evald-provenance: " << e.what() << "\n";
      return 2;
    }
    if (a.independent) f.kind = "independent";
    if (auto s = (*lib)->put(f); !s) {
      std::cerr << "evald-provenance: " << s.message() << "\n";
      return 2;
    }
    if (a.json) {
      evald::Value v;
      v.set("key", library_key(f));
      v.set("kind", f.kind);
      v.set("source_hash", f.source_hash);
      v.set("tensors", uint64_t(f.tensors.size()));
      v.set("bytes", f.total_bytes);
      std::cout << evald::to_json(v) << "\n";
    } else {
      std::printf("added %s%s: %zu tensors, %llu bytes, sha256 %s\n", library_key(f).c_str(), a.independent ? " (known independent)" : "", f.tensors.size(),
                  static_cast<unsigned long long>(f.total_bytes), f.source_hash.empty() ? "(not computed)" : f.source_hash.c_str());
    }
    return 0;
  }
  if (a.cmd == "remove") {
    if (a.positional.size() != 1) return usage_error("remove takes one KEY");
    if (auto s = (*lib)->remove(a.positional[0]); !s) {
      std::cerr << "evald-provenance: " << s.message() << "\n";
      return 2;
    }
    if (!a.json) std::printf("removed %s\n", a.positional[0].c_str());
    return 0;
  }
  if (a.cmd == "export") {
    if (a.positional.size() != 2) return usage_error("export takes KEY FILE");
    auto rec = (*lib)->get_record(a.positional[0]);
    if (!rec) {
      std::cerr << "evald-provenance: " << rec.error() << "\n";
      return 2;
    }
    std::ofstream out(a.positional[1], std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(rec->data()), std::streamsize(rec->size()));
    if (!out.flush()) {
      std::cerr << "evald-provenance: cannot write " << a.positional[1] << "\n";
      return 2;
    }
    if (!a.json) std::printf("exported %s to %s (%zu bytes)\n", a.positional[0].c_str(), a.positional[1].c_str(), rec->size());
    return 0;
  }
  if (a.cmd == "import") {
    if (a.positional.size() != 1) return usage_error("import takes FILE");
    std::ifstream in(a.positional[0], std::ios::binary);
    if (!in) return usage_error("cannot open " + a.positional[0]);
    evald::Bytes rec((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!a.revision.empty() && a.name.empty()) return usage_error("import: --revision needs --name");
    if (auto s = (*lib)->put_record(rec, a.name, a.revision); !s) {
      std::cerr << "evald-provenance: " << a.positional[0] << ": " << s.message() << "\n";
      return 2;
    }
    if (!a.json) std::printf("imported %s\n", a.positional[0].c_str());
    return 0;
  }
  if (a.cmd == "list") {
    auto entries = (*lib)->entries();
    if (!entries) {
      std::cerr << "evald-provenance: " << entries.error() << "\n";
      return 2;
    }
    evald::Value arr = evald::Value(evald::Array{});
    for (const LibraryEntry& e : *entries) {
      evald::Value v;
      v.set("key", e.key);
      v.set("kind", e.kind);
      v.set("source_hash", e.source_hash);
      v.set("format", e.format);
      v.set("tensors", e.tensors);
      v.set("bytes", e.total_bytes);
      v.set("version", e.version);
      arr.push_back(v);
      if (!a.json)
        std::printf("%-32s %-11s %-12s %5llu tensors %12llu bytes  sha256 %s\n", e.key.c_str(), e.kind.c_str(), e.format.c_str(),
                    static_cast<unsigned long long>(e.tensors), static_cast<unsigned long long>(e.total_bytes), e.source_hash.c_str());
    }
    if (a.json) std::cout << evald::to_json(arr) << "\n";
    return 0;
  }
  lib->reset();  // the scan reads the library through its own read-only handle
  auto refs = open_references(a.library);
  if (!refs) {
    std::cerr << "evald-provenance: " << refs.error() << "\n";
    return 2;
  }
  bool any_reference = false;
  for (size_t r = 0; r < (*refs)->size(); ++r) any_reference |= (*refs)->head(r).kind == "reference";
  if ((a.cmd == "scan" || a.cmd == "trajectory") && !any_reference) {
    std::cerr << "evald-provenance: the library " << a.library << " holds no reference model (" << (*refs)->size()
              << " known-independent): nothing to compare with; add one with evald-provenance add\n";
    return 2;
  }
  evald::Value report;
  if (a.cmd == "scan") {
    if (a.positional.size() != 1) return usage_error("scan takes one MODEL");
    report = scan_report(a.positional[0], **refs, opt, progress);
  } else if (a.cmd == "trajectory") {
    std::vector<std::string> ckpts = a.positional.size() == 1 ? checkpoint_dirs(a.positional[0]) : a.positional;
    if (ckpts.empty()) return usage_error("trajectory takes a run directory or two or more checkpoints");
    report = trajectory_report(ckpts, **refs, opt, progress);
  } else {
    return usage_error("unknown command " + a.cmd);
  }
  if (a.json) std::cout << evald::to_json(report) << "\n";
  else std::cout << render_text(report);
  return exit_for(report);
}
