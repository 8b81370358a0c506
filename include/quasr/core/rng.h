#pragma once
// A small deterministic random number generator. std:: distributions are implementation-defined, so anything
// that must give the same answer on every machine (k-means++ seeding, test data) draws from this instead.
#include <cmath>
#include <cstdint>

namespace quasr {

// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, passes BigCrush, trivially seedable.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n) (n > 0); the modulo bias is < n / 2^64, irrelevant at our sizes.
  uint64_t below(uint64_t n) { return next_u64() % n; }
  // Standard normal by Box-Muller (both draws consumed, one value returned: simple and deterministic).
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace quasr
