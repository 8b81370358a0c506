#pragma once
// Internal interface between the GEMM driver (gemm.cpp: dispatch, packing, blocking, threads) and the per-ISA
// kernels. Each ISA compiles the one kernel source sgemm_generic.inc with its own vector type and flags, inside
// its own namespace (quasr::kernels::avx512, ::avx2, ::portable), so the same template compiled with different
// flags never meets another copy at link time.
#include <cstdint>

namespace quasr::kernels::detail {

// Packed layouts (written by the driver, read by the micro-kernel), for one block of kc steps along K:
//   A micro-panel: kc x MR, element (r, k) at a[k * MR + r]   (rows past M are zero)
//   B micro-panel: kc x NR, element (k, c) at b[k * NR + c]   (columns past N are zero)
// The micro-kernel computes the MR x NR tile acc = sum_k a(:, k) b(k, :) and stores
//   C = alpha * acc + beta * C   (beta == 0: C is not read).
// The _rows variant reads A in place instead: row-major rows of op(A), element (r, k) at a[r * lda + k] (used
// when op(A) = A, which saves packing A; lda is ignored by the packed variant).
using SgemmMicroKernel = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                                  float alpha, float beta);

// Small-M kernels (M <= kSmallM), no packing: the weights stream through once for all rows of A.
// A is M x K row-major (lda); they compute columns [n0, n1) of C = alpha * A * op(B) + beta * C.
//   _nt: op(B) = B^T, B stored N x K (the [out, in] layout of Linear weights): dot products along K;
//   _nn: op(B) = B,   B stored K x N: rows of B scaled by a[m, k] and summed.
using SgemmSmallM = void (*)(int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha, const float* A,
                             int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
inline constexpr int64_t kSmallM = 8;
// _nt with B stored as FP16 (binary16 bits), widened to FP32 in registers: bit-identical to _nt on the FP32 values.
using SgemmSmallMF16 = void (*)(int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha, const float* A,
                                int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Packs op(B) rows [k0, k0 + kc), columns [j0, j0 + nr) into one B micro-panel (zero past N).
using SgemmPackB = void (*)(bool trans_b, const float* B, int64_t ldb, int64_t N, int64_t k0, int64_t kc,
                            int64_t j0, float* dst);

// Packs op(A) = A^T (A stored K x M) rows [i0, i0 + mr), columns [k0, k0 + kc) into one A micro-panel.
using SgemmPackAT = void (*)(const float* A, int64_t lda, int64_t M, int64_t i0, int64_t k0, int64_t kc,
                             float* dst);

struct SgemmKernels {
  const char* name;
  int mr, nr;  // micro-tile
  int kc;      // K block: an A micro-panel plus a B micro-panel of kc steps stay in L1/L2
  int mc;      // rows of C per task (a multiple of mr): the packed A block stays in L2
  int nc;      // columns of C per task (a multiple of nr)
  SgemmMicroKernel micro;
  SgemmMicroKernel micro_rows;
  SgemmSmallM small_m_nt;
  SgemmSmallM small_m_nn;
  SgemmSmallMF16 small_m_nt_f16;
  void (*widen_f16)(const uint16_t* src, int64_t n, float* dst);  // dst[i] = FP32 value of the FP16 src[i]
  SgemmPackB pack_b;
  SgemmPackAT pack_a_t;
};

}  // namespace quasr::kernels::detail

namespace quasr::kernels::portable {
const detail::SgemmKernels& sgemm_kernels();
}
namespace quasr::kernels::avx2 {
const detail::SgemmKernels& sgemm_kernels();
}
namespace quasr::kernels::avx512 {
const detail::SgemmKernels& sgemm_kernels();
}
