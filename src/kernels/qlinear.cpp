// Quantized-linear driver: the scalar reference (the arithmetic every kernel reproduces), the weight
// decomposition every kernel's prepare step starts from, the kernel registry and dispatch.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "../formats/format_impl.h"
#include "qlinear_internal.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/minifloat.h"
#include "quasr/kernels/gemm.h"

namespace quasr::kernels {

using formats::FormatKind;
using formats::GranularityKind;
using formats::QTensor;
using formats::ScaleType;
using Mode = ActivationQuant::Mode;

std::string ActivationQuant::to_string() const {
  if (mode == Mode::kNone) return "none";
  std::string s = formats::traits(format).name;
  switch (mode) {
    case Mode::kDynamicPerToken: return s + "-dyn-token";
    case Mode::kDynamicPerTensor: return s + "-dyn-tensor";
    case Mode::kStatic: return s + "-static";
    default: return s;
  }
}

namespace detail {

std::string decomposition_problem(const QTensor& w) {
  if (w.shape.size() != 2) return "weight must be 2-D [out, in], got rank " + std::to_string(w.shape.size());
  const auto& f = formats::traits(w.spec.format);
  if (f.kind == FormatKind::kStorage) return std::string("storage format ") + f.name + " is not quantized";
  const auto& g = w.spec.granularity;
  if (g.kind == GranularityKind::kPerChannel && g.axis != 0)
    return "per-channel scales along axis " + std::to_string(g.axis) + " (only axis 0, output channels)";
  if (f.bits > 8) return "more than 8 bits per code";
  return "";
}

WeightDecomposition decompose_weight(const QTensor& w) {
  if (const std::string why = decomposition_problem(w); !why.empty()) throw InvalidArgument("qlinear: " + why);
  const auto& f = formats::traits(w.spec.format);
  WeightDecomposition d;
  d.N = w.shape[0];
  d.K = w.shape[1];
  d.bits = f.bits;
  d.codes = formats::unpack_bits(w.payload, f.bits, static_cast<size_t>(d.N * d.K));
  const auto& g = w.spec.granularity;
  const bool codebook = f.kind == FormatKind::kCodebook;
  // Block structure along K: MX / NVFP4 fix it; codebooks have no scale (one group per row).
  d.group = d.K;
  if (f.fixed_block > 0) d.group = f.fixed_block;
  else if (!codebook && g.kind == GranularityKind::kPerGroup) d.group = g.group;
  d.groups_per_row = d.K / d.group;
  d.scales.assign(static_cast<size_t>(d.N * d.groups_per_row), 1.0f);
  std::vector<uint8_t> zps;
  if (w.spec.zero_point) {
    zps = formats::unpack_bits(w.zero_points, f.bits, static_cast<size_t>(w.num_blocks()));
    d.zero_points.assign(d.scales.size(), 0);
  }
  if (!codebook) {
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t j = 0; j < d.groups_per_row; ++j) {
        const int64_t block = formats::block_index(w.shape, w.spec.granularity, n * d.K + j * d.group);
        float s = 0;
        if (f.kind == FormatKind::kMx) s = formats::e8m0_decode(w.scales[block]);
        else if (f.kind == FormatKind::kNvfp4)
          s = formats::minifloat_decode(formats::kFp8E4M3, w.scales[block]) * w.tensor_scale;
        else s = formats::detail::read_scale(w.scales, block, w.spec.scale_type);
        d.scales[n * d.groups_per_row + j] = s;
        if (!zps.empty()) d.zero_points[n * d.groups_per_row + j] = zps[block];
      }
  }
  const int levels = 1 << f.bits;
  d.integer = f.kind == FormatKind::kInteger;
  if (codebook) {
    d.lut_per_channel = g.kind == GranularityKind::kPerChannel;
    d.lut.resize(w.codebook.size() / 2);
    for (size_t j = 0; j < d.lut.size(); ++j)
      d.lut[j] = formats::fp16_to_fp32(formats::detail::get_u16(w.codebook.data() + 2 * j));
  } else {
    d.lut.resize(levels);
    for (int c = 0; c < levels; ++c) {
      switch (f.kind) {
        case FormatKind::kInteger:  // codes of a zero-point format are unsigned
          d.lut[c] = static_cast<float>(!w.spec.zero_point && c >= levels / 2 ? c - levels : c);
          break;
        case FormatKind::kLookup: d.lut[c] = formats::nf4_levels()[c]; break;
        default: d.lut[c] = formats::minifloat_decode(*f.element, static_cast<uint8_t>(c)); break;
      }
    }
  }
  return d;
}

int activation_qmax(const ActivationQuant& act) {
  if (act.format == formats::FormatId::kInt8) return 127;
  if (act.format == formats::FormatId::kInt4) return 7;
  throw InvalidArgument(std::string("qlinear: activation format ") + formats::traits(act.format).name +
                        " is not supported for integer activations (supported: int8, int4)");
}

float activation_scale(float amax, int qmax) {
  // formats::quantize computes the restricted-range scale as amax / qmax in double, stored as FP32.
  return static_cast<float>(static_cast<double>(amax) / qmax);
}

void quantize_row_u8_scalar(const float* x, int64_t K, int64_t Kp, float scale, int qmax, uint8_t* out) {
  for (int64_t k = 0; k < K; ++k) {
    int q = 0;
    if (scale != 0) {
      const float t = x[k] / scale;  // FP32 division, as formats::quantize does
      q = static_cast<int>(std::clamp(std::nearbyint(static_cast<double>(t)), double(-qmax), double(qmax)));
    }
    out[k] = static_cast<uint8_t>(q + 128);
  }
  for (int64_t k = K; k < Kp; ++k) out[k] = 128;
}

IntGemmWeight pack_int_gemm(const WeightDecomposition& d, int64_t k_align) {
  QUASR_ASSERT(k_align > 0 && k_align % 4 == 0);
  IntGemmWeight p;
  p.N = d.N;
  p.K = d.K;
  p.Np = (d.N + 15) / 16 * 16;
  p.Kp = (d.K + k_align - 1) / k_align * k_align;
  p.group = d.group;
  p.groups = d.groups_per_row;
  p.nibbles = d.bits <= 4;
  const int64_t nblocks = p.Np / 16, k4s = p.Kp / 4;
  const int64_t step_bytes = p.nibbles ? 32 : 64;
  p.packed.assign(static_cast<size_t>(nblocks * k4s * step_bytes), 0);
  auto code_value = [&](int64_t n, int64_t k) -> int {
    if (n >= d.N || k >= d.K) return 0;
    return static_cast<int>(d.lut[d.codes[n * d.K + k]]);
  };
  for (int64_t nb = 0; nb < nblocks; ++nb)
    for (int64_t k4 = 0; k4 < k4s; ++k4) {
      uint8_t* dst = p.packed.data() + (nb * k4s + k4) * step_bytes;
      for (int e = 0; e < 64; ++e) {
        const int v = code_value(nb * 16 + e / 4, k4 * 4 + e % 4);
        if (!p.nibbles) dst[e] = static_cast<uint8_t>(static_cast<int8_t>(v));
        else dst[e % 32] |= static_cast<uint8_t>((v & 0xF) << (e < 32 ? 0 : 4));
      }
    }
  p.scales.assign(static_cast<size_t>(p.groups * p.Np), 0.0f);
  p.compensation.assign(static_cast<size_t>(p.groups * p.Np), 0);
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t n = 0; n < d.N; ++n) {
      p.scales[g * p.Np + n] = d.scales[n * d.groups_per_row + g];
      int32_t sum = 0;
      for (int64_t k = g * d.group; k < (g + 1) * d.group; ++k) sum += code_value(n, k);
      p.compensation[g * p.Np + n] = 128 * sum;
    }
  return p;
}

// The zero point of weight (n, k)'s block, 0 without zero points.
int32_t zero_point(const WeightDecomposition& d, int64_t n, int64_t k) {
  return d.zero_points.empty() ? 0 : d.zero_points[n * d.groups_per_row + k / d.group];
}

// The AVX2 integer kernels' layout: blocks of 16 channels x 2 k (channel c's pair at elements 2c, 2c + 1 of a
// 32-element step), N padded to Np and K to Kp with zeros, weight values code (or code - zero point); scales
// groups x Np, and for the shifted-u8 kernel the compensation 128 * (the group's sum of weights).
template <typename Weight>
Weight pack_channel_pairs(const WeightDecomposition& d) {
  QUASR_ASSERT(d.integer);
  Weight p;
  p.N = d.N;
  p.K = d.K;
  p.Np = (d.N + 15) / 16 * 16;
  p.Kp = (d.K + 15) / 16 * 16;
  p.group = d.group;
  p.groups = d.groups_per_row;
  p.w.assign(static_cast<size_t>(p.Np * p.Kp), 0);
  constexpr bool kCompensated = requires { p.compensation; };
  if constexpr (kCompensated) p.compensation.assign(static_cast<size_t>(p.groups * p.Np), 0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int32_t v = static_cast<int32_t>(d.lut[d.codes[n * p.K + k]]) - zero_point(d, n, k);
      p.w[((n / 16) * (p.Kp / 2) + k / 2) * 32 + (n % 16) * 2 + k % 2] = static_cast<typename decltype(p.w)::value_type>(v);
      if constexpr (kCompensated) p.compensation[(k / d.group) * p.Np + n] += 128 * v;
    }
  p.scales.assign(static_cast<size_t>(p.groups * p.Np), 0.0f);
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t n = 0; n < p.N; ++n) p.scales[g * p.Np + n] = d.scales[n * d.groups_per_row + g];
  return p;
}

Int16Weight pack_int16(const WeightDecomposition& d) { return pack_channel_pairs<Int16Weight>(d); }

Int4PairWeight pack_int4_pairs(const WeightDecomposition& d) {
  QUASR_ASSERT(d.bits <= 4 && d.zero_points.empty());  // int8 values in [-8, 7], so no vpmaddubsw pair saturates
  return pack_channel_pairs<Int4PairWeight>(d);
}

WeightOnlyWeight pack_weight_only(const WeightDecomposition& d, bool keep_codes) {
  QUASR_ASSERT(!keep_codes || d.zero_points.empty());  // the table kernels decode codes without zero points
  WeightOnlyWeight p;
  p.N = d.N;
  p.K = d.K;
  p.Kp = (d.K + 15) / 16 * 16;
  p.group = d.group;
  p.groups = d.groups_per_row;
  p.nibbles = d.bits <= 4;
  p.lut_size = p.nibbles ? 16 : 256;
  p.lut_per_channel = d.lut_per_channel;
  // Codes index a table of lut_size entries (unused entries 0); per-channel codebooks get one table per row.
  const int levels = 1 << d.bits;
  const int64_t tables = d.lut_per_channel ? d.N : 1;
  p.lut.assign(static_cast<size_t>(tables * p.lut_size), 0.0f);
  for (int64_t t = 0; t < tables; ++t)
    for (int c = 0; c < levels; ++c) p.lut[t * p.lut_size + c] = d.lut[t * levels + c];
  p.scales = d.scales;
  if (keep_codes) {
    const int64_t row_bytes = p.nibbles ? p.Kp / 2 : p.Kp;
    p.codes.assign(static_cast<size_t>(p.N * row_bytes), 0);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t k = 0; k < p.K; ++k) {
        const uint8_t c = d.codes[n * p.K + k];
        if (p.nibbles) {
          // Within each 8-byte chunk of 16 codes, code j sits at nibble (j % 2) * 8 + j / 2, so that one
          // 64-bit broadcast and one variable shift put code j in the low 4 bits of lane j (see qgemv_avx512).
          const int64_t j = k % 16, pos = (j % 2) * 8 + j / 2;
          p.codes[n * row_bytes + (k / 16) * 8 + pos / 2] |= static_cast<uint8_t>(c << (4 * (pos % 2)));
        }
        else p.codes[n * row_bytes + k] = c;
      }
  } else {
    p.dense.resize(static_cast<size_t>(p.N * p.K));
    for (int64_t n = 0; n < p.N; ++n) {
      const float* lut = p.lut.data() + (p.lut_per_channel ? n * p.lut_size : 0);
      for (int64_t k = 0; k < p.K; ++k)
        // code - zp is exact in float for codes of <= 8 bits.
        p.dense[n * p.K + k] =
            (lut[d.codes[n * p.K + k]] - static_cast<float>(zero_point(d, n, k))) * d.scales[n * p.groups + k / p.group];
    }
  }
  return p;
}

BlockedNibbleWeight pack_blocked_nibbles(const WeightDecomposition& d) {
  QUASR_ASSERT(d.bits <= 4 && !d.lut_per_channel && d.zero_points.empty());
  BlockedNibbleWeight p;
  p.N = d.N;
  p.K = d.K;
  p.Np = (d.N + 15) / 16 * 16;
  p.steps = (d.K + 7) / 8;
  p.group = d.group;
  p.groups = d.groups_per_row;
  p.lut.assign(16, 0.0f);
  for (int c = 0; c < (1 << d.bits); ++c) p.lut[c] = d.lut[c];
  p.codes.assign(static_cast<size_t>(p.Np / 16 * p.steps * 64), 0);
  p.scales.assign(static_cast<size_t>(p.Np * p.groups), 0.0f);
  for (int64_t n = 0; n < p.N; ++n) {
    const int64_t nb = n / 16, c = n % 16;
    for (int64_t k = 0; k < p.K; ++k) {
      uint8_t* dword = p.codes.data() + ((nb * p.steps + k / 8) * 16 + c) * 4;  // little-endian: nibble j of the
      dword[(k % 8) / 2] |= static_cast<uint8_t>(d.codes[n * p.K + k] << (4 * (k % 2)));  // dword is byte j / 2
    }
    for (int64_t g = 0; g < p.groups; ++g) p.scales[(nb * p.groups + g) * 16 + c] = d.scales[n * p.groups + g];
  }
  return p;
}

}  // namespace detail

// ---- reference -----------------------------------------------------------------------------------------------
namespace {

void check_linear_args(const QTensor& w, const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy) {
  if (w.shape.size() != 2) throw InvalidArgument("qlinear: weight must be 2-D [out, in]");
  if (M < 0) throw InvalidArgument("qlinear: M < 0");
  if (M > 0 && (!x || !y)) throw InvalidArgument("qlinear: null x or y");
  if (ldx < w.shape[1]) throw InvalidArgument("qlinear: ldx " + std::to_string(ldx) + " < K " +
                                              std::to_string(w.shape[1]));
  if (ldy < w.shape[0]) throw InvalidArgument("qlinear: ldy " + std::to_string(ldy) + " < N " +
                                              std::to_string(w.shape[0]));
}

// Rejects what the integer-activation path cannot compute, naming what it can.
std::string integer_path_problem(const QTensor& w, const ActivationQuant& act) {
  if (act.format != formats::FormatId::kInt8 && act.format != formats::FormatId::kInt4)
    return std::string("activation format ") + formats::traits(act.format).name +
           " (integer activations: int8, int4)";
  if (act.mode == Mode::kStatic && !(act.static_scale > 0 && std::isfinite(act.static_scale)))
    return "static activation scale must be finite and > 0";
  if (std::string why = detail::decomposition_problem(w); !why.empty()) return why;
  if (formats::traits(w.spec.format).kind != FormatKind::kInteger)
    return std::string("weight format ") + formats::traits(w.spec.format).name +
           " with integer activations (supported: int2..int8, symmetric or with zero points, per-tensor / "
           "per-channel / per-group)";
  // int32 accumulation: |sum| <= K * 127 * 255 must not overflow (codes - zero point are within +-255).
  if (w.shape[1] > 60000) return "K > 60000 would overflow the int32 accumulator";
  return "";
}

// Scales of the activation rows under `act` (amax given per row).
void activation_row_scales(const ActivationQuant& act, const float* amax, int64_t M, int qmax, float* scales) {
  if (act.mode == Mode::kStatic) {
    std::fill(scales, scales + M, act.static_scale);
  } else if (act.mode == Mode::kDynamicPerTensor) {
    float a = 0;
    for (int64_t m = 0; m < M; ++m) a = std::max(a, amax[m]);
    std::fill(scales, scales + M, detail::activation_scale(a, qmax));
  } else {
    for (int64_t m = 0; m < M; ++m) scales[m] = detail::activation_scale(amax[m], qmax);
  }
}

// The integer schemes' epilogue, the one definition of their float rounding (the reference and the kernels built on
// it; the VNNI kernel reproduces it with explicit-rounding intrinsics), for `count` (<= 16) consecutive output
// channels c of one row, group g's partial sum at acc[g * acc_stride + c] and weight scale at
// w_scales[g * scale_stride + c]:
// y[c] = (sum over groups, in order, of float(acc_g) * s_w,g) * s_x + bias[c], every operation one FP32 rounding
// (this file is compiled without FMA contraction).
void integer_epilogue(const int32_t* acc, int64_t acc_stride, const float* w_scales, int64_t scale_stride,
                      int64_t groups, int64_t count, float s_x, const float* bias, float* y) {
  QUASR_ASSERT(count <= 16);
  float sum[16] = {};
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < count; ++c) {
      const float part = static_cast<float>(acc[g * acc_stride + c]) * w_scales[g * scale_stride + c];
      sum[c] = sum[c] + part;
    }
  for (int64_t c = 0; c < count; ++c) {
    const float v = sum[c] * s_x;
    y[c] = bias ? v + bias[c] : v;
  }
}

}  // namespace

void qlinear_ref(const QTensor& w, const ActivationQuant& act, const float* x, int64_t M, int64_t ldx,
                 const float* bias, float* y, int64_t ldy) {
  check_linear_args(w, x, M, ldx, y, ldy);
  const int64_t N = w.shape[0], K = w.shape[1];
  if (act.mode == Mode::kNone) {
    const std::vector<float> wh = w.dequantize();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(x[m * ldx + k]) * double(wh[n * K + k]);
        y[m * ldy + n] = static_cast<float>(s) + (bias ? bias[n] : 0.0f);
      }
    return;
  }
  if (const std::string why = integer_path_problem(w, act); !why.empty())
    throw InvalidArgument("qlinear_ref: " + why);
  const detail::WeightDecomposition d = detail::decompose_weight(w);
  const int qmax = detail::activation_qmax(act);
  std::vector<float> amax(M, 0.0f), scales(M);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) amax[m] = std::max(amax[m], std::fabs(x[m * ldx + k]));
  activation_row_scales(act, amax.data(), M, qmax, scales.data());
  std::vector<uint8_t> xq(K);
  std::vector<int32_t> acc(static_cast<size_t>(d.groups_per_row));
  for (int64_t m = 0; m < M; ++m) {
    detail::quantize_row_u8_scalar(x + m * ldx, K, K, scales[m], qmax, xq.data());
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t g = 0; g < d.groups_per_row; ++g) {
        const int32_t zp = detail::zero_point(d, n, g * d.group);
        acc[g] = 0;
        for (int64_t k = g * d.group; k < (g + 1) * d.group; ++k)
          acc[g] += (int32_t(xq[k]) - 128) * (static_cast<int32_t>(d.lut[d.codes[n * K + k]]) - zp);
      }
      integer_epilogue(acc.data(), 1, d.scales.data() + n * d.groups_per_row, 1, d.groups_per_row, 1, scales[m],
                       bias ? bias + n : nullptr, y + m * ldy + n);
    }
  }
}

// ---- registry ------------------------------------------------------------------------------------------------
struct PreparedWeight {
  const KernelInfo* kernel = nullptr;
  int64_t N = 0, K = 0;
  QTensor source;                 // reference kernel only
  ActivationQuant act;
  detail::IntGemmWeight ig;
  detail::Int16Weight i16;
  detail::Int4PairWeight i4p;
  detail::WeightOnlyWeight wo;
  detail::BlockedNibbleWeight bw;
};

namespace {

using RejectFn = std::string (*)(const QTensor&, const ActivationQuant&);
using PrepareFn = void (*)(const QTensor&, PreparedWeight&);
using RunFn = void (*)(const PreparedWeight&, const float*, int64_t, int64_t, const float*, float*, int64_t);

std::string reject_ref(const QTensor& w, const ActivationQuant& act) {
  if (w.shape.size() != 2) return "weight must be 2-D";
  if (act.mode == Mode::kNone) return "";
  return integer_path_problem(w, act);
}
// The VNNI-layout kernels (VNNI, AVX-VNNI, AMX): symmetric integer weights of the given width, groups a multiple
// of group_multiple (the k a kernel step takes: 4 for vpdpbusd, 64 for an AMX tile row).
std::string reject_int(const QTensor& w, const ActivationQuant& act, bool four_bit, int64_t group_multiple) {
  if (act.mode == Mode::kNone) return "weight-only (FP32 activations); this kernel quantizes activations";
  if (std::string why = integer_path_problem(w, act); !why.empty()) return why;
  if (w.spec.zero_point) return "zero points (symmetric weights only; reference_scalar computes zero points)";
  const int bits = formats::traits(w.spec.format).bits;
  if (four_bit != (bits <= 4)) return four_bit ? "weights wider than 4 bits" : "weights of 4 bits or fewer";
  const auto& g = w.spec.granularity;
  if (g.kind == GranularityKind::kPerGroup && g.group % group_multiple != 0)
    return "group " + std::to_string(g.group) + " is not a multiple of " + std::to_string(group_multiple);
  return "";
}
std::string reject_a8_avx2(const QTensor& w, const ActivationQuant& act) {
  if (act.mode == Mode::kNone) return "weight-only (FP32 activations); this kernel quantizes activations";
  if (std::string why = integer_path_problem(w, act); !why.empty()) return why;
  const auto& g = w.spec.granularity;
  if (g.kind == GranularityKind::kPerGroup && g.group % 16 != 0)
    return "group " + std::to_string(g.group) + " is not a multiple of 16";
  return "";
}
std::string reject_a8w4_avx2(const QTensor& w, const ActivationQuant& act) {
  if (std::string why = reject_a8_avx2(w, act); !why.empty()) return why;
  if (w.spec.zero_point) return "zero points (symmetric weights only; a8_int16_avx2 computes zero points)";
  if (formats::traits(w.spec.format).bits > 4) return "weights wider than 4 bits";
  return "";
}
std::string reject_a8w8(const QTensor& w, const ActivationQuant& a) { return reject_int(w, a, false, 4); }
std::string reject_a8w4(const QTensor& w, const ActivationQuant& a) { return reject_int(w, a, true, 4); }
std::string reject_a8w8_amx(const QTensor& w, const ActivationQuant& a) { return reject_int(w, a, false, 64); }
std::string reject_a8w4_amx(const QTensor& w, const ActivationQuant& a) { return reject_int(w, a, true, 64); }

std::string reject_wo_common(const QTensor& w, const ActivationQuant& act) {
  if (act.mode != Mode::kNone) return "integer activations; this kernel is weight-only";
  return detail::decomposition_problem(w);
}
std::string reject_wo_lut(const QTensor& w, const ActivationQuant& act, bool four_bit) {
  if (std::string why = reject_wo_common(w, act); !why.empty()) return why;
  if (w.spec.zero_point) return "zero points (the table decode is symmetric; wo_dequant_sgemm computes them)";
  const auto& f = formats::traits(w.spec.format);
  if (four_bit != (f.bits <= 4)) return four_bit ? "codes wider than 4 bits" : "codes of 4 bits or fewer";
  const int64_t group = f.fixed_block > 0 ? f.fixed_block
                        : (f.kind != FormatKind::kCodebook && w.spec.granularity.kind == GranularityKind::kPerGroup)
                            ? w.spec.granularity.group
                            : 0;
  if (group % 16 != 0) return "group " + std::to_string(group) + " is not a multiple of 16";
  return "";
}
std::string reject_wo4(const QTensor& w, const ActivationQuant& a) { return reject_wo_lut(w, a, true); }
std::string reject_wo8(const QTensor& w, const ActivationQuant& a) { return reject_wo_lut(w, a, false); }
std::string reject_wo4_blocked(const QTensor& w, const ActivationQuant& a) {
  if (std::string why = reject_wo4(w, a); !why.empty()) return why;
  if (formats::traits(w.spec.format).kind == FormatKind::kCodebook &&
      w.spec.granularity.kind == GranularityKind::kPerChannel)
    return "a codebook per output channel (16 channels share one vpermps table; wo4_lut_f32_avx512 takes it)";
  return "";
}

void prepare_ref(const QTensor& w, PreparedWeight& p) { p.source = w; }
void run_ref(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
             int64_t ldy) {
  qlinear_ref(p.source, p.act, x, M, ldx, bias, y, ldy);
}

void prepare_int(const QTensor& w, PreparedWeight& p) { p.ig = detail::pack_int_gemm(detail::decompose_weight(w)); }
template <typename T>
void grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

template <typename Code>
struct QuantizedRows {
  const Code* codes;    // M rows, Kp apart
  const float* scales;  // M
};

// The integer drivers' activation quantization: per-row scales under `act` and the codes `quantize_rows` writes,
// into per-thread scratch that is grown and kept (a fresh M x Kp buffer per call cost a zero fill and page faults,
// a tenth of the GEMM's time at M = 1500). Per-token scales are found and applied 16 rows at a time, while those
// rows are in cache, so x is read from memory once. Valid until this thread's next call.
template <typename Code, void (*row_absmax)(const float*, int64_t, int64_t, int64_t, float*),
          void (*quantize_rows)(const float*, int64_t, int64_t, int64_t, int64_t, const float*, int, Code*)>
QuantizedRows<Code> quantize_activations(const ActivationQuant& act, const float* x, int64_t M, int64_t ldx,
                                         int64_t K, int64_t Kp, int64_t row_multiple = 1) {
  const int qmax = detail::activation_qmax(act);
  thread_local std::vector<float> amax, scales;
  thread_local std::vector<Code> codes;
  grow(amax, M);
  grow(scales, M);
  const int64_t padded_rows = (M + row_multiple - 1) / row_multiple * row_multiple;
  grow(codes, padded_rows * Kp);
  // Rows past M (read by kernels that load whole tiles of rows, their results discarded) hold code 0.
  std::fill(codes.begin() + M * Kp, codes.begin() + padded_rows * Kp, Code{128});
  // Plain pointers for the workers: inside the lambda the thread_local names would be each worker's own buffers.
  float* const row_amax = amax.data();
  float* const row_scales = scales.data();
  Code* const out = codes.data();
  const bool per_token = act.mode == ActivationQuant::Mode::kDynamicPerToken;
  if (act.mode == ActivationQuant::Mode::kDynamicPerTensor) row_absmax(x, M, ldx, K, row_amax);
  if (!per_token) activation_row_scales(act, row_amax, M, qmax, row_scales);
  parallel_for(0, (M + 15) / 16, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t m0 = 16 * c0; m0 < std::min(M, 16 * c1); m0 += 16) {
      const int64_t rows = std::min<int64_t>(16, M - m0);
      if (per_token) {
        row_absmax(x + m0 * ldx, rows, ldx, K, row_amax + m0);
        activation_row_scales(act, row_amax + m0, rows, qmax, row_scales + m0);
      }
      quantize_rows(x + m0 * ldx, rows, ldx, K, Kp, row_scales + m0, qmax, out + m0 * Kp);
    }
  });
  return {out, row_scales};
}

void run_int_avx512vnni(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias,
                        float* y, int64_t ldy) {
  const auto& w = p.ig;
  const auto q = quantize_activations<uint8_t, detail::avx512vnni::row_absmax, detail::avx512vnni::quantize_rows_u8>(
      p.act, x, M, ldx, w.K, w.Kp);
  detail::avx512vnni::int_gemm(w, q.codes, q.scales, M, bias, y, ldy);
}

// AMX: K padded to the tiles' 64. Below kAmxMinRows rows the VNNI kernel, which reads the same layout, is faster
// (both are bit-identical to the reference): timed on the Xeon of docs/benchmarks.md, 1 thread, the GEMM alone
// on 5 Whisper shapes, VNNI time / AMX time was 0.40-1.06 at M = 1-2, 0.87-1.14 at M = 3-4 (VNNI's 4-row tile
// is a full tile there) and 1.04-2.07 from M = 5 (beam 5's decoder steps) on; with 4-bit weights (int4 g128,
// 4 shapes) 0.45-0.85 at M = 3-4 and 0.97-1.05 at M = 5-8, so one threshold serves both.
constexpr int64_t kAmxMinRows = 5;
void prepare_int_amx(const QTensor& w, PreparedWeight& p) {
  p.ig = detail::pack_int_gemm(detail::decompose_weight(w), 64);
}
void run_int_amx(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                 int64_t ldy) {
  const auto& w = p.ig;
  const auto q = quantize_activations<uint8_t, detail::avx512vnni::row_absmax, detail::avx512vnni::quantize_rows_u8>(
      p.act, x, M, ldx, w.K, w.Kp, 16);
  if (M < kAmxMinRows) detail::avx512vnni::int_gemm(w, q.codes, q.scales, M, bias, y, ldy);
  else detail::amx::int_gemm(w, q.codes, q.scales, M, bias, y, ldy);
}

void prepare_int16(const QTensor& w, PreparedWeight& p) { p.i16 = detail::pack_int16(detail::decompose_weight(w)); }
void prepare_int4_pairs(const QTensor& w, PreparedWeight& p) {
  p.i4p = detail::pack_int4_pairs(detail::decompose_weight(w));
}

// The AVX2 integer kernels' driver: per-row activation codes (Code: int16 or shifted u8), then tasks of 16 channels
// x all rows, the block's weights staying in cache while the rows stream past, kRows at a time (each weight load
// serves them all), and the reference's epilogue over the block's channels.
template <typename Weight, typename Code, int64_t kRows,
          void (*quantize_rows)(const float*, int64_t, int64_t, int64_t, int64_t, const float*, int, Code*),
          void (*block_sums)(const Weight&, const Code*, int64_t, int64_t, int32_t*)>
void run_int_avx2(const Weight& w, const ActivationQuant& act, const float* x, int64_t M, int64_t ldx,
                  const float* bias, float* y, int64_t ldy) {
  const auto q = quantize_activations<Code, detail::avx2::row_absmax, quantize_rows>(act, x, M, ldx, w.K, w.Kp);
  const int64_t G = w.groups;
  parallel_for(0, w.Np / 16, 1, [&](int64_t b0, int64_t b1) {
    std::vector<int32_t> acc(static_cast<size_t>(kRows * G * 16));
    for (int64_t nb = b0; nb < b1; ++nb) {
      const int64_t n0 = nb * 16, count = std::min<int64_t>(16, w.N - n0);
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const int64_t rows = std::min(kRows, M - m0);
        block_sums(w, q.codes + m0 * w.Kp, rows, nb, acc.data());
        for (int64_t r = 0; r < rows; ++r)
          integer_epilogue(acc.data() + r * G * 16, 16, w.scales.data() + n0, w.Np, G, count, q.scales[m0 + r],
                           bias ? bias + n0 : nullptr, y + (m0 + r) * ldy + n0);
      }
    }
  });
}
void run_int16_avx2(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                    int64_t ldy) {
  run_int_avx2<detail::Int16Weight, int16_t, detail::kInt16TileRows, detail::avx2::quantize_rows_i16,
               detail::avx2::int16_block_sums>(p.i16, p.act, x, M, ldx, bias, y, ldy);
}
void run_int_avxvnni(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                     int64_t ldy) {
  run_int_avx2<detail::IntGemmWeight, uint8_t, detail::kIntVnniTileRows, detail::avx2::quantize_rows_u8,
               detail::avxvnni::int_block_sums>(p.ig, p.act, x, M, ldx, bias, y, ldy);
}
void run_int4_pairs_avx2(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias,
                         float* y, int64_t ldy) {
  run_int_avx2<detail::Int4PairWeight, uint8_t, detail::kInt4PairTileRows, detail::avx2::quantize_rows_u8,
               detail::avx2::int4_pair_block_sums>(p.i4p, p.act, x, M, ldx, bias, y, ldy);
}

void prepare_wo_codes(const QTensor& w, PreparedWeight& p) {
  p.wo = detail::pack_weight_only(detail::decompose_weight(w), true);
}
void prepare_wo_dense(const QTensor& w, PreparedWeight& p) {
  p.wo = detail::pack_weight_only(detail::decompose_weight(w), false);
}

// Rows of W decoded per panel when M is large: the panel (kPanelRows x K floats) is reused by all M rows.
constexpr int64_t kPanelRows = 256;
constexpr int64_t kGemvMaxM = 8;

using GemvFn = void (*)(const detail::WeightOnlyWeight&, const float*, int64_t, int64_t, const float*, float*, int64_t,
                        int64_t, int64_t);
using DecodeRowsFn = void (*)(const detail::WeightOnlyWeight&, int64_t, int64_t, float*);

// Large M: panels of kPanelRows decoded rows, each reused by all M rows through sgemm.
template <typename Weight, void (*decode_rows)(const Weight&, int64_t, int64_t, float*)>
void gemm_decoded_panels(const Weight& w, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                         int64_t ldy) {
  std::vector<float> panel(static_cast<size_t>(kPanelRows * w.K));
  for (int64_t n0 = 0; n0 < w.N; n0 += kPanelRows) {
    const int64_t n1 = std::min(w.N, n0 + kPanelRows);
    parallel_for(n0, n1, 8, [&](int64_t a, int64_t b) { decode_rows(w, a, b, panel.data() + (a - n0) * w.K); });
    sgemm(false, true, M, n1 - n0, w.K, 1.0f, x, ldx, panel.data(), w.K, 0.0f, y + n0, ldy);
    if (bias)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = n0; n < n1; ++n) y[m * ldy + n] += bias[n];
  }
}

// The table-decoding kernels' driver: a GEMV over the codes for the decoder's small M, otherwise panels of decoded
// rows through sgemm.
template <GemvFn gemv, DecodeRowsFn decode_rows>
void run_wo_lut(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                int64_t ldy) {
  const auto& w = p.wo;
  if (M <= kGemvMaxM) {
    // Streams the codes once; ~64 output channels per task keeps tasks large enough to amortize scheduling.
    const int64_t grain = std::max<int64_t>(16, 262144 / std::max<int64_t>(w.K, 1));
    parallel_for(0, w.N, grain, [&](int64_t n0, int64_t n1) { gemv(w, x, M, ldx, bias, y, ldy, n0, n1); });
    return;
  }
  gemm_decoded_panels<detail::WeightOnlyWeight, decode_rows>(w, x, M, ldx, bias, y, ldy);
}
constexpr RunFn run_wo_avx512 = run_wo_lut<detail::avx512::weight_only_gemv, detail::avx512::decode_rows>;

void prepare_wo4_blocked(const QTensor& w, PreparedWeight& p) {
  p.bw = detail::pack_blocked_nibbles(detail::decompose_weight(w));
}
// As run_wo_lut, on the channel-blocked layout: the GEMV's tasks are whole blocks of 16 channels.
void run_wo4_blocked(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                     int64_t ldy) {
  const auto& w = p.bw;
  if (M <= kGemvMaxM) {
    // Tasks of ~256k codes, as run_wo_lut's.
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(w.K, 1));
    parallel_for(0, w.Np / 16, grain, [&](int64_t b0, int64_t b1) {
      detail::avx512::blocked_gemv(w, x, M, ldx, bias, y, ldy, b0, b1);
    });
    return;
  }
  gemm_decoded_panels<detail::BlockedNibbleWeight, detail::avx512::blocked_decode_rows>(w, x, M, ldx, bias, y, ldy);
}
constexpr RunFn run_wo4_avx2 = run_wo_lut<detail::avx2::weight_only_gemv4, detail::avx2::decode_rows4>;

void run_wo_dense(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
                  int64_t ldy) {
  const auto& w = p.wo;
  sgemm(false, true, M, w.N, w.K, 1.0f, x, ldx, w.dense.data(), w.K, 0.0f, y, ldy);
  if (bias)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < w.N; ++n) y[m * ldy + n] += bias[n];
}

struct Entry {
  KernelInfo info;
  RejectFn reject;
  PrepareFn prepare;
  RunFn run;
};

// In order of preference: prepare_weight takes the first entry this CPU runs that accepts the weight.
const Entry kEntries[] = {
    {{"a8w8_gemm_amx", Isa::Amx, true,
      "int5..int8 symmetric weights, per-tensor / per-channel / per-group (group % 64 == 0); int8/int4 activations; "
      "AMX-INT8 tiles (M < 5: the AVX512-VNNI kernel on the same layout)"},
     reject_a8w8_amx, prepare_int_amx, run_int_amx},
    {{"a8w4_gemm_amx", Isa::Amx, true,
      "int2..int4 symmetric weights, same granularities; int8/int4 activations; nibbles expanded to int8 once per "
      "64-channel task, then AMX-INT8 tiles (M < 5: the AVX512-VNNI kernel)"},
     reject_a8w4_amx, prepare_int_amx, run_int_amx},
    {{"a8w8_gemm_avx512vnni", Isa::Avx512Vnni, true,
      "int5..int8 symmetric weights, per-tensor / per-channel / per-group (group % 4 == 0); int8/int4 activations"},
     reject_a8w8, prepare_int, run_int_avx512vnni},
    {{"a8w4_gemm_avx512vnni", Isa::Avx512Vnni, true,
      "int2..int4 symmetric weights (nibbles unpacked in registers), same granularities; int8/int4 activations"},
     reject_a8w4, prepare_int, run_int_avx512vnni},
    {{"a8w8_gemm_avxvnni", Isa::AvxVnni, true,
      "int5..int8 symmetric weights, per-tensor / per-channel / per-group (group % 4 == 0); int8/int4 activations; "
      "256-bit VEX vpdpbusd, for CPUs with AVX-VNNI but no AVX-512 (Alder Lake and later)"},
     reject_a8w8, prepare_int, run_int_avxvnni},
    {{"a8w4_gemm_avxvnni", Isa::AvxVnni, true,
      "int2..int4 symmetric weights (nibbles unpacked in registers), same granularities; int8/int4 activations; "
      "256-bit VEX vpdpbusd"},
     reject_a8w4, prepare_int, run_int_avxvnni},
    {{"a8w4_maddubs_avx2", Isa::Avx2, true,
      "int2..int4 symmetric weights, per-tensor / per-channel / per-group (group % 16 == 0); int8/int4 activations; "
      "u8 x s8 multiply-adds (vpmaddubsw) summed exactly in int16 over 16 k, for CPUs without VNNI"},
     reject_a8w4_avx2, prepare_int4_pairs, run_int4_pairs_avx2},
    {{"a8_int16_avx2", Isa::Avx2, true,
      "int2..int8 weights, symmetric or with zero points, per-tensor / per-channel / per-group (group % 16 == 0); "
      "int8/int4 activations; int16 multiply-adds (vpmaddwd), for CPUs without VNNI"},
     reject_a8_avx2, prepare_int16, run_int16_avx2},
    {{"wo4_blocked_f32_avx512", Isa::Avx512, false,
      "codes of <= 4 bits (int2-4, fp4, mxfp4, nvfp4, nf4, kmeans2-4 per tensor) decoded by one 16-entry table, "
      "16 channels per vector (no horizontal sums); group % 16 == 0"},
     reject_wo4_blocked, prepare_wo4_blocked, run_wo4_blocked},
    {{"wo4_lut_f32_avx512", Isa::Avx512, false,
      "codes of <= 4 bits (int2-4, fp4, mxfp4, nvfp4, nf4, kmeans2-4) decoded by 16-entry table; group % 16 == 0"},
     reject_wo4, prepare_wo_codes, run_wo_avx512},
    {{"wo8_lut_f32_avx512", Isa::Avx512, false,
      "codes of 5..8 bits (int5-8, fp8, fp6, mxfp8/6, kmeans6/8) decoded by 256-entry table; group % 16 == 0"},
     reject_wo8, prepare_wo_codes, run_wo_avx512},
    {{"wo4_lut_f32_avx2", Isa::Avx2, false,
      "codes of <= 4 bits (int2-4, fp4, mxfp4, nvfp4, nf4, kmeans2-4) decoded by two 8-entry vpermps and a blend; "
      "group % 16 == 0; for CPUs without AVX-512"},
     reject_wo4, prepare_wo_codes, run_wo4_avx2},
    {{"wo_dequant_sgemm", Isa::Scalar, false,
      "any weight-only format, zero points included: dequantized to FP32 at prepare time, then sgemm (4x the memory)"},
     [](const QTensor& w, const ActivationQuant& a) { return reject_wo_common(w, a); }, prepare_wo_dense,
     run_wo_dense},
    {{"reference_scalar", Isa::Scalar, false, "every combination qlinear_ref computes (the reference itself)"},
     reject_ref, prepare_ref, run_ref},
};

// The registry's public list: kEntries' infos, in order, built on first use (static initialization order across
// files is unspecified, and test registration reads the registry at start-up).
template <size_t... I>
std::array<KernelInfo, sizeof...(I)> infos_of(std::index_sequence<I...>) {
  return {kEntries[I].info...};
}
const std::array<KernelInfo, std::size(kEntries)>& infos() {
  static const auto list = infos_of(std::make_index_sequence<std::size(kEntries)>{});
  return list;
}

const Entry& entry_of(const KernelInfo& k) {
  for (const Entry& e : kEntries)
    if (std::strcmp(e.info.name, k.name) == 0) return e;
  throw InvalidArgument(std::string("qlinear: unknown kernel ") + k.name);
}

std::shared_ptr<const PreparedWeight> prepare_with(const Entry& e, const QTensor& w, const ActivationQuant& act) {
  auto p = std::make_shared<PreparedWeight>();
  p->kernel = &infos()[static_cast<size_t>(&e - kEntries)];
  p->act = act;
  p->N = w.shape.at(0);
  p->K = w.shape.at(1);
  e.prepare(w, *p);
  return p;
}

}  // namespace

std::span<const KernelInfo> kernel_registry() { return infos(); }

bool kernel_runnable(const KernelInfo& k) {
  return isa_supported(k.isa) && static_cast<int>(k.isa) <= static_cast<int>(best_isa());
}

std::string kernel_rejects(const KernelInfo& k, const QTensor& w, const ActivationQuant& act) {
  return entry_of(k).reject(w, act);
}

std::shared_ptr<const PreparedWeight> prepare_weight_for(const KernelInfo& k, const QTensor& w,
                                                         const ActivationQuant& act) {
  const Entry& e = entry_of(k);
  if (!kernel_runnable(e.info))
    throw InvalidArgument(std::string("qlinear: kernel ") + k.name + " needs " + isa_name(e.info.isa) +
                          ", which this CPU (or QUASR_ISA) does not allow");
  if (const std::string why = e.reject(w, act); !why.empty())
    throw InvalidArgument(std::string("qlinear: kernel ") + k.name + " cannot run " + w.spec.to_string() +
                          " with activations " + act.to_string() + ": " + why);
  return prepare_with(e, w, act);
}

std::shared_ptr<const PreparedWeight> prepare_weight(const QTensor& w, const ActivationQuant& act, Isa max_isa) {
  std::string reasons;
  for (const Entry& e : kEntries) {
    if (static_cast<int>(e.info.isa) > static_cast<int>(max_isa) || !isa_supported(e.info.isa)) continue;
    const std::string why = e.reject(w, act);
    if (why.empty()) return prepare_with(e, w, act);
    reasons += std::string("\n  ") + e.info.name + ": " + why;
  }
  throw InvalidArgument("qlinear: no kernel for weight " + w.spec.to_string() + " with activations " +
                        act.to_string() + ":" + reasons);
}

std::string kernel_name(const PreparedWeight& p) { return p.kernel->name; }

void qlinear(const PreparedWeight& p, const float* x, int64_t M, int64_t ldx, const float* bias, float* y,
             int64_t ldy) {
  const int64_t N = p.N, K = p.K;
  if (M < 0 || (M > 0 && (!x || !y)) || ldx < K || ldy < N)
    throw InvalidArgument("qlinear: bad arguments (M " + std::to_string(M) + ", ldx " + std::to_string(ldx) +
                          " for K " + std::to_string(K) + ", ldy " + std::to_string(ldy) + " for N " +
                          std::to_string(N) + ")");
  if (M == 0) return;
  entry_of(*p.kernel).run(p, x, M, ldx, bias, y, ldy);
}

}  // namespace quasr::kernels
