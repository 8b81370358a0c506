#pragma once
// FP32 GEMM, the full-precision engine of the runtime: row-major, C = alpha * op(A) * op(B) + beta * C.
// Dispatched once at run time to the best compiled ISA (core/cpu_features.h); a scalar reference exists for
// every path and tests compare against it. Uses the pool from core/parallel.h.
#include <cstdint>

namespace quasr::kernels {

// op(A) is M x K, op(B) is K x N. trans_a: A is stored K x M; trans_b: B is stored N x K (the [out, in] layout
// of Linear weights). beta == 0 means C is write-only (NaNs in C are not propagated).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The scalar reference (double accumulation), for tests.
void sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace quasr::kernels
