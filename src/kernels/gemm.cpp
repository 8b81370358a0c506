// FP32 GEMM. This first version is a portable cache-blocked loop nest, parallel over rows of C; ISA-specific
// micro-kernels (gemm_avx2.cpp, gemm_avx512.cpp) replace its inner loop when they land.
#include "quasr/kernels/gemm.h"

#include <algorithm>
#include <vector>

#include "quasr/core/parallel.h"

namespace quasr::kernels {

void sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * b;
      }
      float& c = C[i * ldc + j];
      c = static_cast<float>(alpha * acc + (beta == 0 ? 0.0 : beta * static_cast<double>(c)));
    }
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // Normalise to C[i, :] += a_ik * Brow_k[:] with B as K x N rows: transpose B once into a contiguous buffer
  // (weights are reused across all rows of A, so the copy is amortised).
  std::vector<float> bt;
  const float* Bkn = B;
  int64_t ldbk = ldb;
  if (trans_b) {
    bt.resize(static_cast<size_t>(K * N));
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) bt[k * N + j] = B[j * ldb + k];
    Bkn = bt.data();
    ldbk = N;
  }
  parallel_for(0, M, 4, [&](int64_t i0, int64_t i1) {
    std::vector<float> acc(static_cast<size_t>(N));
    for (int64_t i = i0; i < i1; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float* brow = Bkn + k * ldbk;
        for (int64_t j = 0; j < N; ++j) acc[j] += a * brow[j];
      }
      float* c = C + i * ldc;
      if (beta == 0)
        for (int64_t j = 0; j < N; ++j) c[j] = alpha * acc[j];
      else
        for (int64_t j = 0; j < N; ++j) c[j] = alpha * acc[j] + beta * c[j];
    }
  });
}

}  // namespace quasr::kernels
