#pragma once
// Row kernels of attention over quantized KV caches (kv_cache.h), one build per ISA (kv_attention*.cpp from
// kv_attention.inc), chosen once with best_isa(). Private to src/models; includes nothing but <cstdint> so the
// ISA-specific files share no inline code with the rest of the library (the ODR trap of cmake/QuasrIsa.cmake).
#include <cstdint>

namespace quasr::models::detail {

struct KvKernels {
  float (*dot_f32)(const float* q, const float* x, int64_t n);
  void (*axpy_f32)(float w, const float* x, float* y, int64_t n);  // y += w x
  void (*decode_f16)(const uint16_t* x, float* out, int64_t n);    // IEEE half bits -> float, exact
  void (*decode_i8)(const int8_t* x, float* out, int64_t n);       // codes -> float (scale applied by the caller)
};
// The kernels for quasr::best_isa() (QUASR_ISA caps it).
const KvKernels& kv_kernels();

namespace baseline { extern const KvKernels kKv; }
namespace avx2 { extern const KvKernels kKv; }
namespace avx512 { extern const KvKernels kKv; }

}  // namespace quasr::models::detail
