#pragma once
// Rounding with a scale fixed in advance, one block at a time: the pieces formats::quantize is made of, for
// algorithms that choose a block's scale from some values and then round *other* values with it. GPTQ
// (quant/ptq.h) fixes a group's scale when its column sweep reaches the group and rounds each later column of the
// group after earlier columns' errors have moved it; AWQ's clipping search chooses scales from clipped values.
//
// One source: the scale choice (estimator, storage rounding, E8M0 / E4M3 codes, NVFP4's tensor scale) and the
// element rounding are the very functions the reference quantizers call (src/formats/scaled_codec.h,
// quantize_microscaled.cpp). choose_scale on a block's values followed by encode of the same values gives
// exactly quantize()'s codes and scales, and assemble() of those gives quantize()'s bytes (tested per format).
//
// Formats: those with scales — integers (any granularity, zero point, full range, rounding), scaled FP8/FP6/FP4
// elements, NF4, MX (blocks of 32, E8M0) and NVFP4 (blocks of 16, E4M3 + FP32 tensor scale). Codebooks and
// storage formats have no scale to fix: the constructor refuses them (InvalidArgument).
#include <cstdint>
#include <memory>
#include <span>

#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"

namespace quasr::formats {

// One block's scale as the element codec uses it.
struct BlockScale {
  float scale = 0;         // effective decode multiplier (MX: 2^e; NVFP4: decode(E4M3 code) * tensor scale)
  uint8_t stored = 0;      // MX: the E8M0 code; NVFP4: the E4M3 code; unused by the others
  uint8_t zero_point = 0;  // affine integers: the zero-point code Z (x_hat = scale * (q - Z))
};

namespace detail {
class ScaledCodec;
}

class BlockCodec {
 public:
  // `spec` is validated. `tensor_amax` = max |x| over the whole tensor: it fixes NVFP4's FP32 tensor scale exactly
  // as quantize() does (the others ignore it).
  BlockCodec(const QuantSpec& spec, float tensor_amax);
  ~BlockCodec();
  BlockCodec(const BlockCodec&) = delete;
  BlockCodec& operator=(const BlockCodec&) = delete;

  // The scale quantize() gives a block holding `values` (finite; the spec's estimator and scale storage type).
  // `block` only names the block in errors (a scale overflowing FP16 storage throws InvalidArgument).
  BlockScale choose_scale(std::span<const float> values, int64_t block) const;
  // Code of x under a fixed block scale, as quantize() rounds it (saturating at the code range).
  uint8_t encode(float x, const BlockScale& s) const;
  // The value a runtime decodes from `code` under `s` (what dequantize() computes).
  float decode(uint8_t code, const BlockScale& s) const;

  // The QTensor of `shape` whose element i has codes[i] (row-major) and whose block b (formats::block_index
  // order) has scales[b]: the same bytes quantize() writes for the same codes and scales. Throws InvalidArgument
  // when the sizes do not match the spec and shape.
  QTensor assemble(std::span<const int64_t> shape, std::span<const uint8_t> codes,
                   std::span<const BlockScale> scales) const;

  const QuantSpec& spec() const { return spec_; }
  float tensor_scale() const { return tensor_scale_; }  // NVFP4's stored FP32 tensor scale; 1 otherwise

 private:
  QuantSpec spec_;
  FormatKind kind_;
  float nvfp4_t_ = 0;          // NVFP4: amax / (448 * 6) (0 for an all-zero tensor)
  float tensor_scale_ = 1.0f;  // NVFP4: nvfp4_t_, or 1 where that is 0
  std::unique_ptr<detail::ScaledCodec> scaled_;  // integers, scaled minifloats, NF4
};

}  // namespace quasr::formats
