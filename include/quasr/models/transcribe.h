#pragma once
// Long-form transcription as faster-whisper 1.2.1's WhisperModel.transcribe() does it (without VAD and word
// timestamps): log-mel of the whole file, 30-s windows with `seek` advancing to the last complete timestamp pair,
// conditioning on previous text (<|startofprev|>, reset when the temperature exceeds 0.5), temperature fallback on
// compression ratio (zlib) and average log-probability, windows skipped as silence by the no-speech probability,
// and language detection on the first window for multilingual models.
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quasr/models/tokenizer.h"
#include "quasr/models/whisper.h"

namespace quasr::models {

// Defaults are faster-whisper's.
struct TranscribeOptions {
  std::string language;             // "" = detect (multilingual models); English-only models always use "en"
  std::string task = "transcribe";  // or "translate" (multilingual models)
  int beam_size = 5;
  int best_of = 5;  // samples drawn at temperature > 0
  float patience = 1.0f;
  float length_penalty = 1.0f;
  std::vector<float> temperatures = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};
  std::optional<float> compression_ratio_threshold = 2.4f;
  std::optional<float> log_prob_threshold = -1.0f;
  std::optional<float> no_speech_threshold = 0.6f;
  bool condition_on_previous_text = true;
  float prompt_reset_on_temperature = 0.5f;
  std::string initial_prompt;
  bool suppress_blank = true;
  std::vector<int> suppress_tokens = {-1};
  bool without_timestamps = false;
  float max_initial_timestamp = 1.0f;
  std::optional<int> max_new_tokens;
  uint64_t seed = 0;  // sampling at temperature > 0 draws from quasr::Rng(seed)

  void validate() const;  // throws InvalidArgument naming the bad option
};

struct Segment {
  int id = 0;
  int seek = 0;  // mel frame where its window started
  double start = 0, end = 0;  // seconds
  std::string text;
  std::vector<int> tokens;
  float temperature = 0;
  double avg_logprob = 0;
  double compression_ratio = 0;
  float no_speech_prob = 0;
};

struct StageTimes {
  double load_s = 0, mel_s = 0, encode_s = 0, decode_s = 0;
  int windows = 0;         // 30-s windows encoded
  int decode_calls = 0;    // generate() calls, fallbacks included
};

struct Transcription {
  std::string language;
  float language_probability = 1;
  double duration = 0;  // seconds of audio
  std::vector<Segment> segments;
  StageTimes times;
  std::string text() const;  // segment texts concatenated (each keeps its leading space)
};

// Transcribes 16-kHz mono samples. `on_segment`, if set, sees each segment as soon as it is final.
Transcription transcribe(const WhisperModel& model, const Tokenizer& tokenizer, std::span<const float> samples,
                         const TranscribeOptions& options,
                         const std::function<void(const Segment&)>& on_segment = {});

// zlib-compressed size ratio of UTF-8 text, as faster-whisper's get_compression_ratio (zlib level 6 by default).
double compression_ratio(std::string_view text);

// Output formats of `quasr transcribe`.
enum class TranscriptFormat { kText, kJson, kSrt, kVtt };
TranscriptFormat parse_transcript_format(const std::string& name);  // throws InvalidArgument listing the names
std::string format_transcript(const Transcription& t, TranscriptFormat format, const std::string& source = "");
// faster-whisper's format_timestamp: [HH:]MM:SS.mmm (hours when non-zero or `always_hours`).
std::string format_timestamp(double seconds, bool always_hours = false, char decimal_marker = '.');

}  // namespace quasr::models
