// The traits table is complete and consistent, and QuantSpec's text form round-trips and rejects bad tokens
// with messages that name them.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "quasr/core/error.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/formats/traits.h"

namespace quasr::formats {
namespace {

// Expects parse(text) to throw InvalidArgument whose message contains every string in `needles`.
void expect_parse_error(const std::string& text, std::initializer_list<std::string> needles) {
  try {
    QuantSpec::parse(text);
    ADD_FAILURE() << "parse('" << text << "') did not throw";
  } catch (const InvalidArgument& e) {
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "message for '" << text << "': " << e.what();
  }
}

TEST(Traits, EveryFormatHasEveryEntry) {
  ASSERT_EQ(all_formats().size(), static_cast<size_t>(FormatId::kCount));
  for (size_t i = 0; i < all_formats().size(); ++i) {
    const FormatTraits& f = all_formats()[i];
    SCOPED_TRACE(f.name ? f.name : "(null)");
    EXPECT_EQ(static_cast<size_t>(f.id), i);
    EXPECT_EQ(&traits(f.id), &f);
    ASSERT_NE(f.name, nullptr);
    EXPECT_GT(std::string(f.name).size(), 0u);
    ASSERT_NE(f.description, nullptr);
    EXPECT_GT(std::string(f.description).size(), 10u);
    EXPECT_GE(f.bits, 2);
    EXPECT_LE(f.bits, 32);
    EXPECT_NE(f.quantize_ref, nullptr);
    EXPECT_NE(f.dequantize_ref, nullptr);
    EXPECT_LT(static_cast<size_t>(f.pairs_with), all_formats().size());
    // Tolerance: a bound exists (finite, non-negative); only FP32 storage is exact.
    EXPECT_TRUE(std::isfinite(f.tolerance.per_block) && f.tolerance.per_block >= 0);
    EXPECT_TRUE(std::isfinite(f.tolerance.per_tensor) && f.tolerance.per_tensor >= 0);
    EXPECT_TRUE(std::isfinite(f.tolerance.absolute) && f.tolerance.absolute >= 0);
    if (f.id != FormatId::kFp32) {
      EXPECT_GT(f.tolerance.per_block, 0);
    }
    // Element codec where the kind needs one.
    const bool needs_element = f.kind == FormatKind::kMinifloat || f.kind == FormatKind::kMx ||
                               f.kind == FormatKind::kNvfp4;
    EXPECT_EQ(f.element != nullptr, needs_element);
    if (f.element) {
      EXPECT_EQ(f.element->bits(), f.bits);
    }
    // Scale and granularity rules.
    const bool scaled = f.kind != FormatKind::kCodebook && f.kind != FormatKind::kStorage;
    EXPECT_EQ(f.scale != ScaleType::kNone, scaled);
    EXPECT_EQ(f.fixed_block != 0, f.kind == FormatKind::kMx || f.kind == FormatKind::kNvfp4);
    if (f.fixed_block) {
      EXPECT_EQ(f.default_granularity, GranularityKind::kPerGroup);
      EXPECT_EQ(f.default_group, f.fixed_block);
      EXPECT_FALSE(f.allows_granularity);
    }
    if (f.default_granularity == GranularityKind::kPerGroup) {
      EXPECT_GT(f.default_group, 0);
    }
    EXPECT_EQ(f.allows_zero_point, f.kind == FormatKind::kInteger);
    // The defaults validate and describe the row.
    const QuantSpec d = QuantSpec::defaults(f.id);
    EXPECT_NO_THROW(d.validate());
    EXPECT_EQ(d.scale_type, f.scale);
    // error_bound() of the defaults is the row's tolerance (one formula).
    const ErrorBound b = error_bound(d);
    EXPECT_EQ(b.per_block, f.tolerance.per_block);
    EXPECT_EQ(b.per_tensor, f.tolerance.per_tensor);
    EXPECT_EQ(b.absolute, f.tolerance.absolute);
  }
}

TEST(Traits, NamesAreUniqueAndParseRoundTrips) {
  std::set<std::string> names;
  for (const FormatTraits& f : all_formats()) {
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate name " << f.name;
    EXPECT_EQ(find_format(f.name), &f);
    const QuantSpec s = QuantSpec::parse(f.name);
    EXPECT_EQ(s, QuantSpec::defaults(f.id)) << f.name;
    EXPECT_EQ(QuantSpec::parse(s.to_string()), s) << s.to_string();
    EXPECT_NE(format_names().find(f.name), std::string::npos);
  }
  EXPECT_EQ(find_format("int9"), nullptr);
  EXPECT_EQ(find_format(""), nullptr);
}

TEST(Traits, BitsMatchTheFormatNames) {
  for (int b = 2; b <= 8; ++b) EXPECT_EQ(find_format("int" + std::to_string(b))->bits, b);
  for (int b : {2, 3, 4, 6, 8}) EXPECT_EQ(find_format("kmeans" + std::to_string(b))->bits, b);
  EXPECT_EQ(traits(FormatId::kMxfp4).fixed_block, 32);
  EXPECT_EQ(traits(FormatId::kNvfp4).fixed_block, 16);
  EXPECT_EQ(traits(FormatId::kNvfp4).scale, ScaleType::kE4M3);
  EXPECT_EQ(traits(FormatId::kMxfp6E2M3).scale, ScaleType::kE8M0);
  EXPECT_EQ(traits(FormatId::kNf4).default_group, 64);
}

TEST(Traits, ErrorBoundFormulasByHand) {
  // INT4 restricted: 0.5 / 7 of block absmax, plus FP16 scale rounding (2^-11 relative, clipping 2^-11).
  const double u16 = std::ldexp(1.0, -11);
  EXPECT_NEAR(traits(FormatId::kInt4).tolerance.per_block, 0.5 / 7 * (1 + u16) + u16, 2e-6);
  // INT8: the affine variant's bound (S <= 2 amax / 255, its stored-scale clipping up to 2u) is the larger one.
  EXPECT_NEAR(traits(FormatId::kInt8).tolerance.per_block,
              std::max(0.5 / 127 * (1 + u16) + u16, 1.0 / 255 * (1 + u16) + 2 * u16), 2e-6);
  // E4M3 scaled to 448: half an ulp of the top binade [256, 448] is 16, /448.
  EXPECT_NEAR(traits(FormatId::kFp8E4M3).tolerance.per_block, 16.0 / 448 * (1 + u16) + u16, 2e-6);
  // MXFP4: half ulp 2^-2 relative, clipping 1 - 6/8 = 0.25.
  EXPECT_NEAR(traits(FormatId::kMxfp4).tolerance.per_block, 0.25, 2e-6);
  // MXFP8 E4M3: clipping 1 - 448/512 = 0.125 dominates rounding 2^-4.
  EXPECT_NEAR(traits(FormatId::kMxfp8E4M3).tolerance.per_block, 0.125, 2e-6);
  // NVFP4: (1 + 2^-4) / 6.
  EXPECT_NEAR(traits(FormatId::kNvfp4).tolerance.per_block, (1 + 1.0 / 16) / 6, 2e-6);
  // NF4: half the widest gap (between -1 and -0.6962).
  EXPECT_NEAR(traits(FormatId::kNf4).tolerance.per_block, 0.5 * (1 - 0.6961928009986877) * (1 + u16) + u16, 2e-6);
  // Scale type changes the bound: BF16 scales are coarser than FP16.
  QuantSpec s = QuantSpec::parse("int4:g128:s=bf16");
  EXPECT_GT(error_bound(s).per_block, traits(FormatId::kInt4).tolerance.per_block);
}

TEST(QuantSpec, ParseAndToStringRoundTrip) {
  for (const char* text :
       {"int4:g128", "int8:pc", "int8:pc1", "int4:g64:zp", "int8:pt:full:away", "fp8_e4m3:pc", "mxfp4", "nvfp4",
        "nf4:g64", "kmeans4:pc", "int4:g128:mse", "int8:pc:p99.9", "int3:g32:s=fp32", "int5:g7:s=bf16:zp:away",
        "fp6_e2m3:pc2:p99.99", "kmeans3:pt:iters=7:seed=42", "bf16", "fp4_e2m1:g16:mse", "nf4:pc:s=fp32"}) {
    SCOPED_TRACE(text);
    const QuantSpec s = QuantSpec::parse(text);
    EXPECT_EQ(s.to_string(), text);  // these are written in canonical form
    EXPECT_EQ(QuantSpec::parse(s.to_string()), s);
  }
  // Non-canonical spellings normalise.
  EXPECT_EQ(QuantSpec::parse("int4").to_string(), "int4:g128");
  EXPECT_EQ(QuantSpec::parse("int4:max:even").to_string(), "int4:g128");
  EXPECT_EQ(QuantSpec::parse("int8:pc0").to_string(), "int8:pc");
  EXPECT_EQ(QuantSpec::parse("kmeans4:iters=25").to_string(), "kmeans4:pt");
}

TEST(QuantSpec, ParsedFieldsAreRight) {
  const QuantSpec a = QuantSpec::parse("int4:g64:zp:away:s=fp32");
  EXPECT_EQ(a.format, FormatId::kInt4);
  EXPECT_EQ(a.granularity.kind, GranularityKind::kPerGroup);
  EXPECT_EQ(a.granularity.group, 64);
  EXPECT_TRUE(a.zero_point);
  EXPECT_EQ(a.rounding, Rounding::kHalfAway);
  EXPECT_EQ(a.scale_type, ScaleType::kFp32);
  const QuantSpec b = QuantSpec::parse("int8:pc1:p99.5");
  EXPECT_EQ(b.granularity.kind, GranularityKind::kPerChannel);
  EXPECT_EQ(b.granularity.axis, 1);
  EXPECT_EQ(b.estimator, ScaleEstimator::kPercentile);
  EXPECT_DOUBLE_EQ(b.percentile, 99.5);
  const QuantSpec c = QuantSpec::parse("kmeans6:pc:iters=3:seed=9");
  EXPECT_EQ(c.kmeans_iters, 3);
  EXPECT_EQ(c.seed, 9u);
}

TEST(QuantSpec, ErrorsNameTheOffendingToken) {
  expect_parse_error("int9", {"'int9'", "2 to 8 bits"});
  expect_parse_error("int1", {"'int1'", "2 to 8 bits"});
  expect_parse_error("int0:g128", {"'int0'"});
  expect_parse_error("kmeans5", {"'kmeans5'", "2, 3, 4, 6 or 8"});
  expect_parse_error("float4", {"'float4'", "unknown format", "int4"});
  expect_parse_error("", {"empty"});
  expect_parse_error("int4:g0", {"'g0'", ">= 1"});
  expect_parse_error("int4:g-4", {"'g-4'", "positive integer"});
  expect_parse_error("int4:g", {"'g'"});
  expect_parse_error("int4:g12x", {"'g12x'"});
  expect_parse_error("int4:g99999999999999999999999", {"'g99999999999999999999999'"});
  expect_parse_error("int4:pcx", {"'pcx'"});
  expect_parse_error("int4:pc9", {"'pc9'", "axis"});
  expect_parse_error("int4:bogus", {"'bogus'", "unknown option"});
  expect_parse_error("int4::g64", {"''", "empty option"});
  expect_parse_error("int4:g64:", {"empty option"});
  expect_parse_error("int4:g64:g32", {"'g32'", "twice"});
  expect_parse_error("int4:s=fp8", {"'s=fp8'"});
  expect_parse_error("int4:p", {"'p'"});
  expect_parse_error("int4:p0", {"'p0'", "(0, 100]"});
  expect_parse_error("int4:p100.5", {"'p100.5'"});
  expect_parse_error("int4:zp:full", {"'full'"});
  expect_parse_error("mxfp4:g64", {"'g64'", "fixes its granularity"});
  expect_parse_error("nvfp4:pc", {"'pc'", "fixes its granularity"});
  expect_parse_error("mxfp4:s=fp16", {"'s=fp16'", "e8m0"});
  expect_parse_error("mxfp4:mse", {"'mse'"});
  expect_parse_error("fp16:g32", {"'g32'", "storage format"});
  expect_parse_error("bf16:s=fp32", {"'s=fp32'", "no scale"});
  expect_parse_error("fp8_e4m3:zp", {"'zp'"});
  expect_parse_error("nf4:away", {"'away'"});
  expect_parse_error("kmeans4:g64", {"'g64'"});
  expect_parse_error("kmeans4:mse", {"'mse'"});
  expect_parse_error("int4:iters=5", {"'iters=5'"});
  expect_parse_error("kmeans4:iters=0", {"'iters=0'"});
  expect_parse_error("kmeans4:seed=-1", {"'seed=-1'"});
}

TEST(QuantSpec, ValidateRejectsHandBuiltNonsense) {
  QuantSpec s = QuantSpec::defaults(FormatId::kInt4);
  s.granularity.group = 0;
  EXPECT_THROW(s.validate(), InvalidArgument);
  s.granularity.group = -8;
  EXPECT_THROW(s.validate(), InvalidArgument);
  s = QuantSpec::defaults(FormatId::kInt4);
  s.granularity = Granularity{GranularityKind::kPerChannel, -1, 0};
  EXPECT_THROW(s.validate(), InvalidArgument);
  s = QuantSpec::defaults(FormatId::kInt4);
  s.scale_type = ScaleType::kE8M0;
  EXPECT_THROW(s.validate(), InvalidArgument);
  s = QuantSpec::defaults(FormatId::kInt4);
  s.estimator = ScaleEstimator::kPercentile;
  s.percentile = 0;
  EXPECT_THROW(s.validate(), InvalidArgument);
  s = QuantSpec::defaults(FormatId::kKmeans4);
  s.kmeans_iters = 0;
  EXPECT_THROW(s.validate(), InvalidArgument);
  s = QuantSpec{};
  s.format = FormatId::kCount;  // not a row
  EXPECT_THROW(s.validate(), InvalidArgument);
}

}  // namespace
}  // namespace quasr::formats
