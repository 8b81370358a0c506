// Audio input, matched to faster-whisper's decode_audio: PyAV decodes the file and ffmpeg's swresample converts it
// to 16-kHz mono int16, which faster-whisper divides by 32768. For 16-kHz input (no resampling) this file
// reproduces swresample's int16 conversion bit for bit for mono and stereo sources (rules below, each checked
// against decode_audio in tests/audio/test_audio_load.cpp). Other rates are resampled with libsoxr (high quality),
// whose filter differs from swresample's, so there the samples only agree approximately (see docs/audio.md).
#include "quasr/audio/audio.h"

#include <soxr.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

#include "quasr/core/error.h"

namespace quasr::audio {
namespace {

constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 768000;  // the highest rate real PCM formats use
// Frames decoded per block: 32768, fewer for many-channel files so a block stays within ~2^18 values.
constexpr sf_count_t kMaxBlockFrames = 1 << 15;
constexpr sf_count_t kBlockValues = 1 << 18;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("audio file '" + path + "': " + what);
}

// How the decoder hands samples to swresample decides its int16 conversion, so we read each class the same way:
//  - Int16: codecs that decode to <= 16-bit integers (PCM 8/16, FLAC 16, u-law, ADPCM...). swresample mixes these
//    in fixed point: mono is exact, stereo is (L + R + 1) >> 1 (coefficients 0.5 as Q15, rounding half up).
//  - Int32: 24/32-bit PCM and FLAC 24, decoded to int32. Mono converts by >> 16 (rounds down); stereo goes
//    through float32: 0.5f * L + 0.5f * R, then lrintf(x * 32768).
//  - Float: float/double PCM and the lossy codecs (Vorbis, Opus, MP3) that decode to float: mixed in float32 like
//    Int32 stereo and converted with lrintf(x * 32768) (round half to even), clipped to int16.
enum class SampleClass { Int16, Int32, Float };

SampleClass classify(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_24:
    case SF_FORMAT_PCM_32:
    case SF_FORMAT_ALAC_20:
    case SF_FORMAT_ALAC_24:
    case SF_FORMAT_ALAC_32:
    case SF_FORMAT_DWVW_24:
      return SampleClass::Int32;
    case SF_FORMAT_FLOAT:
    case SF_FORMAT_DOUBLE:
    case SF_FORMAT_VORBIS:
    case SF_FORMAT_OPUS:
    case SF_FORMAT_MPEG_LAYER_I:
    case SF_FORMAT_MPEG_LAYER_II:
    case SF_FORMAT_MPEG_LAYER_III:
      return SampleClass::Float;
    default:
      return SampleClass::Int16;
  }
}

int16_t clip_int16(long v) { return static_cast<int16_t>(std::clamp<long>(v, -32768, 32767)); }

// The final int16 step for float-domain values, as swresample's flt -> s16 (av_clip_int16(lrintf(x * 32768))).
// lrint rounds half to even in the default rounding mode, as lrintf does.
int16_t float_to_int16(double x) { return clip_int16(std::lrint(x * 32768.0)); }

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
struct SoxrDeleter {
  void operator()(soxr_t s) const { soxr_delete(s); }
};

// Streams mono blocks at the source rate through libsoxr, quantising its output to int16 like swresample's output.
class Resampler {
 public:
  Resampler(const std::string& path, int in_rate) : ratio_(double(kSampleRate) / in_rate) {
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT64_I, SOXR_FLOAT64_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t error = nullptr;
    soxr_.reset(soxr_create(in_rate, kSampleRate, 1, &error, &io, &quality, nullptr));
    if (error || !soxr_) fail(path, std::string("cannot create resampler: ") + (error ? error : "unknown error"));
    path_ = path;
  }

  // in == nullptr flushes the filter's tail.
  void process(const double* in, size_t n_in, std::vector<float>& out) {
    buffer_.resize(static_cast<size_t>(std::ceil(std::max<size_t>(n_in, kMaxBlockFrames) * ratio_)) + 256);
    size_t consumed = 0;
    for (;;) {
      size_t used = 0, produced = 0;
      const soxr_error_t error = soxr_process(soxr_.get(), in ? in + consumed : nullptr, n_in - consumed,
                                              in ? &used : nullptr, buffer_.data(), buffer_.size(), &produced);
      if (error) fail(path_, std::string("resampling failed: ") + error);
      for (size_t i = 0; i < produced; ++i) out.push_back(float_to_int16(buffer_[i]) / 32768.0f);
      consumed += used;
      if (in ? consumed >= n_in && produced < buffer_.size() : produced == 0) return;
    }
  }

 private:
  double ratio_;
  std::string path_;
  std::unique_ptr<soxr, SoxrDeleter> soxr_;
  std::vector<double> buffer_;
};

}  // namespace

std::vector<float> load_audio_16k(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) throw IoError("audio file path is empty");
  if (!fs::exists(path, ec)) fail(path, "no such file");
  if (fs::is_directory(path, ec)) fail(path, "is a directory, not an audio file");

  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) fail(path, std::string("cannot decode: ") + sf_strerror(nullptr));
  const int channels = info.channels;
  const int rate = info.samplerate;
  if (channels < 1) fail(path, "has " + std::to_string(channels) + " channels");
  if (rate < kMinSampleRate || rate > kMaxSampleRate)
    fail(path, "sample rate " + std::to_string(rate) + " Hz is outside [" + std::to_string(kMinSampleRate) + ", " +
                   std::to_string(kMaxSampleRate) + "]");
  // libsndfile reports an unknown length when it cannot find the end of the stream: an Ogg file cut short has no
  // end-of-stream page. Decoding such a stream yields an arbitrary prefix (often nothing), so refuse it.
  if (info.frames == SF_COUNT_MAX) fail(path, "stream length unknown (truncated or unterminated stream)");

  const SampleClass cls = classify(info.format);
  const bool resample = rate != kSampleRate;
  std::unique_ptr<Resampler> resampler;
  if (resample) resampler = std::make_unique<Resampler>(path, rate);

  std::vector<float> out;
  out.reserve(static_cast<size_t>(std::min<sf_count_t>(info.frames, sf_count_t{1} << 28) *
                                  (resample ? double(kSampleRate) / rate : 1.0)) + 16);
  const sf_count_t block_frames = std::clamp<sf_count_t>(kBlockValues / channels, 64, kMaxBlockFrames);
  const size_t block_values = static_cast<size_t>(block_frames) * static_cast<size_t>(channels);
  std::vector<short> s16(cls == SampleClass::Int16 ? block_values : 0);
  std::vector<int> s32(cls == SampleClass::Int32 ? block_values : 0);
  std::vector<float> f32(cls == SampleClass::Float ? block_values : 0);
  std::vector<double> mono(static_cast<size_t>(block_frames));
  const float inv_channels = 1.0f / static_cast<float>(channels);

  int64_t total = 0;
  for (;;) {
    sf_count_t got = 0;
    switch (cls) {
      case SampleClass::Int16: got = sf_readf_short(file.get(), s16.data(), block_frames); break;
      case SampleClass::Int32: got = sf_readf_int(file.get(), s32.data(), block_frames); break;
      case SampleClass::Float: got = sf_readf_float(file.get(), f32.data(), block_frames); break;
    }
    if (got <= 0) break;
    const size_t n = static_cast<size_t>(got);
    if (cls == SampleClass::Float)
      for (size_t i = 0; i < n * static_cast<size_t>(channels); ++i)
        if (!std::isfinite(f32[i]))
          fail(path, "sample " + std::to_string(total + int64_t(i / channels)) + " is not finite");
    total += got;

    if (!resample) {
      // 16 kHz: reproduce swresample's int16 conversion exactly (see SampleClass).
      for (size_t t = 0; t < n; ++t) {
        int16_t v = 0;
        if (cls == SampleClass::Int16) {
          const short* s = &s16[t * channels];
          if (channels == 1) {
            v = s[0];
          } else if (channels == 2) {
            v = static_cast<int16_t>((int(s[0]) + int(s[1]) + 1) >> 1);
          } else {
            long sum = 0;
            for (int c = 0; c < channels; ++c) sum += s[c];
            v = clip_int16(std::lround(std::floor(double(sum) / channels + 0.5)));
          }
        } else if (cls == SampleClass::Int32 && channels == 1) {
          v = static_cast<int16_t>(s32[t] >> 16);
        } else {
          float mix = 0.0f;
          for (int c = 0; c < channels; ++c) {
            const float x = cls == SampleClass::Int32 ? float(s32[t * channels + c]) * (1.0f / 2147483648.0f)
                                                      : f32[t * channels + c];
            mix = c == 0 ? inv_channels * x : mix + inv_channels * x;
          }
          v = float_to_int16(mix);
        }
        out.push_back(v / 32768.0f);
      }
    } else {
      // Other rates: average the channels in double at the source rate, then resample.
      for (size_t t = 0; t < n; ++t) {
        double sum = 0;
        for (int c = 0; c < channels; ++c) {
          const size_t i = t * channels + c;
          sum += cls == SampleClass::Int16   ? s16[i] / 32768.0
                 : cls == SampleClass::Int32 ? s32[i] / 2147483648.0
                                             : double(f32[i]);
        }
        mono[t] = sum / channels;
      }
      resampler->process(mono.data(), n, out);
    }
  }
  if (sf_error(file.get()) != SF_ERR_NO_ERROR)
    fail(path, "decoding failed after " + std::to_string(total) + " frames: " + sf_strerror(file.get()));
  if (total < info.frames)
    fail(path, "truncated: the header declares " + std::to_string(info.frames) + " frames but only " +
                   std::to_string(total) + " could be decoded");
  if (resample && total > 0) resampler->process(nullptr, 0, out);
  return out;
}

}  // namespace quasr::audio
