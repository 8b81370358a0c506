// Reference quantizers for the formats with one free scale per block: integers (symmetric restricted / full,
// affine with a zero point), scaled minifloat elements (FP8/FP6/FP4 with scale = amax / max_finite) and NF4
// (scale = amax, 16 fixed levels). The scale estimators (max-abs, percentile, MSE search) live here too, and
// the storage formats (FP16/BF16/FP32) at the end.
//
// Every block is quantized with its *stored* scale (rounded to the scale type), so dequantize(quantize(x)) is
// exactly what a runtime decoding the stored bytes computes: x_hat = s * (q - z), s * decode(q), s * level[q].
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "format_impl.h"
#include "scaled_codec.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"

namespace quasr::formats::detail {
namespace {

// Ratios the MSE estimator tries: 100 values from 1.0 down to 0.3 (1.0 first, so a tie keeps the unclipped scale).
constexpr int kMseSteps = 100;
constexpr double kMseMinRatio = 0.3;
// Minimum elements per parallel task: small tensors run on the calling thread.
constexpr int64_t kElementsPerTask = 16384;

// Linear-interpolated percentile (numpy's default) of sorted values.
double percentile_sorted(const std::vector<double>& sorted, double p) {
  const double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (sorted[i + 1] - sorted[i]) * (pos - static_cast<double>(i));
}

// Quantizes one block with the clipping range (lo, hi, amax); returns its stored scale / zero point and the sum
// of squared errors. `codes` receives one code per value.
BlockResult quantize_with_range(const ScaledCodec& c, const QuantSpec& spec, std::span<const float> v, double lo,
                                double hi, double amax, int64_t block, std::span<uint8_t> codes, double* sse) {
  BlockResult r;
  const double real = c.real_scale(lo, hi, amax);
  r.scale = real > 0 ? round_scale(real, spec.scale_type, block) : 0.0f;  // all-zero block: +0, never -0
  r.zp = c.zero_point(lo, r.scale);
  double err = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    codes[i] = c.encode(v[i], r.scale, r.zp);
    if (sse) {
      const double d = static_cast<double>(v[i]) - c.decode(codes[i], r.scale, r.zp);
      err += d * d;
    }
  }
  if (sse) *sse = err;
  return r;
}

}  // namespace

BlockResult quantize_block(const ScaledCodec& c, const QuantSpec& spec, std::span<const float> v, int64_t block,
                           std::span<uint8_t> codes, std::vector<uint8_t>& scratch) {
  double lo = 0, hi = 0, amax = 0;
  for (float x : v) {
    lo = std::min(lo, double(x));
    hi = std::max(hi, double(x));
  }
  amax = std::max(-lo, hi);
  switch (spec.estimator) {
    case ScaleEstimator::kMaxAbs: return quantize_with_range(c, spec, v, lo, hi, amax, block, codes, nullptr);
    case ScaleEstimator::kPercentile: {
      std::vector<double> sorted(v.begin(), v.end());
      if (spec.zero_point) {
        std::sort(sorted.begin(), sorted.end());
        lo = percentile_sorted(sorted, 100.0 - spec.percentile);
        hi = percentile_sorted(sorted, spec.percentile);
      }
      for (double& s : sorted) s = std::fabs(s);
      std::sort(sorted.begin(), sorted.end());
      amax = percentile_sorted(sorted, spec.percentile);
      return quantize_with_range(c, spec, v, std::min(lo, 0.0), std::max(hi, 0.0), amax, block, codes, nullptr);
    }
    case ScaleEstimator::kMse: {
      scratch.resize(v.size());
      double best = std::numeric_limits<double>::infinity();
      BlockResult best_r;
      for (int i = 0; i < kMseSteps; ++i) {
        const double ratio = 1.0 - (1.0 - kMseMinRatio) * i / (kMseSteps - 1);
        double sse = 0;
        const BlockResult r =
            quantize_with_range(c, spec, v, ratio * lo, ratio * hi, ratio * amax, block, scratch, &sse);
        if (sse < best) {
          best = sse;
          best_r = r;
          std::copy(scratch.begin(), scratch.end(), codes.begin());
        }
      }
      return best_r;
    }
  }
  return {};
}

QTensor quantize_scaled(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  validate_quantize_args(x, shape, spec);
  const ScaledCodec codec(spec);
  const FormatTraits& f = codec.format();
  const BlockLayout layout = group_elements(shape, spec.granularity);
  const int64_t nb = static_cast<int64_t>(layout.offsets.size()) - 1;
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> codes(n);
  std::vector<BlockResult> results(nb);
  const int64_t block_size = n / nb;
  // Blocks are independent and write disjoint outputs: the result does not depend on the thread count.
  parallel_for(0, nb, std::max<int64_t>(1, kElementsPerTask / block_size), [&](int64_t b0, int64_t b1) {
    std::vector<float> v;
    std::vector<uint8_t> block_codes, scratch;
    for (int64_t b = b0; b < b1; ++b) {
      v.resize(layout.size(b));
      block_codes.resize(v.size());
      layout.gather(x, b, v);
      results[b] = quantize_block(codec, spec, v, b, block_codes, scratch);
      for (size_t i = 0; i < v.size(); ++i) codes[layout.flat_index(b, static_cast<int64_t>(i))] = block_codes[i];
    }
  });
  QTensor q;
  q.spec = spec;
  q.shape.assign(shape.begin(), shape.end());
  q.payload = pack_bits(codes, f.bits);
  q.scales.resize(nb * scale_type_bits(spec.scale_type) / 8);
  std::vector<uint8_t> zps(nb);
  for (int64_t b = 0; b < nb; ++b) {
    write_scale(q.scales, b, results[b].scale, spec.scale_type);
    zps[b] = results[b].zp;
  }
  if (spec.zero_point) q.zero_points = pack_bits(zps, f.bits);
  return q;
}

void dequantize_scaled(const QTensor& q, std::span<float> out) {
  check_dequantize_args(q, out);
  const ScaledCodec codec(q.spec);
  const int64_t n = q.numel(), nb = q.num_blocks();
  const std::vector<uint8_t> codes = unpack_bits(q.payload, codec.format().bits, static_cast<size_t>(n));
  std::vector<float> scales(nb);
  for (int64_t b = 0; b < nb; ++b) scales[b] = read_scale(q.scales, b, q.spec.scale_type);
  std::vector<uint8_t> zps(nb, 0);
  if (q.spec.zero_point) zps = unpack_bits(q.zero_points, codec.format().bits, static_cast<size_t>(nb));
  const BlockMapper map(q.shape, q.spec.granularity);
  parallel_for(0, n, kElementsPerTask, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = map(i);
      out[i] = codec.decode(codes[i], scales[b], zps[b]);
    }
  });
}

// ---- storage formats ---------------------------------------------------------------------------------------------
// FP16 and BF16 saturate: a finite value beyond the largest finite one is stored as +-max (65504 for FP16,
// 0x7F7F = 3.3895e38 for BF16) instead of becoming Inf, so a stored model never holds an Inf the runtime would
// propagate. Within range both round to nearest even. FP32 stores the value bit-exactly.

QTensor quantize_storage(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  validate_quantize_args(x, shape, spec);
  const FormatTraits& f = traits(spec.format);
  QTensor q;
  q.spec = spec;
  q.shape.assign(shape.begin(), shape.end());
  const size_t width = static_cast<size_t>(f.bits / 8);
  q.payload.resize(x.size() * width);
  for (size_t i = 0; i < x.size(); ++i) {
    uint8_t* p = q.payload.data() + i * width;
    if (f.id == FormatId::kFp16) {
      constexpr float kMax = 65504.0f;
      put_u16(p, fp32_to_fp16(std::clamp(x[i], -kMax, kMax)));
    } else if (f.id == FormatId::kBf16) {
      uint16_t h = fp32_to_bf16(x[i]);
      if ((h & 0x7FFF) == 0x7F80) h = static_cast<uint16_t>((h & 0x8000) | 0x7F7F);  // rounded up to Inf
      put_u16(p, h);
    } else {
      put_f32(p, x[i]);
    }
  }
  return q;
}

void dequantize_storage(const QTensor& q, std::span<float> out) {
  check_dequantize_args(q, out);
  const FormatTraits& f = traits(q.spec.format);
  const size_t width = static_cast<size_t>(f.bits / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = q.payload.data() + i * width;
    out[i] = f.id == FormatId::kFp16   ? fp16_to_fp32(get_u16(p))
             : f.id == FormatId::kBf16 ? bf16_to_fp32(get_u16(p))
                                       : get_f32(p);
  }
}

}  // namespace quasr::formats::detail
