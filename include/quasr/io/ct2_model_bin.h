#pragma once
// Reader for CTranslate2's model.bin (binary version 6, as written by ctranslate2/specs/model_spec.py
// `_serialize`). Layout, all little-endian:
//   u32 binary_version | string spec_name | u32 spec_revision | u32 n_variables
//   n_variables x { string name | u8 rank | rank x u32 dim | u8 dtype_id | u32 n_bytes | n_bytes of data }
//   u32 n_aliases | n_aliases x { string alias | string target }
// where string = u16 length (including a trailing NUL) + bytes + NUL, and dtype_id indexes
// (float32, int8, int16, int32, float16, bfloat16). Every length and offset is checked against the file size
// before anything is allocated, so a truncated or corrupt file gives an IoError naming the file and the field.
#include <cstdint>
#include <map>
#include <string>

#include "quasr/io/tensor.h"

namespace quasr::io {

inline constexpr uint32_t kCt2BinaryVersion = 6;

struct Ct2ModelBin {
  std::string path;
  uint32_t binary_version = 0;
  std::string spec_name;  // e.g. "WhisperSpec"
  uint32_t spec_revision = 0;
  TensorMap variables;
  std::map<std::string, std::string, std::less<>> aliases;  // alias -> target variable

  // The variable `name`, following an alias; nullptr if absent.
  const Tensor* find(const std::string& name) const;
};

Ct2ModelBin read_ct2_model_bin(const std::string& path);

// Writes `m` in the same layout (variables and aliases in name order, as model_spec.py does), each variable in
// its source_dtype, atomically. Reading a file and writing it back reproduces it byte for byte.
void write_ct2_model_bin(const std::string& path, const Ct2ModelBin& m);

}  // namespace quasr::io
