#pragma once
// Quantized Linear layers: y[M][N] = act(x)[M][K] . W^T + bias, with W a formats::QTensor of shape [N][K].
// A weight is *prepared* once at load time for the chosen kernel (repacked, VNNI compensation precomputed), then
// applied many times. Every combination has a scalar reference (qlinear_ref) that defines the exact arithmetic;
// optimized kernels are tested against it (integer paths bit-exact, float paths within kWeightOnlyTolerance).
// Kernels are listed once (kernel_registry()); tests and benchmarks are generated from that list.
// Semantics, layouts and the kernel list: docs/kernels.md.
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
  formats::FormatId format = formats::FormatId::kInt8;  // int8 / int4 when mode != kNone
  float static_scale = 0.0f;
  std::string to_string() const;  // "none", "int8-dyn-token", "int8-dyn-tensor", "int8-static"
};

struct PreparedWeight;  // kernel-private layout

// Prepares `w` for the best kernel this machine (capped by `max_isa`) has for (w's format, act). Throws
// InvalidArgument listing the supported combinations when there is none.
std::shared_ptr<const PreparedWeight> prepare_weight(const formats::QTensor& w, const ActivationQuant& act,
                                                     Isa max_isa = best_isa());
// Name of the kernel a prepared weight runs on, e.g. "a8w8_gemm_avx512vnni".
std::string kernel_name(const PreparedWeight& p);

// y = act(x) . W^T + bias (bias may be null). x rows are ldx apart, y rows ldy apart.
void qlinear(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
             int64_t ldy);

// The scalar reference for the same computation, straight from the QTensor.
void qlinear_ref(const formats::QTensor& w, const ActivationQuant& act, const float* x, int64_t M, int64_t ldx,
                 const float* bias, float* y, int64_t ldy);

// ---- the kernel registry (one table; tests and benchmarks iterate over it) ------------------------------------
struct KernelInfo {
  const char* name;
  Isa isa;                   // needs isa_supported(isa); QUASR_ISA caps it
  bool integer_activations;  // true: A8W8 / A8W4 (activations quantized at run time); false: weight-only FP32
  const char* takes;         // one line: the weight formats / granularities it accepts
};
std::span<const KernelInfo> kernel_registry();
// This CPU has the kernel's ISA and QUASR_ISA (best_isa()) does not cap it away.
bool kernel_runnable(const KernelInfo& k);
// "" when kernel `k` can run (w, act) on some CPU, else the reason (ISA support is not checked here).
std::string kernel_rejects(const KernelInfo& k, const formats::QTensor& w, const ActivationQuant& act);
// Prepares for one named kernel (tests, benchmarks). Throws InvalidArgument if it rejects (w, act) or this CPU
// lacks its ISA.
std::shared_ptr<const PreparedWeight> prepare_weight_for(const KernelInfo& k, const formats::QTensor& w,
                                                         const ActivationQuant& act);

// Weight-only (FP32 activation) results agree with qlinear_ref within
//   |y - y_ref| <= kWeightOnlyTolerance * (sum_k |x[m][k]| * |w_hat[n][k]| + |bias[n]|)   (w_hat = dequantized)
// per output (FP32 sums of up to ~10^4 terms in blocked order stay far inside it); integer-activation kernels
// agree bit for bit.
inline constexpr double kWeightOnlyTolerance = 1e-5;

}  // namespace quasr::kernels
