// Activation fake-quantization for the simulation path. Dynamic modes go through formats::quantize (the one
// reference quantizer), so simulated activations are exactly what the format defines.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <vector>

#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/minifloat.h"
#include "quasr/formats/traits.h"
#include "quasr/kernels/gemm.h"
#include "quasr/quant/quantized_weight.h"
#include "simulate_int_dot.h"

namespace quasr::quant {

using kernels::ActivationQuant;

formats::QuantSpec activation_spec(const ActivationQuant& a) {
  formats::QuantSpec s = formats::QuantSpec::defaults(a.format);
  s.scale_type = formats::ScaleType::kFp32;
  s.zero_point = false;
  s.rounding = formats::Rounding::kHalfEven;
  s.granularity = a.mode == ActivationQuant::Mode::kDynamicPerTensor
                      ? formats::Granularity{formats::GranularityKind::kPerTensor, 0, 0}
                      : formats::Granularity{formats::GranularityKind::kPerChannel, 0, 0};
  s.validate();
  return s;
}

void fake_quantize_activations(const ActivationQuant& a, const float* x, int64_t rows, int64_t cols, int64_t ldx,
                               float* out) {
  std::vector<float> dense(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) std::copy_n(x + r * ldx, cols, dense.data() + r * cols);
  if (a.mode == ActivationQuant::Mode::kNone) {
    std::copy(dense.begin(), dense.end(), out);
    return;
  }
  const auto& tr = formats::traits(a.format);
  if (a.mode == ActivationQuant::Mode::kStatic) {
    const float s = a.static_scale;
    if (!(s > 0) || !std::isfinite(s)) throw InvalidArgument("static activation scale must be positive and finite");
    parallel_for(0, rows * cols, 16384, [&](int64_t i0, int64_t i1) {
      if (tr.kind == formats::FormatKind::kInteger) {
        const float qmax = static_cast<float>((1 << (tr.bits - 1)) - 1);
        for (int64_t i = i0; i < i1; ++i) out[i] = std::clamp(std::nearbyint(dense[i] / s), -qmax, qmax) * s;
      } else {
        QUASR_ASSERT(tr.element != nullptr);
        for (int64_t i = i0; i < i1; ++i)
          out[i] = formats::minifloat_decode(*tr.element, formats::minifloat_encode(*tr.element, dense[i] / s)) * s;
      }
    });
    return;
  }
  const int64_t shape[2] = {rows, cols};
  const formats::QTensor q = formats::quantize(dense, shape, activation_spec(a));
  q.dequantize(std::span<float>(out, static_cast<size_t>(rows * cols)));
}

namespace {
// The integer weights of an integer QTensor: sign-extended codes, or code - zero point of its block.
std::vector<int16_t> integer_codes(const formats::QTensor& q) {
  const int bits = formats::traits(q.spec.format).bits;
  const auto codes = formats::unpack_bits(q.payload, bits, static_cast<size_t>(q.numel()));
  std::vector<int16_t> out(codes.size());
  const int levels = 1 << bits;
  if (q.spec.zero_point) {
    const auto zps = formats::unpack_bits(q.zero_points, bits, static_cast<size_t>(q.num_blocks()));
    for (size_t i = 0; i < codes.size(); ++i)
      out[i] = static_cast<int16_t>(int(codes[i]) - int(zps[formats::block_index(q.shape, q.spec.granularity, int64_t(i))]));
    return out;
  }
  for (size_t i = 0; i < codes.size(); ++i) out[i] = static_cast<int16_t>(codes[i] >= levels / 2 ? codes[i] - levels : codes[i]);
  return out;
}
std::vector<float> decoded_scales(const formats::QTensor& q) {
  const size_t n = static_cast<size_t>(q.num_blocks());
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = q.scales.data();
    switch (q.spec.scale_type) {
      case formats::ScaleType::kFp32: std::memcpy(&out[i], p + 4 * i, 4); break;
      case formats::ScaleType::kFp16: out[i] = formats::fp16_to_fp32(uint16_t(p[2 * i] | p[2 * i + 1] << 8)); break;
      case formats::ScaleType::kBf16: out[i] = formats::bf16_to_fp32(uint16_t(p[2 * i] | p[2 * i + 1] << 8)); break;
      default: QUASR_ASSERT(false && "integer formats store FP32/FP16/BF16 scales");
    }
  }
  return out;
}

using GroupDots = void (*)(const int16_t*, int64_t, int64_t, const int16_t*, int64_t, int64_t, int64_t, int64_t,
                           int32_t*);
GroupDots group_dots_for_this_cpu() {
  switch (best_isa()) {
    case Isa::Scalar: return detail::portable::group_dots;
    case Isa::Avx2:
    case Isa::AvxVnni: return detail::avx2::group_dots;
    default: return detail::avx512::group_dots;
  }
}

// Rows [K] of integer codes into [rows][Kp] int16 with each group padded to gp (the kernels' pairs).
void pad_groups(const int16_t* src, int64_t rows, int64_t K, int64_t group, int64_t gp, int16_t* dst) {
  const int64_t G = K / group;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < G; ++g) {
      std::copy_n(src + r * K + g * group, group, dst + (r * G + g) * gp);
      if (gp > group) dst[(r * G + g) * gp + group] = 0;
    }
}

constexpr int64_t kRowsPerChunk = 16;   // rows of x per kernel call (their codes stay in L1)
constexpr int64_t kBlocksPerChunk = 4;  // 16-channel blocks per task: 64 output channels
// Per-channel / per-tensor weights (one group) with at least this many rows go through the FP32 GEMM of the
// integer-valued codes instead: one long dot per output, where sgemm is faster than the int16 kernel; both
// compute the same exact integers (see simulate_integer_linear).
constexpr int64_t kSgemmMinRows = 64;
constexpr double kExactFloatIntegers = 16777216.0;  // 2^24: every integer below it is an FP32 value
}  // namespace

void prepare_integer_simulation(QuantizedWeight& q) {
  const formats::QTensor& w = q.qtensor;
  const bool int_act = q.act.mode != ActivationQuant::Mode::kNone &&
                       formats::traits(q.act.format).kind == formats::FormatKind::kInteger;
  if (!int_act || formats::traits(w.spec.format).kind != formats::FormatKind::kInteger ||
      w.shape.size() != 2 || (w.spec.granularity.kind == formats::GranularityKind::kPerChannel && w.spec.granularity.axis != 0))
    return;
  const int64_t N = w.shape[0], K = w.shape[1];
  IntegerSimulation& sim = q.sim;
  sim.group = w.spec.granularity.kind == formats::GranularityKind::kPerGroup ? w.spec.granularity.group : K;
  sim.group_padded = (sim.group + 1) / 2 * 2;
  sim.blocks = (N + detail::kSimLanes - 1) / detail::kSimLanes;
  const int64_t G = K / sim.group, gp = sim.group_padded, pairs = gp / 2;
  const std::vector<int16_t> codes = integer_codes(w);
  sim.max_abs = 0;
  for (int16_t c : codes) sim.max_abs = std::max<int32_t>(sim.max_abs, std::abs(int32_t{c}));
  // [blocks][G][pairs][16 lanes][2]; channels past N and the pad of an odd group stay 0.
  sim.packed.assign(static_cast<size_t>(sim.blocks * G * gp * detail::kSimLanes), 0);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t b = n / detail::kSimLanes, l = n % detail::kSimLanes;
    for (int64_t g = 0; g < G; ++g)
      for (int64_t i = 0; i < sim.group; ++i)
        sim.packed[static_cast<size_t>((((b * G + g) * pairs + i / 2) * detail::kSimLanes + l) * 2 + i % 2)] =
            codes[static_cast<size_t>(n * K + g * sim.group + i)];
  }
  std::vector<float> scales = decoded_scales(w);
  if (w.spec.granularity.kind == formats::GranularityKind::kPerTensor)
    scales.assign(static_cast<size_t>(N), scales.at(0));  // one per row, same arithmetic
  sim.scales.assign(static_cast<size_t>(sim.blocks * G * detail::kSimLanes), 0.0f);  // [blocks][G][16]
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g)
      sim.scales[static_cast<size_t>(((n / detail::kSimLanes) * G + g) * detail::kSimLanes + n % detail::kSimLanes)] =
          scales[static_cast<size_t>(n * G + g)];
}

void simulate_integer_linear(const QuantizedWeight& q, const float* x, int64_t rows, int64_t ldx, const float* bias,
                             float* y, int64_t ldy) {
  const IntegerSimulation& sim = q.sim;
  QUASR_ASSERT(!sim.packed.empty());
  const int64_t N = q.qtensor.shape[0], K = q.qtensor.shape[1], G = K / sim.group, gp = sim.group_padded;
  // The activation codes [rows][K] and their scales: formats::quantize (the reference quantizer) for dynamic modes.
  std::vector<int16_t> xq(static_cast<size_t>(rows * K));
  std::vector<float> sx(static_cast<size_t>(rows));
  if (q.act.mode == ActivationQuant::Mode::kStatic) {
    const float qmax = static_cast<float>((1 << (formats::traits(q.act.format).bits - 1)) - 1);
    for (int64_t r = 0; r < rows; ++r) {
      sx[r] = q.act.static_scale;
      for (int64_t k = 0; k < K; ++k)
        xq[r * K + k] = static_cast<int16_t>(std::clamp(std::nearbyint(x[r * ldx + k] / q.act.static_scale), -qmax, qmax));
    }
  } else {
    std::vector<float> dense(static_cast<size_t>(rows * K));
    for (int64_t r = 0; r < rows; ++r) std::copy_n(x + r * ldx, K, dense.data() + r * K);
    const int64_t shape[2] = {rows, K};
    const formats::QTensor a = formats::quantize(dense, shape, activation_spec(q.act));
    xq = integer_codes(a);
    const auto s = decoded_scales(a);
    for (int64_t r = 0; r < rows; ++r) sx[r] = s.size() == 1 ? s[0] : s[r];
  }
  // Every partial sum of a group's code products is an integer of magnitude at most sum|x codes| * max|w code|;
  // below 2^24 every such integer is an FP32 value, so an FP32 GEMM over the codes (in any order) and the int32
  // kernels give the same group sums exactly.
  int64_t l1_max = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t l1 = 0;
    for (int64_t k = 0; k < K; ++k) l1 += std::abs(int64_t{xq[r * K + k]});
    l1_max = std::max(l1_max, l1);
  }
  const bool float_exact = static_cast<double>(l1_max) * sim.max_abs < kExactFloatIntegers;
  // y = (sum over groups, in order, of acc_g * s_w,g) * s_x + bias for row r and the 16 channels of block b, with
  // acc_g(l) = acc[g * 16 + l]. The lane loop is the same two roundings per lane as a scalar loop (this file is
  // built without FMA, so a product and a sum are never contracted): vectorising it changes no bit.
  auto finish_block = [&](int64_t r, int64_t b, auto&& acc) {
    float sum[detail::kSimLanes] = {};
    for (int64_t g = 0; g < G; ++g) {
      const float* sc = sim.scales.data() + (b * G + g) * detail::kSimLanes;
      for (int64_t l = 0; l < detail::kSimLanes; ++l) sum[l] = sum[l] + acc(g * detail::kSimLanes + l) * sc[l];
    }
    const int64_t n0 = b * detail::kSimLanes, nn = std::min(detail::kSimLanes, N - n0);
    for (int64_t l = 0; l < nn; ++l) {
      const float v = sum[l] * sx[r];
      y[r * ldy + n0 + l] = bias ? v + bias[n0 + l] : v;
    }
  };

  if (G == 1 && rows >= kSgemmMinRows && float_exact) {
    std::vector<float> xf(xq.begin(), xq.end()), wf(static_cast<size_t>(N * K)), acc(static_cast<size_t>(rows * N));
    const int64_t pairs = gp / 2;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t b = n / detail::kSimLanes, l = n % detail::kSimLanes;
      for (int64_t k = 0; k < K; ++k)
        wf[n * K + k] = sim.packed[static_cast<size_t>(((b * pairs + k / 2) * detail::kSimLanes + l) * 2 + k % 2)];
    }
    kernels::sgemm(false, true, rows, N, K, 1.0f, xf.data(), K, wf.data(), K, 0.0f, acc.data(), N);
    parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t b = 0; b < sim.blocks; ++b) {
          const float* ar = acc.data() + r * N + b * detail::kSimLanes;
          const int64_t nn = std::min(detail::kSimLanes, N - b * detail::kSimLanes);
          finish_block(r, b, [&](int64_t l) { return l < nn ? ar[l] : 0.0f; });
        }
    });
    return;
  }
  std::vector<int16_t> xp(static_cast<size_t>(rows * G * gp));
  pad_groups(xq.data(), rows, K, sim.group, gp, xp.data());
  const GroupDots group_dots = group_dots_for_this_cpu();
  const int64_t chunks = (sim.blocks + kBlocksPerChunk - 1) / kBlocksPerChunk;
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<int32_t> sums(static_cast<size_t>(kRowsPerChunk * kBlocksPerChunk * G * detail::kSimLanes));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b0 = c * kBlocksPerChunk, b1 = std::min(sim.blocks, b0 + kBlocksPerChunk);
      for (int64_t r0 = 0; r0 < rows; r0 += kRowsPerChunk) {
        const int64_t nr = std::min(kRowsPerChunk, rows - r0);
        group_dots(xp.data() + r0 * G * gp, nr, G * gp, sim.packed.data(), b0, b1, G, gp, sums.data());
        for (int64_t i = 0; i < nr; ++i)
          for (int64_t b = b0; b < b1; ++b) {
            const int32_t* at = sums.data() + (i * (b1 - b0) + (b - b0)) * G * detail::kSimLanes;
            finish_block(r0 + i, b, [&](int64_t j) { return static_cast<float>(at[j]); });
          }
      }
    }
  });
}

}  // namespace quasr::quant
