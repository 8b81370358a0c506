// The mixed-radix FFT against a direct O(n^2) DFT evaluated in long double.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <vector>

#include "quasr/audio/fft.h"
#include "quasr/core/error.h"

namespace quasr::audio {
namespace {

using cd = std::complex<double>;

std::vector<std::complex<long double>> direct_dft(const std::vector<cd>& x) {
  const size_t n = x.size();
  std::vector<std::complex<long double>> out(n);
  for (size_t k = 0; k < n; ++k) {
    std::complex<long double> acc = 0;
    for (size_t j = 0; j < n; ++j) {
      // (j * k) mod n keeps the angle small and exact.
      const long double a = -2.0L * std::numbers::pi_v<long double> * static_cast<long double>((j * k) % n) / n;
      acc += std::complex<long double>(x[j].real(), x[j].imag()) * std::complex<long double>(std::cos(a), std::sin(a));
    }
    out[k] = acc;
  }
  return out;
}

// Max |FFT - DFT| relative to the largest DFT magnitude.
template <typename Out>
double relative_error(const Out& got, const std::vector<std::complex<long double>>& want, size_t count) {
  long double err = 0, scale = 0;
  for (size_t k = 0; k < count; ++k) {
    err = std::max(err, std::abs(std::complex<long double>(got[k].real(), got[k].imag()) - want[k]));
    scale = std::max(scale, std::abs(want[k]));
  }
  return static_cast<double>(err / std::max(scale, 1e-300L));
}

// Sizes that exercise every butterfly (4, 2, 3, 5, generic primes 7, 11, 13, 17, 31, 97) and their mixtures,
// including Whisper's 400 = 4*4*5*5 and its half, 200.
const int kComplexSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 20, 25, 27, 30, 31, 32,
                             49, 60, 64, 77, 97, 100, 121, 125, 128, 200, 243, 256, 360, 400, 1000, 1024};

TEST(Fft, ComplexMatchesDirectDft) {
  std::mt19937 rng(7);
  std::normal_distribution<double> dist;
  for (int n : kComplexSizes) {
    std::vector<cd> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (auto& v : x) v = {dist(rng), dist(rng)};
    ComplexFft fft(n);
    fft.forward(x, y);
    EXPECT_LT(relative_error(y, direct_dft(x), static_cast<size_t>(n)), 1e-14) << "n = " << n;
  }
}

TEST(Fft, ComplexImpulseAndConstant) {
  // An impulse at j0 transforms to exp(-2 pi i j0 k / n); a constant to n at k = 0 and 0 elsewhere.
  const int n = 400;
  ComplexFft fft(n);
  std::vector<cd> x(n, 0.0), y(n);
  x[3] = 1.0;
  fft.forward(x, y);
  for (int k = 0; k < n; ++k) {
    const double a = -2 * std::numbers::pi * ((3 * k) % n) / n;
    ASSERT_NEAR(y[k].real(), std::cos(a), 1e-14);
    ASSERT_NEAR(y[k].imag(), std::sin(a), 1e-14);
  }
  std::fill(x.begin(), x.end(), cd(1.0, 0.0));
  fft.forward(x, y);
  EXPECT_NEAR(y[0].real(), n, 1e-12);
  for (int k = 1; k < n; ++k) ASSERT_LT(std::abs(y[k]), 1e-12);
}

TEST(Fft, RealMatchesDirectDft) {
  std::mt19937 rng(11);
  std::normal_distribution<double> dist;
  for (int n : {2, 4, 6, 8, 10, 14, 22, 26, 34, 50, 62, 100, 160, 194, 400, 512, 800}) {
    std::vector<double> x(static_cast<size_t>(n));
    std::vector<cd> xc(static_cast<size_t>(n));
    for (size_t i = 0; i < x.size(); ++i) xc[i] = x[i] = dist(rng);
    RealFft fft(n);
    std::vector<cd> out(static_cast<size_t>(n / 2 + 1)), scratch(static_cast<size_t>(fft.scratch_size()));
    fft.forward(x, out, scratch);
    EXPECT_LT(relative_error(out, direct_dft(xc), out.size()), 1e-14) << "n = " << n;
    // Bins 0 and n/2 of a real signal are real.
    EXPECT_EQ(out.front().imag(), 0.0) << "n = " << n;
    EXPECT_NEAR(out.back().imag(), 0.0, 1e-12) << "n = " << n;
  }
}

TEST(Fft, RejectsBadSizes) {
  EXPECT_THROW(ComplexFft(0), InvalidArgument);
  EXPECT_THROW(ComplexFft(-4), InvalidArgument);
  EXPECT_THROW(RealFft(0), InvalidArgument);
  EXPECT_THROW(RealFft(7), InvalidArgument);
  RealFft fft(400);
  std::vector<double> in(399);
  std::vector<cd> out(201), scratch(static_cast<size_t>(fft.scratch_size()));
  EXPECT_THROW(fft.forward(in, out, scratch), InvalidArgument);
  in.resize(400);
  scratch.resize(10);
  EXPECT_THROW(fft.forward(in, out, scratch), InvalidArgument);
  ComplexFft cfft(8);
  std::vector<cd> a(8), b(7);
  EXPECT_THROW(cfft.forward(a, b), InvalidArgument);
}

}  // namespace
}  // namespace quasr::audio
