// Layer sensitivity of Whisper (models/whisper_sensitivity.h): one tensor quantized at a time, scored by the
// teacher-forced decoder's KL divergence from the FP32 model.
#include "quasr/models/whisper_sensitivity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "quasr/audio/audio.h"
#include "quasr/audio/mel.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/sha256.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/traits.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/whisper_decode.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/recipe.h"

namespace quasr::models {
namespace {

// What one calibration utterance contributes: its first 30-s window, the FP32 encoder output, the forced
// sequence (prompt + FP32 greedy tokens) and the FP32 log-probabilities of the scored positions.
struct Utterance {
  std::vector<float> window;       // [n_mels][3000]
  std::vector<float> encoder_out;  // FP32
  std::vector<int> tokens;         // prompt + greedy continuation
  int64_t first_scored = 0;        // row of the last prompt token: predicts the first generated token
  int64_t scored = 0;              // rows first_scored .. tokens.size() - 1 (the last predicts EOT)
  std::vector<float> teacher;      // log-softmax of the FP32 logits, [scored][n_vocab]
};

// Log-softmax of one row in double (the KL of nearby distributions is a small difference of large terms).
void log_softmax(const float* x, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  const double lse = m + std::log(s);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(x[i]) - lse;
}

// The first 30-s window of the features, as transcribe() encodes it (frames past the content are zero).
std::vector<float> first_window(const audio::LogMel& mel) {
  std::vector<float> w(static_cast<size_t>(mel.n_mels) * audio::kChunkFrames, 0.0f);
  const int64_t n = std::min<int64_t>(std::max<int64_t>(mel.n_frames - 1, 0), audio::kChunkFrames);
  for (int m = 0; m < mel.n_mels; ++m)
    for (int64_t f = 0; f < n; ++f) w[static_cast<size_t>(m) * audio::kChunkFrames + f] = mel.data[m * mel.n_frames + f];
  return w;
}

// Sum over the scored rows of KL(teacher || model) for the model's logits of the whole forced sequence.
double kl_sum(const Utterance& u, const std::vector<float>& logits, int64_t V) {
  std::vector<double> row_kl(static_cast<size_t>(u.scored));
  parallel_for(0, u.scored, 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> lq;
    for (int64_t r = r0; r < r1; ++r) {
      log_softmax(logits.data() + (u.first_scored + r) * V, V, lq);
      const float* lp = u.teacher.data() + r * V;
      double kl = 0;
      for (int64_t i = 0; i < V; ++i) {
        const double p = std::exp(static_cast<double>(lp[i]));
        kl += p * (static_cast<double>(lp[i]) - lq[i]);
      }
      row_kl[r] = kl;
    }
  });
  double s = 0;
  for (double k : row_kl) s += k;  // in row order: the result does not depend on the thread count
  return s;
}

// The FP32 teacher of every utterance: greedy decoding without timestamps as the forced sequence, and the FP32
// log-probabilities of its scored positions. Adds the scored positions to *tokens and sets *self_kl, the FP32
// model's KL against its own stored (float) teacher per token: close to zero, the floor of what can be resolved.
std::vector<Utterance> prepare_teacher(const WhisperModel& model, std::span<const CalibrationAudio> audio,
                                       int64_t* tokens, double* self_kl) {
  const WhisperConfig& cfg = model.config();
  const int64_t V = cfg.n_vocab;
  const auto tokenizer = Tokenizer::load(model.directory());
  const WhisperTokens tok = WhisperTokens::from(tokenizer);
  GenerateOptions g;
  g.beam_size = 1;
  g.suppress_tokens = suppressed_tokens(tokenizer, std::vector<int>{-1});
  g.return_no_speech_prob = false;
  std::vector<Utterance> utts;
  int64_t scored = 0;
  for (const CalibrationAudio& a : audio) {
    Utterance u;
    const audio::LogMel mel = audio::log_mel_spectrogram(audio::load_audio_16k(a.path), cfg.n_mels, 160);
    u.window = first_window(mel);
    u.encoder_out = model.encode(u.window);
    std::vector<int> prompt{tok.sot};
    if (cfg.multilingual) {
      const auto langs = detect_language(model, tokenizer, u.encoder_out);
      prompt.push_back(tokenizer.token_id("<|" + langs.at(0).code + "|>"));
      prompt.push_back(tok.transcribe);
    }
    prompt.push_back(tok.no_timestamps);
    const GenerateResult r = whisper_generate(model, tok, u.encoder_out, prompt, g);
    u.tokens = prompt;
    const auto& gen = r.hypotheses.at(0).tokens;
    u.tokens.insert(u.tokens.end(), gen.begin(), gen.end());
    u.first_scored = static_cast<int64_t>(prompt.size()) - 1;
    u.scored = static_cast<int64_t>(u.tokens.size()) - u.first_scored;
    const std::vector<float> logits = teacher_forced_logits(model, u.encoder_out, u.tokens);
    u.teacher.resize(static_cast<size_t>(u.scored * V));
    std::vector<double> lp;
    for (int64_t r = 0; r < u.scored; ++r) {
      log_softmax(logits.data() + (u.first_scored + r) * V, V, lp);
      for (int64_t i = 0; i < V; ++i) u.teacher[r * V + i] = static_cast<float>(lp[i]);
    }
    scored += u.scored;
    utts.push_back(std::move(u));
  }
  // The teacher is stored in float: the FP32 model scored against it must give (close to) zero, not a rounding
  // artefact that would swamp the KL of int8 weights.
  double kl = 0;
  for (const Utterance& u : utts) kl += kl_sum(u, teacher_forced_logits(model, u.encoder_out, u.tokens), V);
  *tokens += scored;
  *self_kl = kl / static_cast<double>(std::max<int64_t>(scored, 1));
  return utts;
}

bool measured_kind(const quant::TensorInfo& t, const SensitivityOptions& o) {
  switch (t.kind) {
    case quant::TensorInfo::Kind::kLinear: return true;
    case quant::TensorInfo::Kind::kConv: return o.conv;
    case quant::TensorInfo::Kind::kEmbedding: return o.embed;
  }
  return false;
}

}  // namespace

std::vector<float> teacher_forced_logits(const WhisperModel& model, std::span<const float> encoder_out,
                                         std::span<const int> tokens) {
  if (tokens.empty()) throw InvalidArgument("teacher forcing needs at least one token");
  const auto state = model.start(encoder_out, 1);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(model.config().n_vocab));
  model.step_all_positions(*state, tokens, static_cast<int>(tokens.size()), logits);
  return logits;
}

std::vector<formats::QuantSpec> default_sensitivity_formats() {
  std::vector<formats::QuantSpec> out;
  for (const char* s : {"int8:pc", "int4:g128", "int3:g128", "int2:g64"}) out.push_back(formats::QuantSpec::parse(s));
  return out;
}

quant::Sensitivity measure_whisper_sensitivity(const std::string& model_name, std::span<const CalibrationAudio> audio,
                                               const std::string& description, const SensitivityOptions& options) {
  if (audio.empty()) throw InvalidArgument("sensitivity needs at least one utterance");
  if (is_model_file(model_name))
    throw InvalidArgument("sensitivity: " + model_name +
                          " is a quantized container; sensitivity is measured on the full-precision model (give its "
                          "directory or name)");
  const std::vector<formats::QuantSpec> formats =
      options.formats.empty() ? default_sensitivity_formats() : options.formats;
  const std::string dir = resolve_model_dir(model_name);
  quant::Sensitivity result;
  result.model_sha256 = sha256_file_hex(whisper_source_file(dir));
  result.model = model_name;
  result.data = description;
  result.utterances = static_cast<int64_t>(audio.size());
  result.proxy =
      "teacher-forced decoder KL(p_fp32 || p_quantized) in nats, mean over scored tokens; one tensor quantized "
      "(RTN) at a time, everything else FP32; forced sequence: SOT prompt with <|notimestamps|> and the FP32 "
      "model's greedy tokens up to EOT, first 30-s window of each utterance";

  const auto m = WhisperModel::load(dir);
  const WhisperConfig& cfg = m->config();
  const int64_t V = cfg.n_vocab;
  std::vector<quant::TensorInfo> chosen;
  for (const quant::TensorInfo& t : whisper_quantizable_tensors(cfg))
    if (measured_kind(t, options) && quant::glob_match(options.tensors, t.name)) chosen.push_back(t);
  if (chosen.empty())
    throw InvalidArgument("sensitivity: no quantizable tensor matches '" + options.tensors + "'" +
                          (options.conv || options.embed ? "" : " (Linear weights only without --conv / --embed)"));

  double self_kl = 0;
  const std::vector<Utterance> utts = prepare_teacher(*m, audio, &result.tokens, &self_kl);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  for (size_t ti = 0; ti < chosen.size(); ++ti) {
    const quant::TensorInfo& t = chosen[ti];
    quant::SensitivityTensor st;
    st.tensor = t;
    st.elements = t.shape.at(0) * t.shape.at(1);
    const bool encoder = t.stack == "encoder";
    // The original values, taken out while this tensor is measured and put back however the measurement ends.
    struct Restore {
      WhisperModel& model;
      const std::string& name;
      std::vector<float> values;
      ~Restore() { (void)model.swap_weight(name, std::move(values)); }
    } original{*m, t.name, m->swap_weight(t.name, {})};
    std::string line;
    for (const formats::QuantSpec& spec : formats) {
      formats::StorageBytes bytes;
      try {
        bytes = formats::expected_storage(spec, t.shape);
        if (spec.granularity.kind == formats::GranularityKind::kPerGroup && t.shape[1] % spec.granularity.group != 0)
          continue;
        const int64_t block = formats::traits(spec.format).fixed_block;
        if (block > 0 && t.shape[1] % block != 0) continue;
      } catch (const InvalidArgument&) {
        continue;  // the format does not fit this tensor's shape
      }
      const formats::QTensor q = formats::quantize(original.values, t.shape, spec);
      (void)m->swap_weight(t.name, q.dequantize());
      double kl = 0;
      for (const Utterance& u : utts) {
        const std::vector<float> enc = encoder ? m->encode(u.window) : std::vector<float>();
        kl += kl_sum(u, teacher_forced_logits(*m, encoder ? enc : u.encoder_out, u.tokens), V);
      }
      quant::SensitivityOption o;
      o.format = spec;
      o.bytes = static_cast<int64_t>(bytes.total());
      o.bits_per_weight = 8.0 * static_cast<double>(o.bytes) / static_cast<double>(st.elements);
      o.kl = std::max(0.0, kl / static_cast<double>(result.tokens));
      char buf[96];
      std::snprintf(buf, sizeof buf, "  %s %.3g", spec.to_string().c_str(), o.kl);
      line += buf;
      st.options.push_back(std::move(o));
    }
    if (st.options.empty())
      throw InvalidArgument("sensitivity: no candidate format fits tensor " + t.name + " (K = " +
                            std::to_string(t.shape[1]) + ")");
    result.tensors.push_back(std::move(st));
    if (options.progress) {
      const double el = std::chrono::duration<double>(clock::now() - t0).count();
      const double eta = el / static_cast<double>(ti + 1) * static_cast<double>(chosen.size() - ti - 1);
      std::fprintf(stderr, "sensitivity: %zu/%zu %s%s  (%.1f s elapsed, ETA %.0f s)\n", ti + 1, chosen.size(),
                   t.name.c_str(), line.c_str(), el, eta);
    }
  }
  if (options.progress)
    std::fprintf(stderr, "sensitivity: %lld scored tokens over %zu utterances; FP32 against its own stored teacher: "
                         "KL %.3g\n", static_cast<long long>(result.tokens), utts.size(), self_kl);
  return result;
}

std::vector<RecipeDivergence> measure_recipe_divergence(const std::string& model_name,
                                                        std::span<const CalibrationAudio> audio,
                                                        std::span<const std::string> recipes, bool simulate,
                                                        const std::function<void(const RecipeDivergence&)>& on_done) {
  if (audio.empty()) throw InvalidArgument("divergence needs at least one utterance");
  if (recipes.empty()) throw InvalidArgument("divergence needs at least one recipe");
  if (is_model_file(model_name))
    throw InvalidArgument("divergence: " + model_name +
                          " is a quantized container; give the full-precision model the recipes apply to");
  const auto m = WhisperModel::load(resolve_model_dir(model_name));
  const int64_t V = m->config().n_vocab;
  int64_t tokens = 0;
  double self_kl = 0;
  const std::vector<Utterance> utts = prepare_teacher(*m, audio, &tokens, &self_kl);
  std::vector<RecipeDivergence> out;
  for (const std::string& recipe : recipes) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    WhisperLoadOptions o;
    o.recipe = recipe == "fp32" ? "" : recipe;  // "fp32": the unquantized model, as in quasr eval
    o.simulate = simulate;
    const auto q = load_whisper_model(model_name, o);
    RecipeDivergence d;
    d.recipe = recipe;
    d.tokens = tokens;
    d.fp32_self_kl = self_kl;
    int64_t agree = 0;
    double kl = 0;
    for (const Utterance& u : utts) {
      const std::vector<float> logits = teacher_forced_logits(*q, q->encode(u.window), u.tokens);
      kl += kl_sum(u, logits, V);
      // The raw distributions' most likely tokens (before decoding's suppressions), quantized against FP32.
      for (int64_t r = 0; r < u.scored; ++r) {
        const float* row = logits.data() + (u.first_scored + r) * V;
        const float* t = u.teacher.data() + r * V;
        agree += (std::max_element(row, row + V) - row) == (std::max_element(t, t + V) - t);
      }
    }
    d.kl = std::max(0.0, kl / static_cast<double>(tokens));
    d.top1_agreement = static_cast<double>(agree) / static_cast<double>(tokens);
    d.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (on_done) on_done(d);
    out.push_back(std::move(d));
  }
  return out;
}

quant::Recipe expand_whisper_auto_bits(const quant::Recipe& recipe, const std::string& dir,
                                       const WhisperConfig& config) {
  if (!recipe.ptq.auto_bits && recipe.ptq.sensitivity.empty()) return recipe;
  return quant::expand_auto_bits(recipe, whisper_quantizable_tensors(config),
                                 sha256_file_hex(whisper_source_file(dir)));
}

}  // namespace quasr::models
