#pragma once
// Audio input: any file libsndfile decodes (WAV, FLAC, OGG/Vorbis, Opus, MP3 where the library has it), downmixed
// to mono and resampled to 16 kHz with libsoxr (high quality). Throws IoError naming the file and the problem.
//
// The result matches faster-whisper's decode_audio (ffmpeg to 16-kHz mono int16, divided by 32768): every value is
// a multiple of 1/32768, and for 16-kHz mono or stereo input the samples are bit-identical to decode_audio's.
// Other rates agree only approximately (a different resampling filter). Details and measurements: docs/audio.md.
#include <string>
#include <vector>

namespace quasr::audio {

inline constexpr int kSampleRate = 16000;

// Errors (IoError): missing file or directory, undecodable/corrupt file, zero channels, sample rate outside
// [1 kHz, 768 kHz], non-finite samples, and truncation where the format records the length (FLAC, MP3, Ogg; a
// truncated WAV yields its complete frames). Audio with no frames returns an empty vector.
std::vector<float> load_audio_16k(const std::string& path);

}  // namespace quasr::audio
