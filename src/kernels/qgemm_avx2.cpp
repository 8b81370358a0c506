// A8W8 / A8W4 on AVX2 without VNNI: int16 x int16 -> int32 multiply-adds (vpmaddwd). Activations are quantized per
// row to integer codes held as int16, weights prepared as int16 (sign-extended code, or code - zero point), so every
// product and pair sum is exact and nothing saturates (vpmaddubsw's int16 pair sums would: 255 * 127 * 2 > 32767).
// This file computes only the exact integer parts (codes, group sums); the float epilogue runs in qlinear.cpp with
// the reference's own arithmetic, so the compiler's FMA contraction here (-mfma) cannot change a result bit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "qlinear_internal.h"
#include "quasr/core/error.h"

namespace quasr::kernels::detail::avx2 {
namespace {

inline int32_t hsum(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1))));
}

}  // namespace

void row_absmax(const float* x, int64_t M, int64_t ldx, int64_t K, float* amax) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    __m256 a = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) a = _mm256_max_ps(a, _mm256_andnot_ps(sign, _mm256_loadu_ps(r + k)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, a);
    float v = 0;
    for (float l : lanes) v = std::max(v, l);
    for (; k < K; ++k) v = std::max(v, std::fabs(r[k]));
    amax[m] = v;
  }
}

void quantize_rows_i16(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                       int16_t* out) {
  const __m256 hi = _mm256_set1_ps(static_cast<float>(qmax)), lo = _mm256_set1_ps(-static_cast<float>(qmax));
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    int16_t* o = out + m * Kp;
    const float s = scales[m];
    if (s == 0) {
      std::fill(o, o + Kp, int16_t{0});
      continue;
    }
    const __m256 vs = _mm256_set1_ps(s);
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      // x / s in FP32 (IEEE division, as the reference), round half to even, clamp: the same code as
      // quantize_row_u8_scalar (clamping after rounding equals clamping before for integer bounds).
      __m256 t = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(r + k), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
      const __m256i q = _mm256_cvtps_epi32(t);
      const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + k), packed);
    }
    for (; k < K; ++k) {
      const float t = r[k] / s;
      o[k] = static_cast<int16_t>(std::clamp(std::nearbyint(static_cast<double>(t)), double(-qmax), double(qmax)));
    }
    for (; k < Kp; ++k) o[k] = 0;
  }
}

void int16_group_sums(const Int16Weight& w, const int16_t* x, int64_t rows, int64_t n0, int64_t n1, int32_t* acc) {
  QUASR_ASSERT(rows == 1 || rows == 2);
  const int64_t Kp = w.Kp, G = w.groups, len = G == 1 ? Kp : w.group;  // group % 16 == 0 when G > 1
  const int64_t row_acc = (n1 - n0) * G;  // acc of row 1 follows row 0's
  auto load = [](const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {  // 4 channels x `rows` rows: each weight load serves both rows
    const int16_t* w0 = w.w.data() + n * Kp;
    for (int64_t g = 0; g < G; ++g) {
      __m256i a[2][4];
      for (auto& r : a)
        for (auto& v : r) v = _mm256_setzero_si256();
      for (int64_t k = g * len; k < (g + 1) * len; k += 16) {
        const __m256i x0 = load(x + k), x1 = rows == 2 ? load(x + Kp + k) : x0;
        for (int c = 0; c < 4; ++c) {
          const __m256i wv = load(w0 + c * Kp + k);
          a[0][c] = _mm256_add_epi32(a[0][c], _mm256_madd_epi16(x0, wv));
          if (rows == 2) a[1][c] = _mm256_add_epi32(a[1][c], _mm256_madd_epi16(x1, wv));
        }
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < 4; ++c) acc[r * row_acc + (n + c - n0) * G + g] = hsum(a[r][c]);
    }
  }
  for (; n < n1; ++n) {
    const int16_t* wr = w.w.data() + n * Kp;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < G; ++g) {
        __m256i a = _mm256_setzero_si256();
        for (int64_t k = g * len; k < (g + 1) * len; k += 16)
          a = _mm256_add_epi32(a, _mm256_madd_epi16(load(x + r * Kp + k), load(wr + k)));
        acc[r * row_acc + (n - n0) * G + g] = hsum(a);
      }
  }
}

}  // namespace quasr::kernels::detail::avx2
