// Integer activations on AVX2 without VNNI. Activations are quantized per row to integer codes.
// - a8_int16_avx2 (any integer weights, zero points too): codes and weights (code, or code - zero point) as int16,
//   int16 x int16 -> int32 multiply-adds (vpmaddwd): every product and pair sum is exact, where vpmaddubsw's int16
//   pair sums would saturate for 8-bit weights (255 * 127 * 2 > 32767).
// - a8w4_maddubs_avx2 (symmetric weights of <= 4 bits): codes + 128 as u8 times int8 weights (vpmaddubsw, twice the
//   products per instruction): 2 * 255 * 8 cannot saturate, 8 pairs sum exactly in int16, and the +128 is removed
//   with a precomputed per-group compensation.
// This file computes only the exact integer parts (codes, group sums); the float epilogue runs in qlinear.cpp with
// the reference's own arithmetic, so the compiler's FMA contraction here (-mfma) cannot change a result bit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "qlinear_internal.h"
#include "quasr/core/error.h"

namespace quasr::kernels::detail::avx2 {

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

namespace {

// Codes of quantize_row_u8_scalar: signed (Out = int16_t, padding 0) or shifted by 128 (Out = uint8_t, padding 128).
template <typename Out>
void quantize_rows(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                   Out* out) {
  constexpr bool kShifted = std::is_same_v<Out, uint8_t>;
  constexpr int kShift = kShifted ? 128 : 0;
  const __m256 hi = _mm256_set1_ps(static_cast<float>(qmax)), lo = _mm256_set1_ps(-static_cast<float>(qmax));
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x + m * ldx;
    Out* o = out + m * Kp;
    const float s = scales[m];
    if (s == 0) {
      std::fill(o, o + Kp, static_cast<Out>(kShift));
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
      __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      if constexpr (kShifted) {
        packed = _mm_packus_epi16(_mm_add_epi16(packed, _mm_set1_epi16(128)), _mm_setzero_si128());
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o + k), packed);
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + k), packed);
      }
    }
    for (; k < K; ++k) {
      const float t = r[k] / s;
      o[k] = static_cast<Out>(
          std::clamp(std::nearbyint(static_cast<double>(t)), double(-qmax), double(qmax)) + kShift);
    }
    for (; k < Kp; ++k) o[k] = static_cast<Out>(kShift);
  }
}

}  // namespace

void quantize_rows_i16(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                       int16_t* out) {
  quantize_rows(x, M, ldx, K, Kp, scales, qmax, out);
}

void quantize_rows_u8(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                      uint8_t* out) {
  quantize_rows(x, M, ldx, K, Kp, scales, qmax, out);
}

namespace {

// R rows x 16 channels: per k pair, two weight loads (channels 0-7, 8-15) serve R broadcast activation pairs.
template <int R>
void int16_sums(const Int16Weight& w, const int16_t* x, int64_t nb, int32_t* acc) {
  const int64_t Kp = w.Kp, G = w.groups, len = G == 1 ? Kp : w.group;  // group % 16 == 0 when G > 1
  const int16_t* panel = w.w.data() + nb * Kp * 16;
  for (int64_t g = 0; g < G; ++g) {
    __m256i a[R][2];
    for (auto& r : a) r[0] = r[1] = _mm256_setzero_si256();
    const int16_t* wp = panel + g * len * 16;
    for (int64_t k = g * len; k < (g + 1) * len; k += 2, wp += 32) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 16));
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, x + r * Kp + k, sizeof pair);
        const __m256i xb = _mm256_set1_epi32(pair);
        a[r][0] = _mm256_add_epi32(a[r][0], _mm256_madd_epi16(xb, w0));
        a[r][1] = _mm256_add_epi32(a[r][1], _mm256_madd_epi16(xb, w1));
      }
    }
    for (int r = 0; r < R; ++r) {
      int32_t* out = acc + (r * G + g) * 16;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), a[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), a[r][1]);
    }
  }
}

// R rows x 16 channels with vpmaddubsw: per k pair one 32-byte weight load serves R broadcast activation pairs; the
// int16 products of 8 pairs (16 k) are summed in int16 (|sum| <= 8 * 2 * 255 * 8 = 32640) before widening.
template <int R>
void int4_pair_sums(const Int4PairWeight& w, const uint8_t* x, int64_t nb, int32_t* acc) {
  const int64_t Kp = w.Kp, G = w.groups, len = G == 1 ? Kp : w.group;  // group % 16 == 0 when G > 1
  const int8_t* wp = w.w.data() + nb * Kp * 16;
  for (int64_t g = 0; g < G; ++g) {
    __m256i lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
    for (int64_t k = g * len; k < (g + 1) * len; k += 16) {
      __m256i s16[R];
      for (auto& v : s16) v = _mm256_setzero_si256();
      for (int p = 0; p < 8; ++p, wp += 32) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
        for (int r = 0; r < R; ++r) {
          int16_t pair;
          std::memcpy(&pair, x + r * Kp + k + 2 * p, sizeof pair);
          s16[r] = _mm256_add_epi16(s16[r], _mm256_maddubs_epi16(_mm256_set1_epi16(pair), wv));
        }
      }
      for (int r = 0; r < R; ++r) {
        lo[r] = _mm256_add_epi32(lo[r], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s16[r])));
        hi[r] = _mm256_add_epi32(hi[r], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s16[r], 1)));
      }
    }
    const int32_t* comp = w.compensation.data() + g * w.Np + nb * 16;
    const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp));
    const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp + 8));
    for (int r = 0; r < R; ++r) {
      int32_t* out = acc + (r * G + g) * 16;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_sub_epi32(lo[r], c0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), _mm256_sub_epi32(hi[r], c1));
    }
  }
}

}  // namespace

void int4_pair_block_sums(const Int4PairWeight& w, const uint8_t* x, int64_t rows, int64_t nb, int32_t* acc) {
  static_assert(kInt4PairTileRows == 4);
  switch (rows) {
    case 1: return int4_pair_sums<1>(w, x, nb, acc);
    case 2: return int4_pair_sums<2>(w, x, nb, acc);
    case 3: return int4_pair_sums<3>(w, x, nb, acc);
    case 4: return int4_pair_sums<4>(w, x, nb, acc);
    default: QUASR_ASSERT(false && "int4_pair_block_sums: rows must be 1..kInt4PairTileRows");
  }
}

void int16_block_sums(const Int16Weight& w, const int16_t* x, int64_t rows, int64_t nb, int32_t* acc) {
  static_assert(kInt16TileRows == 6);
  switch (rows) {
    case 1: return int16_sums<1>(w, x, nb, acc);
    case 2: return int16_sums<2>(w, x, nb, acc);
    case 3: return int16_sums<3>(w, x, nb, acc);
    case 4: return int16_sums<4>(w, x, nb, acc);
    case 5: return int16_sums<5>(w, x, nb, acc);
    case 6: return int16_sums<6>(w, x, nb, acc);
    default: QUASR_ASSERT(false && "int16_block_sums: rows must be 1..kInt16TileRows");
  }
}

}  // namespace quasr::kernels::detail::avx2
