// Block-Hadamard rotations (quant/hadamard.h): exactly orthogonal, the fast transform equals the matrix, products
// are unchanged by rotating both sides, X^T X rotates exactly, and the point of it: an outlier is spread over its
// block, so 4-bit grouped rounding of a weight with outliers loses less.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quasr/core/error.h"
#include "quasr/formats/qtensor.h"
#include "quasr/quant/hadamard.h"
#include "quasr/quant/ptq.h"

namespace quasr::quant {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

TEST(Hadamard, BlockIsTheLargestPowerOfTwoDividingTheWidth) {
  // Whisper's reduction widths: tiny d = 384 and 4d = 1536, base 512 / 2048, conv1 80 x 3, conv2 384 x 3.
  EXPECT_EQ(hadamard_block(384), 128);
  EXPECT_EQ(hadamard_block(1536), 512);
  EXPECT_EQ(hadamard_block(512), 512);
  EXPECT_EQ(hadamard_block(2048), 2048);
  EXPECT_EQ(hadamard_block(240), 16);
  EXPECT_EQ(hadamard_block(1152), 128);
  EXPECT_EQ(hadamard_block(7), 1);
  EXPECT_EQ(hadamard_block(1 << 14), 4096);
  EXPECT_EQ(hadamard_block(1 << 14, 64), 64);
}

TEST(Hadamard, TheUnnormalizedMatrixIsExactlyOrthogonalAndSymmetric) {
  for (int64_t block : {2, 4, 8, 64, 256}) {
    const int64_t k = 3 * block;  // three blocks
    std::vector<int64_t> h(static_cast<size_t>(k * k), 0);
    for (int64_t i = 0; i < k; ++i) h[i * k + i] = 1;
    hadamard_rotate_rows_unnormalized(h.data(), k, k, block);  // row i = e_i H
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        ASSERT_EQ(h[i * k + j], h[j * k + i]) << "block " << block;
        const bool same_block = i / block == j / block;
        ASSERT_EQ(std::abs(h[i * k + j]), same_block ? 1 : 0) << "block " << block << " at " << i << "," << j;
        int64_t dot = 0;  // (H H^T)_ij in integers
        for (int64_t c = 0; c < k; ++c) dot += h[i * k + c] * h[j * k + c];
        ASSERT_EQ(dot, i == j ? block : 0) << "block " << block << " at " << i << "," << j;
      }
  }
}

TEST(Hadamard, NormalizedRotationPreservesNormsAndIsItsOwnInverse) {
  const int64_t k = 1536, block = 512, rows = 5;
  const std::vector<float> x = gaussian(rows * k, 1);
  std::vector<float> y = x;
  hadamard_rotate_rows(y.data(), rows, k, k, block);
  for (int64_t r = 0; r < rows; ++r) {
    double nx = 0, ny = 0;
    for (int64_t j = 0; j < k; ++j) nx += double(x[r * k + j]) * x[r * k + j], ny += double(y[r * k + j]) * y[r * k + j];
    EXPECT_NEAR(ny / nx, 1.0, 1e-5);
  }
  EXPECT_NE(y, x);
  hadamard_rotate_rows(y.data(), rows, k, k, block);  // H H = I
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(y[i], x[i], 1e-5f) << i;
}

TEST(Hadamard, RotatingInputAndWeightLeavesTheProductUnchanged) {
  const int64_t k = 384, n = 7, rows = 4, block = hadamard_block(k);
  std::vector<float> x = gaussian(rows * k, 2), w = gaussian(n * k, 3);
  std::vector<double> ref(rows * n, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < n; ++o)
      for (int64_t j = 0; j < k; ++j) ref[r * n + o] += double(x[r * k + j]) * w[o * k + j];
  hadamard_rotate_rows(x.data(), rows, k, k, block);
  hadamard_rotate_rows(w.data(), n, k, k, block);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < n; ++o) {
      double y = 0;
      for (int64_t j = 0; j < k; ++j) y += double(x[r * k + j]) * w[o * k + j];
      EXPECT_NEAR(y, ref[r * n + o], 1e-4 * std::sqrt(double(k)));
    }
}

TEST(Hadamard, SecondMomentsRotateExactly) {
  const int64_t k = 48, rows = 40, block = 16;
  std::vector<float> x = gaussian(rows * k, 4);
  for (int64_t r = 0; r < rows; ++r) x[r * k + 5] *= 30.0f;  // an outlier channel
  auto moments = [&](const std::vector<float>& v) {
    std::vector<double> m(k * k, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) m[i * k + j] += double(v[r * k + i]) * v[r * k + j];
    return m;
  };
  const std::vector<double> rotated = hadamard_rotate_xtx(moments(x), k, block);
  hadamard_rotate_rows(x.data(), rows, k, k, block);
  const std::vector<double> direct = moments(x);
  for (size_t i = 0; i < direct.size(); ++i) ASSERT_NEAR(rotated[i], direct[i], 1e-3 * (1 + std::fabs(direct[i]))) << i;

  InputStats s;
  s.k = k;
  s.rows = rows;
  s.xtx = moments(gaussian(rows * k, 4));
  s.n_samples = 2;
  s.samples = gaussian(2 * k, 5);
  s.channel_max_abs.assign(k, 1.0f);
  const InputStats r = rotate_input_stats(s, block);
  EXPECT_EQ(r.xtx, hadamard_rotate_xtx(s.xtx, k, block));
  std::vector<float> samples = s.samples;
  hadamard_rotate_rows(samples.data(), 2, k, k, block);
  EXPECT_EQ(r.samples, samples);
  EXPECT_TRUE(r.channel_max_abs.empty()) << "per-channel maxima of x H are not derivable from those of x";
}

TEST(Hadamard, SpreadsOutliersSoGroupedInt4RoundingLosesLess) {
  // A weight with a few large entries per row, as trained transformer weights have.
  const int64_t n = 64, k = 512, block = 128;
  std::vector<float> w = gaussian(n * k, 6);
  std::mt19937 g(7);
  for (int64_t r = 0; r < n; ++r)
    for (int i = 0; i < 3; ++i) w[r * k + g() % k] *= 25.0f;
  const auto spec = formats::QuantSpec::parse("int4:g128");
  auto error = [&](const std::vector<float>& a, const std::vector<float>& b) {
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return e;
  };
  const std::vector<int64_t> shape{n, k};
  const double plain = error(w, formats::quantize(w, shape, spec).dequantize());
  std::vector<float> wh = w;
  hadamard_rotate_rows(wh.data(), n, k, k, block);
  std::vector<float> back = formats::quantize(wh, shape, spec).dequantize();
  hadamard_rotate_rows(back.data(), n, k, k, block);  // (Q(W H)) H: the weight the rotated layer effectively uses
  const double rotated = error(w, back);
  std::printf("[ratio] int4:g128 reconstruction error, rotated / plain, weight with outliers: %.3f\n", rotated / plain);
  EXPECT_LT(rotated, 0.5 * plain);
}

TEST(Hadamard, BadBlocksAreRefusedNamingTheProblem) {
  std::vector<float> x(48, 1.0f);
  for (int64_t block : {0, 1, 3, 12, 32, 96}) {
    try {
      hadamard_rotate_rows(x.data(), 1, 48, 48, block);
      ADD_FAILURE() << "block " << block << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("must be a power of two >= 2 that divides the input width 48"),
                std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(hadamard_rotate_xtx(std::vector<double>(10), 4, 2), InvalidArgument);
}

}  // namespace
}  // namespace quasr::quant
