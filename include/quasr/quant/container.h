#pragma once
// The quasr container (.quasr): a safetensors file that is self-describing for quantized models.
//  * A quantized tensor NAME is stored as U8 byte tensors NAME#payload, NAME#scales, NAME#zero_points,
//    NAME#codebook (sections that are empty are omitted), laid out exactly as formats::QTensor holds them.
//  * Unquantized tensors are stored under their own name as F32 (or F16 / BF16, their source type).
//  * __metadata__ (string -> string):
//      quasr.format      "quasr-container"
//      quasr.revision    1, 2 or 3 (see below; a reader rejects any other)
//      quasr.tensors     JSON {NAME: {"spec": QuantSpec text, "shape": [..], "act": activation text,
//                                     "tensor_scale": "%a" hex float (NVFP4)}} for every quantized tensor
//      quasr.recipe      the recipe text; quasr.source_sha256: SHA-256 of the source model file (core/sha256.h)
//      quasr.input_scales (revision >= 2) JSON [NAME, ...]: the tensors with a per-Linear input scale
//      plus any extra entries the writer is given (e.g. the model's config and tokenizer as text).
//  * Revision 2 adds input scales: NAME#input_scale, F32 [K] (K = the tensor's reduction dimension), positive and
//    finite; the runtime multiplies every input row of that Linear elementwise by it before the product (AWQ).
//    A container without input scales is written as revision 1, byte for byte what earlier builds wrote, so they
//    can still read it; this build reads both.
//  * Revision 3 adds input rotations: a quantized tensor's quasr.tensors entry may hold "hadamard": B (a power of
//    two >= 2 dividing K): the runtime rotates every input row by the block-Hadamard matrix H (quant/hadamard.h)
//    before the product, the stored weight being Q(W H). Files without rotations keep revision 1 or 2: an older
//    build, which would ignore the key and compute a wrong product, can only read files that do not need it.
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

inline constexpr int kContainerRevision = 3;               // the newest revision, written when there are rotations
inline constexpr int kContainerRevisionInputScales = 2;    // written when there are input scales and no rotation
inline constexpr int kContainerRevisionNoInputScales = 1;  // written otherwise; all three are read

// Per-Linear input multipliers [K] by tensor name.
using InputScales = std::map<std::string, std::vector<float>, std::less<>>;

struct ContainerTensor {
  formats::QTensor q;
  kernels::ActivationQuant act;
  int64_t hadamard_block = 0;  // > 0: inputs are rotated by the block-Hadamard H of this block (revision 3)
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
