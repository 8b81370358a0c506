#pragma once
// Internal to the post-training algorithms (gptq.cpp, awq.cpp): argument checks and the blocks of scales of a
// [n][k] weight. Not a public header.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quasr/formats/quant_spec.h"

namespace quasr::quant::detail {

// Throws InvalidArgument (prefixed with `who`) unless n, k >= 1, w has n*k finite values and `spec` fits {n, k}
// (formats::expected_storage: spec valid, group divides k, axis in range).
void check_weight(const char* who, std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec);

// The blocks of scales of a [n][k] weight under a granularity, numbered as formats::block_index numbers them.
// Every block is a rectangle: rows [row0, row1) x columns [col0, col1).
struct WeightBlocks {
  formats::GranularityKind kind;
  int axis = 0;
  int64_t n = 0, k = 0, group = 0;
  WeightBlocks(int64_t n, int64_t k, const formats::Granularity& g);
  int64_t count() const;
  int64_t of(int64_t r, int64_t c) const;
  struct Rect {
    int64_t row0, row1, col0, col1;
  };
  Rect rect(int64_t b) const;
  // Columns one block spans in a row: k (per-tensor, per-channel axis 0), 1 (per-channel axis 1), group.
  int64_t width() const;
  // Values of block b of w (row-major [n][k]) in ascending flat order, the order formats::quantize sees them.
  void gather(std::span<const float> w, int64_t b, std::vector<float>& out) const;
};

float max_abs(std::span<const float> v);

}  // namespace quasr::quant::detail
