#pragma once
// Test data and scalar (double) references for the GPTQ and AWQ tests: correlated calibration inputs with
// outlier channels, their Hessian, and layer-output errors computed directly from the definition.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/formats/qtensor.h"
#include "quasr/quant/calibration.h"

namespace quasr::quant::testing {

// X = Z A [m][k]: Z standard normal, A = I + a random mixing (N(0, 1/k) entries), so channels are correlated as
// real activations are; then `outliers` channels (every k/outliers-th) are scaled by `outlier_gain`.
inline std::vector<float> correlated_inputs(int64_t m, int64_t k, uint64_t seed, int outliers = 4,
                                            float outlier_gain = 12.0f) {
  Rng rng(seed);
  std::vector<double> a(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) a[i * k + j] = (i == j ? 1.0 : 0.0) + rng.normal() * 1.5 / std::sqrt(double(k));
  std::vector<double> z(static_cast<size_t>(k));
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r) {
    for (auto& v : z) v = rng.normal();
    for (int64_t j = 0; j < k; ++j) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += z[i] * a[i * k + j];
      x[r * k + j] = static_cast<float>(s);
    }
  }
  for (int o = 0; o < outliers; ++o) {
    const int64_t j = (o * k) / outliers + 3;
    for (int64_t r = 0; r < m; ++r) x[r * k + j] *= outlier_gain;
  }
  return x;
}

inline std::vector<float> random_weight(int64_t n, int64_t k, uint64_t seed, double sigma = 0.05) {
  Rng rng(seed);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (auto& v : w) v = static_cast<float>(rng.normal() * sigma);
  return w;
}

// sum over rows of x x^T, in double.
inline std::vector<double> gram(const std::vector<float>& x, int64_t m, int64_t k) {
  std::vector<double> h(static_cast<size_t>(k * k), 0.0);
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = &x[r * k];
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j <= i; ++j) h[i * k + j] += double(xr[i]) * xr[j];
  }
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j) h[j * k + i] = h[i * k + j];
  return h;
}

// ||X W^T - X What^T||^2 = sum_r d_r^T H d_r with d = W - What, H = X^T X.
inline double layer_error(const std::vector<double>& h, const std::vector<float>& w, const std::vector<float>& what,
                          int64_t n, int64_t k) {
  double total = 0;
  std::vector<double> d(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < k; ++j) d[j] = double(w[r * k + j]) - what[r * k + j];
    for (int64_t i = 0; i < k; ++i) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += h[i * k + j] * d[j];
      total += d[i] * s;
    }
  }
  return total;
}

// sum over samples and outputs of (x W^T - (x * input_scale) Q^T)^2, straight from the definition (double).
inline double scaled_output_error(const std::vector<float>& x, int64_t m, const std::vector<float>& w,
                                  const std::vector<float>& q, const std::vector<float>& input_scale, int64_t n,
                                  int64_t k) {
  double total = 0;
  for (int64_t s = 0; s < m; ++s)
    for (int64_t r = 0; r < n; ++r) {
      double y = 0, yq = 0;
      for (int64_t j = 0; j < k; ++j) {
        y += double(x[s * k + j]) * w[r * k + j];
        yq += double(x[s * k + j] * input_scale[j]) * q[r * k + j];
      }
      total += (y - yq) * (y - yq);
    }
  return total;
}

// Calibration statistics as the calibration module fills them, from the rows of x (every row kept as a sample).
inline InputStats stats_from(const std::vector<float>& x, int64_t m, int64_t k) {
  InputStats s;
  s.k = k;
  s.rows = m;
  s.n_samples = m;
  s.samples = x;
  s.channel_sum_abs.assign(static_cast<size_t>(k), 0.0);
  s.channel_max_abs.assign(static_cast<size_t>(k), 0.0f);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < k; ++j) {
      s.channel_sum_abs[j] += std::fabs(double(x[r * k + j]));
      s.channel_max_abs[j] = std::max(s.channel_max_abs[j], std::fabs(x[r * k + j]));
    }
  s.xtx = gram(x, m, k);
  return s;
}

inline bool same_bytes(const formats::QTensor& a, const formats::QTensor& b) {
  return a.spec == b.spec && a.shape == b.shape && a.payload == b.payload && a.scales == b.scales &&
         a.zero_points == b.zero_points && a.codebook == b.codebook && a.tensor_scale == b.tensor_scale;
}

// f() must throw InvalidArgument whose message contains `needle`.
inline void expect_invalid(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no InvalidArgument; expected one mentioning '" << needle << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace quasr::quant::testing
