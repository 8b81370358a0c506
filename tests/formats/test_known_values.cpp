// Known values computed by hand (the arithmetic is in the comments), for each format family.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "format_test_util.h"
#include "quasr/core/error.h"

namespace quasr::formats {
namespace {

std::vector<float> roundtrip(const std::vector<float>& x, const char* spec) {
  return quantize(x, std::vector<int64_t>{static_cast<int64_t>(x.size())}, QuantSpec::parse(spec)).dequantize();
}

TEST(KnownValues, Int4SymmetricOnATinyVector) {
  // amax 3.5, qmax 7 -> s = 0.5 (exact in FP16: 0x3800). x/s = 7, -3.5, 1, 0, -7, 3.6, 0.5, -0.6
  // half-even: 7, -4, 1, 0, -7, 4, 0, -1.
  const std::vector<float> x = {3.5f, -1.75f, 0.5f, 0.0f, -3.5f, 1.8f, 0.25f, -0.3f};
  const QTensor q = quantize(x, std::vector<int64_t>{8}, QuantSpec::parse("int4:pt"));
  // 4-bit two's complement codes 7, C, 1, 0, 9, 4, 0, F packed low nibble first.
  EXPECT_EQ(q.payload, (std::vector<uint8_t>{0xC7, 0x01, 0x49, 0xF0}));
  EXPECT_EQ(q.scales, (std::vector<uint8_t>{0x00, 0x38}));
  EXPECT_EQ(q.dequantize(), (std::vector<float>{3.5f, -2.0f, 0.5f, 0.0f, -3.5f, 2.0f, 0.0f, -0.5f}));
  // half-away: 0.5 -> 1 (0.25 decodes to 0.5); -3.5 -> -4 either way.
  EXPECT_EQ(roundtrip(x, "int4:pt:away"), (std::vector<float>{3.5f, -2.0f, 0.5f, 0.0f, -3.5f, 2.0f, 0.5f, -0.5f}));
}

TEST(KnownValues, HalfEvenAndHalfAwayDifferOnTies) {
  // amax 7 -> s = 1: ties at 2.5, -2.5, 0.5, -0.5, 1.5.
  const std::vector<float> x = {7, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, 2.4f};
  EXPECT_EQ(roundtrip(x, "int4:pt:even"), (std::vector<float>{7, 2, -2, 0, -0, 2, 2}));
  EXPECT_EQ(roundtrip(x, "int4:pt:away"), (std::vector<float>{7, 3, -3, 1, -1, 2, 2}));
}

TEST(KnownValues, Int4FullRangeUsesMinus8) {
  // Full range: s = amax / (8 - 0.5) = 1. 7.5 -> round 8 (even) -> clamp 7; -7.5 -> -8 (in range).
  EXPECT_EQ(roundtrip({7.5f, -7.5f, 3.0f}, "int4:pt:full"), (std::vector<float>{7, -8, 3}));
}

TEST(KnownValues, AffineZeroPointMakesZeroExact) {
  // lo = -1, hi = 3: S = 4/15, Z = round(1 / S) = round(3.75) = 4; q = round(x/S + 4).
  const std::vector<float> x = {-1.0f, 0.0f, 0.2f, 3.0f};
  const QTensor q = quantize(x, std::vector<int64_t>{4}, QuantSpec::parse("int4:pt:zp:s=fp32"));
  const float s = static_cast<float>(4.0 / 15.0);
  EXPECT_EQ(q.zero_points, (std::vector<uint8_t>{4}));
  const std::vector<float> y = q.dequantize();
  EXPECT_EQ(y[0], s * -4.0f);  // round(-3.75 + 4) = 0
  EXPECT_EQ(y[1], 0.0f);       // exactly zero
  EXPECT_EQ(y[2], s * 1.0f);   // round(0.75 + 4) = 5
  EXPECT_EQ(y[3], s * 11.0f);  // round(11.25 + 4) = 15
  // All-positive data: Z = 0.
  EXPECT_EQ(quantize(std::vector<float>{1.0f, 2.0f}, std::vector<int64_t>{2}, QuantSpec::parse("int8:pt:zp")).zero_points,
            (std::vector<uint8_t>{0}));
  // Random data with zeros sprinkled in: zeros are exact in every block.
  std::vector<float> r = testing::gaussian(4 * 128, 8);
  for (size_t i = 0; i < r.size(); i += 7) r[i] = 0.0f;
  for (const char* spec : {"int2:g32:zp", "int3:g64:zp:away", "int8:pc1:zp", "int4:g128:zp:mse", "int5:pt:zp:p99"}) {
    const std::vector<float> d =
        quantize(r, std::vector<int64_t>{4, 128}, QuantSpec::parse(spec)).dequantize();
    for (size_t i = 0; i < r.size(); i += 7) ASSERT_EQ(d[i], 0.0f) << spec << " index " << i;
  }
}

TEST(KnownValues, ScaledMinifloatUsesAmaxOverMaxFinite) {
  // fp4_e2m1, s = 12 / 6 = 2 (exact): 12 -> 6, 5 -> 2.5 -> tie between 2 and 3 -> even (2) -> 4,
  // 1.1 -> 0.55 -> 0.5 -> 1, -7 -> -3.5 -> tie between 3 and 4 -> 4 (even mantissa) -> -8.
  EXPECT_EQ(roundtrip({12, 5, 1.1f, -7}, "fp4_e2m1:pt"), (std::vector<float>{12, 4, 1, -8}));
  // fp8_e4m3, s = 448 / 448 = 1: values already on the grid survive, 300 -> 288 (grid step 32 in [256, 448]).
  EXPECT_EQ(roundtrip({448, -0.5f, 300, 17}, "fp8_e4m3:pt"), (std::vector<float>{448, -0.5f, 288, 16}));
}

TEST(KnownValues, MxScaleOfABlock) {
  // Block 0: amax 5 -> floor(log2 5) = 2, E2M1 emax = 2 -> X = 2^0 (E8M0 code 127); 5 is a tie between 4 and 6
  // -> 4 (even mantissa); 3.2 -> 3; -0.3 -> -0.5 (nearest of 0, 0.5).
  // Block 1: amax 0.9 -> floor(log2 0.9) = -1 -> X = 2^-3 (code 124); 0.9 / X = 7.2 saturates to 6 -> 0.75;
  // 0.3 / X = 2.4 -> 2 -> 0.25.
  std::vector<float> x(64, 0.0f);
  x[0] = 5.0f;
  x[1] = 3.2f;
  x[2] = -0.3f;
  x[32] = 0.9f;
  x[33] = 0.3f;
  const QTensor q = quantize(x, std::vector<int64_t>{64}, QuantSpec::parse("mxfp4"));
  EXPECT_EQ(q.scales, (std::vector<uint8_t>{127, 124}));
  const std::vector<float> y = q.dequantize();
  EXPECT_EQ(y[0], 4.0f);
  EXPECT_EQ(y[1], 3.0f);
  EXPECT_EQ(y[2], -0.5f);
  EXPECT_EQ(y[32], 0.75f);
  EXPECT_EQ(y[33], 0.25f);
  // E2M1 (bias 1) code of 4.0 = 1.0 * 2^2 is 0 11 0 = 0x6, in the low nibble of byte 0; 3.0 = 1.5 * 2^1 is
  // 0 10 1 = 0x5, in its high nibble.
  EXPECT_EQ(q.payload[0], 0x56);
  // MXFP8 E4M3: amax 1000 -> floor(log2) = 9, emax 8 -> X = 2 (code 128).
  std::vector<float> z(32, 0.0f);
  z[0] = 1000.0f;
  EXPECT_EQ(quantize(z, std::vector<int64_t>{32}, QuantSpec::parse("mxfp8_e4m3")).scales,
            (std::vector<uint8_t>{128}));
  // All-zero block: X = 1 (code 127).
  EXPECT_EQ(quantize(std::vector<float>(32, 0.0f), std::vector<int64_t>{32}, QuantSpec::parse("mxfp6_e3m2")).scales,
            (std::vector<uint8_t>{127}));
}

TEST(KnownValues, Nvfp4TwoLevelScales) {
  // Tensor amax 2688 -> t = 2688 / (448 * 6) = 1.
  // Block 0 (amax 2688): sb = E4M3(2688 / 6) = 448 (code 0x7E), s_eff = 448; 2688 / 448 = 6 -> 2688.
  // Block 1 (amax 100): sb = E4M3(16.67) = 16 (code 0x58), s_eff = 16; 100/16 = 6.25 saturates to 6 -> 96;
  // 40/16 = 2.5 ties to 2 -> 32; -9/16 = -0.5625 -> -0.5 -> -8.
  std::vector<float> x(32, 0.0f);
  x[0] = 2688.0f;
  x[16] = 100.0f;
  x[17] = 40.0f;
  x[18] = -9.0f;
  const QTensor q = quantize(x, std::vector<int64_t>{2, 16}, QuantSpec::parse("nvfp4"));
  EXPECT_EQ(q.tensor_scale, 1.0f);
  EXPECT_EQ(q.scales, (std::vector<uint8_t>{0x7E, 0x58}));
  const std::vector<float> y = q.dequantize();
  EXPECT_EQ(y[0], 2688.0f);
  EXPECT_EQ(y[16], 96.0f);
  EXPECT_EQ(y[17], 32.0f);
  EXPECT_EQ(y[18], -8.0f);
  EXPECT_EQ(q.storage().tensor_scale, 4u);
  // All-zero tensor: tensor scale 1, block scales 0, zeros out.
  const QTensor z = quantize(std::vector<float>(16, 0.0f), std::vector<int64_t>{16}, QuantSpec::parse("nvfp4"));
  EXPECT_EQ(z.tensor_scale, 1.0f);
  EXPECT_EQ(z.scales, (std::vector<uint8_t>{0}));
}

// Inverse standard-normal CDF by bisection on erfc (accurate to ~1e-15, plenty here).
double norm_ppf(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

TEST(KnownValues, Nf4LevelsFollowQloraConstruction) {
  // QLoRA / bitsandbytes create_normal_map(offset = 0.9677083): 8 positive quantiles of N(0,1) at
  // linspace(offset, 0.5, 9)[:-1], 7 negative ones at linspace(offset, 0.5, 8)[:-1], and 0; divided by the max.
  const double off = 0.9677083;
  std::vector<double> v = {0.0};
  for (int j = 0; j < 8; ++j) v.push_back(norm_ppf(off + (0.5 - off) * j / 8));
  for (int j = 0; j < 7; ++j) v.push_back(-norm_ppf(off + (0.5 - off) * j / 7));
  std::sort(v.begin(), v.end());
  const auto levels = nf4_levels();
  ASSERT_EQ(levels.size(), 16u);
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(levels[i], v[i] / v.back(), 1e-6) << i;
  EXPECT_EQ(levels[7], 0.0f);
  EXPECT_EQ(levels[0], -1.0f);
  EXPECT_EQ(levels[15], 1.0f);
  // Quantizing: amax 2 -> s = 2; 1.0 / 2 = 0.5 -> nearest level 0.4407 (index 12) ... 0.5626 is 0.0626 away,
  // 0.4407 is 0.0593 away -> 0.44070982933044434 * 2.
  const std::vector<float> y = roundtrip({2.0f, 1.0f, 0.0f, -2.0f}, "nf4:pt:s=fp32");
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], 2.0f * 0.44070982933044434f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], -2.0f);
}

TEST(KnownValues, StorageFormatsSaturateInsteadOfInf) {
  const std::vector<float> x = {1e6f, -1e6f, 65504.0f, 65519.0f, 1.0f / 3, 3e38f, -3.4e38f};
  const std::vector<float> h = roundtrip(x, "fp16");
  EXPECT_EQ(h[0], 65504.0f);
  EXPECT_EQ(h[1], -65504.0f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], 65504.0f);
  EXPECT_EQ(h[4], fp16_to_fp32(fp32_to_fp16(1.0f / 3)));
  EXPECT_EQ(h[5], 65504.0f);
  const std::vector<float> b = roundtrip(x, "bf16");
  EXPECT_EQ(b[0], bf16_to_fp32(fp32_to_bf16(1e6f)));
  EXPECT_EQ(b[6], -bf16_to_fp32(0x7F7F));  // -3.4e38 rounds up past the top: saturates, no Inf
  for (float v : b) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(roundtrip(x, "fp32"), x);
}

}  // namespace
}  // namespace quasr::formats
