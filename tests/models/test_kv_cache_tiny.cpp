// KV cache precision on the real tiny.en: the decoder state holds exactly the modelled bytes, beam reorder keeps
// a sequence's rows and scales together, kv= reaches the runtime through a recipe and a .quasr container, and
// greedy transcripts of the test-clean clips at FP16 / INT8 / FP8 against FP32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "../../src/models/kv_cache.h"
#include "quasr/audio/audio.h"
#include "quasr/core/error.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/wer.h"
#include "quasr/io/file_util.h"
#include "quasr/models/kv_cache.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper_quantized.h"
#include "test_decode_util.h"

namespace quasr::models::detail {
namespace {

namespace qt = quasr::testing;
// Word errors of the INT8 / FP8 KV greedy transcripts against the FP32 ones (normalized text), pooled over the 4
// test-clean clips (57 words). Measured 2026-11-22: INT8 0 (all 4 transcripts identical), FP8 1 (clip
// 1089-134686-0000, "flower-fattened" -> "flower-fatened"). Bounds with margin, tight enough that a broken
// quantizer or a wrong scale (garbled text) fails: INT8 at most 1 error (1.8%), FP8 at most 3 (5.3%).
constexpr int64_t kInt8MaxWordErrors = 1;
constexpr int64_t kFp8MaxWordErrors = 3;
constexpr KvPrecision kAll[] = {KvPrecision::kFp32, KvPrecision::kFp16, KvPrecision::kInt8, KvPrecision::kFp8};

std::unique_ptr<WhisperModel> tiny_en(KvPrecision p) {
  WhisperLoadOptions o;
  if (p != KvPrecision::kFp32) o.recipe = std::string("kv=") + quant::kv_precision_name(p);
  return load_whisper_model(qt::model_dir("tiny.en"), o);
}

std::vector<float> random_encoder_output(const WhisperConfig& c, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(c.n_audio_ctx) * c.n_audio_state);
  for (float& v : x) v = normal(gen);
  return x;
}

TEST(KvCache, DecoderStateHoldsTheModelledBytes) {
  int64_t fp32_total = 0;
  for (KvPrecision p : kAll) {
    SCOPED_TRACE(quant::kv_precision_name(p));
    const auto model = tiny_en(p);
    const WhisperConfig& c = model->config();
    const KvCacheBytes b = whisper_kv_cache_bytes(c, p);
    const auto state = model->start(random_encoder_output(c, 1), 5);
    EXPECT_EQ(decoder_state_kv_bytes(*state), b.self_total(5) + b.cross_total());
    // tiny.en: 4 layers, 6 heads of 64, 448 text positions, 1500 audio positions.
    const int64_t row = p == KvPrecision::kFp32 ? 384 * 4 : p == KvPrecision::kFp16 ? 384 * 2 : 384 + 6 * 4;
    EXPECT_EQ(b.self_per_token_per_layer, 2 * row);
    EXPECT_EQ(b.cross_per_layer, 2 * 1500 * row);
    EXPECT_EQ(b.self_total(5), 4 * 5 * 448 * 2 * row);
    if (p == KvPrecision::kFp32) fp32_total = b.self_total(5) + b.cross_total();
    if (p == KvPrecision::kFp16) {
      EXPECT_EQ(2 * (b.self_total(5) + b.cross_total()), fp32_total);
    }
  }
}

// New sequence i continues old sequence src[i]: after reorder {1, 0, 0} of a batch of 3 that decoded prompts
// (A, B, C), the next step must give what a batch of 3 that decoded (B, A, A) from the start gives. Same batch
// size on both sides, so every projection rounds the same way and the caches hold the same codes; a reorder
// that moved codes without their scales (or the wrong rows) gives other logits.
TEST(KvCache, BeamReorderKeepsEachSequencesRowsAndScales) {
  for (KvPrecision p : kAll) {
    SCOPED_TRACE(quant::kv_precision_name(p));
    const auto model = tiny_en(p);
    const WhisperConfig& c = model->config();
    const std::vector<float> enc = random_encoder_output(c, 2);
    const std::vector<int> a = {50257, 50362, 440, 3290}, b = {50257, 50362, 383, 1110}, cc = {50257, 50362, 40, 588};
    const std::vector<int> next = {286, 262, 290};
    std::vector<float> first(3 * c.n_vocab), got(3 * c.n_vocab), want(3 * c.n_vocab);
    auto concat = [](std::initializer_list<const std::vector<int>*> parts) {
      std::vector<int> out;
      for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
      return out;
    };

    auto reordered = model->start(enc, 3);
    model->step(*reordered, concat({&a, &b, &cc}), 4, first);
    const int src[3] = {1, 0, 0};
    model->reorder(*reordered, src);
    model->step(*reordered, next, 1, got);

    auto direct = model->start(enc, 3);
    model->step(*direct, concat({&b, &a, &a}), 4, first);
    model->step(*direct, next, 1, want);

    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
    EXPECT_LE(worst, 1e-5) << "max logit difference " << worst;
    // And the sequences are really different (the check above would otherwise be vacuous).
    double apart = 0;
    for (int v = 0; v < c.n_vocab; ++v) apart = std::max(apart, double(std::fabs(want[v] - want[c.n_vocab + v])));
    EXPECT_GT(apart, 0.1);
  }
}

TEST(KvCache, PrecisionComesFromTheRecipeAndTheContainer) {
  const qt::TempDir tmp;
  const std::string path = tmp.file("tiny-kv-int8.quasr");
  {
    WhisperWeights w = load_whisper_weights(qt::model_dir("tiny.en"));
    const quant::Recipe r = quant::Recipe::parse("w=int8:pc;role=attn_*: skip;kv=int8");
    save_whisper_quasr(path, w, quantize_whisper(w, r).quantized, r.text, "test");
  }
  const auto model = load_whisper_model(path, {});
  const KvCacheBytes b = whisper_kv_cache_bytes(model->config(), KvPrecision::kInt8);
  const auto state = model->start(random_encoder_output(model->config(), 3), 2);
  EXPECT_EQ(decoder_state_kv_bytes(*state), b.self_total(2) + b.cross_total());
  // Parse-time error with the supported list.
  try {
    tiny_en(KvPrecision::kFp32);  // loads fine
    load_whisper_model(qt::model_dir("tiny.en"), {false, "w8a8;kv=int4"});
    FAIL() << "kv=int4 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache precision must be fp32, fp16, int8 or fp8"), std::string::npos)
        << e.what();
  }
}

// Greedy transcripts of the 4 test-clean clips with the KV caches at each precision, against FP32.
TEST(KvCache, TinyEnTestCleanTranscriptsAgainstFp32) {
  std::vector<std::string> clips;
  for (const auto& e : std::filesystem::recursive_directory_iterator(qt::librispeech_dir() + "/test-clean"))
    if (e.path().extension() == ".flac") clips.push_back(e.path().string());
  std::sort(clips.begin(), clips.end());
  ASSERT_EQ(clips.size(), 4u);
  const auto normalizer = eval::make_normalizer("english");
  TranscribeOptions opt;
  opt.beam_size = 1;
  opt.temperatures = {0.0f};
  std::vector<std::vector<std::string>> text(4);  // [precision][clip]
  for (size_t pi = 0; pi < 4; ++pi) {
    const auto model = tiny_en(kAll[pi]);
    const auto tokenizer = Tokenizer::load(model->directory());
    for (const auto& clip : clips)
      text[pi].push_back(transcribe(*model, tokenizer, audio::load_audio_16k(clip), opt).text());
  }
  std::vector<eval::ErrorCounts> pooled(4);
  for (size_t ci = 0; ci < clips.size(); ++ci) {
    const std::string ref = normalizer->normalize(text[0][ci]);
    for (size_t pi = 1; pi < 4; ++pi) {
      const std::string hyp = normalizer->normalize(text[pi][ci]);
      const eval::ErrorCounts e = eval::align_words(ref, hyp, false).counts;
      pooled[pi] += e;
      std::printf("[kv=%s] %s: %lld word errors / %lld vs fp32%s\n", quant::kv_precision_name(kAll[pi]),
                  std::filesystem::path(clips[ci]).filename().c_str(), static_cast<long long>(e.errors()),
                  static_cast<long long>(e.ref_length()), text[pi][ci] == text[0][ci] ? " (identical text)" : "");
      if (text[pi][ci] != text[0][ci])
        std::printf("  fp32:%s\n  kv=%s:%s\n", text[0][ci].c_str(), quant::kv_precision_name(kAll[pi]),
                    text[pi][ci].c_str());
      if (kAll[pi] == KvPrecision::kFp16) {
        EXPECT_EQ(text[pi][ci], text[0][ci]) << clips[ci];
      }
    }
  }
  EXPECT_LE(pooled[2].errors(), kInt8MaxWordErrors) << "kv=int8: word errors vs fp32 over " << pooled[2].ref_length();
  EXPECT_LE(pooled[3].errors(), kFp8MaxWordErrors) << "kv=fp8: word errors vs fp32 over " << pooled[3].ref_length();
  EXPECT_GT(pooled[1].ref_length(), 50);  // the 4 clips were transcribed (57 words at FP32)
}

}  // namespace
}  // namespace quasr::models::detail
