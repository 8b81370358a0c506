// The Whisper tensor table (see whisper_spec.h). Names follow transformers' WhisperForConditionalGeneration;
// CT2 names follow ctranslate2/specs/whisper_spec.py and its transformers converter, which fuses
// self-attention [q; k; v] into linear_0 and cross-attention [k; v] into linear_1 (K bias filled with zeros).
#include "quasr/models/whisper_spec.h"

#include <string>

namespace quasr::models {

const char* role_name(WhisperRole r) {
  switch (r) {
    case WhisperRole::kConv1: return "conv1";
    case WhisperRole::kConv2: return "conv2";
    case WhisperRole::kPosEmbedding: return "pos_embedding";
    case WhisperRole::kTokenEmbedding: return "token_embedding";
    case WhisperRole::kAttnNorm: return "attn_norm";
    case WhisperRole::kAttnQ: return "attn_q";
    case WhisperRole::kAttnK: return "attn_k";
    case WhisperRole::kAttnV: return "attn_v";
    case WhisperRole::kAttnOut: return "attn_out";
    case WhisperRole::kCrossNorm: return "cross_norm";
    case WhisperRole::kCrossQ: return "cross_q";
    case WhisperRole::kCrossK: return "cross_k";
    case WhisperRole::kCrossV: return "cross_v";
    case WhisperRole::kCrossOut: return "cross_out";
    case WhisperRole::kMlpNorm: return "mlp_norm";
    case WhisperRole::kMlpFc1: return "mlp_fc1";
    case WhisperRole::kMlpFc2: return "mlp_fc2";
    case WhisperRole::kFinalNorm: return "final_norm";
  }
  return "?";
}

const char* stack_name(WhisperStack s) { return s == WhisperStack::kEncoder ? "encoder" : "decoder"; }

bool WhisperTensorSpec::is_matrix() const {
  if (param != WhisperParam::kWeight) return false;
  switch (role) {
    case WhisperRole::kConv1: case WhisperRole::kConv2:
    case WhisperRole::kAttnQ: case WhisperRole::kAttnK: case WhisperRole::kAttnV: case WhisperRole::kAttnOut:
    case WhisperRole::kCrossQ: case WhisperRole::kCrossK: case WhisperRole::kCrossV: case WhisperRole::kCrossOut:
    case WhisperRole::kMlpFc1: case WhisperRole::kMlpFc2:
      return true;
    default:
      return false;
  }
}

namespace {

class TableBuilder {
 public:
  explicit TableBuilder(std::vector<WhisperTensorSpec>& out) : out_(out) {}

  // A weight [+ bias] pair. `ct2` is the CT2 scope ("encoder/conv1"); rows of a fused matrix start at `row0`.
  void linear(const std::string& hf, WhisperStack st, int layer, WhisperRole role, std::vector<int64_t> wshape,
              const std::string& ct2, int64_t row0 = 0, bool fused = false, bool hf_bias = true) {
    const int64_t rows = wshape[0];
    add({hf + ".weight", st, layer, role, WhisperParam::kWeight, std::move(wshape), ct2 + "/weight", row0, fused});
    add({hf + ".bias", st, layer, role, WhisperParam::kBias, {rows}, ct2 + "/bias", row0, fused, hf_bias});
  }
  void norm(const std::string& hf, WhisperStack st, int layer, WhisperRole role, int64_t d, const std::string& ct2) {
    add({hf + ".weight", st, layer, role, WhisperParam::kWeight, {d}, ct2 + "/gamma"});
    add({hf + ".bias", st, layer, role, WhisperParam::kBias, {d}, ct2 + "/beta"});
  }
  void add(WhisperTensorSpec s) { out_.push_back(std::move(s)); }

 private:
  std::vector<WhisperTensorSpec>& out_;
};

}  // namespace

std::vector<WhisperTensorSpec> whisper_tensor_specs(const WhisperConfig& c) {
  std::vector<WhisperTensorSpec> t;
  TableBuilder b(t);
  const auto E = WhisperStack::kEncoder;
  const auto D = WhisperStack::kDecoder;
  const int64_t de = c.n_audio_state, dd = c.n_text_state;

  b.linear("model.encoder.conv1", E, -1, WhisperRole::kConv1, {de, c.n_mels, 3}, "encoder/conv1");
  b.linear("model.encoder.conv2", E, -1, WhisperRole::kConv2, {de, de, 3}, "encoder/conv2");
  b.add({"model.encoder.embed_positions.weight", E, -1, WhisperRole::kPosEmbedding, WhisperParam::kWeight,
         {c.n_audio_ctx, de}, "encoder/position_encodings/encodings"});
  for (int i = 0; i < c.n_audio_layer; ++i) {
    const std::string hf = "model.encoder.layers." + std::to_string(i);
    const std::string ct = "encoder/layer_" + std::to_string(i);
    b.norm(hf + ".self_attn_layer_norm", E, i, WhisperRole::kAttnNorm, de, ct + "/self_attention/layer_norm");
    b.linear(hf + ".self_attn.q_proj", E, i, WhisperRole::kAttnQ, {de, de}, ct + "/self_attention/linear_0", 0, true);
    b.linear(hf + ".self_attn.k_proj", E, i, WhisperRole::kAttnK, {de, de}, ct + "/self_attention/linear_0", de, true,
             false);
    b.linear(hf + ".self_attn.v_proj", E, i, WhisperRole::kAttnV, {de, de}, ct + "/self_attention/linear_0", 2 * de,
             true);
    b.linear(hf + ".self_attn.out_proj", E, i, WhisperRole::kAttnOut, {de, de}, ct + "/self_attention/linear_1");
    b.norm(hf + ".final_layer_norm", E, i, WhisperRole::kMlpNorm, de, ct + "/ffn/layer_norm");
    b.linear(hf + ".fc1", E, i, WhisperRole::kMlpFc1, {c.n_audio_ffn, de}, ct + "/ffn/linear_0");
    b.linear(hf + ".fc2", E, i, WhisperRole::kMlpFc2, {de, c.n_audio_ffn}, ct + "/ffn/linear_1");
  }
  b.norm("model.encoder.layer_norm", E, -1, WhisperRole::kFinalNorm, de, "encoder/layer_norm");

  b.add({"model.decoder.embed_tokens.weight", D, -1, WhisperRole::kTokenEmbedding, WhisperParam::kWeight,
         {c.n_vocab, dd}, "decoder/embeddings/weight"});
  b.add({"model.decoder.embed_positions.weight", D, -1, WhisperRole::kPosEmbedding, WhisperParam::kWeight,
         {c.n_text_ctx, dd}, "decoder/position_encodings/encodings"});
  for (int i = 0; i < c.n_text_layer; ++i) {
    const std::string hf = "model.decoder.layers." + std::to_string(i);
    const std::string ct = "decoder/layer_" + std::to_string(i);
    b.norm(hf + ".self_attn_layer_norm", D, i, WhisperRole::kAttnNorm, dd, ct + "/self_attention/layer_norm");
    b.linear(hf + ".self_attn.q_proj", D, i, WhisperRole::kAttnQ, {dd, dd}, ct + "/self_attention/linear_0", 0, true);
    b.linear(hf + ".self_attn.k_proj", D, i, WhisperRole::kAttnK, {dd, dd}, ct + "/self_attention/linear_0", dd, true,
             false);
    b.linear(hf + ".self_attn.v_proj", D, i, WhisperRole::kAttnV, {dd, dd}, ct + "/self_attention/linear_0", 2 * dd,
             true);
    b.linear(hf + ".self_attn.out_proj", D, i, WhisperRole::kAttnOut, {dd, dd}, ct + "/self_attention/linear_1");
    b.norm(hf + ".encoder_attn_layer_norm", D, i, WhisperRole::kCrossNorm, dd, ct + "/attention/layer_norm");
    b.linear(hf + ".encoder_attn.q_proj", D, i, WhisperRole::kCrossQ, {dd, dd}, ct + "/attention/linear_0");
    // Cross K/V project the encoder output (width n_audio_state) into the decoder width.
    b.linear(hf + ".encoder_attn.k_proj", D, i, WhisperRole::kCrossK, {dd, de}, ct + "/attention/linear_1", 0, true,
             false);
    b.linear(hf + ".encoder_attn.v_proj", D, i, WhisperRole::kCrossV, {dd, de}, ct + "/attention/linear_1", dd, true);
    b.linear(hf + ".encoder_attn.out_proj", D, i, WhisperRole::kCrossOut, {dd, dd}, ct + "/attention/linear_2");
    b.norm(hf + ".final_layer_norm", D, i, WhisperRole::kMlpNorm, dd, ct + "/ffn/layer_norm");
    b.linear(hf + ".fc1", D, i, WhisperRole::kMlpFc1, {c.n_text_ffn, dd}, ct + "/ffn/linear_0");
    b.linear(hf + ".fc2", D, i, WhisperRole::kMlpFc2, {dd, c.n_text_ffn}, ct + "/ffn/linear_1");
  }
  b.norm("model.decoder.layer_norm", D, -1, WhisperRole::kFinalNorm, dd, "decoder/layer_norm");
  return t;
}

}  // namespace quasr::models
