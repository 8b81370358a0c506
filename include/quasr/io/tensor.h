#pragma once
// A named dense tensor as the file readers hand it to the model builders: its shape, the element type it was
// stored in, and its values widened to FP32 (FP16/BF16 exactly, integers exactly up to 2^24). Keeping the source
// type lets a writer store the tensor back losslessly (e.g. FP16 model.bin -> FP16 safetensors).
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quasr::io {

// Element types met in model files. The numeric values are not a file format: each reader maps its own codes.
enum class DType : uint8_t { kF32, kF16, kBF16, kI8, kI16, kI32 };

const char* dtype_name(DType t);  // "float32", "float16", "bfloat16", "int8", "int16", "int32"
size_t dtype_size(DType t);       // bytes per element
bool dtype_is_float(DType t);

struct Tensor {
  std::vector<int64_t> shape;
  DType source_dtype = DType::kF32;
  std::vector<float> values;  // row-major, numel() entries

  int64_t numel() const;
  std::string shape_string() const;  // "[384, 80, 3]"
};

using TensorMap = std::map<std::string, Tensor, std::less<>>;

// Product of dims, or -1 if a dim is negative or the product exceeds `limit` (guards allocations driven by
// untrusted headers).
int64_t checked_numel(std::span<const int64_t> shape, int64_t limit);

// Widens `count` little-endian elements of type `t` at `bytes` to FP32 into `out`.
void decode_to_f32(DType t, const uint8_t* bytes, size_t count, float* out);
// Narrows FP32 values to `t` (FP32, FP16 or BF16; round to nearest even), appending little-endian bytes to `out`.
// Throws InvalidArgument for integer types.
void encode_from_f32(DType t, std::span<const float> values, std::vector<uint8_t>& out);

}  // namespace quasr::io
