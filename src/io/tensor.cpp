#include "quasr/io/tensor.h"

#include <cstring>
#include <limits>

#include "quasr/core/error.h"
#include "quasr/formats/minifloat.h"

namespace quasr::io {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kI8: return "int8";
    case DType::kI16: return "int16";
    case DType::kI32: return "int32";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: case DType::kI16: return 2;
    case DType::kI8: return 1;
  }
  return 0;
}

bool dtype_is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t checked_numel(std::span<const int64_t> shape, int64_t limit) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > limit / d) return -1;
    n *= d;
  }
  return n <= limit ? n : -1;
}

void decode_to_f32(DType t, const uint8_t* bytes, size_t count, float* out) {
  switch (t) {
    case DType::kF32:
      std::memcpy(out, bytes, count * 4);
      return;
    case DType::kF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = formats::fp16_to_fp32(h);
      }
      return;
    case DType::kBF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = formats::bf16_to_fp32(h);
      }
      return;
    case DType::kI8:
      for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int8_t>(bytes[i]));
      return;
    case DType::kI16:
      for (size_t i = 0; i < count; ++i) {
        int16_t v;
        std::memcpy(&v, bytes + 2 * i, 2);
        out[i] = static_cast<float>(v);
      }
      return;
    case DType::kI32:
      for (size_t i = 0; i < count; ++i) {
        int32_t v;
        std::memcpy(&v, bytes + 4 * i, 4);
        out[i] = static_cast<float>(v);
      }
      return;
  }
}

void encode_from_f32(DType t, std::span<const float> values, std::vector<uint8_t>& out) {
  const size_t base = out.size();
  switch (t) {
    case DType::kF32:
      out.resize(base + values.size() * 4);
      std::memcpy(out.data() + base, values.data(), values.size() * 4);
      return;
    case DType::kF16:
    case DType::kBF16:
      out.resize(base + values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = t == DType::kF16 ? formats::fp32_to_fp16(values[i]) : formats::fp32_to_bf16(values[i]);
        std::memcpy(out.data() + base + 2 * i, &h, 2);
      }
      return;
    default:
      throw InvalidArgument(std::string("cannot store float values as ") + dtype_name(t));
  }
}

}  // namespace quasr::io
