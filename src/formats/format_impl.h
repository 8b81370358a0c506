#pragma once
// Internal to src/formats: the reference quantizers of each format family (the traits table points at them) and
// the helpers they share — argument validation, block mapping, scale storage, rounding. Not a public header.
#include <cstdint>
#include <span>
#include <vector>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/formats/traits.h"

namespace quasr::formats::detail {

// ---- reference quantizers / dequantizers, one pair per FormatKind ------------------------------------------------
// Every quantize_* validates its arguments (validate_quantize_args) first, so the table's function pointers are
// safe to call directly; every dequantize_* checks `out` has numel() elements.
QTensor quantize_scaled(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
void dequantize_scaled(const QTensor& q, std::span<float> out);  // kInteger, kMinifloat, kLookup
QTensor quantize_mx(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
void dequantize_mx(const QTensor& q, std::span<float> out);
QTensor quantize_nvfp4(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
void dequantize_nvfp4(const QTensor& q, std::span<float> out);
QTensor quantize_codebook(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
void dequantize_codebook(const QTensor& q, std::span<float> out);
QTensor quantize_storage(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
void dequantize_storage(const QTensor& q, std::span<float> out);

// ---- MX / NVFP4 block primitives (quantize_microscaled.cpp; quantize_mx/quantize_nvfp4 and BlockCodec use them) ----
uint8_t mx_scale_code(float block_amax, const MinifloatSpec& element);  // E8M0 code; 127 for an all-zero block
uint8_t mx_encode(const MinifloatSpec& element, float v, uint8_t scale_code);
float nvfp4_tensor_divisor_scale(float tensor_amax);                   // t = amax / (448 * 6), 0 if amax = 0
uint8_t nvfp4_block_scale_code(float block_amax, float t);             // E4M3(amax_b / (6 t)); 0 if t = 0
uint8_t nvfp4_encode(float v, float s_eff);                            // E2M1(v / s_eff); 0 if s_eff = 0

// ---- shared helpers --------------------------------------------------------------------------------------------
// Spec valid, shape rank 1..8 with every dim >= 1 and product == x.size(), x finite (names the first bad index),
// granularity fits the shape (axis in range, group divides the last axis).
void validate_quantize_args(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
// Checks a dequantize destination and that q's sections have the sizes its spec and shape require.
void check_dequantize_args(const QTensor& q, std::span<float> out);


// Maps a flat row-major index to its block (scale) index, without division where the layout allows.
struct BlockMapper {
  GranularityKind kind = GranularityKind::kPerTensor;
  int64_t stride = 1;  // per-channel: product of dims after the axis
  int64_t dim = 1;     // per-channel: length of the axis
  int64_t group = 1;   // per-group: elements per group
  BlockMapper(std::span<const int64_t> shape, const Granularity& g);
  int64_t operator()(int64_t flat) const {
    switch (kind) {
      case GranularityKind::kPerTensor: return 0;
      case GranularityKind::kPerChannel: return (flat / stride) % dim;
      case GranularityKind::kPerGroup: return flat / group;
    }
    return 0;
  }
};

// Elements grouped by block: the flat indices of block b are order[offsets[b] .. offsets[b+1]), ascending.
// Per-tensor and per-group blocks are contiguous and need no index list (order stays empty, contiguous = true).
struct BlockLayout {
  bool contiguous = true;
  std::vector<int64_t> order;
  std::vector<int64_t> offsets;
  int64_t size(int64_t b) const { return offsets[b + 1] - offsets[b]; }
  // Copies block b of x into dst (dst.size() == size(b)).
  void gather(std::span<const float> x, int64_t b, std::span<float> dst) const;
  int64_t flat_index(int64_t b, int64_t i) const { return contiguous ? offsets[b] + i : order[offsets[b] + i]; }
};
BlockLayout group_elements(std::span<const int64_t> shape, const Granularity& g);

// Stored value of a scale: `s` rounded to type `t` (round to nearest even). Throws InvalidArgument naming the
// block when the scale exceeds the type's finite range (e.g. an FP16 scale above 65504): saturating it would
// silently clip the block.
float round_scale(double s, ScaleType t, int64_t block);
void write_scale(std::vector<uint8_t>& scales, int64_t block, float stored, ScaleType t);
float read_scale(std::span<const uint8_t> scales, int64_t block, ScaleType t);

// Integer rounding as QuantSpec::rounding says.
double round_integer(double t, Rounding r);

// Little-endian scalar I/O used by the storage formats, scales and serialize.
void put_u16(uint8_t* p, uint16_t v);
uint16_t get_u16(const uint8_t* p);
void put_u32(uint8_t* p, uint32_t v);
uint32_t get_u32(const uint8_t* p);
void put_f32(uint8_t* p, float v);
float get_f32(const uint8_t* p);

}  // namespace quasr::formats::detail
