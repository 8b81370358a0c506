// FP32 GEMM kernels for any CPU: GCC/Clang vector extensions (4 floats, SSE2 on x86-64) compiled without ISA
// flags. The fallback below Avx2 (QUASR_ISA=scalar selects it).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quasr/formats/minifloat.h"
#include "sgemm_kernels.h"

namespace quasr::kernels::portable {

struct Ops {
  typedef float V __attribute__((vector_size(16)));
  static constexpr int W = 4;
  static V zero() { return V{0, 0, 0, 0}; }
  static V bcast(float x) { return V{x, x, x, x}; }
  static V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
  static V load_partial(const float* p, int n) {
    V v = zero();
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
  }
  static void store_partial(float* p, V v, int n) {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
  static V load_f16(const uint16_t* p) { return load_partial_f16(p, W); }
  static V load_partial_f16(const uint16_t* p, int n) {
    V v = zero();
    for (int i = 0; i < n; ++i) v[i] = formats::fp16_to_fp32(p[i]);
    return v;
  }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
  static V add(V a, V b) { return a + b; }
  static float hsum(V v) { return (v[0] + v[2]) + (v[1] + v[3]); }
  static void transpose(V r[4]) {
    V t[4];
    for (int i = 0; i < 4; ++i) t[i] = V{r[0][i], r[1][i], r[2][i], r[3][i]};
    for (int i = 0; i < 4; ++i) r[i] = t[i];
  }
};

// 6 x 8 tile: 12 accumulators + 2 B registers + 1 broadcast of the 16 xmm registers.
constexpr int kMR = 6, kNV = 2;
constexpr int kKC = 256, kMC = 6 * 16, kNC = 8 * 32;
constexpr const char* kName = "portable";

#include "sgemm_generic.inc"

}  // namespace quasr::kernels::portable
