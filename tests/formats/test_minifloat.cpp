// Exhaustive tests of the element codecs (include/quasr/formats/minifloat.h).
//
// The expected values are written here from the specifications, independently of the implementation:
//   * FP4 E2M1, FP6 E3M2, FP6 E2M3: the value tables of the OCP Microscaling spec v1.0 (section 5.3), as literals;
//   * FP8 E4M3 / E5M2: the OCP FP8 spec's formula (-1)^S * 2^(E-bias) * 1.M (subnormal 2^(1-bias) * 0.M) with
//     its special codes (E4M3: S.1111.111 NaN, no Inf; E5M2: IEEE), plus the spec's anchor values;
//   * FP16 / BF16: the IEEE 754 binary16 formula and bfloat16 = the top half of binary32.
// Rounding is checked against a nearest-value search over those tables (ties: the code whose magnitude is even),
// never against the implementation's own arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "quasr/core/rng.h"
#include "quasr/formats/minifloat.h"

namespace quasr::formats {
namespace {

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
const float kInf = std::numeric_limits<float>::infinity();
const float kNan = std::numeric_limits<float>::quiet_NaN();

// ---- the spec tables ------------------------------------------------------------------------------------------

// What a format's code means. Magnitudes are listed for the codes 0 .. 2^(bits-1)-1 (sign bit clear), in code
// order; a negative code is the same magnitude with the sign bit set.
struct SpecTable {
  const MinifloatSpec* spec;
  std::vector<double> magnitude;  // NaN / Inf entries for special codes
  int nan_codes;                  // over all 2^bits codes, both signs
  int inf_codes;
};

double nan_d() { return std::numeric_limits<double>::quiet_NaN(); }
double inf_d() { return std::numeric_limits<double>::infinity(); }

SpecTable fp4_e2m1_table() {
  return {&kFp4E2M1, {0, 0.5, 1, 1.5, 2, 3, 4, 6}, 0, 0};
}

SpecTable fp6_e3m2_table() {
  return {&kFp6E3M2,
          {0,    0.0625, 0.125, 0.1875,  // subnormals (E = 0): 0.M * 2^-2
           0.25, 0.3125, 0.375, 0.4375, 0.5, 0.625, 0.75, 0.875, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5,
           4,    5,      6,     7,      8,   10,    12,   14,    16, 20,  24,  28},
          0, 0};
}

SpecTable fp6_e2m3_table() {
  return {&kFp6E2M3,
          {0,   0.125, 0.25,  0.375, 0.5, 0.625, 0.75, 0.875,  // subnormals (E = 0): 0.M * 2^0
           1,   1.125, 1.25,  1.375, 1.5, 1.625, 1.75, 1.875, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75,
           4,   4.5,   5,     5.5,   6,   6.5,   7,    7.5},
          0, 0};
}

// OCP 8-bit floating point spec (v1.0), table 1: value of a normal code 2^(E-bias) * (1 + M/2^m), subnormal
// 2^(1-bias) * (M/2^m).
double ocp_fp8_value(int e_field, int m_field, int man_bits, int bias) {
  const double frac = static_cast<double>(m_field) / (1 << man_bits);
  if (e_field == 0) return std::pow(2.0, 1 - bias) * frac;
  return std::pow(2.0, e_field - bias) * (1 + frac);
}

SpecTable fp8_e4m3_table() {
  SpecTable t{&kFp8E4M3, {}, 2, 0};  // NaN: S.1111.111 only
  for (int c = 0; c < 128; ++c) {
    const int e = c >> 3, m = c & 7;
    t.magnitude.push_back(e == 15 && m == 7 ? nan_d() : ocp_fp8_value(e, m, 3, 7));
  }
  return t;
}

SpecTable fp8_e5m2_table() {
  SpecTable t{&kFp8E5M2, {}, 6, 2};  // NaN: S.11111.{01,10,11}; Inf: S.11111.00
  for (int c = 0; c < 128; ++c) {
    const int e = c >> 2, m = c & 3;
    t.magnitude.push_back(e == 31 ? (m == 0 ? inf_d() : nan_d()) : ocp_fp8_value(e, m, 2, 15));
  }
  return t;
}

std::vector<SpecTable> all_tables() {
  return {fp8_e4m3_table(), fp8_e5m2_table(), fp6_e3m2_table(), fp6_e2m3_table(), fp4_e2m1_table()};
}

int sign_bit(const MinifloatSpec& s) { return 1 << (s.bits() - 1); }

// Expected value of a code (either sign), from the table.
double table_value(const SpecTable& t, int code) {
  const int sb = sign_bit(*t.spec);
  const double mag = t.magnitude[code & (sb - 1)];
  return (code & sb) ? -mag : mag;
}

// ---- the rounding reference -----------------------------------------------------------------------------------

// A finite representable magnitude and the magnitude code that encodes it.
struct Level {
  double value;
  uint32_t code;
};

// Nearest level to ax >= 0 by scanning every level; ties go to the level whose code is even (for a positive
// float code, an even code means an even last mantissa bit). `levels` may be in any order.
uint32_t nearest_by_scan(const std::vector<Level>& levels, double ax) {
  const Level* best = nullptr;
  double best_d = inf_d();
  for (const Level& l : levels) {
    const double d = std::fabs(l.value - ax);  // exact: both are short dyadic rationals
    if (d < best_d || (d == best_d && (l.code & 1) == 0)) {
      best = &l;
      best_d = d;
    }
  }
  return best->code;
}

// The same search by bisection over levels sorted by value (for the 16-bit formats, where a scan per input would
// be too slow); the test checks the table is strictly increasing before using it.
uint32_t nearest_by_bisection(const std::vector<Level>& sorted, double ax) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), ax, [](const Level& l, double v) { return l.value < v; });
  if (it == sorted.begin()) return it->code;
  if (it == sorted.end()) return sorted.back().code;
  const Level& hi = *it;
  const Level& lo = *(it - 1);
  const double dlo = ax - lo.value, dhi = hi.value - ax;
  if (dlo < dhi) return lo.code;
  if (dhi < dlo) return hi.code;
  return (lo.code & 1) == 0 ? lo.code : hi.code;
}

// Finite levels of a minifloat: every non-NaN, non-Inf magnitude code.
std::vector<Level> finite_levels(const SpecTable& t) {
  std::vector<Level> levels;
  for (uint32_t c = 0; c < t.magnitude.size(); ++c)
    if (std::isfinite(t.magnitude[c])) levels.push_back({t.magnitude[c], c});
  return levels;
}

// The documented conversion rule, expressed with the table: NaN -> the NaN code (formats without NaN: +0),
// +-Inf -> the Inf code or +-max, finite -> nearest finite level (this saturates beyond max), sign kept.
struct MinifloatReference {
  const SpecTable& table;
  std::vector<Level> levels = finite_levels(table);

  // Returns the expected code, or -1 for "any NaN code".
  int expected(float x) const {
    const MinifloatSpec& s = *table.spec;
    if (std::isnan(x)) return s.has_nan() ? -1 : 0;
    const int sign = std::signbit(x) ? sign_bit(s) : 0;
    if (std::isinf(x) && s.has_inf()) {
      for (int c = 0; c < static_cast<int>(table.magnitude.size()); ++c)
        if (std::isinf(table.magnitude[c])) return sign | c;
    }
    // At or beyond max (Inf in a format without one included): saturate. Said explicitly rather than left to
    // the scan, because for huge x the distances |level - x| are no longer exact in double and would tie.
    const auto top = std::max_element(levels.begin(), levels.end(),
                                      [](const Level& a, const Level& b) { return a.value < b.value; });
    const double ax = std::fabs(double{x});
    if (ax >= top->value) return sign | static_cast<int>(top->code);
    return sign | static_cast<int>(nearest_by_scan(levels, ax));
  }
};

void check_encode(const MinifloatReference& ref, float x) {
  const int want = ref.expected(x);
  const uint8_t got = minifloat_encode(*ref.table.spec, x);
  if (want < 0) {
    ASSERT_TRUE(minifloat_is_nan(*ref.table.spec, got)) << ref.table.spec->name << " x=" << x;
  } else {
    ASSERT_EQ(static_cast<int>(got), want) << ref.table.spec->name << " x=" << x << " (bits 0x" << std::hex
                                           << bits_of(x) << ")";
  }
}

// Inputs around every rounding decision: each level and each midpoint between neighbours, exactly and one float
// ulp to each side; values beyond max; values below the smallest subnormal; float subnormals; specials.
std::vector<float> edge_inputs(std::vector<Level> levels) {
  std::sort(levels.begin(), levels.end(), [](const Level& a, const Level& b) { return a.value < b.value; });
  std::vector<double> points;
  for (size_t i = 0; i < levels.size(); ++i) {
    points.push_back(levels[i].value);
    if (i + 1 < levels.size()) points.push_back((levels[i].value + levels[i + 1].value) / 2);
  }
  const double maxv = levels.back().value;
  for (double f : {1.0 + 1.0 / 64, 1.0 + 1.0 / 32, 1.0 + 1.0 / 16, 1.0 + 1.0 / 8, 1.5, 2.0, 1e3})
    points.push_back(maxv * f);
  points.push_back(levels[1].value / 2);  // tie between 0 and the smallest subnormal: goes to 0
  points.push_back(levels[1].value / 4);
  std::vector<float> out;
  for (double p : points) {
    const float f = static_cast<float>(p);
    EXPECT_EQ(static_cast<double>(f), p) << "edge point not exact in float";
    for (float v : {f, std::nextafter(f, kInf), std::nextafter(f, -kInf)}) {
      out.push_back(v);
      out.push_back(-v);
    }
  }
  for (float v : {0.0f, -0.0f, kInf, -kInf, kNan, -kNan, std::numeric_limits<float>::max(),
                  -std::numeric_limits<float>::max(), std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                  float_of(0x7FA00000u) /* signalling NaN */})
    out.push_back(v);
  return out;
}

// ---- minifloat tests ------------------------------------------------------------------------------------------

TEST(Minifloat, SpecAnchors) {
  // The headline numbers of the specs, independent of the tables above.
  EXPECT_EQ(kFp8E4M3.max_finite(), 448.0);
  EXPECT_EQ(kFp8E4M3.min_subnormal(), std::ldexp(1.0, -9));
  EXPECT_EQ(kFp8E4M3.min_normal(), std::ldexp(1.0, -6));
  EXPECT_EQ(kFp8E5M2.max_finite(), 57344.0);
  EXPECT_EQ(kFp8E5M2.min_subnormal(), std::ldexp(1.0, -16));
  EXPECT_EQ(kFp8E5M2.min_normal(), std::ldexp(1.0, -14));
  EXPECT_EQ(kFp6E3M2.max_finite(), 28.0);
  EXPECT_EQ(kFp6E3M2.min_subnormal(), 0.0625);
  EXPECT_EQ(kFp6E2M3.max_finite(), 7.5);
  EXPECT_EQ(kFp6E2M3.min_subnormal(), 0.125);
  EXPECT_EQ(kFp4E2M1.max_finite(), 6.0);
  EXPECT_EQ(kFp4E2M1.min_subnormal(), 0.5);
  // emax_elem of the OCP MX spec, table 2 (and 8 / 15 for the FP8 spec).
  EXPECT_EQ(kFp8E4M3.emax(), 8);
  EXPECT_EQ(kFp8E5M2.emax(), 15);
  EXPECT_EQ(kFp6E3M2.emax(), 4);
  EXPECT_EQ(kFp6E2M3.emax(), 2);
  EXPECT_EQ(kFp4E2M1.emax(), 2);

  EXPECT_EQ(minifloat_decode(kFp8E4M3, 0x7E), 448.0f);
  EXPECT_EQ(minifloat_decode(kFp8E4M3, 0xFE), -448.0f);
  EXPECT_EQ(minifloat_decode(kFp8E4M3, 0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(minifloat_decode(kFp8E4M3, 0x7F)));
  EXPECT_TRUE(std::isnan(minifloat_decode(kFp8E4M3, 0xFF)));
  EXPECT_EQ(minifloat_decode(kFp8E4M3, 0x78), 256.0f);  // E = 15 is an ordinary binade in E4M3
  EXPECT_EQ(minifloat_decode(kFp8E5M2, 0x7B), 57344.0f);
  EXPECT_EQ(minifloat_decode(kFp8E5M2, 0x7C), kInf);
  EXPECT_EQ(minifloat_decode(kFp8E5M2, 0xFC), -kInf);
  EXPECT_EQ(minifloat_decode(kFp8E5M2, 0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(minifloat_decode(kFp6E3M2, 0x1F), 28.0f);
  EXPECT_EQ(minifloat_decode(kFp6E2M3, 0x1F), 7.5f);
  EXPECT_EQ(minifloat_decode(kFp4E2M1, 0x7), 6.0f);
  EXPECT_EQ(minifloat_decode(kFp4E2M1, 0xF), -6.0f);
}

TEST(Minifloat, DecodeEveryCodeMatchesSpecTable) {
  for (const SpecTable& t : all_tables()) {
    const MinifloatSpec& s = *t.spec;
    SCOPED_TRACE(s.name);
    ASSERT_EQ(static_cast<int>(t.magnitude.size()), s.num_codes() / 2);
    int nans = 0, infs = 0;
    for (int c = 0; c < s.num_codes(); ++c) {
      const double want = table_value(t, c);
      const float got = minifloat_decode(s, static_cast<uint8_t>(c));
      EXPECT_EQ(std::isnan(want), minifloat_is_nan(s, static_cast<uint8_t>(c))) << "code " << c;
      if (std::isnan(want)) {
        ++nans;
        EXPECT_TRUE(std::isnan(got)) << "code " << c;
        continue;
      }
      if (std::isinf(want)) ++infs;
      // Bit equality: also distinguishes -0 from +0.
      EXPECT_EQ(bits_of(got), bits_of(static_cast<float>(want))) << "code " << c << " got " << got << " want " << want;
      EXPECT_EQ(static_cast<double>(got), want) << "code " << c;  // the value is exact in float
    }
    EXPECT_EQ(nans, t.nan_codes);
    EXPECT_EQ(infs, t.inf_codes);
    EXPECT_EQ(s.has_nan(), t.nan_codes > 0);
    EXPECT_EQ(s.has_inf(), t.inf_codes > 0);
    // The spec's max is the table's largest finite magnitude.
    double maxv = 0;
    for (double m : t.magnitude)
      if (std::isfinite(m)) maxv = std::max(maxv, m);
    EXPECT_EQ(s.max_finite(), maxv);
  }
}

TEST(Minifloat, EncodeDecodeRoundTripsEveryNonNanCode) {
  for (const SpecTable& t : all_tables()) {
    const MinifloatSpec& s = *t.spec;
    SCOPED_TRACE(s.name);
    for (int c = 0; c < s.num_codes(); ++c) {
      const uint8_t code = static_cast<uint8_t>(c);
      if (minifloat_is_nan(s, code)) {
        EXPECT_TRUE(minifloat_is_nan(s, minifloat_encode(s, minifloat_decode(s, code)))) << "code " << c;
        continue;
      }
      EXPECT_EQ(static_cast<int>(minifloat_encode(s, minifloat_decode(s, code))), c);  // includes -0 and +-Inf
    }
  }
}

TEST(Minifloat, SpecialInputs) {
  // Stated explicitly (the reference test below covers them too): saturation, Inf, NaN, signed zero.
  EXPECT_EQ(minifloat_encode(kFp8E4M3, 1e9f), 0x7E);
  EXPECT_EQ(minifloat_encode(kFp8E4M3, -kInf), 0xFE);
  EXPECT_EQ(minifloat_encode(kFp8E4M3, 464.0f), 0x7E);  // beyond max: saturate, never NaN
  EXPECT_EQ(minifloat_encode(kFp8E4M3, kNan), 0x7F);
  EXPECT_EQ(minifloat_encode(kFp8E5M2, 1e9f), 0x7B);     // finite overflow saturates (rule at top of header)
  EXPECT_EQ(minifloat_encode(kFp8E5M2, kInf), 0x7C);
  EXPECT_EQ(minifloat_encode(kFp8E5M2, -kInf), 0xFC);
  EXPECT_TRUE(minifloat_is_nan(kFp8E5M2, minifloat_encode(kFp8E5M2, kNan)));
  EXPECT_EQ(minifloat_encode(kFp4E2M1, kNan), 0x0);
  EXPECT_EQ(minifloat_encode(kFp4E2M1, kInf), 0x7);
  EXPECT_EQ(minifloat_encode(kFp4E2M1, -kInf), 0xF);
  EXPECT_EQ(minifloat_encode(kFp4E2M1, -0.0f), 0x8);
  EXPECT_EQ(minifloat_encode(kFp4E2M1, 0.25f), 0x0);   // tie 0 / 0.5 -> even (0)
  EXPECT_EQ(minifloat_encode(kFp4E2M1, 0.75f), 0x2);   // tie 0.5 / 1 -> 1 (code 2)
  EXPECT_EQ(minifloat_encode(kFp4E2M1, 2.5f), 0x4);    // tie 2 / 3 -> 2 (code 4)
  EXPECT_EQ(minifloat_encode(kFp4E2M1, 5.0f), 0x6);    // tie 4 / 6 -> 4 (code 6)
  EXPECT_EQ(minifloat_encode(kFp4E2M1, -5.0f), 0xE);
  EXPECT_EQ(minifloat_encode(kFp6E3M2, -0.0f), 0x20);
  EXPECT_EQ(minifloat_encode(kFp6E3M2, 30.0f), 0x1F);
}

TEST(Minifloat, RoundToNearestEvenMatchesTableSearch) {
  for (const SpecTable& t : all_tables()) {
    const MinifloatSpec& s = *t.spec;
    SCOPED_TRACE(s.name);
    const MinifloatReference ref{t};
    for (float x : edge_inputs(ref.levels)) check_encode(ref, x);

    Rng rng(0x5eed0000u + static_cast<uint64_t>(s.bits() * 16 + s.man_bits));
    const double maxv = s.max_finite();
    const int emin = static_cast<int>(std::floor(std::log2(s.min_subnormal())));
    const int emax = static_cast<int>(std::ceil(std::log2(maxv)));
    for (int i = 0; i < 150000; ++i) {
      // Uniform over [-1.25 max, 1.25 max]: dense in the normal range, plus saturation.
      check_encode(ref, static_cast<float>((rng.uniform() * 2.5 - 1.25) * maxv));
      // Log-uniform magnitudes from 1/8 of the smallest subnormal to 4x max: every binade, subnormals included.
      const double e = emin - 3 + rng.uniform() * (emax - emin + 5);
      const float y = static_cast<float>(std::exp2(e));
      check_encode(ref, rng.below(2) ? y : -y);
      // Any float bit pattern (huge, tiny, float subnormals, Inf, NaN).
      check_encode(ref, float_of(static_cast<uint32_t>(rng.next_u64())));
      if (HasFatalFailure()) return;
    }
  }
}

// ---- E8M0 -----------------------------------------------------------------------------------------------------

TEST(E8M0, EveryCode) {
  for (int c = 0; c < 255; ++c) {
    const float got = e8m0_decode(static_cast<uint8_t>(c));
    // 2^(c-127) by repeated exact doubling/halving, not by ldexp.
    double want = 1;
    for (int k = 0; k < std::abs(c - 127); ++k) want = c >= 127 ? want * 2 : want / 2;
    EXPECT_EQ(static_cast<double>(got), want) << "code " << c;
    EXPECT_EQ(e8m0_from_exponent(c - 127), c);
  }
  EXPECT_TRUE(std::isnan(e8m0_decode(kE8M0Nan)));
  EXPECT_EQ(kE8M0Nan, 0xFF);
  EXPECT_EQ(e8m0_decode(0), std::ldexp(1.0f, -127));  // a float subnormal, still exact
  EXPECT_EQ(e8m0_decode(254), std::ldexp(1.0f, 127));
  // Out-of-range exponents clamp to the ends and never produce the NaN code.
  EXPECT_EQ(e8m0_from_exponent(-128), 0);
  EXPECT_EQ(e8m0_from_exponent(-1000), 0);
  EXPECT_EQ(e8m0_from_exponent(128), 254);
  EXPECT_EQ(e8m0_from_exponent(1000), 254);
}

// ---- FP16 / BF16 ----------------------------------------------------------------------------------------------

struct Half16Format {
  const char* name;
  int exp_bits, man_bits, bias;
  uint16_t (*encode)(float);
  float (*decode)(uint16_t);
};
const Half16Format kFp16Format{"fp16", 5, 10, 15, fp32_to_fp16, fp16_to_fp32};
const Half16Format kBf16Format{"bf16", 8, 7, 127, fp32_to_bf16, bf16_to_fp32};

// IEEE 754 value of a 16-bit code (sign clear), NaN / Inf included.
double ieee16_value(const Half16Format& f, uint32_t code) {
  const uint32_t e = code >> f.man_bits, m = code & ((1u << f.man_bits) - 1);
  const uint32_t e_max = (1u << f.exp_bits) - 1;
  if (e == e_max) return m == 0 ? inf_d() : nan_d();
  const double frac = std::ldexp(static_cast<double>(m), -f.man_bits);
  return e == 0 ? std::ldexp(frac, 1 - f.bias) : std::ldexp(1 + frac, static_cast<int>(e) - f.bias);
}

// Sorted positive levels: every finite code plus Inf placed where the next binade would start (2^(emax+1)).
// IEEE overflow: a value rounds to Inf iff, with an unbounded exponent, it would round to 2^(emax+1) or above,
// and 2^(emax+1)'s code (the Inf code) is even, so ties between max and it go to Inf: exactly this search.
std::vector<Level> ieee16_levels(const Half16Format& f) {
  std::vector<Level> levels;
  const uint32_t inf_code = ((1u << f.exp_bits) - 1) << f.man_bits;
  for (uint32_t c = 0; c < inf_code; ++c) levels.push_back({ieee16_value(f, c), c});
  levels.push_back({std::ldexp(1.0, (1 << (f.exp_bits - 1))), inf_code});
  return levels;
}

// Expected code, or -1 for "a quiet NaN of the same sign".
int ieee16_expected(const Half16Format& f, const std::vector<Level>& levels, float x) {
  if (std::isnan(x)) return -1;
  const int sign = std::signbit(x) ? 0x8000 : 0;
  if (std::isinf(x)) return sign | static_cast<int>(levels.back().code);
  return sign | static_cast<int>(nearest_by_bisection(levels, std::fabs(double{x})));
}

void check_ieee16(const Half16Format& f, const std::vector<Level>& levels, float x) {
  const int want = ieee16_expected(f, levels, x);
  const uint16_t got = f.encode(x);
  if (want < 0) {
    const uint32_t quiet = 1u << (f.man_bits - 1);
    ASSERT_TRUE(std::isnan(f.decode(got))) << f.name << " x bits 0x" << std::hex << bits_of(x);
    ASSERT_TRUE(got & quiet) << f.name << " NaN not quiet";
    ASSERT_EQ(got >> 15, bits_of(x) >> 31) << f.name << " NaN sign";
  } else {
    ASSERT_EQ(static_cast<int>(got), want) << f.name << " x=" << x << " (bits 0x" << std::hex << bits_of(x) << ")";
  }
#if defined(__FLT16_MAX__)
  // Where the compiler has _Float16 (GCC >= 12 on x86-64: a libgcc software conversion, no ISA flags needed), it
  // is a second, independent reference.
  if (f.man_bits == 10 && !std::isnan(x)) {
    const _Float16 h = static_cast<_Float16>(x);
    uint16_t hb;
    std::memcpy(&hb, &h, 2);
    ASSERT_EQ(got, hb) << "fp16 vs _Float16, x=" << x;
  }
#endif
}

class Ieee16 : public ::testing::TestWithParam<const Half16Format*> {};

TEST_P(Ieee16, DecodeAndRoundTripEveryCode) {
  const Half16Format& f = *GetParam();
  int nans = 0;
  for (uint32_t c = 0; c < 65536; ++c) {
    const uint16_t code = static_cast<uint16_t>(c);
    const double mag = ieee16_value(f, c & 0x7FFF);
    const float got = f.decode(code);
    if (std::isnan(mag)) {
      ++nans;
      ASSERT_TRUE(std::isnan(got)) << c;
      ASSERT_EQ(bits_of(got) >> 31, c >> 15) << c;
      // A quiet NaN keeps its payload through fp32 and back; a signalling one comes back quiet.
      const uint16_t back = f.encode(got);
      ASSERT_TRUE(std::isnan(f.decode(back))) << c;
      if (c & (1u << (f.man_bits - 1))) {
        ASSERT_EQ(back, code) << c;
      }
      continue;
    }
    const float want = static_cast<float>((c & 0x8000) ? -mag : mag);
    ASSERT_EQ(bits_of(got), bits_of(want)) << f.name << " code " << c;
    ASSERT_EQ(f.encode(got), code) << f.name << " code " << c;  // all 65536 codes round-trip (+-0, +-Inf too)
  }
  EXPECT_EQ(nans, 2 * ((1 << f.man_bits) - 1));
}

TEST_P(Ieee16, RoundToNearestEvenMatchesTableSearch) {
  const Half16Format& f = *GetParam();
  const std::vector<Level> levels = ieee16_levels(f);
  for (size_t i = 1; i < levels.size(); ++i) ASSERT_LT(levels[i - 1].value, levels[i].value);
  // Every level and midpoint, exactly and one float ulp either side, both signs.
  for (size_t i = 0; i + 1 < levels.size(); ++i) {
    const double mid = (levels[i].value + levels[i + 1].value) / 2;
    for (double p : {levels[i].value, mid}) {
      const float fp = static_cast<float>(p);
      if (static_cast<double>(fp) != p) continue;  // BF16's top midpoint (2^128 - 2^119) is a float, others too
      for (float v : {fp, std::nextafter(fp, kInf), std::nextafter(fp, -kInf)}) {
        check_ieee16(f, levels, v);
        check_ieee16(f, levels, -v);
      }
    }
    if (HasFatalFailure()) return;
  }
  for (float v : {0.0f, -0.0f, kInf, -kInf, kNan, -kNan, float_of(0x7FA00000u), float_of(0xFF800001u),
                  std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()})
    check_ieee16(f, levels, v);
  Rng rng(0xf16b16u + static_cast<uint64_t>(f.man_bits));
  for (int i = 0; i < 400000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng.next_u64());
    check_ieee16(f, levels, float_of(u));  // any bit pattern
    // Exponents within and around the format's range (FP16: 2^-27 .. 2^18), random mantissa and sign.
    const int e_lo = 1 - f.bias - f.man_bits - 3, e_hi = f.bias + 3;
    const int e = e_lo + static_cast<int>(rng.below(static_cast<uint64_t>(e_hi - e_lo + 1)));
    const int be = std::clamp(e + 127, 0, 254);
    check_ieee16(f, levels, float_of((u & 0x807FFFFFu) | (static_cast<uint32_t>(be) << 23)));
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, Ieee16, ::testing::Values(&kFp16Format, &kBf16Format),
                         [](const ::testing::TestParamInfo<const Half16Format*>& info) {
                           return std::string(info.param->name);
                         });

}  // namespace
}  // namespace quasr::formats
