#pragma once
// A quantized Linear weight as the runtime holds it: the stored QTensor, the activation treatment that goes with
// it, and how it is applied — natively through a prepared kernel weight (kernels/qlinear.h), or simulated: the
// caller keeps the dequantized FP32 weight and fake-quantizes activations (quantize -> dequantize with the
// formats reference quantizer) before an FP32 product.
#include <cstdint>
#include <memory>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/kernels/qlinear.h"

namespace quasr::quant {

struct QuantizedWeight {
  formats::QTensor qtensor;
  kernels::ActivationQuant act;
  std::shared_ptr<const kernels::PreparedWeight> prepared;  // native path; null when simulating
};

// The QuantSpec that quantizes activations for `a` as the kernels do: symmetric, no zero point, FP32 scale
// = max|x| / qmax per row (dynamic per token) or per tensor (dynamic per tensor), round half to even.
formats::QuantSpec activation_spec(const kernels::ActivationQuant& a);

// out[r][c] = dequantize(quantize(x[r][c])) for r < rows, c < cols (x rows ldx apart, out dense rows x cols).
// Mode kNone copies. kStatic uses a.static_scale: clamp(round(x / s)) * s for integers, the format's code nearest
// x / s (saturating) times s for FP8.
void fake_quantize_activations(const kernels::ActivationQuant& a, const float* x, int64_t rows, int64_t cols,
                               int64_t ldx, float* out);

}  // namespace quasr::quant
