#pragma once
// Quantization recipes: a scheme as four axes (weight format + granularity, activation treatment, which tensors,
// per-layer overrides) written in one compact text form, on the command line or in a file. Grammar, presets and
// examples: docs/quantization.md.
//
//   w8a8;kv=fp32
//   w=int4:g128,a=int8-dyn-token ; encoder.layers[0-2]: w=int4:g64 ; role=attn_*: w=int8:pc ; name=*fc2*: skip
//
// A recipe is resolved against a model's tensor table (TensorInfo, built by the model family from its spec
// table) into a plan: one entry per quantizable tensor with its QuantSpec and ActivationQuant, or FP32.
// Later rules override earlier ones. Errors are InvalidArgument naming the offending token and its column.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/kernels/qlinear.h"

namespace quasr::quant {

// Activation treatment text: "none" | FMT-dyn-token | FMT-dyn-tensor | FMT-static:SCALE | FMT-static (scale 0:
// filled from calibration, see PtqSettings::calibrator), FMT in int8, int4, fp8_e4m3 (alias fp8). `column` (1-based) is where the text starts in the recipe, for error messages.
kernels::ActivationQuant parse_activation(std::string_view text, int column = 0);
std::string activation_text(const kernels::ActivationQuant& a);
// The activation formats the simulation and the kernels quantize to.
std::span<const formats::FormatId> activation_formats();

// Precision of the decoder's self- and cross-attention KV caches.
enum class KvPrecision : uint8_t { kFp32, kFp16, kInt8, kFp8 };
const char* kv_precision_name(KvPrecision p);
KvPrecision parse_kv_precision(std::string_view text, int column = 0);

// Which tensors a rule applies to.
struct Selector {
  enum class Kind : uint8_t { kAll, kStack, kRole, kName };
  Kind kind = Kind::kAll;
  std::string stack;           // kStack: "encoder" / "decoder"
  int first = -1, last = -1;   // kStack: layer range [first, last]; -1 = every tensor of the stack
  std::string pattern;         // kRole / kName: glob with * and ?
};

struct Rule {
  Selector selector;
  bool skip = false;                              // keep FP32
  std::optional<formats::QuantSpec> weight;       // w=
  std::optional<kernels::ActivationQuant> act;    // a=
  std::string text;                               // the clause as written (for --dry-run)
};

// Post-training algorithms (issue 6, docs/ptq.md). Statistics come from a calibration file written by
// `quasr calibrate` over calibration audio (never the evaluation set).
struct PtqSettings {
  std::string calib;                // calib=FILE: calibration statistics (quant/calibration.h)
  std::string calibrator;           // calibrator=max|percentile:P|mse|kl: static activation scales; "" = none
  std::optional<float> smooth;      // smooth=ALPHA in [0, 1]: SmoothQuant migration strength
  std::string algo = "rtn";         // algo=rtn|gptq|awq: how weights are rounded
  float gptq_damp = 0.01f;          // gptq-damp=F: dampening, a fraction of the Hessian's mean diagonal
  int gptq_block = 128;             // gptq-block=N: columns updated together
  bool act_order = false;           // act-order=on|off: GPTQ quantizes columns in order of decreasing Hessian
  std::string rotate;               // rotate=hadamard: block-Hadamard rotation of Linear inputs; "" = none
  std::optional<float> auto_bits;   // auto-bits=B: per-layer formats chosen to average B bits/weight
  std::string sensitivity;          // sens=FILE: layer sensitivities (`quasr sensitivity`) that auto-bits uses
  bool any() const { return !calib.empty() || smooth || algo != "rtn" || !rotate.empty() || auto_bits; }
};

struct Recipe {
  std::string text;  // as given (stored in containers)
  // Global scheme (clause without selector): weight spec (nullopt = weights stay FP32) and activations.
  std::optional<formats::QuantSpec> weight;
  kernels::ActivationQuant act;
  bool conv = false;   // conv stem (conv1, conv2) quantized
  bool embed = false;  // token embedding, which in Whisper is also the (tied) output projection
  KvPrecision kv = KvPrecision::kFp32;
  PtqSettings ptq;
  std::vector<Rule> rules;

  static Recipe parse(std::string_view text);
  // `arg` is "@FILE", a path to an existing file, or recipe text. File contents: the same syntax; newlines act
  // as ';' and '#' starts a comment.
  static Recipe from_argument(const std::string& arg);
};

// Named presets (after the studies), each expanding to recipe text.
struct Preset {
  const char* name;
  const char* text;
  const char* description;
};
std::span<const Preset> presets();

// One quantizable tensor of a model, as the model family describes it.
struct TensorInfo {
  enum class Kind : uint8_t { kLinear, kConv, kEmbedding };
  std::string name;   // canonical name, e.g. "model.encoder.layers.0.self_attn.q_proj.weight"
  std::string stack;  // "encoder" / "decoder"
  int layer = -1;     // block index, -1 outside the blocks
  std::string role;   // "attn_q", "mlp_fc2", "conv1", "token_embedding", ...
  Kind kind = Kind::kLinear;
  std::vector<int64_t> shape;  // [out][in...]; the reduction axis is the product of the trailing dims
};

struct PlanEntry {
  TensorInfo tensor;
  bool quantized = false;
  formats::QuantSpec weight;     // when quantized
  kernels::ActivationQuant act;  // when quantized
  std::string why;               // "default", "conv=off", or the rule's text that decided it
  formats::StorageBytes storage; // exact bytes (expected_storage), FP32 bytes when not quantized
};

// Resolves `recipe` over `tensors`; validates every quantized entry against its shape (group size divides the
// reduction dim, naming tensor, K and group; the format's granularity rules). Throws InvalidArgument.
std::vector<PlanEntry> resolve_plan(const Recipe& recipe, std::span<const TensorInfo> tensors);
// A table of the plan with exact sizes and totals (`quasr quantize --dry-run`).
std::string format_plan(std::span<const PlanEntry> plan);

// Shell-style glob match with * and ?.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace quasr::quant
