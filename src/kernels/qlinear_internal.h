#pragma once
// Internal to src/kernels: the prepared-weight layouts shared by the quantized-linear driver (qlinear.cpp) and
// the per-ISA kernels (qgemm_*.cpp, qgemv_*.cpp). Not a public header.
//
// Every weight format the kernels take is first reduced to one decomposition (decompose_weight):
//     w[n][k] = (lut[codebook(n)][code[n][k]] - zero_point[n][k / group]) * scale[n][k / group]
// where lut holds the 2^b decoded element values (sign-extended integers, unsigned ones for integers with zero
// points, minifloat values, NF4 levels or k-means centroids), zero_point the block's zero point (0 without), and
// scale the block scale as a float (FP16/BF16/E8M0 decoded, NVFP4's E4M3 times the tensor scale; 1 for codebooks). This product is exactly what dequantize_ref computes (a test checks it for every
// format), so kernels that decode this way decode the reference's weights bit for bit.
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "quasr/kernels/qlinear.h"

namespace quasr::kernels::detail {

// The GEMVs take their row count (M <= 8, the decoder's steps and beams) as a template argument, so that every loop
// over rows unrolls and the sums stay in registers: with_gemv_rows(M, f) calls f(std::integral_constant<int, M>).
template <typename F>
void with_gemv_rows(int64_t M, F&& f) {
  switch (M) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

// Allocates on 64-byte (cache line) boundaries: the kernels load whole 64-byte vectors of prepared weights, and a
// std::vector's 16-byte alignment made every such load straddle two lines.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) { return true; }
};
template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

struct WeightDecomposition {
  int64_t N = 0, K = 0;
  int bits = 0;
  int64_t group = 0;              // elements per scale along K (K for per-channel / per-tensor)
  int64_t groups_per_row = 0;     // K / group
  std::vector<uint8_t> codes;     // N x K, one code per byte
  std::vector<float> scales;      // N x groups_per_row
  std::vector<float> lut;         // lut_count x 2^bits
  bool lut_per_channel = false;   // codebook per output channel (k-means pc): lut row n
  bool integer = false;           // FormatKind::kInteger: lut[c] = sign-extended c, or c itself with zero points
  // N x groups_per_row zero points (integers with :zp only; empty otherwise): the integer weight is code - zp.
  std::vector<int32_t> zero_points;
};

// Throws InvalidArgument (naming the reason) if `w` cannot be decomposed: not 2-D, per-channel along axis 1,
// storage formats.
WeightDecomposition decompose_weight(const formats::QTensor& w);
// Why `w` cannot be decomposed, or "" when it can.
std::string decomposition_problem(const formats::QTensor& w);

// Activation quantization of the integer schemes. Scale of one row / tensor: float(double(amax) / qmax), the
// formats module's restricted-range scale (formats::quantize with FP32 scales); code = clamp(rne(x / s), ±qmax).
int activation_qmax(const ActivationQuant& act);
float activation_scale(float amax, int qmax);
// Scalar: writes q + 128 (the unsigned form VNNI multiplies) for K values, and K..Kp-1 as 128 (code 0).
void quantize_row_u8_scalar(const float* x, int64_t K, int64_t Kp, float scale, int qmax, uint8_t* out);

// ---- prepared layouts -------------------------------------------------------------------------------------------
// Integer activations x integer weights (VNNI engine). Channels in blocks of 16, K in steps of 4 (zero padded to
// Kp): block nb, step k4 holds 64 bytes [16 channels][4 k] (8-bit), or for 4-bit weights 32 bytes whose low
// nibbles are elements 0..31 and high nibbles elements 32..63 of those 64 (two's-complement nibbles).
struct IntGemmWeight {
  int64_t N = 0, K = 0, Np = 0, Kp = 0;
  int64_t group = 0, groups = 0;     // group along K (multiple of 4), groups = K / group
  bool nibbles = false;              // 4-bit packed
  AlignedVector<uint8_t> packed;
  std::vector<float> scales;         // groups x Np
  std::vector<int32_t> compensation; // groups x Np: 128 * sum of w over the group (the u8 shift)
};

// Weight-only: codes per row, row stride padded to a multiple of 16 codes (zero codes), 4-bit codes as nibbles
// (in each 8-byte chunk of 16 codes, code j at nibble (j % 2) * 8 + j / 2), others one byte each; scales N x groups; lut as in WeightDecomposition.
struct WeightOnlyWeight {
  int64_t N = 0, K = 0, Kp = 0;
  int64_t group = 0, groups = 0;
  bool nibbles = false;
  int lut_size = 0;
  bool lut_per_channel = false;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<float> lut;
  std::vector<float> dense;  // for the portable kernel: the dequantized FP32 weight (N x K)
};

// Weight-only codes of <= 4 bits with one shared table, for the channel-blocked AVX-512 GEMV. Channels in blocks of
// 16 (zero channels pad N to Np), K in steps of 8 (steps = K rounded up to 8, over 8; zero codes pad): block nb,
// step s is one 64-byte line of 16 dwords, dword c holding the codes of channel 16 nb + c at k = 8s .. 8s + 7, code
// j in bits [4j, 4j + 4). One load and a shift by 4j put every channel's code for one k in the low 4 bits of its
// lane (all vpermps reads), and one FMA against the broadcast x[k] adds it into that channel's lane: no
// horizontal sums, and a block's codes are one sequential stream. Scales (Np / 16) x groups x 16.
struct BlockedNibbleWeight {
  int64_t N = 0, K = 0, Np = 0, steps = 0;
  int64_t group = 0, groups = 0;  // group along K: a multiple of 16, or K (one group per row)
  AlignedVector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<float> lut;  // 16 entries (unused ones 0)
};

// Integer activations x integer weights on AVX2 (int16 engine): every weight as int16 (sign-extended code, or code -
// zero point). Channels in blocks of 16 (zero channels pad N to Np), K padded with zeros to Kp = K rounded up to 16;
// block nb, k pair p holds 32 int16 [16 channels][2 k] at w[(nb * Kp / 2 + p) * 32], so that one vpmaddwd of a
// broadcast activation pair against 8 channels' pairs adds each channel's two products into its own int32 lane
// (no horizontal sums). Scales groups x Np. One group per row, or groups of a multiple of 16.
struct Int16Weight {
  int64_t N = 0, K = 0, Np = 0, Kp = 0;
  int64_t group = 0, groups = 0;
  AlignedVector<int16_t> w;
  std::vector<float> scales;
};
// Rows of activations the AVX2 int16 kernel multiplies per pass over a channel block (its register tile: 6 rows x
// 16 channels of int32 accumulators, 12 of the 16 ymm registers).
inline constexpr int64_t kInt16TileRows = 6;

// Symmetric weights of <= 4 bits for vpmaddubsw on AVX2 (u8 activations x s8 weights): values in [-8, 7] as int8, in
// blocks of 16 channels x 2 k (32 bytes, channel c's pair at bytes 2c, 2c + 1), K zero-padded to Kp (a multiple of
// 16). No product pair can saturate (2 * 255 * 8 < 32767) and 8 pairs sum exactly in int16. Scales and
// compensation (128 * the group's sum of weights: it removes the activations' +128 shift) groups x Np.
struct Int4PairWeight {
  int64_t N = 0, K = 0, Np = 0, Kp = 0;
  int64_t group = 0, groups = 0;
  AlignedVector<int8_t> w;
  std::vector<float> scales;
  std::vector<int32_t> compensation;
};
// Rows per pass of the vpmaddubsw kernel (4 rows x 16 channels: an int16 and two int32 accumulators per row).
inline constexpr int64_t kInt4PairTileRows = 4;

// k_align: Kp is K rounded up to a multiple of it (4 for VNNI; 64 for AMX, whose tiles take 64 k per row).
IntGemmWeight pack_int_gemm(const WeightDecomposition& d, int64_t k_align = 4);
Int16Weight pack_int16(const WeightDecomposition& d);
Int4PairWeight pack_int4_pairs(const WeightDecomposition& d);
WeightOnlyWeight pack_weight_only(const WeightDecomposition& d, bool keep_codes);
// Needs d.bits <= 4, one shared table and no zero points.
BlockedNibbleWeight pack_blocked_nibbles(const WeightDecomposition& d);

// ---- per-ISA entry points (defined in the _avx512vnni / _avx512 / _avxvnni / _avx2 files) ----------------------
namespace avx512vnni {
// amax[m] = max |x[m][0..K)|.
void row_absmax(const float* x, int64_t M, int64_t ldx, int64_t K, float* amax);
// Same codes as quantize_row_u8_scalar, row m with scales[m], into xq rows Kp apart.
void quantize_rows_u8(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                      uint8_t* xq);
void int_gemm(const IntGemmWeight& w, const uint8_t* xq, const float* row_scales, int64_t M, const float* bias,
              float* y, int64_t ldy);
// Blocks [nb0, nb0 + nb) of a 4-bit weight expanded to the 8-bit layout (64 bytes per block and k4 step) into out
// (64-byte aligned).
void expand_panel(const IntGemmWeight& w, int64_t nb0, int64_t nb, uint8_t* out);
}  // namespace avx512vnni
namespace amx {
// As avx512vnni::int_gemm, on AMX-INT8 tiles. w.Kp must be a multiple of 64 and, with several groups, w.group too;
// xq must hold M rounded up to 16 rows (tiles load 16 rows; the extra rows' results are discarded).
void int_gemm(const IntGemmWeight& w, const uint8_t* xq, const float* row_scales, int64_t M, const float* bias,
              float* y, int64_t ldy);
}  // namespace amx
// Rows per pass of the AVX-VNNI kernel (6 rows x 16 channels: 12 of the 16 ymm registers accumulate).
inline constexpr int64_t kIntVnniTileRows = 6;
namespace avxvnni {
// As avx2::int16_block_sums for the VNNI layout (u8 codes q + 128, Kp apart, 1..kIntVnniTileRows rows): the signed
// sums, compensation removed, at acc[(r * groups + g) * 16 + c].
void int_block_sums(const IntGemmWeight& w, const uint8_t* x, int64_t rows, int64_t nb, int32_t* acc);
}  // namespace avxvnni
namespace avx2 {
// amax[m] = max |x[m][0..K)|.
void row_absmax(const float* x, int64_t M, int64_t ldx, int64_t K, float* amax);
// The codes of quantize_row_u8_scalar minus 128 (the signed code), as int16, row m with scales[m], rows Kp apart
// (K..Kp-1 zero).
void quantize_rows_i16(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                       int16_t* out);
// quantize_row_u8_scalar's codes (q + 128) as bytes, row m with scales[m], rows Kp apart (K..Kp-1: 128, code 0).
void quantize_rows_u8(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t Kp, const float* scales, int qmax,
                      uint8_t* out);
// As int16_block_sums for the vpmaddubsw layout: rows 1..kInt4PairTileRows of u8 codes (Kp apart), the signed sums
// (compensation removed) at acc[(r * groups + g) * 16 + c].
void int4_pair_block_sums(const Int4PairWeight& w, const uint8_t* x, int64_t rows, int64_t nb, int32_t* acc);
// Exact int32 group sums of `rows` (1..kInt16TileRows) quantized rows x (Kp apart) against channel block nb:
// acc[(r * groups + g) * 16 + c] = sum over k of group g of x[r][k] * w[nb * 16 + c][k].
void int16_block_sums(const Int16Weight& w, const int16_t* x, int64_t rows, int64_t nb, int32_t* acc);
// Weight-only, codes of <= 4 bits (w.nibbles): y rows [0, M) for output channels [n0, n1), M <= 8 (qgemv_avx2.cpp).
void weight_only_gemv4(const WeightOnlyWeight& w, const float* x, int64_t M, int64_t ldx, const float* bias,
                       float* y, int64_t ldy, int64_t n0, int64_t n1);
// Decodes rows [n0, n1) of a <= 4-bit weight into FP32 (row stride K).
void decode_rows4(const WeightOnlyWeight& w, int64_t n0, int64_t n1, float* out);
}  // namespace avx2
namespace avx512 {
// y rows [0, M) for output channels [n0, n1), M <= 8.
void weight_only_gemv(const WeightOnlyWeight& w, const float* x, int64_t M, int64_t ldx, const float* bias,
                      float* y, int64_t ldy, int64_t n0, int64_t n1);
// Decodes rows [n0, n1) of the weight into FP32 (row stride K).
void decode_rows(const WeightOnlyWeight& w, int64_t n0, int64_t n1, float* out);
// y rows [0, M) for the output channels of blocks [nb0, nb1), M <= 8.
void blocked_gemv(const BlockedNibbleWeight& w, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                  int64_t ldy, int64_t nb0, int64_t nb1);
// Decodes rows [n0, n1) of the weight into FP32 (row stride K).
void blocked_decode_rows(const BlockedNibbleWeight& w, int64_t n0, int64_t n1, float* out);
}  // namespace avx512

}  // namespace quasr::kernels::detail
