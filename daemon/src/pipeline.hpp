// Pipeline definitions: YAML files of stages (id, plugin, config, per, after). Loading one
// validates all of it against the loaded plugins; a real start and `evald --validate` run
// this same code. Errors name the file, line and field.
#pragma once

#include "plugin_registry.hpp"

#include <evald/value.hpp>

#include <memory>
#include <string>
#include <vector>

namespace evald::daemon {

enum class Per { Entrant, Round };
// Where a stage's plugin runs: a thread of the daemon, or an evald-worker process of its
// own, so a crashing plugin fails its job instead of the daemon.
enum class Isolation { Thread, Process };

struct StageSpec {
  std::string id;
  std::string plugin;
  Per per = Per::Entrant;
  std::vector<std::string> after;
  Value config;  // checked against the plugin's schema, defaults filled in
  int timeout_s = 600;
  int retries = 2;   // extra attempts after a failure or timeout
  int workers = 1;   // worker threads (each with its own plugin instance)
  int prefetch = 8;  // jobs sent ahead to each worker; 1 for long jobs that should not queue
  Isolation isolation = Isolation::Thread;
  int gpus = 0;      // GPUs each job leases from the daemon's pool (job.resources.gpus)
  int line = 0;
  std::shared_ptr<const PluginLibrary> library;
};

struct PipelineSpec {
  std::string name;
  std::string description;
  std::string source;  // file path, or a label for inline text
  std::string yaml;    // the exact text, kept with every run for audit and resume
  std::string sha256;  // of yaml
  std::vector<StageSpec> stages;  // in a topological order (every stage after its `after`)

  const StageSpec* stage(std::string_view id) const;
  // Stages that list id in their `after`.
  std::vector<const StageSpec*> downstream(std::string_view id) const;
};

// Parses and validates pipeline text. source names it in errors. All problems found are
// reported, one per line.
Result<PipelineSpec> parse_pipeline(std::string_view yaml, const std::string& source, const PluginRegistry& plugins);
Result<PipelineSpec> load_pipeline_file(const std::string& path, const PluginRegistry& plugins);

// YAML text to a Value tree (plain scalars typed as bool/int/number/null/string), for
// configs; the error carries the line.
Result<Value> yaml_to_value(std::string_view yaml, const std::string& source);

}  // namespace evald::daemon
