// BlockCodec (formats/block_codec.h): choosing each block's scale from its values, encoding them and assembling
// gives exactly quantize()'s bytes, and decode gives dequantize()'s values, for every format with scales at
// several granularities and options; fixed scales then round other values the same way; bad use is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "format_test_util.h"
#include "quasr/core/error.h"
#include "quasr/formats/block_codec.h"

namespace quasr::formats {
namespace {

using testing::with_outliers;

// Every scaled format at its default spec, plus granularities and options that change the scale arithmetic.
std::vector<std::string> scaled_specs() {
  std::vector<std::string> specs;
  for (const FormatTraits& f : all_formats())
    if (f.kind != FormatKind::kCodebook && f.kind != FormatKind::kStorage) specs.push_back(f.name);
  for (const char* s : {"int4:pt", "int4:pc", "int8:pc1", "int3:g16", "int4:g32:zp", "int5:g64:full:away",
                        "int4:g32:mse", "int4:g32:p99.5", "int4:g32:zp:p99", "int4:g64:s=bf16", "int8:pc:s=fp32",
                        "fp8_e4m3:g32", "fp6_e2m3:pt", "nf4:pc", "nf4:g32:mse"})
    specs.push_back(s);
  return specs;
}

TEST(BlockCodec, ReproducesQuantizeForEveryScaledFormat) {
  const std::vector<int64_t> shape = {6, 128};
  const std::vector<float> x = with_outliers(6 * 128, 7);
  for (const std::string& text : scaled_specs()) {
    SCOPED_TRACE(text);
    const QuantSpec spec = QuantSpec::parse(text);
    const QTensor want = quantize(x, shape, spec);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    const BlockCodec codec(spec, amax);
    const int64_t nb = num_blocks(shape, spec.granularity);
    std::vector<std::vector<float>> values(static_cast<size_t>(nb));
    for (size_t i = 0; i < x.size(); ++i)
      values[block_index(shape, spec.granularity, static_cast<int64_t>(i))].push_back(x[i]);
    std::vector<BlockScale> scales(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) scales[b] = codec.choose_scale(values[b], b);
    std::vector<uint8_t> codes(x.size());
    std::vector<float> decoded(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const BlockScale& s = scales[block_index(shape, spec.granularity, static_cast<int64_t>(i))];
      codes[i] = codec.encode(x[i], s);
      decoded[i] = codec.decode(codes[i], s);
    }
    const QTensor got = codec.assemble(shape, codes, scales);
    EXPECT_EQ(got.payload, want.payload);
    EXPECT_EQ(got.scales, want.scales);
    EXPECT_EQ(got.zero_points, want.zero_points);
    EXPECT_EQ(got.tensor_scale, want.tensor_scale);
    EXPECT_TRUE(got.spec == want.spec);
    EXPECT_EQ(decoded, want.dequantize());
  }
}

TEST(BlockCodec, FixedScaleRoundsOtherValuesLikeAQuantizedBlock) {
  // A block's scale fixed from some values rounds new values to the nearest code of that scale (saturating):
  // checked against a brute-force search over every code.
  for (const char* text : {"int4:g32", "int3:g32:zp", "fp4_e2m1:g32", "nf4:g32", "mxfp4", "nvfp4"}) {
    SCOPED_TRACE(text);
    const QuantSpec spec = QuantSpec::parse(text);
    const std::vector<float> v = with_outliers(32, 3);
    const BlockCodec codec(spec, 40.0f);
    const BlockScale s = codec.choose_scale(v, 0);
    const int codes = 1 << traits(spec.format).bits;
    const std::vector<float> probe = testing::gaussian(200, 9, 3.0);
    for (float p : probe) {
      const float got = codec.decode(codec.encode(p, s), s);
      double best = INFINITY;
      for (int c = 0; c < codes; ++c) {
        // Symmetric restricted integers never use the code -2^(b-1) (its range is +-(2^(b-1) - 1)).
        const bool restricted = traits(spec.format).kind == FormatKind::kInteger && !spec.zero_point &&
                                spec.int_range == IntRange::kRestricted;
        if (restricted && c == codes / 2) continue;
        const float d = codec.decode(static_cast<uint8_t>(c), s);
        if (std::isfinite(d)) best = std::min(best, std::fabs(double(d) - p));
      }
      EXPECT_NEAR(std::fabs(double(got) - p), best, 1e-6 * (1 + std::fabs(p))) << p;
    }
  }
}

TEST(BlockCodec, RefusesFormatsWithoutScalesAndBadSizes) {
  EXPECT_THROW(BlockCodec(QuantSpec::parse("kmeans4"), 1.0f), InvalidArgument);
  EXPECT_THROW(BlockCodec(QuantSpec::parse("fp16"), 1.0f), InvalidArgument);
  EXPECT_THROW(BlockCodec(QuantSpec::parse("nvfp4"), NAN), InvalidArgument);
  const BlockCodec codec(QuantSpec::parse("int4:g32"), 1.0f);
  const std::vector<int64_t> shape = {2, 64};
  std::vector<uint8_t> codes(128);
  std::vector<BlockScale> scales(3);  // needs 4
  EXPECT_THROW(codec.assemble(shape, codes, scales), InvalidArgument);
  scales.resize(4);
  codes.resize(100);
  EXPECT_THROW(codec.assemble(shape, codes, scales), InvalidArgument);
  const std::vector<int64_t> odd = {2, 48};  // 32 does not divide 48
  EXPECT_THROW(codec.assemble(odd, std::vector<uint8_t>(96), std::vector<BlockScale>(3)), InvalidArgument);
}

}  // namespace
}  // namespace quasr::formats
