#pragma once
// Element codecs for the small floating-point formats: FP8 E4M3 / E5M2, FP6 E3M2 / E2M3, FP4 E2M1, the E8M0
// power-of-two scale of the OCP MX spec, and FP16 / BF16 as storage formats.
//
// Conversion rules (float -> code), identical for every minifloat:
//   * round to nearest, ties to even, with subnormals;
//   * finite values beyond the largest finite value saturate to +-max (no overflow to Inf or NaN);
//   * +-Inf -> +-Inf where the format has an Inf encoding (E5M2), else +-max;
//   * NaN -> the format's NaN code where it has one (E4M3: 0x7F, E5M2: 0x7E), else +0 (FP6, FP4 have no NaN).
//     Tensor quantizers reject non-finite input before it gets here, so the +0 case is only reachable by
//     calling the element codec directly;
//   * -0 keeps its sign bit.
// FP16 and BF16 follow IEEE 754 exactly (overflow -> Inf, NaN stays NaN, quiet bit set).
#include <cstdint>

namespace quasr::formats {

// How the top exponent field is used.
enum class SpecialValues : uint8_t {
  kNone,      // every code is finite (FP6, FP4: OCP MX spec)
  kIeee,      // exponent all-ones: mantissa 0 = Inf, else NaN (E5M2)
  kOcpE4M3,   // only S.1111.111 is NaN; no Inf (OCP FP8 E4M3)
};

struct MinifloatSpec {
  const char* name;
  int exp_bits;
  int man_bits;
  int bias;
  SpecialValues special;

  constexpr int bits() const { return 1 + exp_bits + man_bits; }
  constexpr int num_codes() const { return 1 << bits(); }
  // Largest finite value (448 for E4M3, 57344 for E5M2, 28 for E3M2, 7.5 for E2M3, 6 for E2M1).
  double max_finite() const;
  // Smallest positive normal and subnormal values.
  double min_normal() const;
  double min_subnormal() const;
  // Exponent of the largest normal binade (emax_elem in the OCP MX spec: 8, 15, 4, 2, 2).
  int emax() const;
  bool has_nan() const { return special != SpecialValues::kNone; }
  bool has_inf() const { return special == SpecialValues::kIeee; }
};

inline constexpr MinifloatSpec kFp8E4M3{"fp8_e4m3", 4, 3, 7, SpecialValues::kOcpE4M3};
inline constexpr MinifloatSpec kFp8E5M2{"fp8_e5m2", 5, 2, 15, SpecialValues::kIeee};
inline constexpr MinifloatSpec kFp6E3M2{"fp6_e3m2", 3, 2, 3, SpecialValues::kNone};
inline constexpr MinifloatSpec kFp6E2M3{"fp6_e2m3", 2, 3, 1, SpecialValues::kNone};
inline constexpr MinifloatSpec kFp4E2M1{"fp4_e2m1", 2, 1, 1, SpecialValues::kNone};

// Code -> value (exact). NaN codes decode to quiet NaN, Inf codes to +-Inf.
float minifloat_decode(const MinifloatSpec& spec, uint8_t code);
// Value -> code, by the rules at the top of this file.
uint8_t minifloat_encode(const MinifloatSpec& spec, float x);
bool minifloat_is_nan(const MinifloatSpec& spec, uint8_t code);

// E8M0 (OCP MX shared scale): value 2^(code-127); code 255 is NaN. No sign, no mantissa.
inline constexpr uint8_t kE8M0Nan = 0xFF;
float e8m0_decode(uint8_t code);
// Power-of-two exponent -> code, clamped to the representable range [-127, 127].
uint8_t e8m0_from_exponent(int exponent);

// IEEE half and bfloat16 (round to nearest even).
uint16_t fp32_to_fp16(float x);
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float x);
float bf16_to_fp32(uint16_t b);

}  // namespace quasr::formats
