// The format-traits table: one row per FormatId. Everything else (QuantSpec::parse, `quasr formats`, size
// accounting, the tests) reads these rows; nothing else lists formats.
#include "quasr/formats/traits.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "format_impl.h"
#include "quasr/core/error.h"

namespace quasr::formats {
namespace {

using detail::dequantize_codebook;
using detail::dequantize_mx;
using detail::dequantize_nvfp4;
using detail::dequantize_scaled;
using detail::dequantize_storage;
using detail::quantize_codebook;
using detail::quantize_mx;
using detail::quantize_nvfp4;
using detail::quantize_scaled;
using detail::quantize_storage;

// bitsandbytes' NF4 table (QLoRA, Dettmers et al. 2023): quantiles of N(0,1) with an exact zero, normalised to
// [-1, 1]; 7 negative levels and 8 positive ones. These exact float constants are what bitsandbytes decodes.
constexpr std::array<float, 16> kNf4Levels = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

// Slack for float arithmetic: x / s is taken in double, but the decoded value is a product of floats
// (one or two roundings of 2^-24 each, relative to the block's absmax). 1e-6 covers it with room to spare.
constexpr double kArithmetic = 1e-6;

// Half the smallest subnormal step of a scale type: the absolute error of a scale that lands in the subnormal
// range (where the relative bound `scale_unit_roundoff` no longer holds).
double half_min_subnormal(ScaleType t) {
  switch (t) {
    case ScaleType::kFp16: return std::ldexp(1.0, -25);
    case ScaleType::kBf16: return std::ldexp(1.0, -134);
    case ScaleType::kFp32: return std::ldexp(1.0, -150);
    case ScaleType::kE4M3: return std::ldexp(1.0, -10);
    case ScaleType::kE8M0:
    case ScaleType::kNone: return 0;
  }
  return 0;
}

// The error-bound formulas, per family (derivations in docs/formats.md). `st` is the scale's storage type.
ErrorBound bound_for(FormatId id, FormatKind kind, int bits, const MinifloatSpec* e, ScaleType st) {
  const double u = scale_unit_roundoff(st), h = half_min_subnormal(st);
  ErrorBound b;
  switch (kind) {
    case FormatKind::kInteger: {
      // Restricted symmetric: s = amax/qmax; rounding costs <= s/2, and a scale stored rounded down makes the
      // block's extreme clip by <= qmax * |s - s_stored| <= u * amax. Full range (s = amax / (2^(b-1) - 1/2))
      // is smaller still. Affine: S = (max-min)/(2^b-1) <= 2 amax/(2^b-1); rounding and the zero point's
      // rounding each keep the error <= S/2, the stored scale adds (2^b-1)|S - S_stored| <= 2u amax.
      const double qmax = std::ldexp(1.0, bits - 1) - 1, levels = std::ldexp(1.0, bits) - 1;
      const double restricted = 0.5 / qmax * (1 + u) + u;
      const double affine = 1.0 / levels * (1 + u) + 2 * u;
      b.per_block = std::max(restricted, affine) + kArithmetic;
      b.absolute = std::ldexp(1.0, bits) * h;  // subnormal scale: up to 2^b codes times half its step
      break;
    }
    case FormatKind::kMinifloat: {
      // s = amax / max_finite: |x/s| <= max_finite, so the error is at most half an ulp of the top binade
      // (2^(emax - m - 1)) times the scale; the lower binades and subnormals have smaller ulps.
      const double half_ulp_top = std::ldexp(1.0, e->emax() - e->man_bits - 1);
      b.per_block = half_ulp_top / e->max_finite() * (1 + u) + u + kArithmetic;
      b.absolute = 2 * e->max_finite() * h;
      break;
    }
    case FormatKind::kMx: {
      // X = 2^(floor(log2 amax) - emax), so amax / X lies in [2^emax, 2^(emax+1)). Elements up to max_finite*X
      // round with error <= half an ulp of the top binade (2^(emax-m-1) X <= 2^(-m-1) amax); larger ones
      // saturate to max_finite*X, losing < amax - max_finite * amax / 2^(emax+1). E8M0 scales are exact.
      const double round = std::ldexp(1.0, -e->man_bits - 1);
      const double clip = 1.0 - e->max_finite() / std::ldexp(1.0, e->emax() + 1);
      b.per_block = std::max(round, clip) + kArithmetic;
      b.absolute = std::ldexp(e->max_finite(), -127);  // blocks whose exponent clamps at E8M0's 2^-127
      break;
    }
    case FormatKind::kNvfp4: {
      // Effective block scale s = E4M3(amax_b / (6 t)) * t with t = amax / 2688. E4M3 rounding: |s - amax_b/6|
      // <= 2^-4 amax_b/6 (normal) + 2^-10 t (subnormal step). Elements within 6s round with <= 1 * s (E2M1's
      // top-binade half ulp is 1); beyond it they clip by <= 6 |s - amax_b/6|. The larger of the two is
      // amax_b (1 + 2^-4)/6 + 6 * 2^-10 t, i.e. per_tensor = 6 * 2^-10 / 2688.
      b.per_block = (1 + std::ldexp(1.0, -4)) / 6 + kArithmetic;
      b.per_tensor = 6 * std::ldexp(1.0, -10) / (448.0 * 6.0);
      break;
    }
    case FormatKind::kLookup: {
      // s = amax, levels span [-1, 1]: the nearest level is within half the widest gap; stored-scale rounding
      // as for integers.
      double gap = 0;
      for (size_t i = 1; i < kNf4Levels.size(); ++i) gap = std::max(gap, double(kNf4Levels[i] - kNf4Levels[i - 1]));
      b.per_block = 0.5 * gap * (1 + u) + u + kArithmetic;
      b.absolute = 2 * h;
      break;
    }
    case FormatKind::kCodebook: {
      // Every centroid is a block value (k-means++ seed) or a mean of block values (Lloyd), so it lies in
      // [min, max] before FP16 rounding; any element is within max - min <= 2 amax of its nearest centroid.
      // A guarantee, not a typical value: the typical error is far smaller (tests compare MSE against INTb).
      b.per_block = 2 + std::ldexp(1.0, -11) + kArithmetic;
      b.absolute = std::ldexp(1.0, -25);
      break;
    }
    case FormatKind::kStorage:
      // Round to nearest: relative error <= unit roundoff for normal values, half the subnormal step below.
      if (id == FormatId::kFp16) {
        b.per_block = std::ldexp(1.0, -11);
        b.absolute = std::ldexp(1.0, -25);
      } else if (id == FormatId::kBf16) {
        b.per_block = std::ldexp(1.0, -8);
        b.absolute = std::ldexp(1.0, -134);
      }
      break;
  }
  return b;
}

struct RowInit {
  FormatId id;
  const char* name;
  const char* description;
  FormatKind kind;
  int bits;
  const MinifloatSpec* element;
  int fixed_block;
  ScaleType scale;
  GranularityKind granularity;
  int64_t group;
  FormatId pairs_with;
};

constexpr GranularityKind kPt = GranularityKind::kPerTensor, kPc = GranularityKind::kPerChannel,
                          kPg = GranularityKind::kPerGroup;

// Why these defaults: integers below 8 bits and the 6/4-bit float elements need groups to stay usable (g128 /
// g32, as GPTQ/AWQ and the MX block); INT8 and FP8 are fine per output channel. Scales are FP16 except for
// FP8 E5M2, whose scale amax/57344 falls below FP16's normal range for any block with amax < 3.5 (every weight
// block), so it gets BF16 (same 16 bits, FP32's exponent range). k-means is per tensor by default: a codebook
// of 2^b FP16 centroids per row would cost more than the codes for kmeans8 on 384-wide rows.
// pairs_with: the activation format of the native dot product the runtime pairs the weights with.
const std::array<RowInit, static_cast<size_t>(FormatId::kCount)> kRows = {{
    {FormatId::kInt2, "int2", "2-bit integer, symmetric or affine", FormatKind::kInteger, 2, nullptr, 0,
     ScaleType::kFp16, kPg, 128, FormatId::kInt8},
    {FormatId::kInt3, "int3", "3-bit integer, symmetric or affine", FormatKind::kInteger, 3, nullptr, 0,
     ScaleType::kFp16, kPg, 128, FormatId::kInt8},
    {FormatId::kInt4, "int4", "4-bit integer, symmetric or affine", FormatKind::kInteger, 4, nullptr, 0,
     ScaleType::kFp16, kPg, 128, FormatId::kInt8},
    {FormatId::kInt5, "int5", "5-bit integer, symmetric or affine", FormatKind::kInteger, 5, nullptr, 0,
     ScaleType::kFp16, kPg, 128, FormatId::kInt8},
    {FormatId::kInt6, "int6", "6-bit integer, symmetric or affine", FormatKind::kInteger, 6, nullptr, 0,
     ScaleType::kFp16, kPg, 128, FormatId::kInt8},
    {FormatId::kInt7, "int7", "7-bit integer, symmetric or affine", FormatKind::kInteger, 7, nullptr, 0,
     ScaleType::kFp16, kPg, 128, FormatId::kInt8},
    {FormatId::kInt8, "int8", "8-bit integer, symmetric or affine", FormatKind::kInteger, 8, nullptr, 0,
     ScaleType::kFp16, kPc, 0, FormatId::kInt8},
    {FormatId::kFp8E4M3, "fp8_e4m3", "OCP FP8 E4M3 (max 448), scale = amax/448", FormatKind::kMinifloat, 8,
     &kFp8E4M3, 0, ScaleType::kFp16, kPc, 0, FormatId::kFp8E4M3},
    {FormatId::kFp8E5M2, "fp8_e5m2", "OCP FP8 E5M2 (max 57344), scale = amax/57344", FormatKind::kMinifloat, 8,
     &kFp8E5M2, 0, ScaleType::kBf16, kPc, 0, FormatId::kFp8E4M3},
    {FormatId::kFp6E3M2, "fp6_e3m2", "OCP FP6 E3M2 (max 28), scale = amax/28", FormatKind::kMinifloat, 6,
     &kFp6E3M2, 0, ScaleType::kFp16, kPg, 32, FormatId::kFp32},
    {FormatId::kFp6E2M3, "fp6_e2m3", "OCP FP6 E2M3 (max 7.5), scale = amax/7.5", FormatKind::kMinifloat, 6,
     &kFp6E2M3, 0, ScaleType::kFp16, kPg, 32, FormatId::kFp32},
    {FormatId::kFp4E2M1, "fp4_e2m1", "OCP FP4 E2M1 (max 6), scale = amax/6", FormatKind::kMinifloat, 4,
     &kFp4E2M1, 0, ScaleType::kFp16, kPg, 32, FormatId::kFp32},
    {FormatId::kMxfp8E4M3, "mxfp8_e4m3", "OCP MX: 32 x E4M3 + E8M0 scale", FormatKind::kMx, 8, &kFp8E4M3, 32,
     ScaleType::kE8M0, kPg, 32, FormatId::kMxfp8E4M3},
    {FormatId::kMxfp8E5M2, "mxfp8_e5m2", "OCP MX: 32 x E5M2 + E8M0 scale", FormatKind::kMx, 8, &kFp8E5M2, 32,
     ScaleType::kE8M0, kPg, 32, FormatId::kMxfp8E4M3},
    {FormatId::kMxfp6E3M2, "mxfp6_e3m2", "OCP MX: 32 x E3M2 + E8M0 scale", FormatKind::kMx, 6, &kFp6E3M2, 32,
     ScaleType::kE8M0, kPg, 32, FormatId::kMxfp8E4M3},
    {FormatId::kMxfp6E2M3, "mxfp6_e2m3", "OCP MX: 32 x E2M3 + E8M0 scale", FormatKind::kMx, 6, &kFp6E2M3, 32,
     ScaleType::kE8M0, kPg, 32, FormatId::kMxfp8E4M3},
    {FormatId::kMxfp4, "mxfp4", "OCP MX: 32 x E2M1 + E8M0 scale", FormatKind::kMx, 4, &kFp4E2M1, 32,
     ScaleType::kE8M0, kPg, 32, FormatId::kMxfp8E4M3},
    {FormatId::kNvfp4, "nvfp4", "NVIDIA: 16 x E2M1 + E4M3 scale + FP32 tensor scale", FormatKind::kNvfp4, 4,
     &kFp4E2M1, 16, ScaleType::kE4M3, kPg, 16, FormatId::kNvfp4},
    {FormatId::kNf4, "nf4", "QLoRA NormalFloat4: 16 normal quantiles x absmax", FormatKind::kLookup, 4, nullptr, 0,
     ScaleType::kFp16, kPg, 64, FormatId::kFp32},
    {FormatId::kKmeans2, "kmeans2", "k-means codebook, 4 FP16 centroids", FormatKind::kCodebook, 2, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
    {FormatId::kKmeans3, "kmeans3", "k-means codebook, 8 FP16 centroids", FormatKind::kCodebook, 3, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
    {FormatId::kKmeans4, "kmeans4", "k-means codebook, 16 FP16 centroids", FormatKind::kCodebook, 4, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
    {FormatId::kKmeans6, "kmeans6", "k-means codebook, 64 FP16 centroids", FormatKind::kCodebook, 6, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
    {FormatId::kKmeans8, "kmeans8", "k-means codebook, 256 FP16 centroids", FormatKind::kCodebook, 8, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
    {FormatId::kFp16, "fp16", "IEEE half storage (saturates at 65504)", FormatKind::kStorage, 16, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
    {FormatId::kBf16, "bf16", "bfloat16 storage (saturates at 3.39e38)", FormatKind::kStorage, 16, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kBf16},
    {FormatId::kFp32, "fp32", "IEEE single storage (unquantized)", FormatKind::kStorage, 32, nullptr, 0,
     ScaleType::kNone, kPt, 0, FormatId::kFp32},
}};

std::array<FormatTraits, static_cast<size_t>(FormatId::kCount)> build_table() {
  std::array<FormatTraits, static_cast<size_t>(FormatId::kCount)> t{};
  for (size_t i = 0; i < kRows.size(); ++i) {
    const RowInit& r = kRows[i];
    QUASR_ASSERT(static_cast<size_t>(r.id) == i);  // rows in FormatId order: traits(id) indexes directly
    FormatTraits& f = t[i];
    f.id = r.id;
    f.name = r.name;
    f.description = r.description;
    f.kind = r.kind;
    f.bits = r.bits;
    f.element = r.element;
    f.fixed_block = r.fixed_block;
    f.scale = r.scale;
    f.default_granularity = r.granularity;
    f.default_group = r.group;
    f.allows_zero_point = r.kind == FormatKind::kInteger;
    f.allows_granularity = r.kind != FormatKind::kMx && r.kind != FormatKind::kNvfp4 &&
                           r.kind != FormatKind::kStorage;
    f.allows_estimator = r.kind == FormatKind::kInteger || r.kind == FormatKind::kMinifloat ||
                         r.kind == FormatKind::kLookup;
    f.pairs_with = r.pairs_with;
    f.tolerance = bound_for(r.id, r.kind, r.bits, r.element, r.scale);
    switch (r.kind) {
      case FormatKind::kInteger:
      case FormatKind::kMinifloat:
      case FormatKind::kLookup:
        f.quantize_ref = quantize_scaled;
        f.dequantize_ref = dequantize_scaled;
        break;
      case FormatKind::kMx:
        f.quantize_ref = quantize_mx;
        f.dequantize_ref = dequantize_mx;
        break;
      case FormatKind::kNvfp4:
        f.quantize_ref = quantize_nvfp4;
        f.dequantize_ref = dequantize_nvfp4;
        break;
      case FormatKind::kCodebook:
        f.quantize_ref = quantize_codebook;
        f.dequantize_ref = dequantize_codebook;
        break;
      case FormatKind::kStorage:
        f.quantize_ref = quantize_storage;
        f.dequantize_ref = dequantize_storage;
        break;
    }
  }
  return t;
}

const std::array<FormatTraits, static_cast<size_t>(FormatId::kCount)>& table() {
  static const auto t = build_table();
  return t;
}

}  // namespace

const char* scale_type_name(ScaleType t) {
  switch (t) {
    case ScaleType::kNone: return "none";
    case ScaleType::kFp32: return "fp32";
    case ScaleType::kFp16: return "fp16";
    case ScaleType::kBf16: return "bf16";
    case ScaleType::kE8M0: return "e8m0";
    case ScaleType::kE4M3: return "e4m3";
  }
  return "?";
}

int scale_type_bits(ScaleType t) {
  switch (t) {
    case ScaleType::kNone: return 0;
    case ScaleType::kFp32: return 32;
    case ScaleType::kFp16:
    case ScaleType::kBf16: return 16;
    case ScaleType::kE8M0:
    case ScaleType::kE4M3: return 8;
  }
  return 0;
}

double scale_unit_roundoff(ScaleType t) {
  switch (t) {
    case ScaleType::kFp32: return std::ldexp(1.0, -24);
    case ScaleType::kFp16: return std::ldexp(1.0, -11);
    case ScaleType::kBf16: return std::ldexp(1.0, -8);
    case ScaleType::kE4M3: return std::ldexp(1.0, -4);
    case ScaleType::kE8M0:
    case ScaleType::kNone: return 0;
  }
  return 0;
}

std::span<const float> nf4_levels() { return kNf4Levels; }

std::span<const FormatTraits> all_formats() { return table(); }

const FormatTraits& traits(FormatId id) {
  const auto i = static_cast<size_t>(id);
  if (i >= table().size()) throw InvalidArgument("unknown format id " + std::to_string(i));
  return table()[i];
}

const FormatTraits* find_format(std::string_view name) {
  for (const FormatTraits& f : table())
    if (name == f.name) return &f;
  return nullptr;
}

std::string format_names() {
  std::string s;
  for (const FormatTraits& f : table()) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

ErrorBound error_bound(const QuantSpec& spec) {
  const FormatTraits& f = traits(spec.format);
  return bound_for(f.id, f.kind, f.bits, f.element, spec.scale_type);
}

}  // namespace quasr::formats
