#pragma once
// The quasr container (.quasr): a safetensors file that is self-describing for quantized models.
//  * A quantized tensor NAME is stored as U8 byte tensors NAME#payload, NAME#scales, NAME#zero_points,
//    NAME#codebook (sections that are empty are omitted), laid out exactly as formats::QTensor holds them.
//  * Unquantized tensors are stored under their own name as F32 (or F16 / BF16, their source type).
//  * __metadata__ (string -> string):
//      quasr.format      "quasr-container"
//      quasr.revision    kContainerRevision (a reader rejects any other)
//      quasr.tensors     JSON {NAME: {"spec": QuantSpec text, "shape": [..], "act": activation text,
//                                     "tensor_scale": "%a" hex float (NVFP4)}} for every quantized tensor
//      quasr.recipe      the recipe text; quasr.source_sha256: SHA-256 of the source model file (core/sha256.h)
//      quasr.input_scales (revision 2) JSON [NAME, ...]: the tensors with a per-Linear input scale
//      plus any extra entries the writer is given (e.g. the model's config and tokenizer as text).
//  * Revision 2 adds input scales: NAME#input_scale, F32 [K] (K = the tensor's reduction dimension), positive and
//    finite; the runtime multiplies every input row of that Linear elementwise by it before the product (AWQ).
//    A container without input scales is written as revision 1, byte for byte what earlier builds wrote, so they
//    can still read it; this build reads both.
// Written atomically (temp file + fsync + rename). Reading validates everything: the safetensors header (dtype,
// offsets inside the file, no gaps or overlaps, data ending exactly at the end of the file, so a truncated file
// is always rejected), the revision, every spec (parses, fits the shape) and every section's size against
// formats::expected_storage. Every failure is an IoError naming the file and the problem.
#include <map>
#include <string>
#include <vector>

#include "quasr/formats/qtensor.h"
#include "quasr/io/tensor.h"
#include "quasr/kernels/qlinear.h"

namespace quasr::quant {

inline constexpr int kContainerRevision = 2;           // the newest revision, written when there are input scales
inline constexpr int kContainerRevisionNoInputScales = 1;  // written otherwise; still read

// Per-Linear input multipliers [K] by tensor name.
using InputScales = std::map<std::string, std::vector<float>, std::less<>>;

struct ContainerTensor {
  formats::QTensor q;
  kernels::ActivationQuant act;
};

struct Container {
  io::TensorMap dense;                               // unquantized tensors (stored as their source_dtype)
  std::map<std::string, ContainerTensor> quantized;  // by canonical tensor name
  std::string recipe;
  std::string source_sha256;                         // hex
  std::map<std::string, std::string> extra;          // more metadata (keys must not start with "quasr.")
  InputScales input_scales;                          // of quantized or dense tensors (revision 2)
};

void write_container(const std::string& path, const Container& c);
Container read_container(const std::string& path);

}  // namespace quasr::quant
