// A8W8 / A8W4 GEMM on AVX512-VNNI: activations quantized per row to int8 (stored as u8 = q + 128, because
// vpdpbusd multiplies unsigned by signed bytes), weights int8 (or int4 nibbles expanded in registers with one
// vpshufb), int32 accumulation per group, and the shift removed with a per-output compensation precomputed at
// prepare time: sum (q + 128) w = sum q w + 128 sum w. The epilogue does exactly what qlinear_ref does, in the
// same order and precision, so results are bit-identical to the reference:
//   y = (sum over groups of float(acc_g - comp_g) * s_w,g) * s_x + bias.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "qlinear_internal.h"
#include "quasr/core/parallel.h"

namespace quasr::kernels::detail::avx512vnni {
namespace {

// The epilogue must round exactly like the reference: explicit-rounding intrinsics cannot be fused into an FMA
// by the compiler (GCC contracts a plain vector mul + add in C++ mode, which changes the last bit).
constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
inline __m512 mul_exact(__m512 a, __m512 b) { return _mm512_mul_round_ps(a, b, kRne); }
inline __m512 add_exact(__m512 a, __m512 b) { return _mm512_add_round_ps(a, b, kRne); }

// acc += u8(a) . s8(b) in place. GCC's register allocator copies every accumulator of a micro-tile on each step
// when the intrinsic's result is assigned back (about 30 register moves and a spill per 16 vpdpbusd, measured in
// the generated code); the tied "+v" operand keeps each accumulator in its own register.
inline void dpbusd(__m512i& acc, __m512i a, __m512i b) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b)); }

constexpr int kMr = 4;          // rows of x per micro-tile
constexpr int kBlocks = 4;      // 16-channel blocks per micro-tile (64 output channels)
constexpr int64_t kRowsPerTask = 16 * kMr;

__mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// 64 int4 weights (32 bytes: low nibbles elements 0..31, high nibbles 32..63) -> 64 sign-extended int8.
inline __m512i expand_nibbles(const uint8_t* p) {
  const __m512i sign_extend = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3,
                                                                   -2, -1));
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(v, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_epi8(sign_extend, idx);
}

// Every loop over rows and channel blocks is fully unrolled (pragmas): with a loop left rolled GCC keeps the
// accumulators in memory, which measured 3x slower.

// acc[r][j] += the products of rows r of xq and channel block j over k4 steps [k4_begin, k4_end).
template <int MR, int NB, bool kNibbles>
[[gnu::always_inline]] inline void accumulate(__m512i (&acc)[MR][NB], const uint8_t* const (&wb)[NB],
                                              const uint8_t* xq, int64_t Kp, int64_t k4_begin, int64_t k4_end) {
  constexpr int64_t step = kNibbles ? 32 : 64;
  for (int64_t k4 = k4_begin; k4 < k4_end; ++k4) {
    __m512i wv[NB];
    #pragma GCC unroll 16
    for (int j = 0; j < NB; ++j)
      wv[j] = kNibbles ? expand_nibbles(wb[j] + k4 * step)
                       : _mm512_loadu_si512(reinterpret_cast<const void*>(wb[j] + k4 * step));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t four;
      __builtin_memcpy(&four, xq + r * Kp + 4 * k4, 4);
      const __m512i a = _mm512_set1_epi32(four);
      #pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) dpbusd(acc[r][j], a, wv[j]);
    }
  }
}

// MR rows x NB channel blocks from nb0. With one group (per-channel or per-tensor weights) the epilogue runs from
// the registers; with several, partial sums per group go through a small array. Both round exactly like the
// reference (0 + part for the first group keeps its sign of zero).
template <int MR, int NB, bool kNibbles, bool kOneGroup>
void micro_tile(const IntGemmWeight& w, const uint8_t* panel, const uint8_t* xq, const float* row_scales, int64_t nb0,
                const float* bias, float* y, int64_t ldy) {
  const int64_t k4s = w.Kp / 4;
  constexpr int64_t step = kNibbles ? 32 : 64;
  const uint8_t* wb[NB];
  #pragma GCC unroll 16
  for (int j = 0; j < NB; ++j) wb[j] = panel + j * k4s * step;
  alignas(64) float sums[kOneGroup ? 1 : MR][NB * 16];
  const int64_t k4_per_group = w.group / 4;
  const int64_t groups = kOneGroup ? 1 : w.groups;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i acc[MR][NB];
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      #pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) acc[r][j] = _mm512_setzero_si512();
    const int64_t k4_begin = g * k4_per_group;
    const int64_t k4_end = g + 1 == groups ? k4s : k4_begin + k4_per_group;  // the last group takes the padding
    accumulate<MR, NB, kNibbles>(acc, wb, xq, w.Kp, k4_begin, k4_end);
    const float* sc = w.scales.data() + g * w.Np + nb0 * 16;
    const int32_t* comp = w.compensation.data() + g * w.Np + nb0 * 16;
    #pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) {
      const int64_t n = (nb0 + j) * 16;
      const __mmask16 mask = tail_mask(w.N - n);
      const __m512 s = _mm512_loadu_ps(sc + 16 * j);
      const __m512i c = _mm512_loadu_si512(comp + 16 * j);
      const __m512 b = bias && kOneGroup ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
      #pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512 part = mul_exact(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], c)), s);
        const __m512 before = kOneGroup || g == 0 ? _mm512_setzero_ps() : _mm512_load_ps(&sums[r][16 * j]);
        if constexpr (kOneGroup) {
          __m512 v = mul_exact(add_exact(before, part), _mm512_set1_ps(row_scales[r]));
          if (bias) v = add_exact(v, b);
          _mm512_mask_storeu_ps(y + r * ldy + n, mask, v);
        } else {
          _mm512_store_ps(&sums[r][16 * j], add_exact(before, part));
        }
      }
    }
  }
  if constexpr (!kOneGroup) {
    #pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) {
      const int64_t n = (nb0 + j) * 16;
      const __mmask16 mask = tail_mask(w.N - n);
      const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
      #pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        __m512 v = mul_exact(_mm512_load_ps(&sums[r][16 * j]), _mm512_set1_ps(row_scales[r]));
        if (bias) v = add_exact(v, b);
        _mm512_mask_storeu_ps(y + r * ldy + n, mask, v);
      }
    }
  }
}

// Micro-tile for mr (1..kMr) rows and nb (1..kBlocks) channel blocks: a table of the instantiations.
using TileFn = void (*)(const IntGemmWeight&, const uint8_t*, const uint8_t*, const float*, int64_t, const float*,
                       float*, int64_t);
template <bool kNibbles, bool kOneGroup, int... I>
constexpr std::array<TileFn, sizeof...(I)> tile_table(std::integer_sequence<int, I...>) {
  return {&micro_tile<I / kBlocks + 1, I % kBlocks + 1, kNibbles, kOneGroup>...};
}
template <bool kNibbles, bool kOneGroup>
constexpr auto kTiles = tile_table<kNibbles, kOneGroup>(std::make_integer_sequence<int, kMr * kBlocks>{});

template <bool kNibbles>
void tile(int mr, int nb, const IntGemmWeight& w, const uint8_t* panel, const uint8_t* xq, const float* rs,
          int64_t nb0, const float* bias, float* y, int64_t ldy) {
  const int i = (mr - 1) * kBlocks + (nb - 1);
  if (w.groups == 1) kTiles<kNibbles, true>[i](w, panel, xq, rs, nb0, bias, y, ldy);
  else kTiles<kNibbles, false>[i](w, panel, xq, rs, nb0, bias, y, ldy);
}

}  // namespace

void expand_panel(const IntGemmWeight& w, int64_t nb0, int64_t nb, uint8_t* out) {
  const int64_t steps = nb * (w.Kp / 4);
  const uint8_t* src = w.packed.data() + nb0 * (w.Kp / 4) * 32;
  for (int64_t i = 0; i < steps; ++i) _mm512_store_si512(out + 64 * i, expand_nibbles(src + 32 * i));
}

void row_absmax(const float* x, int64_t M, int64_t ldx, int64_t K, float* amax) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t m = 0; m < M; ++m) {
    __m512 mx = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(tail_mask(K - k), x + m * ldx + k);
      mx = _mm512_max_ps(mx, _mm512_and_ps(v, abs_mask));
    }
    amax[m] = _mm512_reduce_max_ps(mx);
  }
}

void quantize_rows_u8(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                      uint8_t* xq) {
  const __m512 hi = _mm512_set1_ps(static_cast<float>(qmax)), lo = _mm512_set1_ps(-static_cast<float>(qmax));
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  // |t| <= qmax after clamping, so 2^-20 qmax bounds the margin of every lane (see below).
  const __m512 risky_from = _mm512_set1_ps(0.5f - 0x1p-20f * static_cast<float>(qmax));
  const __m512i shift = _mm512_set1_epi32(128);
  for (int64_t m = 0; m < M; ++m) {
    uint8_t* out = xq + m * Kp;
    const float s = scales[m];
    if (s == 0) {
      std::fill(out, out + Kp, uint8_t{128});
      continue;
    }
    const __m512 vs = _mm512_set1_ps(s);
    // The reference divides (x / s, correctly rounded). A multiply by 1 / s is within 2^-23 |t| of that quotient
    // (two roundings), so both round to the same integer unless the product lies within 2^-20 qmax of a half (an
    // 8x margin): only those rare lanes are divided. Scales so small or large that 1 / s loses precision
    // (subnormal or infinite) always divide. Clamping comes before the round-to-nearest-even conversion, as in the
    // reference, also for huge values under a static scale.
    const bool reciprocal_ok = std::fabs(s) >= 0x1p-100f && std::fabs(s) <= 0x1p100f;
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mask = tail_mask(K - k);
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + m * ldx + k);
      __m512 t;
      if (reciprocal_ok) {
        t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(xv, inv), lo), hi);
        // vreduceps: t - rne(t), the distance to the nearest integer (at most 0.5).
        const __m512 dist = _mm512_and_ps(_mm512_reduce_ps(t, kRne), abs_mask);
        const __mmask16 risky = _mm512_mask_cmp_ps_mask(mask, dist, risky_from, _CMP_GE_OQ);
        if (risky) t = _mm512_mask_min_ps(t, risky, _mm512_max_ps(_mm512_div_ps(xv, vs), lo), hi);
      } else {
        t = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(xv, vs), lo), hi);
      }
      const __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(t, kRne), shift);
      _mm_mask_storeu_epi8(out + k, mask, _mm512_cvtepi32_epi8(q));
    }
    std::fill(out + K, out + Kp, uint8_t{128});
  }
}

void int_gemm(const IntGemmWeight& w, const uint8_t* xq, const float* row_scales, int64_t M, const float* bias,
              float* y, int64_t ldy) {
  const int64_t nblocks = w.Np / 16;
  const int64_t ntiles = (nblocks + kBlocks - 1) / kBlocks;
  const int64_t mchunks = (M + kRowsPerTask - 1) / kRowsPerTask;
  // Each output is computed by exactly one tile with a fixed order: results do not depend on the thread count.
  parallel_for(0, ntiles * mchunks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t nt = t % ntiles, mc = t / ntiles;
      const int64_t nb0 = nt * kBlocks;
      const int nb = static_cast<int>(std::min<int64_t>(kBlocks, nblocks - nb0));
      const int64_t m_begin = mc * kRowsPerTask, m_end = std::min(M, (mc + 1) * kRowsPerTask);
      // 4-bit weights serving more than two micro-tiles are expanded once per task into an 8-bit panel (the
      // expansion then costs 1/16 of what it does inside every micro-tile at M = 1500); the products are the same.
      const bool expand = w.nibbles && m_end - m_begin > 2 * kMr;
      thread_local AlignedVector<uint8_t> expanded;
      if (expand) {
        expanded.resize(static_cast<size_t>(nb * w.Kp * 16));
        expand_panel(w, nb0, nb, expanded.data());
      }
      const uint8_t* panel = expand ? expanded.data() : w.packed.data() + nb0 * (w.Kp / 4) * (w.nibbles ? 32 : 64);
      for (int64_t m0 = m_begin; m0 < m_end; m0 += kMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kMr, m_end - m0));
        if (w.nibbles && !expand)
          tile<true>(mr, nb, w, panel, xq + m0 * w.Kp, row_scales + m0, nb0, bias, y + m0 * ldy, ldy);
        else
          tile<false>(mr, nb, w, panel, xq + m0 * w.Kp, row_scales + m0, nb0, bias, y + m0 * ldy, ldy);
      }
    }
  });
}

}  // namespace quasr::kernels::detail::avx512vnni
