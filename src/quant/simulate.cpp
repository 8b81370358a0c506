// Activation fake-quantization for the simulation path. Dynamic modes go through formats::quantize (the one
// reference quantizer), so simulated activations are exactly what the format defines.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <vector>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/minifloat.h"
#include "quasr/formats/traits.h"
#include "quasr/kernels/gemm.h"
#include "quasr/quant/quantized_weight.h"

namespace quasr::quant {

using kernels::ActivationQuant;

formats::QuantSpec activation_spec(const ActivationQuant& a) {
  formats::QuantSpec s = formats::QuantSpec::defaults(a.format);
  s.scale_type = formats::ScaleType::kFp32;
  s.zero_point = false;
  s.rounding = formats::Rounding::kHalfEven;
  s.granularity = a.mode == ActivationQuant::Mode::kDynamicPerTensor
                      ? formats::Granularity{formats::GranularityKind::kPerTensor, 0, 0}
                      : formats::Granularity{formats::GranularityKind::kPerChannel, 0, 0};
  s.validate();
  return s;
}

void fake_quantize_activations(const ActivationQuant& a, const float* x, int64_t rows, int64_t cols, int64_t ldx,
                               float* out) {
  std::vector<float> dense(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) std::copy_n(x + r * ldx, cols, dense.data() + r * cols);
  if (a.mode == ActivationQuant::Mode::kNone) {
    std::copy(dense.begin(), dense.end(), out);
    return;
  }
  const auto& tr = formats::traits(a.format);
  if (a.mode == ActivationQuant::Mode::kStatic) {
    const float s = a.static_scale;
    if (!(s > 0) || !std::isfinite(s)) throw InvalidArgument("static activation scale must be positive and finite");
    parallel_for(0, rows * cols, 16384, [&](int64_t i0, int64_t i1) {
      if (tr.kind == formats::FormatKind::kInteger) {
        const float qmax = static_cast<float>((1 << (tr.bits - 1)) - 1);
        for (int64_t i = i0; i < i1; ++i) out[i] = std::clamp(std::nearbyint(dense[i] / s), -qmax, qmax) * s;
      } else {
        QUASR_ASSERT(tr.element != nullptr);
        for (int64_t i = i0; i < i1; ++i)
          out[i] = formats::minifloat_decode(*tr.element, formats::minifloat_encode(*tr.element, dense[i] / s)) * s;
      }
    });
    return;
  }
  const int64_t shape[2] = {rows, cols};
  const formats::QTensor q = formats::quantize(dense, shape, activation_spec(a));
  q.dequantize(std::span<float>(out, static_cast<size_t>(rows * cols)));
}

namespace {
// The integer weights of an integer QTensor, as floats: sign-extended codes, or code - zero point of its block.
std::vector<float> integer_codes(const formats::QTensor& q) {
  const int bits = formats::traits(q.spec.format).bits;
  const auto codes = formats::unpack_bits(q.payload, bits, static_cast<size_t>(q.numel()));
  std::vector<float> out(codes.size());
  const int levels = 1 << bits;
  if (q.spec.zero_point) {
    const auto zps = formats::unpack_bits(q.zero_points, bits, static_cast<size_t>(q.num_blocks()));
    for (size_t i = 0; i < codes.size(); ++i)
      out[i] = static_cast<float>(int(codes[i]) - int(zps[formats::block_index(q.shape, q.spec.granularity, int64_t(i))]));
    return out;
  }
  for (size_t i = 0; i < codes.size(); ++i) out[i] = static_cast<float>(codes[i] >= levels / 2 ? codes[i] - levels : codes[i]);
  return out;
}
std::vector<float> decoded_scales(const formats::QTensor& q) {
  const size_t n = static_cast<size_t>(q.num_blocks());
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = q.scales.data();
    switch (q.spec.scale_type) {
      case formats::ScaleType::kFp32: std::memcpy(&out[i], p + 4 * i, 4); break;
      case formats::ScaleType::kFp16: out[i] = formats::fp16_to_fp32(uint16_t(p[2 * i] | p[2 * i + 1] << 8)); break;
      case formats::ScaleType::kBf16: out[i] = formats::bf16_to_fp32(uint16_t(p[2 * i] | p[2 * i + 1] << 8)); break;
      default: QUASR_ASSERT(false && "integer formats store FP32/FP16/BF16 scales");
    }
  }
  return out;
}
}  // namespace

void prepare_integer_simulation(QuantizedWeight& q) {
  const formats::QTensor& w = q.qtensor;
  const bool int_act = q.act.mode != ActivationQuant::Mode::kNone &&
                       formats::traits(q.act.format).kind == formats::FormatKind::kInteger;
  if (!int_act || formats::traits(w.spec.format).kind != formats::FormatKind::kInteger ||
      w.shape.size() != 2 || (w.spec.granularity.kind == formats::GranularityKind::kPerChannel && w.spec.granularity.axis != 0))
    return;
  const int64_t N = w.shape[0], K = w.shape[1];
  q.sim_group = w.spec.granularity.kind == formats::GranularityKind::kPerGroup ? w.spec.granularity.group : K;
  q.sim_codes = integer_codes(w);
  q.sim_scales = decoded_scales(w);
  if (w.spec.granularity.kind == formats::GranularityKind::kPerTensor)
    q.sim_scales.assign(static_cast<size_t>(N), q.sim_scales.at(0));  // one per row, same arithmetic
}

void simulate_integer_linear(const QuantizedWeight& q, const float* x, int64_t rows, int64_t ldx, const float* bias,
                             float* y, int64_t ldy) {
  const int64_t N = q.qtensor.shape[0], K = q.qtensor.shape[1], G = K / q.sim_group;
  QUASR_ASSERT(!q.sim_codes.empty());
  std::vector<float> xq(static_cast<size_t>(rows * K)), sx(static_cast<size_t>(rows));
  if (q.act.mode == ActivationQuant::Mode::kStatic) {
    const float qmax = static_cast<float>((1 << (formats::traits(q.act.format).bits - 1)) - 1);
    for (int64_t r = 0; r < rows; ++r) {
      sx[r] = q.act.static_scale;
      for (int64_t k = 0; k < K; ++k)
        xq[r * K + k] = std::clamp(std::nearbyint(x[r * ldx + k] / q.act.static_scale), -qmax, qmax);
    }
  } else {
    std::vector<float> dense(static_cast<size_t>(rows * K));
    for (int64_t r = 0; r < rows; ++r) std::copy_n(x + r * ldx, K, dense.data() + r * K);
    const int64_t shape[2] = {rows, K};
    const formats::QTensor a = formats::quantize(dense, shape, activation_spec(q.act));
    xq = integer_codes(a);
    const auto s = decoded_scales(a);
    for (int64_t r = 0; r < rows; ++r) sx[r] = s.size() == 1 ? s[0] : s[r];
  }
  std::vector<float> acc(static_cast<size_t>(G * rows * N));
  for (int64_t g = 0; g < G; ++g)
    kernels::sgemm(false, true, rows, N, q.sim_group, 1.0f, xq.data() + g * q.sim_group, K,
                   q.sim_codes.data() + g * q.sim_group, K, 0.0f, acc.data() + g * rows * N, N);
  parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t n = 0; n < N; ++n) {
        float sum = 0;
        for (int64_t g = 0; g < G; ++g) sum = sum + acc[(g * rows + r) * N + n] * q.sim_scales[n * G + g];
        const float v = sum * sx[r];
        y[r * ldy + n] = bias ? v + bias[n] : v;
      }
  });
}

}  // namespace quasr::quant
