// Weight-only kernel for codes of <= 4 bits on AVX2 (CPUs without AVX-512): the 16 values of the format are held in
// two registers and each code is decoded by two vpermps (its low 3 bits) and a blend (its bit 3), then multiplied
// with FP32 activations by FMA. Per group, as the AVX-512 kernel: part = sum_k lut[code_k] * x_k, then
// acc += part * scale_g. The result differs from qlinear_ref (double accumulation of the decoded weights) only by
// FP32 rounding, within kWeightOnlyTolerance.
#include <immintrin.h>

#include <cstring>

#include "qlinear_internal.h"

namespace quasr::kernels::detail::avx2 {
namespace {

// The two halves of a 16-entry table.
struct Lut16 {
  __m256 lo, hi;
};

// Lane mask of the first n (0..8) lanes, for maskload / maskstore.
inline __m256i first_lanes(int64_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 0 ? 0 : n > 8 ? 8 : n)), lanes);
}

inline __m256 lookup(__m256i idx, const Lut16& lut) {
  // vpermps reads the low 3 bits of each index; bit 3 (moved to the sign bit) picks the upper half.
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lut.lo, idx), _mm256_permutevar8x32_ps(lut.hi, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

// The 16 weights at [k, k+16) of one row (before the block scale), codes 0-7 in w0 and 8-15 in w1. The 8 bytes
// hold code j at nibble (j % 2) * 8 + j / 2 (prepare-time order): broadcast as 64 bits, dword lane i holds the low
// (i even) or high (i odd) half, and code j sits 4 * (j / 2) bits up in it.
inline void decode16(const uint8_t* row, int64_t k, const Lut16& lut, __m256& w0, __m256& w1) {
  int64_t chunk;
  std::memcpy(&chunk, row + k / 2, 8);
  const __m256i v = _mm256_set1_epi64x(chunk);
  const __m256i nibble = _mm256_set1_epi32(0xF);
  const __m256i i0 = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12)), nibble);
  const __m256i i1 = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(16, 16, 20, 20, 24, 24, 28, 28)), nibble);
  w0 = lookup(i0, lut);
  w1 = lookup(i1, lut);
}

inline Lut16 row_lut(const WeightOnlyWeight& w, int64_t n) {
  const float* lut = w.lut.data() + (w.lut_per_channel ? n * w.lut_size : 0);
  return {_mm256_loadu_ps(lut), _mm256_loadu_ps(lut + 8)};
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int M>
void gemv_rows(const WeightOnlyWeight& w, const float* x, int64_t ldx, const float* bias, float* y, int64_t ldy,
               int64_t n0, int64_t n1) {
  const int64_t row_bytes = w.Kp / 2;
  for (int64_t n = n0; n < n1; ++n) {
    const Lut16 lut = row_lut(w, n);
    const uint8_t* row = w.codes.data() + n * row_bytes;
    __m256 acc[M];
    for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
    for (int64_t g = 0; g < w.groups; ++g) {
      // Two partial sums per row (codes 0-7 and 8-15 of each step): two FMA chains instead of one dependent pair.
      __m256 part0[M], part1[M];
      for (int m = 0; m < M; ++m) part0[m] = part1[m] = _mm256_setzero_ps();
      const int64_t k_end = (g + 1) * w.group;
      for (int64_t k = g * w.group; k < k_end; k += 16) {
        __m256 w0, w1;
        decode16(row, k, lut, w0, w1);
        if (k + 16 <= k_end) {
          for (int m = 0; m < M; ++m) {
            part0[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + m * ldx + k), part0[m]);
            part1[m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + m * ldx + k + 8), part1[m]);
          }
        } else {  // the row's last, partial step (per-channel K not a multiple of 16): x read only below K
          const __m256i m0 = first_lanes(k_end - k), m1 = first_lanes(k_end - k - 8);
          for (int m = 0; m < M; ++m) {
            part0[m] = _mm256_fmadd_ps(w0, _mm256_maskload_ps(x + m * ldx + k, m0), part0[m]);
            part1[m] = _mm256_fmadd_ps(w1, _mm256_maskload_ps(x + m * ldx + k + 8, m1), part1[m]);
          }
        }
      }
      const __m256 s = _mm256_set1_ps(w.scales[n * w.groups + g]);
      for (int m = 0; m < M; ++m) acc[m] = _mm256_fmadd_ps(_mm256_add_ps(part0[m], part1[m]), s, acc[m]);
    }
    for (int m = 0; m < M; ++m) y[m * ldy + n] = hsum(acc[m]) + (bias ? bias[n] : 0.0f);
  }
}

}  // namespace

void weight_only_gemv4(const WeightOnlyWeight& w, const float* x, int64_t M, int64_t ldx, const float* bias,
                       float* y, int64_t ldy, int64_t n0, int64_t n1) {
  with_gemv_rows(M, [&](auto rows) { gemv_rows<rows.value>(w, x, ldx, bias, y, ldy, n0, n1); });
}

void decode_rows4(const WeightOnlyWeight& w, int64_t n0, int64_t n1, float* out) {
  const int64_t row_bytes = w.Kp / 2;
  for (int64_t n = n0; n < n1; ++n) {
    const Lut16 lut = row_lut(w, n);
    const uint8_t* row = w.codes.data() + n * row_bytes;
    float* dst = out + (n - n0) * w.K;
    for (int64_t g = 0; g < w.groups; ++g) {
      const __m256 s = _mm256_set1_ps(w.scales[n * w.groups + g]);
      const int64_t k_end = (g + 1) * w.group;
      for (int64_t k = g * w.group; k < k_end; k += 16) {
        __m256 w0, w1;
        decode16(row, k, lut, w0, w1);
        w0 = _mm256_mul_ps(w0, s);
        w1 = _mm256_mul_ps(w1, s);
        if (k + 16 <= k_end) {
          _mm256_storeu_ps(dst + k, w0);
          _mm256_storeu_ps(dst + k + 8, w1);
        } else {
          _mm256_maskstore_ps(dst + k, first_lanes(k_end - k), w0);
          _mm256_maskstore_ps(dst + k + 8, first_lanes(k_end - k - 8), w1);
        }
      }
    }
  }
}

}  // namespace quasr::kernels::detail::avx2
