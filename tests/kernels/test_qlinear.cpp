// Every quantized-linear kernel in the registry (a kernel whose ISA this CPU lacks, or that QUASR_ISA caps, is
// skipped) against qlinear_ref, on weight formats x granularities x activation modes it accepts, and shapes that
// break its tiling: M, N, K around 1-10, 15-17, 31-33, 63-65, M = 1, deep K, every group size in the list.
// Integer-activation kernels must be bit-identical to the reference; weight-only kernels within
// kWeightOnlyTolerance. The pieces the reference itself is built from are checked against the formats module:
// the weight decomposition against dequantize_ref, the activation quantizer against formats::quantize.
#include <gtest/gtest.h>

#include <set>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../src/kernels/qlinear_internal.h"
#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/kernels/qlinear.h"

namespace quasr::kernels {
namespace {

using formats::QTensor;
using formats::QuantSpec;
using Mode = ActivationQuant::Mode;

std::vector<float> gaussian(int64_t n, uint64_t seed, double sigma = 1.0) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = static_cast<float>(sigma * rng.normal());
  // ~1% outliers, as real activations have.
  for (float& v : x)
    if (rng.uniform() < 0.01) v *= static_cast<float>(5 + 20 * rng.uniform());
  return x;
}

QTensor make_weight(const std::string& spec, int64_t N, int64_t K, uint64_t seed) {
  const std::vector<float> w = gaussian(N * K, seed, 0.05);
  const int64_t shape[2] = {N, K};
  return formats::quantize(w, shape, QuantSpec::parse(spec));
}

// Elements per block along K the spec implies (1 for per-tensor / per-channel: any K).
int64_t k_multiple(const QuantSpec& s) {
  const auto& f = formats::traits(s.format);
  if (f.fixed_block > 0) return f.fixed_block;
  if (s.granularity.kind == formats::GranularityKind::kPerGroup) return s.granularity.group;
  return 1;
}

const char* const kWeightSpecs[] = {
    "int8:pc", "int8:pt", "int8:g4", "int8:g16:s=fp16", "int8:g32", "int8:g128", "int6:g32", "int5:pc",
    "int4:pc", "int4:pt", "int4:g16", "int4:g32:s=bf16", "int4:g64", "int4:g128", "int3:g32", "int2:pc",
    "int4:g32:zp", "fp4_e2m1:g32", "fp4_e2m1:pc", "mxfp4", "nvfp4", "nf4:g64", "nf4:pc", "kmeans4:pc",
    "kmeans4", "kmeans2:pc", "fp8_e4m3:pc", "fp8_e5m2:g32", "mxfp8_e4m3", "mxfp6_e2m3", "fp6_e3m2:g16",
    "kmeans8:pc", "int4:g8", "int8:pc:zp", "int3:g64:zp", "int4:pt:zp",
};

std::vector<ActivationQuant> activation_modes() {
  std::vector<ActivationQuant> a(5);
  a[1].mode = Mode::kDynamicPerToken;
  a[2].mode = Mode::kDynamicPerTensor;
  a[3].mode = Mode::kStatic;
  a[3].static_scale = 0.02f;  // clips the outliers: exercises the clamp
  a[4].mode = Mode::kDynamicPerToken;
  a[4].format = formats::FormatId::kInt4;
  return a;
}

// Compares kernel output with the reference for one (weight, act, M). Returns false on the first failure.
bool check_against_ref(const KernelInfo& k, const QTensor& w, const ActivationQuant& act, int64_t M, uint64_t seed,
                       bool with_bias) {
  const int64_t N = w.shape[0], K = w.shape[1];
  const int64_t ldx = K + 3, ldy = N + 5;  // padded rows: kernels must honour the strides
  std::vector<float> x = gaussian(M * ldx, seed);
  if (M > 2) std::fill(x.begin() + ldx, x.begin() + 2 * ldx, 0.0f);  // an all-zero row: scale 0
  const std::vector<float> bias = gaussian(N, seed + 1);
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> y(M * ldy, -7.0f), y_ref(M * ldy, -7.0f);
  qlinear_ref(w, act, x.data(), M, ldx, b, y_ref.data(), ldy);
  const auto p = prepare_weight_for(k, w, act);
  qlinear(*p, x.data(), M, ldx, b, y.data(), ldy);
  const std::vector<float> wh = w.dequantize();
  const std::string where = std::string(k.name) + " " + w.spec.to_string() + " act " + act.to_string() + " M" +
                            std::to_string(M) + " N" + std::to_string(N) + " K" + std::to_string(K);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < ldy; ++n) {
      const float got = y[m * ldy + n], want = y_ref[m * ldy + n];
      if (n >= N) {
        if (got != -7.0f) {
          ADD_FAILURE() << where << ": wrote past N at (" << m << ", " << n << ")";
          return false;
        }
        continue;
      }
      if (k.integer_activations) {
        if (std::memcmp(&got, &want, 4) != 0) {
          ADD_FAILURE() << where << ": (" << m << ", " << n << ") " << got << " != reference " << want;
          return false;
        }
      } else {
        double mag = with_bias ? std::fabs(bias[n]) : 0.0;
        for (int64_t kk = 0; kk < K; ++kk) mag += std::fabs(double(x[m * ldx + kk]) * wh[n * K + kk]);
        if (!(std::fabs(double(got) - want) <= kWeightOnlyTolerance * mag)) {
          ADD_FAILURE() << where << ": (" << m << ", " << n << ") " << got << " vs reference " << want
                        << ", bound " << kWeightOnlyTolerance * mag;
          return false;
        }
      }
    }
  }
  return true;
}

// Shapes that break the tiles: N around the 16/64-channel blocks, M around the 4- and 6-row tiles, the 8-row GEMV
// limit and the 64-row tasks, K around 4/16-element steps (when the granularity allows any K).
const int64_t kNs[] = {1, 3, 10, 15, 17, 31, 33, 63, 65};
const int64_t kMs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 33, 65};
const int64_t kKsAny[] = {1, 2, 3, 5, 7, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65};

class QlinearKernels : public ::testing::TestWithParam<size_t> {};

TEST_P(QlinearKernels, MatchesReference) {
  const KernelInfo& k = kernel_registry()[GetParam()];
  if (std::string(k.name) == "reference_scalar") GTEST_SKIP() << "the reference itself";
  if (!kernel_runnable(k)) GTEST_SKIP() << k.name << " needs " << isa_name(k.isa);
  int combos = 0;
  uint64_t seed = 1;
  for (const char* spec_text : kWeightSpecs) {
    const QuantSpec spec = QuantSpec::parse(spec_text);
    const int64_t g = k_multiple(spec);
    const bool slow = formats::traits(spec.format).kind == formats::FormatKind::kCodebook;
    std::vector<int64_t> ks;
    if (g == 1) ks.assign(std::begin(kKsAny), std::end(kKsAny));
    else ks = {g, 2 * g, 3 * g};
    ks.push_back(g == 1 ? 1536 : (1536 / g) * g);  // deep K
    for (const ActivationQuant& act : activation_modes()) {
      const QTensor probe = make_weight(spec_text, 2, ks[0], 7);
      if (!kernel_rejects(k, probe, act).empty()) continue;
      for (size_t ki = 0; ki < ks.size(); ++ki) {
        const int64_t K = ks[ki];
        const bool deep = ki + 1 == ks.size();
        for (size_t ni = 0; ni < std::size(kNs); ++ni) {
          if ((slow || deep) && ni % 3 != 2) continue;  // fewer N for k-means (slow to fit) and deep K
          const int64_t N = kNs[ni];
          const QTensor w = make_weight(spec_text, N, K, ++seed);
          for (size_t mi = 0; mi < std::size(kMs); ++mi) {
            if ((ni + ki + mi) % 3 != 0 && kMs[mi] != 1) continue;  // a rotating third of M, and always M = 1
            if (deep && kMs[mi] > 9) continue;
            ++combos;
            if (!check_against_ref(k, w, act, kMs[mi], ++seed, mi % 2 == 0)) return;
          }
        }
      }
    }
  }
  EXPECT_GT(combos, 0) << k.name << " accepted none of the test weights";
  RecordProperty("combinations", combos);
}

INSTANTIATE_TEST_SUITE_P(Registry, QlinearKernels, ::testing::Range<size_t>(0, kernel_registry().size()),
                         [](const auto& info) { return std::string(kernel_registry()[info.param].name); });

// The decomposition every kernel decodes with reproduces dequantize_ref bit for bit, for every format.
TEST(QlinearDecomposition, EqualsDequantizeForEveryFormat) {
  for (const char* spec_text : kWeightSpecs) {
    const QuantSpec spec = QuantSpec::parse(spec_text);
    const int64_t K = 4 * std::max<int64_t>(k_multiple(spec), 16);
    const QTensor w = make_weight(spec_text, 9, K, 99);
    const detail::WeightDecomposition d = detail::decompose_weight(w);
    const std::vector<float> ref = w.dequantize();
    const int levels = 1 << d.bits;
    for (int64_t n = 0; n < 9; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const float lutv = d.lut[(d.lut_per_channel ? n * levels : 0) + d.codes[n * K + k]];
        const float zp = d.zero_points.empty() ? 0.0f : float(d.zero_points[n * d.groups_per_row + k / d.group]);
        const float v = (lutv - zp) * d.scales[n * d.groups_per_row + k / d.group];
        ASSERT_EQ(std::memcmp(&v, &ref[n * K + k], 4), 0) << spec_text << " (" << n << ", " << k << ") " << v
                                                           << " vs " << ref[n * K + k];
      }
  }
}

TEST(QlinearDecomposition, RejectsNon2D) {
  const std::vector<float> x(64, 1.0f);
  const int64_t shape3[3] = {2, 2, 16};
  EXPECT_THROW(detail::decompose_weight(formats::quantize(x, shape3, QuantSpec::parse("int8:pc"))), InvalidArgument);
}

// The activation quantizer is the formats module's int8 / int4 restricted-range quantizer, per token: same codes.
TEST(QlinearActivation, ScalarQuantizerEqualsFormatsQuantize) {
  for (const char* fmt : {"int8", "int4"}) {
    const int64_t M = 7, K = 45;
    std::vector<float> x = gaussian(M * K, 5);
    std::fill(x.begin(), x.begin() + K, 0.0f);
    const int64_t shape[2] = {M, K};
    const QTensor q = formats::quantize(x, shape, QuantSpec::parse(std::string(fmt) + ":pc:s=fp32"));
    const int bits = formats::traits(q.spec.format).bits;
    const std::vector<uint8_t> codes = formats::unpack_bits(q.payload, bits, M * K);
    ActivationQuant act;
    act.mode = Mode::kDynamicPerToken;
    act.format = q.spec.format;
    const int qmax = detail::activation_qmax(act);
    for (int64_t m = 0; m < M; ++m) {
      float amax = 0;
      for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[m * K + k]));
      const float s = detail::activation_scale(amax, qmax);
      float stored = 0;
      std::memcpy(&stored, q.scales.data() + 4 * m, 4);
      ASSERT_EQ(s, stored) << fmt << " row " << m;
      std::vector<uint8_t> u(K + 3);
      detail::quantize_row_u8_scalar(x.data() + m * K, K, K + 3, s, qmax, u.data());
      for (int64_t k = 0; k < K; ++k) {
        const int want = (codes[m * K + k] ^ (1 << (bits - 1))) - (1 << (bits - 1));  // sign-extend b bits
        ASSERT_EQ(int(u[k]) - 128, want) << fmt << " (" << m << ", " << k << ")";
      }
      EXPECT_EQ(u[K], 128);
    }
  }
}

TEST(QlinearActivation, Avx512QuantizerEqualsScalar) {
  if (best_isa() < Isa::Avx512Vnni) GTEST_SKIP() << "needs avx512vnni";
  const int64_t M = 5, K = 77, Kp = 80;
  std::vector<float> x = gaussian(M * K, 11);
  x[3] = 1e30f;  // huge under a static scale: must clamp to +qmax like the reference
  x[4] = -1e30f;
  for (float s : {0.0f, 0.013f, 1e-30f}) {
    for (int qmax : {127, 7}) {
      std::vector<float> scales(M, s);
      std::vector<uint8_t> fast(M * Kp), slow(M * Kp);
      detail::avx512vnni::quantize_rows_u8(x.data(), M, K, K, Kp, scales.data(), qmax, fast.data());
      for (int64_t m = 0; m < M; ++m)
        detail::quantize_row_u8_scalar(x.data() + m * K, K, Kp, s, qmax, slow.data() + m * Kp);
      EXPECT_EQ(fast, slow) << "scale " << s << " qmax " << qmax;
    }
  }
}

// The fast quantizer multiplies by 1 / s and divides only lanes near a rounding boundary: values placed exactly on
// and one ulp either side of every half-integer quotient, for many scales, must still get the reference's codes.
TEST(QlinearActivation, Avx512QuantizerEqualsScalarAtRoundingBoundaries) {
  if (best_isa() < Isa::Avx512Vnni) GTEST_SKIP() << "needs avx512vnni";
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> log_scale(-30.0f, 30.0f);
  const int64_t K = 3 * 2 * 255 + 5;  // a tail of 5
  std::vector<float> x(K);
  int64_t differing_products = 0;  // lanes where x * (1 / s) != x / s: the case the exact fix-up exists for
  for (int trial = 0; trial < 400; ++trial) {
    const float s = std::exp2(log_scale(rng));
    const int qmax = trial % 2 ? 127 : 7;
    int64_t i = 0;
    for (int h = -255; h < 255 && i + 3 <= K; ++h) {
      const float on = (static_cast<float>(h) + 0.5f) * s;
      x[i++] = on;
      x[i++] = std::nextafter(on, 1e38f);
      x[i++] = std::nextafter(on, -1e38f);
    }
    for (; i < K; ++i) x[i] = static_cast<float>(i) * s;
    for (float v : x) differing_products += v * (1.0f / s) != v / s;
    std::vector<uint8_t> fast(K + 11), slow(K + 11);
    detail::avx512vnni::quantize_rows_u8(x.data(), 1, K, K, K + 11, &s, qmax, fast.data());
    detail::quantize_row_u8_scalar(x.data(), K, K + 11, s, qmax, slow.data());
    ASSERT_EQ(fast, slow) << "scale " << s << " qmax " << qmax;
  }
  EXPECT_GT(differing_products, 1000);  // the test reaches the lanes that need the division
}

// Same output for any thread count (tasks partition the outputs; each is computed in a fixed order).
// Large M: the 64- and 128-row tasks and the AMX kernel's 32-row tiles (the shape list above stops at M = 65).
TEST(QlinearKernelsLargeM, IntegerKernelsMatchReferenceAcrossRowTasks) {
  ActivationQuant act;
  act.mode = Mode::kDynamicPerToken;
  int checked = 0;
  for (const KernelInfo& k : kernel_registry()) {
    if (!kernel_runnable(k) || !k.integer_activations || std::string(k.name) == "reference_scalar") continue;
    for (const char* spec : {"int8:pc", "int8:g64", "int4:g128", "int4:pc"}) {
      for (const int64_t K : {128, 1536}) {
        const QTensor w = make_weight(spec, 100, K, 11);
        if (!kernel_rejects(k, w, act).empty()) continue;
        for (const int64_t M : {127, 128, 129, 200}) {
          ++checked;
          if (!check_against_ref(k, w, act, M, 17 + M, M % 2 == 0)) return;
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(QlinearKernelsThreads, DeterministicAcrossThreadCounts) {
  const int saved = num_threads();
  for (const KernelInfo& k : kernel_registry()) {
    if (!kernel_runnable(k)) continue;
    ActivationQuant act;
    if (k.integer_activations) act.mode = Mode::kDynamicPerToken;
    const char* spec = std::string(k.name).find("w4") != std::string::npos ? "int4:g64" : "int8:g64";
    const QTensor w = make_weight(spec, 200, 256, 3);
    if (!kernel_rejects(k, w, act).empty()) continue;
    const auto p = prepare_weight_for(k, w, act);
    for (int64_t M : {1, 5, 70}) {
      const std::vector<float> x = gaussian(M * 256, 4);
      std::vector<float> y1(M * 200), y2(M * 200);
      set_num_threads(1);
      qlinear(*p, x.data(), M, 256, nullptr, y1.data(), 200);
      set_num_threads(2);
      qlinear(*p, x.data(), M, 256, nullptr, y2.data(), 200);
      EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << k.name << " M " << M;
    }
  }
  set_num_threads(saved);
}

TEST(QlinearDispatch, PicksFastestAcceptingKernelAndHonoursIsaCap) {
  ActivationQuant a8;
  a8.mode = Mode::kDynamicPerToken;
  const QTensor w8 = make_weight("int8:pc", 32, 64, 1), w4 = make_weight("nvfp4", 32, 64, 2);
  if (best_isa() >= Isa::Amx) {
    EXPECT_EQ(kernel_name(*prepare_weight(w8, a8)), "a8w8_gemm_amx");
    EXPECT_EQ(kernel_name(*prepare_weight(make_weight("int4:g128", 32, 128, 3), a8)), "a8w4_gemm_amx");
    // A group of 32 splits a tile row's 64 k: the VNNI kernel takes it.
    EXPECT_EQ(kernel_name(*prepare_weight(make_weight("int4:g32", 32, 64, 3), a8)), "a8w4_gemm_avx512vnni");
  }
  if (best_isa() >= Isa::Avx512Vnni) {
    EXPECT_EQ(kernel_name(*prepare_weight(w8, a8, Isa::Avx512Vnni)), "a8w8_gemm_avx512vnni");
    EXPECT_EQ(kernel_name(*prepare_weight(make_weight("int4:g32", 32, 64, 3), a8, Isa::Avx512Vnni)),
              "a8w4_gemm_avx512vnni");
  }
  if (best_isa() >= Isa::Avx512) {
    EXPECT_EQ(kernel_name(*prepare_weight(w4, {})), "wo4_blocked_f32_avx512");
    // A codebook per channel cannot share one table across a vector's 16 channels: the row kernel takes it.
    EXPECT_EQ(kernel_name(*prepare_weight(make_weight("kmeans4:pc", 32, 64, 4), {})), "wo4_lut_f32_avx512");
  }
  if (best_isa() >= Isa::Avx2) {
    EXPECT_EQ(kernel_name(*prepare_weight(w8, a8, Isa::Avx2)), "a8_int16_avx2");
    EXPECT_EQ(kernel_name(*prepare_weight(w4, {}, Isa::Avx2)), "wo4_lut_f32_avx2");
    EXPECT_EQ(kernel_name(*prepare_weight(make_weight("int4:g32", 32, 64, 3), a8, Isa::Avx2)), "a8w4_maddubs_avx2");
  }
  EXPECT_EQ(kernel_name(*prepare_weight(w8, a8, Isa::Scalar)), "reference_scalar");
  EXPECT_EQ(kernel_name(*prepare_weight(w4, {}, Isa::Scalar)), "wo_dequant_sgemm");
  // A combination nothing computes: the message names the format and what is supported.
  try {
    prepare_weight(w4, a8);
    FAIL() << "nvfp4 weights with int8 activations should be rejected";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("nvfp4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("supported"), std::string::npos) << e.what();
  }
  // Zero-point weights: the symmetric VNNI and table kernels refuse them; the int16 kernel (AVX2), the reference
  // and the dequantizing weight-only kernel compute them.
  const QTensor zp = make_weight("int4:g32:zp", 8, 64, 4);
  EXPECT_EQ(kernel_name(*prepare_weight(zp, a8)), best_isa() >= Isa::Avx2 ? "a8_int16_avx2" : "reference_scalar");
  EXPECT_EQ(kernel_name(*prepare_weight(zp, {})), "wo_dequant_sgemm");
  const std::set<std::string> zero_point_kernels = {"reference_scalar", "wo_dequant_sgemm", "a8_int16_avx2"};
  for (const KernelInfo& k : kernel_registry()) {
    if (zero_point_kernels.count(k.name)) continue;
    EXPECT_NE(kernel_rejects(k, zp, k.integer_activations ? a8 : ActivationQuant{}).find("zero points"),
              std::string::npos) << k.name;
  }
}

TEST(QlinearDispatch, BadArguments) {
  const QTensor w = make_weight("int8:pc", 8, 16, 1);
  const auto p = prepare_weight(w, {});
  std::vector<float> x(64), y(64);
  EXPECT_THROW(qlinear(*p, x.data(), 2, 15, nullptr, y.data(), 8), InvalidArgument);  // ldx < K
  EXPECT_THROW(qlinear(*p, x.data(), 2, 16, nullptr, y.data(), 7), InvalidArgument);  // ldy < N
  EXPECT_THROW(qlinear(*p, nullptr, 2, 16, nullptr, y.data(), 8), InvalidArgument);
  ActivationQuant bad;
  bad.mode = Mode::kStatic;
  bad.static_scale = -1;
  EXPECT_THROW(prepare_weight(w, bad), InvalidArgument);
  bad.static_scale = 1;
  bad.format = formats::FormatId::kFp8E4M3;
  EXPECT_THROW(qlinear_ref(w, bad, x.data(), 1, 16, nullptr, y.data(), 8), InvalidArgument);
}

}  // namespace
}  // namespace quasr::kernels
