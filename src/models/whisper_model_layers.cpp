#include "whisper_model_layers.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/release.h"
#include "quasr/formats/minifloat.h"
#include "quasr/kernels/gemm.h"
#include "quasr/kernels/qlinear.h"
#include "quasr/quant/hadamard.h"
#include "whisper_math.h"

namespace quasr::models::detail {

const MathKernels& math_kernels() {
  static const MathKernels& k = []() -> const MathKernels& {
    const Isa isa = best_isa();
    if (isa >= Isa::Avx512) return avx512::kMath;
    if (isa >= Isa::Avx2) return avx2::kMath;
    return baseline::kMath;
  }();
  return k;
}

Linear Linear::from(io::Tensor&& w, io::Tensor* b) {
  QUASR_ASSERT(!w.shape.empty());
  Linear l;
  l.out = w.shape[0];
  l.in = w.numel() / l.out;
  l.weight = std::move(w.values);
  if (b) {
    QUASR_ASSERT(static_cast<int64_t>(b->values.size()) == l.out);
    l.bias = std::move(b->values);
  }
  return l;
}

bool Linear::store_as_fp16_if_exact() {
  if (quant || weight.empty()) return false;
  std::vector<uint16_t> bits(weight.size());
  std::atomic<bool> exact{true};
  parallel_for(0, static_cast<int64_t>(weight.size()), 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1 && exact.load(std::memory_order_relaxed); ++i) {
      bits[i] = formats::fp32_to_fp16(weight[i]);
      // Compared as bits: -0 must stay -0, and a NaN payload that does not survive keeps the layer in FP32.
      const float back = formats::fp16_to_fp32(bits[i]);
      if (std::memcmp(&back, &weight[i], sizeof back) != 0) exact.store(false, std::memory_order_relaxed);
    }
  });
  if (!exact) return false;
  weight_f16 = std::move(bits);
  release(weight);
  return true;
}

void Linear::weight_row(int64_t r, float* dst) const {
  if (!weight_f16.empty()) {
    for (int64_t c = 0; c < in; ++c) dst[c] = formats::fp16_to_fp32(weight_f16[r * in + c]);
    return;
  }
  if (weight.empty() && quant) {  // a natively run quantized embedding: decode the one row from its codes
    formats::slice_rows(quant->qtensor, r, r + 1).dequantize(std::span<float>(dst, static_cast<size_t>(in)));
    return;
  }
  std::copy_n(weight.data() + r * in, in, dst);
}

std::vector<float> Linear::take_weight() {
  std::vector<float> w = std::move(weight);
  release(weight);
  if (!weight_f16.empty()) {
    w.resize(weight_f16.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = formats::fp16_to_fp32(weight_f16[i]);
    release(weight_f16);
  }
  return w;
}

void Linear::forward(const float* x, int64_t rows, int64_t ldx, float* y, int64_t ldy) const {
  if (observer) observer->observe(name, x, rows, ldx, in);
  std::vector<float> scaled;
  if (!input_scale.empty()) {
    scaled.resize(static_cast<size_t>(rows * in));
    parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * ldx;
        float* sr = scaled.data() + r * in;
        for (int64_t j = 0; j < in; ++j) sr[j] = xr[j] * input_scale[j];
      }
    });
    x = scaled.data();
    ldx = in;
  }
  if (quant && quant->input_hadamard_block > 0) {  // rotate=hadamard: x H, against the stored Q(W H)
    if (scaled.empty()) {
      scaled.resize(static_cast<size_t>(rows * in));
      for (int64_t r = 0; r < rows; ++r) std::copy(x + r * ldx, x + r * ldx + in, scaled.data() + r * in);
      x = scaled.data();
      ldx = in;
    }
    quant::hadamard_rotate_rows(scaled.data(), rows, in, in, quant->input_hadamard_block);
  }
  std::vector<float> fake_quantized;
  if (quant) {
    if (quant->prepared) {
      kernels::qlinear(*quant->prepared, x, rows, ldx, bias.empty() ? nullptr : bias.data(), y, ldy);
      return;
    }
    if (!quant->sim.empty()) {
      quant::simulate_integer_linear(*quant, x, rows, ldx, bias.empty() ? nullptr : bias.data(), y, ldy);
      return;
    }
    if (quant->act.mode != kernels::ActivationQuant::Mode::kNone) {
      fake_quantized.resize(static_cast<size_t>(rows * in));
      quant::fake_quantize_activations(quant->act, x, rows, in, ldx, fake_quantized.data());
      x = fake_quantized.data();
      ldx = in;
    }
  }
  if (!weight_f16.empty())
    kernels::sgemm_f16w(rows, out, in, x, ldx, weight_f16.data(), in, y, ldy);
  else
    kernels::sgemm(false, true, rows, out, in, 1.0f, x, ldx, weight.data(), in, 0.0f, y, ldy);
  if (bias.empty()) return;
  parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* yr = y + r * ldy;
      for (int64_t j = 0; j < out; ++j) yr[j] += bias[j];
    }
  });
}

LayerNorm LayerNorm::from(io::Tensor&& g, io::Tensor&& b) {
  QUASR_ASSERT(g.values.size() == b.values.size());
  return LayerNorm{std::move(g.values), std::move(b.values)};
}

void LayerNorm::forward(const float* x, int64_t rows, float* y) const {
  const int64_t d = static_cast<int64_t>(gamma.size());
  parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      float* yr = y + r * d;
      float mean = 0;
      for (int64_t j = 0; j < d; ++j) mean += xr[j];
      mean /= static_cast<float>(d);
      float var = 0;
      for (int64_t j = 0; j < d; ++j) var += (xr[j] - mean) * (xr[j] - mean);
      var /= static_cast<float>(d);
      const float inv = 1.0f / std::sqrt(var + 1e-5f);
      for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * inv * gamma[j] + beta[j];
    }
  });
}

void gelu_inplace(float* x, int64_t n) {
  const MathKernels& k = math_kernels();
  parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) { k.gelu(x + i0, i1 - i0); });
}

void add_inplace(float* y, const float* x, int64_t n) {
  parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] += x[i];
  });
}

namespace {
void softmax_row(float* s, int64_t n_valid, int64_t cols) {
  math_kernels().softmax(s, n_valid);
  for (int64_t j = n_valid; j < cols; ++j) s[j] = 0.0f;
}
}  // namespace

void softmax_rows(float* s, int64_t rows, int64_t cols, int64_t ld, const int64_t* valid) {
  parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) softmax_row(s + r * ld, valid ? valid[r] : cols, cols);
  });
}

void attention(const AttentionShape& a, const float* q, const float* k, const float* v, float* out) {
  // Query blocks bound the score buffer (block x nk) and give the pool enough tasks when there are few heads.
  constexpr int64_t kBlock = 256;
  const int64_t n_blocks = (a.nq + kBlock - 1) / kBlock;
  const int64_t tasks = a.n_seq * a.n_heads * n_blocks;
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.d_head));
  parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> scores;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t blk = t % n_blocks, h = (t / n_blocks) % a.n_heads, s = t / (n_blocks * a.n_heads);
      const int64_t i0 = blk * kBlock, ni = std::min(kBlock, a.nq - i0);
      // Keys a causal block can see: up to causal_offset + last query of the block.
      const int64_t nk = a.causal_offset >= 0 ? std::min(a.nk, a.causal_offset + i0 + ni) : a.nk;
      scores.resize(static_cast<size_t>(ni * nk));
      const float* qs = q + s * a.q_seq_stride + i0 * a.ldq + h * a.d_head;
      const float* ks = k + s * a.kv_seq_stride + h * a.d_head;
      const float* vs = v + s * a.kv_seq_stride + h * a.d_head;
      float* os = out + s * a.out_seq_stride + i0 * a.ldo + h * a.d_head;
      kernels::sgemm(false, true, ni, nk, a.d_head, scale, qs, a.ldq, ks, a.ldk, 0.0f, scores.data(), nk);
      for (int64_t i = 0; i < ni; ++i) {
        const int64_t valid = a.causal_offset >= 0 ? std::min(nk, a.causal_offset + i0 + i + 1) : nk;
        softmax_row(scores.data() + i * nk, valid, nk);
      }
      kernels::sgemm(false, false, ni, a.d_head, nk, 1.0f, scores.data(), nk, vs, a.ldk, 0.0f, os, a.ldo);
    }
  });
}

}  // namespace quasr::models::detail
