// Accumulation of a Linear input's statistics (quant/calibration.h): per-channel max / sum |x| / histograms,
// X^T X and a reservoir sample, chunk by chunk.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/kernels/gemm.h"
#include "quasr/quant/calibration.h"

namespace quasr::quant {

uint64_t stream_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the name, then mixed with the seed through one Rng draw
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return Rng(seed ^ h).next_u64();
}

InputStatsAccumulator::InputStatsAccumulator(int64_t k, const CollectOptions& options, uint64_t seed)
    : rng_(seed), max_samples_(options.max_samples) {
  if (k < 1) throw InvalidArgument("calibration: input width must be >= 1, got " + std::to_string(k));
  if (options.max_samples < 0)
    throw InvalidArgument("calibration: sample count must be >= 0, got " + std::to_string(options.max_samples));
  if (options.hist_bins < 2 || options.hist_bins % 2 != 0)
    throw InvalidArgument("calibration: histogram bins must be even and >= 2, got " +
                          std::to_string(options.hist_bins));
  s_.k = k;
  s_.channel_max_abs.assign(k, 0.0f);
  s_.channel_sum_abs.assign(k, 0.0);
  s_.xtx.assign(static_cast<size_t>(k * k), 0.0);
  s_.hist_bins = options.hist_bins;
  s_.channel_hist_max.assign(k, 0.0f);
  s_.channel_hist.assign(static_cast<size_t>(k * options.hist_bins), 0);
}

void InputStatsAccumulator::add(const float* x, int64_t rows, int64_t ldx) {
  if (rows <= 0) return;
  if (ldx < s_.k) throw InvalidArgument("calibration: row stride " + std::to_string(ldx) + " < width " + std::to_string(s_.k));
  const int64_t k = s_.k;
  pending_.resize(static_cast<size_t>((pending_rows_ + rows) * k));
  for (int64_t r = 0; r < rows; ++r) std::memcpy(pending_.data() + (pending_rows_ + r) * k, x + r * ldx, k * sizeof(float));
  pending_rows_ += rows;
  if (pending_rows_ >= kChunkRows) flush();
}

const InputStats& InputStatsAccumulator::finish() {
  flush();
  return s_;
}

void InputStatsAccumulator::flush() {
  const int64_t n = pending_rows_, k = s_.k, bins = s_.hist_bins;
  if (n == 0) return;
  const float* x = pending_.data();

  // Per channel: max, sum |x|, histogram. Channels are independent, each walks the rows in order: the result does
  // not depend on how channels are split over threads.
  bool finite = true;
  std::vector<uint8_t> bad(static_cast<size_t>(k), 0);
  parallel_for(0, k, 16, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      float m = 0;
      double sum = 0;
      for (int64_t r = 0; r < n; ++r) {
        const float a = std::fabs(x[r * k + j]);
        if (!std::isfinite(a)) bad[j] = 1;
        m = std::max(m, a);
        sum += a;
      }
      if (bad[j]) continue;
      s_.channel_max_abs[j] = std::max(s_.channel_max_abs[j], m);
      s_.channel_sum_abs[j] += sum;
      uint64_t* h = s_.channel_hist.data() + j * bins;
      float& range = s_.channel_hist_max[j];
      if (range == 0.0f) {
        range = m;  // first non-zero data: the range starts at this chunk's max (zeros so far sit in bin 0)
      } else {
        while (m > range) {  // double the range: bin pairs merge, counts stay exact
          for (int64_t b = 0; b < bins / 2; ++b) h[b] = h[2 * b] + h[2 * b + 1];
          std::fill(h + bins / 2, h + bins, 0);
          range *= 2.0f;
        }
      }
      const double to_bin = range > 0 ? static_cast<double>(bins) / range : 0.0;
      for (int64_t r = 0; r < n; ++r) {
        const int64_t b = static_cast<int64_t>(std::fabs(x[r * k + j]) * to_bin);
        ++h[std::min(b, bins - 1)];
      }
    }
  });
  for (int64_t j = 0; j < k; ++j) finite = finite && !bad[j];
  if (!finite) throw InvalidArgument("calibration: the input has a non-finite value (NaN or infinity)");

  // X^T X of the chunk in FP32 (sgemm is bit-identical for any thread count), summed in double. The upper triangle
  // is mirrored so the sum is exactly symmetric (sgemm's tiles need not round (i, j) and (j, i) alike), which lets the
  // file store one triangle.
  std::vector<float> chunk(static_cast<size_t>(k * k));
  kernels::sgemm(true, false, k, k, n, 1.0f, x, k, x, k, 0.0f, chunk.data(), k);
  parallel_for(0, k, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < k; ++j) s_.xtx[i * k + j] += i <= j ? chunk[i * k + j] : chunk[j * k + i];
  });

  // Reservoir sampling (algorithm R) over rows in arrival order.
  for (int64_t r = 0; r < n; ++r) {
    const int64_t seen = s_.rows + r;
    int64_t slot = -1;
    if (seen < max_samples_) {
      slot = seen;
      s_.samples.resize(static_cast<size_t>((seen + 1) * k));
      s_.n_samples = seen + 1;
    } else if (max_samples_ > 0) {
      const uint64_t j = rng_.below(static_cast<uint64_t>(seen) + 1);
      if (j < static_cast<uint64_t>(max_samples_)) slot = static_cast<int64_t>(j);
    }
    if (slot >= 0) std::memcpy(s_.samples.data() + slot * k, x + r * k, k * sizeof(float));
  }
  s_.rows += n;
  pending_rows_ = 0;
  pending_.clear();
}

}  // namespace quasr::quant
