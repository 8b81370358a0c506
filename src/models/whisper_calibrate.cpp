// Calibration of a Whisper model (models/whisper_calibrate.h): an observer on every Linear input, greedy
// transcription of the calibration audio, one accumulator per distinct input.
#include "quasr/models/whisper_calibrate.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "quasr/audio/audio.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/sha256.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_spec.h"

namespace quasr::models {
namespace {

// Removes the observer however calibration ends.
struct ObserverGuard {
  WhisperModel& model;
  ObserverGuard(WhisperModel& m, LinearInputObserver* o) : model(m) { model.set_input_observer(o); }
  ~ObserverGuard() { model.set_input_observer(nullptr); }
};

}  // namespace

WhisperCalibrationObserver::WhisperCalibrationObserver(const WhisperConfig& c, const quant::CollectOptions& options)
    : options_(options), leader_(whisper_shared_inputs(c)) {
  for (const quant::TensorInfo& t : whisper_quantizable_tensors(c)) width_[t.name] = t.shape.at(1);
  for (const auto& [name, leader] : leader_)
    if (name == leader)
      acc_.emplace(name, std::make_unique<quant::InputStatsAccumulator>(width_.at(name), options,
                                                                        quant::stream_seed(options.seed, name)));
}

void WhisperCalibrationObserver::observe(const std::string& name, const float* x, int64_t rows, int64_t ldx,
                                         int64_t k) {
  auto l = leader_.find(name);
  if (l == leader_.end()) throw InvalidArgument("calibration: " + name + " is not a quantizable weight of this model");
  if (k != width_.at(name))
    throw InvalidArgument("calibration: " + name + " reported inputs of width " + std::to_string(k) + ", expected " +
                          std::to_string(width_.at(name)));
  ++calls_[name];
  Seen& last = last_[l->second];
  if (l->second == name) {
    acc_.at(name)->add(x, rows, ldx);
    last = {x, rows, ldx};
    return;
  }
  if (last.x != x || last.rows != rows || last.ldx != ldx)
    throw InvalidArgument("calibration: " + name + " does not see the input " + l->second +
                          " saw just before it, although the network shares it (whisper_shared_inputs)");
}

quant::Calibration WhisperCalibrationObserver::finish() {
  quant::Calibration c;
  for (const auto& [name, leader] : leader_) {
    if (calls_[name] != calls_[leader] || calls_[name] == 0)
      throw InvalidArgument("calibration: " + name + " ran " + std::to_string(calls_[name]) + " times but " + leader +
                            ", whose input it shares, ran " + std::to_string(calls_[leader]) + " times");
    c.inputs.emplace(name, acc_.at(leader)->finish());
  }
  c.options = options_;
  return c;
}

std::map<std::string, std::string> whisper_shared_inputs(const WhisperConfig& config) {
  const std::vector<WhisperTensorSpec> specs = whisper_tensor_specs(config);
  auto weight_name = [&](WhisperStack st, int layer, WhisperRole role) -> const std::string& {
    for (const auto& s : specs)
      if (s.stack == st && s.layer == layer && s.role == role && s.param == WhisperParam::kWeight) return s.name;
    QUASR_ASSERT(false && "tensor missing from the Whisper table");
    std::abort();
  };
  std::map<std::string, std::string> out;
  for (const quant::TensorInfo& t : whisper_quantizable_tensors(config)) out[t.name] = t.name;
  for (const auto& s : specs) {
    if (s.param != WhisperParam::kWeight) continue;
    if (s.role == WhisperRole::kAttnK || s.role == WhisperRole::kAttnV)
      out.at(s.name) = weight_name(s.stack, s.layer, WhisperRole::kAttnQ);  // q, k, v read the same normed x
    else if (s.role == WhisperRole::kCrossK || s.role == WhisperRole::kCrossV)
      out.at(s.name) = weight_name(WhisperStack::kDecoder, 0, WhisperRole::kCrossK);  // all read the encoder output
  }
  return out;
}

quant::Calibration calibrate_whisper(WhisperModel& model, const std::string& model_sha256,
                                     std::span<const CalibrationAudio> audio, const std::string& description,
                                     const CalibrateOptions& options) {
  if (audio.empty()) throw InvalidArgument("calibration needs at least one utterance");
  const auto tokenizer = Tokenizer::load(model.directory());
  // Greedy decoding at temperature 0 only: deterministic, and the decoder's inputs are the model's own tokens.
  TranscribeOptions topt;
  topt.beam_size = 1;
  topt.best_of = 1;
  topt.temperatures = {0.0f};
  topt.validate();

  WhisperCalibrationObserver observer(model.config(), options.collect);
  {
    ObserverGuard guard(model, &observer);
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    double audio_s = 0;
    for (size_t i = 0; i < audio.size(); ++i) {
      const std::vector<float> samples = audio::load_audio_16k(audio[i].path);
      audio_s += static_cast<double>(samples.size()) / audio::kSampleRate;
      transcribe(model, tokenizer, samples, topt);
      if (options.progress) {
        const double el = std::chrono::duration<double>(clock::now() - t0).count();
        const double eta = el / static_cast<double>(i + 1) * static_cast<double>(audio.size() - i - 1);
        std::fprintf(stderr, "calibrate: %zu/%zu %s  (%.0f s audio, %.1f s elapsed, ETA %.0f s)\n", i + 1,
                     audio.size(), audio[i].id.c_str(), audio_s, el, eta);
      }
    }
  }
  quant::Calibration c = observer.finish();
  c.model_sha256 = model_sha256;
  c.data = description;
  c.utterances = static_cast<int64_t>(audio.size());
  c.options = options.collect;
  return c;
}

quant::Calibration calibrate_whisper(const std::string& model, std::span<const CalibrationAudio> audio,
                                     const std::string& description, const CalibrateOptions& options) {
  if (audio.empty()) throw InvalidArgument("calibration needs at least one utterance");
  if (is_model_file(model))
    throw InvalidArgument("calibrate: " + model +
                          " is a quantized container; calibration runs the full-precision model (give its directory "
                          "or name)");
  const std::string dir = resolve_model_dir(model);
  const std::string sha = sha256_file_hex(whisper_source_file(dir));
  const auto m = WhisperModel::load(dir);
  return calibrate_whisper(*m, sha, audio, description, options);
}

}  // namespace quasr::models
