// Calibration of the real tiny.en on real mini-calib audio: deterministic files, statistics consistent with the
// network's structure; the observer's sharing of inputs on synthetic input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "quasr/audio/audio.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/eval/dataset.h"
#include "quasr/io/file_util.h"
#include "quasr/models/whisper_calibrate.h"
#include "quasr/models/whisper_quantized.h"

namespace quasr::models {
namespace {

namespace fs = std::filesystem;

const char* kMiniCalib = "/work/shared/data/LibriSpeech/mini-calib";

// The first `n` mini-calib utterances (sorted by id) shorter than 29 s: one 30-s window each.
std::vector<CalibrationAudio> short_utterances(size_t n) {
  std::vector<CalibrationAudio> out;
  for (const auto& u : eval::load_librispeech(kMiniCalib).utterances) {
    if (out.size() == n) break;
    if (audio::load_audio_16k(u.audio.string()).size() < 29 * audio::kSampleRate) out.push_back({u.id, u.audio.string()});
  }
  return out;
}

TEST(CalibrateWhisper, TinyEnIsDeterministicAndConsistent) {
  if (!fs::is_directory(kMiniCalib)) GTEST_SKIP() << "no mini-calib at " << kMiniCalib;
  const auto audio = short_utterances(2);
  ASSERT_EQ(audio.size(), 2u);
  CalibrateOptions opt;
  opt.collect.max_samples = 32;
  opt.progress = false;
  const quant::Calibration a = calibrate_whisper("tiny.en", audio, "test: 2 mini-calib utterances", opt);
  const quant::Calibration b = calibrate_whisper("tiny.en", audio, "test: 2 mini-calib utterances", opt);
  const std::string pa = (fs::path(::testing::TempDir()) / "quasr_calib_a.safetensors").string();
  const std::string pb = (fs::path(::testing::TempDir()) / "quasr_calib_b.safetensors").string();
  a.save(pa);
  b.save(pb);
  EXPECT_EQ(io::read_file_bytes(pa), io::read_file_bytes(pb)) << "two calibrations of the same data differ";
  const quant::Calibration r = quant::Calibration::load(pa);
  EXPECT_EQ(r.utterances, 2);
  EXPECT_EQ(r.model_sha256.size(), 64u);

  // Every quantizable tensor has statistics of its input width.
  WhisperConfig cfg;
  cfg.n_audio_state = cfg.n_text_state = 384;
  cfg.n_audio_head = cfg.n_text_head = 6;
  cfg.n_audio_layer = cfg.n_text_layer = 4;
  cfg.n_vocab = 51864;
  cfg.n_audio_ffn = cfg.n_text_ffn = 1536;
  const auto tensors = whisper_quantizable_tensors(cfg);
  ASSERT_EQ(r.inputs.size(), tensors.size());
  for (const auto& t : tensors) {
    const quant::InputStats& s = r.at(t.name);
    EXPECT_EQ(s.k, t.shape[1]) << t.name;
    EXPECT_GT(s.rows, 0) << t.name;
    EXPECT_EQ(s.n_samples, std::min<int64_t>(32, s.rows)) << t.name;
  }
  const quant::InputStats& fc1 = r.at("model.encoder.layers.0.fc1.weight");
  EXPECT_EQ(fc1.rows, 1500 * 2);  // one window per utterance, 1500 encoder frames each
  EXPECT_EQ(r.at("model.encoder.conv1.weight").rows, 3000 * 2);
  EXPECT_EQ(r.at("model.encoder.conv2.weight").rows, 1500 * 2);
  EXPECT_EQ(r.at("model.decoder.layers.0.encoder_attn.k_proj.weight").rows, 1500 * 2);
  EXPECT_GT(*std::max_element(fc1.channel_max_abs.begin(), fc1.channel_max_abs.end()), 0.0f);
  for (int64_t j = 0; j < fc1.k; ++j) {
    // Cauchy-Schwarz ties sum |x_j| to the diagonal of X^T X; the max bounds the mean.
    const double sum = fc1.channel_sum_abs[j], sq = fc1.xtx[j * fc1.k + j];
    EXPECT_LE(sum * sum, fc1.rows * sq * (1 + 1e-5)) << j;
    EXPECT_LE(sum, fc1.rows * static_cast<double>(fc1.channel_max_abs[j]) * (1 + 1e-9)) << j;
    EXPECT_GE(static_cast<double>(fc1.channel_max_abs[j]) * fc1.channel_max_abs[j] * fc1.rows, sq * (1 - 1e-5)) << j;
  }
  // Shared inputs: q/k/v of one attention, and the cross k/v of every decoder layer, have identical statistics.
  EXPECT_TRUE(r.at("model.encoder.layers.2.self_attn.q_proj.weight") == r.at("model.encoder.layers.2.self_attn.v_proj.weight"));
  EXPECT_TRUE(r.at("model.decoder.layers.0.encoder_attn.k_proj.weight") ==
              r.at("model.decoder.layers.3.encoder_attn.v_proj.weight"));
  EXPECT_FALSE(r.at("model.decoder.layers.0.encoder_attn.q_proj.weight") ==
               r.at("model.decoder.layers.0.encoder_attn.k_proj.weight"));
  // The decoder saw its own tokens: every self-attention q / fc1 / fc2 of the decoder saw the same number of rows.
  const int64_t tokens = r.at("model.decoder.layers.0.fc1.weight").rows;
  EXPECT_GT(tokens, 10);
  EXPECT_EQ(r.at("model.decoder.layers.3.fc2.weight").rows, tokens);
  EXPECT_EQ(r.at("model.decoder.layers.1.self_attn.q_proj.weight").rows, tokens);
}

TEST(CalibrateWhisper, ObserverSharesInputsAndChecksTheStructure) {
  WhisperConfig cfg;
  cfg.n_audio_state = cfg.n_text_state = 8;
  cfg.n_audio_head = cfg.n_text_head = 2;
  cfg.n_audio_layer = cfg.n_text_layer = 1;
  cfg.n_vocab = 50;
  cfg.n_audio_ffn = cfg.n_text_ffn = 16;
  cfg.n_mels = 4;
  const auto tensors = whisper_quantizable_tensors(cfg);
  const auto leader = whisper_shared_inputs(cfg);
  quant::CollectOptions opt;
  opt.hist_bins = 16;
  WhisperCalibrationObserver obs(cfg, opt);
  Rng rng(3);
  // Each distinct input observed twice (two "utterances"), followers right after their leader with the same rows.
  std::map<std::string, std::vector<float>> seen;  // all rows each leader saw, dense
  std::map<std::string, std::vector<float>> last;  // each leader's latest rows
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& t : tensors) {
      const std::string& l = leader.at(t.name);
      const int64_t k = t.shape[1], rows = 3 + pass;
      if (l == t.name) {
        std::vector<float>& x = last[l];
        x.assign(static_cast<size_t>(rows * k), 0);
        for (float& v : x) v = static_cast<float>(rng.normal());
        seen[l].insert(seen[l].end(), x.begin(), x.end());
      }
      obs.observe(t.name, last.at(l).data(), rows, k, k);
    }
  const quant::Calibration c = obs.finish();
  for (const auto& t : tensors) {
    const std::vector<float>& x = seen.at(leader.at(t.name));
    const int64_t k = t.shape[1];
    const quant::InputStats& s = c.at(t.name);
    ASSERT_EQ(s.rows, static_cast<int64_t>(x.size()) / k) << t.name;
    for (int64_t j = 0; j < k; ++j) {
      double m = 0, diag = 0;
      for (int64_t r = 0; r < s.rows; ++r) {
        m = std::max(m, std::fabs(static_cast<double>(x[r * k + j])));
        diag += static_cast<double>(x[r * k + j]) * x[r * k + j];
      }
      EXPECT_EQ(s.channel_max_abs[j], static_cast<float>(m)) << t.name;
      EXPECT_NEAR(s.xtx[j * k + j], diag, 1e-5 * diag) << t.name;
    }
  }
  EXPECT_EQ(leader.at("model.encoder.layers.0.self_attn.k_proj.weight"), "model.encoder.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(leader.at("model.decoder.layers.0.encoder_attn.v_proj.weight"),
            "model.decoder.layers.0.encoder_attn.k_proj.weight");

  // A follower seeing other data than its leader, a wrong width, an unknown name, or a Linear that never ran.
  WhisperCalibrationObserver o2(cfg, opt);
  std::vector<float> x(64, 1.0f), y(64, 2.0f);
  o2.observe("model.encoder.layers.0.self_attn.q_proj.weight", x.data(), 2, 8, 8);
  EXPECT_THROW(o2.observe("model.encoder.layers.0.self_attn.k_proj.weight", y.data(), 2, 8, 8), InvalidArgument);
  EXPECT_THROW(o2.observe("model.encoder.layers.0.fc1.weight", x.data(), 2, 8, 7), InvalidArgument);
  EXPECT_THROW(o2.observe("model.encoder.layers.0.fc1.bias", x.data(), 2, 8, 8), InvalidArgument);
  EXPECT_THROW(o2.finish(), InvalidArgument);
}

TEST(CalibrateWhisper, RefusesNoAudioAndQuantizedModels) {
  EXPECT_THROW(calibrate_whisper("tiny.en", std::vector<CalibrationAudio>{}, "none"), InvalidArgument);
  const std::string file = (fs::path(::testing::TempDir()) / "quasr_not_a_model.quasr").string();
  io::write_text_file_atomic(file, "x");
  const std::vector<CalibrationAudio> one = {{"x", "/nonexistent.flac"}};
  EXPECT_THROW(calibrate_whisper(file, one, "none"), InvalidArgument);
}

}  // namespace
}  // namespace quasr::models
