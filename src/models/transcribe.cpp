// Long-form transcription with faster-whisper 1.2.1's control flow (generate_segments, generate_with_fallback,
// get_prompt, _split_segments_by_timestamps in faster_whisper/transcribe.py), over whisper_generate().
#include "quasr/models/transcribe.h"

#include <zlib.h>

#include <chrono>
#include <cmath>

#include "quasr/audio/mel.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/models/whisper_decode.h"
#include "tokenizer_unicode.h"

namespace quasr::models {

namespace {

constexpr double kTimePerFrame = 0.01;  // hop 160 / 16 kHz
constexpr double kTimePrecision = 0.02;  // one timestamp step = 2 mel frames (encoder stride 2)
constexpr int kInputStride = 2;
constexpr int kMaxLength = 448;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool is_python_space(uint32_t cp) { return (cp >= 0x1C && cp <= 0x1F) || unicode::is_whitespace(cp); }

// Python's str.strip() on UTF-8 text.
std::string strip(std::string_view s) {
  auto cp_at = [&](size_t i, size_t* len) -> uint32_t {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) return *len = 1, b;
    if ((b >> 5) == 6 && i + 1 < s.size()) return *len = 2, ((b & 0x1F) << 6) | (s[i + 1] & 0x3F);
    if ((b >> 4) == 14 && i + 2 < s.size())
      return *len = 3, ((b & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    return *len = 1, 0xFFFD;
  };
  size_t begin = 0;
  while (begin < s.size()) {
    size_t len;
    if (!is_python_space(cp_at(begin, &len))) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;  // step back to the start of the last character
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!is_python_space(cp_at(start, &len))) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

struct DecodeOutcome {
  GenerateResult result;
  double avg_logprob = 0;
  float temperature = 0;
  double compression_ratio = 0;
};

struct Transcriber {
  const WhisperModel& model;
  const Tokenizer& tokenizer;
  const TranscribeOptions& opt;
  WhisperTokens tok;
  std::vector<int> sot_sequence;
  std::vector<int> suppress;
  Rng rng;
  StageTimes times;

  std::vector<float> encode_window(const audio::LogMel& mel, int64_t begin, int64_t frames) {
    const int n_mels = mel.n_mels;
    std::vector<float> window(static_cast<size_t>(n_mels) * audio::kChunkFrames, 0.0f);
    const int64_t n = std::min<int64_t>(frames, audio::kChunkFrames);
    for (int m = 0; m < n_mels; ++m)
      for (int64_t f = 0; f < n; ++f)
        window[static_cast<size_t>(m) * audio::kChunkFrames + f] = mel.data[m * mel.n_frames + begin + f];
    const auto t0 = Clock::now();
    std::vector<float> out = model.encode(window);
    times.encode_s += seconds_since(t0);
    ++times.windows;
    return out;
  }

  std::vector<int> make_prompt(std::span<const int> previous) const {
    std::vector<int> prompt;
    if (!previous.empty()) {
      prompt.push_back(tok.sot_prev);
      const size_t keep = std::min<size_t>(previous.size(), kMaxLength / 2 - 1);
      prompt.insert(prompt.end(), previous.end() - keep, previous.end());
    }
    prompt.insert(prompt.end(), sot_sequence.begin(), sot_sequence.end());
    if (opt.without_timestamps) prompt.push_back(tok.no_timestamps);
    return prompt;
  }

  DecodeOutcome generate_with_fallback(std::span<const float> encoder_out, const std::vector<int>& prompt) {
    GenerateOptions g;
    g.length_penalty = opt.length_penalty;
    g.suppress_blank = opt.suppress_blank;
    g.suppress_tokens = suppress;
    g.max_initial_timestamp_index = static_cast<int>(std::nearbyint(opt.max_initial_timestamp / kTimePrecision));
    g.max_length = opt.max_new_tokens ? static_cast<int>(prompt.size()) + *opt.max_new_tokens : kMaxLength;
    if (g.max_length > kMaxLength)
      throw InvalidArgument("prompt (" + std::to_string(prompt.size()) + " tokens) + max_new_tokens exceeds " +
                            std::to_string(kMaxLength) + ", the decoder's context");
    std::vector<DecodeOutcome> all, below_cr;
    float temperature = 0;
    for (float t : opt.temperatures) {
      temperature = t;
      if (t > 0) {
        g.beam_size = 1, g.num_hypotheses = opt.best_of, g.sampling_temperature = t, g.patience = 1;
      } else {
        g.beam_size = opt.beam_size, g.num_hypotheses = 1, g.sampling_temperature = 0, g.patience = opt.patience;
      }
      DecodeOutcome d;
      const auto t0 = Clock::now();
      d.result = whisper_generate(model, tok, encoder_out, prompt, g, &rng);
      times.decode_s += seconds_since(t0);
      ++times.decode_calls;
      const Hypothesis& best = d.result.hypotheses.at(0);
      const auto seq_len = static_cast<double>(best.tokens.size());
      // As faster-whisper recovers it from CT2's length-normalized score (NaN for an empty sequence).
      const double cum_logprob = static_cast<double>(best.score) * std::pow(seq_len, opt.length_penalty);
      d.avg_logprob = cum_logprob / (seq_len + 1);
      d.temperature = t;
      d.compression_ratio = compression_ratio(strip(tokenizer.decode(best.tokens)));
      all.push_back(d);
      bool needs_fallback = false;
      if (opt.compression_ratio_threshold) {
        if (d.compression_ratio > *opt.compression_ratio_threshold) needs_fallback = true;  // too repetitive
        else below_cr.push_back(d);
      }
      if (opt.log_prob_threshold && d.avg_logprob < *opt.log_prob_threshold) needs_fallback = true;
      if (opt.no_speech_threshold && d.result.no_speech_prob > *opt.no_speech_threshold && opt.log_prob_threshold &&
          d.avg_logprob < *opt.log_prob_threshold)
        needs_fallback = false;  // silence
      if (!needs_fallback) return d;
    }
    // Every temperature failed: the best average log-probability, preferring results under the compression
    // threshold; reported with the last temperature (for prompt_reset_on_temperature).
    const auto& pool = below_cr.empty() ? all : below_cr;
    const DecodeOutcome* best = &pool.at(0);
    for (const auto& d : pool)
      if (d.avg_logprob > best->avg_logprob) best = &d;
    DecodeOutcome out = *best;
    out.temperature = temperature;
    return out;
  }
};

struct PendingSegment {
  double start, end;
  std::vector<int> tokens;
};

// faster-whisper's _split_segments_by_timestamps; returns the new seek.
int64_t split_segments_by_timestamps(const WhisperTokens& tok, const std::vector<int>& tokens, double time_offset,
                                     int64_t segment_size, double segment_duration, int64_t seek,
                                     std::vector<PendingSegment>& out) {
  const int tb = tok.timestamp_begin;
  const size_t n = tokens.size();
  const bool single_timestamp_ending = n >= 2 && tokens[n - 2] < tb && tb <= tokens[n - 1];
  std::vector<size_t> slices;
  for (size_t i = 1; i < n; ++i)
    if (tokens[i] >= tb && tokens[i - 1] >= tb) slices.push_back(i);
  if (!slices.empty()) {
    if (single_timestamp_ending) slices.push_back(n);
    size_t last_slice = 0;
    for (size_t cur : slices) {
      std::vector<int> sliced(tokens.begin() + last_slice, tokens.begin() + cur);
      const double start = time_offset + (sliced.front() - tb) * kTimePrecision;
      const double end = time_offset + (sliced.back() - tb) * kTimePrecision;
      out.push_back({start, end, std::move(sliced)});
      last_slice = cur;
    }
    if (single_timestamp_ending) {
      seek += segment_size;  // no speech after the last timestamp
    } else {
      seek += static_cast<int64_t>(tokens[last_slice - 1] - tb) * kInputStride;  // resume at the last timestamp
    }
  } else {
    double duration = segment_duration;
    int last_ts = -1;
    for (int t : tokens)
      if (t >= tb) last_ts = t;
    if (last_ts >= 0 && last_ts != tb) duration = (last_ts - tb) * kTimePrecision;
    out.push_back({time_offset, time_offset + duration, tokens});
    seek += segment_size;
  }
  return seek;
}

}  // namespace

void TranscribeOptions::validate() const {
  if (beam_size < 1) throw InvalidArgument("beam size must be >= 1, got " + std::to_string(beam_size));
  if (best_of < 1) throw InvalidArgument("best_of must be >= 1, got " + std::to_string(best_of));
  if (!(patience > 0)) throw InvalidArgument("patience must be > 0");
  if (temperatures.empty()) throw InvalidArgument("at least one temperature is needed");
  for (float t : temperatures)
    if (!(t >= 0) || !std::isfinite(t)) throw InvalidArgument("temperatures must be finite and >= 0");
  if (task != "transcribe" && task != "translate")
    throw InvalidArgument("task must be 'transcribe' or 'translate', got '" + task + "'");
  if (!(max_initial_timestamp >= 0)) throw InvalidArgument("max_initial_timestamp must be >= 0");
  if (max_new_tokens && *max_new_tokens < 1) throw InvalidArgument("max_new_tokens must be >= 1");
}

std::string Transcription::text() const {
  std::string s;
  for (const auto& seg : segments) s += seg.text;
  return s;
}

double compression_ratio(std::string_view text) {
  uLongf size = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> buf(size);
  if (compress2(buf.data(), &size, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK)
    throw Error("zlib compress2 failed");
  return static_cast<double>(text.size()) / static_cast<double>(size);
}

Transcription transcribe(const WhisperModel& model, const Tokenizer& tokenizer, std::span<const float> samples,
                         const TranscribeOptions& opt, const std::function<void(const Segment&)>& on_segment) {
  opt.validate();
  const WhisperConfig& cfg = model.config();
  Transcriber tr{model, tokenizer, opt, WhisperTokens::from(tokenizer), {}, {}, Rng(opt.seed), {}};
  Transcription result;
  result.duration = static_cast<double>(samples.size()) / 16000.0;

  auto t0 = Clock::now();
  const audio::LogMel mel = audio::log_mel_spectrogram(samples, cfg.n_mels, 160);
  tr.times.mel_s = seconds_since(t0);
  const int64_t content_frames = mel.n_frames - 1;

  // Language and the SOT sequence.
  tr.sot_sequence = {tr.tok.sot};
  if (cfg.multilingual) {
    std::string language = opt.language;
    if (language.empty()) {
      // As faster-whisper: detection on the first 30 s of the features (the trailing padding frame included).
      const std::vector<float> enc = tr.encode_window(mel, 0, std::min<int64_t>(mel.n_frames, audio::kChunkFrames));
      t0 = Clock::now();
      const auto probs = detect_language(model, tokenizer, enc);
      tr.times.decode_s += seconds_since(t0);
      language = probs.at(0).code;
      result.language_probability = probs.at(0).probability;
    }
    const int lang_token = tokenizer.token_id("<|" + language + "|>");
    if (lang_token < 0 || std::find(cfg.lang_ids.begin(), cfg.lang_ids.end(), lang_token) == cfg.lang_ids.end())
      throw InvalidArgument("unknown language code '" + language + "'");
    result.language = language;
    tr.sot_sequence.push_back(lang_token);
    tr.sot_sequence.push_back(opt.task == "translate" ? tr.tok.translate : tr.tok.transcribe);
  } else {
    result.language = "en";  // English-only model, whatever was asked
  }
  if (!opt.suppress_tokens.empty()) tr.suppress = suppressed_tokens(tokenizer, opt.suppress_tokens);

  std::vector<int> all_tokens;
  size_t prompt_reset_since = 0;
  if (!strip(opt.initial_prompt).empty()) all_tokens = tokenizer.encode(" " + strip(opt.initial_prompt));

  int64_t seek = 0;
  int idx = 0;
  while (seek < content_frames) {
    const double time_offset = static_cast<double>(seek) * kTimePerFrame;
    const int64_t segment_size = std::min<int64_t>(audio::kChunkFrames, content_frames - seek);
    const double segment_duration = static_cast<double>(segment_size) * kTimePerFrame;
    const std::vector<float> enc = tr.encode_window(mel, seek, segment_size);
    const std::span<const int> previous(all_tokens.data() + prompt_reset_since, all_tokens.size() - prompt_reset_since);
    const std::vector<int> prompt = tr.make_prompt(previous);
    const DecodeOutcome d = tr.generate_with_fallback(enc, prompt);

    if (opt.no_speech_threshold) {
      bool should_skip = d.result.no_speech_prob > *opt.no_speech_threshold;
      if (opt.log_prob_threshold && d.avg_logprob > *opt.log_prob_threshold) should_skip = false;
      if (should_skip) {
        seek += segment_size;  // silence: on to the next window
        continue;
      }
    }
    const std::vector<int>& tokens = d.result.hypotheses.at(0).tokens;
    const int64_t previous_seek = seek;
    std::vector<PendingSegment> pending;
    seek = split_segments_by_timestamps(tr.tok, tokens, time_offset, segment_size, segment_duration, seek, pending);
    // The timestamp rules give every segment a nonzero length, so seek advances; should a window ever leave it in
    // place, it would be decoded again forever: move past the window instead.
    if (seek <= previous_seek) seek = previous_seek + segment_size;
    for (auto& p : pending) {
      std::string text = tokenizer.decode(p.tokens);
      if (p.start == p.end || strip(text).empty()) continue;
      all_tokens.insert(all_tokens.end(), p.tokens.begin(), p.tokens.end());
      Segment seg;
      seg.id = ++idx;
      seg.seek = static_cast<int>(previous_seek);
      seg.start = p.start;
      seg.end = p.end;
      seg.text = std::move(text);
      seg.tokens = std::move(p.tokens);
      seg.temperature = d.temperature;
      seg.avg_logprob = d.avg_logprob;
      seg.compression_ratio = d.compression_ratio;
      seg.no_speech_prob = d.result.no_speech_prob;
      if (on_segment) on_segment(seg);
      result.segments.push_back(std::move(seg));
    }
    if (!opt.condition_on_previous_text || d.temperature > opt.prompt_reset_on_temperature)
      prompt_reset_since = all_tokens.size();
  }
  result.times = tr.times;
  return result;
}

}  // namespace quasr::models
