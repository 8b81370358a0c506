#pragma once
// Building blocks of the Whisper network (private to src/models). Every matrix product goes through
// kernels::sgemm. A Linear owns its weight: the one place a later quantized variant (QTensor weight + its own
// kernel) plugs in, since every Linear and Conv of the network runs through Linear::forward.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quasr/io/tensor.h"
#include "quasr/models/whisper.h"
#include "quasr/quant/quantized_weight.h"

namespace quasr::models::detail {

struct Linear {
  int64_t out = 0, in = 0;
  std::vector<float> weight;  // [out][in] (a conv weight [out][in_ch][k] flattened to [out][in_ch * k])
  // The same [out][in] values as FP16 bits, held instead of `weight` (then empty) by an FP32 layer whose every
  // value is exactly an FP16 number, as in the FP16 checkpoints Whisper ships as: the product is computed in FP32
  // on the exactly widened values (kernels::sgemm_f16w), bit for bit the FP32 result, at half the bytes to read.
  std::vector<uint16_t> weight_f16;
  std::vector<float> bias;    // [out], or empty
  // Set for a quantized layer: native (quant->prepared, `weight` may be empty) or simulated (`weight` holds the
  // dequantized values, activations are fake-quantized by quant->act before the FP32 product).
  std::shared_ptr<const quant::QuantizedWeight> quant;
  // Per-input-channel multipliers [in], or empty: every input row is multiplied elementwise by them before the
  // product, y = (x * input_scale) W^T + bias, in the native and the simulation path alike (AWQ's input_scale: the
  // stored weight is Q(W diag(1 / input_scale))). Activation quantization sees the multiplied input.
  std::vector<float> input_scale;
  // A quantized layer with quant->input_hadamard_block > 0 then rotates the (scaled) input rows by the block-Hadamard
  // H (rotate=hadamard), before activation quantization.
  std::string name;                          // canonical weight name (for the observer)
  // When set, sees every input before the product and before the input transform: calibration statistics
  // describe the model's own activations, whatever transform a recipe later adds.
  LinearInputObserver* observer = nullptr;

  // Takes the weight (and bias, may be null) out of loaded tensors.
  static Linear from(io::Tensor&& w, io::Tensor* b);
  // Moves an unquantized weight into weight_f16 if every value converts to FP16 and back unchanged; returns
  // whether it did. Quantized layers (and their simulation weights) are left as they are.
  bool store_as_fp16_if_exact();
  // Row r of the weight as FP32 (either storage, or decoded from quant->qtensor when a native layer holds no
  // FP32 weight: the quantized token embedding's lookup).
  void weight_row(int64_t r, float* dst) const;
  // The weight as FP32 values (either storage), moved out: the layer holds no weight afterwards.
  std::vector<float> take_weight();
  // y[r][0..out) = x[r][0..in) . W^T + bias for r < rows; x rows are `ldx` apart, y rows `ldy` apart.
  void forward(const float* x, int64_t rows, int64_t ldx, float* y, int64_t ldy) const;
  void forward(const float* x, int64_t rows, float* y) const { forward(x, rows, in, y, out); }
};

struct LayerNorm {
  std::vector<float> gamma, beta;
  static LayerNorm from(io::Tensor&& g, io::Tensor&& b);
  // y[r] = (x[r] - mean) / sqrt(var + 1e-5) * gamma + beta over rows of width gamma.size(); rows in parallel.
  void forward(const float* x, int64_t rows, float* y) const;
};

// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in place, in parallel.
void gelu_inplace(float* x, int64_t n);
// y += x, in parallel.
void add_inplace(float* y, const float* x, int64_t n);
// Row-wise softmax of `rows` rows of `cols` values (row stride `ld`), in place; the first valid[r] entries of
// row r take part (the rest are set to 0) when valid is non-null: the causal mask without materialising -inf.
void softmax_rows(float* s, int64_t rows, int64_t cols, int64_t ld, const int64_t* valid = nullptr);

// Multi-head attention for `n_seq` sequences, (sequence, head, query block) tasks in parallel:
//   out[i][h*dh..] = softmax(q_i,h . K_h^T / sqrt(dh) [causal]) . V_h
// Per sequence s: q at q + s*q_seq_stride ([nq][ldq]), keys/values at k/v + s*kv_seq_stride ([nk][ldk]; a
// stride of 0 shares one K/V among all sequences), out at out + s*out_seq_stride ([nq][ldo]). Head h uses
// columns [h*dh, (h+1)*dh). causal_offset >= 0: query i sees keys [0, causal_offset + i] only; < 0: all keys.
struct AttentionShape {
  int64_t n_seq = 1, nq = 0, nk = 0;
  int n_heads = 0;
  int64_t d_head = 0;
  int64_t ldq = 0, ldk = 0, ldo = 0;
  int64_t q_seq_stride = 0, kv_seq_stride = 0, out_seq_stride = 0;
  int64_t causal_offset = -1;
};
void attention(const AttentionShape& a, const float* q, const float* k, const float* v, float* out);

}  // namespace quasr::models::detail
