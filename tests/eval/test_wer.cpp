// WER/CER against jiwer (computed at test time by scripts/ref_wer.py), hand-worked alignments, and the
// statistics (bootstrap CI, paired comparison, sign test).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "eval_test_support.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/wer.h"

namespace quasr::eval {
namespace {

using testing::TempDir;

// Synthetic hypotheses: seeded random substitutions, deletions, insertions, swaps and truncations of a
// reference, so that every kind of alignment (and ties between alignments) occurs.
std::string corrupt(const std::vector<std::string>& ref, const std::vector<std::string>& vocab, Rng& rng) {
  std::vector<std::string> out;
  const double p = rng.uniform() * 0.5;  // error intensity varies per utterance
  for (size_t i = 0; i < ref.size(); ++i) {
    const double u = rng.uniform();
    if (u < p / 4) continue;                                              // deletion
    if (u < p / 2) out.push_back(vocab[rng.below(vocab.size())]);         // substitution
    else if (u < 3 * p / 4 && i + 1 < ref.size()) {                       // swap with the next word
      out.push_back(ref[i + 1]);
      out.push_back(ref[i]);
      ++i;
    } else out.push_back(ref[i]);
    if (rng.uniform() < p / 4) out.push_back(vocab[rng.below(vocab.size())]);  // insertion
  }
  if (rng.uniform() < 0.03) out.clear();                                 // empty hypothesis
  if (rng.uniform() < 0.03 && out.size() > 2) out.resize(out.size() / 2);  // truncated
  std::string s;
  for (const auto& w : out) s += (s.empty() ? "" : " ") + w;
  return s;
}

struct Pair {
  std::string ref, hyp;
};

std::vector<Pair> synthetic_pairs() {
  const EnglishTextNormalizer normalize;
  std::vector<std::string> refs;
  for (const auto& u : load_librispeech("/work/shared/data/LibriSpeech/mini-eval").utterances)
    refs.push_back(normalize(u.reference));
  std::vector<std::string> vocab;
  for (const auto& r : refs)
    for (auto& w : split_words(r)) vocab.push_back(w);
  Rng rng(20261122);
  std::vector<Pair> pairs;
  for (const auto& r : refs) pairs.push_back({r, corrupt(split_words(r), vocab, rng)});
  return pairs;
}

struct JiwerComparison {
  size_t same_split = 0;
  CorpusScore corpus;
  nlohmann::json reference;
};

// Scores `pairs` with quasr and with jiwer (scripts/ref_wer.py) and checks every utterance and the corpus.
JiwerComparison compare_with_jiwer(const std::vector<Pair>& pairs) {
  TempDir tmp;
  std::vector<nlohmann::json> rows;
  for (const auto& p : pairs) rows.push_back({{"ref", p.ref}, {"hyp", p.hyp}});
  testing::write_jsonl(tmp.file("pairs.jsonl"), rows);
  testing::run_reference_script("ref_wer.py", "wer " + tmp.file("pairs.jsonl") + " " + tmp.file("out.json"));
  JiwerComparison out;
  std::ifstream(tmp.file("out.json")) >> out.reference;
  const nlohmann::json& ref = out.reference;
  std::vector<UtteranceScore> scores;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto& j = ref["utterances"][i];
    const UtteranceScore s = score_utterance(pairs[i].ref, pairs[i].hyp);
    scores.push_back(s);
    EXPECT_EQ(s.words.rate(), j["wer"].get<double>()) << "utterance " << i << "\nREF: " << pairs[i].ref << "\nHYP: " << pairs[i].hyp;
    EXPECT_EQ(s.characters.rate(), j["cer"].get<double>()) << "utterance " << i;
    const ErrorCounts jw{j["hits"], j["substitutions"], j["deletions"], j["insertions"]};
    const ErrorCounts jc{j["char_hits"], j["char_substitutions"], j["char_deletions"], j["char_insertions"]};
    EXPECT_EQ(s.words.errors(), jw.errors());
    EXPECT_EQ(s.characters.errors(), jc.errors());
    out.same_split += s.words == jw && s.characters == jc;
  }
  out.corpus = score_corpus(scores);
  std::printf("  S/D/I split identical to jiwer's on %zu / %zu utterances (words and characters)\n", out.same_split,
              pairs.size());
  std::printf("  corpus WER quasr %.6f jiwer %.6f, CER quasr %.6f jiwer %.6f\n", out.corpus.wer(),
              ref["corpus"]["wer"].get<double>(), out.corpus.cer(), ref["corpus"]["cer"].get<double>());
  EXPECT_EQ(out.same_split, pairs.size());
  EXPECT_EQ(out.corpus.wer(), ref["corpus"]["wer"].get<double>());
  EXPECT_EQ(out.corpus.cer(), ref["corpus"]["cer"].get<double>());
  EXPECT_EQ(out.corpus.words.insertions, ref["corpus"]["insertions"].get<int64_t>());
  EXPECT_EQ(out.corpus.words.deletions, ref["corpus"]["deletions"].get<int64_t>());
  EXPECT_EQ(out.corpus.words.substitutions, ref["corpus"]["substitutions"].get<int64_t>());
  return out;
}

TEST(Wer, MatchesJiwerOnMiniEvalWithSyntheticEdits) {
  const auto pairs = synthetic_pairs();
  ASSERT_EQ(pairs.size(), 532u);
  compare_with_jiwer(pairs);
}

// Real hypotheses: faster-whisper tiny.en on mini-eval, both sides English-normalized.
TEST(Wer, MatchesJiwerOnWhisperHypotheses) {
  const EnglishTextNormalizer normalize;
  std::map<std::string, std::string> refs;
  for (const auto& u : load_librispeech("/work/shared/data/LibriSpeech/mini-eval").utterances) refs[u.id] = u.reference;
  std::vector<Pair> pairs;
  for (const auto& [id, hyp] : testing::whisper_hypotheses()) pairs.push_back({normalize(refs.at(id)), normalize(hyp)});
  ASSERT_GE(pairs.size(), 100u);
  const JiwerComparison c = compare_with_jiwer(pairs);
  std::printf("  tiny.en on %zu mini-eval utterances: WER %.4f, CER %.4f\n", pairs.size(), c.corpus.wer(), c.corpus.cer());
}

// Worked by hand: ref "the cat sat on the mat", hyp "cat sit on the mat today". D = I (equal lengths), so a
// 3-error alignment is either 1 S + 1 D + 1 I or 3 S; no 3 S alignment exists (position by position all six
// words differ), so the only minimum is: delete "the", sat -> sit, insert "today".
TEST(Wer, HandComputedAlignment) {
  const Alignment a = align_words("the cat sat on the mat", "cat sit on the mat today");
  EXPECT_EQ(a.counts.hits, 4);
  EXPECT_EQ(a.counts.substitutions, 1);
  EXPECT_EQ(a.counts.deletions, 1);
  EXPECT_EQ(a.counts.insertions, 1);
  ASSERT_EQ(a.columns.size(), 7u);
  const EditOp expected[] = {EditOp::Deletion, EditOp::Match, EditOp::Substitution, EditOp::Match,
                             EditOp::Match,    EditOp::Match, EditOp::Insertion};
  for (size_t k = 0; k < 7; ++k) EXPECT_EQ(a.columns[k].op, expected[k]) << "column " << k;
  EXPECT_EQ(a.columns[0].ref_index, 0);
  EXPECT_EQ(a.columns[0].hyp_index, -1);
  EXPECT_EQ(a.columns[2].ref_index, 2);
  EXPECT_EQ(a.columns[2].hyp_index, 1);
  EXPECT_EQ(a.columns[6].ref_index, -1);
  EXPECT_EQ(a.columns[6].hyp_index, 5);
  EXPECT_DOUBLE_EQ(a.counts.rate(), 3.0 / 6.0);
  const std::string view = format_word_alignment("the cat sat on the mat", "cat sit on the mat today", a);
  EXPECT_NE(view.find("REF: the cat sat on the mat *"), std::string::npos) << view;
  EXPECT_NE(view.find("HYP: *   cat sit on the mat today"), std::string::npos) << view;

  // Characters: "abc" -> "axc d": one substitution, two insertions (" " and "d").
  const Alignment c = align_characters("abc", "axc  d");
  EXPECT_EQ(c.counts.hits, 2);
  EXPECT_EQ(c.counts.substitutions, 1);
  EXPECT_EQ(c.counts.insertions, 2);
  EXPECT_EQ(c.counts.deletions, 0);
}

TEST(Wer, EmptyReferencesAndHypotheses) {
  EXPECT_EQ(align_words("", "").counts, ErrorCounts{});
  const ErrorCounts ins = align_words("", "a b c").counts;
  EXPECT_EQ(ins.insertions, 3);
  EXPECT_EQ(ins.rate(), 3.0);  // errors / max(1, 0)
  const ErrorCounts del = align_words("a b", "  ").counts;
  EXPECT_EQ(del.deletions, 2);
  EXPECT_EQ(del.rate(), 1.0);
  // In a corpus the empty reference adds its insertions to the numerator only.
  EXPECT_DOUBLE_EQ(corpus_rate({ins, del}), 5.0 / 2.0);
  EXPECT_DOUBLE_EQ(corpus_rate({align_words("a b c d", "a b c d").counts, align_words("", "x").counts}), 1.0 / 4.0);
}

std::vector<ErrorCounts> simulated_system(size_t n, double p_error, uint64_t seed) {
  Rng rng(seed);
  std::vector<ErrorCounts> out;
  for (size_t k = 0; k < n; ++k) {
    ErrorCounts c;
    const int len = 5 + static_cast<int>(rng.below(30));
    for (int w = 0; w < len; ++w) (rng.uniform() < p_error ? c.substitutions : c.hits)++;
    out.push_back(c);
  }
  return out;
}

TEST(Wer, BootstrapIntervalContainsEstimateAndNarrowsWithData) {
  const auto small = simulated_system(50, 0.1, 1);
  const auto large = simulated_system(2000, 0.1, 1);
  const auto ci_small = bootstrap_rate(small);
  const auto ci_large = bootstrap_rate(large);
  for (const auto& ci : {ci_small, ci_large}) {
    EXPECT_LE(ci.lower, ci.estimate);
    EXPECT_GE(ci.upper, ci.estimate);
    EXPECT_EQ(ci.resamples, 1000);
  }
  EXPECT_LT(ci_large.upper - ci_large.lower, 0.5 * (ci_small.upper - ci_small.lower));
  // The 2000-utterance interval covers the true error probability.
  EXPECT_LE(ci_large.lower, 0.1);
  EXPECT_GE(ci_large.upper, 0.1);
  // Seeded: the same seed gives the same interval, another seed a (slightly) different one.
  EXPECT_EQ(bootstrap_rate(small).lower, ci_small.lower);
  EXPECT_NE(bootstrap_rate(small, {1000, 0.95, 99}).lower, ci_small.lower);
  EXPECT_THROW(bootstrap_rate({}), InvalidArgument);
  EXPECT_THROW(bootstrap_rate(small, {0, 0.95, 1}), InvalidArgument);
}

// B has the same references as A; its word error probability is `p_b`, with errors drawn independently.
std::vector<ErrorCounts> same_refs(const std::vector<ErrorCounts>& a, double p_b, uint64_t seed) {
  Rng rng(seed);
  std::vector<ErrorCounts> out;
  for (const auto& u : a) {
    ErrorCounts c;
    for (int64_t w = 0; w < u.ref_length(); ++w) (rng.uniform() < p_b ? c.substitutions : c.hits)++;
    out.push_back(c);
  }
  return out;
}

TEST(Wer, PairedComparisonDetectsRealDifferenceOnly) {
  // 20 replicates each: B truly worse (word error 0.08 -> 0.11) must be detected every time; B equally good
  // must be called significant about 5% of the time at the 95% level (at most 3 of 20 here).
  int real_detected = 0, real_sign = 0, null_significant = 0, null_sign = 0;
  for (uint64_t r = 0; r < 20; ++r) {
    const auto a = simulated_system(500, 0.08, 100 + r);
    const PairedComparison real = compare_paired(a, same_refs(a, 0.11, 200 + r), {1000, 0.95, r});
    const PairedComparison null = compare_paired(a, same_refs(a, 0.08, 300 + r), {1000, 0.95, r});
    real_detected += real.significant() && real.delta > 0 && real.prob_b_worse > 0.975;
    real_sign += real.sign_test_p < 0.05;
    null_significant += null.significant();
    null_sign += null.sign_test_p < 0.05;
    if (r == 0)
      std::printf("  replicate 0: real delta %.4f CI [%.4f, %.4f] P(B worse) %.3f sign p %.2g; null delta %.4f "
                  "CI [%.4f, %.4f] P(B worse) %.3f sign p %.2g\n",
                  real.delta, real.delta_lower, real.delta_upper, real.prob_b_worse, real.sign_test_p, null.delta,
                  null.delta_lower, null.delta_upper, null.prob_b_worse, null.sign_test_p);
  }
  std::printf("  real difference detected %d/20 (bootstrap), %d/20 (sign test); null called significant %d/20 "
              "(bootstrap), %d/20 (sign test)\n", real_detected, real_sign, null_significant, null_sign);
  EXPECT_EQ(real_detected, 20);
  EXPECT_GE(real_sign, 18);
  EXPECT_LE(null_significant, 3);
  EXPECT_LE(null_sign, 3);
  const auto a = simulated_system(500, 0.08, 7);
  // Identical systems: no difference at all.
  const PairedComparison self = compare_paired(a, a);
  EXPECT_EQ(self.delta, 0);
  EXPECT_EQ(self.ties, 500);
  EXPECT_EQ(self.sign_test_p, 1.0);
  EXPECT_THROW(compare_paired(a, simulated_system(499, 0.1, 1)), InvalidArgument);
  EXPECT_THROW(compare_paired(a, simulated_system(500, 0.1, 123)), InvalidArgument);  // other references
}

TEST(Wer, SignTestMatchesExactBinomial) {
  const std::vector<std::pair<int64_t, int64_t>> cases = {
      {0, 0}, {1, 0}, {5, 5}, {0, 10}, {2, 8}, {12, 30}, {100, 130}, {400, 470}, {1000, 1100}, {3, 2000}, {50, 50}};
  TempDir tmp;
  std::vector<nlohmann::json> rows;
  for (auto [s, f] : cases) rows.push_back({s, f});
  testing::write_jsonl(tmp.file("counts.jsonl"), rows);
  testing::run_reference_script("ref_wer.py", "signtest " + tmp.file("counts.jsonl") + " " + tmp.file("p.json"));
  nlohmann::json expected;
  std::ifstream(tmp.file("p.json")) >> expected;
  for (size_t k = 0; k < cases.size(); ++k) {
    const double p = sign_test_p_value(cases[k].first, cases[k].second);
    const double e = expected[k].get<double>();
    EXPECT_NEAR(p, e, 1e-9 * std::max(1e-300, e) + 1e-300) << cases[k].first << " vs " << cases[k].second;
    if (e > 0) {
      EXPECT_NEAR(p / e, 1.0, 1e-9);
    }
  }
}

}  // namespace
}  // namespace quasr::eval
