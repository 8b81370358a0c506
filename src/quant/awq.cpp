// AWQ (Lin, Tang, Tang, Yang, Chen, Wang, Xiao, Dang, Gan, Han, "AWQ: Activation-aware Weight Quantization for
// LLM Compression and Acceleration", MLSys 2024), for one Linear, as specified in quant/ptq.h: a grid search of
// the per-input-channel scale exponent, then a per-block clipping search, both minimising the layer's output
// error on the calibration samples. Output errors are FP32 GEMMs (kernels::sgemm) summed in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ptq_common.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/block_codec.h"
#include "quasr/kernels/gemm.h"
#include "quasr/quant/ptq.h"

namespace quasr::quant {
namespace {

constexpr int kAlphaSteps = 20;           // alpha in {0, 1/20, ..., 1}
constexpr int kClipSteps = 10;            // shrink ratios 1 - i/20, i = 0..9: 1.0 down to 0.55 (the reference's grid)
constexpr double kClipStep = 0.05;
constexpr double kSilentChannelFloor = 1e-4;  // a_j >= 1e-4 * max a: silent channels keep a finite scale

void check_stats(const InputStats& s, int64_t k) {
  if (s.k != k)
    throw InvalidArgument("awq: calibration statistics are for inputs of width " + std::to_string(s.k) +
                          ", the weight has k = " + std::to_string(k));
  if (s.n_samples < 1 || s.rows < 1)
    throw InvalidArgument("awq: the calibration statistics hold no samples (n_samples = " +
                          std::to_string(s.n_samples) + ", rows = " + std::to_string(s.rows) +
                          "); AWQ searches on sampled input rows");
  if (static_cast<int64_t>(s.samples.size()) != s.n_samples * k)
    throw InvalidArgument("awq: samples has " + std::to_string(s.samples.size()) + " values, expected n_samples * k = " +
                          std::to_string(s.n_samples * k));
  if (static_cast<int64_t>(s.channel_sum_abs.size()) != k)
    throw InvalidArgument("awq: channel_sum_abs has " + std::to_string(s.channel_sum_abs.size()) +
                          " values, expected k = " + std::to_string(k));
  for (size_t i = 0; i < s.samples.size(); ++i)
    if (!std::isfinite(s.samples[i]))
      throw InvalidArgument("awq: calibration sample " + std::to_string(static_cast<int64_t>(i) / k) + ", channel " +
                            std::to_string(static_cast<int64_t>(i) % k) + " is not finite");
  for (int64_t j = 0; j < k; ++j)
    if (!std::isfinite(s.channel_sum_abs[j]) || s.channel_sum_abs[j] < 0)
      throw InvalidArgument("awq: channel_sum_abs[" + std::to_string(j) + "] = " +
                            std::to_string(s.channel_sum_abs[j]) + " is not a finite non-negative sum");
}

double sum_squares(std::span<const float> v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return s;
}

// What the layer's output error is measured against: the samples X [m][k] and the exact outputs Y = X W^T.
struct Problem {
  std::span<const float> w;
  int64_t n, k, m;
  std::span<const float> x;
  std::vector<float> y;  // [m][n]

  // sum (X W^T - (X * input_scale) Q^T)^2, with Q = dequantized weights (what AwqResult::error reports).
  double error(std::span<const float> q, std::span<const float> input_scale) const {
    std::vector<float> xs(x.begin(), x.end());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < k; ++j) xs[i * k + j] *= input_scale[j];
    std::vector<float> e(y);
    kernels::sgemm(false, true, m, n, k, -1.0f, xs.data(), k, q.data(), k, 1.0f, e.data(), n);
    return sum_squares(e);
  }
};

// The clipping search on ws = W diag(s) (see ptq.h): the QTensor with each block at its best shrink ratio;
// `changed` says whether any block chose a ratio below 1.
formats::QTensor clip_search(const Problem& p, const formats::QuantSpec& spec, std::span<const float> ws,
                             std::span<const float> input_scale, bool& changed) {
  const int64_t n = p.n, k = p.k, m = p.m;
  const int64_t shape[2] = {n, k};
  const formats::BlockCodec codec(spec, detail::max_abs(ws));
  const detail::WeightBlocks blocks(n, k, spec.granularity);
  const int64_t nb = blocks.count(), width = blocks.width(), col_groups = k / width;
  std::vector<double> best_err(static_cast<size_t>(nb), std::numeric_limits<double>::infinity());
  std::vector<int> best_step(static_cast<size_t>(nb), 0);
  std::vector<formats::BlockScale> scales(static_cast<size_t>(nb)), best_scales(scales.size());
  std::vector<uint8_t> codes(static_cast<size_t>(n * k)), best_codes(codes.size());
  std::vector<float> diff(static_cast<size_t>(n * k)), e(static_cast<size_t>(m * n));
  std::vector<double> part(static_cast<size_t>(n * col_groups));  // [row][column group] output error

  for (int step = 0; step < kClipSteps; ++step) {
    const float ratio = static_cast<float>(1.0 - kClipStep * step);
    parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> v;
      for (int64_t b = b0; b < b1; ++b) {
        blocks.gather(ws, b, v);
        const float limit = ratio * detail::max_abs(v);
        for (float& x : v) x = std::clamp(x, -limit, limit);
        scales[b] = codec.choose_scale(v, b);
        const detail::WeightBlocks::Rect rc = blocks.rect(b);
        size_t at = 0;
        for (int64_t r = rc.row0; r < rc.row1; ++r)
          for (int64_t c = rc.col0; c < rc.col1; ++c, ++at) {
            const uint8_t code = codec.encode(v[at], scales[b]);
            codes[r * k + c] = code;
            diff[r * k + c] = p.w[r * k + c] - codec.decode(code, scales[b]) * input_scale[c];
          }
      }
    });
    // Each block's part of the output error: X[:, cols] diff[rows, cols]^T, per row and column group.
    for (int64_t g = 0; g < col_groups; ++g) {
      kernels::sgemm(false, true, m, n, width, 1.0f, p.x.data() + g * width, k, diff.data() + g * width, k, 0.0f,
                     e.data(), n);
      parallel_for(0, n, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          double s = 0;
          for (int64_t i = 0; i < m; ++i) s += static_cast<double>(e[i * n + r]) * e[i * n + r];
          part[r * col_groups + g] = s;
        }
      });
    }
    for (int64_t b = 0; b < nb; ++b) {
      const detail::WeightBlocks::Rect rc = blocks.rect(b);
      double err = 0;
      for (int64_t r = rc.row0; r < rc.row1; ++r)
        for (int64_t g = rc.col0 / width; g < rc.col1 / width; ++g) err += part[r * col_groups + g];
      if (err < best_err[b]) {  // strict: a tie keeps the larger ratio (1.0 first)
        best_err[b] = err;
        best_step[b] = step;
        best_scales[b] = scales[b];
        for (int64_t r = rc.row0; r < rc.row1; ++r)
          std::copy(codes.begin() + r * k + rc.col0, codes.begin() + r * k + rc.col1,
                    best_codes.begin() + r * k + rc.col0);
      }
    }
  }
  changed = std::any_of(best_step.begin(), best_step.end(), [](int s) { return s != 0; });
  return codec.assemble(shape, best_codes, best_scales);
}

}  // namespace

AwqResult awq_quantize(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                       const InputStats& stats) {
  detail::check_weight("awq", w, n, k, spec);
  check_stats(stats, k);
  const int64_t shape[2] = {n, k};
  Problem p{w, n, k, stats.n_samples, stats.samples, std::vector<float>(static_cast<size_t>(stats.n_samples * n))};
  kernels::sgemm(false, true, p.m, n, k, 1.0f, p.x.data(), k, w.data(), k, 0.0f, p.y.data(), n);

  std::vector<double> a(static_cast<size_t>(k));
  double a_max = 0;
  for (int64_t j = 0; j < k; ++j) a_max = std::max(a_max, a[j] = stats.channel_sum_abs[j] / stats.rows);
  for (double& v : a) v = a_max > 0 ? std::max(v, kSilentChannelFloor * a_max) : 1.0;

  // s = a^alpha / sqrt(max * min) and the scaled weights ws = W diag(s).
  std::vector<float> s(static_cast<size_t>(k)), inv(s.size()), ws(w.size()), q(w.size());
  auto scale_for = [&](int step) {
    const double alpha = static_cast<double>(step) / kAlphaSteps;
    std::vector<double> sd(static_cast<size_t>(k));
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (int64_t j = 0; j < k; ++j) {
      sd[j] = std::pow(a[j], alpha);
      lo = std::min(lo, sd[j]);
      hi = std::max(hi, sd[j]);
    }
    const double norm = std::sqrt(lo * hi);
    for (int64_t j = 0; j < k; ++j) {
      s[j] = static_cast<float>(sd[j] / norm);
      inv[j] = 1.0f / s[j];
    }
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < k; ++j) ws[r * k + j] = w[r * k + j] * s[j];
  };

  AwqResult best;
  best.error = std::numeric_limits<double>::infinity();
  int best_step = 0;
  for (int step = 0; step <= kAlphaSteps; ++step) {
    scale_for(step);
    formats::QTensor qt = formats::quantize(ws, shape, spec);
    qt.dequantize(q);
    const double err = p.error(q, inv);
    if (step == 0) best.rtn_error = err;  // alpha = 0: s = 1 exactly, ws = w, so qt is formats::quantize(w)
    if (err < best.error) {
      best.error = err;
      best.alpha = static_cast<float>(step) / kAlphaSteps;
      best_step = step;
      best.qweight = std::move(qt);
      best.input_scale = inv;
    }
  }

  const formats::FormatKind kind = formats::traits(spec.format).kind;
  if (kind != formats::FormatKind::kCodebook && kind != formats::FormatKind::kStorage) {
    scale_for(best_step);
    bool changed = false;
    formats::QTensor clipped = clip_search(p, spec, ws, best.input_scale, changed);
    if (changed) {
      clipped.dequantize(q);
      const double err = p.error(q, best.input_scale);
      if (err < best.error) {
        best.error = err;
        best.qweight = std::move(clipped);
        best.clipped = true;
      }
    }
  }
  return best;
}

}  // namespace quasr::quant
