// The integer simulation's group dot products compiled for avx2 (see simulate_int_dot.inc).
#define QUASR_SIM_ISA_NS avx2
#include "simulate_int_dot.inc"
