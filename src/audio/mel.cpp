// Whisper log-mel features, following faster-whisper's FeatureExtractor (feature_extractor.py) step by step.
// The reference runs in float32 (window, STFT, power, mel matmul); here the window and filters are the same
// float32 values, and the STFT, power and mel sums run in double, which keeps us within ~1e-6 of exact and so
// within the reference's own float32 rounding of it.
#include "quasr/audio/mel.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <numbers>
#include <string>

#include "quasr/audio/audio.h"
#include "quasr/audio/fft.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"

namespace quasr::audio {
namespace {

constexpr int kBins = kNFft / 2 + 1;  // one-sided spectrum

// np.hanning(401)[:-1] cast to float32: numpy evaluates 0.5 + 0.5 cos(pi n / (M - 1)) for n = 1-M, 3-M, ..., M-1.
std::vector<double> periodic_hann() {
  constexpr int M = kNFft + 1;
  std::vector<double> w(kNFft);
  for (int i = 0; i < kNFft; ++i) {
    const double n = 1 - M + 2 * i;
    w[static_cast<size_t>(i)] = static_cast<float>(0.5 + 0.5 * std::cos(std::numbers::pi * n / (M - 1)));
  }
  return w;
}

// One mel filter stored as its nonzero span of FFT bins (each filter is a triangle touching a few bins).
struct SparseFilter {
  int first_bin = 0;
  std::vector<double> weights;
};

std::vector<SparseFilter> sparse_filters(int n_mels) {
  const std::vector<float> dense = mel_filter_bank(n_mels);
  std::vector<SparseFilter> out(static_cast<size_t>(n_mels));
  for (int m = 0; m < n_mels; ++m) {
    const float* row = dense.data() + static_cast<size_t>(m) * kBins;
    int lo = 0, hi = kBins;
    while (lo < kBins && row[lo] == 0.0f) ++lo;
    while (hi > lo && row[hi - 1] == 0.0f) --hi;
    out[static_cast<size_t>(m)].first_bin = lo;
    out[static_cast<size_t>(m)].weights.assign(row + lo, row + hi);
  }
  return out;
}

// Index into a signal of length n extended by numpy's mode="reflect" (mirror about the first and last sample,
// without repeating them): periodic with period 2(n-1). numpy's iterative padding gives the same for pads longer
// than the signal (checked against np.pad for n = 2..59).
int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

}  // namespace

std::vector<float> mel_filter_bank(int n_mels) {
  if (n_mels < 1 || n_mels > kMaxMels)
    throw InvalidArgument("n_mels must be in [1, " + std::to_string(kMaxMels) + "], got " + std::to_string(n_mels));
  // Same operations, in the same order, as FeatureExtractor.get_mel_filters (librosa's Slaney mel scale).
  const double bin_hz = 1.0 / (kNFft * (1.0 / kSampleRate));  // np.fft.rfftfreq spacing
  const double max_mel = 45.245640471924965;                 // mel(8000 Hz)
  const double f_sp = 200.0 / 3;                             // linear region: 200/3 Hz per mel
  const double min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  const int n_points = n_mels + 2;
  std::vector<double> freqs(static_cast<size_t>(n_points));
  const double step = max_mel / (n_points - 1);  // np.linspace(0, max_mel, n_mels + 2)
  for (int i = 0; i < n_points; ++i) {
    const double mel = i == n_points - 1 ? max_mel : i * step;
    freqs[static_cast<size_t>(i)] =
        mel >= min_log_mel ? min_log_hz * std::exp(logstep * (mel - min_log_mel)) : f_sp * mel;
  }
  std::vector<float> bank(static_cast<size_t>(n_mels) * kBins);
  for (int m = 0; m < n_mels; ++m) {
    const double f0 = freqs[static_cast<size_t>(m)], f1 = freqs[static_cast<size_t>(m) + 1],
                 f2 = freqs[static_cast<size_t>(m) + 2];
    const double enorm = 2.0 / (f2 - f0);  // Slaney: constant energy per channel
    for (int k = 0; k < kBins; ++k) {
      const double fk = k * bin_hz;
      const double lower = -(f0 - fk) / (f1 - f0);
      const double upper = (f2 - fk) / (f2 - f1);
      const double w = std::max(0.0, std::min(lower, upper));
      bank[static_cast<size_t>(m) * kBins + k] = static_cast<float>(w * enorm);
    }
  }
  return bank;
}

LogMel log_mel_spectrogram(std::span<const float> samples_16k, int n_mels, int64_t padding) {
  if (n_mels < 1 || n_mels > kMaxMels)
    throw InvalidArgument("log_mel_spectrogram: n_mels must be in [1, " + std::to_string(kMaxMels) + "], got " +
                          std::to_string(n_mels));
  if (padding < 0)
    throw InvalidArgument("log_mel_spectrogram: padding must be >= 0, got " + std::to_string(padding));
  const int64_t n_samples = static_cast<int64_t>(samples_16k.size());
  for (int64_t i = 0; i < n_samples; ++i)
    if (!std::isfinite(samples_16k[static_cast<size_t>(i)]))
      throw InvalidArgument("log_mel_spectrogram: sample " + std::to_string(i) + " is not finite");

  LogMel out;
  out.n_mels = n_mels;
  // The padded waveform has n + padding samples; centring adds n_fft/2 on each side, so the STFT has
  // 1 + (n + padding) / hop frames, and the reference drops the last one.
  const int64_t padded = n_samples + padding;
  out.n_frames = padded / kHopLength;
  if (out.n_frames == 0) return out;

  // Sample i of the centred signal: reflect(waveform ++ zeros(padding)) at position i - n_fft/2. Read straight
  // from the input (no padded copy: an hour of audio would need half a gigabyte of doubles).
  constexpr int kHalf = kNFft / 2;
  const float* samples = samples_16k.data();
  auto centred_sample = [&](int64_t i) -> double {
    const int64_t j = reflect_index(i - kHalf, padded);
    return j < n_samples ? samples[j] : 0.0;
  };

  static const std::vector<double> window = periodic_hann();
  static const RealFft fft(kNFft);
  const std::vector<SparseFilter> filters = sparse_filters(n_mels);
  const int64_t n_frames = out.n_frames;
  out.data.resize(static_cast<size_t>(n_mels) * static_cast<size_t>(n_frames));
  float* data = out.data.data();

  parallel_for(0, n_frames, 64, [&](int64_t begin, int64_t end) {
    std::vector<double> frame(kNFft), power(kBins);
    std::vector<std::complex<double>> spectrum(kBins), scratch(static_cast<size_t>(fft.scratch_size()));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t start = t * kHopLength;  // in centred coordinates
      if (start >= kHalf && start - kHalf + kNFft <= n_samples) {
        const float* x = samples + (start - kHalf);
        for (int i = 0; i < kNFft; ++i) frame[static_cast<size_t>(i)] = x[i] * window[static_cast<size_t>(i)];
      } else {  // touches the reflected edges or the zero padding
        for (int i = 0; i < kNFft; ++i)
          frame[static_cast<size_t>(i)] = centred_sample(start + i) * window[static_cast<size_t>(i)];
      }
      fft.forward(frame, spectrum, scratch);
      // Not std::norm: libstdc++ computes it as abs(z)^2, slower and less exact than the sum of squares.
      for (int k = 0; k < kBins; ++k) {
        const std::complex<double> z = spectrum[static_cast<size_t>(k)];
        power[static_cast<size_t>(k)] = z.real() * z.real() + z.imag() * z.imag();
      }
      for (int m = 0; m < n_mels; ++m) {
        const SparseFilter& f = filters[static_cast<size_t>(m)];
        double acc = 0;
        for (size_t k = 0; k < f.weights.size(); ++k) acc += f.weights[k] * power[f.first_bin + k];
        data[static_cast<size_t>(m) * n_frames + t] = static_cast<float>(std::log10(std::max(acc, 1e-10)));
      }
    }
  });

  // Dynamic range: nothing more than 8 (log10 units, i.e. 80 dB) below the loudest value, then scale.
  const float max_log = *std::max_element(out.data.begin(), out.data.end());
  const float floor_log = max_log - 8.0f;
  for (float& v : out.data) v = (std::max(v, floor_log) + 4.0f) / 4.0f;
  return out;
}

}  // namespace quasr::audio
