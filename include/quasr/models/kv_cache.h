#pragma once
// Size of the Whisper decoder's KV caches at a recipe's `kv=` precision (docs/runtime.md "KV cache precision").
// The one formula: the runtime allocates exactly this (a test checks it against the bytes a decoder state holds)
// and eval's memory model reports it.
//
// A cached row is one position's keys (or values) of one layer: n_heads x d_head values. Stored as
//   fp32: 4 bytes per value;  fp16: 2 (IEEE half);  int8 / fp8 (E4M3): 1 byte per code plus one FP32 scale per
//   (position, head) row of d_head values, so row bytes = n_heads x (d_head + 4).
#include <cstdint>

#include "quasr/models/whisper.h"
#include "quasr/quant/recipe.h"

namespace quasr::models {

// Bytes of one cached row of n_heads x d_head values (codes + scales).
int64_t kv_row_bytes(quant::KvPrecision p, int n_heads, int64_t d_head);

struct KvCacheBytes {
  quant::KvPrecision precision = quant::KvPrecision::kFp32;
  int64_t row = 0;                       // one position, one layer, K or V (kv_row_bytes)
  int64_t self_per_token_per_layer = 0;  // K + V of one position of one sequence in one layer: 2 x row
  int64_t cross_per_layer = 0;           // K + V of the encoder output in one layer: 2 x n_audio_ctx x row
  int64_t n_text_layer = 0, n_text_ctx = 0, width = 0;  // width: values per row (n_text_state)
  // What start() allocates: every layer, n_text_ctx positions per sequence (the cache never grows).
  int64_t self_total(int sequences) const { return n_text_layer * sequences * n_text_ctx * self_per_token_per_layer; }
  int64_t cross_total() const { return n_text_layer * cross_per_layer; }  // shared by all sequences (beams)
  // Bytes per cached value, scales included (4, 2, 1 + 4 / d_head, 1 + 4 / d_head).
  double bytes_per_value() const { return width ? static_cast<double>(row) / static_cast<double>(width) : 0.0; }
};
KvCacheBytes whisper_kv_cache_bytes(const WhisperConfig& c, quant::KvPrecision p);

}  // namespace quasr::models
