#pragma once
// Shared by the calibration-driven tests (static scales, GPTQ, AWQ, SmoothQuant on the real tiny.en): one small real
// calibration of tiny.en on mini-calib, made once per test binary build and reused by every test process (ctest runs
// each test in its own process), and greedy transcription of the test-clean clips.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "quasr/audio/audio.h"
#include "quasr/audio/mel.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/wer.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper_calibrate.h"
#include "quasr/quant/calibration.h"

namespace quasr::models::testing {

inline const char* kMiniCalib = "/work/shared/data/LibriSpeech/mini-calib";
inline const char* kTestClean = "/work/shared/data/LibriSpeech/test-clean";

inline bool have_librispeech() {
  return std::filesystem::is_directory(kMiniCalib) && std::filesystem::is_directory(kTestClean);
}

// The first `n` mini-calib utterances (sorted by id) shorter than 29 s: one 30-s window each.
inline std::vector<CalibrationAudio> short_calibration_utterances(size_t n) {
  std::vector<CalibrationAudio> out;
  for (const auto& u : eval::load_librispeech(kMiniCalib).utterances) {
    if (out.size() == n) break;
    if (audio::load_audio_16k(u.audio.string()).size() < 29 * audio::kSampleRate) out.push_back({u.id, u.audio.string()});
  }
  return out;
}

// A calibration of tiny.en on 2 mini-calib utterances with 128 samples per input, as a file. Made by the first test
// process that needs it and reused by the others: the name carries this test binary's modification time, so a
// rebuilt binary (possibly with changed calibration code) never reuses an old file. Concurrent makers write the
// same bytes atomically, so a race only costs time.
inline const std::string& small_calibration_file() {
  static const std::string path = [] {
    struct stat st {};
    const long stamp = ::stat("/proc/self/exe", &st) == 0 ? static_cast<long>(st.st_mtime) : 0;
    const std::string p = (std::filesystem::path(::testing::TempDir()) /
                           ("quasr_ptq_tiny_en_2utt_" + std::to_string(stamp) + ".safetensors"))
                              .string();
    if (!std::filesystem::exists(p)) {
      // Files of earlier builds (175 MiB each: X^T X dominates) are not needed any more.
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(::testing::TempDir(), ec))
        if (e.path().filename().string().rfind("quasr_ptq_tiny_en_2utt_", 0) == 0 && e.path().string() != p)
          std::filesystem::remove(e.path(), ec);
      CalibrateOptions opt;
      opt.progress = false;
      opt.collect.max_samples = 128;
      const auto audio = short_calibration_utterances(2);
      calibrate_whisper("tiny.en", audio, "test: 2 mini-calib utterances", opt).save(p);
    }
    return p;
  }();
  return path;
}

// A path in the test temp directory, unique to this process.
inline std::string temp_file(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / ("quasr_ptq_" + std::to_string(::getpid()) + "_" + name)).string();
}

inline std::string greedy_text(const WhisperModel& m, const std::string& clip) {
  const auto tok = Tokenizer::load(m.directory());
  TranscribeOptions o;
  o.beam_size = 1;
  o.temperatures = {0.0f};
  return transcribe(m, tok, audio::load_audio_16k(clip), o).text();
}

// The test-clean utterances (the 4 clips), sorted by id.
inline std::vector<eval::Utterance> test_clean_utterances() {
  auto u = eval::load_librispeech(kTestClean).utterances;
  std::sort(u.begin(), u.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return u;
}

// Greedy transcripts of the 4 test-clean clips, and their corpus WER against the references.
struct Transcripts {
  std::vector<std::string> text;
  double wer = 0;
};
inline Transcripts transcribe_test_clean(const WhisperModel& m) {
  const eval::EnglishTextNormalizer norm;
  Transcripts t;
  int64_t errors = 0, words = 0;
  for (const auto& u : test_clean_utterances()) {
    t.text.push_back(greedy_text(m, u.audio.string()));
    const eval::Alignment a = eval::align_words(norm(u.reference), norm(t.text.back()), false);
    errors += a.counts.errors();
    words += a.counts.ref_length();
  }
  t.wer = static_cast<double>(errors) / static_cast<double>(std::max<int64_t>(1, words));
  return t;
}

// ||a - b|| / ||a||
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(a[i]) * a[i];
  }
  return std::sqrt(num / den);
}

// The encoder output of one clip (padded to one 30-s window) and the decoder's logits after four fixed tokens: what
// an exact reparametrisation of the network (SmoothQuant, rotations without rounding) must leave unchanged.
struct ModelOutputs {
  std::vector<float> encoder, logits;
};
inline ModelOutputs encoder_and_logits(const WhisperModel& m, const std::string& clip) {
  std::vector<float> samples = audio::load_audio_16k(clip);
  samples.resize(30 * audio::kSampleRate, 0.0f);  // one 30-s window: 3000 frames without extra padding
  const audio::LogMel mel = audio::log_mel_spectrogram(samples, m.config().n_mels, 0);
  ModelOutputs o;
  o.encoder = m.encode(mel.data);
  auto st = m.start(o.encoder, 1);
  const std::vector<int> tokens = {50257, 50362, 383, 1049};  // <|startoftranscript|> <|notimestamps|> and two words
  o.logits.resize(static_cast<size_t>(m.config().n_vocab));
  m.step(*st, tokens, static_cast<int>(tokens.size()), o.logits);
  return o;
}

}  // namespace quasr::models::testing
