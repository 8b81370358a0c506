// Weight-only kernels on AVX-512: codes are decoded in registers by table lookup (vpermps over the 16 values of
// a 4-bit format, a gather from the 256-entry table of an 8-bit one), and multiplied with FP32 activations by
// FMA. Per group: part = sum_k lut[code_k] * x_k, then acc += part * scale_g (one multiply per group instead of
// one per weight). The result differs from qlinear_ref (double accumulation of the decoded weights) only by
// FP32 rounding, within kWeightOnlyTolerance.
#include <immintrin.h>

#include <algorithm>

#include "qlinear_internal.h"

namespace quasr::kernels::detail::avx512 {
namespace {

__mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// The 16 weights at [k, k+16) of one row (before the block scale).
template <bool kNibbles>
inline __m512 decode16(const uint8_t* row, int64_t k, const float* lut, __m512 lut16) {
  if constexpr (kNibbles) {
    // The 8 bytes hold code j at nibble (j % 2) * 8 + j / 2 (prepare-time order): broadcast them to every
    // 64-bit lane, so dword lane j holds the low (j even) or high (j odd) 32 bits, and shift lane j right by
    // 4 * (j / 2). vpermps reads only the low 4 bits of each index: no mask needed. 3 instructions per 16 codes.
    const __m512i shifts = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    int64_t chunk;
    __builtin_memcpy(&chunk, row + k / 2, 8);
    const __m512i idx = _mm512_srlv_epi32(_mm512_set1_epi64(chunk), shifts);
    return _mm512_permutexvar_ps(idx, lut16);
  } else {
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k)));
    return _mm512_i32gather_ps(idx, lut, 4);
  }
}

// One output channel, M rows of x, C chains per row: the 16-code steps of a group go round-robin to C partial
// sums, added at the end of the group in a fixed order. With one chain (M = 1, C = 1) every FMA waits for the
// previous one (4 cycles of latency per 16 weights); C * M >= 4 chains keep decode and FMAs busy while the codes
// are still read as one sequential stream (several channels at once, four streams, measured slower from DRAM).
// All loops over c and m are unrolled, so the sums stay in registers.
template <int M, int C, bool kNibbles>
void gemv_rows(const WeightOnlyWeight& w, const float* x, int64_t ldx, const float* bias, float* y, int64_t ldy,
               int64_t n0, int64_t n1) {
  const int64_t row_bytes = kNibbles ? w.Kp / 2 : w.Kp;
  for (int64_t n = n0; n < n1; ++n) {
    const float* lut = w.lut.data() + (w.lut_per_channel ? n * w.lut_size : 0);
    const __m512 lut16 = kNibbles ? _mm512_loadu_ps(lut) : _mm512_setzero_ps();
    const uint8_t* row = w.codes.data() + n * row_bytes;
    __m512 acc[M];
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
    for (int64_t g = 0; g < w.groups; ++g) {
      __m512 part[C][M];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) part[c][m] = _mm512_setzero_ps();
      const int64_t k_end = (g + 1) * w.group;
      int64_t k = g * w.group;
      for (; k + 16 * C <= k_end; k += 16 * C) {
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          const __m512 wv = decode16<kNibbles>(row, k + 16 * c, lut, lut16);
#pragma GCC unroll 8
          for (int m = 0; m < M; ++m)
            part[c][m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + m * ldx + k + 16 * c), part[c][m]);
        }
      }
      for (; k < k_end; k += 16) {
        const __mmask16 mask = tail_mask(k_end - k);
        const __m512 wv = decode16<kNibbles>(row, k, lut, lut16);
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m)
          part[0][m] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mask, x + m * ldx + k), part[0][m]);
      }
      const __m512 s = _mm512_set1_ps(w.scales[n * w.groups + g]);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        __m512 sum = part[0][m];
#pragma GCC unroll 8
        for (int c = 1; c < C; ++c) sum = _mm512_add_ps(sum, part[c][m]);
        acc[m] = _mm512_fmadd_ps(sum, s, acc[m]);
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) y[m * ldy + n] = _mm512_reduce_add_ps(acc[m]) + (bias ? bias[n] : 0.0f);
  }
}

// Chains per row: four FMA chains in all for M < 4.
template <int M, bool kNibbles>
void gemv_channels(const WeightOnlyWeight& w, const float* x, int64_t ldx, const float* bias, float* y, int64_t ldy,
                   int64_t n0, int64_t n1) {
  gemv_rows<M, M >= 4 ? 1 : 4 / M, kNibbles>(w, x, ldx, bias, y, ldy, n0, n1);
}

template <bool kNibbles>
void gemv_dispatch(int64_t M, const WeightOnlyWeight& w, const float* x, int64_t ldx, const float* bias, float* y,
                   int64_t ldy, int64_t n0, int64_t n1) {
  with_gemv_rows(M, [&](auto rows) { gemv_channels<rows.value, kNibbles>(w, x, ldx, bias, y, ldy, n0, n1); });
}

template <bool kNibbles>
void decode_rows_impl(const WeightOnlyWeight& w, int64_t n0, int64_t n1, float* out) {
  const int64_t row_bytes = kNibbles ? w.Kp / 2 : w.Kp;
  for (int64_t n = n0; n < n1; ++n) {
    const float* lut = w.lut.data() + (w.lut_per_channel ? n * w.lut_size : 0);
    const __m512 lut16 = kNibbles ? _mm512_loadu_ps(lut) : _mm512_setzero_ps();
    const uint8_t* row = w.codes.data() + n * row_bytes;
    float* dst = out + (n - n0) * w.K;
    for (int64_t g = 0; g < w.groups; ++g) {
      const __m512 s = _mm512_set1_ps(w.scales[n * w.groups + g]);
      const int64_t k_end = (g + 1) * w.group;
      for (int64_t k = g * w.group; k < k_end; k += 16)
        _mm512_mask_storeu_ps(dst + k, tail_mask(k_end - k), _mm512_mul_ps(decode16<kNibbles>(row, k, lut, lut16), s));
    }
  }
}

// ---- channel-blocked 4-bit GEMV (BlockedNibbleWeight) ----------------------------------------------------------
// Measured on a Xeon (AMX machine, 1 thread): hot, ~1.5 cycles per 16 weights, twice the row kernel above, which
// pays a variable shift per 16 codes and a horizontal sum per channel. From DRAM a single stream of lines did not
// keep the memory busy: two blocks at once and a software prefetch kPrefetchBytes ahead in each stream did.
constexpr int64_t kPrefetchBytes = 4096;

// The 8 codes of step s (one 64-byte line per block) times x[m][8s + j] for j < jn, into part[q][m][j % R].
template <int M, int B, int R>
inline void blocked_step(const uint8_t* const (&blk)[B], int64_t s, int jn, const float* x, int64_t ldx,
                         __m512 lut16, __m512 (&part)[B][M][R]) {
#pragma GCC unroll 4
  for (int q = 0; q < B; ++q) {
    const uint8_t* line = blk[q] + s * 64;
    _mm_prefetch(reinterpret_cast<const char*>(line + kPrefetchBytes), _MM_HINT_T0);
    const __m512i v = _mm512_load_si512(line);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      if (j >= jn) break;
      const __m512 wv = _mm512_permutexvar_ps(j == 0 ? v : _mm512_srli_epi32(v, 4 * j), lut16);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m)
        part[q][m][j % R] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[m * ldx + 8 * s + j]), part[q][m][j % R]);
    }
  }
}

// B blocks from nb0 at once, M rows; R chains per (block, row) so that B * M * R >= 8 FMAs are in flight (2 ports x
// 4 cycles of latency). Per group the chains are summed in a fixed order and scaled by the 16 channels' scales.
template <int M, int B>
void blocked_gemv_blocks(const BlockedNibbleWeight& w, const float* x, int64_t ldx, const float* bias, float* y,
                         int64_t ldy, int64_t nb0) {
  constexpr int R = M * B >= 8 ? 1 : 8 / (M * B);
  const __m512 lut16 = _mm512_loadu_ps(w.lut.data());
  const uint8_t* blk[B];
  for (int q = 0; q < B; ++q) blk[q] = w.codes.data() + (nb0 + q) * w.steps * 64;
  __m512 acc[B][M];
  for (int q = 0; q < B; ++q)
    for (int m = 0; m < M; ++m) acc[q][m] = _mm512_setzero_ps();
  for (int64_t g = 0; g < w.groups; ++g) {
    __m512 part[B][M][R];
    for (int q = 0; q < B; ++q)
      for (int m = 0; m < M; ++m)
        for (int r = 0; r < R; ++r) part[q][m][r] = _mm512_setzero_ps();
    // Groups are multiples of 16 or the whole row, so only the row's last step can be partial.
    const int64_t k0 = g * w.group, k1 = std::min(w.K, k0 + w.group);
    int64_t s = k0 / 8;
    for (; 8 * s + 8 <= k1; ++s) blocked_step<M, B, R>(blk, s, 8, x, ldx, lut16, part);
    if (8 * s < k1) blocked_step<M, B, R>(blk, s, static_cast<int>(k1 - 8 * s), x, ldx, lut16, part);
    for (int q = 0; q < B; ++q) {
      const __m512 sv = _mm512_loadu_ps(w.scales.data() + ((nb0 + q) * w.groups + g) * 16);
      for (int m = 0; m < M; ++m) {
        __m512 sum = part[q][m][0];
        for (int r = 1; r < R; ++r) sum = _mm512_add_ps(sum, part[q][m][r]);
        acc[q][m] = _mm512_fmadd_ps(sum, sv, acc[q][m]);
      }
    }
  }
  for (int q = 0; q < B; ++q) {
    const int64_t n0 = (nb0 + q) * 16;
    const __mmask16 mask = tail_mask(w.N - n0);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n0) : _mm512_setzero_ps();
    for (int m = 0; m < M; ++m) _mm512_mask_storeu_ps(y + m * ldy + n0, mask, _mm512_add_ps(acc[q][m], b));
  }
}

template <int M>
void blocked_gemv_rows(const BlockedNibbleWeight& w, const float* x, int64_t ldx, const float* bias, float* y,
                       int64_t ldy, int64_t nb0, int64_t nb1) {
  // Two blocks at once while the accumulators fit in registers (B * M * (R + 1) <= 24 of the 32).
  constexpr int B = M <= 2 ? 2 : 1;
  int64_t nb = nb0;
  for (; nb + B <= nb1; nb += B) blocked_gemv_blocks<M, B>(w, x, ldx, bias, y, ldy, nb);
  for (; nb < nb1; ++nb) blocked_gemv_blocks<M, 1>(w, x, ldx, bias, y, ldy, nb);
}

}  // namespace

void weight_only_gemv(const WeightOnlyWeight& w, const float* x, int64_t M, int64_t ldx, const float* bias,
                      float* y, int64_t ldy, int64_t n0, int64_t n1) {
  if (w.nibbles) gemv_dispatch<true>(M, w, x, ldx, bias, y, ldy, n0, n1);
  else gemv_dispatch<false>(M, w, x, ldx, bias, y, ldy, n0, n1);
}

void decode_rows(const WeightOnlyWeight& w, int64_t n0, int64_t n1, float* out) {
  if (w.nibbles) decode_rows_impl<true>(w, n0, n1, out);
  else decode_rows_impl<false>(w, n0, n1, out);
}

void blocked_gemv(const BlockedNibbleWeight& w, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                  int64_t ldy, int64_t nb0, int64_t nb1) {
  with_gemv_rows(M, [&](auto rows) { blocked_gemv_rows<rows.value>(w, x, ldx, bias, y, ldy, nb0, nb1); });
}

void blocked_decode_rows(const BlockedNibbleWeight& w, int64_t n0, int64_t n1, float* out) {
  // Per channel and 16 k: its dwords of steps s and s + 1 (lines apart) broadcast to the two halves of a vector,
  // shifted so that lane j holds code j in its low 4 bits, then one vpermps and one multiply by the group scale.
  const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  const __m512 lut16 = _mm512_loadu_ps(w.lut.data());
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t nb = n / 16, c = n % 16;
    const uint8_t* lane = w.codes.data() + nb * w.steps * 64 + 4 * c;
    float* dst = out + (n - n0) * w.K;
    for (int64_t g = 0; g < w.groups; ++g) {
      const __m512 sv = _mm512_set1_ps(w.scales[(nb * w.groups + g) * 16 + c]);
      const int64_t k1 = std::min(w.K, (g + 1) * w.group);
      for (int64_t k = g * w.group; k < k1; k += 16) {
        const int64_t s = k / 8;
        uint32_t lo, hi = 0;
        __builtin_memcpy(&lo, lane + s * 64, 4);
        if (s + 1 < w.steps) __builtin_memcpy(&hi, lane + (s + 1) * 64, 4);
        const __m512i both = _mm512_inserti64x4(_mm512_set1_epi32(static_cast<int>(lo)),
                                                _mm256_set1_epi32(static_cast<int>(hi)), 1);
        const __m512 v = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srlv_epi32(both, shifts), lut16), sv);
        _mm512_mask_storeu_ps(dst + k, tail_mask(k1 - k), v);
      }
    }
  }
}

}  // namespace quasr::kernels::detail::avx512
