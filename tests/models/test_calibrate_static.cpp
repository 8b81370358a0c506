// End to end: static per-tensor INT8 activation scales calibrated on mini-calib, applied to every Linear of tiny.en
// (W8A8, native kernels), transcribe a test-clean clip like the FP32 model. The scales reach the runtime through
// explicit per-tensor recipe rules (a=int8-static:SCALE), so this runs before the PTQ pipeline accepts calib=.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "quasr/audio/audio.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/wer.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper_calibrate.h"
#include "quasr/models/whisper_quantized.h"
#include "test_ptq_util.h"

namespace quasr::models {
namespace {

namespace fs = std::filesystem;
using testing::greedy_text;

// The recipe that gives each quantized Linear of `plan` its calibrated scale.
std::string recipe_with_scales(const std::vector<quant::PlanEntry>& plan) {
  std::string r = "w=int8:pc,a=int8-static:1";
  for (const auto& e : plan) {
    if (!e.quantized) continue;
    char s[32];
    std::snprintf(s, sizeof s, "%.9g", e.act.static_scale);  // round-trips a float exactly
    r += " ; name=" + e.tensor.name + ": a=int8-static:" + s;
  }
  return r;
}

TEST(CalibrateStatic, W8A8WithCalibratedScalesTranscribesLikeFp32) {
  const fs::path calib_dir = "/work/shared/data/LibriSpeech/mini-calib";
  const fs::path clip = "/work/shared/data/LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac";
  if (!fs::is_directory(calib_dir) || !fs::exists(clip)) GTEST_SKIP() << "no LibriSpeech data";
  const auto first = eval::load_librispeech(calib_dir).utterances.front();
  CalibrateOptions opt;
  opt.progress = false;
  opt.collect.max_samples = 0;
  const std::vector<CalibrationAudio> audio = {{first.id, first.audio.string()}};
  const quant::Calibration cal = calibrate_whisper("tiny.en", audio, "test: 1 mini-calib utterance", opt);

  const auto fp32 = WhisperModel::load("tiny.en");
  const eval::EnglishTextNormalizer norm;
  const std::string ref = norm(greedy_text(*fp32, clip.string()));
  ASSERT_GT(eval::split_words(ref).size(), 5u);
  auto plan = quant::resolve_plan(quant::Recipe::parse("w=int8:pc,a=int8-static:1"),
                                  whisper_quantizable_tensors(fp32->config()));
  for (const char* calibrator : {"max", "mse"}) {
    for (auto& e : plan) e.act.static_scale = 0;  // "from calibration"
    quant::apply_static_scales(plan, cal, quant::CalibratorSpec::parse(calibrator));
    WhisperLoadOptions lo;
    lo.recipe = recipe_with_scales(plan);
    const auto w8a8 = load_whisper_model("tiny.en", lo);
    const std::string hyp = norm(greedy_text(*w8a8, clip.string()));
    const eval::Alignment a = eval::align_words(ref, hyp, false);
    // W8A8 with static per-tensor scales from one calibration utterance: the same words, give or take one or two
    // (a scale off by an order of magnitude garbles the transcript entirely).
    EXPECT_LE(a.counts.rate(), 0.1) << calibrator << "\nFP32: " << ref << "\nW8A8: " << hyp;
  }
}

}  // namespace
}  // namespace quasr::models
