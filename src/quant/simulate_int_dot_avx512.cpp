// The integer simulation's group dot products compiled for avx512 (see simulate_int_dot.inc).
#define QUASR_SIM_ISA_NS avx512
#include "simulate_int_dot.inc"
