#pragma once
// Whisper's log-mel spectrogram, exactly as faster-whisper's FeatureExtractor computes it: the waveform padded
// with `padding` trailing zeros, STFT (n_fft 400, hop 160, periodic Hann, centred with reflect padding, last frame
// dropped), power spectrum, Slaney-normalised mel filters (80 or 128 bins), log10(max(x, 1e-10)), floored at
// (global max - 8), then (x + 4) / 4.
#include <cstdint>
#include <span>
#include <vector>

namespace quasr::audio {

inline constexpr int kNFft = 400;
inline constexpr int kHopLength = 160;
inline constexpr int kChunkFrames = 3000;  // 30-s window

struct LogMel {
  int n_mels = 0;
  int64_t n_frames = 0;
  std::vector<float> data;  // [n_mels][n_frames], row-major
};

LogMel log_mel_spectrogram(std::span<const float> samples_16k, int n_mels, int64_t padding = 160);

}  // namespace quasr::audio
