#include <gtest/gtest.h>

#include <cstdlib>

#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"

namespace quasr {

TEST(CpuFeatures, BestIsaIsSupportedAndConsistent) {
  const Isa best = best_isa();
  EXPECT_TRUE(isa_supported(best));
  // Levels are ordered: a supported level implies every lower one (kernels rely on this when they fall back).
  for (int i = static_cast<int>(best); i >= 0; --i) EXPECT_TRUE(isa_supported(static_cast<Isa>(i))) << i;
  const CpuFeatures& f = cpu_features();
  if (f.avx512vnni) {
    EXPECT_TRUE(f.avx512f);
  }
  if (f.amx_int8) {
    EXPECT_TRUE(f.amx_tile);
  }
}

TEST(CpuFeatures, EnvironmentCapsTheIsa) {
  setenv("QUASR_ISA", "scalar", 1);
  EXPECT_EQ(best_isa(), Isa::Scalar);
  setenv("QUASR_ISA", "avx2", 1);
  EXPECT_LE(static_cast<int>(best_isa()), static_cast<int>(Isa::Avx2));
  setenv("QUASR_ISA", "pentium", 1);
  EXPECT_THROW(best_isa(), InvalidArgument);
  unsetenv("QUASR_ISA");
}

TEST(Rng, DeterministicAndInRange) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    (void)c;
  }
  Rng r(7);
  double sum = 0, sumsq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    const double z = r.normal();
    sum += z;
    sumsq += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sumsq / n, 1.0, 0.02);
  // A known first value pins the generator: changing it silently would change every k-means codebook.
  EXPECT_EQ(Rng(0).next_u64(), 0xE220A8397B1DCDAFull);
}

}  // namespace quasr
