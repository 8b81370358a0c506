// Activation fake-quantization for the simulation path. Dynamic modes go through formats::quantize (the one
// reference quantizer), so simulated activations are exactly what the format defines.
#include <algorithm>
#include <cmath>
#include <vector>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/minifloat.h"
#include "quasr/formats/traits.h"
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

}  // namespace quasr::quant
