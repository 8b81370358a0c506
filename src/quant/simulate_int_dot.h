#pragma once
// Internal to the integer simulation (simulate.cpp): the exact int32 dot products of integer activation codes
// with integer weight codes, group by group, one compiled copy per ISA (simulate_int_dot.inc).
//
// Layouts (both built by simulate.cpp): a group of `group` codes is padded with zeros to `gp` = group rounded up to
// even, so that codes go in int16 pairs; Kp = G * gp.
//   x: [rows][Kp] int16, row r at x + r * Kp.
//   w: 16-channel blocks, [N / 16][G][gp / 2][16 channels][2] int16 (channels past N are zero): one block of one
//      pair is 32 int16 = 64 bytes, so a pair of 16 channels is one AVX-512 register.
//   out: [rows][blocks][G][16] int32: out[((r * blocks + b) * G + g) * 16 + l] = sum over the group g of
//        x[r][k] * w[16 * (b0 + b) + l][k], exact (|codes| <= 255 and group sizes far below 2^15).
#include <cstdint>

namespace quasr::quant::detail {

inline constexpr int64_t kSimLanes = 16;  // channels per packed block

#define QUASR_SIM_DECLARE_INT_DOT(ns)                                                                      \
  namespace ns {                                                                                           \
  void group_dots(const int16_t* x, int64_t rows, int64_t kp, const int16_t* w, int64_t b0, int64_t b1,     \
                  int64_t groups, int64_t gp, int32_t* out);                                               \
  }
QUASR_SIM_DECLARE_INT_DOT(portable)
QUASR_SIM_DECLARE_INT_DOT(avx2)
QUASR_SIM_DECLARE_INT_DOT(avx512)
#undef QUASR_SIM_DECLARE_INT_DOT

}  // namespace quasr::quant::detail
