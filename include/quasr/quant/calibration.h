#pragma once
// Calibration: statistics of every quantizable Linear's *input* activations, gathered by running the FP32 model
// over calibration audio (LibriSpeech mini-calib, never the evaluation set), saved to a reusable file and used by
// the post-training algorithms (docs/ptq.md): static activation scales (calibrators), SmoothQuant, GPTQ, AWQ.
//
// Collection is deterministic for a fixed thread count and data order (the reservoir sampler is seeded, X^T X is
// summed per chunk with kernels::sgemm, which is bit-identical for any thread count, and every per-channel
// statistic is accumulated in row order).
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quasr/core/rng.h"
#include "quasr/formats/traits.h"
#include "quasr/quant/recipe.h"

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
  // The range starts at the first chunk's max and doubles (merging bin pairs) when a larger value arrives, so
  // channel_hist_max[j] >= channel_max_abs[j] and every channel's counts sum to `rows`.
  int hist_bins = 0;
  std::vector<float> channel_hist_max;  // [k]
  std::vector<uint64_t> channel_hist;   // [k][hist_bins]

  bool operator==(const InputStats&) const = default;
};

// How statistics are gathered.
struct CollectOptions {
  int64_t max_samples = 256;  // reservoir size (rows kept for AWQ)
  int hist_bins = 256;        // per-channel histogram bins (even, >= 2)
  uint64_t seed = 0;          // reservoir sampler seed (each Linear input draws from its own stream)
  bool operator==(const CollectOptions&) const = default;
};

// Accumulates the statistics of one input. Rows are buffered and processed in chunks of >= kChunkRows rows (decoder
// steps give one row per call): X^T X of a chunk in FP32 with kernels::sgemm, added to the double sum.
class InputStatsAccumulator {
 public:
  static constexpr int64_t kChunkRows = 512;
  // `stream_seed` selects this input's reservoir random stream (see stream_seed()).
  InputStatsAccumulator(int64_t k, const CollectOptions& options, uint64_t stream_seed);
  // x: rows of width k, ldx floats apart. Throws InvalidArgument on a non-finite value.
  void add(const float* x, int64_t rows, int64_t ldx);
  // Processes buffered rows; the statistics so far.
  const InputStats& finish();

 private:
  void flush();
  InputStats s_;
  Rng rng_;
  int64_t max_samples_;
  std::vector<float> pending_;
  int64_t pending_rows_ = 0;
};

// A stable per-input seed: the collection seed mixed with the input's (leader) weight name.
uint64_t stream_seed(uint64_t seed, std::string_view name);

struct Calibration {
  std::string model_sha256;  // the source weights file's hash (models::whisper_source_file)
  std::string data;          // what was run, e.g. "LibriSpeech mini-calib, 64 utterances, seed 0"
  int64_t utterances = 0;
  CollectOptions options;
  // By the Linear's canonical weight name. Linears that see the same input (q/k/v of one attention, the
  // cross-attention k/v of every decoder layer) hold equal copies; the file stores each distinct input once.
  std::map<std::string, InputStats, std::less<>> inputs;

  const InputStats& at(std::string_view weight_name) const;  // throws InvalidArgument naming the tensor
  // Throws InvalidArgument when the calibration was made on another model than the one whose source weights file
  // hashes to `source_sha256` (models::whisper_source_file); `source` names the calibration in the message.
  void check_model(const std::string& source_sha256, const std::string& source = "calibration") const;
  // Atomic write (temp file + rename) of a safetensors file with JSON metadata; load validates sizes, dtypes,
  // counts and metadata and rejects truncated or corrupt files with an IoError naming the file and the problem.
  void save(const std::string& path) const;
  static Calibration load(const std::string& path);
};

// Revision of the calibration file layout (the metadata's "format_revision").
inline constexpr int kCalibrationFileRevision = 1;

// Static activation scale calibrators.
struct CalibratorSpec {
  enum class Kind : uint8_t { kMax, kPercentile, kMse, kKl };
  Kind kind = Kind::kMax;
  double percentile = 99.99;                       // kPercentile
  static CalibratorSpec parse(std::string_view text);  // max | percentile:P | mse | kl
  std::string to_string() const;
};

// The per-tensor |x| histogram derived from the per-channel ones, of x_j / divisor[j] when a divisor is given
// (empty: all ones). Binning approximation: the values of a channel bin are taken as uniform over the bin's
// interval (its last occupied bin cut at the channel's exact max), and its count is split over the tensor bins that
// interval overlaps, in proportion to the overlap. Exact for `max`; other quantiles are off by at most one channel
// bin width (divided by the divisor) plus one tensor bin width.
struct AbsHistogram {
  double max = 0;               // exact max |x| (after the divisor): the range is [0, max]
  std::vector<double> counts;   // equal bins over [0, max]
  double bin_width() const { return counts.empty() ? 0.0 : max / static_cast<double>(counts.size()); }
  double total() const;
};
AbsHistogram tensor_abs_histogram(const InputStats& stats, std::span<const float> channel_divisor = {},
                                  int bins = 2048);

// The largest code magnitude of an activation format (127 int8, 7 int4, 448 fp8_e4m3): scale = clip / qmax.
// Throws InvalidArgument for formats that are not integer or minifloat.
double activation_qmax(formats::FormatId format);

// The clipping threshold each calibrator picks (scale = clip / qmax):
//   max         the exact max |x|
//   percentile  the P-th percentile of |x| (from the histogram, linear within a bin)
//   mse         minimises the expected squared quantize-dequantize error over the histogram on the format's grid
//               (values uniform within a bin; candidates on a grid of the max, refined around the best)
//   kl          TensorRT-style entropy calibration: the threshold whose quantized distribution is closest in KL
//               divergence to the clipped reference distribution, levels taken from the format's grid
double calibrated_clip(const InputStats& stats, const CalibratorSpec& spec, formats::FormatId format,
                       std::span<const float> channel_divisor = {});

// The per-tensor static scale for quantizing this input to `format` (int8, int4, fp8_e4m3) with `spec`. When
// `channel_divisor` is non-empty ([k]) the scale is for x_j / channel_divisor[j] (SmoothQuant's smoothed input),
// derived from the per-channel histograms. An input that is all zeros gets scale 1 (every value stays 0).
float static_scale(const InputStats& stats, const CalibratorSpec& spec, formats::FormatId format,
                   std::span<const float> channel_divisor = {});

// Expected squared error per value of quantize-dequantize with clip `clip` over histogram `h` (the MSE
// calibrator's objective; values uniform within each bin). Exposed for tests.
double expected_quantization_error(const AbsHistogram& h, double clip, formats::FormatId format);

// Per-input divisors (SmoothQuant's d_j) by canonical weight name.
using ChannelDivisors = std::map<std::string, std::vector<float>, std::less<>>;

// Fills act.static_scale of every quantized plan entry whose activations are static with scale 0 ("from
// calibration"), with static_scale(calibration.at(name), spec, act.format, divisors[name] if any). Throws
// InvalidArgument when the calibration lacks a tensor or its width differs from the tensor's reduction dim.
void apply_static_scales(std::vector<PlanEntry>& plan, const Calibration& calibration, const CalibratorSpec& spec,
                         const ChannelDivisors& divisors = {});

}  // namespace quasr::quant
