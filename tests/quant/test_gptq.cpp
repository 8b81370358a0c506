// GPTQ (quant/ptq.h): exact round-to-nearest under an identity Hessian, agreement with a sequential OBS reference
// written from the paper's equations, lower layer-output error than RTN on correlated inputs for every format
// family, act-order / block-size variants, determinism, bad input, and a real tiny.en weight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/block_codec.h"
#include "quasr/io/ct2_model_bin.h"
#include "quasr/quant/ptq.h"
#include "test_gptq_util.h"

namespace quasr::quant {
namespace {

using formats::QuantSpec;
using testing::correlated_inputs;
using testing::expect_invalid;
using testing::gram;
using testing::layer_error;
using testing::random_weight;
using testing::same_bytes;

formats::QTensor rtn(const std::vector<float>& w, int64_t n, int64_t k, const QuantSpec& spec) {
  const int64_t shape[2] = {n, k};
  return formats::quantize(w, shape, spec);
}

std::vector<double> identity(int64_t k, double v = 1.0) {
  std::vector<double> h(static_cast<size_t>(k * k), 0.0);
  for (int64_t i = 0; i < k; ++i) h[i * k + i] = v;
  return h;
}

const char* const kEverySpec[] = {
    "int4:g32",       "int4:g128",    "int3:g128",     "int2:g64",         "int4:pc",     "int8:pc",
    "int4:pt",        "int8:pc1",     "int4:g64:zp",   "int4:g128:full:away", "int4:g128:mse", "int4:g32:p99.9",
    "int4:g128:s=bf16", "fp8_e4m3:pc", "fp8_e5m2:pc", "fp6_e3m2:g32",      "fp4_e2m1:g32", "mxfp4",
    "mxfp6_e2m3",     "mxfp8_e4m3",   "nvfp4",         "nf4",              "nf4:pc",      "fp16"};

TEST(Gptq, IdentityHessianGivesRoundToNearest) {
  const int64_t n = 24, k = 256;
  const auto w = random_weight(n, k, 11);
  for (const char* text : kEverySpec) {
    const QuantSpec spec = QuantSpec::parse(text);
    const formats::QTensor want = rtn(w, n, k, spec);
    for (bool act_order : {false, true})
      for (int block : {128, 32, 7}) {
        SCOPED_TRACE(std::string(text) + " act_order=" + std::to_string(act_order) + " block=" + std::to_string(block));
        const formats::QTensor got = gptq_quantize(w, n, k, spec, identity(k, 3.5), {0.01f, block, act_order});
        EXPECT_TRUE(same_bytes(got, want));
      }
  }
}

// Sequential OBS / GPTQ straight from the paper's equations, in double, no Cholesky, no lazy blocks: after column
// j is rounded, the remaining weights move by -(w_j - q_j) / Hinv_jj * Hinv_j,: and j is eliminated from Hinv by
// one Gaussian-elimination step (eq. 3 and 4 of Frantar et al.). Scales: fixed from the current weights when the
// sweep reaches the block's first column (columns in natural order).
std::vector<float> sequential_obs(const std::vector<float>& w, int64_t n, int64_t k, const QuantSpec& spec,
                                  const std::vector<double>& h, double damp) {
  const int64_t k2 = k;
  std::vector<double> a(h);
  double mean = 0;
  for (int64_t i = 0; i < k; ++i) mean += a[i * k + i] / k;
  for (int64_t i = 0; i < k; ++i) a[i * k + i] += damp * mean;
  // Gauss-Jordan inverse.
  std::vector<double> inv = identity(k);
  for (int64_t c = 0; c < k; ++c) {
    const double p = a[c * k + c];
    for (int64_t j = 0; j < k; ++j) a[c * k + j] /= p, inv[c * k + j] /= p;
    for (int64_t r = 0; r < k; ++r)
      if (r != c) {
        const double f = a[r * k + c];
        for (int64_t j = 0; j < k; ++j) a[r * k + j] -= f * a[c * k + j], inv[r * k + j] -= f * inv[c * k + j];
      }
  }
  std::vector<double> wd(w.begin(), w.end());
  std::vector<float> out(w.size());
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  const formats::BlockCodec codec(spec, amax);
  const int64_t group = spec.granularity.kind == formats::GranularityKind::kPerGroup ? spec.granularity.group : k2;
  std::vector<formats::BlockScale> row_scale(static_cast<size_t>(n));
  for (int64_t j = 0; j < k; ++j) {
    if (j % group == 0)
      for (int64_t r = 0; r < n; ++r) {
        std::vector<float> v(static_cast<size_t>(group));
        for (int64_t c = 0; c < group; ++c) v[c] = static_cast<float>(wd[r * k + j + c]);
        row_scale[r] = codec.choose_scale(v, 0);
      }
    const double d = inv[j * k + j];
    for (int64_t r = 0; r < n; ++r) {
      const float q = codec.decode(codec.encode(static_cast<float>(wd[r * k + j]), row_scale[r]), row_scale[r]);
      out[r * k + j] = q;
      const double e = (wd[r * k + j] - q) / d;
      for (int64_t c = j + 1; c < k; ++c) wd[r * k + c] -= e * inv[j * k + c];
    }
    // Eliminate j from the inverse Hessian.
    for (int64_t r = j + 1; r < k; ++r)
      for (int64_t c = j + 1; c < k; ++c) inv[r * k + c] -= inv[r * k + j] * inv[j * k + c] / d;
  }
  return out;
}

TEST(Gptq, MatchesSequentialObsReference) {
  const int64_t n = 12, k = 64, m = 600;
  const auto x = correlated_inputs(m, k, 5);
  const auto h = gram(x, m, k);
  const auto w = random_weight(n, k, 6);
  for (const char* text : {"int4:pc", "int4:g16", "int3:g32", "nvfp4", "mxfp4"}) {
    SCOPED_TRACE(text);
    const QuantSpec spec = QuantSpec::parse(text);
    const std::vector<float> ref = sequential_obs(w, n, k, spec, h, 0.01);
    for (int block : {128, 16, 5}) {
      const std::vector<float> got = gptq_quantize(w, n, k, spec, h, {0.01f, block, false}).dequantize();
      int64_t same = 0;
      for (size_t i = 0; i < got.size(); ++i) same += got[i] == ref[i];
      // FP32 sweep vs double reference: a value within rounding of a decision boundary may round the other way
      // (and move what follows in its row), so allow a few; the layer errors must agree closely.
      EXPECT_GE(same, static_cast<int64_t>(0.97 * got.size())) << "block " << block;
      const double e_got = layer_error(h, w, got, n, k), e_ref = layer_error(h, w, ref, n, k);
      EXPECT_NEAR(e_got / e_ref, 1.0, 0.02) << "block " << block;
    }
  }
}

struct Case {
  const char* spec;
  bool strict;
};

TEST(Gptq, LowerLayerErrorThanRoundToNearest) {
  const int64_t n = 64, k = 256, m = 2048;
  const auto x = correlated_inputs(m, k, 21);
  const auto h = gram(x, m, k);
  const auto w = random_weight(n, k, 22);
  for (const Case c : {Case{"int4:g32", true}, {"int4:g128", true}, {"int3:g128", true}, {"int4:pc", true},
                       {"mxfp4", true}, {"nvfp4", true}, {"nf4", true}, {"int4:g128:zp", true}, {"int8:pc", false},
                       {"fp8_e4m3:pc", false}, {"int4:pt", true}, {"int4:pc1", true}}) {
    SCOPED_TRACE(c.spec);
    const QuantSpec spec = QuantSpec::parse(c.spec);
    const double e_rtn = layer_error(h, w, rtn(w, n, k, spec).dequantize(), n, k);
    const double e_gptq = layer_error(h, w, gptq_quantize(w, n, k, spec, h).dequantize(), n, k);
    std::printf("[ratio] gptq/rtn %-14s %.4f\n", c.spec, e_gptq / e_rtn);
    if (c.strict)
      EXPECT_LT(e_gptq, e_rtn);
    else
      EXPECT_LE(e_gptq, e_rtn);
  }
}

TEST(Gptq, ActOrderAndBlockSizesBeatRoundToNearest) {
  const int64_t n = 48, k = 256, m = 2048;
  const auto x = correlated_inputs(m, k, 31);
  const auto h = gram(x, m, k);
  const auto w = random_weight(n, k, 32);
  for (const char* text : {"int4:g128", "int3:g128", "int4:g32", "int4:pc", "nvfp4"}) {
    const QuantSpec spec = QuantSpec::parse(text);
    const double e_rtn = layer_error(h, w, rtn(w, n, k, spec).dequantize(), n, k);
    for (const GptqOptions o : {GptqOptions{0.01f, 128, true}, {0.01f, 32, false}, {0.01f, 17, true},
                                {0.01f, 1, false}, {0.01f, 1000, false}, {0.1f, 64, true}}) {
      SCOPED_TRACE(std::string(text) + " block=" + std::to_string(o.block) + " act_order=" +
                   std::to_string(o.act_order) + " damp=" + std::to_string(o.damp));
      const double e = layer_error(h, w, gptq_quantize(w, n, k, spec, h, o).dequantize(), n, k);
      EXPECT_LT(e, e_rtn);
      if (o.block == 128 && o.act_order) std::printf("[ratio] gptq act-order/rtn %-10s %.4f\n", text, e / e_rtn);
    }
  }
}

TEST(Gptq, BlockSizeDoesNotChangeTheMathematics) {
  // Lazy batching only regroups the same updates: every block size gives (nearly) the same result.
  const int64_t n = 16, k = 192, m = 800;
  const auto x = correlated_inputs(m, k, 41);
  const auto h = gram(x, m, k);
  const auto w = random_weight(n, k, 42);
  const QuantSpec spec = QuantSpec::parse("int4:g64");
  const auto ref = gptq_quantize(w, n, k, spec, h, {0.01f, 192, false}).dequantize();
  for (int block : {1, 13, 64, 100}) {
    const auto got = gptq_quantize(w, n, k, spec, h, {0.01f, block, false}).dequantize();
    int64_t same = 0;
    for (size_t i = 0; i < got.size(); ++i) same += got[i] == ref[i];
    EXPECT_GE(same, static_cast<int64_t>(0.98 * got.size())) << "block " << block;
  }
}

TEST(Gptq, DeterministicAcrossRunsAndThreads) {
  const int64_t n = 40, k = 320, m = 1000;
  const auto x = correlated_inputs(m, k, 51);
  const auto h = gram(x, m, k);
  const auto w = random_weight(n, k, 52);
  const int threads = num_threads();
  for (const char* text : {"int4:g32", "int4:pc1", "nvfp4"}) {
    SCOPED_TRACE(text);
    const QuantSpec spec = QuantSpec::parse(text);
    const auto a = gptq_quantize(w, n, k, spec, h, {0.01f, 64, true});
    const auto b = gptq_quantize(w, n, k, spec, h, {0.01f, 64, true});
    set_num_threads(1);
    const auto c = gptq_quantize(w, n, k, spec, h, {0.01f, 64, true});
    set_num_threads(threads);
    EXPECT_TRUE(same_bytes(a, b));
    EXPECT_TRUE(same_bytes(a, c));
  }
}

TEST(Gptq, DeadInputsAreZeroedAndTheRestStillImproves) {
  const int64_t n = 32, k = 128, m = 1200;
  auto x = correlated_inputs(m, k, 61);
  for (int64_t r = 0; r < m; ++r) x[r * k + 5] = x[r * k + 77] = 0.0f;  // two inputs that never fire
  const auto h = gram(x, m, k);
  const auto w = random_weight(n, k, 62);
  const QuantSpec spec = QuantSpec::parse("int4:g32");
  const auto got = gptq_quantize(w, n, k, spec, h).dequantize();
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(got[r * k + 5], 0.0f);
    EXPECT_EQ(got[r * k + 77], 0.0f);
  }
  EXPECT_LT(layer_error(h, w, got, n, k), layer_error(h, w, rtn(w, n, k, spec).dequantize(), n, k));
}

TEST(Gptq, RejectsBadInput) {
  const int64_t n = 4, k = 64;
  const auto w = random_weight(n, k, 71);
  const QuantSpec spec = QuantSpec::parse("int4:g32");
  const auto h = identity(k);
  expect_invalid([&] { gptq_quantize(w, n, k, spec, identity(k - 1)); }, "k * k");
  auto bad_w = w;
  bad_w[70] = std::nanf("");
  expect_invalid([&] { gptq_quantize(bad_w, n, k, spec, h); }, "NaN");
  expect_invalid([&] { gptq_quantize(w, n, k - 1, spec, identity(k - 1)); }, "expected n * k");
  expect_invalid([&] { gptq_quantize(w, n, k, QuantSpec::parse("int4:g48"), h); }, "does not divide");
  expect_invalid([&] { gptq_quantize(w, n, k, QuantSpec::parse("kmeans4"), h); }, "codebook");
  expect_invalid([&] { gptq_quantize(w, n, k, spec, h, {-0.1f, 128, false}); }, "damp");
  expect_invalid([&] { gptq_quantize(w, n, k, spec, h, {0.01f, 0, false}); }, "block");
  auto nan_h = h;
  nan_h[3 * k + 4] = nan_h[4 * k + 3] = INFINITY;
  expect_invalid([&] { gptq_quantize(w, n, k, spec, nan_h); }, "not finite");
  auto neg = h;
  neg[9 * k + 9] = -1.0;
  expect_invalid([&] { gptq_quantize(w, n, k, spec, neg); }, "negative");
  auto asym = h;
  asym[2 * k + 10] = 0.5;
  expect_invalid([&] { gptq_quantize(w, n, k, spec, asym); }, "not symmetric");
  // Indefinite: [[1, 2], [2, 1]] blocks have eigenvalue -1; 1% of the mean diagonal cannot lift that.
  auto indefinite = h;
  for (int64_t i = 0; i + 1 < k; i += 2) indefinite[i * k + i + 1] = indefinite[(i + 1) * k + i] = 2.0;
  expect_invalid([&] { gptq_quantize(w, n, k, spec, indefinite); }, "not positive definite");
}

TEST(Gptq, RealTinyEnEncoderFc1) {
  const std::string path = std::string(QUASR_SOURCE_DIR) + "/models/tiny.en/model.bin";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  const io::Ct2ModelBin model = io::read_ct2_model_bin(path);
  const io::Tensor* t = model.find("encoder/layer_0/ffn/linear_0/weight");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->shape.size(), 2u);
  const int64_t n = t->shape[0], k = t->shape[1], m = 3000;
  ASSERT_EQ(k, 384);
  // Synthetic activations with real-looking structure (correlated channels, a few outliers): the lead measures
  // WER with real calibration once the pipeline lands.
  const auto x = correlated_inputs(m, k, 81, 6, 20.0f);
  const auto h = gram(x, m, k);
  for (const char* text : {"int4:g128", "int3:g128", "nvfp4"}) {
    SCOPED_TRACE(text);
    const QuantSpec spec = QuantSpec::parse(text);
    const double e_rtn = layer_error(h, t->values, rtn(t->values, n, k, spec).dequantize(), n, k);
    const double e_gptq = layer_error(h, t->values, gptq_quantize(t->values, n, k, spec, h).dequantize(), n, k);
    const double e_act =
        layer_error(h, t->values, gptq_quantize(t->values, n, k, spec, h, {0.01f, 128, true}).dequantize(), n, k);
    std::printf("[ratio] tiny.en enc0 fc1 %-10s gptq/rtn %.4f  act-order %.4f\n", text, e_gptq / e_rtn, e_act / e_rtn);
    EXPECT_LT(e_gptq, e_rtn);
    EXPECT_LT(e_act, e_rtn);
  }
}

}  // namespace
}  // namespace quasr::quant
