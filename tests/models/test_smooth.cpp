// SmoothQuant in the pipeline (smooth=ALPHA, docs/ptq.md) on the real tiny.en with a small real calibration: an
// exact reparametrisation when nothing is rounded, LayerNorm folding where a LayerNorm feeds the Linear and runtime
// input scales elsewhere, and W8A8 with static scales of the smoothed inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "quasr/audio/audio.h"
#include "quasr/audio/mel.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/run.h"
#include "quasr/eval/wer.h"
#include "quasr/models/whisper_quantized.h"
#include "test_ptq_util.h"

namespace quasr::models {
namespace {

using testing::small_calibration_file;
using testing::relative_error;
using Outputs = testing::ModelOutputs;
constexpr auto run = testing::encoder_and_logits;

TEST(Smooth, WithoutRoundingTheModelComputesTheSameFunction) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const std::string clip = testing::test_clean_utterances().front().audio.string();
  const Outputs ref = run(*WhisperModel::load("tiny.en"), clip);
  // fp32 "quantization" stores the weights exactly, so smoothing is the only change: every Linear (conv stem and
  // tied embedding included) is smoothed, by LayerNorm folding or by a runtime input scale.
  const std::string recipe = "w=fp32,conv=on,embed=on,smooth=0.5,calib=" + small_calibration_file();
  WhisperWeights w = load_whisper_weights(resolve_model_dir("tiny.en"));
  const WhisperWeights original = w;
  const WhisperQuantization q = quantize_whisper(w, quant::Recipe::parse(recipe));
  // Runtime input scales exactly where no block LayerNorm feeds the Linear: per encoder layer out and fc2, per
  // decoder layer out, cross out, fc2, cross k and v; conv1, conv2 and the embedding.
  EXPECT_EQ(q.input_scales.size(), 4u * 2 + 4u * 5 + 3);
  EXPECT_TRUE(q.input_scales.count("model.decoder.layers.2.encoder_attn.k_proj.weight"));
  EXPECT_FALSE(q.input_scales.count("model.encoder.layers.0.self_attn.q_proj.weight"));
  EXPECT_NE(w.tensors.at("model.encoder.layers.0.self_attn_layer_norm.weight").values,
            original.tensors.at("model.encoder.layers.0.self_attn_layer_norm.weight").values);
  EXPECT_NE(q.quantized.at("model.encoder.layers.0.fc1.weight").q.dequantize(),
            original.tensors.at("model.encoder.layers.0.fc1.weight").values);
  WhisperLoadOptions o;
  o.simulate = true;  // fp32 storage has no native kernel
  o.recipe = recipe;
  const Outputs smoothed = run(*load_whisper_model("tiny.en", o), clip);
  const double e_enc = relative_error(ref.encoder, smoothed.encoder), e_log = relative_error(ref.logits, smoothed.logits);
  std::printf("[relative error] smooth=0.5 without rounding: encoder output %.2e, logits %.2e\n", e_enc, e_log);
  EXPECT_LT(e_enc, 1e-5);
  EXPECT_LT(e_log, 1e-5);
}

TEST(Smooth, W8A8StaticWithSmoothingTranscribesAndCountsItsInputScales) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const std::string cal = small_calibration_file();
  const std::string recipe = "w=int8:pc,a=int8-static,calib=" + cal + ",calibrator=max,smooth=0.5";
  WhisperWeights w = load_whisper_weights(resolve_model_dir("tiny.en"));
  const WhisperQuantization q = quantize_whisper(w, quant::Recipe::parse(recipe));
  WhisperWeights w2 = load_whisper_weights(resolve_model_dir("tiny.en"));
  const WhisperQuantization plain =
      quantize_whisper(w2, quant::Recipe::parse("w=int8:pc,a=int8-static,calib=" + cal + ",calibrator=max"));
  EXPECT_EQ(q.input_scales.size(), 4u * 2 + 4u * 5);
  int64_t scale_bytes = 0;
  for (const auto& [name, m] : q.input_scales) scale_bytes += 4 * static_cast<int64_t>(m.size());
  EXPECT_EQ(eval::model_size(w.config, recipe).model.bytes -
                eval::model_size(w.config, "w=int8:pc,a=int8-static,calib=" + cal + ",calibrator=max").model.bytes,
            scale_bytes);
  // The static scales are those of the smoothed inputs: smaller where smoothing moved outliers into the weights.
  int smaller = 0;
  for (const auto& [name, ct] : q.quantized) smaller += ct.act.static_scale < plain.quantized.at(name).act.static_scale;
  EXPECT_GE(smaller, 32) << "of " << q.quantized.size();
  // Through a container, natively.
  const std::string path = testing::temp_file("smooth.quasr");
  save_whisper_quasr(path, w, q.quantized, recipe, "test", q.input_scales);
  const auto model = load_whisper_model(path, {});
  const eval::EnglishTextNormalizer norm;
  int64_t errors = 0, words = 0;
  for (const auto& u : testing::test_clean_utterances()) {
    const eval::Alignment a = eval::align_words(norm(u.reference), norm(testing::greedy_text(*model, u.audio.string())), false);
    errors += a.counts.errors();
    words += a.counts.ref_length();
  }
  const double wer = static_cast<double>(errors) / static_cast<double>(words);
  std::printf("[wer] tiny.en w=int8:pc,a=int8-static (max), smooth=0.5 on the 4 test-clean clips: %.3f\n", wer);
  EXPECT_LT(wer, 0.15);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace quasr::models
