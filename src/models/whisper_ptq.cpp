// The quantization pipeline of a Whisper model (models/whisper_quantized.h, docs/ptq.md): a recipe's plan, its
// calibration, SmoothQuant, the per-weight rounding algorithm and the static activation scales, in that order.
#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/calibration.h"
#include "quasr/quant/hadamard.h"
#include "quasr/quant/ptq.h"

namespace quasr::models {
namespace {

// Linears whose input is a LayerNorm's output: SmoothQuant folds its 1/s into that LayerNorm. Every other Linear
// (attention and cross-attention out, fc2, cross k/v, which read the encoder's final LayerNorm (folding there
// would change the encoder output that the model returns), conv1/conv2, the tied embedding) takes 1/s as a
// runtime input scale.
bool reads_block_norm(const std::string& role) {
  return role == "attn_q" || role == "attn_k" || role == "attn_v" || role == "cross_q" || role == "mlp_fc1";
}

// Linears that read one input, with the LayerNorm producing it when SmoothQuant folds into it.
struct SmoothGroup {
  std::vector<std::string> linears;  // weight names; the first is the calibration's leader of the shared input
  std::string gamma, beta;           // the LayerNorm's tensors; empty: runtime input scale
};

std::vector<SmoothGroup> smooth_groups(const WhisperConfig& c) {
  const auto specs = whisper_tensor_specs(c);
  auto find = [&](WhisperStack st, int layer, WhisperRole role, WhisperParam p) -> const std::string& {
    for (const auto& s : specs)
      if (s.stack == st && s.layer == layer && s.role == role && s.param == p) return s.name;
    QUASR_ASSERT(false && "tensor missing from the Whisper table");
    std::abort();
  };
  std::vector<SmoothGroup> out;
  for (const quant::TensorInfo& t : whisper_quantizable_tensors(c)) {
    if (!reads_block_norm(t.role)) {
      out.push_back({{t.name}, "", ""});
      continue;
    }
    if (t.role == "attn_k" || t.role == "attn_v") continue;  // in attn_q's group
    const WhisperStack st = t.stack == "encoder" ? WhisperStack::kEncoder : WhisperStack::kDecoder;
    SmoothGroup g;
    WhisperRole norm = WhisperRole::kMlpNorm;
    if (t.role == "attn_q") {
      norm = WhisperRole::kAttnNorm;
      for (WhisperRole r : {WhisperRole::kAttnQ, WhisperRole::kAttnK, WhisperRole::kAttnV})
        g.linears.push_back(find(st, t.layer, r, WhisperParam::kWeight));
    } else {
      if (t.role == "cross_q") norm = WhisperRole::kCrossNorm;
      g.linears.push_back(t.name);
    }
    g.gamma = find(st, t.layer, norm, WhisperParam::kWeight);
    g.beta = find(st, t.layer, norm, WhisperParam::kBias);
    out.push_back(std::move(g));
  }
  return out;
}

// SmoothQuant (Xiao et al., 2023) with strength alpha: for every group with a quantized Linear, per input channel
// s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha) (the max over all the group's weights: q/k/v share one s because
// they share one LayerNorm), W' = W diag(s) for every Linear of the group, and the input divided by s: folded into
// the LayerNorm (gamma / s, beta / s) or, without one, a runtime input scale 1/s. A channel whose activation or
// weight maximum is 0 keeps s = 1; s is clamped to [1e-5, 1e5] (the reference clamps at 1e-5) so that neither the
// weights nor the inputs can overflow. Returns s by Linear (the Linear's input is now the calibrated x / s).
quant::ChannelDivisors smooth_whisper(WhisperWeights& w, const std::set<std::string>& quantized,
                                      const quant::Calibration& cal, float alpha, InputScales& input_scales) {
  quant::ChannelDivisors divisors;
  for (const SmoothGroup& g : smooth_groups(w.config)) {
    if (std::none_of(g.linears.begin(), g.linears.end(), [&](const auto& n) { return quantized.count(n) > 0; }))
      continue;
    const quant::InputStats& x = cal.at(g.linears.front());
    const int64_t k = x.k;
    std::vector<float> wmax(static_cast<size_t>(k), 0.0f);
    for (const std::string& name : g.linears) {
      const io::Tensor& t = w.tensors.at(name);
      if (t.numel() / t.shape.at(0) != k)
        throw InvalidArgument("smooth: " + name + " has " + std::to_string(t.numel() / t.shape.at(0)) +
                              " inputs, the calibration " + std::to_string(k) + " (was it made for this model?)");
      for (size_t i = 0; i < t.values.size(); ++i)
        wmax[i % k] = std::max(wmax[i % k], std::fabs(t.values[i]));
    }
    std::vector<float> s(static_cast<size_t>(k), 1.0f);
    for (int64_t j = 0; j < k; ++j) {
      const double xm = x.channel_max_abs[j], wm = wmax[j];
      if (xm > 0 && wm > 0)
        s[j] = static_cast<float>(std::clamp(std::pow(xm, alpha) / std::pow(wm, 1.0 - alpha), 1e-5, 1e5));
    }
    for (const std::string& name : g.linears) {
      io::Tensor& t = w.tensors.at(name);
      for (size_t i = 0; i < t.values.size(); ++i) t.values[i] *= s[i % k];
      t.source_dtype = io::DType::kF32;  // stored (when not quantized) without rounding the scaled values again
      divisors[name] = s;
    }
    if (!g.gamma.empty()) {
      for (const std::string* n : {&g.gamma, &g.beta}) {
        io::Tensor& t = w.tensors.at(*n);
        for (int64_t j = 0; j < k; ++j) t.values[j] /= s[j];
        t.source_dtype = io::DType::kF32;
      }
    } else {
      std::vector<float>& m = input_scales[g.linears.front()];
      for (float v : s) m.push_back(1.0f / v);
    }
  }
  return divisors;
}

}  // namespace

bool whisper_input_scaled(const quant::Recipe& recipe, const quant::PlanEntry& e) {
  return e.quantized && (recipe.ptq.algo == "awq" || (recipe.ptq.smooth && !reads_block_norm(e.tensor.role)));
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
  std::set<std::string> quantized;
  for (const quant::PlanEntry& e : out.plan)
    if (e.quantized) quantized.insert(e.tensor.name);
  // divisors[name]: the Linear's input is the calibrated x divided by them (x * input scale at run time, or what a
  // smoothed LayerNorm now produces). SmoothQuant comes first: the rounding then sees the weights and inputs the
  // runtime multiplies.
  quant::ChannelDivisors divisors;
  if (p.smooth) divisors = smooth_whisper(w, quantized, *cal, *p.smooth, out.input_scales);
  for (const quant::PlanEntry& e : out.plan) {
    if (!e.quantized) continue;
    const std::string& name = e.tensor.name;
    io::Tensor& t = w.tensors.at(name);
    const int64_t n = t.shape.at(0), k = t.numel() / n;
    try {
      // rotate=hadamard: W H is rounded and the runtime rotates the input (models/whisper_model_layers.cpp). Not
      // the tied embedding: its rows are also looked up as token vectors, which must stay unrotated.
      const bool rotated = p.rotate == "hadamard" && e.tensor.kind != quant::TensorInfo::Kind::kEmbedding;
      const int64_t block = rotated ? quant::hadamard_block(k) : 0;
      if (block == 1) throw InvalidArgument("rotate=hadamard needs an even input width, this one is " + std::to_string(k));
      if (block > 0) quant::hadamard_rotate_rows(t.values.data(), n, k, k, block);
      std::optional<quant::InputStats> transformed;
      const quant::InputStats* stats = nullptr;
      if (p.algo != "rtn") {
        stats = &cal->at(name);
        if (auto d = divisors.find(name); d != divisors.end()) stats = &transformed.emplace(quant::divide_input_stats(*stats, d->second));
        if (block > 0) stats = &transformed.emplace(quant::rotate_input_stats(*stats, block));
      }
      quant::RoundedWeight r = quant::round_weight(t.values, n, k, e.weight, p, stats);
      out.quantized[name] = {std::move(r.q), e.act, block};
      if (!r.input_scale.empty()) {  // AWQ: x_j * m_j on top of what smoothing did
        std::vector<float>& d = divisors.try_emplace(name, std::vector<float>(static_cast<size_t>(k), 1.0f)).first->second;
        for (int64_t j = 0; j < k; ++j) d[j] /= r.input_scale[j];
        if (auto m = out.input_scales.find(name); m != out.input_scales.end())
          for (int64_t j = 0; j < k; ++j) m->second[j] *= r.input_scale[j];
        else
          out.input_scales[name] = std::move(r.input_scale);
      }
    } catch (const InvalidArgument& ex) {
      throw InvalidArgument("tensor " + name + " (algo=" + p.algo + ", " + e.weight.to_string() + "): " + ex.what());
    }
  }
  // One rule decides which Linears carry input scales, for the pipeline and for size accounting alike.
  for (const quant::PlanEntry& e : out.plan)
    QUASR_ASSERT(whisper_input_scaled(recipe, e) == (out.input_scales.count(e.tensor.name) == 1));
  // Static activation scales last, for the input each Linear finally sees: the calibrated x / divisors.
  if (cal && !p.calibrator.empty()) {
    quant::apply_static_scales(out.plan, *cal, quant::CalibratorSpec::parse(p.calibrator), divisors);
    for (const quant::PlanEntry& e : out.plan)
      if (e.quantized) out.quantized.at(e.tensor.name).act = e.act;
  }
  return out;
}

}  // namespace quasr::models
