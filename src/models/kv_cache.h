#pragma once
// The decoder's KV caches at the recipe's precision, and attention over them (private to src/models). Sizes:
// include/quasr/models/kv_cache.h; format and granularity: docs/runtime.md "KV cache precision".
//
// A KvCache is a matrix [rows][n_heads * d_head]. FP32 rows are plain floats (the path is bit-identical to the
// FP32 runtime: attention_cached hands them to detail::attention). FP16 rows are IEEE halves. INT8 and FP8 rows
// hold one byte per value and one FP32 scale per (row, head): the d_head values of a head at one position,
// quantized when the row is written with the formats module's reference quantizer (symmetric INT8 with
// scale = max|x| / 127, or FP8 E4M3 codes of x / (max|x| / 448), round to nearest even). Rows are never
// dequantized as a whole: attention decodes each key/value row inside its dot products.
#include <cstdint>
#include <vector>

#include "quasr/formats/quant_spec.h"
#include "quasr/models/whisper.h"
#include "quasr/quant/recipe.h"
#include "kv_kernels.h"
#include "whisper_model_layers.h"

namespace quasr::models::detail {

using quant::KvPrecision;

// The formats spec a cached row is stored with: fp16 storage; int8 / fp8_e4m3 per group of d_head values (one
// group = one (position, head)), FP32 max-abs scale, symmetric, round half to even. Not used for fp32.
formats::QuantSpec kv_row_spec(KvPrecision p, int64_t d_head);

class KvCache {
 public:
  KvCache() = default;
  KvCache(KvPrecision precision, int64_t rows, int n_heads, int64_t d_head);

  KvPrecision precision() const { return precision_; }
  int64_t rows() const { return rows_; }
  int n_heads() const { return n_heads_; }
  int64_t d_head() const { return d_head_; }
  int64_t width() const { return n_heads_ * d_head_; }
  // Storage held: codes + scales (kv_row_bytes x rows).
  int64_t bytes() const;
  // Changes the number of rows, keeping the first min(old, new) rows and the allocation where it suffices.
  void resize_rows(int64_t rows);

  // Writes n rows of x (row stride ldx >= width) into rows [row0, row0 + n), quantizing each (row, head).
  // Throws InvalidArgument for rows outside the cache or non-finite values at INT8/FP8.
  void store(int64_t row0, const float* x, int64_t n, int64_t ldx);
  // Copies rows [src_row, src_row + n) of `src` (same precision and width) into [row0, row0 + n): codes and
  // their scales move together (beam-search reorder).
  void copy_rows(int64_t row0, const KvCache& src, int64_t src_row, int64_t n);
  // The values attention computes with for rows [row0, row0 + n), dense [n][width] (tests, reference).
  void dequantize(int64_t row0, int64_t n, float* out) const;

  // Raw storage (the one matching precision() is non-empty).
  float* f32() { return f32_.data(); }
  const float* f32() const { return f32_.data(); }
  const uint16_t* f16() const { return f16_.data(); }
  const uint8_t* codes() const { return codes_.data(); }  // INT8 (two's complement) or FP8 E4M3 codes
  const float* scales() const { return scales_.data(); }  // [rows][n_heads]

 private:
  KvPrecision precision_ = KvPrecision::kFp32;
  int64_t rows_ = 0;
  int n_heads_ = 0;
  int64_t d_head_ = 0;
  std::vector<float> f32_;
  std::vector<uint16_t> f16_;
  std::vector<uint8_t> codes_;
  std::vector<float> scales_;
};

// attention() (whisper_model_layers.h) with keys and values read from caches: a.ldk must equal k.width() and
// a.kv_seq_stride is in values (a multiple of the width), as for attention(); head h reads columns
// [h*dh, (h+1)*dh), which is the cache's head h. FP32 caches go through attention() unchanged. Other precisions
// decode each key/value row inside the dot products: scores q.k_j = s_j (q . codes_j), outputs
// sum_j (p_j s_j) codes_j, softmax as in attention().
void attention_cached(const AttentionShape& a, const float* q, const KvCache& k, const KvCache& v, float* out);

// Bytes of KV cache a decoder state of the Whisper runtime holds (self + cross, every layer); defined with the
// network (whisper_model.cpp) so tests can check the allocation against whisper_kv_cache_bytes.
int64_t decoder_state_kv_bytes(const DecoderState& state);

}  // namespace quasr::models::detail
