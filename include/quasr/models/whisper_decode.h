#pragma once
// One Whisper decoding call over one 30-s window, with the semantics of CTranslate2's Whisper generate() as
// faster-whisper 1.2.1 calls it: the prompt (previous text, SOT sequence) is fed first, the probability of
// <|nospeech|> is read at the <|startoftranscript|> position, then greedy search, beam search (patience, length
// penalty, 2*beam candidates per step, finished hypotheses replaced by the next non-EOS candidate) or random
// sampling at a temperature, with the logits processors SuppressTokens, SuppressTokensBegin (suppress_blank) and
// ApplyTimestampRules. Long-form transcription over many windows lives in transcribe.h.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quasr/core/rng.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/whisper.h"

namespace quasr::models {

// The control token ids of a Whisper vocabulary.
struct WhisperTokens {
  int eot = -1, sot = -1, sot_prev = -1, sot_lm = -1, no_speech = -1, no_timestamps = -1;
  int transcribe = -1, translate = -1;
  int timestamp_begin = -1;  // <|0.00|> = no_timestamps + 1
  int timestamp_end = -1;    // <|30.00|>: last id of the vocabulary
  static WhisperTokens from(const Tokenizer& tokenizer);
};

// faster-whisper's Tokenizer.non_speech_tokens: symbols (speaker tags, music notes, brackets) suppressed so that
// text not actually spoken is not produced, computed by encoding the symbols with this tokenizer.
std::vector<int> non_speech_tokens(const Tokenizer& tokenizer);
// faster-whisper's get_suppressed_tokens(): -1 in `suppress_tokens` stands for non_speech_tokens(); the task and
// control tokens (transcribe, translate, sot, sot_prev, sot_lm, no_speech) are always added. Sorted, unique.
std::vector<int> suppressed_tokens(const Tokenizer& tokenizer, std::span<const int> suppress_tokens);

struct GenerateOptions {
  int beam_size = 5;            // 1 = greedy search (or sampling when sampling_temperature > 0)
  float patience = 1.0f;        // beam search stops after round(beam_size * patience) finished hypotheses
  float length_penalty = 1.0f;  // final score = sum(logprob) / length^length_penalty
  int max_length = 448;         // prompt + generated tokens (the decoder's context)
  float sampling_temperature = 0.0f;  // > 0: sample from softmax(logits / T) (beam_size must be 1)
  int num_hypotheses = 1;             // sampling: independent samples, the best by score is returned first
  bool suppress_blank = true;         // suppress config.suppress_ids_begin (" " and EOT) at the first step
  std::vector<int> suppress_tokens;   // suppressed at every step (see suppressed_tokens())
  int max_initial_timestamp_index = 50;  // first timestamp <= this many 20-ms steps
  bool return_no_speech_prob = true;
};

// CTranslate2's ApplyTimestampRules on one row of logits (the whole vocabulary) after the generated tokens `seq`
// (prompt excluded): the first token is a timestamp (at most max_initial_timestamp_index steps); timestamps come
// in pairs except before EOT; they never decrease, and after text the next one is later than the last (no
// zero-length segments); when the timestamps' total probability beats every text token, text is disabled.
// Disabled entries are set to the lowest float.
void apply_timestamp_rules(const WhisperTokens& tokens, int max_initial_timestamp_index, std::span<float> logits,
                           std::span<const int> seq);

struct Hypothesis {
  std::vector<int> tokens;  // generated tokens, without the prompt and without EOT
  float score = 0;          // cumulative log-probability / length^length_penalty (CTranslate2's score)
  float cumulative_logprob = 0;  // sum of token log-probabilities, EOT included when it was generated
};

struct GenerateResult {
  std::vector<Hypothesis> hypotheses;  // best first
  float no_speech_prob = 0;
};

// Decodes one window. `encoder_out` is WhisperModel::encode()'s output; `prompt` holds optional
// <|startofprev|> + previous text tokens, then the SOT sequence (sot [, language, task] [, no_timestamps]).
// Timestamp rules apply unless the prompt ends with <|notimestamps|>. `rng` is needed when sampling: samples are
// drawn from quasr::Rng, so they cannot match CTranslate2's sampler draw for draw (only in distribution).
GenerateResult whisper_generate(const WhisperModel& model, const WhisperTokens& tokens,
                                std::span<const float> encoder_out, std::span<const int> prompt,
                                const GenerateOptions& options, Rng* rng = nullptr);

struct LanguageProbability {
  std::string code;  // "en", "de", ...
  float probability = 0;
};
// CTranslate2's detect_language: softmax over the language tokens of the logits after <|startoftranscript|>,
// sorted by probability (highest first). Multilingual models only; throws InvalidArgument otherwise.
std::vector<LanguageProbability> detect_language(const WhisperModel& model, const Tokenizer& tokenizer,
                                                 std::span<const float> encoder_out);

}  // namespace quasr::models
