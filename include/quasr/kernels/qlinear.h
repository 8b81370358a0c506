#pragma once
// Quantized Linear layers: y[M][N] = act(x)[M][K] . W^T + bias, with W a formats::QTensor of shape [N][K].
// A weight is *prepared* once at load time for the chosen kernel (repacked, VNNI compensation precomputed), then
// applied many times. Every combination has a scalar reference (qlinear_ref) that defines the exact arithmetic;
// optimized kernels are tested against it (integer paths bit-exact, float paths within the traits tolerance).
// Kernels are listed once (kernel_registry()); tests and benchmarks are generated from that list.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quasr/core/cpu_features.h"
#include "quasr/formats/qtensor.h"

namespace quasr::kernels {

// What happens to activations before the product.
struct ActivationQuant {
  enum class Mode : uint8_t {
    kNone,              // FP32 activations (weight-only schemes)
    kDynamicPerToken,   // scale per row of x computed at run time: max|x_row| / qmax, no zero point
    kDynamicPerTensor,  // one scale for the whole x computed at run time
    kStatic,            // scale given (from calibration): static_scale
  };
  Mode mode = Mode::kNone;
  formats::FormatId format = formats::FormatId::kInt8;  // int8 / int4 / fp8_e4m3 when mode != kNone
  float static_scale = 0.0f;
  std::string to_string() const;  // "none", "int8-dyn-token", "int8-dyn-tensor", "int8-static"
};

struct PreparedWeight;  // kernel-private layout

// Prepares `w` for the best kernel this machine (capped by `max_isa`) has for (w's format, act). Throws
// InvalidArgument listing the supported combinations when there is none.
std::shared_ptr<const PreparedWeight> prepare_weight(const formats::QTensor& w, const ActivationQuant& act,
                                                     Isa max_isa = best_isa());
// Name of the kernel a prepared weight runs on, e.g. "qd8_f32_qc8w_gemm_avx512vnni".
std::string kernel_name(const PreparedWeight& p);

// y = act(x) . W^T + bias (bias may be null). x rows are ldx apart, y rows ldy apart.
void qlinear(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
             int64_t ldy);

// The scalar reference for the same computation, straight from the QTensor.
void qlinear_ref(const formats::QTensor& w, const ActivationQuant& act, const float* x, int64_t M, int64_t ldx,
                 const float* bias, float* y, int64_t ldy);

}  // namespace quasr::kernels
