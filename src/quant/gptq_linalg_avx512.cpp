// GPTQ's factorisation kernels compiled for AVX-512 (this file gets only that ISA's flags).
#define QUASR_GPTQ_ISA_NS avx512
#include "gptq_linalg.inc"
