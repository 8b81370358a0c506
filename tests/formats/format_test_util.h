#pragma once
// Shared helpers for the formats tests: deterministic test data and the error-bound check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "quasr/core/rng.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/formats/traits.h"

namespace quasr::formats::testing {

inline int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// N(0, sigma^2) values from quasr::Rng (identical on every machine).
inline std::vector<float> gaussian(int64_t n, uint64_t seed, double sigma = 1.0) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = static_cast<float>(sigma * rng.normal());
  return x;
}

// Gaussian with ~1% outliers 10-30x larger (what real weight and activation tensors look like).
inline std::vector<float> with_outliers(int64_t n, uint64_t seed) {
  std::vector<float> x = gaussian(n, seed);
  Rng rng(seed ^ 0xabcdef);
  for (float& v : x)
    if (rng.uniform() < 0.01) v *= static_cast<float>(10 + 20 * rng.uniform());
  return x;
}

struct BoundCheck {
  double worst_ratio = 0;      // max over elements of error / bound (must be <= 1)
  double max_rel_block = 0;    // max over elements of error / block absmax (how tight the bound is)
  int64_t worst_index = -1;
};

// Checks |x - x_hat| <= per_block * amax_block + per_tensor * amax_tensor + absolute for every element.
inline BoundCheck check_bound(const std::vector<float>& x, const std::vector<int64_t>& shape, const QTensor& q,
                              const ErrorBound& b) {
  const std::vector<float> y = q.dequantize();
  const FormatTraits& f = traits(q.spec.format);
  const bool blocked = f.kind != FormatKind::kStorage;
  const int64_t nb = blocked ? num_blocks(shape, q.spec.granularity) : 1;
  std::vector<double> amax_b(nb, 0.0);
  std::vector<int64_t> blk(x.size(), 0);
  double amax_t = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (blocked) blk[i] = block_index(shape, q.spec.granularity, static_cast<int64_t>(i));
    amax_b[blk[i]] = std::max(amax_b[blk[i]], std::fabs(double(x[i])));
    amax_t = std::max(amax_t, std::fabs(double(x[i])));
  }
  BoundCheck r;
  for (size_t i = 0; i < x.size(); ++i) {
    const double err = std::fabs(double(x[i]) - double(y[i]));
    const double bound = b.per_block * amax_b[blk[i]] + b.per_tensor * amax_t + b.absolute;
    const double ratio = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0);
    if (ratio > r.worst_ratio) {
      r.worst_ratio = ratio;
      r.worst_index = static_cast<int64_t>(i);
    }
    if (amax_b[blk[i]] > 0) r.max_rel_block = std::max(r.max_rel_block, err / amax_b[blk[i]]);
  }
  return r;
}

inline double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / static_cast<double>(a.size());
}

}  // namespace quasr::formats::testing
