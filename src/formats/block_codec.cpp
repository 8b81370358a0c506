// BlockCodec (formats/block_codec.h): quantize()'s per-block pieces, by calling the same functions the reference
// quantizers call — ScaledCodec / quantize_block for the scaled families, the MX and NVFP4 primitives of
// quantize_microscaled.cpp for those — so there is one rounding per format.
#include "quasr/formats/block_codec.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "format_impl.h"
#include "quasr/core/error.h"
#include "scaled_codec.h"

namespace quasr::formats {

BlockCodec::BlockCodec(const QuantSpec& spec, float tensor_amax) : spec_(spec), kind_(traits(spec.format).kind) {
  spec_.validate();
  switch (kind_) {
    case FormatKind::kInteger:
    case FormatKind::kMinifloat:
    case FormatKind::kLookup: scaled_ = std::make_unique<detail::ScaledCodec>(spec_); break;
    case FormatKind::kMx: break;
    case FormatKind::kNvfp4:
      if (!std::isfinite(tensor_amax) || tensor_amax < 0)
        throw InvalidArgument("BlockCodec: NVFP4 tensor absmax must be finite and >= 0, got " +
                              std::to_string(tensor_amax));
      nvfp4_t_ = detail::nvfp4_tensor_divisor_scale(tensor_amax);
      tensor_scale_ = nvfp4_t_ > 0 ? nvfp4_t_ : 1.0f;
      break;
    case FormatKind::kCodebook:
    case FormatKind::kStorage:
      throw InvalidArgument(std::string("format ") + traits(spec.format).name +
                            " has no block scale to fix (codebooks and storage formats are quantized whole)");
  }
}

BlockCodec::~BlockCodec() = default;

BlockScale BlockCodec::choose_scale(std::span<const float> values, int64_t block) const {
  BlockScale s;
  if (scaled_) {
    std::vector<uint8_t> codes(values.size()), scratch;
    const detail::BlockResult r = detail::quantize_block(*scaled_, spec_, values, block, codes, scratch);
    s.scale = r.scale;
    s.zero_point = r.zp;
    return s;
  }
  float amax = 0;
  for (float v : values) amax = std::max(amax, std::fabs(v));
  if (kind_ == FormatKind::kMx) {
    s.stored = detail::mx_scale_code(amax, *traits(spec_.format).element);
    s.scale = e8m0_decode(s.stored);
  } else {  // NVFP4
    s.stored = detail::nvfp4_block_scale_code(amax, nvfp4_t_);
    s.scale = minifloat_decode(kFp8E4M3, s.stored) * tensor_scale_;  // the FP32 product quantize_nvfp4 uses
  }
  return s;
}

uint8_t BlockCodec::encode(float x, const BlockScale& s) const {
  if (scaled_) return scaled_->encode(x, s.scale, s.zero_point);
  if (kind_ == FormatKind::kMx) return detail::mx_encode(*traits(spec_.format).element, x, s.stored);
  return detail::nvfp4_encode(x, s.scale);
}

float BlockCodec::decode(uint8_t code, const BlockScale& s) const {
  if (scaled_) return scaled_->decode(code, s.scale, s.zero_point);
  const MinifloatSpec& e = kind_ == FormatKind::kMx ? *traits(spec_.format).element : kFp4E2M1;
  return minifloat_decode(e, code) * s.scale;  // dequantize_mx / dequantize_nvfp4: element value times scale
}

QTensor BlockCodec::assemble(std::span<const int64_t> shape, std::span<const uint8_t> codes,
                             std::span<const BlockScale> scales) const {
  const StorageBytes want = expected_storage(spec_, shape);  // validates the granularity against the shape
  const int64_t nb = num_blocks(shape, spec_.granularity);
  if (codes.size() != want.elements || scales.size() != static_cast<size_t>(nb))
    throw InvalidArgument("BlockCodec::assemble: " + std::to_string(codes.size()) + " codes and " +
                          std::to_string(scales.size()) + " scales for " + spec_.to_string() + " needing " +
                          std::to_string(want.elements) + " and " + std::to_string(nb));
  const FormatTraits& f = traits(spec_.format);
  QTensor q;
  q.spec = spec_;
  q.shape.assign(shape.begin(), shape.end());
  q.payload = pack_bits(codes, f.bits);
  if (scaled_) {
    q.scales.resize(want.scales);
    std::vector<uint8_t> zps(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) {
      detail::write_scale(q.scales, b, scales[b].scale, spec_.scale_type);
      zps[b] = scales[b].zero_point;
    }
    if (spec_.zero_point) q.zero_points = pack_bits(zps, f.bits);
  } else {
    q.scales.resize(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) q.scales[b] = scales[b].stored;
    if (kind_ == FormatKind::kNvfp4) q.tensor_scale = tensor_scale_;
  }
  return q;
}

}  // namespace quasr::formats
