// GPTQ's factorisation kernels compiled for AVX2 + FMA (this file gets only that ISA's flags).
#define QUASR_GPTQ_ISA_NS avx2
#include "gptq_linalg.inc"
