// Scale estimators: the MSE search never does worse than max-abs on a block (ratio 1 is a candidate), and
// percentile clips the largest values as specified.
#include <gtest/gtest.h>

#include <vector>

#include "format_test_util.h"

namespace quasr::formats {
namespace {

using testing::mse;
using testing::with_outliers;

// Per-block squared error.
std::vector<double> block_sse(const std::vector<float>& x, const std::vector<int64_t>& shape, const QTensor& q) {
  const std::vector<float> y = q.dequantize();
  std::vector<double> e(static_cast<size_t>(q.num_blocks()), 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = double(x[i]) - y[i];
    e[block_index(shape, q.spec.granularity, static_cast<int64_t>(i))] += d * d;
  }
  return e;
}

TEST(Estimators, MseSearchNeverWorseThanMaxAbsPerBlock) {
  const std::vector<int64_t> shape = {16, 256};
  const std::vector<float> x = with_outliers(16 * 256, 12);
  for (const char* base : {"int4:g64", "int3:pc", "int8:pc1", "int4:g128:zp", "fp4_e2m1:g32", "fp6_e3m2:pc",
                           "nf4:g64", "fp8_e4m3:pt"}) {
    SCOPED_TRACE(base);
    const QTensor qmax = quantize(x, shape, QuantSpec::parse(base));
    const QTensor qmse = quantize(x, shape, QuantSpec::parse(std::string(base) + ":mse"));
    const std::vector<double> a = block_sse(x, shape, qmax), b = block_sse(x, shape, qmse);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_LE(b[i], a[i] * (1 + 1e-12)) << "block " << i;
    // On outlier-heavy data at low bits, clipping pays off overall.
    if (std::string(base).rfind("int3", 0) == 0 || std::string(base).rfind("int4", 0) == 0) {
      EXPECT_LT(mse(x, qmse.dequantize()), mse(x, qmax.dequantize()));
    }
  }
}

TEST(Estimators, PercentileClipsAtThePercentileOfAbsValues) {
  // |x| = 1..100 (one block): p90 with numpy's linear interpolation = 1 + 0.9 * 99 = 90.1; int8 restricted
  // scale = 90.1 / 127 (FP32), so 100 clips to 127 * s = 90.1 and 50 is kept to within s/2.
  std::vector<float> x(100);
  for (int i = 0; i < 100; ++i) x[i] = static_cast<float>((i % 2 ? -1 : 1) * (i + 1));
  const QTensor q = quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("int8:pt:p90:s=fp32"));
  const float s = static_cast<float>(90.1 / 127);
  const std::vector<float> y = q.dequantize();
  EXPECT_EQ(y[99], -127 * s);  // x = -100
  EXPECT_EQ(y[98], 127 * s);   // x = 99
  EXPECT_NEAR(y[49], x[49], s / 2 + 1e-6);
  // p100 equals max-abs.
  EXPECT_EQ(quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("int8:pt:p100")).serialize().size(),
            quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("int8:pt")).serialize().size() + 5);
  EXPECT_EQ(quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("int8:pt:p100")).dequantize(),
            quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("int8:pt")).dequantize());
}

TEST(Estimators, PercentileWithZeroPointClipsBothTails) {
  // Values 0..99 shifted by -20: p95 / p5 tails; affine range [-15.05, 74.05].
  std::vector<float> x(100);
  for (int i = 0; i < 100; ++i) x[i] = static_cast<float>(i - 20);
  const QTensor q = quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("int8:pt:zp:p95:s=fp32"));
  const std::vector<float> y = q.dequantize();
  const float lo = *std::min_element(y.begin(), y.end()), hi = *std::max_element(y.begin(), y.end());
  const double S = (74.05 + 15.05) / 255;
  EXPECT_NEAR(lo, -15.05, S);
  EXPECT_NEAR(hi, 74.05, S);
}

}  // namespace
}  // namespace quasr::formats
