#include "quasr/formats/minifloat.h"

#include <cmath>
#include <cstring>
#include <limits>

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

int exp_all_ones(const MinifloatSpec& s) { return (1 << s.exp_bits) - 1; }
int man_all_ones(const MinifloatSpec& s) { return (1 << s.man_bits) - 1; }

uint8_t nan_code(const MinifloatSpec& s) {
  // Positive quiet NaN: E4M3 0.1111.111, E5M2 0.11111.10 (IEEE: top mantissa bit set).
  if (s.special == SpecialValues::kOcpE4M3) return static_cast<uint8_t>((exp_all_ones(s) << s.man_bits) | man_all_ones(s));
  return static_cast<uint8_t>((exp_all_ones(s) << s.man_bits) | (1 << (s.man_bits - 1)));
}

// Magnitude code (no sign bit) of the largest finite value.
uint8_t max_code(const MinifloatSpec& s) {
  switch (s.special) {
    case SpecialValues::kNone: return static_cast<uint8_t>((exp_all_ones(s) << s.man_bits) | man_all_ones(s));
    case SpecialValues::kIeee: return static_cast<uint8_t>(((exp_all_ones(s) - 1) << s.man_bits) | man_all_ones(s));
    case SpecialValues::kOcpE4M3: return static_cast<uint8_t>((exp_all_ones(s) << s.man_bits) | (man_all_ones(s) - 1));
  }
  return 0;
}

double decode_magnitude(const MinifloatSpec& s, int e, int m) {
  if (e == 0) return std::ldexp(static_cast<double>(m), 1 - s.bias - s.man_bits);
  return std::ldexp(static_cast<double>((1 << s.man_bits) + m), e - s.bias - s.man_bits);
}

}  // namespace

double MinifloatSpec::max_finite() const {
  const uint8_t c = max_code(*this);
  return decode_magnitude(*this, c >> man_bits, c & man_all_ones(*this));
}
double MinifloatSpec::min_normal() const { return std::ldexp(1.0, 1 - bias); }
double MinifloatSpec::min_subnormal() const { return std::ldexp(1.0, 1 - bias - man_bits); }
int MinifloatSpec::emax() const { return (max_code(*this) >> man_bits) - bias; }

bool minifloat_is_nan(const MinifloatSpec& s, uint8_t code) {
  const int e = (code >> s.man_bits) & exp_all_ones(s), m = code & man_all_ones(s);
  switch (s.special) {
    case SpecialValues::kNone: return false;
    case SpecialValues::kIeee: return e == exp_all_ones(s) && m != 0;
    case SpecialValues::kOcpE4M3: return e == exp_all_ones(s) && m == man_all_ones(s);
  }
  return false;
}

float minifloat_decode(const MinifloatSpec& s, uint8_t code) {
  const bool neg = (code >> (s.exp_bits + s.man_bits)) & 1;
  const int e = (code >> s.man_bits) & exp_all_ones(s), m = code & man_all_ones(s);
  double v;
  if (minifloat_is_nan(s, code)) return std::numeric_limits<float>::quiet_NaN();
  if (s.special == SpecialValues::kIeee && e == exp_all_ones(s))
    v = std::numeric_limits<double>::infinity();
  else
    v = decode_magnitude(s, e, m);
  return static_cast<float>(neg ? -v : v);
}

uint8_t minifloat_encode(const MinifloatSpec& s, float x) {
  const uint8_t sign = static_cast<uint8_t>((bits_of(x) >> 31) << (s.exp_bits + s.man_bits));
  if (std::isnan(x)) return s.has_nan() ? nan_code(s) : 0;
  if (std::isinf(x)) {
    if (s.has_inf()) return sign | static_cast<uint8_t>(exp_all_ones(s) << s.man_bits);
    return sign | max_code(s);
  }
  const double ax = std::fabs(static_cast<double>(x));
  const double maxv = s.max_finite();
  if (ax >= maxv) return sign | max_code(s);
  // Quantum (spacing of representable values) at ax: subnormal spacing below min_normal, else 2^(e - M).
  int e2;
  std::frexp(ax, &e2);  // ax = f * 2^e2, f in [0.5, 1): floor(log2 ax) = e2 - 1
  const int unbiased = ax == 0 ? -1000 : e2 - 1;
  const int qexp = unbiased < 1 - s.bias ? 1 - s.bias - s.man_bits : unbiased - s.man_bits;
  // ax / 2^qexp is exact in double; nearbyint rounds half to even in the default rounding mode.
  const double n = std::nearbyint(std::ldexp(ax, -qexp));
  const double v = std::ldexp(n, qexp);  // <= maxv because maxv lies on the grid and ax < maxv
  if (v == 0) return sign;
  if (v < s.min_normal()) return sign | static_cast<uint8_t>(std::ldexp(v, -(1 - s.bias - s.man_bits)));
  std::frexp(v, &e2);
  const int ev = e2 - 1;
  const int mant = static_cast<int>(std::ldexp(v, -(ev - s.man_bits))) - (1 << s.man_bits);
  return sign | static_cast<uint8_t>(((ev + s.bias) << s.man_bits) | mant);
}

float e8m0_decode(uint8_t code) {
  if (code == kE8M0Nan) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, static_cast<int>(code) - 127);
}

uint8_t e8m0_from_exponent(int exponent) {
  if (exponent < -127) exponent = -127;
  if (exponent > 127) exponent = 127;
  return static_cast<uint8_t>(exponent + 127);
}

uint16_t fp32_to_fp16(float x) {
  const uint32_t u = bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t au = u & 0x7FFFFFFF;
  if (au > 0x7F800000) return sign | 0x7E00 | static_cast<uint16_t>((au >> 13) & 0x3FF);  // NaN, quiet
  if (au >= 0x477FF000) return sign | 0x7C00;  // >= 65520 rounds to Inf (IEEE overflow)
  if (au < 0x38800000) {                       // below 2^-14: subnormal half (or zero)
    // Exact: value / 2^-24 rounded half-even; float has enough precision for this product.
    const float scaled = float_of(au) * 16777216.0f;  // 2^24, exact scaling by a power of two
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  // Normal: rebias exponent, round mantissa 23 -> 10 bits half-even (carry may roll into the exponent).
  uint32_t h = ((au >> 13) - ((127 - 15) << 10));
  const uint32_t rest = au & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return sign | static_cast<uint16_t>(h);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return float_of(bits_of(v) | sign);
  }
  if (e == 31) return float_of(sign | 0x7F800000 | (m << 13));
  return float_of(sign | ((e + 127 - 15) << 23) | (m << 13));
}

uint16_t fp32_to_bf16(float x) {
  uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7FFF + ((u >> 16) & 1);  // round half to even; overflow carries into Inf as IEEE requires
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_fp32(uint16_t b) { return float_of(static_cast<uint32_t>(b) << 16); }

}  // namespace quasr::formats
