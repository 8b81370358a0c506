#pragma once
// Run-time CPU feature detection. A feature counts only if the CPU has it *and* the OS saves its register state
// (XGETBV), and for AMX only after the kernel granted the tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM).
// Kernels are chosen from this once; QUASR_ISA=<name> in the environment caps the choice (tests, benchmarks).
#include <string>

namespace quasr {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512vnni = false, avx512bf16 = false, avx512fp16 = false, avxvnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;  // true only with OS permission granted
  std::string summary() const;                                 // "avx2 fma avx512f ... amx-int8"
};

// Detected once (thread-safe) and cached.
const CpuFeatures& cpu_features();

// The instruction-set levels kernels are compiled for, in increasing order.
// Ordered levels: a kernel of level L runs when the CPU supports L and L <= best_isa(). AvxVnni (the VEX vpdpbusd of
// Alder Lake-class cores) sits between AVX2 and AVX-512 so that QUASR_ISA=avx2 excludes it.
enum class Isa { Scalar = 0, Avx2 = 1, AvxVnni = 2, Avx512 = 3, Avx512Vnni = 4, Amx = 5 };
const char* isa_name(Isa isa);
// Highest level this machine supports, capped by QUASR_ISA if set (unknown names throw InvalidArgument).
Isa best_isa();
bool isa_supported(Isa isa);

}  // namespace quasr
