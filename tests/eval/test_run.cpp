// evaluate()'s accounting checked independently: stored bytes against QTensor::storage() of the real tiny.en
// weights quantized under the recipe, the KV-cache model against the formula worked by hand for tiny.en, and the
// library-level run (scores recomputed from its records, resume, clear errors).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../models/test_decode_util.h"
#include "quasr/core/error.h"
#include "quasr/eval/run.h"
#include "quasr/formats/qtensor.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_spec.h"
#include "quasr/quant/recipe.h"

namespace qe = quasr::eval;
namespace qm = quasr::models;
namespace qt = quasr::testing;
namespace fs = std::filesystem;

TEST(EvalRun, SizeEqualsQTensorStorageOfRealWeights) {
  const qm::WhisperWeights w = qm::load_whisper_weights(qt::model_dir("tiny.en"));
  const qe::SizeReport size = qe::model_size(w.config, "fp32");
  const auto spec = quasr::formats::QuantSpec::parse("fp32");
  int64_t total = 0, linear = 0, elements = 0;
  size_t n = 0;
  for (const auto& s : qm::whisper_tensor_specs(w.config)) {
    if (!s.hf_stored) continue;  // Whisper has no K bias; not stored, not counted
    const auto& t = w.tensors.at(s.name);
    const std::vector<float>& values = t.values;
    const quasr::formats::QTensor q = quasr::formats::quantize(values, s.shape, spec);
    const auto b = static_cast<int64_t>(q.storage().total());
    ASSERT_LT(n, size.tensors.size());
    EXPECT_EQ(size.tensors[n].tensor, s.name);
    EXPECT_EQ(size.tensors[n].bytes, b) << s.name;
    total += b;
    elements += q.numel();
    if (size.tensors[n].linear) linear += b;
    ++n;
  }
  EXPECT_EQ(n, size.tensors.size());
  EXPECT_EQ(size.model.bytes, total);
  EXPECT_EQ(size.model.elements, elements);
  EXPECT_EQ(size.linear.bytes, linear);
  // tiny.en's Linear layers by hand: encoder 4 x (4 d^2 + 2 d ffn), decoder 4 x (8 d^2 + 2 d ffn), d=384, ffn=1536.
  const int64_t d = 384, ffn = 1536;
  EXPECT_EQ(size.linear.elements, 4 * (4 * d * d + 2 * d * ffn) + 4 * (8 * d * d + 2 * d * ffn));
  EXPECT_DOUBLE_EQ(size.model.bits_per_weight(), 32.0);
  EXPECT_DOUBLE_EQ(size.model.compression_vs_fp16(), 0.5);
}

// A quantized recipe: the quantizable tensors as the quant module's reference quantizers store them, the rest FP32.
TEST(EvalRun, QuantizedSizeEqualsQTensorStorage) {
  qm::WhisperWeights w = qm::load_whisper_weights(qt::model_dir("tiny.en"));
  const qe::SizeReport size = qe::model_size(w.config, "w4-g128");
  const auto quantized = qm::quantize_whisper(w, quasr::quant::Recipe::from_argument("w4-g128")).quantized;
  ASSERT_FALSE(quantized.empty());
  int64_t total = 0, linear = 0;
  for (const auto& s : qm::whisper_tensor_specs(w.config)) {
    if (!s.hf_stored) continue;
    int64_t b = 0;
    if (auto it = quantized.find(s.name); it != quantized.end())
      b = static_cast<int64_t>(it->second.q.storage().total());
    else
      b = 4 * static_cast<int64_t>(w.tensors.at(s.name).values.size());
    total += b;
    for (const auto& t : size.tensors)
      if (t.tensor == s.name) {
        EXPECT_EQ(t.bytes, b) << s.name;
        if (t.linear) linear += b;
      }
  }
  EXPECT_EQ(size.model.bytes, total);
  EXPECT_EQ(size.linear.bytes, linear);
  // INT4 in groups of 128 with FP16 scales: 4 + 16/128 = 4.125 bits per Linear weight.
  EXPECT_DOUBLE_EQ(size.linear.bits_per_weight(), 4.125);
  // The preset leaves the conv stem and the token embedding (half of tiny.en's weights) in FP32: everything but
  // the Linear layers keeps its FP32 size.
  const qe::SizeReport fp32 = qe::model_size(w.config, "fp32");
  EXPECT_EQ(size.model.bytes - size.linear.bytes, fp32.model.bytes - fp32.linear.bytes);
  EXPECT_EQ(size.linear.elements, fp32.linear.elements);
}

TEST(EvalRun, KvCacheModelByHandForTinyEn) {
  const qm::WhisperWeights w = qm::load_whisper_weights(qt::model_dir("tiny.en"));
  ASSERT_EQ(w.config.n_text_layer, 4);
  ASSERT_EQ(w.config.n_text_state, 384);
  ASSERT_EQ(w.config.n_text_ctx, 448);
  ASSERT_EQ(w.config.n_audio_ctx, 1500);
  const qe::MemoryModel m1 = qe::model_memory(w.config, 1000, 1, 2);
  // self: 4 layers x (K,V) x 448 positions x 384 x 4 bytes = 5,505,024; cross: 4 x 2 x 1500 x 384 x 4 = 18,432,000
  EXPECT_EQ(m1.kv_self, 5505024);
  EXPECT_EQ(m1.kv_cross, 18432000);
  EXPECT_EQ(m1.weights, 1000);
  const qe::MemoryModel m5 = qe::model_memory(w.config, 1000, 5, 2);
  EXPECT_EQ(m5.kv_self, 5 * 5505024);  // one self-attention cache per beam
  EXPECT_EQ(m5.kv_cross, 18432000);    // cross K/V shared by the beams
  // Encoder block working set: x + 6 T x d + T x ffn + 2 threads x 256 x T, plus the output, in floats.
  const int64_t T = 1500, d = 384, ffn = 1536;
  EXPECT_EQ(m1.activations, (T * d + 6 * T * d + T * ffn + 2 * 256 * T + T * d) * 4);
  EXPECT_EQ(m1.total(), 1000 + 5505024 + 18432000 + m1.activations);
  EXPECT_THROW(qe::model_memory(w.config, 0, 0, 1), quasr::InvalidArgument);
  // kv=fp16: two bytes per value; kv=int8 / fp8: one byte per value plus an FP32 scale per (position, head) of
  // 64 values: 4 layers x 2 x 1500 x (384 + 6 heads x 4) = 4,896,000.
  EXPECT_EQ(qe::model_memory(w.config, 0, 1, 2, quasr::quant::KvPrecision::kFp16).kv_cross, 18432000 / 2);
  EXPECT_EQ(qe::model_memory(w.config, 0, 1, 2, quasr::quant::KvPrecision::kInt8).kv_cross, 4896000);
  EXPECT_EQ(qe::model_memory(w.config, 0, 1, 2, quasr::quant::KvPrecision::kFp8).kv_self, 4 * 2 * 448 * 408);
}

TEST(EvalRun, ClearErrors) {
  qe::EvalRequest r;
  r.data = "no-such-split";
  try {
    qe::evaluate(r);
    FAIL() << "expected an error";
  } catch (const quasr::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-split"), std::string::npos) << e.what();
  }
  r.data = qt::librispeech_dir() + "/test-clean";
  r.selection.limit = 0;
  EXPECT_THROW(qe::evaluate(r), quasr::InvalidArgument);
  r.selection.limit.reset();
  r.recipe = "int3-bogus";
  EXPECT_THROW(qe::evaluate(r), quasr::InvalidArgument);
  r.recipe = "fp32";
  r.model = "no-such-model";
  EXPECT_THROW(qe::evaluate(r), quasr::Error);
}

TEST(EvalRun, ScoresMatchRecordsAndResumeSkipsDone) {
  qt::TempDir tmp;
  qe::EvalRequest r;
  r.data = qt::librispeech_dir() + "/test-clean";
  r.selection.limit = 2;
  r.threads = 2;
  r.out_dir = tmp.path / "out";
  r.quiet = true;
  const qe::EvalResult a = qe::evaluate(r);
  ASSERT_EQ(a.records.size(), 2u);
  const auto back = qe::read_records(r.out_dir / "utterances.jsonl");
  ASSERT_EQ(back.size(), 2u);
  std::vector<qe::UtteranceScore> scores;
  for (const auto& rec : back) scores.push_back(qe::score_utterance(rec.reference_normalized, rec.hypothesis_normalized));
  EXPECT_DOUBLE_EQ(qe::score_corpus(scores).wer(), a.summary.score.wer());
  EXPECT_LT(a.summary.score.wer(), 0.2);  // tiny.en on clean read speech
  EXPECT_GT(a.speed.rtf(), 0);
  EXPECT_GT(a.peak_rss_bytes, a.size.model.bytes / 2);

  // Resume with a larger selection: the 2 finished utterances are taken over, the others decoded.
  r.selection.limit = 3;
  r.resume = true;
  std::vector<size_t> reported;
  r.on_utterance = [&](size_t done, size_t) { reported.push_back(done); };
  const qe::EvalResult b = qe::evaluate(r);
  EXPECT_EQ(reported, (std::vector<size_t>{2, 3}));  // the resumed ones at once (a sweep's ETA ignores them)
  EXPECT_EQ(b.resumed, 2u);
  ASSERT_EQ(b.records.size(), 3u);
  EXPECT_EQ(b.records[0].hypothesis, a.records[0].hypothesis);
  EXPECT_NEAR(b.speed.audio_seconds, b.records[2].audio_seconds, 1e-9);  // only the new one was decoded

  // Resuming with another configuration is refused rather than mixing results.
  r.beam_size = 2;
  EXPECT_THROW(qe::evaluate(r), quasr::InvalidArgument);
}

// --jobs: utterances decoded concurrently, one thread each, give exactly the records of one thread, in dataset
// order (in the file too), on real tiny.en weights under a quantized recipe.
TEST(EvalRun, JobsGiveTheRecordsOfOneThreadInDatasetOrder) {
  qt::TempDir tmp;
  qe::EvalRequest r;
  r.data = qt::librispeech_dir() + "/test-clean";
  r.recipe = "w=int4:g128";
  r.simulate = true;
  r.quiet = true;
  r.threads = 1;
  r.out_dir = tmp.path / "one";
  const qe::EvalResult one = qe::evaluate(r);
  r.jobs = 3;
  r.out_dir = tmp.path / "jobs";
  std::vector<size_t> reported;  // counted, not indexed: utterances may finish in any order
  r.on_utterance = [&](size_t done, size_t total) {
    reported.push_back(done);
    EXPECT_EQ(total, one.records.size());
  };
  const qe::EvalResult jobs = qe::evaluate(r);
  EXPECT_EQ(jobs.jobs, 3);
  EXPECT_EQ(jobs.threads, 1);
  EXPECT_EQ(reported, (std::vector<size_t>{0, 1, 2, 3, 4}));  // 0: nothing resumed, before decoding
  ASSERT_EQ(one.records.size(), 4u);
  ASSERT_EQ(jobs.records.size(), one.records.size());
  const auto back = qe::read_records(r.out_dir / "utterances.jsonl");
  ASSERT_EQ(back.size(), one.records.size());
  for (size_t i = 0; i < one.records.size(); ++i) {
    EXPECT_EQ(jobs.records[i].id, one.records[i].id);
    EXPECT_EQ(back[i].id, one.records[i].id);
    EXPECT_EQ(jobs.records[i].hypothesis, one.records[i].hypothesis) << one.records[i].id;
  }
  EXPECT_DOUBLE_EQ(jobs.summary.score.wer(), one.summary.score.wer());
  EXPECT_NEAR(jobs.speed.audio_seconds, one.speed.audio_seconds, 1e-9);

  r.jobs = 0;
  EXPECT_THROW(qe::evaluate(r), quasr::InvalidArgument);
}

// An utterance whose audio is corrupt stops the run with an error naming the file, and the utterances finished
// before it are on disk (fewer than write_every of them: written because the run failed), so --resume keeps them.
TEST(EvalRun, FailedUtteranceKeepsTheFinishedOnes) {
  qt::TempDir tmp;
  const std::string clean = qt::librispeech_dir() + "/test-clean/1089/134686/";
  const fs::path bad = tmp.path / "bad.flac";
  { std::ofstream(bad) << "not a flac file"; }
  const fs::path manifest = tmp.path / "m.tsv";
  {
    std::ofstream m(manifest);
    m << clean << "1089-134686-0000.flac\tfirst\ta-first\n"
      << clean << "1089-134686-0001.flac\tsecond\tb-second\n"
      << bad.string() << "\tthird\tz-bad\n";
  }
  for (int jobs : {1, 2}) {
    qe::EvalRequest r;
    r.data = manifest.string();
    r.quiet = true;
    r.threads = 1;
    r.jobs = jobs;
    r.out_dir = tmp.path / ("out" + std::to_string(jobs));
    try {
      qe::evaluate(r);
      ADD_FAILURE() << "expected an error for the corrupt file";
    } catch (const quasr::Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.flac"), std::string::npos) << e.what();
    }
    // Both good ones were taken before the bad one (utterances are handed out in order) and a taken utterance
    // is always finished, so both are kept with 2 jobs as well.
    const auto kept = qe::read_records(r.out_dir / "utterances.jsonl");
    ASSERT_EQ(kept.size(), 2u) << jobs << " jobs";
    EXPECT_EQ(kept[0].id, "a-first");
    EXPECT_EQ(kept[1].id, "b-second");
  }
}
