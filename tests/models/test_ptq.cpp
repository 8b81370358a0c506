// The post-training quantization pipeline on the real tiny.en with a small real calibration (test_ptq_util.h):
// GPTQ and AWQ through recipes (calib=, algo=, calibrator=), their containers (AWQ's input scales), their layer
// error against round-to-nearest, native and simulated agreement, size accounting, and the checks on the
// calibration.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "quasr/core/error.h"
#include "quasr/eval/run.h"
#include "quasr/io/file_util.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/wer.h"
#include "quasr/kernels/gemm.h"
#include "quasr/models/whisper_quantized.h"
#include "test_ptq_util.h"

namespace quasr::models {
namespace {

namespace fs = std::filesystem;
using testing::greedy_text;
using testing::small_calibration_file;
using testing::temp_file;
using testing::transcribe_test_clean;
using testing::Transcripts;

WhisperWeights tiny_en_weights() { return load_whisper_weights(resolve_model_dir("tiny.en")); }

// sum over the calibration's sampled rows X of ||X W^T - (X * m) Q^T||^2 for one weight, with input scale m (none:
// all ones).
double layer_error(const quant::InputStats& s, const std::vector<float>& w, const formats::QTensor& q,
                   const std::vector<float>& m = {}) {
  const int64_t n = q.shape[0], k = q.shape[1];
  std::vector<float> wq = q.dequantize();
  if (!m.empty())  // (X * m) Q^T = X (Q diag(m))^T
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) wq[i * k + j] *= m[j];
  for (size_t i = 0; i < wq.size(); ++i) wq[i] = w[i] - wq[i];
  std::vector<float> y(static_cast<size_t>(s.n_samples * n));
  kernels::sgemm(false, true, s.n_samples, n, k, 1.0f, s.samples.data(), k, wq.data(), k, 0.0f, y.data(), n);
  double e = 0;
  for (float v : y) e += static_cast<double>(v) * v;
  return e;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Ptq, GptqInt4ContainerTranscribesAndBeatsRtnOnCalibrationRows) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const std::string cal_file = small_calibration_file();
  const quant::Calibration cal = quant::Calibration::load(cal_file);
  WhisperWeights w = tiny_en_weights();
  const WhisperWeights original = w;
  const quant::Recipe gptq = quant::Recipe::parse("w=int4:g128,algo=gptq,calib=" + cal_file);
  const WhisperQuantization g = quantize_whisper(w, gptq);
  const WhisperQuantization r = quantize_whisper(w, quant::Recipe::parse("w=int4:g128"));
  ASSERT_EQ(g.quantized.size(), r.quantized.size());
  ASSERT_EQ(g.quantized.size(), 64u);  // every encoder (4 x 6) and decoder (4 x 10) Linear of tiny.en
  EXPECT_TRUE(g.input_scales.empty());
  double eg = 0, er = 0;
  int better = 0;
  for (const auto& [name, ct] : g.quantized) {
    const formats::QTensor& rq = r.quantized.at(name).q;
    // GPTQ really ran: its codes are not round-to-nearest's.
    EXPECT_NE(ct.q.payload, rq.payload) << name;
    const auto& x = cal.at(name);
    const double a = layer_error(x, original.tensors.at(name).values, ct.q);
    const double b = layer_error(x, original.tensors.at(name).values, rq);
    eg += a, er += b;
    better += a < b;
  }
  std::printf("[ratio] tiny.en int4:g128 GPTQ / RTN layer-output error on the calibration samples: %.3f (%d of %zu "
              "layers better)\n", eg / er, better, g.quantized.size());
  EXPECT_LT(eg, 0.9 * er);
  EXPECT_GE(better, 58);

  // A container made with GPTQ records the recipe and runs like any other.
  const std::string path = temp_file("gptq.quasr");
  save_whisper_quasr(path, w, g.quantized, gptq.text, "test");
  const auto model = load_whisper_model(path, {});
  const Transcripts t = transcribe_test_clean(*model);
  ASSERT_EQ(t.text.size(), 4u);
  std::printf("[wer] tiny.en int4:g128 GPTQ on the 4 test-clean clips: %.3f\n", t.wer);
  EXPECT_LT(t.wer, 0.15) << t.text[0];
  EXPECT_EQ(load_whisper_quasr(path, false).recipe, gptq.text);
  fs::remove(path);
}

TEST(Ptq, GptqWithStaticScalesRunsNativelyAsSimulated) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const std::string cal_file = small_calibration_file();
  WhisperWeights w = tiny_en_weights();
  const quant::Recipe recipe =
      quant::Recipe::parse("w=int8:pc,a=int8-static,calib=" + cal_file + ",calibrator=max,algo=gptq");
  const WhisperQuantization q = quantize_whisper(w, recipe);
  // Every scale came from the calibration (max |x| / 127 of that input).
  const quant::Calibration cal = quant::Calibration::load(cal_file);
  for (const auto& [name, ct] : q.quantized) {
    ASSERT_EQ(ct.act.mode, kernels::ActivationQuant::Mode::kStatic) << name;
    const auto& m = cal.at(name).channel_max_abs;
    EXPECT_FLOAT_EQ(ct.act.static_scale, *std::max_element(m.begin(), m.end()) / 127.0f) << name;
  }
  const std::string path = temp_file("gptq_static.quasr");
  save_whisper_quasr(path, w, q.quantized, recipe.text, "test");
  const Transcripts native = transcribe_test_clean(*load_whisper_model(path, {}));
  WhisperLoadOptions sim;
  sim.simulate = true;
  const Transcripts simulated = transcribe_test_clean(*load_whisper_model(path, sim));
  EXPECT_EQ(native.text, simulated.text);
  std::printf("[wer] tiny.en w=int8:pc,a=int8-static (max), GPTQ on the 4 test-clean clips: %.3f\n", native.wer);
  EXPECT_LT(native.wer, 0.15) << native.text[0];
  fs::remove(path);
}

TEST(Ptq, AwqInt4ContainerRoundTripsWithItsInputScalesAndTranscribes) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  const std::string cal_file = small_calibration_file();
  const quant::Calibration cal = quant::Calibration::load(cal_file);
  WhisperWeights w = tiny_en_weights();
  const WhisperWeights original = w;
  const quant::Recipe awq = quant::Recipe::parse("w=int4:g128,algo=awq,calib=" + cal_file);
  const WhisperQuantization a = quantize_whisper(w, awq);
  const WhisperQuantization r = quantize_whisper(w, quant::Recipe::parse("w=int4:g128"));
  ASSERT_EQ(a.quantized.size(), 64u);
  ASSERT_EQ(a.input_scales.size(), 64u);  // every AWQ'd Linear carries its scale, even when alpha = 0 chose s = 1
  double ea = 0, er = 0;
  int scaled = 0;
  int64_t scale_bytes = 0;
  for (const auto& [name, ct] : a.quantized) {
    const std::vector<float>& m = a.input_scales.at(name);
    ASSERT_EQ(static_cast<int64_t>(m.size()), ct.q.shape[1]) << name;
    scale_bytes += 4 * static_cast<int64_t>(m.size());
    const bool ones = std::all_of(m.begin(), m.end(), [](float v) { return v == 1.0f; });
    scaled += !ones;
    // AWQ really ran: where it scaled, its codes are not round-to-nearest's.
    if (!ones) {
      EXPECT_NE(ct.q.payload, r.quantized.at(name).q.payload) << name;
    }
    const auto& x = cal.at(name);
    const double e = layer_error(x, original.tensors.at(name).values, ct.q, m);
    const double b = layer_error(x, original.tensors.at(name).values, r.quantized.at(name).q);
    EXPECT_LE(e, b * 1.001) << name;  // AWQ's own search guarantees it on these samples (float summation aside)
    ea += e, er += b;
  }
  std::printf("[ratio] tiny.en int4:g128 AWQ / RTN layer-output error on the calibration samples: %.3f (%d of %zu "
              "layers with scales != 1)\n", ea / er, scaled, a.quantized.size());
  EXPECT_GE(scaled, 32);
  EXPECT_LT(ea, 0.9 * er);
  // Exact size accounting counts the 4 * K bytes of every input scale.
  const auto& cfg = original.config;
  EXPECT_EQ(eval::model_size(cfg, awq.text).model.bytes - eval::model_size(cfg, "w=int4:g128").model.bytes,
            scale_bytes);

  // The container keeps the input scales: bytes identical after save / load / save, and it transcribes.
  const std::string path = temp_file("awq.quasr"), again = temp_file("awq2.quasr");
  save_whisper_quasr(path, w, a.quantized, awq.text, "test", a.input_scales);
  WhisperQuasr loaded = load_whisper_quasr(path, false);
  EXPECT_EQ(loaded.input_scales, a.input_scales);
  save_whisper_quasr(again, w, loaded.quantized, loaded.recipe, loaded.source_sha256, loaded.input_scales);
  EXPECT_EQ(io::read_file_bytes(again), io::read_file_bytes(path));
  const Transcripts t = transcribe_test_clean(*load_whisper_model(path, {}));
  ASSERT_EQ(t.text.size(), 4u);
  std::printf("[wer] tiny.en int4:g128 AWQ on the 4 test-clean clips: %.3f\n", t.wer);
  EXPECT_LT(t.wer, 0.15) << t.text[0];
  fs::remove(path);
  fs::remove(again);
}

TEST(Ptq, CalibrationOfAnotherModelOrForAnotherWidthIsRefused) {
  if (!testing::have_librispeech()) GTEST_SKIP() << "no LibriSpeech data";
  quant::Calibration cal = quant::Calibration::load(small_calibration_file());
  cal.model_sha256 = std::string(64, '0');
  const std::string other = temp_file("other_model.safetensors");
  cal.save(other);
  WhisperWeights w = tiny_en_weights();
  const std::string err = error_of([&] { quantize_whisper(w, quant::Recipe::parse("w=int4:g128,algo=gptq,calib=" + other)); });
  EXPECT_NE(err.find(other), std::string::npos) << err;
  EXPECT_NE(err.find("model"), std::string::npos) << err;
  // A codebook format has no scales for GPTQ to fix: the error names the tensor.
  const std::string cb = error_of([&] {
    quantize_whisper(w, quant::Recipe::parse("w=kmeans4:pt,algo=gptq,calib=" + small_calibration_file()));
  });
  EXPECT_NE(cb.find("tensor model.encoder.layers.0.self_attn.q_proj.weight (algo=gptq"), std::string::npos) << cb;
  // Unreadable calibration file.
  EXPECT_NE(error_of([&] { quantize_whisper(w, quant::Recipe::parse("w8a8,algo=gptq,calib=/nonexistent.cal")); })
                .find("/nonexistent.cal"),
            std::string::npos);
  fs::remove(other);
}

}  // namespace
}  // namespace quasr::models
