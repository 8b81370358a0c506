// Log-mel features against faster-whisper's FeatureExtractor, run at test time through scripts/ref_features.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quasr/audio/mel.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "reference.h"

namespace quasr::audio {
namespace {

using testing::RefInput;
using testing::Reference;
using testing::run_reference;
using testing::TempDir;

constexpr double kMelTolerance = 1e-4;  // max abs difference from faster-whisper, as the module promises

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  return d;
}

// Compares our features on the reference's own waveform (isolating the feature code from decoding).
void expect_matches(const RefInput& ref, int n_mels, int64_t padding) {
  const auto& want = ref.mel.at(n_mels);
  const LogMel got = log_mel_spectrogram(ref.samples, n_mels, padding);
  EXPECT_EQ(got.n_mels, n_mels);
  if (!want.error.empty()) {
    // The reference raises when there is no frame (max of an empty array); we return an empty spectrogram.
    EXPECT_EQ(got.n_frames, 0) << ref.input << ": reference said " << want.error;
    EXPECT_TRUE(got.data.empty());
    return;
  }
  ASSERT_EQ(got.n_frames, want.n_frames) << ref.input;
  ASSERT_EQ(got.data.size(), want.data.size()) << ref.input;
  const double diff = max_abs_diff(got.data, want.data);
  EXPECT_LE(diff, kMelTolerance) << ref.input << " n_mels " << n_mels << " padding " << padding;
  std::printf("[mel] %-100s n_mels %3d padding %6lld frames %5lld max|diff| %.3g\n", ref.input.c_str(), n_mels,
              static_cast<long long>(padding), static_cast<long long>(got.n_frames), diff);
}

TEST(Mel, FilterBankMatchesFasterWhisper) {
  const Reference ref = run_reference({}, {80, 128, 40});
  for (const auto& [n_mels, want] : ref.filters) {
    const std::vector<float> got = mel_filter_bank(n_mels);
    ASSERT_EQ(got.size(), want.size());
    double max_rel = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i] == 0.0f, want[i] == 0.0f) << "n_mels " << n_mels << " index " << i;
      if (want[i] != 0.0f) max_rel = std::max(max_rel, std::abs(double(got[i]) / want[i] - 1.0));
    }
    // Same formula in double, rounded to float: at most an ulp or so of float apart.
    EXPECT_LE(max_rel, 3e-7) << "n_mels " << n_mels;
  }
}

TEST(Mel, SpeechClipsMatchFasterWhisper) {
  const std::vector<std::string> clips = testing::shared_clips();
  ASSERT_GE(clips.size(), 4u) << "shared LibriSpeech clips missing";
  const Reference ref = run_reference(clips, {80, 128});
  ASSERT_EQ(ref.inputs.size(), clips.size());
  for (const RefInput& r : ref.inputs) {
    expect_matches(r, 80, 160);
    expect_matches(r, 128, 160);
  }
}

// Whisper's 30-s window: the clip padded with 30 s of zeros, as openai-whisper's transcribe does.
TEST(Mel, LongPaddingMatchesFasterWhisper) {
  const std::vector<std::string> clips = testing::shared_clips();
  const Reference ref = run_reference({clips.front()}, {80}, 480000);
  expect_matches(ref.inputs.front(), 80, 480000);
}

// Lengths around the frame and reflection boundaries (the reflect pad is 200 samples: shorter signals reflect
// more than once), silence, and a full-scale tone, with padding 0 and 160.
TEST(Mel, EdgeCasesMatchFasterWhisper) {
  TempDir dir;
  std::vector<std::string> inputs;
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (int n : {0, 1, 2, 50, 159, 160, 161, 199, 200, 201, 202, 319, 399, 400, 401, 1000, 16000}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = noise(rng);
    const std::string path = dir.file("noise" + std::to_string(n) + ".f32");
    testing::write_f32(path, x);
    inputs.push_back("raw:" + path);
  }
  std::vector<float> silence(16000, 0.0f), tone(32000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = static_cast<float>(std::sin(2 * M_PI * 1000.0 * i / 16000.0));
  testing::write_f32(dir.file("silence.f32"), silence);
  testing::write_f32(dir.file("tone.f32"), tone);
  inputs.push_back("raw:" + dir.file("silence.f32"));
  inputs.push_back("raw:" + dir.file("tone.f32"));
  for (int64_t padding : {0, 160}) {
    const Reference ref = run_reference(inputs, {80, 128}, padding);
    for (const RefInput& r : ref.inputs) {
      expect_matches(r, 80, padding);
      expect_matches(r, 128, padding);
    }
  }
}

TEST(Mel, SameResultForAnyThreadCount) {
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> x(16000 * 7 + 123);
  for (auto& v : x) v = noise(rng);
  set_num_threads(1);
  const LogMel one = log_mel_spectrogram(x, 80);
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    const LogMel many = log_mel_spectrogram(x, 80);
    EXPECT_EQ(many.data, one.data) << threads << " threads";
  }
  set_num_threads(0);
}

TEST(Mel, RejectsBadArguments) {
  const std::vector<float> x(1600, 0.0f);
  EXPECT_THROW(log_mel_spectrogram(x, 0), InvalidArgument);
  EXPECT_THROW(log_mel_spectrogram(x, kMaxMels + 1), InvalidArgument);
  EXPECT_THROW(log_mel_spectrogram(x, 80, -1), InvalidArgument);
  EXPECT_THROW(mel_filter_bank(-3), InvalidArgument);
  std::vector<float> bad = x;
  bad[700] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(log_mel_spectrogram(bad, 80), InvalidArgument);
  bad[700] = std::numeric_limits<float>::infinity();
  try {
    log_mel_spectrogram(bad, 80);
    ADD_FAILURE() << "no exception for an infinite sample";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("sample 700"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quasr::audio
