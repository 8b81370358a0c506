// KV caches at FP32 / FP16 / INT8 / FP8 E4M3 and attention over them (kv_cache.h); the size formula
// (quasr/models/kv_cache.h). Quantization goes through formats::quantize, the one reference quantizer, so a cached
// row is exactly what the formats module defines for that format and granularity.
#include "kv_cache.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/formats/minifloat.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/models/kv_cache.h"
#include "whisper_math.h"

namespace quasr::models {

int64_t kv_row_bytes(quant::KvPrecision p, int n_heads, int64_t d_head) {
  if (n_heads < 1 || d_head < 1)
    throw InvalidArgument("KV cache row needs n_heads >= 1 and d_head >= 1, got " + std::to_string(n_heads) +
                          " x " + std::to_string(d_head));
  const int64_t values = n_heads * d_head;
  switch (p) {
    case quant::KvPrecision::kFp32: return values * 4;
    case quant::KvPrecision::kFp16: return values * 2;
    case quant::KvPrecision::kInt8:
    case quant::KvPrecision::kFp8: return values + int64_t{n_heads} * 4;  // codes + one FP32 scale per head
  }
  QUASR_ASSERT(false && "unknown KV precision");
  return 0;
}

KvCacheBytes whisper_kv_cache_bytes(const WhisperConfig& c, quant::KvPrecision p) {
  if (c.n_text_head < 1 || c.n_text_state % c.n_text_head != 0)
    throw InvalidArgument("KV cache: n_text_state " + std::to_string(c.n_text_state) +
                          " is not a multiple of n_text_head " + std::to_string(c.n_text_head));
  KvCacheBytes b;
  b.precision = p;
  b.row = kv_row_bytes(p, c.n_text_head, c.n_text_state / c.n_text_head);
  b.self_per_token_per_layer = 2 * b.row;
  b.cross_per_layer = 2 * int64_t{c.n_audio_ctx} * b.row;
  b.n_text_layer = c.n_text_layer;
  b.n_text_ctx = c.n_text_ctx;
  b.width = c.n_text_state;
  return b;
}

}  // namespace quasr::models

namespace quasr::models::detail {
namespace {

bool scaled(KvPrecision p) { return p == KvPrecision::kInt8 || p == KvPrecision::kFp8; }

// FP8 E4M3 code -> value, from the formats module's codec (the one definition of the format).
const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = formats::minifloat_decode(formats::kFp8E4M3, static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

}  // namespace

formats::QuantSpec kv_row_spec(KvPrecision p, int64_t d_head) {
  using formats::FormatId;
  QUASR_ASSERT(p != KvPrecision::kFp32);
  formats::QuantSpec s = formats::QuantSpec::defaults(p == KvPrecision::kFp16  ? FormatId::kFp16
                                                      : p == KvPrecision::kInt8 ? FormatId::kInt8
                                                                                : FormatId::kFp8E4M3);
  if (scaled(p)) {
    s.granularity = {formats::GranularityKind::kPerGroup, 0, d_head};
    s.scale_type = formats::ScaleType::kFp32;
    s.estimator = formats::ScaleEstimator::kMaxAbs;
    s.zero_point = false;
    s.int_range = formats::IntRange::kRestricted;
    s.rounding = formats::Rounding::kHalfEven;
  }
  s.validate();
  return s;
}

const KvKernels& kv_kernels() {
  static const KvKernels& k = []() -> const KvKernels& {
    const Isa isa = best_isa();
    if (isa >= Isa::Avx512) return avx512::kKv;
    if (isa >= Isa::Avx2) return avx2::kKv;
    return baseline::kKv;
  }();
  return k;
}

KvCache::KvCache(KvPrecision precision, int64_t rows, int n_heads, int64_t d_head)
    : precision_(precision), n_heads_(n_heads), d_head_(d_head) {
  if (n_heads < 1 || d_head < 1 || rows < 0)
    throw InvalidArgument("KV cache: bad shape " + std::to_string(rows) + " rows x " + std::to_string(n_heads) +
                          " heads x " + std::to_string(d_head));
  if (scaled(precision)) kv_row_spec(precision, d_head);  // validates the spec once
  resize_rows(rows);
}

int64_t KvCache::bytes() const { return rows_ * kv_row_bytes(precision_, n_heads_, d_head_); }

void KvCache::resize_rows(int64_t rows) {
  rows_ = rows;
  const auto n = static_cast<size_t>(rows * width());
  switch (precision_) {
    case KvPrecision::kFp32: f32_.resize(n); break;
    case KvPrecision::kFp16: f16_.resize(n); break;
    case KvPrecision::kInt8:
    case KvPrecision::kFp8:
      codes_.resize(n);
      scales_.resize(static_cast<size_t>(rows * n_heads_));
      break;
  }
}

void KvCache::store(int64_t row0, const float* x, int64_t n, int64_t ldx) {
  const int64_t w = width();
  if (row0 < 0 || n < 0 || row0 + n > rows_ || ldx < w)
    throw InvalidArgument("KV cache: cannot store rows [" + std::to_string(row0) + ", " + std::to_string(row0 + n) +
                          ") of width " + std::to_string(w) + " (stride " + std::to_string(ldx) + ") in a cache of " +
                          std::to_string(rows_) + " rows");
  if (n == 0) return;
  if (precision_ == KvPrecision::kFp32) {
    for (int64_t r = 0; r < n; ++r) std::copy_n(x + r * ldx, w, f32_.data() + (row0 + r) * w);
    return;
  }
  std::vector<float> dense;
  if (ldx != w) {
    dense.resize(static_cast<size_t>(n * w));
    for (int64_t r = 0; r < n; ++r) std::copy_n(x + r * ldx, w, dense.data() + r * w);
    x = dense.data();
  }
  const int64_t shape[2] = {n, w};
  formats::QTensor q;
  try {
    q = formats::quantize(std::span<const float>(x, static_cast<size_t>(n * w)), shape, kv_row_spec(precision_, d_head_));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string("KV cache at ") + quant::kv_precision_name(precision_) + ": " + e.what());
  }
  if (precision_ == KvPrecision::kFp16) {
    QUASR_ASSERT(q.payload.size() == static_cast<size_t>(n * w) * 2);
    for (int64_t i = 0; i < n * w; ++i)  // little-endian u16 payload (qtensor.h)
      f16_[row0 * w + i] = static_cast<uint16_t>(q.payload[2 * i] | (q.payload[2 * i + 1] << 8));
    return;
  }
  QUASR_ASSERT(q.payload.size() == static_cast<size_t>(n * w) && q.scales.size() == static_cast<size_t>(n * n_heads_) * 4);
  std::memcpy(codes_.data() + row0 * w, q.payload.data(), q.payload.size());  // 8-bit codes are plain bytes
  for (int64_t b = 0; b < n * n_heads_; ++b) {  // FP32 scales, little-endian, one per (row, head) in row order
    uint32_t bits = 0;
    for (int k = 0; k < 4; ++k) bits |= static_cast<uint32_t>(q.scales[4 * b + k]) << (8 * k);
    std::memcpy(&scales_[row0 * n_heads_ + b], &bits, 4);
  }
}

void KvCache::copy_rows(int64_t row0, const KvCache& src, int64_t src_row, int64_t n) {
  QUASR_ASSERT(src.precision_ == precision_ && src.n_heads_ == n_heads_ && src.d_head_ == d_head_);
  QUASR_ASSERT(row0 >= 0 && src_row >= 0 && n >= 0 && row0 + n <= rows_ && src_row + n <= src.rows_);
  const int64_t w = width();
  switch (precision_) {
    case KvPrecision::kFp32: std::copy_n(src.f32_.data() + src_row * w, n * w, f32_.data() + row0 * w); break;
    case KvPrecision::kFp16: std::copy_n(src.f16_.data() + src_row * w, n * w, f16_.data() + row0 * w); break;
    case KvPrecision::kInt8:
    case KvPrecision::kFp8:
      std::copy_n(src.codes_.data() + src_row * w, n * w, codes_.data() + row0 * w);
      std::copy_n(src.scales_.data() + src_row * n_heads_, n * n_heads_, scales_.data() + row0 * n_heads_);
      break;
  }
}

void KvCache::dequantize(int64_t row0, int64_t n, float* out) const {
  QUASR_ASSERT(row0 >= 0 && n >= 0 && row0 + n <= rows_);
  const int64_t w = width();
  const auto& e4m3 = e4m3_values();
  for (int64_t r = row0; r < row0 + n; ++r, out += w) {
    for (int64_t c = 0; c < w; ++c) {
      const int64_t i = r * w + c;
      const float s = scaled(precision_) ? scales_[r * n_heads_ + c / d_head_] : 1.0f;
      switch (precision_) {
        case KvPrecision::kFp32: out[c] = f32_[i]; break;
        case KvPrecision::kFp16: out[c] = formats::fp16_to_fp32(f16_[i]); break;
        case KvPrecision::kInt8: out[c] = static_cast<float>(static_cast<int8_t>(codes_[i])) * s; break;
        case KvPrecision::kFp8: out[c] = e4m3[codes_[i]] * s; break;
      }
    }
  }
}

void attention_cached(const AttentionShape& a, const float* q, const KvCache& k, const KvCache& v, float* out) {
  QUASR_ASSERT(k.precision() == v.precision() && k.width() == v.width() && a.ldk == k.width());
  QUASR_ASSERT(a.n_heads == k.n_heads() && a.d_head == k.d_head());
  if (k.precision() == KvPrecision::kFp32) {  // the FP32 runtime's path, unchanged
    attention(a, q, k.f32(), v.f32(), out);
    return;
  }
  const int64_t w = k.width(), dh = a.d_head, nh = a.n_heads;
  QUASR_ASSERT(a.kv_seq_stride % w == 0);
  const int64_t seq_rows = a.kv_seq_stride / w;
  const KvPrecision p = k.precision();
  const KvKernels& kern = kv_kernels();
  const auto& e4m3 = e4m3_values();
  const float softmax_scale = 1.0f / std::sqrt(static_cast<float>(dh));
  // Query blocks as in attention(): they bound the score buffer and give the pool tasks when heads are few.
  constexpr int64_t kBlock = 256;
  const int64_t n_blocks = (a.nq + kBlock - 1) / kBlock;
  const int64_t tasks = a.n_seq * nh * n_blocks;
  parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> scores, decoded(static_cast<size_t>(dh));  // per task: no sharing between threads
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t blk = t % n_blocks, h = (t / n_blocks) % nh, s = t / (n_blocks * nh);
      const int64_t i0 = blk * kBlock, ni = std::min(kBlock, a.nq - i0);
      const int64_t nk = a.causal_offset >= 0 ? std::min(a.nk, a.causal_offset + i0 + ni) : a.nk;
      const int64_t row0 = s * seq_rows;
      scores.resize(static_cast<size_t>(ni * nk));
      const float* qs = q + s * a.q_seq_stride + i0 * a.ldq + h * dh;
      float* os = out + s * a.out_seq_stride + i0 * a.ldo + h * dh;
      // A stored row (key or value), decoded once into `decoded` for all queries of the block: FP16 and INT8 by
      // the ISA's row kernels, FP8 through the formats module's code table. Returns the row's scale (1 for FP16).
      auto decode = [&](const KvCache& c, int64_t row) -> float {
        const int64_t off = row * w + h * dh;
        switch (p) {
          case KvPrecision::kFp16: kern.decode_f16(c.f16() + off, decoded.data(), dh); return 1.0f;
          case KvPrecision::kInt8:
            kern.decode_i8(reinterpret_cast<const int8_t*>(c.codes()) + off, decoded.data(), dh);
            return c.scales()[row * nh + h];
          case KvPrecision::kFp8:
            for (int64_t x = 0; x < dh; ++x) decoded[x] = e4m3[c.codes()[off + x]];
            return c.scales()[row * nh + h];
          case KvPrecision::kFp32: break;
        }
        return 0.0f;
      };
      auto valid_keys = [&](int64_t i) {
        return a.causal_offset >= 0 ? std::min(nk, a.causal_offset + i0 + i + 1) : nk;
      };
      // scores[i][j] = q_i . k_j / sqrt(dh), the row's scale applied to the dot product.
      for (int64_t j = 0; j < nk; ++j) {
        const float sj = softmax_scale * decode(k, row0 + j);
        for (int64_t i = 0; i < ni; ++i)
          if (j < valid_keys(i)) scores[i * nk + j] = sj * kern.dot_f32(qs + i * a.ldq, decoded.data(), dh);
      }
      for (int64_t i = 0; i < ni; ++i) {
        const int64_t valid = valid_keys(i);
        math_kernels().softmax(scores.data() + i * nk, valid);
        std::fill(scores.data() + i * nk + valid, scores.data() + (i + 1) * nk, 0.0f);
      }
      // out_i = sum_j p_ij v_j: each value row is decoded once and added to every query's output with weight
      // p_ij times its scale.
      for (int64_t i = 0; i < ni; ++i) std::fill_n(os + i * a.ldo, dh, 0.0f);
      for (int64_t j = 0; j < nk; ++j) {
        const float sj = decode(v, row0 + j);
        for (int64_t i = 0; i < ni; ++i) {
          const float pij = scores[i * nk + j];
          if (pij != 0.0f) kern.axpy_f32(pij * sj, decoded.data(), os + i * a.ldo, dh);  // 0: masked key
        }
      }
    }
  });
}

}  // namespace quasr::models::detail
