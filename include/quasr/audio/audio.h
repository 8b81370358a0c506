#pragma once
// Audio input: any file libsndfile decodes (WAV, FLAC, OGG/Vorbis, Opus, MP3 where the library has it), downmixed
// to mono and resampled to 16 kHz with libsoxr (high quality). Throws IoError naming the file and the problem.
#include <string>
#include <vector>

namespace quasr::audio {

inline constexpr int kSampleRate = 16000;

std::vector<float> load_audio_16k(const std::string& path);

}  // namespace quasr::audio
