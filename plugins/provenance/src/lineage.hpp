// Deciding lineage: a candidate model against a library of reference fingerprints, component by
// component.
//
// Per tensor and reference: value hashes find verbatim copies (also cast or unit-permuted ones),
// against every reference tensor whatever its name. Otherwise the sketches' Gram matrices
// (independent of unit order) pick the reference tensor of the same role (or, where names do not
// establish one, the same shape class and dimensions) most like it, across layers, so pruned or
// reordered layers still pair up; then a cross-validated unit-matching test asks whether
// individual units (rows of an input projection, columns of an output projection) correspond one
// to one: units are matched on half of the sketch coordinates and the matched pairs' centred
// (Pearson) correlation is measured on the other half, so selection cannot inflate it; units at
// the same index are also compared directly (more power for copies that kept their unit order),
// and the better test is taken with its p-value doubled. Token matrices (embeddings, output head)
// are paired by token identity only: token text when both sides have a tokenizer, else id. The
// null distribution comes from random re-pairings of the same units (a permutation test: exact
// p-values, no distributional assumption); the p-value is Bonferroni-corrected for the
// counterparts it was chosen among.
// Per component: Fisher combines the tensors' p-values and Holm corrects across the references.
// The verdict is "derived" only when the corrected p-value is at most alpha, the mean matched
// correlation (the effect) reaches min_effect, and the effect is above that of every
// known-independent model in the library (the empirical null); significance alone also flags
// weights trained against a copied basis, which is not inheritance. Norm and bias vectors are
// reported as weak evidence only.
#pragma once

#include <evald/value.hpp>

#include <cmath>
#include <limits>
#include <functional>
#include <string>
#include <vector>

#include "fingerprint.hpp"
#include "references.hpp"

namespace evald::prov {

struct DecisionConfig {
  double alpha = 0.01;         // family-wise error rate per component, across the library
  // Known-independent models the library must hold before calibrated evidence (see TensorTest)
  // may decide a verdict.
  uint32_t min_null_models = 3;
  // How far above the known-independent models' mean, in their standard deviations, calibrated
  // evidence must lie (besides above all of them): with ten null models "above all" alone is an
  // empirical p of 1/11.
  double null_z = 3.0;
  double min_effect = 0.2;     // mean held-out matched correlation required for "derived"
  uint32_t permutations = 999;
  double screen = 0.1;         // Gram similarity below which a reference tensor is not unit-tested
                               // (unless among the always_test most similar), nor matched by content
  uint32_t always_test = 1;
  uint64_t seed = 1;           // permutation RNG seed (results are reproducible)
  unsigned threads = 2;
  Value to_value() const;
};

struct TensorTest {
  std::string tensor, ref_tensor, role;
  std::string units;    // rows | cols: which dimension holds the units compared
  std::string pairing;  // index | matched | tokens | ids: how units were paired
  std::string basis;    // residual | tokens: the coordinates the units were compared in
  int layer = -1, ref_layer = -1;
  double gram = std::numeric_limits<double>::quiet_NaN();  // best Gram similarity across layers
  uint32_t choices = 0;         // same-role reference tensors it was chosen among
  std::string verbatim;         // "", "exact", "bf16", "f16", "row-permuted", "col-permuted"
  bool tested = false;          // unit test run (else screened out)
  double effect = std::numeric_limits<double>::quiet_NaN();
  double null_mean = 0, null_sd = 0, z = 0, p = 1;
  uint32_t units_compared = 0;
  uint32_t permutations = 0;    // drawn: fewer than configured when the test stopped early (p large)
  // Evidence that decides only against known-independent models in the library, because
  // independent models trained on similar text show it too: units matched by content in the
  // token basis ("token-basis-matched"), or a token matrix's token-token similarities
  // ("token-similarity"). Empty kind when there is none.
  std::string calibrated_kind;
  double calibrated_effect = std::numeric_limits<double>::quiet_NaN(), calibrated_p = 1;
};

struct WeakEvidence {  // 1-D tensors
  std::string tensor, ref_tensor;
  double pearson = 0;
};

struct LayerResult {  // one layer group against one reference
  int layer = -1;
  uint32_t tensors = 0, tested = 0, verbatim = 0;
  double effect = std::numeric_limits<double>::quiet_NaN();
  double log10_p = 0;  // Fisher over the layer's tensors, Bonferroni over the layers
  bool derived = false;
};

struct ReferenceResult {  // one component against one reference
  std::string reference;        // "name@revision"
  bool independent = false;     // a known-independent model (empirical null), never a source
  std::vector<TensorTest> tests;
  std::vector<WeakEvidence> weak;
  uint32_t tested = 0, verbatim = 0, comparable = 0;
  double gram_mean = std::numeric_limits<double>::quiet_NaN();
  double chi2 = 0, log10_p = 0, p = 1, log10_p_holm = 0, p_holm = 1;
  double effect = std::numeric_limits<double>::quiet_NaN();
  // Per layer group; when one layer's test is stronger than the whole component's (one copied
  // layer among fresh ones), it decides: partial_layer names it and its effect is `decisive`.
  std::vector<LayerResult> layers;
  int partial_layer = -1;
  double decisive = std::numeric_limits<double>::quiet_NaN();  // the effect the verdict compares
  // Where the effect falls among the known-independent models' effects for this component: those
  // with tensors comparable with the candidate's (a model that could not be compared says nothing
  // about the effects of unrelated models).
  uint32_t null_models = 0, null_at_or_above = 0;
  double null_max_effect = std::numeric_limits<double>::quiet_NaN();
  // The calibrated evidence (TensorTest::calibrated_*), combined the same way, and where its
  // effect falls among the known-independent models'.
  uint32_t calibrated_tested = 0, calibrated_null_models = 0, calibrated_null_at_or_above = 0;
  double calibrated_effect = std::numeric_limits<double>::quiet_NaN(), calibrated_log10_p = 0, calibrated_log10_p_holm = 0;
  double calibrated_null_max = std::numeric_limits<double>::quiet_NaN();
  double calibrated_null_z = std::numeric_limits<double>::quiet_NaN();  // (effect - null mean) / null sd
};

struct ComponentResult {
  std::string component;
  std::vector<LayerResult> layers;  // against the source, when derived
  std::string verdict;   // derived | independent | inconclusive | absent
  std::string source;    // reference it derives from, when derived
  std::string evidence;  // what decided a derived verdict: verbatim | units | calibrated
  double p_holm = 1, log10_p_holm = 0, effect = std::numeric_limits<double>::quiet_NaN();
  std::string reason;
  uint32_t tensors = 0, analysable = 0;
  std::vector<ReferenceResult> references;
};

struct ScanResult {
  std::vector<ComponentResult> components;
  uint64_t width = 0;  // residual width found from the structure
  // Tensors neither names, structure nor a verbatim match placed in a component, largest first,
  // with their parameter counts; and every tensor's parameters.
  std::vector<std::pair<std::string, uint64_t>> unassigned;
  uint64_t unassigned_params = 0, total_params = 0;
  uint64_t bytes = 0;
  double seconds_fingerprint = 0, seconds_compare = 0;
  bool cancelled = false;  // stopped early: the result must not be used
  std::string library_error;  // a reference could not be read: the result must not be used
};

// Compares a model against the references. Thread-safe for distinct outputs; uses cfg.threads.
ScanResult scan_model(const Model& m, const ReferenceSet& refs, const ComponentRules& rules, const DecisionConfig& cfg,
                      const ProgressFn& progress = {}, const std::function<bool()>& cancelled = {});
// The same over fingerprints in memory.
ScanResult scan_model(const Model& m, const std::vector<const Fingerprint*>& refs, const ComponentRules& rules,
                      const DecisionConfig& cfg, const ProgressFn& progress = {},
                      const std::function<bool()>& cancelled = {});

// Fisher's method: log10 of the combined p-value of `ps`.
double fisher_log10(const std::vector<double>& ps, double* chi2 = nullptr);
// Holm's step-down adjustment of log10 p-values (same order as given).
std::vector<double> holm_log10(const std::vector<double>& log10_ps);

Value to_value(const ComponentResult& c, bool detail);

}  // namespace evald::prov
