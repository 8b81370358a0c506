// rotate=hadamard in the pipeline (docs/ptq.md) on the real tiny.en: without rounding the rotated network computes
// the same function; with W8A8 and with GPTQ int4 it runs natively as simulated, through a revision-3 container;
// and rotation lowers round-to-nearest's layer-output error (int3:g128, int4:pc) on real calibration activations.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "quasr/kernels/gemm.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/hadamard.h"
#include "test_ptq_util.h"

namespace quasr::models {
namespace {

namespace fs = std::filesystem;
using testing::small_calibration_file;
using testing::temp_file;
using testing::transcribe_test_clean;

TEST(Rotate, WithoutRoundingTheModelComputesTheSameFunction) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const std::string clip = testing::test_clean_utterances().front().audio.string();
  const testing::ModelOutputs ref = testing::encoder_and_logits(*WhisperModel::load("tiny.en"), clip);
  // fp32 storage keeps the rotated weights exactly: the rotation is the only change. Every Linear and the conv stem
  // are rotated; the tied embedding is not (its rows are looked up as token vectors).
  const std::string recipe = "w=fp32,conv=on,embed=on,rotate=hadamard";
  WhisperWeights w = load_whisper_weights(resolve_model_dir("tiny.en"));
  const WhisperWeights original = w;
  const WhisperQuantization q = quantize_whisper(w, quant::Recipe::parse(recipe));
  EXPECT_EQ(q.quantized.at("model.encoder.layers.0.self_attn.q_proj.weight").hadamard_block, 128);  // K = 384
  EXPECT_EQ(q.quantized.at("model.decoder.layers.3.fc2.weight").hadamard_block, 512);               // K = 1536
  EXPECT_EQ(q.quantized.at("model.encoder.conv1.weight").hadamard_block, 16);                       // K = 80 x 3
  EXPECT_EQ(q.quantized.at("model.encoder.conv2.weight").hadamard_block, 128);                      // K = 384 x 3
  EXPECT_EQ(q.quantized.at("model.decoder.embed_tokens.weight").hadamard_block, 0);
  EXPECT_TRUE(q.input_scales.empty());
  EXPECT_NE(q.quantized.at("model.encoder.layers.0.fc1.weight").q.dequantize(),
            original.tensors.at("model.encoder.layers.0.fc1.weight").values);
  WhisperLoadOptions o;
  o.simulate = true;  // fp32 storage has no native kernel
  o.recipe = recipe;
  const testing::ModelOutputs rotated = testing::encoder_and_logits(*load_whisper_model("tiny.en", o), clip);
  const double e_enc = testing::relative_error(ref.encoder, rotated.encoder);
  const double e_log = testing::relative_error(ref.logits, rotated.logits);
  std::printf("[relative error] rotate=hadamard without rounding: encoder output %.2e, logits %.2e\n", e_enc, e_log);
  EXPECT_LT(e_enc, 1e-5);
  EXPECT_LT(e_log, 1e-5);
}

TEST(Rotate, W8A8AndGptqInt4RunNativelyAsSimulatedThroughARevision3Container) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  for (const std::string& recipe : {std::string("w8a8,rotate=hadamard"),
                                   "w=int4:g128,a=int8-dyn-token,algo=gptq,rotate=hadamard,calib=" +
                                       small_calibration_file()}) {
    WhisperWeights w = load_whisper_weights(resolve_model_dir("tiny.en"));
    const WhisperQuantization q = quantize_whisper(w, quant::Recipe::parse(recipe));
    const std::string path = temp_file("model.quasr");
    save_whisper_quasr(path, w, q.quantized, recipe, "test", q.input_scales);
    const WhisperQuasr back = load_whisper_quasr(path, false);
    for (const auto& [name, ct] : q.quantized)
      EXPECT_EQ(back.quantized.at(name).hadamard_block, ct.hadamard_block) << name;
    const testing::Transcripts native = transcribe_test_clean(*load_whisper_model(path, {}));
    WhisperLoadOptions sim;
    sim.simulate = true;
    const testing::Transcripts simulated = transcribe_test_clean(*load_whisper_model(path, sim));
    // Integer x integer products: the native kernels and the simulation are bit-exact, rotation included.
    EXPECT_EQ(native.text, simulated.text) << recipe;
    std::printf("[wer] tiny.en %s on the 4 test-clean clips: %.3f\n", recipe.substr(0, recipe.find(",calib=")).c_str(),
                native.wer);
    EXPECT_LT(native.wer, 0.15) << recipe << ": " << native.text[0];
    fs::remove(path);
  }
}

// sum over the calibration samples X of ||X W^T - X Weff^T||^2 for every quantized Linear, where Weff is the weight
// the quantized layer effectively multiplies the original input by: Q(W) plainly, Q(W H) H when rotated.
double total_layer_error(const std::string& recipe, const WhisperWeights& original, const quant::Calibration& cal) {
  WhisperWeights w = original;
  const WhisperQuantization q = quantize_whisper(w, quant::Recipe::parse(recipe));
  double total = 0;
  for (const auto& [name, ct] : q.quantized) {
    const quant::InputStats& s = cal.at(name);
    const int64_t n = ct.q.shape[0], k = ct.q.shape[1];
    std::vector<float> diff = ct.q.dequantize();
    if (ct.hadamard_block > 0) quant::hadamard_rotate_rows(diff.data(), n, k, k, ct.hadamard_block);
    const std::vector<float>& wt = original.tensors.at(name).values;
    for (size_t i = 0; i < diff.size(); ++i) diff[i] = wt[i] - diff[i];
    std::vector<float> y(static_cast<size_t>(s.n_samples * n));
    kernels::sgemm(false, true, s.n_samples, n, k, 1.0f, s.samples.data(), k, diff.data(), k, 0.0f, y.data(), n);
    for (float v : y) total += static_cast<double>(v) * v;
  }
  return total;
}

TEST(Rotate, LowersRoundToNearestLayerErrorOnCalibrationActivations) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const quant::Calibration cal = quant::Calibration::load(small_calibration_file());
  const WhisperWeights w = load_whisper_weights(resolve_model_dir("tiny.en"));
  for (const char* spec : {"int3:g128", "int4:pc"}) {
    const double plain = total_layer_error(std::string("w=") + spec, w, cal);
    const double rotated = total_layer_error(std::string("w=") + spec + ",rotate=hadamard", w, cal);
    std::printf("[ratio] tiny.en w=%s RTN layer-output error on calibration samples, rotated / plain: %.3f\n", spec,
                rotated / plain);
    EXPECT_LT(rotated, plain) << spec;
  }
}

}  // namespace
}  // namespace quasr::models
