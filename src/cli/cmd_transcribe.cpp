// `quasr transcribe`: audio files to text with faster-whisper's decoding (defaults included), printing the
// transcript on stdout and a per-stage timing line on stderr (like whisper.cpp's whisper_print_timings).
#include <chrono>
#include <cstdio>
#include <optional>

#include "commands.h"
#include "quasr/audio/audio.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper.h"
#include "quasr/models/whisper_quantized.h"

namespace quasr::cli {

namespace {

struct TranscribeArgs {
  std::string model = "tiny.en";
  std::string recipe;     // quantize on load (docs/quantization.md)
  bool simulate = false;  // quantized layers through the simulation path
  int beam = 5;
  int best_of = 5;
  float patience = 1.0f;
  float length_penalty = 1.0f;
  int threads = 0;
  std::string format = "txt";
  std::string language;
  std::string task = "transcribe";
  bool without_timestamps = false;
  std::vector<float> temperatures = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};
  bool no_condition = false;
  std::string initial_prompt;
  uint64_t seed = 0;
  std::vector<std::string> files;
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void run(const TranscribeArgs& a) {
  if (a.threads < 0) throw InvalidArgument("--threads must be >= 0 (0 = all cores), got " + std::to_string(a.threads));
  const models::TranscriptFormat format = models::parse_transcript_format(a.format);
  models::TranscribeOptions opt;
  opt.beam_size = a.beam;
  opt.best_of = a.best_of;
  opt.patience = a.patience;
  opt.length_penalty = a.length_penalty;
  opt.language = a.language;
  opt.task = a.task;
  opt.without_timestamps = a.without_timestamps;
  opt.temperatures = a.temperatures;
  opt.condition_on_previous_text = !a.no_condition;
  opt.initial_prompt = a.initial_prompt;
  opt.seed = a.seed;
  opt.validate();  // bad options fail before the model loads
  set_num_threads(a.threads);

  auto t0 = std::chrono::steady_clock::now();
  const auto model = models::load_whisper_model(a.model, {a.simulate, a.recipe});
  const auto tokenizer = models::Tokenizer::load(model->directory());
  const double load_ms = ms_since(t0);

  for (size_t i = 0; i < a.files.size(); ++i) {
    const std::string& file = a.files[i];
    t0 = std::chrono::steady_clock::now();
    const std::vector<float> samples = audio::load_audio_16k(file);
    const double audio_ms = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    const models::Transcription t = models::transcribe(*model, tokenizer, samples, opt);
    const double total_ms = ms_since(t0) + audio_ms + (i == 0 ? load_ms : 0.0);
    if (a.files.size() > 1 && format != models::TranscriptFormat::kJson) std::printf("==> %s <==\n", file.c_str());
    const std::string out = models::format_transcript(t, format, file);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    std::fprintf(stderr,
                 "quasr: timings: %s: load %.1f ms | audio %.1f ms | mel %.1f ms | encode %.1f ms (%d windows) | "
                 "decode %.1f ms (%d calls) | total %.1f ms for %.2f s of audio (RTF %.3f) | threads %d\n",
                 file.c_str(), i == 0 ? load_ms : 0.0, audio_ms, t.times.mel_s * 1e3, t.times.encode_s * 1e3,
                 t.times.windows, t.times.decode_s * 1e3, t.times.decode_calls, total_ms, t.duration,
                 t.duration > 0 ? total_ms / 1e3 / t.duration : 0.0, num_threads());
  }
}

}  // namespace

void register_transcribe(CLI::App& app) {
  auto args = std::make_shared<TranscribeArgs>();
  CLI::App* cmd = app.add_subcommand("transcribe", "Transcribe audio files (faster-whisper's decoding and defaults)");
  cmd->add_option("files", args->files, "Audio files (WAV, FLAC, OGG, MP3, ...)")->required();
  cmd->add_option("--model,-m", args->model, "Model name (tiny.en, base) or CTranslate2 model directory")
      ->capture_default_str();
  cmd->add_option("--recipe", args->recipe, "Quantize the model on load with this recipe (docs/quantization.md)");
  cmd->add_flag("--simulate", args->simulate, "Run quantized layers through the simulation path (fake-quant)");
  cmd->add_option("--beam", args->beam, "Beam size (1 = greedy)")->capture_default_str();
  cmd->add_option("--best-of", args->best_of, "Samples drawn at temperature > 0")->capture_default_str();
  cmd->add_option("--patience", args->patience, "Beam search patience")->capture_default_str();
  cmd->add_option("--length-penalty", args->length_penalty, "Exponential length penalty")->capture_default_str();
  cmd->add_option("--threads,-t", args->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--output-format,-f", args->format, "txt, json, srt or vtt")->capture_default_str();
  cmd->add_option("--language,-l", args->language, "Language code (default: detect; English-only models: en)");
  cmd->add_option("--task", args->task, "transcribe or translate")->capture_default_str();
  cmd->add_flag("--without-timestamps", args->without_timestamps, "Decode text tokens only (no timestamp tokens)");
  cmd->add_option("--temperature", args->temperatures,
                  "Temperature(s) tried in order on fallback, e.g. 0 or 0,0.2,0.4 (default 0..1 step 0.2)")
      ->delimiter(',');
  cmd->add_flag("--no-condition-on-previous-text", args->no_condition,
                "Do not prompt each window with the previous text");
  cmd->add_option("--initial-prompt", args->initial_prompt, "Text to prompt the first window with");
  cmd->add_option("--seed", args->seed, "Seed for sampling at temperature > 0")->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace quasr::cli
