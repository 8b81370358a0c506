#pragma once
// Accurate post-training weight rounding for one Linear weight W [n][k] (row-major, n outputs, k inputs; the
// product is y = x W^T), docs/ptq.md: GPTQ and AWQ, for every weight format with scales the format core has
// (INT2-8 per-tensor / per-channel / per-group, with or without zero point, full range, either rounding;
// FP8/FP6/FP4 elements with scales; MXFP4/MXFP6/MXFP8; NVFP4; NF4) and any of its scale estimators.
// Round-to-nearest (RTN) is formats::quantize itself. Both functions return an ordinary QTensor of `spec` and
// shape {n, k}: it is sized, stored and run exactly like the RTN one. Both are deterministic (same input, same
// bytes, for every thread count) and throw quasr::InvalidArgument naming the problem for bad input.
#include <cstdint>
#include <span>
#include <vector>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/quant/calibration.h"

namespace quasr::quant {

struct GptqOptions {
  float damp = 0.01f;      // added to the Hessian's diagonal, as a fraction of its mean diagonal (finite, >= 0)
  int block = 128;         // columns whose updates are applied together (lazy batch updates; >= 1)
  bool act_order = false;  // quantize columns in order of decreasing Hessian diagonal
};

// GPTQ (Frantar et al., 2023). H = xtx ([k][k], InputStats::xtx: sum over calibration rows of x x^T; its scale
// does not matter, damp is relative). Columns are quantized one at a time; each column's rounding error, divided
// by the pivot, is spread over the columns not yet quantized through the upper Cholesky factor U of the
// dampened inverse Hessian (H + damp * mean(diag H) * I)^-1 = U^T U, `block` columns at a time with the rest of
// the matrix updated lazily (one GEMM per block).
//  * Dead inputs (H_jj = 0: the input never varies from 0) get H_jj = 1 and W[:, j] = 0, as the paper's code.
//  * Scales: a block of scales (formats::block_index) is fixed from the current, already error-updated weights
//    when the sweep reaches its first column, and every later column of the block is rounded with it
//    (formats::BlockCodec, the same rounding as formats::quantize). Per-tensor and per-channel (axis 0) scales
//    and NVFP4's tensor scale are therefore fixed from W itself; per-group scales from the group's columns as the
//    sweep arrives (unlike the paper's code, which reads the group from a copy missing the current block's
//    updates, the values used here carry every update so far: lazy blocks are cut at a group start where a
//    group would straddle two of them).
//  * act_order: columns are swept in order of decreasing H_jj (ties by index); group membership stays by the
//    original column index, so the result is an ordinary grouped QTensor, and every scale is fixed from W before
//    the sweep (the reference code's "static groups": a group's columns are scattered over the sweep, so there
//    is no single moment at which all of them are current).
//  * With H = I (or any diagonal H) nothing is propagated and the result is exactly formats::quantize's.
//  * Storage formats (fp16/bf16/fp32) have no scale to fix and an error too small to compensate: they return
//    formats::quantize. Codebook formats (kmeans*) are refused.
// Errors (InvalidArgument): w not n*k or not finite, xtx not k*k, not finite, not symmetric or with a negative
// diagonal, a spec that does not fit {n, k} (e.g. group not dividing k), damp or block out of range, and a
// Hessian that is not positive definite even after dampening (names the column and the damp to raise).
formats::QTensor gptq_quantize(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                               std::span<const double> xtx, const GptqOptions& options = {});

struct AwqResult {
  formats::QTensor qweight;        // Q(W diag(1 / input_scale)), shape {n, k}, of `spec`
  std::vector<float> input_scale;  // [k], positive and finite: the runtime multiplies every input row
                                   // elementwise by it before the product: y = (x * input_scale) Q^T
  float alpha = 0.0f;              // the chosen exponent
  double error = 0;                // sum over calibration samples and outputs of (x W^T - (x * input_scale) Q^T)^2
  double rtn_error = 0;            // the same for formats::quantize(W, spec) (alpha = 0, no clipping)
  bool clipped = false;            // the clipping search changed at least one block
};

// AWQ (Lin et al., 2024) on the calibration samples X = stats.samples ([n_samples][k]):
//  1. Scale search: a_j = mean |x_j| (stats.channel_sum_abs / stats.rows), floored at 1e-4 * max_j a_j so that
//     silent channels get a finite scale; for alpha in {0, 0.05, ..., 1}: s = a^alpha / sqrt(max(a^alpha) *
//     min(a^alpha)) (the reference's normalisation), Q = formats::quantize(W diag(s)), error as in AwqResult with
//     input_scale = 1/s. The smallest error wins (ties keep the smaller alpha; alpha = 0 is s = 1, i.e. RTN).
//  2. Clipping search (formats with scales): for every block of scales, shrink ratios 1, 0.95, ..., 0.55 of the
//     block's max |value| (values clamped to +-ratio * max, the block's scale chosen from the clamped values by
//     formats::BlockCodec, the clamped values rounded); each block keeps the ratio minimising its own part of the
//     output error, ||X[:, cols(b)] (W - Q diag(input_scale))[rows(b), cols(b)]^T||^2 (cross terms between
//     blocks ignored, as the reference does). A per-tensor scale is one block (one ratio for the tensor),
//     per-channel one per output row. The clipped result is kept only if its full error is smaller, so
//     error <= rtn_error always holds. Codebook and storage formats skip this step.
// Errors (InvalidArgument): w not n*k or not finite, a spec that does not fit {n, k}, stats for another width,
// no samples, sizes that disagree, non-finite statistics.
AwqResult awq_quantize(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                       const InputStats& stats);

// One weight rounded the way a recipe's algo= says (the quantization pipeline's per-weight step):
//  rtn   formats::quantize (stats may be null; input_scale stays empty)
//  gptq  gptq_quantize with stats->xtx and the recipe's gptq-damp, gptq-block, act-order
//  awq   awq_quantize on stats; input_scale is AwqResult::input_scale ([k]: the runtime multiplies every input row
//        by it before the product)
// `stats` describes the input this weight will actually see (for a smoothed Linear: the divided input, see
// divide_input_stats). Errors are InvalidArgument naming the problem (the caller adds the tensor's name).
struct RoundedWeight {
  formats::QTensor q;
  std::vector<float> input_scale;  // empty: no input transform
};
RoundedWeight round_weight(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                           const PtqSettings& settings, const InputStats* stats);

// The statistics of x_j / divisor[j] from those of x (exact for max, sum |x|, X^T X and the samples; the
// histograms are left as they are: static scales of a divided input come from apply_static_scales' divisors).
InputStats divide_input_stats(const InputStats& stats, std::span<const float> divisor);

// The statistics GPTQ needs of the rotated input x H (rotate=hadamard, quant/hadamard.h): X^T X becomes H X^T X H
// and the samples are rotated row by row, both exactly. Per-channel maxima, sums and histograms of x H cannot be
// derived from those of x, so they are left empty: what needs them (AWQ, SmoothQuant, static activation scales) is
// refused together with rotate= by the recipe check.
InputStats rotate_input_stats(const InputStats& stats, int64_t block);

}  // namespace quasr::quant
