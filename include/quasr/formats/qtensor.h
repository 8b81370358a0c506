#pragma once
// QTensor: a quantized tensor as it is stored — packed element codes plus scales (+ zero points, + codebook,
// + NVFP4's tensor scale), its logical shape and its QuantSpec. It can dequantize itself and serialize itself;
// its size accounting is computed from the bytes it holds, so it is exact by construction.
//
// Layouts (all little-endian):
//  * payload: element codes in row-major order of `shape`, packed as one LSB-first bit stream — code i occupies
//    bits [i*b, (i+1)*b) — so 4-bit codes put element 2j in the low nibble of byte j, 2-bit codes put element
//    4j in bits 0-1, 3- and 6-bit codes straddle bytes. 8-bit codes are plain bytes; FP16/BF16 payloads are
//    2 bytes per element, FP32 4 bytes.
//  * scales: one per block, in block order (see block_index()), each scale_type_bits(spec.scale_type)/8 bytes.
//  * zero_points: one b-bit unsigned code per block, packed like the payload.
//  * codebook: per codebook (one per tensor, or one per channel), 2^b FP16 centroids.
//  * tensor_scale: NVFP4 only, 4 bytes FP32 (counted in storage()).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quasr/formats/quant_spec.h"

namespace quasr::formats {

struct StorageBytes {
  size_t payload = 0, scales = 0, zero_points = 0, codebook = 0, tensor_scale = 0;
  size_t elements = 0;
  size_t total() const { return payload + scales + zero_points + codebook + tensor_scale; }
  double bits_per_weight() const { return elements ? 8.0 * total() / elements : 0.0; }
  StorageBytes& operator+=(const StorageBytes& o);
};

struct QTensor {
  QuantSpec spec;
  std::vector<int64_t> shape;
  std::vector<uint8_t> payload;
  std::vector<uint8_t> scales;
  std::vector<uint8_t> zero_points;
  std::vector<uint8_t> codebook;
  float tensor_scale = 1.0f;  // NVFP4 second-level scale (decode multiplier); unused otherwise

  int64_t numel() const;
  int64_t num_blocks() const;  // number of scales (or codebooks)
  std::vector<float> dequantize() const;
  void dequantize(std::span<float> out) const;
  StorageBytes storage() const;

  // Self-describing binary form: a small header (magic, revision, spec text, shape, section sizes) followed by
  // exactly payload, scales, zero_points, codebook, tensor_scale. serialized size = header + storage().total().
  // Header (revision 1), little-endian: "QSRT", u32 revision, u32 spec-text length, spec text (to_string()),
  // u32 rank, rank x u64 dims, 5 x u64 section sizes (payload, scales, zero_points, codebook, tensor_scale).
  std::vector<uint8_t> serialize() const;
  size_t header_bytes() const;
  static QTensor deserialize(std::span<const uint8_t> bytes);  // throws IoError on any inconsistency
};

// Rows [r0, r1) of a tensor of rank >= 2 as a tensor of its own, shape [r1 - r0, rest...], whose dequantize()
// equals those rows of q.dequantize() bit for bit: a quantized token embedding looks rows up without holding a
// dequantized copy. Throws InvalidArgument for a range outside the tensor or rank < 2.
QTensor slice_rows(const QTensor& q, int64_t r0, int64_t r1);

// Reference quantization through the traits table. Validates (InvalidArgument, naming the problem): the spec,
// rank 1..8 with every dim >= 1 (empty tensors are rejected), shape matches x.size(), finite input (NaN/Inf
// name the first bad flat index and its coordinates), group divides the last (reduction) axis, axis in range,
// scales within their storage type's range. Deterministic: same input and spec give the same bytes on every
// run and thread count.
QTensor quantize(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec);

// Section sizes that quantize(x, shape, spec) produces, without quantizing (the quantizers allocate exactly
// this and deserialize checks against it). Throws InvalidArgument for a spec that does not fit the shape.
StorageBytes expected_storage(const QuantSpec& spec, std::span<const int64_t> shape);
// Sum of storage() over tensors (a model's size report).
StorageBytes total_storage(std::span<const QTensor> tensors);

// Which block (scale index) element `flat_index` belongs to, for a tensor of `shape` under `g`.
int64_t block_index(std::span<const int64_t> shape, const Granularity& g, int64_t flat_index);
int64_t num_blocks(std::span<const int64_t> shape, const Granularity& g);

// Bit packing of b-bit codes (b in 1..8), LSB-first stream as described above.
std::vector<uint8_t> pack_bits(std::span<const uint8_t> codes, int bits);
std::vector<uint8_t> unpack_bits(std::span<const uint8_t> packed, int bits, size_t count);
inline size_t packed_bytes(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

}  // namespace quasr::formats
