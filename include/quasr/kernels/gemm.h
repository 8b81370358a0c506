#pragma once
// FP32 GEMM, the full-precision engine of the runtime: row-major, C = alpha * op(A) * op(B) + beta * C.
// Dispatched once at run time to the best compiled ISA (core/cpu_features.h; QUASR_ISA caps it); a scalar
// reference exists and tests compare every compiled path against it. Uses the pool from core/parallel.h.
//
// How it works (src/kernels/gemm.cpp): for M <= 8 (decoder steps, beams) the weights stream through once with no
// packing (dot products when B is N x K, row updates when B is K x N), split over threads by columns; for larger
// M, op(B) is packed into NR-wide panels once per call (in parallel), and threads take blocks of C, each copying
// its rows of op(A) per K block and running an MR x NR register-blocked micro-kernel (avx512 14x32, avx2 6x16,
// portable 6x8). A last partial row panel of <= 4 rows goes through the small-M kernels.
// Results are bit-identical for any thread count: the blocking depends on the shape only, never on threads.
// Scratch buffers are thread-local and only grow (up to K x N floats for op(B) on the calling thread).
//
// No pre-packed weight API: packing op(B) is K x N copies (16 x 16 in-register transposes for N x K weights)
// against M x N x K multiply-adds, a share of about 1/M, and for M <= 8 nothing is packed at all, so a PackedB
// type would save little for its extra state (weights would have to be re-packed per ISA and per blocking).
#include <cstdint>

#include "quasr/core/cpu_features.h"

namespace quasr::kernels {

// op(A) is M x K, op(B) is K x N. trans_a: A is stored K x M; trans_b: B is stored N x K (the [out, in] layout
// of Linear weights). beta == 0 means C is write-only (NaNs in C are not propagated). Leading dimensions are
// those of the stored matrices (row-major) and must be >= their row length; bad sizes throw InvalidArgument.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// C[M][N] = A[M][K] . W^T for a weight W stored [N][K] as FP16 (binary16 bits, ldw apart): a Linear kept in the
// half precision its checkpoint ships in. W is widened to FP32 exactly (in registers for M <= 8, a block of rows
// at a time above), so the result is bit for bit sgemm(false, true, M, N, K, 1, A, lda, W_fp32, ldw, 0, C, ldc)
// for every M, thread count and ISA, while the decoder's memory-bound M <= 8 products read half the bytes.
void sgemm_f16w(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* W, int64_t ldw,
                float* C, int64_t ldc);
void sgemm_f16w_with_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* W,
                         int64_t ldw, float* C, int64_t ldc);

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
