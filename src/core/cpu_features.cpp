#include "quasr/core/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "quasr/core/error.h"

namespace quasr {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux: ask for permission to use AMX tile data (XFEATURE 18). Without it, the first tile instruction faults.
bool request_amx_permission() {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool cpu_avx = c & (1u << 28);
  const bool cpu_fma = c & (1u << 12);
  const bool cpu_f16c = c & (1u << 29);
  if (!osxsave || !cpu_avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;          // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & (3ull << 17)) == (3ull << 17);  // XTILECFG + XTILEDATA
  if (!os_ymm) return f;
  f.fma = cpu_fma;
  f.f16c = cpu_f16c;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b & (1u << 5);
  if (os_zmm) {
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    f.avx512fp16 = d & (1u << 23);
  }
  const bool cpu_amx_bf16 = d & (1u << 22), cpu_amx_tile = d & (1u << 24), cpu_amx_int8 = d & (1u << 25);
  __cpuid_count(7, 1, a, b, c, d);
  f.avxvnni = a & (1u << 4);
  if (os_zmm) f.avx512bf16 = a & (1u << 5);
  if (cpu_amx_tile && os_amx && request_amx_permission()) {
    f.amx_tile = true;
    f.amx_int8 = cpu_amx_int8;
    f.amx_bf16 = cpu_amx_bf16;
  }
  return f;
}

}  // namespace

std::string CpuFeatures::summary() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (on) (s += s.empty() ? "" : " ") += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vnni, "avx512-vnni");
  add(avx512bf16, "avx512-bf16");
  add(avx512fp16, "avx512-fp16");
  add(avxvnni, "avx-vnni");
  add(amx_int8, "amx-int8");
  add(amx_bf16, "amx-bf16");
  return s.empty() ? "scalar" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::AvxVnni: return "avxvnni";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::Amx: return "amx";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx512 = f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.fma && f.f16c;
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::AvxVnni: return f.avx2 && f.fma && f.f16c && f.avxvnni;
    case Isa::Avx512: return avx512;
    case Isa::Avx512Vnni: return avx512 && f.avx512vnni;
    case Isa::Amx: return avx512 && f.avx512vnni && f.amx_int8 && f.amx_bf16;
  }
  return false;
}

Isa best_isa() {
  Isa cap = Isa::Amx;
  if (const char* env = std::getenv("QUASR_ISA"); env && *env) {
    bool found = false;
    for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512, Isa::Avx512Vnni, Isa::Amx}) {
      if (std::strcmp(env, isa_name(i)) == 0) {
        cap = i;
        found = true;
      }
    }
    if (!found)
      throw InvalidArgument(std::string("QUASR_ISA='") + env +
                            "' is not an ISA level; use one of: scalar avx2 avxvnni avx512 avx512vnni amx");
  }
  for (int i = static_cast<int>(cap); i > 0; --i)
    if (isa_supported(static_cast<Isa>(i))) return static_cast<Isa>(i);
  return Isa::Scalar;
}

}  // namespace quasr
