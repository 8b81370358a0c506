#pragma once
// A quantized Linear weight as the runtime holds it: the stored QTensor, the activation treatment that goes with
// it, and how it is applied — natively through a prepared kernel weight (kernels/qlinear.h), or simulated: the
// caller keeps the dequantized FP32 weight and fake-quantizes activations (quantize -> dequantize with the
// formats reference quantizer) before an FP32 product.
#include <cstdint>
#include <memory>
#include <vector>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/kernels/qlinear.h"

namespace quasr::quant {

// How the simulation path holds an integer weight that meets integer activations (prepare_integer_simulation):
// its integer values (code, or code - zero point) packed for the exact int32 kernels of simulate_integer_linear,
// and its scales.
struct IntegerSimulation {
  int64_t group = 0;         // input channels per scale: the group size, or K for per-channel / per-tensor
  int64_t group_padded = 0;  // group rounded up to even (the kernels multiply int16 pairs)
  int64_t blocks = 0;        // 16-channel blocks (N rounded up)
  std::vector<int16_t> packed;  // [blocks][K / group][group_padded / 2][16][2] (src/quant/simulate_int_dot.h)
  std::vector<float> scales;    // [blocks][K / group][16]: channel n's scale of group g at [n / 16][g][n % 16]
  int32_t max_abs = 0;          // largest |integer value|: bounds the partial sums (simulate_integer_linear)
  bool empty() const { return packed.empty(); }
};

struct QuantizedWeight {
  // The stored weight. A natively run Whisper model keeps its sections only for the token embedding (rows are
  // looked up from it); elsewhere the prepared kernel weight is the one copy and qtensor keeps spec and shape.
  formats::QTensor qtensor;
  kernels::ActivationQuant act;
  std::shared_ptr<const kernels::PreparedWeight> prepared;  // native path; null when simulating
  // > 0: the stored weight is Q(W H) for the block-Hadamard H of this block (quant/hadamard.h, rotate=hadamard), and
  // every input row is rotated by H before the product (and before activation quantization).
  int64_t input_hadamard_block = 0;
  // Simulation of integer x integer products (symmetric integer weight, integer activations); empty otherwise.
  IntegerSimulation sim;
};

// Fills the sim_* fields when (weight, activations) is an integer x integer pair; no-op otherwise.
void prepare_integer_simulation(QuantizedWeight& q);
// y = x . W^T + bias as the integer kernels define it (kernels::qlinear_ref): activations quantized to codes per
// row by formats::quantize, per group acc_g = the exact integer sum of code products (int32 kernels, or an FP32
// sgemm over the codes where every partial sum is provably below 2^24 and so exact too), y = (sum over groups, in
// order, of acc_g * s_w,g) * s_x + bias. Requires prepare_integer_simulation.
void simulate_integer_linear(const QuantizedWeight& q, const float* x, int64_t rows, int64_t ldx, const float* bias,
                             float* y, int64_t ldy);

// The QuantSpec that quantizes activations for `a` as the kernels do: symmetric, no zero point, FP32 scale
// = max|x| / qmax per row (dynamic per token) or per tensor (dynamic per tensor), round half to even.
formats::QuantSpec activation_spec(const kernels::ActivationQuant& a);

// out[r][c] = dequantize(quantize(x[r][c])) for r < rows, c < cols (x rows ldx apart, out dense rows x cols).
// Mode kNone copies. kStatic uses a.static_scale: clamp(round(x / s)) * s for integers, the format's code nearest
// x / s (saturating) times s for FP8.
void fake_quantize_activations(const kernels::ActivationQuant& a, const float* x, int64_t rows, int64_t cols,
                               int64_t ldx, float* out);

}  // namespace quasr::quant
