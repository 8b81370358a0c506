#pragma once
// The Whisper family, declared: one table lists every tensor of the network with its canonical name (the
// Hugging Face `transformers` name), its role (attn_q, mlp_fc1, conv, embedding...), its stack and layer, its
// shape, and where CTranslate2's model.bin keeps it (CT2 fuses Q/K/V and cross K/V into one matrix; the table
// gives the row slice). The CT2 loader, the Hugging Face loader and writer, the network builder and (later)
// mixed-precision rules are all queries over this one table.
#include <optional>
#include <string>
#include <vector>

#include "quasr/io/tensor.h"
#include "quasr/models/whisper.h"

namespace quasr::models {

enum class WhisperStack : uint8_t { kEncoder, kDecoder };

enum class WhisperRole : uint8_t {
  kConv1,
  kConv2,
  kPosEmbedding,    // encoder: sinusoidal (stored); decoder: learned
  kTokenEmbedding,  // decoder; also the (tied) output projection
  kAttnNorm,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOut,
  kCrossNorm,
  kCrossQ,
  kCrossK,
  kCrossV,
  kCrossOut,
  kMlpNorm,
  kMlpFc1,
  kMlpFc2,
  kFinalNorm,  // the LayerNorm after the last block of a stack
};

// For LayerNorms, kWeight is gamma and kBias is beta.
enum class WhisperParam : uint8_t { kWeight, kBias };

const char* role_name(WhisperRole r);  // "conv1", "attn_q", "cross_out", "mlp_fc1", "token_embedding", ...
const char* stack_name(WhisperStack s);  // "encoder", "decoder"

struct WhisperTensorSpec {
  std::string name;  // canonical (Hugging Face) name, e.g. "model.encoder.layers.0.self_attn.q_proj.weight"
  WhisperStack stack;
  int layer;  // block index, -1 outside the blocks
  WhisperRole role;
  WhisperParam param;
  std::vector<int64_t> shape;
  std::string ct2_name;       // CTranslate2 variable holding it
  int64_t ct2_row_begin = 0;  // first row of the slice [ct2_row_begin, ct2_row_begin + shape[0]) in ct2_name
  bool ct2_fused = false;     // ct2_name holds more rows than this tensor (fused Q/K/V or K/V)
  bool hf_stored = true;      // false for the K bias: Whisper has none (CT2 stores zeros; see docs/runtime.md)

  // A Linear or Conv weight matrix: what a quantizer replaces by a QTensor. Embeddings and norms are not.
  bool is_matrix() const;
};

// Every tensor of a Whisper model of this configuration, encoder first, in a fixed order.
std::vector<WhisperTensorSpec> whisper_tensor_specs(const WhisperConfig& c);

// A Whisper model's configuration and weights, keyed by WhisperTensorSpec::name, every shape checked against the
// table. The network takes its weights from here; the Hugging Face writer stores them from here.
struct WhisperWeights {
  WhisperConfig config;
  io::TensorMap tensors;
  io::DType source_dtype = io::DType::kF32;  // float type of the source file's matrices
  std::string directory;                     // where it was loaded from (tokenizer.json lives there)
  std::string format;                        // "ctranslate2" or "huggingface"
};

// Loads a CTranslate2 directory (model.bin + config.json) or a Hugging Face one (model.safetensors +
// config.json [+ generation_config.json]), whichever `dir` holds. Throws IoError naming the file and the problem.
WhisperWeights load_whisper_weights(const std::string& dir);
WhisperWeights load_whisper_ct2(const std::string& dir);
WhisperWeights load_whisper_hf(const std::string& dir);

// Writes `w` as a Hugging Face transformers Whisper directory: model.safetensors (transformers' tensor names,
// tied output projection not stored), config.json, generation_config.json, preprocessor_config.json and the
// source's tokenizer.json. Tensors are stored as `dtype`, by default the source's float type (lossless).
// Every file is written atomically; `out_dir` is created if needed.
void save_whisper_hf(const WhisperWeights& w, const std::string& out_dir, std::optional<io::DType> dtype = {});

}  // namespace quasr::models
