#pragma once
// Internal to GPTQ: the double-precision factorisation kernels (gptq_linalg.inc), one compiled copy per ISA.
#include <cstdint>
#include <vector>

namespace quasr::quant::detail {

#define QUASR_GPTQ_DECLARE_LINALG(ns)                                                                        \
  namespace ns {                                                                                             \
  /* In-place lower Cholesky factor of the symmetric a ([k][k] row-major; the lower triangle is read and     \
     overwritten). Returns -1 on success, else the first column whose pivot is not positive. */             \
  int64_t cholesky_lower(std::vector<double>& a, int64_t k);                                                 \
  /* x = L^-1 for the lower-triangular factor in the lower triangle of l ([k][k]); x is lower triangular. */ \
  void invert_lower(const std::vector<double>& l, int64_t k, std::vector<double>& x);                        \
  }
QUASR_GPTQ_DECLARE_LINALG(portable)
QUASR_GPTQ_DECLARE_LINALG(avx2)
QUASR_GPTQ_DECLARE_LINALG(avx512)
#undef QUASR_GPTQ_DECLARE_LINALG

}  // namespace quasr::quant::detail
