// Layer sensitivity on the real tiny.en: teacher forcing in one pass equals step-by-step decoding; a sensitivity
// run over one mini-calib utterance gives finite positive KL that grows as the format gets coarser; an
// auto-bits recipe built from it resolves to the target average and loads and transcribes a test-clean clip.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "quasr/audio/audio.h"
#include "quasr/audio/mel.h"
#include "quasr/core/error.h"
#include "quasr/eval/dataset.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper_decode.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_sensitivity.h"
#include "test_whisper_model_util.h"

namespace quasr::models {
namespace {

namespace fs = std::filesystem;

const char* kMiniCalib = "/work/shared/data/LibriSpeech/mini-calib";

bool have_tiny_en() { return fs::exists(std::string(QUASR_SOURCE_DIR) + "/models/tiny.en/model.bin"); }

// The first `n` mini-calib utterances (sorted by id) shorter than 20 s: cheap, one window each.
std::vector<CalibrationAudio> short_utterances(size_t n) {
  std::vector<CalibrationAudio> out;
  for (const auto& u : eval::load_librispeech(kMiniCalib).utterances) {
    if (out.size() == n) break;
    if (audio::load_audio_16k(u.audio.string()).size() < 20 * audio::kSampleRate) out.push_back({u.id, u.audio.string()});
  }
  return out;
}

TEST(Sensitivity, TeacherForcingMatchesStepByStep) {
  if (!have_tiny_en()) GTEST_SKIP() << "no models/tiny.en";
  const auto clips = testing::test_clean_clips();
  if (clips.empty()) GTEST_SKIP() << "no test-clean clips";
  const auto m = WhisperModel::load("tiny.en");
  const auto tokenizer = Tokenizer::load(m->directory());
  const WhisperTokens tok = WhisperTokens::from(tokenizer);
  const auto mel = audio::log_mel_spectrogram(audio::load_audio_16k(clips[0]), m->config().n_mels, 160);
  std::vector<float> window(static_cast<size_t>(mel.n_mels) * audio::kChunkFrames, 0.0f);
  for (int b = 0; b < mel.n_mels; ++b)
    for (int64_t f = 0; f < std::min<int64_t>(mel.n_frames - 1, audio::kChunkFrames); ++f)
      window[b * audio::kChunkFrames + f] = mel.data[b * mel.n_frames + f];
  const std::vector<float> enc = m->encode(window);
  std::vector<int> tokens = {tok.sot, tok.no_timestamps};
  for (int t : tokenizer.encode(" He said nothing")) tokens.push_back(t);
  ASSERT_GE(tokens.size(), 4u);
  const std::vector<float> all = teacher_forced_logits(*m, enc, tokens);
  const int64_t V = m->config().n_vocab;
  ASSERT_EQ(all.size(), tokens.size() * V);
  const auto st = m->start(enc, 1);
  std::vector<float> one(V);
  for (size_t i = 0; i < tokens.size(); ++i) {
    m->step(*st, std::span<const int>(&tokens[i], 1), 1, one);
    double max_diff = 0, max_abs = 0;
    for (int64_t v = 0; v < V; ++v) {
      max_diff = std::max(max_diff, std::abs(static_cast<double>(one[v]) - all[i * V + v]));
      max_abs = std::max(max_abs, std::abs(static_cast<double>(one[v])));
    }
    // Same arithmetic except the sgemm's row blocking (M = 4 rows vs M = 1).
    EXPECT_LE(max_diff, 1e-4 * max_abs) << "position " << i;
  }
}

TEST(Sensitivity, TinyEnKlGrowsWithCoarserFormatsAndAutoBitsTranscribes) {
  if (!have_tiny_en() || !fs::is_directory(kMiniCalib)) GTEST_SKIP() << "no tiny.en or mini-calib";
  const auto clips = testing::test_clean_clips();
  if (clips.empty()) GTEST_SKIP() << "no test-clean clips";
  const auto audio = short_utterances(1);
  ASSERT_EQ(audio.size(), 1u);
  SensitivityOptions opt;
  for (const char* f : {"int8:pc", "int3:g128", "int2:g64"}) opt.formats.push_back(formats::QuantSpec::parse(f));
  // One encoder tensor (the encoder is re-run for it) and one decoder tensor.
  opt.tensors = "*layers.3.fc1.weight";
  opt.progress = false;
  const quant::Sensitivity s = measure_whisper_sensitivity("tiny.en", audio, "test: 1 mini-calib utterance", opt);
  ASSERT_EQ(s.tensors.size(), 2u);  // encoder and decoder layer 3 fc1
  EXPECT_EQ(s.model_sha256.size(), 64u);
  EXPECT_GT(s.tokens, 5);
  for (const auto& t : s.tensors) {
    ASSERT_EQ(t.options.size(), 3u) << t.tensor.name;
    for (const auto& o : t.options) {
      EXPECT_TRUE(std::isfinite(o.kl)) << t.tensor.name << " " << o.format.to_string();
      EXPECT_GT(o.kl, 0.0) << t.tensor.name << " " << o.format.to_string();
    }
    EXPECT_GT(t.options[1].kl, t.options[0].kl) << t.tensor.name << ": int3 should cost more than int8";
    EXPECT_GT(t.options[2].kl, t.options[0].kl) << t.tensor.name << ": int2 should cost more than int8";
  }
  const std::string path = (fs::path(::testing::TempDir()) / "quasr_sens_tiny.json").string();
  s.save(path);

  // Halfway between all-int2 and all-int8: the plan's average lands within one option step below the target.
  const double lo = 2.25, hi = 8.0 + 16.0 / 384.0;
  const double target = (lo + hi) / 2;
  const std::string recipe = "auto-bits=" + std::to_string(target) + ",sens=" + path;
  const WhisperConfig cfg = load_whisper_weights(resolve_model_dir("tiny.en")).config;
  const auto plan = quant::resolve_plan(
      expand_whisper_auto_bits(quant::Recipe::parse(recipe), resolve_model_dir("tiny.en"), cfg),
      whisper_quantizable_tensors(cfg));
  int64_t bytes = 0, elements = 0, max_step = 0;
  for (const auto& e : plan)
    if (e.quantized) bytes += static_cast<int64_t>(e.storage.total()), elements += static_cast<int64_t>(e.storage.elements);
  for (const auto& t : s.tensors)
    for (size_t k = 0; k + 1 < t.options.size(); ++k)
      max_step = std::max(max_step, std::abs(t.options[k].bytes - t.options[k + 1].bytes));
  EXPECT_EQ(elements, s.tensors[0].elements + s.tensors[1].elements);
  EXPECT_LE(8.0 * bytes / elements, target);
  EXPECT_GE(8.0 * bytes / elements, target - 8.0 * max_step / elements);

  WhisperLoadOptions lo_opt;
  lo_opt.recipe = recipe;
  lo_opt.simulate = true;
  const auto q = load_whisper_model("tiny.en", lo_opt);
  const auto tokenizer = Tokenizer::load(q->directory());
  TranscribeOptions t;
  t.beam_size = 1;
  t.temperatures = {0.0f};
  const std::string text = transcribe(*q, tokenizer, audio::load_audio_16k(clips[0]), t).text();
  EXPECT_GT(text.size(), 5u) << text;
}

// Whole-recipe divergence (quasr divergence): FP32 itself is at the resolution floor with every top-1 token
// agreeing; int8 weights move the model less than int4 groups of 128, which move it less than int3; GPTQ-free
// recipes only, so no calibration file is needed.
TEST(Divergence, TinyEnRanksRecipesByHowFarTheyMoveTheModel) {
  if (!have_tiny_en() || !fs::is_directory(kMiniCalib)) GTEST_SKIP() << "no tiny.en or mini-calib";
  const auto audio = short_utterances(2);
  ASSERT_EQ(audio.size(), 2u);
  const std::vector<std::string> recipes = {"fp32", "w=int8:pc", "w=int4:g128", "w=int3:g128"};
  size_t seen = 0;
  const auto r = measure_recipe_divergence("tiny.en", audio, recipes, /*simulate=*/true,
                                           [&](const RecipeDivergence&) { ++seen; });
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(seen, 4u);
  EXPECT_GT(r[0].tokens, 10);
  EXPECT_LT(r[0].kl, 1e-6);
  EXPECT_EQ(r[0].top1_agreement, 1.0);
  for (size_t i = 1; i < r.size(); ++i) {
    EXPECT_EQ(r[i].recipe, recipes[i]);
    EXPECT_TRUE(std::isfinite(r[i].kl));
    EXPECT_GT(r[i].kl, r[i - 1].kl) << recipes[i] << " against " << recipes[i - 1];
  }
  EXPECT_LT(r[3].top1_agreement, 1.0);
  EXPECT_THROW(measure_recipe_divergence("tiny.en", audio, {}, true), InvalidArgument);
}

}  // namespace
}  // namespace quasr::models
