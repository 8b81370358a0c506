#pragma once
// A QuantSpec says how one tensor is quantized: format, granularity, scale storage type and estimator, integer
// range and rounding, zero point. It has a compact text form used on the command line and in recipes:
//
//   FORMAT[:OPTION]...     e.g.  int4:g128   int8:pc   int4:g64:zp   int8:pt:full:away   fp8_e4m3:pc
//                                mxfp4   nvfp4   nf4:g64   kmeans4:pc   int4:g128:mse   int8:pc:p99.9
//   granularity : pt (per-tensor) | pc (per-channel, axis 0) | pcN (per-channel along axis N) | gN (groups of N
//                 along the reduction axis, the last axis)
//   scale type  : s=fp32 | s=fp16 | s=bf16             (MX / NVFP4 fix theirs)
//   estimator   : max (default) | pP (percentile P of |x| per block, e.g. p99.9) | mse (search over clip ratios)
//   integers    : zp (affine with zero point) | full (symmetric full range) ; rounding: even (default) | away
//   codebooks   : iters=N, seed=N
// Unknown tokens and invalid combinations throw InvalidArgument naming the offending token.
#include <cstdint>
#include <string>
#include <string_view>

#include "quasr/formats/traits.h"

namespace quasr::formats {

enum class Rounding : uint8_t {
  kHalfEven,  // round(x/s) ties to even (default; what IEEE and most frameworks do)
  kHalfAway,  // floor(x/s + 0.5) for x >= 0, mirrored for x < 0 (the seed study's definition)
};
enum class IntRange : uint8_t {
  kRestricted,  // [-(2^(b-1)-1), 2^(b-1)-1], scale = absmax / (2^(b-1)-1): symmetric around 0
  kFull,        // [-2^(b-1), 2^(b-1)-1], scale = absmax / (2^(b-1) - 0.5) (PyTorch's symmetric full range)
};
enum class ScaleEstimator : uint8_t { kMaxAbs, kPercentile, kMse };

struct Granularity {
  GranularityKind kind = GranularityKind::kPerTensor;
  int axis = 0;        // per-channel: the axis that indexes scales (0 = output rows of a [out, in] weight)
  int64_t group = 0;   // per-group: elements per group along the last (reduction) axis
  bool operator==(const Granularity&) const = default;
};

struct QuantSpec {
  FormatId format = FormatId::kFp32;
  Granularity granularity;
  ScaleType scale_type = ScaleType::kNone;
  ScaleEstimator estimator = ScaleEstimator::kMaxAbs;
  double percentile = 99.99;  // for kPercentile, in (0, 100]
  bool zero_point = false;    // integers only: affine q = round(x/S + Z), q in [0, 2^b - 1]
  IntRange int_range = IntRange::kRestricted;
  Rounding rounding = Rounding::kHalfEven;
  int kmeans_iters = 25;      // Lloyd iterations for codebooks
  uint64_t seed = 0x9e3779b9;  // k-means++ seed

  // The format's defaults (granularity, group, scale type).
  static QuantSpec defaults(FormatId id);
  // Parse the text form above; throws InvalidArgument naming the bad token.
  static QuantSpec parse(std::string_view text);
  // Canonical text form; parse(to_string()) == *this.
  std::string to_string() const;
  // Throws InvalidArgument if the combination is not allowed for the format (the message lists what is).
  void validate() const;
  bool operator==(const QuantSpec&) const = default;
};

// Error bound of the max-abs estimator for this spec (its scale type); traits(id).tolerance is the value for
// QuantSpec::defaults(id). Same formulas, one place (traits.cpp).
ErrorBound error_bound(const QuantSpec& spec);

}  // namespace quasr::formats
