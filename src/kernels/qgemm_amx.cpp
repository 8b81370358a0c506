// A8W8 / A8W4 GEMM on AMX-INT8 (Sapphire Rapids and later): tdpbusd multiplies a 16 x 64 tile of u8 activations
// (q + 128, as for VNNI) by a 64 x 16 tile of s8 weights into a 16 x 16 int32 tile, 16384 multiply-adds per
// instruction. The prepared weights are the VNNI layout (IntGemmWeight) with K padded to a multiple of 64: block
// nb's k4 steps are 64 contiguous bytes [16 channels][4 k], so 16 consecutive steps are exactly one B tile (rows
// 64 bytes apart) and load with one tileloadd. 4-bit weights are expanded to that int8 layout once per task.
//
// The int32 sums are exact, and the epilogue is the VNNI kernel's (explicit-rounding intrinsics, the reference's
// order), so results are bit-identical to qlinear_ref:
//   y = (sum over groups of float(acc_g - comp_g) * s_w,g) * s_x + bias.
// Register tiles: tmm0-3 accumulate 32 rows x 32 channels, tmm4-5 hold two activation tiles, tmm6-7 two weight
// tiles; each k step of 64 loads four tiles for four tdpbusd.
#include <immintrin.h>

#include <algorithm>
#include <array>

#include "qlinear_internal.h"
#include "quasr/core/parallel.h"

namespace quasr::kernels::detail::amx {
namespace {

// The VNNI kernel's epilogue helpers (each ISA file keeps its inline code in its own namespace, see
// cmake/QuasrIsa.cmake).
constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
inline __m512 mul_exact(__m512 a, __m512 b) { return _mm512_mul_round_ps(a, b, kRne); }
inline __m512 add_exact(__m512 a, __m512 b) { return _mm512_add_round_ps(a, b, kRne); }
__mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

constexpr int64_t kTaskBlocks = 4;     // 16-channel blocks per task (64 output channels)
constexpr int64_t kRowsPerTask = 128;  // activation rows per task: 4 passes of the 32-row register tile
constexpr int64_t kStepBytes = 1024;   // one B tile: 16 k4 steps x 64 bytes (64 k of 16 channels)

// The palette-1 tile configuration (Intel SDM, LDTILECFG): every tile 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
void load_tile_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  _tile_loadconfig(&c);
}

// MT (1-2) row tiles x NT (1-2) channel blocks over k steps [s_begin, s_end) into tmm0-3, then stored to acc
// (32 rows x 32 int32, row stride 128 bytes). Tile numbers must be immediates, hence the constexpr branches.
template <int MT, int NT>
[[gnu::always_inline]] inline void accumulate(const uint8_t* b0, const uint8_t* b1, const uint8_t* a0,
                                              const uint8_t* a1, int64_t lda, int64_t s_begin, int64_t s_end,
                                              int32_t* acc) {
  _tile_zero(0);
  if constexpr (NT == 2) _tile_zero(1);
  if constexpr (MT == 2) _tile_zero(2);
  if constexpr (MT == 2 && NT == 2) _tile_zero(3);
  for (int64_t s = s_begin; s < s_end; ++s) {
    _tile_loadd(4, a0 + 64 * s, lda);
    _tile_loadd(6, b0 + kStepBytes * s, 64);
    _tile_dpbusd(0, 4, 6);
    if constexpr (NT == 2) {
      _tile_loadd(7, b1 + kStepBytes * s, 64);
      _tile_dpbusd(1, 4, 7);
    }
    if constexpr (MT == 2) {
      _tile_loadd(5, a1 + 64 * s, lda);
      _tile_dpbusd(2, 5, 6);
      if constexpr (NT == 2) _tile_dpbusd(3, 5, 7);
    }
  }
  _tile_stored(0, acc, 128);
  if constexpr (NT == 2) _tile_stored(1, acc + 16, 128);
  if constexpr (MT == 2) _tile_stored(2, acc + 16 * 32, 128);
  if constexpr (MT == 2 && NT == 2) _tile_stored(3, acc + 16 * 32 + 16, 128);
}

// Rows [0, rows) (<= 16 * MT) of xq (Kp apart) x blocks nb0, nb0 + NT - 1 of the 8-bit panel (block j at
// panel + j * Kp * 16) into y.
template <int MT, int NT, bool kOneGroup>
void register_tile(const IntGemmWeight& w, const uint8_t* panel, const uint8_t* xq, int64_t rows,
                   const float* row_scales, int64_t nb0, const float* bias, float* y, int64_t ldy) {
  const int64_t steps = w.Kp / 64, steps_per_group = kOneGroup ? steps : w.group / 64;
  const uint8_t* b0 = panel;
  const uint8_t* b1 = panel + w.Kp * 16;
  alignas(64) int32_t acc[32 * 32];
  alignas(64) float sums[kOneGroup ? 1 : 32 * 32];
  const int64_t groups = kOneGroup ? 1 : w.groups;
  for (int64_t g = 0; g < groups; ++g) {
    accumulate<MT, NT>(b0, b1, xq, xq + 16 * w.Kp, w.Kp, g * steps_per_group, (g + 1) * steps_per_group, acc);
    const float* sc = w.scales.data() + g * w.Np + nb0 * 16;
    const int32_t* comp = w.compensation.data() + g * w.Np + nb0 * 16;
    for (int j = 0; j < NT; ++j) {
      const int64_t n = (nb0 + j) * 16;
      const __mmask16 mask = tail_mask(w.N - n);
      const __m512 s = _mm512_loadu_ps(sc + 16 * j);
      const __m512i c = _mm512_loadu_si512(comp + 16 * j);
      const __m512 b = bias && kOneGroup ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
      for (int64_t r = 0; r < rows; ++r) {
        const __m512i sum = _mm512_load_si512(acc + r * 32 + 16 * j);
        const __m512 part = mul_exact(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum, c)), s);
        if constexpr (kOneGroup) {
          // 0 + part, as the reference's first group, keeps part's sign of zero.
          __m512 v = mul_exact(add_exact(_mm512_setzero_ps(), part), _mm512_set1_ps(row_scales[r]));
          if (bias) v = add_exact(v, b);
          _mm512_mask_storeu_ps(y + r * ldy + n, mask, v);
        } else {
          float* acc_sum = sums + r * 32 + 16 * j;
          const __m512 before = g == 0 ? _mm512_setzero_ps() : _mm512_load_ps(acc_sum);
          _mm512_store_ps(acc_sum, add_exact(before, part));
        }
      }
    }
  }
  if constexpr (!kOneGroup) {
    for (int j = 0; j < NT; ++j) {
      const int64_t n = (nb0 + j) * 16;
      const __mmask16 mask = tail_mask(w.N - n);
      const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
      for (int64_t r = 0; r < rows; ++r) {
        __m512 v = mul_exact(_mm512_load_ps(sums + r * 32 + 16 * j), _mm512_set1_ps(row_scales[r]));
        if (bias) v = add_exact(v, b);
        _mm512_mask_storeu_ps(y + r * ldy + n, mask, v);
      }
    }
  }
}

using TileFn = void (*)(const IntGemmWeight&, const uint8_t*, const uint8_t*, int64_t, const float*, int64_t,
                       const float*, float*, int64_t);
template <bool kOneGroup>
constexpr std::array<TileFn, 4> kTiles = {&register_tile<1, 1, kOneGroup>, &register_tile<1, 2, kOneGroup>,
                                          &register_tile<2, 1, kOneGroup>, &register_tile<2, 2, kOneGroup>};

}  // namespace

void int_gemm(const IntGemmWeight& w, const uint8_t* xq, const float* row_scales, int64_t M, const float* bias,
              float* y, int64_t ldy) {
  const int64_t nblocks = w.Np / 16;
  const int64_t ntasks = (nblocks + kTaskBlocks - 1) / kTaskBlocks;
  const int64_t mchunks = (M + kRowsPerTask - 1) / kRowsPerTask;
  const auto& tiles = w.groups == 1 ? kTiles<true> : kTiles<false>;
  // Each output is computed by exactly one register tile in a fixed order: results do not depend on the thread
  // count. The tile configuration is per thread (and other code on the thread may change it), so every chunk of
  // tasks loads it and releases the tiles at the end.
  parallel_for(0, ntasks * mchunks, 1, [&](int64_t t0, int64_t t1) {
    load_tile_config();
    thread_local AlignedVector<uint8_t> expanded;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t nt = t % ntasks, mc = t / ntasks;
      const int64_t nb0 = nt * kTaskBlocks, nb = std::min(kTaskBlocks, nblocks - nb0);
      const int64_t m_begin = mc * kRowsPerTask, m_end = std::min(M, m_begin + kRowsPerTask);
      const uint8_t* panel = w.packed.data() + nb0 * w.Kp * 16;
      if (w.nibbles) {
        expanded.resize(static_cast<size_t>(nb * w.Kp * 16));
        avx512vnni::expand_panel(w, nb0, nb, expanded.data());
        panel = expanded.data();
      }
      for (int64_t j = 0; j < nb; j += 2) {
        const int nt_blocks = nb - j >= 2 ? 2 : 1;
        for (int64_t m0 = m_begin; m0 < m_end; m0 += 32) {
          const int64_t rows = std::min<int64_t>(32, m_end - m0);
          const int mt = rows > 16 ? 2 : 1;
          tiles[(mt - 1) * 2 + (nt_blocks - 1)](w, panel + j * w.Kp * 16, xq + m0 * w.Kp, rows, row_scales + m0,
                                                nb0 + j, bias, y + m0 * ldy, ldy);
        }
      }
    }
    _tile_release();
  });
}

}  // namespace quasr::kernels::detail::amx
