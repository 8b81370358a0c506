#pragma once
// Calibration: statistics of every quantizable Linear's *input* activations, gathered by running the FP32 model
// over calibration audio (LibriSpeech mini-calib, never the evaluation set), saved to a reusable file and used by
// the post-training algorithms (docs/ptq.md): static activation scales (calibrators), SmoothQuant, GPTQ, AWQ.
//
// Collection is deterministic for a fixed thread count and data order (the reservoir sampler is seeded).
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quasr/formats/traits.h"

namespace quasr::quant {

// Statistics of the input x (rows of width k) of one Linear over all calibration rows (frames / tokens).
struct InputStats {
  int64_t k = 0;     // input width (the Linear's reduction dimension)
  int64_t rows = 0;  // rows observed
  std::vector<float> channel_max_abs;   // [k] max |x_j|: SmoothQuant, the max calibrator
  std::vector<double> channel_sum_abs;  // [k] sum |x_j| (mean = / rows): AWQ's activation magnitude
  std::vector<double> xtx;              // [k][k] sum over rows of x x^T: GPTQ's Hessian is 2 xtx / rows
  int64_t n_samples = 0;                // rows kept by a seeded reservoir sampler
  std::vector<float> samples;           // [n_samples][k]: AWQ's search data
  // |x_j| histogram per channel: hist_bins equal bins over [0, channel_hist_max[j]]. Per-tensor histograms after a
  // per-channel rescaling (SmoothQuant) are derived from it, so one calibration serves every smoothing strength.
  int hist_bins = 0;
  std::vector<float> channel_hist_max;  // [k]
  std::vector<uint64_t> channel_hist;   // [k][hist_bins]
};

struct Calibration {
  std::string model_sha256;  // the source weights file's hash (models::whisper_source_file)
  std::string data;          // what was run, e.g. "LibriSpeech mini-calib, 64 utterances, seed 0"
  int64_t utterances = 0;
  std::map<std::string, InputStats, std::less<>> inputs;  // by the Linear's canonical weight name

  const InputStats& at(std::string_view weight_name) const;  // throws InvalidArgument naming the tensor
  // Atomic write (temp file + rename); load validates sizes and rejects truncated or corrupt files.
  void save(const std::string& path) const;
  static Calibration load(const std::string& path);
};

// Static activation scale calibrators.
struct CalibratorSpec {
  enum class Kind : uint8_t { kMax, kPercentile, kMse, kKl };
  Kind kind = Kind::kMax;
  double percentile = 99.99;                       // kPercentile
  static CalibratorSpec parse(std::string_view text);  // max | percentile:P | mse | kl
  std::string to_string() const;
};

// The per-tensor static scale for quantizing this input to `format` (int8, int4, fp8_e4m3) with `spec`. When
// `channel_divisor` is non-empty ([k]) the scale is for x_j / channel_divisor[j] (SmoothQuant's smoothed input),
// derived from the per-channel histograms.
float static_scale(const InputStats& stats, const CalibratorSpec& spec, formats::FormatId format,
                   std::span<const float> channel_divisor = {});

}  // namespace quasr::quant
