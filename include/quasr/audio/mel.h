#pragma once
// Whisper's log-mel spectrogram, exactly as faster-whisper's FeatureExtractor computes it: the waveform padded
// with `padding` trailing zeros, STFT (n_fft 400, hop 160, periodic Hann, centred with reflect padding, last frame
// dropped), power spectrum, Slaney-normalised mel filters (80 or 128 bins), log10(max(x, 1e-10)), floored at
// (global max - 8), then (x + 4) / 4. Computed in double; within 1e-4 (max abs) of the float32 reference.
// Equations and measured differences: docs/audio.md.
#include <cstdint>
#include <span>
#include <vector>

namespace quasr::audio {

inline constexpr int kNFft = 400;
inline constexpr int kHopLength = 160;
inline constexpr int kChunkFrames = 3000;  // 30-s window
inline constexpr int kMaxMels = 256;

struct LogMel {
  int n_mels = 0;
  int64_t n_frames = 0;
  std::vector<float> data;  // [n_mels][n_frames], row-major
};

// n_frames = (samples + padding) / 160. Fewer than 160 padded samples give n_frames = 0 and no data (the reference
// raises on that input). Throws InvalidArgument for n_mels outside [1, kMaxMels], padding < 0, or a non-finite
// sample. Frames are computed in parallel with quasr::parallel_for; the result does not depend on the thread count.
LogMel log_mel_spectrogram(std::span<const float> samples_16k, int n_mels, int64_t padding = 160);

// The Slaney mel filter bank faster-whisper uses (librosa.filters.mel(sr=16000, n_fft=400, htk=False,
// norm="slaney")), computed in double and rounded to float as the reference stores it: [n_mels][n_fft/2 + 1].
std::vector<float> mel_filter_bank(int n_mels);

}  // namespace quasr::audio
