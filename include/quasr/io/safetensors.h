#pragma once
// Reader and writer for the safetensors format (Hugging Face): u64 little-endian header length N, N bytes of
// JSON header {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__":
// {str: str}}, then the data block; offsets are relative to the data block. The reader checks every entry
// (known dtype, shape x dtype size == end - begin, offsets inside the file, no overlap) and names the file and
// the tensor in its errors. The writer stores tensors in name order, 8-byte aligned header, atomically.
#include <map>
#include <string>
#include <vector>

#include "quasr/io/tensor.h"

namespace quasr::io {

struct SafetensorsFile {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

SafetensorsFile read_safetensors(const std::string& path);

// Writes `tensors`, each stored as its Tensor::source_dtype (FP32/FP16/BF16 only) unless `force_dtype` is set.
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {}, const DType* force_dtype = nullptr);

// The same format with tensors kept as stored bytes, for data that is not a model weight (e.g. F64 sums and U64
// counts of a calibration file): any safetensors dtype (F64, F32, F16, BF16, I64, U64, I32, U32, I16, U16, I8,
// U8, BOOL), no conversion. The reader performs the same checks as read_safetensors.
struct RawTensor {
  std::string dtype;  // safetensors dtype name, e.g. "F64"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // little-endian, numel * dtype size
};
struct RawSafetensorsFile {
  std::map<std::string, RawTensor, std::less<>> tensors;
  std::map<std::string, std::string> metadata;
};
RawSafetensorsFile read_safetensors_raw(const std::string& path);
void write_safetensors_raw(const std::string& path, const std::map<std::string, RawTensor, std::less<>>& tensors,
                           const std::map<std::string, std::string>& metadata = {});

}  // namespace quasr::io
