#pragma once
// Accurate post-training weight rounding for one Linear weight W [n][k] (docs/ptq.md): GPTQ and AWQ, for every
// weight format with scales the format core has (INT2-8 per-channel / per-group, with or without zero point,
// FP8/FP4 with scales, MXFP4/MXFP8, NVFP4, NF4). Round-to-nearest is formats::quantize itself.
#include <cstdint>
#include <span>
#include <vector>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/quant/calibration.h"

namespace quasr::quant {

struct GptqOptions {
  float damp = 0.01f;      // added to the Hessian's diagonal, as a fraction of its mean diagonal
  int block = 128;         // columns whose updates are applied together (lazy batch updates)
  bool act_order = false;  // quantize columns in order of decreasing Hessian diagonal
};

// GPTQ (Frantar et al., 2023): quantizes W column by column and spreads each column's rounding error over the
// columns not yet quantized through the inverse Hessian H = xtx ([k][k], InputStats::xtx). A group's scales are
// fixed from the (already updated) weights when the algorithm reaches the group's first column. The result is an
// ordinary QTensor of `spec`: it runs and is sized exactly like a round-to-nearest one.
formats::QTensor gptq_quantize(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                               std::span<const double> xtx, const GptqOptions& options = {});

struct AwqResult {
  formats::QTensor qweight;        // quantizes W diag(1 / input_scale)
  std::vector<float> input_scale;  // [k]: the run time multiplies x by it (y = Q(W diag(1/s)) (s * x))
  float alpha = 0.0f;              // the chosen exponent
};

// AWQ (Lin et al., 2024): searches a per-input-channel scale from activation magnitudes (mean |x_j| ^ alpha over a
// grid of alpha) that minimises the output error on the calibration samples, then a per-group clipping ratio.
AwqResult awq_quantize(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                       const InputStats& stats);

}  // namespace quasr::quant
