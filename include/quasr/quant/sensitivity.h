#pragma once
// Layer sensitivity and automatic mixed precision (issue 6, docs/ptq.md "Layer sensitivity and automatic mixed
// precision"). A sensitivity file (`quasr sensitivity`, measured by models/whisper_sensitivity.h) holds, for each
// quantizable tensor and each candidate weight format, the exact stored bytes and a cost: the mean per-token KL
// divergence of the teacher-forced decoder output when only that tensor is quantized. The allocator picks one
// format per tensor minimising the summed cost under a byte budget, exactly (multiple-choice knapsack solved by
// merging Pareto frontiers), and a recipe's `auto-bits=B,sens=FILE` expands into one `name=<tensor>: w=<fmt>`
// rule per tensor, so the result runs, sweeps and reports like any hand-written recipe.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quasr/formats/quant_spec.h"
#include "quasr/quant/recipe.h"

namespace quasr::quant {

// Revision of the sensitivity file layout ("format_revision"); readers reject others.
inline constexpr int kSensitivityRevision = 1;

struct SensitivityOption {
  formats::QuantSpec format;
  int64_t bytes = 0;           // formats::expected_storage(format, shape).total()
  double bits_per_weight = 0;  // 8 * bytes / elements
  double kl = 0;               // mean over scored tokens of KL(p_fp32 || p_quantized), nats
};

struct SensitivityTensor {
  TensorInfo tensor;  // name, stack, layer, role, kind, 2-D shape [out][K]
  int64_t elements = 0;
  std::vector<SensitivityOption> options;  // in the order measured
};

struct Sensitivity {
  std::string model_sha256;  // the source weights file's hash (models::whisper_source_file)
  std::string model;         // the model as given (informational)
  std::string data;          // what was run (split, utterances, seed)
  int64_t utterances = 0;
  int64_t tokens = 0;        // teacher-forced positions scored, over all utterances
  std::string proxy;         // how the cost was measured, in words
  std::vector<SensitivityTensor> tensors;

  // Atomic write of the JSON file; load validates the format tag and revision, every field's presence and type,
  // finite non-negative KL, bytes equal to expected_storage of the format over the shape, no duplicate tensors or
  // formats. Errors are InvalidArgument naming the file and the problem (IoError when it cannot be read).
  void save(const std::string& path) const;
  static Sensitivity load(const std::string& path);
  // Throws InvalidArgument unless the file was measured on the model whose source weights hash to
  // `model_sha256` (`source` names the file in the message).
  void check_model(const std::string& model_sha256, const std::string& source = "sensitivity file") const;
};

// ---- allocator --------------------------------------------------------------------------------------------------

struct AllocationOption {
  int64_t bytes = 0;
  double cost = 0;
};
struct Allocation {
  std::vector<int> choice;  // per item, the index of its chosen option
  int64_t bytes = 0;
  double cost = 0;
};
// One option per item minimising the summed cost subject to summed bytes <= budget_bytes. Exact: the Pareto
// frontier (bytes, cost) of the first i items is merged with item i+1's options, dominated and over-budget points
// dropped; ties in cost keep the fewer bytes, then the earlier option. Throws InvalidArgument when an item has no
// option, or the budget is below the cheapest choice.
Allocation allocate_min_cost(std::span<const std::vector<AllocationOption>> items, int64_t budget_bytes);

// ---- recipe integration -----------------------------------------------------------------------------------------

struct AutoMix {
  std::vector<std::string> names;            // sens tensors in file order
  std::vector<formats::QuantSpec> formats;   // chosen per tensor
  int64_t bytes = 0, elements = 0, budget_bytes = 0;
  double bits_per_weight = 0;                // achieved, 8 * bytes / elements
  double min_bits = 0, max_bits = 0;         // achievable range (cheapest / dearest choice everywhere)
  double kl = 0;                             // summed cost of the choice
};
// Chooses formats for the tensors of `sens` at an average of `bits` bits/weight (exact stored bytes <= bits *
// elements / 8). Throws InvalidArgument (saying the achievable range) when `bits` lies outside [min_bits,
// max_bits].
AutoMix auto_mix(const Sensitivity& sens, double bits);

// The recipe with `auto-bits=B,sens=FILE` replaced by one `name=<tensor>: w=<fmt>` rule per sens tensor, appended
// after the recipe's own clauses (so they decide those tensors; tensors outside the file follow the rest of the
// recipe), plus conv=on / embed=on when the file covers those tensors. The returned recipe's text is the expanded
// text. A recipe without auto-bits= is returned unchanged. Checks: auto-bits needs sens and sens needs auto-bits;
// every sens tensor is a tensor of `tensors` with the same shape ("unknown tensor" otherwise); the model's
// `model_sha256` when non-empty (callers that load the model pass its source hash). Throws InvalidArgument.
Recipe expand_auto_bits(const Recipe& recipe, std::span<const TensorInfo> tensors,
                        const std::string& model_sha256 = "");
// The expanded recipe as file text (one clause per line, a '#' header saying what was chosen): `quasr auto-mix`.
std::string auto_mix_recipe_text(const Recipe& recipe, std::span<const TensorInfo> tensors,
                                 const std::string& model_sha256 = "");

}  // namespace quasr::quant
