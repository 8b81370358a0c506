#include "quasr/eval/wer.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/eval/unicode.h"

namespace quasr::eval {

double ErrorCounts::rate() const {
  return static_cast<double>(errors()) / static_cast<double>(std::max<int64_t>(1, ref_length()));
}

ErrorCounts& ErrorCounts::operator+=(const ErrorCounts& o) {
  hits += o.hits;
  substitutions += o.substitutions;
  deletions += o.deletions;
  insertions += o.insertions;
  return *this;
}

const char* to_string(EditOp op) {
  switch (op) {
    case EditOp::Match: return "match";
    case EditOp::Substitution: return "substitution";
    case EditOp::Deletion: return "deletion";
    case EditOp::Insertion: return "insertion";
  }
  return "?";
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& w : unicode::split_whitespace(unicode::decode_utf8(text))) out.push_back(unicode::encode_utf8(w));
  return out;
}

std::u32string characters_for_cer(std::string_view text) {
  std::u32string out;
  for (const auto& w : unicode::split_whitespace(unicode::decode_utf8(text))) {
    if (!out.empty()) out.push_back(U' ');
    out.append(w);
  }
  return out;
}

Alignment align(const std::vector<int32_t>& ref, const std::vector<int32_t>& hyp, bool keep_columns) {
  // Strip the common prefix and suffix first, then fill the DP on the middle and trace back with rapidfuzz's
  // preferences (deletion, then insertion, then the diagonal), so that among equally short alignments we pick
  // the one jiwer reports and the S/D/I split matches it too.
  const size_t n_all = ref.size(), m_all = hyp.size();
  size_t prefix = 0;
  while (prefix < n_all && prefix < m_all && ref[prefix] == hyp[prefix]) ++prefix;
  size_t suffix = 0;
  while (suffix < n_all - prefix && suffix < m_all - prefix && ref[n_all - 1 - suffix] == hyp[m_all - 1 - suffix])
    ++suffix;
  const size_t n = n_all - prefix - suffix, m = m_all - prefix - suffix;
  if ((n + 1) * (m + 1) > (size_t{1} << 28))
    throw InvalidArgument("alignment of " + std::to_string(n_all) + " x " + std::to_string(m_all) +
                          " tokens is too large; split the utterance");
  const int32_t* a = ref.data() + prefix;
  const int32_t* b = hyp.data() + prefix;
  std::vector<int32_t> d((n + 1) * (m + 1));
  auto D = [&](size_t i, size_t j) -> int32_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) D(i, 0) = static_cast<int32_t>(i);
  for (size_t j = 0; j <= m; ++j) D(0, j) = static_cast<int32_t>(j);
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      D(i, j) = std::min({D(i - 1, j) + 1, D(i, j - 1) + 1, D(i - 1, j - 1) + (a[i - 1] != b[j - 1] ? 1 : 0)});

  Alignment out;
  std::vector<AlignedToken> middle;  // built backwards
  auto push = [&](EditOp op, int64_t ri, int64_t hi) {
    switch (op) {
      case EditOp::Match: ++out.counts.hits; break;
      case EditOp::Substitution: ++out.counts.substitutions; break;
      case EditOp::Deletion: ++out.counts.deletions; break;
      case EditOp::Insertion: ++out.counts.insertions; break;
    }
    if (keep_columns) middle.push_back({op, static_cast<int32_t>(ri), static_cast<int32_t>(hi)});
  };
  size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (D(i, j) == D(i - 1, j) + 1) {  // deletion of ref[i-1]
      --i;
      push(EditOp::Deletion, prefix + i, -1);
      continue;
    }
    --j;
    if (j > 0 && D(i, j) == D(i - 1, j) - 1) {  // insertion of hyp[j]
      push(EditOp::Insertion, -1, prefix + j);
    } else {
      --i;
      push(a[i] == b[j] ? EditOp::Match : EditOp::Substitution, prefix + i, prefix + j);
    }
  }
  while (i > 0) --i, push(EditOp::Deletion, prefix + i, -1);
  while (j > 0) --j, push(EditOp::Insertion, -1, prefix + j);

  out.counts.hits += static_cast<int64_t>(prefix + suffix);
  if (keep_columns) {
    out.columns.reserve(prefix + middle.size() + suffix);
    for (size_t k = 0; k < prefix; ++k)
      out.columns.push_back({EditOp::Match, static_cast<int32_t>(k), static_cast<int32_t>(k)});
    out.columns.insert(out.columns.end(), middle.rbegin(), middle.rend());
    for (size_t k = 0; k < suffix; ++k)
      out.columns.push_back({EditOp::Match, static_cast<int32_t>(prefix + n + k), static_cast<int32_t>(prefix + m + k)});
  }
  return out;
}

Alignment align_words(std::string_view ref, std::string_view hyp, bool keep_columns) {
  std::unordered_map<std::string, int32_t> ids;
  auto encode = [&](std::string_view text) {
    std::vector<int32_t> out;
    for (auto& w : split_words(text)) out.push_back(ids.emplace(std::move(w), static_cast<int32_t>(ids.size())).first->second);
    return out;
  };
  const auto r = encode(ref);
  const auto h = encode(hyp);
  return align(r, h, keep_columns);
}

Alignment align_characters(std::string_view ref, std::string_view hyp, bool keep_columns) {
  auto encode = [](std::string_view text) {
    const std::u32string chars = characters_for_cer(text);
    return std::vector<int32_t>(chars.begin(), chars.end());
  };
  return align(encode(ref), encode(hyp), keep_columns);
}

std::string format_word_alignment(std::string_view ref, std::string_view hyp, const Alignment& alignment) {
  const auto r = split_words(ref), h = split_words(hyp);
  std::string lr = "REF:", lh = "HYP:", lo = "OPS:";
  for (const AlignedToken& c : alignment.columns) {
    const std::string rw = c.ref_index >= 0 ? r.at(c.ref_index) : std::string("*");
    const std::string hw = c.hyp_index >= 0 ? h.at(c.hyp_index) : std::string("*");
    const char* op = c.op == EditOp::Match ? "" : c.op == EditOp::Substitution ? "S" : c.op == EditOp::Deletion ? "D" : "I";
    const size_t width = std::max({unicode::decode_utf8(rw).size(), unicode::decode_utf8(hw).size(), size_t{1}});
    auto pad = [&](const std::string& s) {
      return " " + s + std::string(width - std::min(width, unicode::decode_utf8(s).size()), ' ');
    };
    lr += pad(rw);
    lh += pad(hw);
    lo += pad(op);
  }
  return lr + "\n" + lh + "\n" + lo + "\n";
}

UtteranceScore score_utterance(std::string_view ref_normalized, std::string_view hyp_normalized) {
  return {align_words(ref_normalized, hyp_normalized, false).counts,
          align_characters(ref_normalized, hyp_normalized, false).counts};
}

CorpusScore score_corpus(const std::vector<UtteranceScore>& utterances) {
  CorpusScore s;
  for (const auto& u : utterances) {
    s.words += u.words;
    s.characters += u.characters;
  }
  s.utterances = utterances.size();
  return s;
}

namespace {

double rate_of(int64_t errors, int64_t ref_length) {
  return static_cast<double>(errors) / static_cast<double>(std::max<int64_t>(1, ref_length));
}

// numpy.percentile's default (linear interpolation between closest ranks) of a sorted vector.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

void check_options(const BootstrapOptions& o) {
  if (o.resamples < 1) throw InvalidArgument("bootstrap needs at least one resample, got " + std::to_string(o.resamples));
  if (!(o.level > 0 && o.level < 1)) throw InvalidArgument("confidence level must be in (0, 1), got " + std::to_string(o.level));
}

}  // namespace

double corpus_rate(const std::vector<ErrorCounts>& utterances) {
  ErrorCounts total;
  for (const auto& u : utterances) total += u;
  return total.rate();
}

ConfidenceInterval bootstrap_rate(const std::vector<ErrorCounts>& utterances, const BootstrapOptions& options) {
  check_options(options);
  if (utterances.empty()) throw InvalidArgument("bootstrap of an empty set of utterances");
  ConfidenceInterval ci;
  ci.estimate = corpus_rate(utterances);
  ci.level = options.level;
  ci.resamples = options.resamples;
  Rng rng(options.seed);
  const size_t n = utterances.size();
  std::vector<double> rates(options.resamples);
  for (int r = 0; r < options.resamples; ++r) {
    int64_t errors = 0, length = 0;
    for (size_t k = 0; k < n; ++k) {
      const ErrorCounts& u = utterances[rng.below(n)];
      errors += u.errors();
      length += u.ref_length();
    }
    rates[r] = rate_of(errors, length);
  }
  std::sort(rates.begin(), rates.end());
  ci.lower = percentile(rates, (1 - options.level) / 2);
  ci.upper = percentile(rates, 1 - (1 - options.level) / 2);
  return ci;
}

PairedComparison compare_paired(const std::vector<ErrorCounts>& a, const std::vector<ErrorCounts>& b,
                                const BootstrapOptions& options) {
  check_options(options);
  if (a.size() != b.size())
    throw InvalidArgument("paired comparison needs the same utterances: " + std::to_string(a.size()) + " vs " +
                          std::to_string(b.size()));
  if (a.empty()) throw InvalidArgument("paired comparison of an empty set of utterances");
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].ref_length() != b[k].ref_length())
      throw InvalidArgument("paired comparison: utterance " + std::to_string(k) + " has reference length " +
                            std::to_string(a[k].ref_length()) + " in A but " + std::to_string(b[k].ref_length()) +
                            " in B (not the same references)");
  PairedComparison c;
  c.rate_a = corpus_rate(a);
  c.rate_b = corpus_rate(b);
  c.delta = c.rate_b - c.rate_a;
  c.resamples = options.resamples;
  c.level = options.level;
  Rng rng(options.seed);
  const size_t n = a.size();
  std::vector<double> deltas(options.resamples);
  int worse = 0;
  for (int r = 0; r < options.resamples; ++r) {
    int64_t ea = 0, eb = 0, length = 0;
    for (size_t k = 0; k < n; ++k) {
      const size_t i = rng.below(n);
      ea += a[i].errors();
      eb += b[i].errors();
      length += a[i].ref_length();
    }
    deltas[r] = rate_of(eb, length) - rate_of(ea, length);
    worse += deltas[r] > 0;
  }
  c.prob_b_worse = static_cast<double>(worse) / options.resamples;
  std::sort(deltas.begin(), deltas.end());
  c.delta_lower = percentile(deltas, (1 - options.level) / 2);
  c.delta_upper = percentile(deltas, 1 - (1 - options.level) / 2);
  for (size_t k = 0; k < n; ++k) {
    if (b[k].errors() < a[k].errors()) ++c.b_better;
    else if (b[k].errors() > a[k].errors()) ++c.b_worse;
    else ++c.ties;
  }
  c.sign_test_p = sign_test_p_value(c.b_better, c.b_worse);
  return c;
}

double sign_test_p_value(int64_t successes, int64_t failures) {
  if (successes < 0 || failures < 0) throw InvalidArgument("sign test counts must be non-negative");
  const int64_t n = successes + failures;
  if (n == 0) return 1.0;
  const int64_t k = std::min(successes, failures);
  // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n can be in the thousands).
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  double max_term = -INFINITY;
  std::vector<double> terms;
  for (int64_t i = 0; i <= k; ++i) {
    const double t = std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) + log_half_n;
    terms.push_back(t);
    max_term = std::max(max_term, t);
  }
  double sum = 0;
  for (double t : terms) sum += std::exp(t - max_term);
  return std::min(1.0, 2.0 * std::exp(max_term + std::log(sum)));
}

}  // namespace quasr::eval
