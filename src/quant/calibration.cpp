// Static activation scale calibrators (quant/calibration.h): max, percentile, MSE and KL over |x| histograms derived
// from the per-channel statistics, and filling a plan's static scales from a calibration.
#include "quasr/quant/calibration.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>

#include "quasr/core/error.h"
#include "quasr/quant/quantized_weight.h"

namespace quasr::quant {
namespace {

void check_divisor(const InputStats& s, std::span<const float> d) {
  if (d.empty()) return;
  if (static_cast<int64_t>(d.size()) != s.k)
    throw InvalidArgument("calibration: channel divisor has " + std::to_string(d.size()) + " entries, the input has " +
                          std::to_string(s.k) + " channels");
  for (float v : d)
    if (!(v > 0) || !std::isfinite(v))
      throw InvalidArgument("calibration: channel divisors must be positive and finite, got " + std::to_string(v));
}

void check_stats(const InputStats& s) {
  if (s.k < 1 || s.hist_bins < 1 || s.channel_max_abs.size() != static_cast<size_t>(s.k) ||
      s.channel_hist_max.size() != static_cast<size_t>(s.k) ||
      s.channel_hist.size() != static_cast<size_t>(s.k) * static_cast<size_t>(s.hist_bins))
    throw InvalidArgument("calibration: statistics have inconsistent sizes (k " + std::to_string(s.k) + ")");
  if (s.rows == 0) throw InvalidArgument("calibration: statistics of an input that saw no rows");
}

// Quantize-dequantize of `v` (>= 0) with scale `s`, exactly as the runtime's static activation path does.
void fake_quantize(formats::FormatId format, float s, std::span<const float> v, std::span<float> out) {
  kernels::ActivationQuant a;
  a.mode = kernels::ActivationQuant::Mode::kStatic;
  a.format = format;
  a.static_scale = s;
  fake_quantize_activations(a, v.data(), 1, static_cast<int64_t>(v.size()), static_cast<int64_t>(v.size()), out.data());
}

double percentile_clip(const AbsHistogram& h, double p) {
  const double total = h.total();
  if (p >= 100.0 || total <= 0) return h.max;
  const double target = total * p / 100.0, w = h.bin_width();
  double acc = 0;
  for (size_t b = 0; b < h.counts.size(); ++b) {
    if (acc + h.counts[b] >= target && h.counts[b] > 0)
      return std::min(h.max, (static_cast<double>(b) + (target - acc) / h.counts[b]) * w);
    acc += h.counts[b];
  }
  return h.max;
}

double mse_clip(const AbsHistogram& h, formats::FormatId format) {
  // Coarse grid over (0, max], then a finer one around the best coarse candidate.
  constexpr int kCoarse = 128, kFine = 32;
  double best = h.max, best_err = expected_quantization_error(h, h.max, format);
  for (int i = 1; i < kCoarse; ++i) {
    const double c = h.max * i / kCoarse;
    const double e = expected_quantization_error(h, c, format);
    if (e < best_err) best = c, best_err = e;
  }
  const double step = h.max / kCoarse, lo = std::max(step / kFine, best - step);
  for (int i = 0; i <= 2 * kFine; ++i) {
    const double c = std::min(h.max, lo + i * step / kFine);
    const double e = expected_quantization_error(h, c, format);
    if (e < best_err) best = c, best_err = e;
  }
  return best;
}

// TensorRT's smoothing: moves eps of mass onto the empty bins where the other distribution has mass, so the KL
// divergence stays finite; the non-empty bins give it up in proportion.
void smooth(std::vector<double>& p, double eps = 1e-4) {
  const size_t zeros = static_cast<size_t>(std::count(p.begin(), p.end(), 0.0));
  const size_t nonzeros = p.size() - zeros;
  if (zeros == 0 || nonzeros == 0) return;
  const double take = eps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
  for (double& v : p) v = v == 0 ? eps : v - take;
}

double kl_clip(const AbsHistogram& h, formats::FormatId format) {
  const int64_t nbins = static_cast<int64_t>(h.counts.size());
  const double w = h.bin_width(), qmax = activation_qmax(format);
  const int64_t start = std::max<int64_t>(nbins / 16, 1);
  std::vector<float> centers(static_cast<size_t>(nbins)), quantized(static_cast<size_t>(nbins));
  std::vector<double> p, q;
  double best = h.max, best_kl = std::numeric_limits<double>::infinity();
  for (int64_t i = start; i <= nbins; ++i) {
    // Reference: the first i bins, everything beyond folded into the last one (what clipping at i*w does).
    p.assign(h.counts.begin(), h.counts.begin() + i);
    const double outliers = std::accumulate(h.counts.begin() + i, h.counts.end(), 0.0);
    p[i - 1] += outliers;
    // Candidate: bins that quantize to the same level (the format's grid with scale i*w / qmax) share their mass
    // (without the outliers) evenly over their non-empty bins.
    const double clip = static_cast<double>(i) * w;
    for (int64_t b = 0; b < i; ++b) centers[b] = static_cast<float>((b + 0.5) * w);
    fake_quantize(format, static_cast<float>(clip / qmax), std::span<const float>(centers.data(), i),
                  std::span<float>(quantized.data(), i));
    q.assign(static_cast<size_t>(i), 0.0);
    for (int64_t b0 = 0; b0 < i;) {
      int64_t b1 = b0;
      double mass = 0;
      int64_t nonempty = 0;
      while (b1 < i && quantized[b1] == quantized[b0]) {
        mass += h.counts[b1];
        nonempty += h.counts[b1] > 0;
        ++b1;
      }
      for (int64_t b = b0; b < b1; ++b)
        if (h.counts[b] > 0) q[b] = mass / static_cast<double>(nonempty);
      b0 = b1;
    }
    const double ps = std::accumulate(p.begin(), p.end(), 0.0), qs = std::accumulate(q.begin(), q.end(), 0.0);
    if (ps <= 0 || qs <= 0) continue;
    for (double& v : p) v /= ps;
    for (double& v : q) v /= qs;
    smooth(p);
    smooth(q);
    double kl = 0;
    for (int64_t b = 0; b < i; ++b)
      if (p[b] > 0) kl += p[b] * std::log(p[b] / q[b]);
    if (kl < best_kl) best_kl = kl, best = std::min(clip, h.max);
  }
  return best;
}

}  // namespace

CalibratorSpec CalibratorSpec::parse(std::string_view text) {
  CalibratorSpec s;
  if (text == "max") s.kind = Kind::kMax;
  else if (text == "mse") s.kind = Kind::kMse;
  else if (text == "kl") s.kind = Kind::kKl;
  else if (text.substr(0, 11) == "percentile:") {
    s.kind = Kind::kPercentile;
    const std::string_view num = text.substr(11);
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), s.percentile);
    if (ec != std::errc() || end != num.data() + num.size() || !(s.percentile > 0 && s.percentile <= 100))
      throw InvalidArgument("calibrator '" + std::string(text) + "': the percentile must be a number in (0, 100]");
  } else {
    throw InvalidArgument("unknown calibrator '" + std::string(text) + "'; calibrators: max, percentile:P, mse, kl");
  }
  return s;
}

std::string CalibratorSpec::to_string() const {
  switch (kind) {
    case Kind::kMax: return "max";
    case Kind::kMse: return "mse";
    case Kind::kKl: return "kl";
    case Kind::kPercentile: {
      char buf[32];
      const auto r = std::to_chars(buf, buf + sizeof buf, percentile);
      return "percentile:" + std::string(buf, r.ptr);
    }
  }
  return "?";
}

double AbsHistogram::total() const { return std::accumulate(counts.begin(), counts.end(), 0.0); }

AbsHistogram tensor_abs_histogram(const InputStats& s, std::span<const float> divisor, int bins) {
  check_stats(s);
  check_divisor(s, divisor);
  if (bins < 1) throw InvalidArgument("calibration: histogram bins must be >= 1");
  AbsHistogram h;
  h.counts.assign(static_cast<size_t>(bins), 0.0);
  auto div = [&](int64_t j) { return divisor.empty() ? 1.0 : static_cast<double>(divisor[j]); };
  for (int64_t j = 0; j < s.k; ++j) h.max = std::max(h.max, s.channel_max_abs[j] / div(j));
  if (h.max == 0) {
    h.counts[0] = static_cast<double>(s.rows) * static_cast<double>(s.k);
    return h;
  }
  const double tw = h.max / bins;
  for (int64_t j = 0; j < s.k; ++j) {
    const uint64_t* ch = s.channel_hist.data() + j * s.hist_bins;
    const double d = div(j), cmax = s.channel_max_abs[j] / d;
    const double cw = s.channel_hist_max[j] / d / s.hist_bins;
    for (int64_t b = 0; b < s.hist_bins; ++b) {
      if (ch[b] == 0) continue;
      // The bin's values lie in [lo, hi], uniform by assumption; no value exceeds the channel's max.
      const double lo = std::min(b * cw, cmax), hi = std::min((b + 1) * cw, cmax);
      const double n = static_cast<double>(ch[b]);
      if (hi - lo <= 0 || cw == 0) {  // a point mass (zeros, or the max itself)
        h.counts[std::min<int64_t>(static_cast<int64_t>(lo / tw), bins - 1)] += n;
        continue;
      }
      const int64_t t0 = std::min<int64_t>(static_cast<int64_t>(lo / tw), bins - 1);
      const int64_t t1 = std::min<int64_t>(static_cast<int64_t>(hi / tw), bins - 1);
      for (int64_t t = t0; t <= t1; ++t) {
        const double overlap = std::min(hi, (t + 1) * tw) - std::max(lo, t * tw);
        if (overlap > 0) h.counts[t] += n * overlap / (hi - lo);
      }
    }
  }
  return h;
}

double activation_qmax(formats::FormatId format) {
  const auto& tr = formats::traits(format);
  if (tr.kind == formats::FormatKind::kInteger) return static_cast<double>((1 << (tr.bits - 1)) - 1);
  if (tr.kind == formats::FormatKind::kMinifloat && tr.element) return tr.element->max_finite();
  throw InvalidArgument(std::string("static activation scales need an integer or FP8/FP6/FP4 format, not ") + tr.name);
}

double expected_quantization_error(const AbsHistogram& h, double clip, formats::FormatId format) {
  // Each bin is represented by kSub evenly spaced points (values uniform within a bin).
  constexpr int kSub = 8;
  const double w = h.bin_width();
  if (!(clip > 0) || w == 0) return 0;
  std::vector<float> v, out;
  std::vector<double> weight;
  for (size_t b = 0; b < h.counts.size(); ++b) {
    if (h.counts[b] <= 0) continue;
    for (int t = 0; t < kSub; ++t) {
      v.push_back(static_cast<float>((static_cast<double>(b) + (t + 0.5) / kSub) * w));
      weight.push_back(h.counts[b] / kSub);
    }
  }
  out.resize(v.size());
  fake_quantize(format, static_cast<float>(clip / activation_qmax(format)), v, out);
  double err = 0, total = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double e = static_cast<double>(v[i]) - out[i];
    err += weight[i] * e * e;
    total += weight[i];
  }
  return total > 0 ? err / total : 0;
}

double calibrated_clip(const InputStats& stats, const CalibratorSpec& spec, formats::FormatId format,
                       std::span<const float> divisor) {
  activation_qmax(format);  // rejects formats without a static scale early
  if (spec.kind == CalibratorSpec::Kind::kMax) {
    check_stats(stats);
    check_divisor(stats, divisor);
    double m = 0;
    for (int64_t j = 0; j < stats.k; ++j)
      m = std::max(m, stats.channel_max_abs[j] / (divisor.empty() ? 1.0 : static_cast<double>(divisor[j])));
    return m;
  }
  const AbsHistogram h = tensor_abs_histogram(stats, divisor);
  if (h.max == 0) return 0;
  switch (spec.kind) {
    case CalibratorSpec::Kind::kPercentile: return percentile_clip(h, spec.percentile);
    case CalibratorSpec::Kind::kMse: return mse_clip(h, format);
    case CalibratorSpec::Kind::kKl: return kl_clip(h, format);
    case CalibratorSpec::Kind::kMax: break;
  }
  return h.max;
}

float static_scale(const InputStats& stats, const CalibratorSpec& spec, formats::FormatId format,
                   std::span<const float> divisor) {
  const double clip = calibrated_clip(stats, spec, format, divisor);
  if (!(clip > 0)) return 1.0f;
  return static_cast<float>(clip / activation_qmax(format));
}

void apply_static_scales(std::vector<PlanEntry>& plan, const Calibration& calibration, const CalibratorSpec& spec,
                         const ChannelDivisors& divisors) {
  for (PlanEntry& e : plan) {
    if (!e.quantized || e.act.mode != kernels::ActivationQuant::Mode::kStatic || e.act.static_scale != 0.0f) continue;
    const InputStats& s = calibration.at(e.tensor.name);
    int64_t k = 1;
    for (size_t i = 1; i < e.tensor.shape.size(); ++i) k *= e.tensor.shape[i];
    if (s.k != k)
      throw InvalidArgument("calibration: " + e.tensor.name + " has " + std::to_string(k) +
                            " input channels in the model but " + std::to_string(s.k) +
                            " in the calibration (was it made for this model?)");
    auto d = divisors.find(e.tensor.name);
    e.act.static_scale = static_scale(s, spec, e.act.format,
                                      d == divisors.end() ? std::span<const float>{} : std::span<const float>(d->second));
  }
}

}  // namespace quasr::quant
