// Bad input gets a clear InvalidArgument naming the problem; never a crash (the sanitizer pass runs these).
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "format_test_util.h"
#include "quasr/core/error.h"

namespace quasr::formats {
namespace {

void expect_error(const std::vector<float>& x, const std::vector<int64_t>& shape, const char* spec,
                  std::initializer_list<std::string> needles) {
  try {
    quantize(x, shape, QuantSpec::parse(spec));
    ADD_FAILURE() << spec << ": no error";
  } catch (const InvalidArgument& e) {
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << spec << ": " << e.what();
  }
}

TEST(BadInput, EmptyTensorsAndShapes) {
  for (const FormatTraits& f : all_formats()) {
    SCOPED_TRACE(f.name);
    EXPECT_THROW(quantize(std::vector<float>{}, std::vector<int64_t>{0}, QuantSpec::defaults(f.id)), InvalidArgument);
    EXPECT_THROW(quantize(std::vector<float>{}, std::vector<int64_t>{}, QuantSpec::defaults(f.id)), InvalidArgument);
  }
  expect_error({}, {4, 0}, "int4:pt", {"empty tensor", "dim 1", "[4, 0]"});
  expect_error({1.0f}, {}, "int4:pt", {"1 to 8 dims"});
  expect_error(std::vector<float>(1, 1.0f), {1, 1, 1, 1, 1, 1, 1, 1, 1}, "int4:pt", {"1 to 8 dims"});
  expect_error({1.0f}, {-1}, "int4:pt", {"empty tensor", "-1"});
}

TEST(BadInput, ShapeSizeMismatch) {
  expect_error(std::vector<float>(10, 1.0f), {3, 4}, "int8:pc", {"[3, 4]", "12 elements", "10"});
  expect_error(std::vector<float>(10, 1.0f), {int64_t{1} << 40, int64_t{1} << 40}, "int8:pc", {"too many"});
}

TEST(BadInput, NonFiniteWeightsNameTheIndex) {
  std::vector<float> x(24, 0.5f);
  x[13] = std::numeric_limits<float>::quiet_NaN();
  for (const FormatTraits& f : all_formats()) {
    SCOPED_TRACE(f.name);
    QuantSpec s = QuantSpec::defaults(f.id);
    if (f.allows_granularity && s.granularity.kind == GranularityKind::kPerGroup) s.granularity.group = 4;
    const std::vector<int64_t> shape = f.fixed_block ? std::vector<int64_t>{} : std::vector<int64_t>{2, 3, 4};
    if (f.fixed_block) {
      std::vector<float> y(64, 0.5f);
      y[40] = -std::numeric_limits<float>::infinity();
      try {
        quantize(y, std::vector<int64_t>{2, 32}, s);
        ADD_FAILURE() << "no error";
      } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("index 40 [1, 8]"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("Inf"), std::string::npos) << e.what();
      }
      continue;
    }
    try {
      quantize(x, shape, s);
      ADD_FAILURE() << "no error";
    } catch (const InvalidArgument& e) {
      // flat 13 of [2, 3, 4] is [1, 0, 1]
      EXPECT_NE(std::string(e.what()).find("index 13 [1, 0, 1]"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
    }
  }
}

TEST(BadInput, GroupSizesThatDoNotDivide) {
  const std::vector<float> x(3 * 100, 1.0f);
  expect_error(x, {3, 100}, "int4:g48", {"group size 48", "length 100", "[3, 100]"});
  expect_error(x, {3, 100}, "nf4:g64", {"group size 64", "length 100"});
  expect_error(x, {3, 100}, "mxfp4", {"group size 32", "length 100"});
  expect_error(std::vector<float>(3 * 40, 1.0f), {3, 40}, "nvfp4", {"group size 16", "length 40"});
}

TEST(BadInput, GroupSizeZeroOrNegativeInAHandBuiltSpec) {
  QuantSpec s = QuantSpec::parse("int4:g32");
  s.granularity.group = 0;
  EXPECT_THROW(quantize(std::vector<float>(64, 1.0f), std::vector<int64_t>{64}, s), InvalidArgument);
  s.granularity.group = -32;
  EXPECT_THROW(quantize(std::vector<float>(64, 1.0f), std::vector<int64_t>{64}, s), InvalidArgument);
  EXPECT_THROW(num_blocks(std::vector<int64_t>{64}, s.granularity), InvalidArgument);
}

TEST(BadInput, AxisOutOfRange) {
  expect_error(std::vector<float>(12, 1.0f), {3, 4}, "int8:pc2", {"axis 2", "2-D", "[3, 4]"});
  expect_error(std::vector<float>(12, 1.0f), {12}, "kmeans4:pc1", {"axis 1"});
}

TEST(BadInput, ScaleOverflowingFp16IsRejectedNotClipped) {
  // amax 1e7 with int8: s = 1e7/127 = 78740 > 65504 (FP16 max).
  std::vector<float> x = {1e7f, 1.0f};
  expect_error(x, {2}, "int8:pt", {"overflows", "fp16", "s=fp32"});
  // With an FP32 scale it works and stays within the bound.
  const QTensor q = quantize(x, std::vector<int64_t>{2}, QuantSpec::parse("int8:pt:s=fp32"));
  EXPECT_NEAR(q.dequantize()[0], 1e7f, 1e7 * error_bound(q.spec).per_block);
}

TEST(BadInput, TinyValuesGiveSubnormalOrZeroScalesNotNaN) {
  // amax 1e-9: the FP16 scale 1e-9/7 underflows to 0 -> all codes 0, decoded 0; error within the absolute term.
  const std::vector<float> x = {1e-9f, -5e-10f, 0.0f, 2e-10f};
  for (const char* spec : {"int4:pt", "int4:pt:zp", "fp8_e4m3:pt", "nf4:pt", "fp8_e5m2:pt"}) {
    SCOPED_TRACE(spec);
    const QTensor q = quantize(x, std::vector<int64_t>{4}, QuantSpec::parse(spec));
    const auto r = testing::check_bound(x, {4}, q, error_bound(q.spec));
    EXPECT_LE(r.worst_ratio, 1.0);
    for (float v : q.dequantize()) EXPECT_TRUE(std::isfinite(v));
  }
  std::vector<float> y(32, 0.0f);
  y[3] = 1e-30f;
  for (const char* spec : {"mxfp4", "nvfp4", "mxfp8_e5m2"}) {
    SCOPED_TRACE(spec);
    const QTensor q = quantize(y, std::vector<int64_t>{32}, QuantSpec::parse(spec));
    for (float v : q.dequantize()) EXPECT_TRUE(std::isfinite(v));
    EXPECT_LE(testing::check_bound(y, {32}, q, error_bound(q.spec)).worst_ratio, 1.0);
  }
}

}  // namespace
}  // namespace quasr::formats
