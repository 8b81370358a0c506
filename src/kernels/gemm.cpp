// FP32 GEMM driver: argument checks, ISA dispatch, packing, blocking and threads. The arithmetic lives in the
// per-ISA kernels (sgemm_generic.inc compiled by sgemm_avx512.cpp, sgemm_avx2.cpp, sgemm_portable.cpp).
#include "quasr/kernels/gemm.h"

#include <algorithm>
#include <string>
#include <vector>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "sgemm_kernels.h"

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

namespace {

using detail::SgemmKernels;

// Reused packing buffers: one for op(B) per calling thread, one for a block of op(A) per executing thread.
// They only grow, so steady-state calls allocate nothing.
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
thread_local std::vector<float> tls_packed_b, tls_packed_a, tls_small_a;

void check_args(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, const float* C, int64_t ldc) {
  auto fail = [](const std::string& what) { throw InvalidArgument("sgemm: " + what); };
  if (M < 0 || N < 0 || K < 0)
    fail("negative size M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
  if (M == 0 || N == 0) return;
  const int64_t a_row = trans_a ? M : K, b_row = trans_b ? K : N;
  if (K > 0 && lda < std::max<int64_t>(a_row, 1))
    fail("lda=" + std::to_string(lda) + " is less than the row length " + std::to_string(a_row) + " of A");
  if (K > 0 && ldb < std::max<int64_t>(b_row, 1))
    fail("ldb=" + std::to_string(ldb) + " is less than the row length " + std::to_string(b_row) + " of B");
  if (ldc < N) fail("ldc=" + std::to_string(ldc) + " is less than N=" + std::to_string(N));
  if (C == nullptr || (K > 0 && (A == nullptr || B == nullptr))) fail("null matrix pointer");
}

// C = beta * C (alpha == 0 or K == 0: op(A) op(B) contributes nothing).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0)
      std::fill(c, c + N, 0.0f);
    else
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// ---- small M: no packing of B ----------------------------------------------------------------------------------
// Blocks of 64 columns per task: enough multiply-adds (>= 1M, ~40 us on one core) that handing half to a pool
// thread pays even when the machine is oversubscribed and the woken thread waits for a time slice (measured on a
// shared 2-core machine: at 256k the second thread made M = 1 slower).
int64_t small_m_grain(int64_t M, int64_t K) {
  return std::max<int64_t>(1, ((int64_t{1} << 20) / std::max<int64_t>(M * K, 1) + 63) / 64);
}

void small_m(const SgemmKernels& kern, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (trans_a) {  // the kernels read rows of A: transpose the (at most 8 x K) A once
    float* a = scratch(tls_small_a, static_cast<size_t>(M * K));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t m = 0; m < M; ++m) a[m * K + k] = A[k * lda + m];
    A = a;
    lda = K;
  }
  const detail::SgemmSmallM fn = trans_b ? kern.small_m_nt : kern.small_m_nn;
  parallel_for(0, (N + 63) / 64, small_m_grain(M, K), [&](int64_t b0, int64_t b1) {
    fn(M, b0 * 64, std::min(N, b1 * 64), K, alpha, A, lda, B, ldb, beta, C, ldc);
  });
}

// ---- packing -----------------------------------------------------------------------------------------------------
// ---- large M: packed panels --------------------------------------------------------------------------------------
void packed(const SgemmKernels& kern, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
            const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int mr = kern.mr, nr = kern.nr;
  // K blocks of equal size (K = 384 -> 2 x 192, not 256 + 128): fixed by K alone, so results do not depend on
  // the thread count.
  const int64_t nkb = (K + kern.kc - 1) / kern.kc;
  const int64_t kcb = (K + nkb - 1) / nkb;
  const int64_t npanels = (N + nr - 1) / nr;
  const int64_t npad = npanels * nr;

  // op(B), all of it, as panels: K block p starts at p * kcb * npad, panel j of it at + j * kc_p * nr.
  float* pb = scratch(tls_packed_b, static_cast<size_t>(K * npad));
  parallel_for(0, npanels, std::max<int64_t>(1, 16384 / std::max<int64_t>(K, 1)), [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t p = 0; p < nkb; ++p) {
        const int64_t k0 = p * kcb, kc = std::min(kcb, K - k0);
        kern.pack_b(trans_b, B, ldb, N, k0, kc, j * nr, pb + k0 * npad + j * kc * nr);
      }
  });

  // Tasks: blocks of mc rows x nc columns of C; column blocks outermost so neighbouring tasks share B panels.
  const int64_t row_blocks = (M + kern.mc - 1) / kern.mc, col_blocks = (N + kern.nc - 1) / kern.nc;
  // op(A) = A: a block of its rows is copied (memcpy per row) into a buffer whose row stride is kc + 16 floats,
  // which the micro-kernel reads in place. Reading A itself would be cheaper still, but a leading dimension that
  // is a multiple of 4 KiB (K = 1024, 2048, 3072) puts all MR rows in one L1 set and thrashes it (measured: 0.7x).
  // op(A) = A^T is packed into micro-panels, which for A^T is also a row copy.
  const int64_t ldp = kcb + 16;
  parallel_for(0, row_blocks * col_blocks, 1, [&](int64_t t0, int64_t t1) {
    const int64_t a_block = trans_a ? kern.mc * kcb : kern.mc * ldp;
    float* pa = scratch(tls_packed_a, static_cast<size_t>(a_block));
    alignas(64) float edge[32 * 64];  // one partial tile
    QUASR_ASSERT(mr * nr <= 32 * 64);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = (t % row_blocks) * kern.mc, i1 = std::min(M, i0 + kern.mc);
      const int64_t jb0 = (t / row_blocks) * kern.nc, jb1 = std::min(N, jb0 + kern.nc);
      const int64_t rows_padded = (i1 - i0 + mr - 1) / mr * mr;  // rows past M are zero
      for (int64_t p = 0; p < nkb; ++p) {
        const int64_t k0 = p * kcb, kc = std::min(kcb, K - k0);
        if (trans_a) {
          for (int64_t i = i0; i < i1; i += mr) kern.pack_a_t(A, lda, M, i, k0, kc, pa + (i - i0) * kc);
        } else {
          for (int64_t r = 0; r < rows_padded; ++r) {
            float* dst = pa + r * ldp;
            if (i0 + r < i1)
              std::copy(A + (i0 + r) * lda + k0, A + (i0 + r) * lda + k0 + kc, dst);
            else
              std::fill(dst, dst + kc, 0.0f);
          }
        }
        const float beta_p = p == 0 ? beta : 1.0f;  // later K blocks accumulate onto the first one's result
        for (int64_t j = jb0; j < jb1; j += nr) {
          const float* bpanel = pb + k0 * npad + (j / nr) * kc * nr;
          const int64_t cols = std::min<int64_t>(nr, N - j);
          for (int64_t i = i0; i < i1; i += mr) {
            const int64_t rows = std::min<int64_t>(mr, M - i);
            const bool full = rows == mr && cols == nr;
            float* c = full ? C + i * ldc + j : edge;
            const int64_t ldc_tile = full ? ldc : nr;
            const float alpha_tile = full ? alpha : 1.0f, beta_tile = full ? beta_p : 0.0f;
            if (trans_a)
              kern.micro(kc, pa + (i - i0) * kc, 0, bpanel, c, ldc_tile, alpha_tile, beta_tile);
            else
              kern.micro_rows(kc, pa + (i - i0) * ldp, ldp, bpanel, c, ldc_tile, alpha_tile, beta_tile);
            if (full) continue;
            float* cout = C + i * ldc + j;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t q = 0; q < cols; ++q) {
                float& out = cout[r * ldc + q];
                const float acc = edge[r * nr + q];
                out = beta_p == 0 ? alpha * acc : alpha * acc + beta_p * out;
              }
          }
        }
      }
    }
  });
}

const SgemmKernels& kernels_for(Isa isa) {
  if (!isa_supported(isa))
    throw InvalidArgument(std::string("sgemm: this CPU does not support the ISA level ") + isa_name(isa));
  switch (isa) {
    case Isa::Scalar: return portable::sgemm_kernels();
    case Isa::Avx2: return avx2::sgemm_kernels();
    default: return avx512::sgemm_kernels();  // Avx512, Avx512Vnni, Amx: the FP32 kernels are the zmm ones
  }
}

void run(const SgemmKernels& kern, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
         const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0) return scale_c(M, N, beta, C, ldc);
  if (M <= detail::kSmallM) return small_m(kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // A last partial row panel of at most 4 rows goes to the small-M kernels rather than a zero-padded micro-tile
  // (M = 16 = 14 + 2 would otherwise compute 28 rows; measured 0.60 -> 0.82 of OpenBLAS). With 5..8 rows the
  // padded tile was as fast or faster. Decided by M alone: results stay independent of the thread count.
  const int64_t rest = M % kern.mr;
  const int64_t main_rows = rest <= 4 ? M - rest : M;
  packed(kern, trans_a, trans_b, main_rows, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (main_rows < M)
    small_m(kern, trans_a, trans_b, M - main_rows, N, K, alpha, trans_a ? A + main_rows : A + main_rows * lda, lda,
            B, ldb, beta, C + main_rows * ldc, ldc);
}

// C = A W^T with W stored [N][K] as FP16. M <= 8: the FP16 dot-product kernels. Larger M: W is widened to FP32
// a block of columns at a time (<= 1M values, so the scratch stays small even for a 52k-row vocabulary) and each
// block goes through the FP32 path. Every element of C sees the same K blocking and the same kernel as in
// sgemm on the widened matrix (both depend on M and K only), so the results are bit-identical to it.
thread_local std::vector<float> tls_widened_w;

void run_f16w(const SgemmKernels& kern, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
              const uint16_t* W, int64_t ldw, float* C, int64_t ldc) {
  // check_args looks at B only to reject a null pointer.
  check_args(false, true, M, N, K, A, lda, W ? reinterpret_cast<const float*>(A) : nullptr, ldw, C, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_c(M, N, 0.0f, C, ldc);
  if (M <= detail::kSmallM) {
    parallel_for(0, (N + 63) / 64, small_m_grain(M, K), [&](int64_t b0, int64_t b1) {
      kern.small_m_nt_f16(M, b0 * 64, std::min(N, b1 * 64), K, 1.0f, A, lda, W, ldw, 0.0f, C, ldc);
    });
    return;
  }
  const int64_t cols = std::max<int64_t>(64, (int64_t{1} << 20) / K / 64 * 64);
  float* wide = scratch(tls_widened_w, static_cast<size_t>(std::min(cols, N) * K));
  for (int64_t j0 = 0; j0 < N; j0 += cols) {
    const int64_t nc = std::min(cols, N - j0);
    parallel_for(0, nc, std::max<int64_t>(1, 16384 / K), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) kern.widen_f16(W + (j0 + r) * ldw, K, wide + r * K);
    });
    run(kern, false, true, M, nc, K, 1.0f, A, lda, wide, K, 0.0f, C + j0, ldc);
  }
}

}  // namespace

Isa sgemm_isa() {
  static const Isa isa = std::min(best_isa(), Isa::Avx512);
  return isa;
}

void sgemm_with_isa(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  run(kernels_for(isa), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  static const SgemmKernels& kern = kernels_for(sgemm_isa());
  run(kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm_f16w(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* W, int64_t ldw,
                float* C, int64_t ldc) {
  static const SgemmKernels& kern = kernels_for(sgemm_isa());
  run_f16w(kern, M, N, K, A, lda, W, ldw, C, ldc);
}

void sgemm_f16w_with_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* W,
                         int64_t ldw, float* C, int64_t ldc) {
  run_f16w(kernels_for(isa), M, N, K, A, lda, W, ldw, C, ldc);
}

}  // namespace quasr::kernels
