// k-means codebooks: better than uniform INTb at the same bits on Gaussian data, sorted FP16 centroids,
// deterministic across runs, seeds and thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "format_test_util.h"
#include "quasr/core/parallel.h"

namespace quasr::formats {
namespace {

using testing::gaussian;
using testing::mse;

std::vector<float> centroids_of(const QTensor& q) {
  std::vector<float> c(q.codebook.size() / 2);
  for (size_t j = 0; j < c.size(); ++j) c[j] = fp16_to_fp32(static_cast<uint16_t>(q.codebook[2 * j] | q.codebook[2 * j + 1] << 8));
  return c;
}

TEST(Kmeans, MseNoWorseThanUniformIntRtn) {
  const std::vector<int64_t> shape = {32, 512};
  const std::vector<float> x = gaussian(32 * 512, 21);
  for (int b : {2, 3, 4, 6, 8}) {
    for (const char* g : {"pt", "pc"}) {
      SCOPED_TRACE(std::to_string(b) + " bits " + g);
      const std::string km = "kmeans" + std::to_string(b) + ":" + g;
      const double e_km = mse(x, quantize(x, shape, QuantSpec::parse(km)).dequantize());
      // Best of the uniform variants at the same granularity (restricted, full range, affine).
      double e_int = 1e300;
      for (const char* v : {"", ":full", ":zp"}) {
        const std::string in = "int" + std::to_string(b) + ":" + g + v + ":s=fp32";
        e_int = std::min(e_int, mse(x, quantize(x, shape, QuantSpec::parse(in)).dequantize()));
      }
      EXPECT_LE(e_km, e_int) << km;
      if (b <= 4) {
        EXPECT_LT(e_km, 0.8 * e_int) << km << ": Lloyd should clearly beat uniform levels on Gaussians";
      }
    }
  }
}

TEST(Kmeans, CentroidsSortedAndCodesPointToTheNearest) {
  const std::vector<int64_t> shape = {8, 300};
  const std::vector<float> x = testing::with_outliers(8 * 300, 4);
  for (const char* spec : {"kmeans4:pc", "kmeans3:pt", "kmeans6:pc1"}) {
    SCOPED_TRACE(spec);
    const QTensor q = quantize(x, shape, QuantSpec::parse(spec));
    const std::vector<float> c = centroids_of(q);
    const int k = 1 << traits(q.spec.format).bits;
    ASSERT_EQ(c.size() % k, 0u);
    for (size_t b = 0; b < c.size() / k; ++b)
      EXPECT_TRUE(std::is_sorted(c.begin() + b * k, c.begin() + (b + 1) * k)) << "codebook " << b;
    // Each element decodes to its nearest centroid of its codebook.
    const std::vector<float> y = q.dequantize();
    for (size_t i = 0; i < x.size(); ++i) {
      const int64_t b = block_index(shape, q.spec.granularity, static_cast<int64_t>(i));
      double best = 1e300;
      for (int j = 0; j < k; ++j) best = std::min(best, std::fabs(double(x[i]) - c[b * k + j]));
      ASSERT_EQ(std::fabs(double(x[i]) - y[i]), best) << i;
    }
  }
}

TEST(Kmeans, DeterministicAcrossRunsAndThreadsSeedMatters) {
  const std::vector<int64_t> shape = {16, 4096};  // several k-means++ reduction chunks per tensor
  const std::vector<float> x = gaussian(16 * 4096, 31);
  for (const char* spec : {"kmeans4:pt", "kmeans2:pc", "kmeans8:pt:iters=5"}) {
    SCOPED_TRACE(spec);
    set_num_threads(1);
    const std::vector<uint8_t> a = quantize(x, shape, QuantSpec::parse(spec)).serialize();
    set_num_threads(2);
    const std::vector<uint8_t> b = quantize(x, shape, QuantSpec::parse(spec)).serialize();
    const std::vector<uint8_t> c = quantize(x, shape, QuantSpec::parse(spec)).serialize();
    EXPECT_EQ(a, b);
    EXPECT_EQ(b, c);
  }
  set_num_threads(0);
  const QTensor s1 = quantize(x, shape, QuantSpec::parse("kmeans3:pt:seed=1:iters=1"));
  const QTensor s2 = quantize(x, shape, QuantSpec::parse("kmeans3:pt:seed=2:iters=1"));
  EXPECT_NE(s1.codebook, s2.codebook) << "different seeds should give different k-means++ starts";
}

TEST(Kmeans, FewerDistinctValuesThanCentroids) {
  // 3 distinct values, 16 centroids: duplicates are allowed, every value is reproduced exactly.
  std::vector<float> x(100);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 3) - 1) * 0.5f;
  const QTensor q = quantize(x, std::vector<int64_t>{100}, QuantSpec::parse("kmeans4:pt"));
  EXPECT_EQ(q.dequantize(), x);
  const std::vector<float> c = centroids_of(q);
  EXPECT_TRUE(std::is_sorted(c.begin(), c.end()));
  // A constant tensor.
  const std::vector<float> k(50, 0.25f);
  EXPECT_EQ(quantize(k, std::vector<int64_t>{50}, QuantSpec::parse("kmeans2:pt")).dequantize(), k);
}

}  // namespace
}  // namespace quasr::formats
