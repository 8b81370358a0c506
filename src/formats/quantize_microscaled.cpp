// Reference quantizers for the block formats whose definitions fix block and scale: OCP Microscaling (MX v1.0)
// and NVIDIA's NVFP4.
//
// MX (OCP Microscaling Formats Specification v1.0, section 6.3): each block of 32 consecutive values along the
// last axis shares an E8M0 scale X = 2^(floor(log2(amax)) - emax_elem) (emax_elem = exponent of the element
// format's largest normal binade: 8 E4M3, 15 E5M2, 4 E3M2, 2 E2M3, 2 E2M1); elements are P_i = element(V_i / X)
// rounded to nearest even and saturated to +-max_finite. The decoded value is X * P_i. The exponent is clamped
// to E8M0's range [-127, 127]. An all-zero block (amax = 0, where log2 is undefined) gets X = 1 (code 127) and
// zero elements.
//
// NVFP4 (NVIDIA Blackwell; two-level scaling as in TensorRT Model Optimizer and cuBLAS, not ggml's single-level
// variant): blocks of 16 E2M1 values along the last axis, one E4M3 scale per block and one FP32 tensor scale:
//     t      = amax_tensor / (448 * 6)                     (FP32, the stored decode multiplier; 1 if amax = 0)
//     sb     = E4M3(amax_block / (6 * t))                  (RNE, saturating at 448: amax_block <= amax_tensor)
//     s_eff  = decode(sb) * t                              (FP32 product)
//     q_i    = E2M1(x_i / s_eff)                           (RNE, saturating at 6; all zero if s_eff = 0)
//     x_hat  = decode(q_i) * s_eff
// so the largest block's scale lands at 448 (the top of E4M3) and each block's largest element near 6.
#include <algorithm>
#include <cmath>
#include <vector>

#include "format_impl.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"

namespace quasr::formats::detail {
namespace {

constexpr int64_t kBlocksPerTask = 512;
constexpr float kNvfp4TensorDivisor = 448.0f * 6.0f;  // E4M3 max * E2M1 max

QTensor start_tensor(std::span<const int64_t> shape, const QuantSpec& spec, int64_t nb) {
  QTensor q;
  q.spec = spec;
  q.shape.assign(shape.begin(), shape.end());
  q.scales.resize(static_cast<size_t>(nb));  // one byte per block (E8M0 / E4M3)
  return q;
}

}  // namespace

// ---- block primitives (declared in format_impl.h; BlockCodec uses them too) ------------------------------------

// E8M0 code of an MX block: floor(log2(amax)) - emax, clamped; 127 (X = 1) for an all-zero block.
uint8_t mx_scale_code(float amax, const MinifloatSpec& e) {
  if (amax == 0) return 127;
  int exp2 = 0;
  std::frexp(amax, &exp2);  // amax = f * 2^exp2, f in [0.5, 1): floor(log2 amax) = exp2 - 1, exactly
  return e8m0_from_exponent(exp2 - 1 - e.emax());
}

// V / X with X a power of two: exact unless it underflows FP32 (then it rounds, as the spec allows).
uint8_t mx_encode(const MinifloatSpec& e, float v, uint8_t scale_code) {
  return minifloat_encode(e, std::ldexp(v, -(static_cast<int>(scale_code) - 127)));
}

float nvfp4_tensor_divisor_scale(float tensor_amax) { return tensor_amax / kNvfp4TensorDivisor; }

uint8_t nvfp4_block_scale_code(float block_amax, float t) {
  return t > 0 ? minifloat_encode(kFp8E4M3, block_amax / (6.0f * t)) : 0;
}

uint8_t nvfp4_encode(float v, float s_eff) { return s_eff > 0 ? minifloat_encode(kFp4E2M1, v / s_eff) : 0; }

QTensor quantize_mx(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  validate_quantize_args(x, shape, spec);
  const FormatTraits& f = traits(spec.format);
  const MinifloatSpec& e = *f.element;
  const int64_t n = static_cast<int64_t>(x.size()), bs = spec.granularity.group, nb = n / bs;
  QTensor q = start_tensor(shape, spec, nb);
  std::vector<uint8_t> codes(n);
  parallel_for(0, nb, kBlocksPerTask, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* v = x.data() + b * bs;
      float amax = 0;
      for (int64_t i = 0; i < bs; ++i) amax = std::max(amax, std::fabs(v[i]));
      const uint8_t sc = mx_scale_code(amax, e);
      q.scales[b] = sc;
      for (int64_t i = 0; i < bs; ++i) codes[b * bs + i] = mx_encode(e, v[i], sc);
    }
  });
  q.payload = pack_bits(codes, f.bits);
  return q;
}

void dequantize_mx(const QTensor& q, std::span<float> out) {
  check_dequantize_args(q, out);
  const FormatTraits& f = traits(q.spec.format);
  const int64_t n = q.numel(), bs = q.spec.granularity.group;
  const std::vector<uint8_t> codes = unpack_bits(q.payload, f.bits, static_cast<size_t>(n));
  parallel_for(0, n / bs, kBlocksPerTask, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float scale = e8m0_decode(q.scales[b]);
      for (int64_t i = b * bs; i < (b + 1) * bs; ++i) out[i] = minifloat_decode(*f.element, codes[i]) * scale;
    }
  });
}

QTensor quantize_nvfp4(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  validate_quantize_args(x, shape, spec);
  const int64_t n = static_cast<int64_t>(x.size()), bs = spec.granularity.group, nb = n / bs;
  QTensor q = start_tensor(shape, spec, nb);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float t = nvfp4_tensor_divisor_scale(amax);
  q.tensor_scale = t > 0 ? t : 1.0f;  // all-zero (or FP32-underflowing) tensor: every block scale below is 0
  std::vector<uint8_t> codes(n);
  parallel_for(0, nb, kBlocksPerTask, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* v = x.data() + b * bs;
      float bmax = 0;
      for (int64_t i = 0; i < bs; ++i) bmax = std::max(bmax, std::fabs(v[i]));
      const uint8_t sb = nvfp4_block_scale_code(bmax, t);
      q.scales[b] = sb;
      const float s_eff = minifloat_decode(kFp8E4M3, sb) * q.tensor_scale;
      for (int64_t i = 0; i < bs; ++i) codes[b * bs + i] = nvfp4_encode(v[i], s_eff);
    }
  });
  q.payload = pack_bits(codes, 4);
  return q;
}

void dequantize_nvfp4(const QTensor& q, std::span<float> out) {
  check_dequantize_args(q, out);
  const int64_t n = q.numel(), bs = q.spec.granularity.group;
  const std::vector<uint8_t> codes = unpack_bits(q.payload, 4, static_cast<size_t>(n));
  parallel_for(0, n / bs, kBlocksPerTask, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float s_eff = minifloat_decode(kFp8E4M3, q.scales[b]) * q.tensor_scale;
      for (int64_t i = b * bs; i < (b + 1) * bs; ++i) out[i] = minifloat_decode(kFp4E2M1, codes[i]) * s_eff;
    }
  });
}

}  // namespace quasr::formats::detail
