// The integer simulation's group dot products compiled for portable (see simulate_int_dot.inc).
#define QUASR_SIM_ISA_NS portable
#include "simulate_int_dot.inc"
