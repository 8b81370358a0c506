// A8W8 / A8W4 on AVX-VNNI: the VEX-encoded 256-bit vpdpbusd of CPUs that have it without AVX-512 (Intel Alder
// Lake and later client cores, AMD Zen 4 and 5 have both). Same prepared layout as the AVX512-VNNI kernel
// (IntGemmWeight: blocks of 16 channels x 4 k, int8 or int4 nibbles), read as two 8-channel halves; u8 codes
// (q + 128) with the shift removed by the per-group compensation. The sums are exact int32, and the AVX2
// driver applies the reference's own epilogue (qlinear.cpp), so results are bit-identical to the reference.
#include <immintrin.h>

#include "qlinear_internal.h"

namespace quasr::kernels::detail::avxvnni {
namespace {

// acc += u8(a) . s8(b) in place: a tied operand keeps each accumulator in its register (GCC otherwise copies
// them around the intrinsic's result, as measured for the AVX-512 kernel). "x" constraints: VEX encodes only
// ymm0-15.
inline void dpbusd(__m256i& acc, __m256i a, __m256i b) {
  asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
}

// The 64 weights of one k4 step of a block as two halves: channels 0-7 and 8-15 (4 consecutive k each).
template <bool kNibbles>
inline void load_step(const uint8_t* p, __m256i& lo, __m256i& hi) {
  if constexpr (kNibbles) {
    // 32 bytes: low nibbles are bytes 0..31 of the 64 (channels 0-7), high nibbles bytes 32..63 (channels 8-15);
    // vpshufb sign-extends a nibble through a 16-entry table (in each 128-bit lane).
    const __m256i sign_extend = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2,
                                                 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    lo = _mm256_shuffle_epi8(sign_extend, _mm256_and_si256(v, low));
    hi = _mm256_shuffle_epi8(sign_extend, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  } else {
    lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  }
}

// R rows x 16 channels of block nb, per group: 2R accumulators, each weight load serving R broadcast activation
// quadruples. Every loop over rows is unrolled so the accumulators stay in registers.
template <int R, bool kNibbles>
void block_sums(const IntGemmWeight& w, const uint8_t* x, int64_t nb, int32_t* out) {
  constexpr int64_t step = kNibbles ? 32 : 64;
  const int64_t k4s = w.Kp / 4, k4_per_group = w.group / 4, G = w.groups;
  const uint8_t* panel = w.packed.data() + nb * k4s * step;
  for (int64_t g = 0; g < G; ++g) {
    __m256i acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const int64_t k4_begin = g * k4_per_group;
    const int64_t k4_end = g + 1 == G ? k4s : k4_begin + k4_per_group;  // the last group takes the padding
    for (int64_t k4 = k4_begin; k4 < k4_end; ++k4) {
      __m256i lo, hi;
      load_step<kNibbles>(panel + k4 * step, lo, hi);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        int32_t four;
        __builtin_memcpy(&four, x + r * w.Kp + 4 * k4, 4);
        const __m256i a = _mm256_set1_epi32(four);
        dpbusd(acc[r][0], a, lo);
        dpbusd(acc[r][1], a, hi);
      }
    }
    const int32_t* comp = w.compensation.data() + g * w.Np + nb * 16;
    const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp));
    const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp + 8));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t* o = out + (r * G + g) * 16;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_sub_epi32(acc[r][0], c0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 8), _mm256_sub_epi32(acc[r][1], c1));
    }
  }
}

template <bool kNibbles>
void dispatch(const IntGemmWeight& w, const uint8_t* x, int64_t rows, int64_t nb, int32_t* out) {
  static_assert(kIntVnniTileRows == 6);
  switch (rows) {
    case 1: return block_sums<1, kNibbles>(w, x, nb, out);
    case 2: return block_sums<2, kNibbles>(w, x, nb, out);
    case 3: return block_sums<3, kNibbles>(w, x, nb, out);
    case 4: return block_sums<4, kNibbles>(w, x, nb, out);
    case 5: return block_sums<5, kNibbles>(w, x, nb, out);
    default: return block_sums<6, kNibbles>(w, x, nb, out);
  }
}

}  // namespace

void int_block_sums(const IntGemmWeight& w, const uint8_t* x, int64_t rows, int64_t nb, int32_t* acc) {
  if (w.nibbles) dispatch<true>(w, x, rows, nb, acc);
  else dispatch<false>(w, x, rows, nb, acc);
}

}  // namespace quasr::kernels::detail::avxvnni
