#pragma once
// Scoring: word and character error rates from a Levenshtein alignment, per utterance and per corpus, with a
// bootstrap confidence interval and a paired comparison of two systems on the same utterances.
//
// Conventions (docs/eval.md):
//   - Words are the whitespace-separated tokens of the (already normalized) text; characters are the code
//     points of the text with whitespace runs collapsed to one space and the ends stripped (spaces count, as in
//     jiwer.cer).
//   - Corpus error rate = sum of errors / sum of reference lengths (not a mean of utterance rates).
//   - Empty reference: every hypothesis token is an insertion; the utterance rate is errors / max(1, ref length)
//     (as jiwer does when a whole input has no reference words), and in a corpus the insertions count in the
//     numerator while the utterance adds nothing to the denominator. A corpus with no reference token at all
//     has rate = its number of insertions.
//   - Among the minimum-cost alignments, the one reported is the one jiwer (rapidfuzz) reports, so substitution/
//     deletion/insertion counts match jiwer's as well as the error totals (rapidfuzz's Hirschberg path for very
//     long sequences may choose differently; totals cannot differ).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace quasr::eval {

struct ErrorCounts {
  int64_t hits = 0, substitutions = 0, deletions = 0, insertions = 0;
  int64_t errors() const { return substitutions + deletions + insertions; }
  int64_t ref_length() const { return hits + substitutions + deletions; }
  int64_t hyp_length() const { return hits + substitutions + insertions; }
  double rate() const;  // errors / max(1, ref_length)
  ErrorCounts& operator+=(const ErrorCounts& o);
  bool operator==(const ErrorCounts&) const = default;
};

enum class EditOp : uint8_t { Match, Substitution, Deletion, Insertion };
const char* to_string(EditOp op);

// One column of an alignment; ref_index / hyp_index are -1 where that side has no token.
struct AlignedToken {
  EditOp op;
  int32_t ref_index, hyp_index;
};

struct Alignment {
  ErrorCounts counts;
  std::vector<AlignedToken> columns;  // in order; empty when not requested
};

std::vector<std::string> split_words(std::string_view text);
std::u32string characters_for_cer(std::string_view text);

// Levenshtein alignment of two token sequences (unit costs). Throws InvalidArgument when the DP would need more
// than 2^28 cells (an utterance of ~16k tokens a side: split it first).
Alignment align(const std::vector<int32_t>& ref, const std::vector<int32_t>& hyp, bool keep_columns = true);
Alignment align_words(std::string_view ref, std::string_view hyp, bool keep_columns = true);
Alignment align_characters(std::string_view ref, std::string_view hyp, bool keep_columns = true);

// Human-readable three-line view ("REF:", "HYP:", "OPS:") of a word alignment, for reports and debugging.
std::string format_word_alignment(std::string_view ref, std::string_view hyp, const Alignment& alignment);

struct UtteranceScore {
  ErrorCounts words, characters;
};
UtteranceScore score_utterance(std::string_view ref_normalized, std::string_view hyp_normalized);

struct CorpusScore {
  ErrorCounts words, characters;
  size_t utterances = 0;
  double wer() const { return words.rate(); }
  double cer() const { return characters.rate(); }
};
CorpusScore score_corpus(const std::vector<UtteranceScore>& utterances);
// sum errors / sum ref length (with the empty-reference convention above).
double corpus_rate(const std::vector<ErrorCounts>& utterances);

struct BootstrapOptions {
  int resamples = 1000;
  double level = 0.95;  // two-sided confidence level
  uint64_t seed = 0x5eed;
};

// Percentile bootstrap over utterances of the corpus error rate.
struct ConfidenceInterval {
  double estimate = 0, lower = 0, upper = 0;
  double level = 0;
  int resamples = 0;
};
ConfidenceInterval bootstrap_rate(const std::vector<ErrorCounts>& utterances, const BootstrapOptions& options = {});

// System B (e.g. a quantized model) against system A (the full-precision baseline) on the same utterances, in
// the same order. delta = rate(B) - rate(A): positive when B is worse.
struct PairedComparison {
  double rate_a = 0, rate_b = 0, delta = 0;
  double delta_lower = 0, delta_upper = 0;  // paired percentile bootstrap CI of delta
  double prob_b_worse = 0;                  // fraction of paired resamples where B's rate is above A's
  int resamples = 0;
  double level = 0;
  int64_t b_better = 0, b_worse = 0, ties = 0;  // utterances where B has fewer / more / the same errors
  double sign_test_p = 1;                       // two-sided exact sign test on b_better vs b_worse
  // True when the bootstrap CI of delta excludes 0 (the change is unlikely to be resampling noise).
  bool significant() const { return delta_lower > 0 || delta_upper < 0; }
};
PairedComparison compare_paired(const std::vector<ErrorCounts>& a, const std::vector<ErrorCounts>& b,
                                const BootstrapOptions& options = {});

// Two-sided exact binomial (p = 1/2) test of `successes` out of `successes + failures`.
double sign_test_p_value(int64_t successes, int64_t failures);

}  // namespace quasr::eval
