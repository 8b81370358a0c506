// FP32 GEMM kernels for AVX2 + FMA (ymm, 8 floats a register). Compiled with the avx2 flags only; chosen at run
// time by gemm.cpp when quasr::best_isa() == Avx2 (or QUASR_ISA=avx2 caps it there).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "sgemm_kernels.h"

namespace quasr::kernels::avx2 {

struct Ops {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V bcast(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  // Lane i is enabled iff i < n.
  static __m256i mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static V load_partial(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_partial(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

// 6 x 16 tile: 12 accumulators + 2 B registers + 1 broadcast of the 16 ymm registers.
constexpr int kMR = 6, kNV = 2;
constexpr int kKC = 512, kMC = 6 * 12, kNC = 16 * 32;
constexpr const char* kName = "avx2";

#include "sgemm_generic.inc"

}  // namespace quasr::kernels::avx2
