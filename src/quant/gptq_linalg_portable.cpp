// GPTQ's factorisation kernels compiled for baseline x86-64 (SSE2).
#define QUASR_GPTQ_ISA_NS portable
#include "gptq_linalg.inc"
