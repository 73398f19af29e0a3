// Whole analyses as the plugin and the evald-provenance tool run them, and their reports: one
// model against the library (scan), or a team's checkpoint series (trajectory). Reports are
// evald::Values (JSON or msgpack) that carry the verdicts, the evidence per layer and tensor, the
// thresholds used and the gate result; a malformed file yields an "inconclusive" report naming
// the file, offset and rule, never a pass.
#pragma once

#include <evald/value.hpp>

#include <functional>
#include <string>
#include <vector>

#include "lineage.hpp"

namespace evald::prov {

struct ScanOptions {
  DecisionConfig decision;
  std::vector<ComponentRule> rules;
  std::vector<std::string> gate_components{"llm", "embeddings", "vision"};
  // Above this share of the parameters in tensors placed in no component, the gate is
  // inconclusive: what was not judged cannot pass.
  double max_unassigned_share = 0.05;
  bool detail = true;  // per-tensor evidence in the report
  std::function<bool()> cancelled;  // polled between tensors; a cancelled report is inconclusive
};

// Parses plugin/tool options from a config map (keys as in the plugin's schema). Errors name the
// key.
Result<ScanOptions> scan_options_from(const Value& config);

Value scan_report(const std::string& model_path, const ReferenceSet& library, const ScanOptions& opt,
                  const ProgressFn& progress = {});

// checkpoints: in training order, the first being the claimed initialisation.
Value trajectory_report(const std::vector<std::string>& checkpoints, const ReferenceSet& library, const ScanOptions& opt,
                        const ProgressFn& progress = {});

// The same over fingerprints in memory.
Value scan_report(const std::string& model_path, const std::vector<Fingerprint>& library, const ScanOptions& opt,
                  const ProgressFn& progress = {});
Value trajectory_report(const std::vector<std::string>& checkpoints, const std::vector<Fingerprint>& library, const ScanOptions& opt,
                        const ProgressFn& progress = {});

// Checkpoint folders of a run directory in training order: subfolders sorted by the number in
// their name, those without a number (e.g. "final") last, in name order.
std::vector<std::string> checkpoint_dirs(const std::string& run_dir);

// Human-readable summary of a scan or trajectory report.
std::string render_text(const Value& report);

}  // namespace evald::prov
