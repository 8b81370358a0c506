// The FP32 Whisper network against CTranslate2 (compute_type=float32) on the four test-clean clips, with the
// features faster-whisper computes (scripts/ref_ct2.py), so these tests do not depend on quasr's audio code.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <numeric>

#include "quasr/core/error.h"
#include "test_whisper_model_util.h"

namespace quasr::models {
namespace {
using testing::ct2_reference;
using testing::rel_max_diff;
using testing::shared_model;

// Tolerances (docs/runtime.md): max |quasr - ct2| relative to the reference tensor's max |value|. Both sides
// compute in FP32 from the same FP16-stored weights; they differ only in summation order and in the exp/erf
// approximations, which accumulate to ~1e-5 relative over the encoder (measured); 1e-3 is the bound promised.
constexpr double kEncoderTol = 1e-3;
constexpr double kLogitsTol = 1e-3;

const std::string kModel = "tiny.en";

std::vector<float> model_logits_after(const WhisperModel& m, std::span<const float> enc, std::span<const int> prefix) {
  auto st = m.start(enc, 1);
  std::vector<float> logits(m.config().n_vocab);
  m.step(*st, prefix, static_cast<int>(prefix.size()), logits);
  return logits;
}

int argmax(std::span<const float> v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST(WhisperModel, LoadsTinyEnConfiguration) {
  auto m = shared_model(kModel);
  const WhisperConfig& c = m->config();
  EXPECT_EQ(c.n_mels, 80);
  EXPECT_EQ(c.n_audio_ctx, 1500);
  EXPECT_EQ(c.n_audio_state, 384);
  EXPECT_EQ(c.n_audio_head, 6);
  EXPECT_EQ(c.n_audio_layer, 4);
  EXPECT_EQ(c.n_text_ctx, 448);
  EXPECT_EQ(c.n_text_layer, 4);
  EXPECT_EQ(c.n_vocab, 51864);
  EXPECT_FALSE(c.multilingual);
  EXPECT_FALSE(c.suppress_ids.empty());
  EXPECT_EQ(c.suppress_ids_begin, (std::vector<int>{220, 50256}));
  EXPECT_EQ(c.alignment_heads.size(), 8u);
}

// tiny.en ships FP16, so the runtime holds its Linears as FP16 (Linear::store_as_fp16_if_exact) and widens them
// exactly in the kernels: encoder output (M = 1500 products), cross-attention K/V and the logits of a 4-token
// and of a 1-token step (M <= 8 products) must be the bits of the same model held in FP32 (QUASR_FP32_WEIGHTS=1).
TEST(WhisperModel, Fp16HeldWeightsGiveTheFp32ResultsBitForBit) {
  auto fp16 = shared_model(kModel);
  ::setenv("QUASR_FP32_WEIGHTS", "1", 1);
  auto fp32 = WhisperModel::load(kModel);
  ::unsetenv("QUASR_FP32_WEIGHTS");
  const WhisperConfig& c = fp16->config();
  // Every matrix: conv stem, tied embedding, 4 + 2 d x 4d per encoder layer, 8 + 2 per decoder layer.
  const int64_t d = c.n_audio_state;
  EXPECT_EQ(fp16->weight_values_held_as_fp16(), d * c.n_mels * 3 + d * d * 3 + int64_t{c.n_vocab} * d +
                                                    c.n_audio_layer * 12 * d * d + c.n_text_layer * 16 * d * d);
  EXPECT_EQ(fp32->weight_values_held_as_fp16(), 0);
  auto same_bits = [](std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  const auto& r = ct2_reference(fp16->directory()).front();
  const std::vector<float> enc16 = fp16->encode(r.features), enc32 = fp32->encode(r.features);
  ASSERT_TRUE(same_bits(enc16, enc32));
  const std::vector<int> prefix = {50257, 50362, 383, 1049};
  auto st16 = fp16->start(enc16, 1), st32 = fp32->start(enc32, 1);
  std::vector<float> l16(fp16->config().n_vocab), l32(l16.size());
  fp16->step(*st16, prefix, 4, l16);
  fp32->step(*st32, prefix, 4, l32);
  ASSERT_TRUE(same_bits(l16, l32));
  const std::vector<int> next = {argmax(l32)};
  fp16->step(*st16, next, 1, l16);
  fp32->step(*st32, next, 1, l32);
  EXPECT_TRUE(same_bits(l16, l32));
}

TEST(WhisperModel, EncoderMatchesCTranslate2) {
  auto m = shared_model(kModel);
  for (const auto& r : ct2_reference(m->directory())) {
    const std::vector<float> enc = m->encode(r.features);
    ASSERT_EQ(enc.size(), r.encoder.size());
    const double err = rel_max_diff(enc, r.encoder);
    std::printf("[ encoder  ] %s: max|diff|/max|ref| = %.2e\n", r.stem.c_str(), err);
    EXPECT_LE(err, kEncoderTol) << r.stem;
  }
}

TEST(WhisperModel, DecoderLogitsMatchCTranslate2TokenByToken) {
  auto m = shared_model(kModel);
  const int V = m->config().n_vocab;
  for (const auto& r : ct2_reference(m->directory())) {
    // Fed CT2's own encoder output, so this isolates the decoder.
    auto st = m->start(r.encoder, 1);
    std::vector<float> logits(V);
    m->step(*st, std::span(r.sot), static_cast<int>(r.sot.size()), logits);
    double worst = rel_max_diff(logits, std::span(r.logits).first(V));
    EXPECT_EQ(argmax(logits), argmax(std::span(r.logits).first(V)));
    for (int j = 1; j < r.n_logits; ++j) {
      const int tok = r.prefix[r.sot.size() + j - 1];
      m->step(*st, std::span(&tok, 1), 1, logits);
      const auto ref = std::span(r.logits).subspan(static_cast<size_t>(j) * V, V);
      worst = std::max(worst, rel_max_diff(logits, ref));
      EXPECT_EQ(argmax(logits), argmax(ref)) << r.stem << " position " << j;
    }
    EXPECT_EQ(m->cached_length(*st), static_cast<int>(r.prefix.size()));
    std::printf("[ logits   ] %s: %d positions, max|diff|/max|ref| = %.2e\n", r.stem.c_str(), r.n_logits, worst);
    EXPECT_LE(worst, kLogitsTol) << r.stem;
  }
}

TEST(WhisperModel, WholePrefixInOneStepMatchesCTranslate2) {
  auto m = shared_model(kModel);
  const int V = m->config().n_vocab;
  for (const auto& r : ct2_reference(m->directory())) {
    const auto logits = model_logits_after(*m, r.encoder, r.prefix);
    const auto ref = std::span(r.logits).subspan(static_cast<size_t>(r.n_logits - 1) * V, V);
    EXPECT_LE(rel_max_diff(logits, ref), kLogitsTol) << r.stem;
  }
}

// Argmax decoding from quasr's own encoder output gives CTranslate2's greedy tokens (no logit rules on either
// side: the SOT sequence ends in <|notimestamps|> and suppression is off in the reference).
TEST(WhisperModel, GreedyTokensMatchCTranslate2) {
  auto m = shared_model(kModel);
  const int V = m->config().n_vocab, eot = 50256;
  for (const auto& r : ct2_reference(m->directory())) {
    const std::vector<float> enc = m->encode(r.features);
    auto st = m->start(enc, 1);
    std::vector<float> logits(V);
    m->step(*st, std::span(r.sot), static_cast<int>(r.sot.size()), logits);
    std::vector<int> out;
    while (m->cached_length(*st) < m->config().n_text_ctx) {
      const int tok = argmax(logits);
      if (tok == eot) break;
      out.push_back(tok);
      m->step(*st, std::span(&tok, 1), 1, logits);
    }
    EXPECT_EQ(out, r.greedy) << r.stem;
  }
}

// A batch decodes each sequence as if alone (beams share the pass over the weights, nothing else).
TEST(WhisperModel, BatchedStepEqualsSingleSequences) {
  auto m = shared_model(kModel);
  const int V = m->config().n_vocab;
  const auto& r = ct2_reference(m->directory()).front();
  std::vector<int> a = r.prefix, b = r.prefix;
  std::reverse(b.begin() + static_cast<long>(r.sot.size()), b.end());  // a different text continuation
  const int n = static_cast<int>(a.size());
  auto st = m->start(r.encoder, 2);
  std::vector<int> tokens = a;
  tokens.insert(tokens.end(), b.begin(), b.end());
  std::vector<float> logits(2 * V);
  m->step(*st, tokens, n, logits);
  const auto la = model_logits_after(*m, r.encoder, a), lb = model_logits_after(*m, r.encoder, b);
  EXPECT_LE(rel_max_diff(std::span(logits).first(V), la), 1e-5);
  EXPECT_LE(rel_max_diff(std::span(logits).subspan(V), lb), 1e-5);
}

TEST(WhisperModel, ReorderDuplicatesAndPermutesCaches) {
  auto m = shared_model(kModel);
  const int V = m->config().n_vocab;
  const auto& r = ct2_reference(m->directory()).front();
  std::vector<int> p1(r.prefix.begin(), r.prefix.end() - 1), p2 = p1;
  p2.back() = 13;  // "." : two sequences that differ in their last token
  auto st = m->start(r.encoder, 2);
  std::vector<int> tokens = p1;
  tokens.insert(tokens.end(), p2.begin(), p2.end());
  std::vector<float> logits(2 * V);
  m->step(*st, tokens, static_cast<int>(p1.size()), logits);
  // New batch of 3: [old 1, old 0, old 1], each continued by the prefix's last token.
  const std::vector<int> src = {1, 0, 1};
  m->reorder(*st, src);
  const std::vector<int> next(3, r.prefix.back());
  std::vector<float> l3(3 * V);
  m->step(*st, next, 1, l3);
  std::vector<int> full1 = p1, full2 = p2;
  full1.push_back(r.prefix.back());
  full2.push_back(r.prefix.back());
  const auto e1 = model_logits_after(*m, r.encoder, full1), e2 = model_logits_after(*m, r.encoder, full2);
  EXPECT_LE(rel_max_diff(std::span(l3).first(V), e2), 1e-5);
  EXPECT_LE(rel_max_diff(std::span(l3).subspan(V, V), e1), 1e-5);
  EXPECT_LE(rel_max_diff(std::span(l3).subspan(2 * V, V), e2), 1e-5);
  EXPECT_EQ(m->cached_length(*st), static_cast<int>(full1.size()));
}

TEST(WhisperModel, RejectsBadArguments) {
  auto m = shared_model(kModel);
  const WhisperConfig& c = m->config();
  EXPECT_THROW(m->encode(std::vector<float>(c.n_mels * 2999)), InvalidArgument);
  EXPECT_THROW(m->start(std::vector<float>(10), 1), InvalidArgument);
  std::vector<float> enc(static_cast<size_t>(c.n_audio_ctx) * c.n_audio_state);
  EXPECT_THROW(m->start(enc, 0), InvalidArgument);
  auto st = m->start(enc, 1);
  std::vector<float> logits(c.n_vocab);
  const std::vector<int> bad_tok = {c.n_vocab};
  EXPECT_THROW(m->step(*st, bad_tok, 1, logits), InvalidArgument);
  const std::vector<int> two = {1, 2};
  EXPECT_THROW(m->step(*st, two, 1, logits), InvalidArgument);  // batch 1 x 1 token expected
  std::vector<float> small(10);
  const std::vector<int> one = {1};
  EXPECT_THROW(m->step(*st, one, 1, small), InvalidArgument);
  const std::vector<int> too_long(c.n_text_ctx + 1, 1);
  EXPECT_THROW(m->step(*st, too_long, c.n_text_ctx + 1, logits), InvalidArgument);
  const std::vector<int> bad_src = {1};
  EXPECT_THROW(m->reorder(*st, bad_src), InvalidArgument);
  EXPECT_EQ(m->cached_length(*st), 0);  // failed calls left the state alone
}

TEST(WhisperModel, UnknownModelNameListsInstalledModels) {
  try {
    WhisperModel::load("no-such-model");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.en"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quasr::models

namespace quasr::models {
namespace {

// The multilingual base model (6 + 6 layers, 8 heads, 51865 tokens) on one clip: encoder and logits.
TEST(WhisperModel, BaseMatchesCTranslate2OnOneClip) {
  auto m = testing::shared_model("base");
  const WhisperConfig& c = m->config();
  EXPECT_EQ(c.n_audio_layer, 6);
  EXPECT_EQ(c.n_text_head, 8);
  EXPECT_EQ(c.n_vocab, 51865);
  EXPECT_TRUE(c.multilingual);
  EXPECT_EQ(c.lang_ids.size(), 99u);
  const auto& r = testing::ct2_reference(m->directory()).front();
  const std::vector<float> enc = m->encode(r.features);
  const double enc_err = testing::rel_max_diff(enc, r.encoder);
  auto st = m->start(r.encoder, 1);
  std::vector<float> logits(c.n_vocab);
  m->step(*st, r.prefix, static_cast<int>(r.prefix.size()), logits);
  const double log_err = testing::rel_max_diff(
      logits, std::span(r.logits).subspan(static_cast<size_t>(r.n_logits - 1) * c.n_vocab, c.n_vocab));
  std::printf("[ base     ] %s: encoder %.2e, logits %.2e (max|diff|/max|ref|)\n", r.stem.c_str(), enc_err, log_err);
  EXPECT_LE(enc_err, kEncoderTol);
  EXPECT_LE(log_err, kLogitsTol);
}

}  // namespace
}  // namespace quasr::models
