#pragma once
// Layer sensitivity of a Whisper model (quant/sensitivity.h, docs/ptq.md): each quantizable tensor is quantized
// alone (round-to-nearest, formats::quantize), everything else FP32, and scored by a cheap proxy: the KL divergence
// of the teacher-forced decoder's next-token distributions from the FP32 model's, on calibration audio, with the
// FP32 model's own greedy tokens as the forced sequence. `quasr sensitivity` is the command line.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "quasr/formats/quant_spec.h"
#include "quasr/models/whisper.h"
#include "quasr/models/whisper_calibrate.h"
#include "quasr/quant/sensitivity.h"

namespace quasr::models {

// Teacher forcing: feeds `tokens` (prompt + continuation) to a fresh decoder state over `encoder_out` in one pass
// and returns the logits of every position, [tokens.size()][n_vocab] (row i predicts tokens[i + 1]).
std::vector<float> teacher_forced_logits(const WhisperModel& model, std::span<const float> encoder_out,
                                         std::span<const int> tokens);

struct SensitivityOptions {
  std::vector<formats::QuantSpec> formats;  // candidate weight formats (empty: default_sensitivity_formats())
  std::string tensors = "*";                // glob over canonical tensor names: which tensors are measured
  bool conv = false, embed = false;         // also measure conv1/conv2, the token embedding (Linears always)
  bool progress = true;                     // one line per tensor on stderr
};
// int8:pc, int4:g128, int3:g128, int2:g64.
std::vector<formats::QuantSpec> default_sensitivity_formats();

// Measures `model` (directory or installed name of a full-precision model; a .quasr file is refused) on `audio`
// (the first 30-s window of each utterance). `description` goes to Sensitivity::data. A format that does not fit a
// tensor (group not dividing K) is left out for that tensor. Throws InvalidArgument naming the problem (no tensor
// matching the glob, no utterance, an utterance whose greedy transcript is empty).
quant::Sensitivity measure_whisper_sensitivity(const std::string& model, std::span<const CalibrationAudio> audio,
                                               const std::string& description,
                                               const SensitivityOptions& options = {});

// How far a whole recipe moves the model from FP32 on calibration audio, by the same proxy as sensitivity (the
// teacher-forced decoder's next-token KL from the FP32 model, FP32 greedy tokens forced), with every tensor the
// recipe names quantized at once: a fast way to rank recipes (PTQ algorithms, mixes) before a WER evaluation.
struct RecipeDivergence {
  std::string recipe;
  double kl = 0;              // nats per scored token, mean
  double top1_agreement = 0;  // share of scored positions whose most likely token is FP32's
  int64_t tokens = 0;         // scored positions
  double fp32_self_kl = 0;    // the FP32 model against its stored teacher: the resolution floor
  double seconds = 0;         // quantizing on load + scoring
};
// `model` is a full-precision model (name or directory; a .quasr file is refused); each recipe is applied on load
// (simulation path when `simulate`; "fp32" is the unquantized model, as in quasr eval). on_done (may be empty) sees each result as soon as it is measured.
std::vector<RecipeDivergence> measure_recipe_divergence(const std::string& model, std::span<const CalibrationAudio> audio,
                                                        std::span<const std::string> recipes, bool simulate,
                                                        const std::function<void(const RecipeDivergence&)>& on_done = {});

// `recipe` with auto-bits=B,sens=FILE expanded into per-tensor rules for the float model in `dir` (config
// `config`), the sens file checked against the model's source hash; other recipes are returned unchanged.
quant::Recipe expand_whisper_auto_bits(const quant::Recipe& recipe, const std::string& dir,
                                       const WhisperConfig& config);

}  // namespace quasr::models
