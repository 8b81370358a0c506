#pragma once
// Vectorized elementwise math of the Whisper network (GELU, softmax), one build per ISA (whisper_math*.cpp),
// chosen once at run time. Private to src/models.
#include <cstdint>

namespace quasr::models::detail {

struct MathKernels {
  void (*gelu)(float* x, int64_t n);     // in place, exact-GELU form with an erf approximation (|err| <= 2e-7)
  void (*softmax)(float* s, int64_t n);  // in place over n >= 1 values
};

// The kernels for quasr::best_isa() (QUASR_ISA caps it).
const MathKernels& math_kernels();

namespace baseline { extern const MathKernels kMath; }
namespace avx2 { extern const MathKernels kMath; }
namespace avx512 { extern const MathKernels kMath; }

}  // namespace quasr::models::detail
