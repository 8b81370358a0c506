// The quantization pipeline of a Whisper model (models/whisper_quantized.h, docs/ptq.md): a recipe's plan, its
// calibration, the per-weight rounding algorithm and the static activation scales, in that order.
#include <optional>

#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/calibration.h"
#include "quasr/quant/ptq.h"

namespace quasr::models {

bool whisper_input_scaled(const quant::Recipe& recipe, const quant::PlanEntry& e) {
  return e.quantized && recipe.ptq.algo == "awq";
}

WhisperQuantization quantize_whisper(WhisperWeights& w, const quant::Recipe& recipe) {
  WhisperQuantization out;
  out.plan = quant::resolve_plan(recipe, whisper_quantizable_tensors(w.config));
  const quant::PtqSettings& p = recipe.ptq;
  // The calibration must describe this model's own activations: statistics of another checkpoint would give
  // plausible-looking but wrong scales and Hessians, so the source weights' hash is checked.
  std::optional<quant::Calibration> cal;
  if (!p.calib.empty()) {
    cal = quant::Calibration::load(p.calib);
    cal->check_model(sha256_file_hex(whisper_source_file(w.directory)), p.calib);
  }
  for (const quant::PlanEntry& e : out.plan) {
    if (!e.quantized) continue;
    const std::string& name = e.tensor.name;
    const io::Tensor& t = w.tensors.at(name);
    const int64_t n = t.shape.at(0), k = t.numel() / n;
    try {
      const quant::InputStats* stats = p.algo == "rtn" ? nullptr : &cal->at(name);
      quant::RoundedWeight r = quant::round_weight(t.values, n, k, e.weight, p, stats);
      out.quantized[name] = {std::move(r.q), e.act};
      if (!r.input_scale.empty()) out.input_scales[name] = std::move(r.input_scale);
    } catch (const InvalidArgument& ex) {
      throw InvalidArgument("tensor " + name + " (algo=" + p.algo + ", " + e.weight.to_string() + "): " + ex.what());
    }
  }
  // One rule decides which Linears carry input scales, for the pipeline and for size accounting alike.
  for (const quant::PlanEntry& e : out.plan)
    QUASR_ASSERT(whisper_input_scaled(recipe, e) == (out.input_scales.count(e.tensor.name) == 1));
  // Static activation scales last: they are computed for the input each Linear finally sees, x * input_scale,
  // i.e. the calibrated x divided by 1 / input_scale.
  if (cal && !p.calibrator.empty()) {
    quant::ChannelDivisors divisors;
    for (const auto& [name, m] : out.input_scales) {
      std::vector<float>& d = divisors[name];
      for (float v : m) d.push_back(1.0f / v);
    }
    quant::apply_static_scales(out.plan, *cal, quant::CalibratorSpec::parse(p.calibrator), divisors);
    for (const quant::PlanEntry& e : out.plan)
      if (e.quantized) out.quantized.at(e.tensor.name).act = e.act;
  }
  return out;
}

}  // namespace quasr::models
