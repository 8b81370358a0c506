#pragma once
// FP32 GEMM, the full-precision engine of the runtime: row-major, C = alpha * op(A) * op(B) + beta * C.
// Dispatched once at run time to the best compiled ISA (core/cpu_features.h; QUASR_ISA caps it); a scalar
// reference exists and tests compare every compiled path against it. Uses the pool from core/parallel.h.
//
// How it works (src/kernels/gemm.cpp): for M <= 8 (decoder steps, beams) the weights stream through once with no
// packing (dot products when B is N x K, row updates when B is K x N); for larger M, op(B) is packed into NR-wide
// panels once per call, and threads take blocks of C, each packing its rows of op(A) into MR-high panels per
// K-block and running an MR x NR register-blocked micro-kernel (avx512 14x32, avx2 6x16, portable 6x8).
// Results are bit-identical for any thread count: the blocking depends on the shape only, never on threads.
#include <cstdint>

#include "quasr/core/cpu_features.h"

namespace quasr::kernels {

// op(A) is M x K, op(B) is K x N. trans_a: A is stored K x M; trans_b: B is stored N x K (the [out, in] layout
// of Linear weights). beta == 0 means C is write-only (NaNs in C are not propagated). Leading dimensions are
// those of the stored matrices (row-major) and must be >= their row length; bad sizes throw InvalidArgument.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The scalar reference (double accumulation), for tests.
void sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The ISA whose kernels sgemm uses: best_isa() at first use, mapped to the highest level that has GEMM kernels
// (Avx512Vnni and Amx use the Avx512 ones). Chosen once per process.
Isa sgemm_isa();

// sgemm with the kernels of one ISA level (Scalar = the portable kernels), for tests and benchmarks that cover
// every compiled path. Throws InvalidArgument if this CPU does not support `isa`.
void sgemm_with_isa(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace quasr::kernels
