// Calibration statistics against a direct double-precision computation, the reservoir sampler, the calibrators
// (max, percentile, MSE, KL), channel divisors and filling a plan's static scales.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tiny_en_config.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/calibration.h"
#include "quasr/quant/quantized_weight.h"

namespace quasr::quant {
namespace {

using formats::FormatId;

// rows x k values: mostly normal with a few channel-specific scales, occasional large outliers (heavy tail).
std::vector<float> synthetic(int64_t rows, int64_t k, uint64_t seed, double outlier_rate = 0.002) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows * k));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) {
      double v = rng.normal() * (0.5 + j % 5);
      if (rng.uniform() < outlier_rate) v *= 20;
      x[r * k + j] = static_cast<float>(v);
    }
  return x;
}

InputStats accumulate(const std::vector<float>& x, int64_t k, const CollectOptions& opt = {}, uint64_t seed = 1) {
  InputStatsAccumulator acc(k, opt, seed);
  acc.add(x.data(), static_cast<int64_t>(x.size()) / k, k);
  return acc.finish();
}

TEST(CalibrationStats, MatchDirectDoublePrecisionComputation) {
  const int64_t k = 37, ld = 41;
  // Several calls of different sizes (single decoder-like rows and encoder-like blocks), rows ld apart; later calls
  // hold larger outliers so the histogram ranges must grow.
  const std::vector<int64_t> calls = {3, 700, 1, 1, 250, 1200, 5};
  CollectOptions opt;
  opt.hist_bins = 64;
  InputStatsAccumulator acc(k, opt, 7);
  std::vector<float> all;  // dense copy of every row, in order
  for (size_t c = 0; c < calls.size(); ++c) {
    std::vector<float> x = synthetic(calls[c], k, 100 + c, 0.001 * static_cast<double>(c));
    std::vector<float> strided(static_cast<size_t>(calls[c] * ld), -1e30f);  // padding must never be read
    for (int64_t r = 0; r < calls[c]; ++r) std::copy_n(x.data() + r * k, k, strided.data() + r * ld);
    acc.add(strided.data(), calls[c], ld);
    all.insert(all.end(), x.begin(), x.end());
  }
  const InputStats& s = acc.finish();
  const int64_t rows = static_cast<int64_t>(all.size()) / k;
  ASSERT_EQ(s.rows, rows);
  ASSERT_EQ(s.k, k);
  for (int64_t j = 0; j < k; ++j) {
    double m = 0, sum = 0;
    for (int64_t r = 0; r < rows; ++r) {
      m = std::max(m, std::fabs(static_cast<double>(all[r * k + j])));
      sum += std::fabs(static_cast<double>(all[r * k + j]));
    }
    EXPECT_EQ(s.channel_max_abs[j], static_cast<float>(m)) << j;
    EXPECT_NEAR(s.channel_sum_abs[j], sum, 1e-12 * sum) << j;
    for (int64_t i = 0; i < k; ++i) {
      double xtx = 0, bound = 0;
      for (int64_t r = 0; r < rows; ++r) {
        xtx += static_cast<double>(all[r * k + i]) * all[r * k + j];
        bound += std::fabs(static_cast<double>(all[r * k + i]) * all[r * k + j]);
      }
      // FP32 sums over chunks of <= ~1200 rows: relative error well below 1e-5 of sum |x_i x_j|.
      EXPECT_NEAR(s.xtx[i * k + j], xtx, 1e-5 * bound) << i << "," << j;
      EXPECT_EQ(s.xtx[i * k + j], s.xtx[j * k + i]);  // exactly symmetric
    }
    // Histogram: counts sum to the rows; against a direct histogram over the final range, cumulative counts differ
    // only by values sitting exactly on a bin edge (the max of the chunk that set the range is the top edge).
    const double range = s.channel_hist_max[j];
    ASSERT_GE(range, s.channel_max_abs[j]);
    std::vector<int64_t> direct(opt.hist_bins, 0);
    int64_t on_edge = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double pos = std::fabs(static_cast<double>(all[r * k + j])) * opt.hist_bins / range;
      on_edge += pos == std::floor(pos) && pos > 0;
      ++direct[std::min<int64_t>(static_cast<int64_t>(pos), opt.hist_bins - 1)];
    }
    int64_t cum_a = 0, cum_d = 0;
    for (int b = 0; b < opt.hist_bins; ++b) {
      cum_a += static_cast<int64_t>(s.channel_hist[j * opt.hist_bins + b]);
      cum_d += direct[b];
      EXPECT_LE(std::abs(cum_a - cum_d), on_edge) << "channel " << j << " bin " << b;
    }
    EXPECT_EQ(cum_a, rows);
  }
}

TEST(CalibrationStats, ReservoirIsDeterministicAndHoldsInputRows) {
  const int64_t k = 5, rows = 3000;
  const std::vector<float> x = synthetic(rows, k, 3);
  CollectOptions opt;
  opt.max_samples = 64;
  const InputStats a = accumulate(x, k, opt, 11), b = accumulate(x, k, opt, 11), c = accumulate(x, k, opt, 12);
  ASSERT_EQ(a.n_samples, 64);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_NE(a.samples, c.samples);
  // Every sample is one of the input rows, and the rows are distinct (no row kept twice).
  std::vector<int64_t> which;
  for (int64_t i = 0; i < a.n_samples; ++i) {
    int64_t found = -1;
    for (int64_t r = 0; r < rows && found < 0; ++r)
      if (std::equal(x.begin() + r * k, x.begin() + (r + 1) * k, a.samples.begin() + i * k)) found = r;
    ASSERT_GE(found, 0) << "sample " << i << " is not an input row";
    which.push_back(found);
  }
  std::sort(which.begin(), which.end());
  EXPECT_EQ(std::unique(which.begin(), which.end()), which.end());
  // Not just the first rows: a uniform sample of 3000 rows reaches past row 1000 with certainty for practical
  // purposes (probability of all 64 below 1000: (1/3)^64).
  EXPECT_GT(which.back(), 1000);
  // Fewer rows than the reservoir: all of them, in order.
  const std::vector<float> few = synthetic(10, k, 4);
  const InputStats f = accumulate(few, k, opt);
  EXPECT_EQ(f.n_samples, 10);
  EXPECT_EQ(f.samples, few);
}

TEST(CalibrationStats, RejectsNonFiniteInputAndBadOptions) {
  std::vector<float> x = synthetic(4, 3, 1);
  x[5] = std::nanf("");
  InputStatsAccumulator acc(3, {}, 1);
  acc.add(x.data(), 4, 3);
  EXPECT_THROW(acc.finish(), InvalidArgument);
  CollectOptions odd;
  odd.hist_bins = 7;
  EXPECT_THROW(InputStatsAccumulator(3, odd, 1), InvalidArgument);
  EXPECT_THROW(InputStatsAccumulator(0, {}, 1), InvalidArgument);
}

TEST(CalibrationCalibrators, MaxIsMaxAbsOverQmax) {
  const InputStats s = accumulate(synthetic(2000, 16, 5), 16);
  const float m = *std::max_element(s.channel_max_abs.begin(), s.channel_max_abs.end());
  const CalibratorSpec max = CalibratorSpec::parse("max");
  EXPECT_FLOAT_EQ(static_scale(s, max, FormatId::kInt8), m / 127.0f);
  EXPECT_FLOAT_EQ(static_scale(s, max, FormatId::kInt4), m / 7.0f);
  EXPECT_FLOAT_EQ(static_scale(s, max, FormatId::kFp8E4M3), m / 448.0f);
  EXPECT_THROW(static_scale(s, max, FormatId::kNf4), InvalidArgument);
}

TEST(CalibrationCalibrators, ParseAndPrint) {
  for (const char* t : {"max", "mse", "kl", "percentile:99.9", "percentile:100"})
    EXPECT_EQ(CalibratorSpec::parse(t).to_string(), t);
  EXPECT_DOUBLE_EQ(CalibratorSpec::parse("percentile:99.9").percentile, 99.9);
  for (const char* bad : {"", "maxx", "percentile:", "percentile:0", "percentile:101", "percentile:9x"})
    EXPECT_THROW(CalibratorSpec::parse(bad), InvalidArgument) << bad;
}

TEST(CalibrationCalibrators, PercentileOfAUniformDistribution) {
  // |x| uniform on [0, 1] in every channel: the P-th percentile is P/100.
  const int64_t k = 8, rows = 40000;
  Rng rng(9);
  std::vector<float> x(static_cast<size_t>(rows * k));
  for (float& v : x) v = static_cast<float>((rng.uniform() * 2 - 1));
  const InputStats s = accumulate(x, k);
  for (double p : {50.0, 90.0, 99.0}) {
    CalibratorSpec spec;
    spec.kind = CalibratorSpec::Kind::kPercentile;
    spec.percentile = p;
    // Binning (1/256 of a channel's range) plus sampling error (~0.002 at 320000 values).
    EXPECT_NEAR(calibrated_clip(s, spec, FormatId::kInt8), p / 100.0, 0.01) << p;
  }
  EXPECT_EQ(calibrated_clip(s, CalibratorSpec::parse("percentile:100"), FormatId::kInt8),
            *std::max_element(s.channel_max_abs.begin(), s.channel_max_abs.end()));
}

// Mean squared quantize-dequantize error of the data itself under a static scale.
double data_mse(const std::vector<float>& x, float scale, FormatId f) {
  kernels::ActivationQuant a;
  a.mode = kernels::ActivationQuant::Mode::kStatic;
  a.format = f;
  a.static_scale = scale;
  std::vector<float> out(x.size());
  fake_quantize_activations(a, x.data(), 1, static_cast<int64_t>(x.size()), static_cast<int64_t>(x.size()), out.data());
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += (static_cast<double>(x[i]) - out[i]) * (static_cast<double>(x[i]) - out[i]);
  return e / static_cast<double>(x.size());
}

TEST(CalibrationCalibrators, MseClipsHeavyTailsAndBeatsMax) {
  const int64_t k = 16;
  const std::vector<float> x = synthetic(20000, k, 21, 0.001);  // normal body, 20x outliers
  const InputStats s = accumulate(x, k);
  for (FormatId f : {FormatId::kInt8, FormatId::kInt4, FormatId::kFp8E4M3}) {
    const double m = calibrated_clip(s, CalibratorSpec::parse("max"), f);
    const double c = calibrated_clip(s, CalibratorSpec::parse("mse"), f);
    const AbsHistogram h = tensor_abs_histogram(s);
    EXPECT_LE(expected_quantization_error(h, c, f), expected_quantization_error(h, m, f)) << formats::traits(f).name;
    // On the data itself, not only on the histogram model of it.
    const float sm = static_scale(s, CalibratorSpec::parse("max"), f), sc = static_scale(s, CalibratorSpec::parse("mse"), f);
    EXPECT_LE(data_mse(x, sc, f), data_mse(x, sm, f)) << formats::traits(f).name;
    if (f != FormatId::kFp8E4M3) {
      EXPECT_LT(c, 0.9 * m) << formats::traits(f).name;  // int grids clip the outliers
    }
  }
}

TEST(CalibrationCalibrators, KlIsSane) {
  const int64_t k = 8;
  const InputStats normal = accumulate(synthetic(20000, k, 31, 0.001), k);
  const double m = calibrated_clip(normal, CalibratorSpec::parse("max"), FormatId::kInt8);
  const double kl = calibrated_clip(normal, CalibratorSpec::parse("kl"), FormatId::kInt8);
  const double p50 = calibrated_clip(normal, CalibratorSpec::parse("percentile:50"), FormatId::kInt8);
  EXPECT_GT(kl, p50);
  EXPECT_LT(kl, m);  // clips the 20x outliers
  // Uniform data has no tail to clip: KL keeps (nearly) the whole range.
  Rng rng(5);
  std::vector<float> u(static_cast<size_t>(20000 * k));
  for (float& v : u) v = static_cast<float>(rng.uniform() * 2 - 1);
  const InputStats uni = accumulate(u, k);
  EXPECT_GT(calibrated_clip(uni, CalibratorSpec::parse("kl"), FormatId::kInt8), 0.9);
  EXPECT_GT(static_scale(normal, CalibratorSpec::parse("kl"), FormatId::kFp8E4M3), 0.0f);
}

TEST(CalibrationCalibrators, AllZeroInputGetsUnitScale) {
  const std::vector<float> z(300, 0.0f);
  const InputStats s = accumulate(z, 3);
  for (const char* c : {"max", "percentile:99", "mse", "kl"})
    EXPECT_EQ(static_scale(s, CalibratorSpec::parse(c), FormatId::kInt8), 1.0f) << c;
}

TEST(CalibrationDivisor, AllOnesEqualsNoDivisor) {
  const int64_t k = 12;
  const InputStats s = accumulate(synthetic(5000, k, 41), k);
  const std::vector<float> ones(k, 1.0f);
  for (const char* c : {"max", "percentile:99.9", "mse", "kl"})
    EXPECT_EQ(static_scale(s, CalibratorSpec::parse(c), FormatId::kInt8, ones),
              static_scale(s, CalibratorSpec::parse(c), FormatId::kInt8))
        << c;
  EXPECT_THROW(static_scale(s, CalibratorSpec::parse("max"), FormatId::kInt8, std::vector<float>(k - 1, 1.0f)),
               InvalidArgument);
  std::vector<float> bad = ones;
  bad[3] = 0;
  EXPECT_THROW(static_scale(s, CalibratorSpec::parse("max"), FormatId::kInt8, bad), InvalidArgument);
}

TEST(CalibrationDivisor, DerivedHistogramMatchesDividedDataWithinBinning) {
  const int64_t k = 24, rows = 8000;
  const std::vector<float> x = synthetic(rows, k, 51, 0.003);
  std::vector<float> d(k);
  Rng rng(52);
  for (float& v : d) v = static_cast<float>(std::exp2(rng.uniform() * 4 - 2));  // [0.25, 4]
  std::vector<double> divided(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) divided[r * k + j] = std::fabs(static_cast<double>(x[r * k + j]) / d[j]);
  std::sort(divided.begin(), divided.end());
  const InputStats s = accumulate(x, k);
  const AbsHistogram h = tensor_abs_histogram(s, d, 512);
  EXPECT_NEAR(h.max, divided.back(), 1e-6 * divided.back());
  EXPECT_NEAR(h.total(), static_cast<double>(divided.size()), 1e-6 * divided.size());
  // Binning error: one channel bin (its width over the divisor) plus one tensor bin.
  double delta = h.bin_width();
  for (int64_t j = 0; j < k; ++j) delta = std::max(delta, h.bin_width() + s.channel_hist_max[j] / d[j] / s.hist_bins);
  auto exact_cdf = [&](double t) {
    return static_cast<double>(std::upper_bound(divided.begin(), divided.end(), t) - divided.begin());
  };
  double cum = 0;
  for (size_t b = 0; b < h.counts.size(); ++b) {
    cum += h.counts[b];
    const double t = (static_cast<double>(b) + 1) * h.bin_width();
    EXPECT_GE(cum, exact_cdf(t - delta) - 1e-6 * rows) << b;
    EXPECT_LE(cum, exact_cdf(t + delta) + 1e-6 * rows) << b;
  }
  // Percentile scales from the derived histogram match those computed on the divided data's own statistics.
  std::vector<float> xd(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) xd[r * k + j] = x[r * k + j] / d[j];
  const InputStats sd = accumulate(xd, k);
  const CalibratorSpec p = CalibratorSpec::parse("percentile:99");
  EXPECT_NEAR(calibrated_clip(s, p, FormatId::kInt8, d), calibrated_clip(sd, p, FormatId::kInt8), 2 * delta);
  EXPECT_FLOAT_EQ(static_scale(s, CalibratorSpec::parse("max"), FormatId::kInt8, d),
                  static_scale(sd, CalibratorSpec::parse("max"), FormatId::kInt8));
}

models::WhisperConfig tiny_en() { return testing::tiny_en_config(); }

TEST(CalibrationApply, FillsStaticScalesFromCalibration) {
  const auto tensors = models::whisper_quantizable_tensors(tiny_en());
  std::vector<PlanEntry> plan;
  Calibration cal;
  for (const TensorInfo& t : tensors) {
    PlanEntry e;
    e.tensor = t;
    e.quantized = t.kind == TensorInfo::Kind::kLinear;
    e.act.mode = kernels::ActivationQuant::Mode::kStatic;
    e.act.format = t.role == "mlp_fc2" ? FormatId::kInt4 : FormatId::kInt8;
    if (t.role == "attn_out") e.act.static_scale = 0.5f;  // given in the recipe: kept
    plan.push_back(e);
    if (e.quantized) cal.inputs[t.name] = accumulate(synthetic(64, t.shape[1], plan.size()), t.shape[1]);
  }
  const CalibratorSpec spec = CalibratorSpec::parse("percentile:99.9");
  ChannelDivisors div;
  const std::string fc1 = "model.encoder.layers.1.fc1.weight";
  div[fc1] = std::vector<float>(384, 2.0f);
  apply_static_scales(plan, cal, spec, div);
  for (const PlanEntry& e : plan) {
    if (!e.quantized) {
      EXPECT_EQ(e.act.static_scale, 0.0f) << e.tensor.name;
    } else if (e.tensor.role == "attn_out") {
      EXPECT_EQ(e.act.static_scale, 0.5f);
    } else {
      const auto it = div.find(e.tensor.name);
      EXPECT_EQ(e.act.static_scale,
                static_scale(cal.at(e.tensor.name), spec, e.act.format,
                             it == div.end() ? std::span<const float>{} : std::span<const float>(it->second)))
          << e.tensor.name;
      EXPECT_GT(e.act.static_scale, 0.0f);
    }
  }
  // A missing tensor and a width mismatch are errors naming the tensor.
  for (PlanEntry& e : plan) e.act.static_scale = 0;
  Calibration missing = cal;
  missing.inputs.erase(fc1);
  try {
    apply_static_scales(plan, missing, spec);
    FAIL() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fc1), std::string::npos) << e.what();
  }
  Calibration narrow = cal;
  narrow.inputs[fc1] = accumulate(synthetic(8, 100, 1), 100);
  EXPECT_THROW(apply_static_scales(plan, narrow, spec), InvalidArgument);
}

}  // namespace
}  // namespace quasr::quant
