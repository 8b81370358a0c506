#pragma once
// Internal to src/formats: the element codec of the formats with one free scale per block (integers, scaled
// minifloats, NF4) and the block quantizer with its scale estimators. quantize_scaled (quantize_scaled.cpp) and
// BlockCodec (block_codec.cpp, formats/block_codec.h) both use these, so a block is rounded one way only.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "format_impl.h"
#include "quasr/core/error.h"

namespace quasr::formats::detail {

// Element codec of one family, for one spec: turns a clipping range into a stored scale (+ zero point), and
// values into codes and back. All arithmetic that defines the result is here, used by quantize and dequantize.
class ScaledCodec {
 public:
  explicit ScaledCodec(const QuantSpec& spec) : spec_(spec), f_(traits(spec.format)) {
    const int b = f_.bits;
    if (f_.kind == FormatKind::kInteger) {
      if (spec.zero_point) {
        qlo_ = 0;
        qhi_ = (1 << b) - 1;
      } else {
        qhi_ = (1 << (b - 1)) - 1;
        qlo_ = spec.int_range == IntRange::kFull ? -(1 << (b - 1)) : -qhi_;
      }
    }
    if (f_.kind == FormatKind::kLookup) {
      const auto levels = nf4_levels();
      for (size_t i = 1; i < levels.size(); ++i) mids_.push_back(0.5 * (double(levels[i - 1]) + levels[i]));
    }
  }

  // Scale (before storage rounding) that maps the clipping range onto the code range.
  double real_scale(double lo, double hi, double amax) const {
    switch (f_.kind) {
      case FormatKind::kInteger:
        if (spec_.zero_point) return (std::max(hi, 0.0) - std::min(lo, 0.0)) / qhi_;
        if (spec_.int_range == IntRange::kFull) return amax / (std::ldexp(1.0, f_.bits - 1) - 0.5);
        return amax / qhi_;
      case FormatKind::kMinifloat: return amax / f_.element->max_finite();
      case FormatKind::kLookup: return amax;
      default: QUASR_ASSERT(false && "ScaledCodec: not a scaled format");
    }
    return 0;
  }

  // Zero point for the stored scale s (> 0): Z = round(-min(lo, 0) / s), clamped to the code range, so the
  // code Z decodes to exactly 0.
  uint8_t zero_point(double lo, float s) const {
    if (!spec_.zero_point || s == 0) return 0;
    const double z = round_integer(-std::min(lo, 0.0) / s, spec_.rounding);
    return static_cast<uint8_t>(std::clamp(z, 0.0, static_cast<double>(qhi_)));
  }

  uint8_t encode(float x, float s, uint8_t zp) const {
    if (s == 0) return zero_code();
    const float t = x / s;  // FP32 division, as a runtime quantizer computes it
    switch (f_.kind) {
      case FormatKind::kInteger: {
        const double q = std::clamp(round_integer(spec_.zero_point ? double(t) + zp : double(t), spec_.rounding),
                                    static_cast<double>(qlo_), static_cast<double>(qhi_));
        return static_cast<uint8_t>(static_cast<int>(q) & ((1 << f_.bits) - 1));  // two's complement b-bit
      }
      case FormatKind::kMinifloat: {
        // x / s can overflow FP32 only when a percentile/MSE scale is far below an outlier; saturate it here
        // so E5M2 (which has an Inf code) saturates like every other element format.
        const float m = static_cast<float>(f_.element->max_finite());
        return minifloat_encode(*f_.element, std::clamp(t, -m, m));
      }
      case FormatKind::kLookup: {
        // Nearest level; a value exactly between two levels goes to the lower one.
        return static_cast<uint8_t>(std::lower_bound(mids_.begin(), mids_.end(), double(t)) - mids_.begin());
      }
      default: QUASR_ASSERT(false);
    }
    return 0;
  }

  float decode(uint8_t code, float s, uint8_t zp) const {
    switch (f_.kind) {
      case FormatKind::kInteger: {
        int q = code;
        if (!spec_.zero_point && (q >> (f_.bits - 1))) q -= 1 << f_.bits;  // sign-extend
        return s * static_cast<float>(spec_.zero_point ? q - zp : q);
      }
      case FormatKind::kMinifloat: return s * minifloat_decode(*f_.element, code);
      case FormatKind::kLookup: return s * nf4_levels()[code];
      default: QUASR_ASSERT(false);
    }
    return 0;
  }

  uint8_t zero_code() const { return f_.kind == FormatKind::kLookup ? 7 : 0; }
  const FormatTraits& format() const { return f_; }

 private:
  const QuantSpec& spec_;
  const FormatTraits& f_;
  int qlo_ = 0, qhi_ = 0;
  std::vector<double> mids_;  // NF4 decision thresholds
};

struct BlockResult {
  float scale = 0;
  uint8_t zp = 0;
};

// Quantizes one block with the spec's estimator (max-abs, percentile, MSE search): returns its stored scale and
// zero point; `codes` receives one code per value. `scratch` is reused between calls (MSE search).
BlockResult quantize_block(const ScaledCodec& c, const QuantSpec& spec, std::span<const float> v, int64_t block,
                           std::span<uint8_t> codes, std::vector<uint8_t>& scratch);

}  // namespace quasr::formats::detail
