#pragma once
// The one format-traits table. Every number format quasr knows is a row here; the CLI parser, `quasr formats`,
// size reports, the container writer, the kernel registry and the tests all read this table and nothing else.
// A test (tests/formats/test_traits.cpp) asserts that every row has every entry.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "quasr/formats/minifloat.h"

namespace quasr::formats {

struct QTensor;
struct QuantSpec;

enum class FormatId : uint8_t {
  kInt2, kInt3, kInt4, kInt5, kInt6, kInt7, kInt8,
  kFp8E4M3, kFp8E5M2, kFp6E3M2, kFp6E2M3, kFp4E2M1,
  kMxfp8E4M3, kMxfp8E5M2, kMxfp6E3M2, kMxfp6E2M3, kMxfp4,
  kNvfp4,
  kNf4,
  kKmeans2, kKmeans3, kKmeans4, kKmeans6, kKmeans8,
  kFp16, kBf16, kFp32,
  kCount
};

// How an element code becomes a value before scaling.
enum class FormatKind : uint8_t {
  kInteger,    // q in an integer range, x = s * (q - z)
  kMinifloat,  // q is a minifloat code, x = s * decode(q)
  kMx,         // OCP MX: minifloat elements, blocks of 32, E8M0 power-of-two scale
  kNvfp4,      // E2M1 elements, blocks of 16, E4M3 block scale, FP32 tensor scale
  kLookup,     // q indexes a fixed table of levels (NF4), x = s * levels[q]
  kCodebook,   // q indexes learned centroids (k-means), x = centroids[q]; no scale
  kStorage,    // FP16 / BF16 / FP32: the value itself, no scale
};

// Storage type of a scale. E8M0 and E4M3 are fixed by the MX / NVFP4 definitions.
enum class ScaleType : uint8_t { kNone, kFp32, kFp16, kBf16, kE8M0, kE4M3 };
const char* scale_type_name(ScaleType t);
int scale_type_bits(ScaleType t);

enum class GranularityKind : uint8_t { kPerTensor, kPerChannel, kPerGroup };

// Worst-case reconstruction error of quantize->dequantize with the max-abs estimator, as a bound
//   |x - x_hat| <= block_absmax * per_block + tensor_absmax * per_tensor + absolute
// for every element x of a finite tensor (for the storage formats: within the format's finite range, since
// larger values saturate). Rounding of the stored scale is included (relative: the scale type's unit roundoff;
// `absolute`: what a subnormal scale or centroid can add, e.g. code_max * 2^-25 for FP16). Derivations per
// family are in docs/formats.md and next to each formula in traits.cpp. Tests check every format and granularity
// against it.
struct ErrorBound {
  double per_block = 0;
  double per_tensor = 0;
  double absolute = 0;
};

struct FormatTraits {
  FormatId id;
  const char* name;          // CLI name: "int4", "fp8_e4m3", "mxfp4", "nvfp4", "nf4", "kmeans4", "bf16", ...
  const char* description;   // one line for `quasr formats`
  FormatKind kind;
  int bits;                  // bits per stored element code
  const MinifloatSpec* element;  // element codec for minifloat-based formats, else nullptr
  int fixed_block;           // 32 (MX), 16 (NVFP4): the format fixes its block; 0 = any granularity
  ScaleType scale;           // default (for MX / NVFP4: the only) scale type; kNone for codebooks/storage
  GranularityKind default_granularity;
  int64_t default_group;     // group size when the default granularity is per-group
  bool allows_zero_point;    // integer formats only
  bool allows_granularity;   // false where the format fixes it (MX, NVFP4, storage)
  bool allows_estimator;     // percentile / MSE scale search applies (false for MX/NVFP4/codebooks/storage)
  FormatId pairs_with;       // activation format its native dot product pairs with (int8 x int8, fp8 x fp8, else fp32)
  ErrorBound tolerance;      // see ErrorBound, for the default scale type; error_bound(spec) for other ones
  // Reference quantizer and dequantizer for this row (the only code that writes model files).
  QTensor (*quantize_ref)(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);
  void (*dequantize_ref)(const QTensor& q, std::span<float> out);
};

std::span<const FormatTraits> all_formats();
// Relative rounding error of a scale stored as `t` (unit roundoff: 2^-24 FP32, 2^-11 FP16, 2^-8 BF16, 2^-4 E4M3;
// 0 for E8M0 powers of two and kNone).
double scale_unit_roundoff(ScaleType t);
// The 16 NF4 levels of QLoRA (bitsandbytes' table), ascending, in [-1, 1]; index 7 is exactly 0.
std::span<const float> nf4_levels();
const FormatTraits& traits(FormatId id);
// nullptr if unknown.
const FormatTraits* find_format(std::string_view name);
// All names, comma-separated, for error messages that list what is supported.
std::string format_names();

}  // namespace quasr::formats
