// Shared pieces of GPTQ and AWQ (ptq_common.h), and the per-weight step of the quantization pipeline
// (round_weight, divide_input_stats; quant/ptq.h). The algorithms are in gptq.cpp and awq.cpp.
#include <algorithm>
#include <cmath>
#include <string>

#include "ptq_common.h"
#include "quasr/core/error.h"
#include "quasr/formats/qtensor.h"
#include "quasr/quant/hadamard.h"
#include "quasr/quant/ptq.h"

namespace quasr::quant::detail {

void check_weight(const char* who, std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec) {
  const std::string p = std::string(who) + ": ";
  if (n < 1 || k < 1)
    throw InvalidArgument(p + "weight must be at least 1 x 1, got " + std::to_string(n) + " x " + std::to_string(k));
  if (static_cast<int64_t>(w.size()) / n != k || static_cast<int64_t>(w.size()) % n != 0)
    throw InvalidArgument(p + "weight has " + std::to_string(w.size()) + " values, expected n * k = " +
                          std::to_string(n) + " * " + std::to_string(k));
  for (size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i]))
      throw InvalidArgument(p + "non-finite weight (" + (std::isnan(w[i]) ? "NaN" : "Inf") + ") at row " +
                            std::to_string(static_cast<int64_t>(i) / k) + ", column " +
                            std::to_string(static_cast<int64_t>(i) % k));
  const int64_t shape[2] = {n, k};
  try {
    (void)formats::expected_storage(spec, shape);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(p + "spec " + spec.to_string() + " does not fit the " + std::to_string(n) + " x " +
                          std::to_string(k) + " weight: " + e.what());
  }
}

WeightBlocks::WeightBlocks(int64_t n_, int64_t k_, const formats::Granularity& g)
    : kind(g.kind), axis(g.axis), n(n_), k(k_), group(g.group) {}

int64_t WeightBlocks::count() const {
  switch (kind) {
    case formats::GranularityKind::kPerTensor: return 1;
    case formats::GranularityKind::kPerChannel: return axis == 0 ? n : k;
    case formats::GranularityKind::kPerGroup: return n * (k / group);
  }
  return 1;
}

int64_t WeightBlocks::of(int64_t r, int64_t c) const {
  switch (kind) {
    case formats::GranularityKind::kPerTensor: return 0;
    case formats::GranularityKind::kPerChannel: return axis == 0 ? r : c;
    case formats::GranularityKind::kPerGroup: return r * (k / group) + c / group;
  }
  return 0;
}

WeightBlocks::Rect WeightBlocks::rect(int64_t b) const {
  switch (kind) {
    case formats::GranularityKind::kPerTensor: return {0, n, 0, k};
    case formats::GranularityKind::kPerChannel: return axis == 0 ? Rect{b, b + 1, 0, k} : Rect{0, n, b, b + 1};
    case formats::GranularityKind::kPerGroup: {
      const int64_t per_row = k / group, c0 = (b % per_row) * group;
      return {b / per_row, b / per_row + 1, c0, c0 + group};
    }
  }
  return {0, n, 0, k};
}

int64_t WeightBlocks::width() const {
  switch (kind) {
    case formats::GranularityKind::kPerTensor: return k;
    case formats::GranularityKind::kPerChannel: return axis == 0 ? k : 1;
    case formats::GranularityKind::kPerGroup: return group;
  }
  return k;
}

void WeightBlocks::gather(std::span<const float> w, int64_t b, std::vector<float>& out) const {
  const Rect r = rect(b);
  out.clear();
  out.reserve(static_cast<size_t>((r.row1 - r.row0) * (r.col1 - r.col0)));
  for (int64_t i = r.row0; i < r.row1; ++i)
    out.insert(out.end(), w.begin() + i * k + r.col0, w.begin() + i * k + r.col1);
}

float max_abs(std::span<const float> v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

}  // namespace quasr::quant::detail

namespace quasr::quant {

RoundedWeight round_weight(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                           const PtqSettings& settings, const InputStats* stats) {
  const std::vector<int64_t> shape{n, k};
  if (settings.algo == "rtn") return {formats::quantize(w, shape, spec), {}};
  if (!stats) throw InvalidArgument("algo=" + settings.algo + " needs the input statistics of the calibration");
  if (stats->k != k)
    throw InvalidArgument("the calibration's input has " + std::to_string(stats->k) + " channels, the weight " +
                          std::to_string(k) + " (was it made for this model?)");
  if (settings.algo == "gptq") {
    GptqOptions o;
    o.damp = settings.gptq_damp;
    o.block = settings.gptq_block;
    o.act_order = settings.act_order;
    return {gptq_quantize(w, n, k, spec, stats->xtx, o), {}};
  }
  if (settings.algo == "awq") {
    AwqResult r = awq_quantize(w, n, k, spec, *stats);
    return {std::move(r.qweight), std::move(r.input_scale)};
  }
  throw InvalidArgument("unknown algo=" + settings.algo + " (rtn, gptq or awq)");
}

InputStats divide_input_stats(const InputStats& s, std::span<const float> d) {
  if (static_cast<int64_t>(d.size()) != s.k)
    throw InvalidArgument("divide_input_stats: " + std::to_string(d.size()) + " divisors for an input of width " +
                          std::to_string(s.k));
  for (float v : d)
    if (!(v > 0) || !std::isfinite(v)) throw InvalidArgument("divide_input_stats: divisors must be positive and finite");
  InputStats o = s;
  const int64_t k = s.k;
  for (int64_t j = 0; j < k; ++j) {
    o.channel_max_abs[j] = static_cast<float>(s.channel_max_abs[j] / static_cast<double>(d[j]));
    o.channel_sum_abs[j] = s.channel_sum_abs[j] / d[j];
  }
  if (static_cast<int64_t>(s.xtx.size()) == k * k)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) o.xtx[i * k + j] = s.xtx[i * k + j] / (static_cast<double>(d[i]) * d[j]);
  for (int64_t r = 0; r < s.n_samples; ++r)
    for (int64_t j = 0; j < k; ++j) o.samples[r * k + j] = s.samples[r * k + j] / d[j];
  return o;
}

InputStats rotate_input_stats(const InputStats& s, int64_t block) {
  InputStats o;
  o.k = s.k;
  o.rows = s.rows;
  if (static_cast<int64_t>(s.xtx.size()) == s.k * s.k) o.xtx = hadamard_rotate_xtx(s.xtx, s.k, block);
  o.n_samples = s.n_samples;
  o.samples = s.samples;
  if (o.n_samples > 0) hadamard_rotate_rows(o.samples.data(), o.n_samples, o.k, o.k, block);
  return o;
}

}  // namespace quasr::quant
