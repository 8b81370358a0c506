// Whisper decoding of one window with CTranslate2 generate() semantics (see whisper_decode.h). The structure
// follows CT2's decoding.cc / models/whisper.cc (read, not copied): per step the logits go through the
// processors in CT2's order (no-speech probability first, then SuppressTokens, SuppressTokensBegin,
// ApplyTimestampRules), disabled tokens get the lowest float, scores are log-softmax sums in FP32.
#include "quasr/models/whisper_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "quasr/core/error.h"

namespace quasr::models {

namespace {

constexpr float kDisabled = std::numeric_limits<float>::lowest();

int require_token(const Tokenizer& tok, const char* text) {
  const int id = tok.token_id(text);
  if (id < 0) throw InvalidArgument(std::string("tokenizer has no ") + text + " token: not a Whisper vocabulary");
  return id;
}

// log(sum(exp(x))) over [begin, end), accumulated in double.
double log_sum_exp(const float* x, int begin, int end) {
  float m = kDisabled;
  for (int i = begin; i < end; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (int i = begin; i < end; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(s);
}

void log_softmax_inplace(float* x, int n) {
  const double lse = log_sum_exp(x, 0, n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] - lse);
}

float softmax_prob(const float* x, int n, int id) {
  return static_cast<float>(std::exp(static_cast<double>(x[id]) - log_sum_exp(x, 0, n)));
}

// Applies CTranslate2's logits processors to one row of logits for decoding step `step` of a sequence whose
// generated tokens so far are `seq` (seq.size() == step).
struct LogitsProcessors {
  const WhisperTokens& tok;
  const GenerateOptions& opt;
  std::vector<int> suppress_begin;
  bool timestamps = false;
  int n_vocab = 0;

  void apply(float* logits, int step, std::span<const int> seq) const {
    for (int id : opt.suppress_tokens)
      if (id >= 0 && id < n_vocab) logits[id] = kDisabled;
    if (step == 0)
      for (int id : suppress_begin)
        if (id >= 0 && id < n_vocab) logits[id] = kDisabled;
    if (timestamps)
      apply_timestamp_rules(tok, opt.max_initial_timestamp_index, {logits, static_cast<size_t>(n_vocab)},
                            seq.first(static_cast<size_t>(step)));
  }

};

float finalize_score(float cumulative, size_t length, float length_penalty) {
  return cumulative / std::pow(static_cast<float>(length), length_penalty);
}

void sort_hypotheses(std::vector<Hypothesis>& hyps, size_t keep) {
  std::stable_sort(hyps.begin(), hyps.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  if (hyps.size() > keep) hyps.resize(keep);
}

struct Candidate {
  float score;
  int beam;
  int token;
};

// The `k` best (score, beam, token) over rows of log-probabilities, best first (ties: lower flat index first).
std::vector<Candidate> top_k(const std::vector<float>& scores, int rows, int n_vocab, int k) {
  std::vector<int> idx(static_cast<size_t>(rows) * n_vocab);
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int>(k, static_cast<int>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  std::vector<Candidate> out(k);
  for (int i = 0; i < k; ++i) out[i] = {scores[idx[i]], idx[i] / n_vocab, idx[i] % n_vocab};
  return out;
}

}  // namespace

void apply_timestamp_rules(const WhisperTokens& tok, int max_initial_timestamp_index, std::span<float> logits,
                         std::span<const int> seq) {
  const int n_vocab = static_cast<int>(logits.size()), step = static_cast<int>(seq.size());
  auto disable_range = [&](int begin, int end) {
    for (int i = std::max(begin, 0); i < std::min(end, n_vocab); ++i) logits[i] = kDisabled;
  };
  const int ts_begin = tok.timestamp_begin, ts_end = tok.timestamp_end;
  logits[tok.no_timestamps] = kDisabled;
  bool check_timestamp_mass = false;
  if (step == 0) {
    disable_range(0, ts_begin);  // the first token is a timestamp
    disable_range(ts_begin + max_initial_timestamp_index + 1, ts_end + 1);
  } else {
    const int last = seq[step - 1];
    if (last >= ts_begin) {
      const int penultimate = step - 1 > 0 ? seq[step - 2] : last;
      if (penultimate >= ts_begin) {
        disable_range(ts_begin, ts_end + 1);  // a pair just closed: text (or EOT) next
      } else {
        disable_range(0, tok.eot);  // an open timestamp: another timestamp or EOT next
        check_timestamp_mass = true;
      }
    } else {
      check_timestamp_mass = true;
    }
    // Timestamps never decrease, and after text the next one is strictly later than the last: every segment
    // then has a nonzero length, so the long-form loop's seek always advances (with an equal one allowed,
    // "<|0.00|> text <|0.00|>" left seek in place and, at temperature 0, the same window decoded the same way
    // again without end). CTranslate2 and openai-whisper forbid the same range.
    const bool after_text = last < ts_begin;
    for (int t = step - 1; t >= 0; --t) {
      if (seq[t] >= ts_begin) {
        disable_range(ts_begin, seq[t] + (after_text ? 1 : 0));
        break;
      }
    }
  }
  if (check_timestamp_mass) {
    // If the total probability of the timestamps beats every single text token, a timestamp is due.
    float max_text = kDisabled;
    for (int i = 0; i < ts_begin; ++i) max_text = std::max(max_text, logits[i]);
    const double ts_mass = log_sum_exp(logits.data(), ts_begin, ts_end + 1);
    if (ts_mass > max_text) disable_range(0, ts_begin);
  }
}

WhisperTokens WhisperTokens::from(const Tokenizer& tokenizer) {
  WhisperTokens t;
  t.eot = require_token(tokenizer, "<|endoftext|>");
  t.sot = require_token(tokenizer, "<|startoftranscript|>");
  t.sot_prev = require_token(tokenizer, "<|startofprev|>");
  t.sot_lm = require_token(tokenizer, "<|startoflm|>");
  t.no_timestamps = require_token(tokenizer, "<|notimestamps|>");
  t.transcribe = require_token(tokenizer, "<|transcribe|>");
  t.translate = require_token(tokenizer, "<|translate|>");
  t.no_speech = tokenizer.token_id("<|nospeech|>");
  if (t.no_speech < 0) t.no_speech = require_token(tokenizer, "<|nocaptions|>");
  t.timestamp_begin = t.no_timestamps + 1;
  t.timestamp_end = tokenizer.vocab_size() - 1;
  return t;
}

std::vector<int> non_speech_tokens(const Tokenizer& tokenizer) {
  // The symbol lists of faster-whisper's tokenizer.py (the same as openai-whisper's).
  std::vector<std::string> symbols;
  for (const char* s : {"\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^",
                        "_", "`", "{", "|", "}", "~", "\xE3\x80\x8C", "\xE3\x80\x8D", "\xE3\x80\x8E",
                        "\xE3\x80\x8F"})
    symbols.emplace_back(s);
  for (const char* s : {"<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))",
                        "[[", "]]", "{{", "}}", "\xE2\x99\xAA\xE2\x99\xAA", "\xE2\x99\xAA\xE2\x99\xAA\xE2\x99\xAA"})
    symbols.emplace_back(s);
  // Miscellaneous symbols U+2640..U+267F (♩♪♫♬♭♮♯): suppress their first token even when split.
  const std::vector<std::string> misc = {"\xE2\x99\xA9", "\xE2\x99\xAA", "\xE2\x99\xAB", "\xE2\x99\xAC",
                                         "\xE2\x99\xAD", "\xE2\x99\xAE", "\xE2\x99\xAF"};
  std::set<int> result = {tokenizer.encode(" -").at(0), tokenizer.encode(" '").at(0)};
  auto consider = [&](const std::string& symbol, bool is_misc) {
    for (const std::string& text : {symbol, " " + symbol}) {
      const auto ids = tokenizer.encode(text);
      if (ids.size() == 1 || (is_misc && !ids.empty())) result.insert(ids[0]);
    }
  };
  for (const auto& s : symbols) consider(s, false);
  for (const auto& s : misc) consider(s, true);
  return {result.begin(), result.end()};
}

std::vector<int> suppressed_tokens(const Tokenizer& tokenizer, std::span<const int> suppress_tokens) {
  std::set<int> result;
  bool defaults = false;
  for (int id : suppress_tokens) {
    if (id == -1) {
      defaults = true;
    } else if (id >= 0) {
      if (id >= tokenizer.vocab_size()) throw InvalidArgument("suppress token " + std::to_string(id) + " out of range");
      result.insert(id);
    } else {
      throw InvalidArgument("suppress token " + std::to_string(id) + " is negative (only -1 has a meaning)");
    }
  }
  if (defaults)
    for (int id : non_speech_tokens(tokenizer)) result.insert(id);
  const WhisperTokens t = WhisperTokens::from(tokenizer);
  for (int id : {t.transcribe, t.translate, t.sot, t.sot_prev, t.sot_lm, t.no_speech}) result.insert(id);
  return {result.begin(), result.end()};
}

GenerateResult whisper_generate(const WhisperModel& model, const WhisperTokens& tok,
                                std::span<const float> encoder_out, std::span<const int> prompt,
                                const GenerateOptions& opt, Rng* rng) {
  if (opt.beam_size < 1) throw InvalidArgument("beam size must be >= 1, got " + std::to_string(opt.beam_size));
  if (!(opt.patience > 0)) throw InvalidArgument("patience must be > 0");
  if (opt.num_hypotheses < 1) throw InvalidArgument("number of hypotheses must be >= 1");
  if (opt.sampling_temperature < 0) throw InvalidArgument("temperature must be >= 0");
  const bool sampling = opt.sampling_temperature > 0;
  if (sampling && opt.beam_size != 1) throw InvalidArgument("sampling needs beam size 1");
  if (sampling && !rng) throw InvalidArgument("sampling needs a random number generator");
  const int n_vocab = model.config().n_vocab;
  if (tok.timestamp_end >= n_vocab) throw InvalidArgument("tokenizer vocabulary larger than the model's");

  // The prompt: [<|startofprev|> text...] <|startoftranscript|> [language] [task] [<|notimestamps|>].
  const auto sot_it = std::find(prompt.begin(), prompt.end(), tok.sot);
  if (sot_it == prompt.end()) throw InvalidArgument("<|startoftranscript|> token not found in the prompt");
  const size_t sot_index = sot_it - prompt.begin();
  size_t prompt_length = sot_index;
  while (prompt_length < prompt.size() && prompt[prompt_length] >= tok.sot && prompt[prompt_length] <= tok.no_timestamps)
    ++prompt_length;
  if (prompt_length != prompt.size())
    throw InvalidArgument("prompt tokens after the SOT sequence (a decoding prefix) are not supported");
  const int start_token = prompt[prompt_length - 1];
  const bool sot_is_start_token = sot_index == prompt_length - 1;

  GenerateResult result;
  std::unique_ptr<DecoderState> state = model.start(encoder_out, 1);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  int start_step = 0;
  if (prompt_length > 1) {
    // Feed the prompt (all but the start token). The no-speech probability is read after <|startoftranscript|>,
    // so the prompt is fed in two parts when SOT is not its last token.
    const std::span<const int> fed = prompt.first(prompt_length - 1);
    if (opt.return_no_speech_prob && !sot_is_start_token) {
      model.step(*state, fed.first(sot_index + 1), static_cast<int>(sot_index + 1), logits);
      result.no_speech_prob = softmax_prob(logits.data(), n_vocab, tok.no_speech);
      const auto rest = fed.subspan(sot_index + 1);
      if (!rest.empty()) model.step(*state, rest, static_cast<int>(rest.size()), logits);
    } else {
      model.step(*state, fed, static_cast<int>(fed.size()), logits);
    }
    start_step = static_cast<int>(fed.size());
  }
  const int max_steps = std::min(opt.max_length / 2, opt.max_length - start_step);
  if (max_steps <= 0) throw InvalidArgument("prompt of " + std::to_string(prompt.size()) + " tokens leaves no room to decode");

  LogitsProcessors proc{tok, opt, {}, start_token != tok.no_timestamps, n_vocab};
  if (opt.suppress_blank) proc.suppress_begin = model.config().suppress_ids_begin;
  const bool want_no_speech_at_step0 = opt.return_no_speech_prob && sot_is_start_token;

  if (opt.beam_size == 1) {
    // Greedy search or sampling; num_hypotheses independent sequences decoded as one batch.
    const int n = sampling ? opt.num_hypotheses : 1;
    if (n > 1) {
      const std::vector<int> dup(n, 0);
      model.reorder(*state, dup);
    }
    std::vector<std::vector<int>> seqs(n);
    std::vector<float> cum(n, 0.0f);
    std::vector<int> alive(n), next_input(n, start_token);
    std::iota(alive.begin(), alive.end(), 0);
    std::vector<Hypothesis> hyps;
    logits.resize(static_cast<size_t>(n) * n_vocab);
    for (int step = 0; step < max_steps && !alive.empty(); ++step) {
      const int batch = static_cast<int>(alive.size());
      std::vector<int> inputs(batch);
      for (int b = 0; b < batch; ++b) inputs[b] = next_input[alive[b]];
      model.step(*state, inputs, 1, std::span<float>(logits.data(), static_cast<size_t>(batch) * n_vocab));
      std::vector<int> still_alive, keep_rows;
      for (int b = 0; b < batch; ++b) {
        const int s = alive[b];
        float* row = logits.data() + static_cast<size_t>(b) * n_vocab;
        if (step == 0 && want_no_speech_at_step0 && s == 0)
          result.no_speech_prob = softmax_prob(row, n_vocab, tok.no_speech);
        proc.apply(row, step, seqs[s]);
        log_softmax_inplace(row, n_vocab);
        int token;
        if (sampling) {
          // softmax(log_probs / T), drawn by inverse CDF.
          double total = 0;
          std::vector<double> w(n_vocab);
          for (int i = 0; i < n_vocab; ++i) total += (w[i] = std::exp(row[i] / opt.sampling_temperature));
          double u = rng->uniform() * total;
          token = n_vocab - 1;
          for (int i = 0; i < n_vocab; ++i) {
            if (u < w[i]) {
              token = i;
              break;
            }
            u -= w[i];
          }
          while (w[token] == 0 && token > 0) --token;  // rounding at the tail: never pick a disabled token
        } else {
          token = static_cast<int>(std::max_element(row, row + n_vocab) - row);
        }
        cum[s] += row[token];
        const bool eos = token == tok.eot;
        if (!eos) seqs[s].push_back(token);
        if (eos || step + 1 == max_steps) {
          hyps.push_back({seqs[s], finalize_score(cum[s], seqs[s].size(), opt.length_penalty), cum[s]});
        } else {
          still_alive.push_back(s);
          keep_rows.push_back(b);
          next_input[s] = token;
        }
      }
      if (still_alive.size() != alive.size() && !still_alive.empty()) model.reorder(*state, keep_rows);
      alive.swap(still_alive);
    }
    sort_hypotheses(hyps, static_cast<size_t>(opt.num_hypotheses));
    result.hypotheses = std::move(hyps);
    return result;
  }

  // Beam search.
  const int beam = opt.beam_size;
  const int num_candidates = 2 * beam;
  const size_t max_candidates = static_cast<size_t>(std::lround(static_cast<float>(beam) * opt.patience));
  const bool allow_early_exit = opt.length_penalty == 0;
  std::vector<std::vector<int>> seqs(1);
  std::vector<float> beam_scores(1, 0.0f);
  std::vector<int> inputs = {start_token};
  std::vector<Hypothesis> hyps;
  bool top_beam_finished = false;
  for (int step = 0; step < max_steps; ++step) {
    const int rows = static_cast<int>(seqs.size());  // 1 at the first step, then `beam`
    logits.resize(static_cast<size_t>(rows) * n_vocab);
    model.step(*state, inputs, 1, logits);
    for (int r = 0; r < rows; ++r) {
      float* row = logits.data() + static_cast<size_t>(r) * n_vocab;
      if (step == 0 && want_no_speech_at_step0) result.no_speech_prob = softmax_prob(row, n_vocab, tok.no_speech);
      proc.apply(row, step, seqs[r]);
      log_softmax_inplace(row, n_vocab);
      for (int i = 0; i < n_vocab; ++i) row[i] += beam_scores[r];
    }
    const std::vector<Candidate> cand = top_k(logits, rows, n_vocab, num_candidates);
    const bool last_step = step + 1 == max_steps;
    std::vector<int> active(beam);
    size_t secondary = beam;
    for (int k = 0; k < beam; ++k) {
      int next = k;
      const bool eos = cand[k].token == tok.eot;
      if (eos || last_step) {
        if (k == 0) top_beam_finished = true;
        std::vector<int> t = seqs[cand[k].beam];
        if (!eos) t.push_back(cand[k].token);
        const float s = finalize_score(cand[k].score, t.size(), opt.length_penalty);
        hyps.push_back({std::move(t), s, cand[k].score});
        // Another active candidate takes this beam's place.
        for (size_t j = secondary; j < cand.size(); ++j) {
          if (cand[j].token != tok.eot) {
            next = static_cast<int>(j);
            secondary = j + 1;
            break;
          }
        }
      }
      active[k] = next;
    }
    bool finished;
    if (last_step) finished = true;
    else if (allow_early_exit) finished = top_beam_finished && hyps.size() >= static_cast<size_t>(opt.num_hypotheses);
    else finished = hyps.size() >= max_candidates;
    if (finished) break;
    std::vector<std::vector<int>> new_seqs(beam);
    std::vector<int> origins(beam);
    beam_scores.assign(beam, 0.0f);
    inputs.assign(beam, 0);
    for (int k = 0; k < beam; ++k) {
      const Candidate& c = cand[active[k]];
      new_seqs[k] = seqs[c.beam];
      new_seqs[k].push_back(c.token);
      origins[k] = c.beam;
      beam_scores[k] = c.score;
      inputs[k] = c.token;
    }
    seqs.swap(new_seqs);
    model.reorder(*state, origins);
  }
  sort_hypotheses(hyps, static_cast<size_t>(opt.num_hypotheses));
  result.hypotheses = std::move(hyps);
  return result;
}

std::vector<LanguageProbability> detect_language(const WhisperModel& model, const Tokenizer& tokenizer,
                                                 std::span<const float> encoder_out) {
  const WhisperConfig& cfg = model.config();
  if (!cfg.multilingual || cfg.lang_ids.empty())
    throw InvalidArgument("language detection needs a multilingual model");
  const int sot = require_token(tokenizer, "<|startoftranscript|>");
  std::unique_ptr<DecoderState> state = model.start(encoder_out, 1);
  std::vector<float> logits(static_cast<size_t>(cfg.n_vocab));
  const int input[1] = {sot};
  model.step(*state, input, 1, logits);
  std::vector<float> lang_logits;
  for (int id : cfg.lang_ids) lang_logits.push_back(logits.at(id));
  const double lse = log_sum_exp(lang_logits.data(), 0, static_cast<int>(lang_logits.size()));
  std::vector<LanguageProbability> out;
  for (size_t i = 0; i < cfg.lang_ids.size(); ++i) {
    std::string text = tokenizer.token_text(cfg.lang_ids[i]);  // "<|en|>"
    if (text.size() > 4) text = text.substr(2, text.size() - 4);
    out.push_back({text, static_cast<float>(std::exp(lang_logits[i] - lse))});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.probability > b.probability; });
  return out;
}

}  // namespace quasr::models
