// Every compiled sgemm path (portable, avx2, avx512; a path this CPU lacks is skipped) against sgemm_ref on shapes
// that break the tiling: M, N, K around the micro-tile (14x32, 6x16, 6x8), the task blocks and the K blocks, the
// small-M path (M <= 8), deep K, both transposes, alpha/beta variants, leading dimensions larger than the rows.
//
// Two kinds of data:
//   * small integers: every product and partial sum is an integer below 2^24, so FP32 arithmetic is exact in any
//     order and every path must equal the reference bit for bit (any indexing or packing slip shows);
//   * real-valued data: held to the one tolerance below.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"
#include "quasr/formats/minifloat.h"
#include "quasr/kernels/gemm.h"

namespace quasr::kernels {
namespace {

// The tolerance, in one place: any FP32 summation of K products, in any order and with or without FMA, is within
// gamma = (K + 2) * 2^-24 (one rounding per add, plus alpha and beta) of the exact value, relative to
// |alpha| * sum_k |a_ik b_kj| + |beta c_ij| (Higham, Accuracy and Stability, 3.1). The reference accumulates in
// double, whose own error is far below this.
double tolerance(int64_t K, double magnitude) { return static_cast<double>(K + 2) * 0x1p-24 * magnitude + 1e-30; }

const float kSentinel = -12345.0f;  // written into the padding of C: no path may touch it

struct Problem {
  bool ta = false, tb = false;
  int64_t M = 1, N = 1, K = 1;
  float alpha = 1, beta = 0;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // leading dimension minus row length
  bool integers = true;

  int64_t lda() const { return (ta ? M : K) + pad_a; }
  int64_t ldb() const { return (tb ? K : N) + pad_b; }
  int64_t ldc() const { return N + pad_c; }
  std::string str() const {
    return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) + " ta=" +
           std::to_string(ta) + " tb=" + std::to_string(tb) + " alpha=" + std::to_string(alpha) + " beta=" +
           std::to_string(beta) + " pads=" + std::to_string(pad_a) + "," + std::to_string(pad_b) + "," +
           std::to_string(pad_c) + (integers ? " int" : " real");
  }
};

struct Data {
  std::vector<float> A, B, C;
};

Data make_data(const Problem& p, uint64_t seed) {
  Rng rng(seed);
  auto fill = [&](std::vector<float>& v, size_t n) {
    v.resize(n);
    for (float& x : v)
      x = p.integers ? static_cast<float>(static_cast<int>(rng.below(9)) - 4) : static_cast<float>(rng.normal());
  };
  Data d;
  fill(d.A, static_cast<size_t>((p.ta ? p.K : p.M) * p.lda()));
  fill(d.B, static_cast<size_t>((p.tb ? p.N : p.K) * p.ldb()));
  fill(d.C, static_cast<size_t>(p.M * p.ldc()));
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = p.N; j < p.ldc(); ++j) d.C[i * p.ldc() + j] = kSentinel;
  return d;
}

// Runs one path and compares with the reference; returns false (with a failure recorded) on mismatch.
bool check(Isa isa, const Problem& p, uint64_t seed) {
  const Data d = make_data(p, seed);
  std::vector<float> want = d.C, got = d.C;
  sgemm_ref(p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda(), d.B.data(), p.ldb(), p.beta, want.data(),
            p.ldc());
  sgemm_with_isa(isa, p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda(), d.B.data(), p.ldb(), p.beta,
                 got.data(), p.ldc());
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.ldc(); ++j) {
      const int64_t at = i * p.ldc() + j;
      if (j >= p.N) {
        if (got[at] != kSentinel) {
          ADD_FAILURE() << isa_name(isa) << " wrote C padding at (" << i << "," << j << ") " << p.str();
          return false;
        }
        continue;
      }
      double mag = std::fabs(p.beta * static_cast<double>(d.C[at]));
      for (int64_t k = 0; k < p.K && !p.integers; ++k) {
        const double a = p.ta ? d.A[k * p.lda() + i] : d.A[i * p.lda() + k];
        const double b = p.tb ? d.B[j * p.ldb() + k] : d.B[k * p.ldb() + j];
        mag += std::fabs(p.alpha * a * b);
      }
      const double err = std::fabs(static_cast<double>(got[at]) - want[at]);
      const double tol = p.integers ? 0.0 : tolerance(p.K, mag);
      if (!(err <= tol)) {
        ADD_FAILURE() << isa_name(isa) << " C(" << i << "," << j << ") = " << got[at] << ", reference " << want[at]
                      << " (tolerance " << tol << ") " << p.str();
        return false;
      }
    }
  return true;
}

class Sgemm : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
  }
};

const int64_t kEdgeSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 31, 32, 33, 63, 64, 65};

TEST_P(Sgemm, EdgeShapesExactOnIntegers) {
  uint64_t seed = 1;
  for (int t = 0; t < 4; ++t)
    for (int64_t M : kEdgeSizes)
      for (int64_t N : kEdgeSizes) {
        Problem p;
        p.ta = t & 1;
        p.tb = t & 2;
        p.M = M;
        p.N = N;
        // K cycles through tile-breaking depths, so every (M, N) pair meets several of them over the four cases.
        const int64_t depths[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 33, 64, 65};
        p.K = depths[(M + 3 * N + 5 * t) % 12];
        p.pad_a = (M + t) % 3;
        p.pad_b = (N + t) % 4;
        p.pad_c = (M * N) % 3;
        ASSERT_TRUE(check(GetParam(), p, seed++));
      }
}

TEST_P(Sgemm, AllDepthsForFewShapes) {
  uint64_t seed = 100;
  for (int t = 0; t < 4; ++t)
    for (int64_t M : {1, 5, 8, 9, 15, 29})
      for (int64_t N : {1, 17, 33, 65})
        for (int64_t K : kEdgeSizes) {
          Problem p{.ta = (t & 1) != 0, .tb = (t & 2) != 0, .M = M, .N = N, .K = K};
          ASSERT_TRUE(check(GetParam(), p, seed++));
        }
}

TEST_P(Sgemm, BlockBoundariesAndDeepK) {
  // Task blocks (avx512: 84 rows x 512 columns, avx2: 72 x 512, portable: 96 x 256), several K blocks (kc = 512
  // for avx512/avx2, 256 portable; K = 513, 777, 1100 split unevenly), and K = 3000 for both the small-M path
  // and the packed path.
  const Problem shapes[] = {
      {.M = 85, .N = 513, .K = 300},  {.M = 170, .N = 257, .K = 513},         {.M = 97, .N = 70, .K = 777}, {.M = 29, .N = 47, .K = 1100},
      {.M = 1, .N = 100, .K = 3000},  {.M = 5, .N = 77, .K = 3000},           {.M = 17, .N = 33, .K = 3000},
      {.M = 8, .N = 1536, .K = 17},   {.M = 300, .N = 64, .K = 64, .pad_a = 448},  // attention head in a wide row
  };
  uint64_t seed = 1000;
  for (int t = 0; t < 4; ++t)
    for (Problem p : shapes) {
      p.ta = t & 1;
      p.tb = t & 2;
      ASSERT_TRUE(check(GetParam(), p, seed++));
    }
}

TEST_P(Sgemm, AlphaBetaVariants) {
  uint64_t seed = 2000;
  const float alphas[] = {1.0f, -1.0f, 0.5f, 2.0f, 0.0f};
  const float betas[] = {0.0f, 1.0f, -0.5f, 2.0f};
  for (float alpha : alphas)
    for (float beta : betas)
      for (int64_t M : {3, 40})
        for (int t = 0; t < 4; ++t) {
          Problem p{.ta = (t & 1) != 0, .tb = (t & 2) != 0, .M = M, .N = 37, .K = 290, .alpha = alpha,
                    .beta = beta, .pad_c = 2};
          ASSERT_TRUE(check(GetParam(), p, seed++));
        }
}

TEST_P(Sgemm, RealValuedWithinTolerance) {
  uint64_t seed = 3000;
  const Problem shapes[] = {{.M = 1, .N = 384, .K = 1536},  {.M = 5, .N = 200, .K = 384},
                            {.M = 33, .N = 65, .K = 700},   {.M = 150, .N = 150, .K = 64},
                            {.M = 64, .N = 31, .K = 1500}};
  for (int t = 0; t < 4; ++t)
    for (Problem p : shapes) {
      p.ta = t & 1;
      p.tb = t & 2;
      p.integers = false;
      p.alpha = 0.7f;
      p.beta = t == 3 ? 0.3f : 0.0f;
      ASSERT_TRUE(check(GetParam(), p, seed++));
    }
}

TEST_P(Sgemm, BetaZeroIgnoresNanInC) {
  for (int64_t M : {2, 20}) {
    const int64_t N = 19, K = 23;
    std::vector<float> A(M * K, 1.0f), B(K * N, 2.0f), C(M * N, std::numeric_limits<float>::quiet_NaN());
    sgemm_with_isa(GetParam(), false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
    for (float c : C) ASSERT_EQ(c, 2.0f * K);
  }
}

TEST_P(Sgemm, SameBitsForAnyThreadCount) {
  const int saved = num_threads();
  const Problem shapes[] = {{.M = 3, .N = 700, .K = 500},
                            {.tb = true, .M = 5, .N = 1000, .K = 384},
                            {.M = 200, .N = 300, .K = 600},
                            {.ta = true, .tb = true, .M = 150, .N = 1100, .K = 70}};
  for (Problem p : shapes) {
    p.integers = false;
    const Data d = make_data(p, 77);
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      std::vector<float> c = d.C;
      sgemm_with_isa(GetParam(), p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), p.lda(), d.B.data(), p.ldb(),
                     p.beta, c.data(), p.ldc());
      results.push_back(std::move(c));
    }
    for (size_t r = 1; r < results.size(); ++r)
      ASSERT_EQ(0, std::memcmp(results[0].data(), results[r].data(), results[0].size() * sizeof(float)))
          << p.str() << " differs between 1 and " << r + 1 << " threads";
  }
  set_num_threads(saved);
}

TEST_P(Sgemm, CalledFromInsideParallelFor) {
  // The runtime calls sgemm per attention head inside parallel_for: the nested calls run inline on the pool
  // threads, each with its own scratch buffers, and must give the same bits as sequential calls.
  const int saved = num_threads();
  set_num_threads(2);
  const int64_t heads = 6;
  const Problem shapes[] = {{.tb = true, .M = 40, .N = 50, .K = 64}, {.M = 3, .N = 70, .K = 90}};
  for (Problem p : shapes) {
    p.integers = false;
    std::vector<Data> data;
    for (int64_t h = 0; h < heads; ++h) data.push_back(make_data(p, 500 + static_cast<uint64_t>(h)));
    std::vector<std::vector<float>> nested(heads), sequential(heads);
    auto run_head = [&](int64_t h, std::vector<float>& c) {
      c = data[h].C;
      sgemm_with_isa(GetParam(), p.ta, p.tb, p.M, p.N, p.K, p.alpha, data[h].A.data(), p.lda(), data[h].B.data(),
                     p.ldb(), p.beta, c.data(), p.ldc());
    };
    parallel_for(0, heads, 1, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) run_head(h, nested[h]);
    });
    for (int64_t h = 0; h < heads; ++h) run_head(h, sequential[h]);
    for (int64_t h = 0; h < heads; ++h) ASSERT_EQ(nested[h], sequential[h]) << p.str() << " head " << h;
  }
  set_num_threads(saved);
}

// sgemm_f16w on FP16 weights must give exactly sgemm's bits on the same weights widened to FP32: every small M
// (the FP16 dot-product kernels), M > 8 (widened blocks of rows through the FP32 path), a vocabulary-sized N that
// takes several widened blocks, padded leading dimensions, and FP16 subnormals and signed zeros among the weights.
TEST_P(Sgemm, Fp16WeightsGiveTheFp32ProductBitForBit) {
  struct Shape {
    int64_t M, N, K;
  };
  std::vector<Shape> shapes;
  for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 33, 65})
    for (int64_t N : {1, 7, 17, 65})
      for (int64_t K : {1, 7, 8, 9, 17, 64, 65}) shapes.push_back({M, N, K});
  for (int64_t M : {1, 5, 9, 20}) shapes.push_back({M, 2 * 2688 + 77, 384});  // 3 widened blocks at K = 384
  Rng rng(2026);
  for (const Shape& s : shapes) {
    const int64_t lda = s.K + 2, ldw = s.K + 3, ldc = s.N + 1;
    std::vector<float> A(static_cast<size_t>(s.M * lda)), wide(static_cast<size_t>(s.N * ldw));
    std::vector<uint16_t> w16(wide.size());
    for (float& x : A) x = static_cast<float>(rng.normal());
    for (size_t i = 0; i < w16.size(); ++i) {
      const uint64_t kind = rng.below(50);
      const float x = kind == 0 ? 3e-6f * static_cast<float>(rng.normal())  // FP16 subnormal range
                      : kind == 1 ? -0.0f
                                  : 0.1f * static_cast<float>(rng.normal());
      w16[i] = formats::fp32_to_fp16(x);
      wide[i] = formats::fp16_to_fp32(w16[i]);
    }
    std::vector<float> want(static_cast<size_t>(s.M * ldc), kSentinel), got = want;
    sgemm_with_isa(GetParam(), false, true, s.M, s.N, s.K, 1.0f, A.data(), lda, wide.data(), ldw, 0.0f, want.data(),
                   ldc);
    sgemm_f16w_with_isa(GetParam(), s.M, s.N, s.K, A.data(), lda, w16.data(), ldw, got.data(), ldc);
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
        << "M=" << s.M << " N=" << s.N << " K=" << s.K;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Sgemm, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                         [](const ::testing::TestParamInfo<Isa>& info) { return std::string(isa_name(info.param)); });

TEST(SgemmDispatch, DefaultPathIsASupportedIsaAndMatches) {
  EXPECT_TRUE(isa_supported(sgemm_isa()));
  EXPECT_LE(static_cast<int>(sgemm_isa()), static_cast<int>(Isa::Avx512));
  const int64_t M = 20, N = 30, K = 40;
  std::vector<float> A(M * K), B(K * N), C1(M * N), C2(M * N);
  Rng rng(5);
  for (float& x : A) x = static_cast<float>(rng.normal());
  for (float& x : B) x = static_cast<float>(rng.normal());
  sgemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
  sgemm_with_isa(sgemm_isa(), false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C2.data(), N);
  EXPECT_EQ(C1, C2);
}

TEST(SgemmDispatch, BadArgumentsThrow) {
  std::vector<float> A(100), B(100), C(100);
  EXPECT_THROW(sgemm(false, false, -1, 2, 2, 1, A.data(), 2, B.data(), 2, 0, C.data(), 2), InvalidArgument);
  EXPECT_THROW(sgemm(false, false, 2, 2, 3, 1, A.data(), 2, B.data(), 2, 0, C.data(), 2), InvalidArgument);  // lda
  EXPECT_THROW(sgemm(false, true, 2, 2, 3, 1, A.data(), 3, B.data(), 2, 0, C.data(), 2), InvalidArgument);   // ldb
  EXPECT_THROW(sgemm(false, false, 2, 3, 2, 1, A.data(), 2, B.data(), 3, 0, C.data(), 2), InvalidArgument);  // ldc
  EXPECT_THROW(sgemm(false, false, 2, 2, 2, 1, nullptr, 2, B.data(), 2, 0, C.data(), 2), InvalidArgument);
  if (!isa_supported(Isa::Avx512)) {
    EXPECT_THROW(sgemm_with_isa(Isa::Avx512, false, false, 1, 1, 1, 1, A.data(), 1, B.data(), 1, 0, C.data(), 1),
                 InvalidArgument);
  }
  std::vector<uint16_t> W(100);
  EXPECT_THROW(sgemm_f16w(2, 2, 3, A.data(), 2, W.data(), 3, C.data(), 2), InvalidArgument);  // lda
  EXPECT_THROW(sgemm_f16w(2, 2, 3, A.data(), 3, W.data(), 2, C.data(), 2), InvalidArgument);  // ldw
  EXPECT_THROW(sgemm_f16w(2, 2, 3, A.data(), 3, nullptr, 3, C.data(), 2), InvalidArgument);
  // Empty products are fine: C = beta * C.
  C.assign(4, 3.0f);
  sgemm(false, false, 2, 2, 0, 1, nullptr, 1, nullptr, 1, 2.0f, C.data(), 2);
  EXPECT_EQ(C, std::vector<float>(4, 6.0f));
}

}  // namespace
}  // namespace quasr::kernels
