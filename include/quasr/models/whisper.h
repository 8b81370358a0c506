#pragma once
// The Whisper network: conv stem + sinusoidal positions + pre-LN encoder blocks; decoder with learned positions,
// causal self-attention with a KV cache and cross-attention over cached encoder K/V. Full precision computes in
// FP32. Decoding strategies (greedy, beam search, timestamps, long-form) live in whisper_decode.h and use only
// this interface. Sequences in a DecoderState are decoded together so beams share one pass over the weights.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace quasr::models {

struct WhisperConfig {
  int n_mels = 80;
  int n_audio_ctx = 1500;  // encoder positions (3000 mel frames / 2)
  int n_audio_state = 0;   // d_model
  int n_audio_head = 0;
  int n_audio_layer = 0;
  int n_text_ctx = 448;
  int n_text_state = 0;
  int n_text_head = 0;
  int n_text_layer = 0;
  int n_vocab = 0;
  int n_audio_ffn = 0;  // MLP hidden size (4 * d_model in every released Whisper)
  int n_text_ffn = 0;
  bool multilingual = false;  // n_vocab >= 51865
  // From the model directory's config.json (CTranslate2 layout) or generation_config.json (Hugging Face).
  std::vector<int> suppress_ids;        // always suppressed ("-1" in faster-whisper's suppress_tokens)
  std::vector<int> suppress_ids_begin;  // suppressed at the first sampled position
  std::vector<int> lang_ids;            // token ids of <|en|>, <|de|>, ... (multilingual models), ascending
  std::vector<std::pair<int, int>> alignment_heads;  // (decoder layer, head) pairs for word timestamps
};

// Opaque per-batch decoder state: self-attention KV cache per sequence, shared cross-attention K/V. The virtual
// destructor lets callers own it through unique_ptr without seeing its definition.
struct DecoderState {
  virtual ~DecoderState() = default;
};

// Sees the input of every Linear of the network (a conv as its im2col matrix [time][in_ch * 3]) before the
// product and before any input transform, for calibration (models/whisper_calibrate.h). Called on the thread that
// runs the model, in network order.
class LinearInputObserver {
 public:
  virtual ~LinearInputObserver() = default;
  // x: `rows` rows of width `k`, `ldx` floats apart. `weight_name`: the Linear's canonical weight name (the names
  // of whisper_quantizable_tensors, e.g. "model.encoder.layers.0.fc1.weight").
  virtual void observe(const std::string& weight_name, const float* x, int64_t rows, int64_t ldx, int64_t k) = 0;
};

class WhisperModel {
 public:
  virtual ~WhisperModel() = default;
  // `path_or_name`: a model directory (model.bin + config.json + tokenizer.json), or a name such as "tiny.en"
  // resolved under $QUASR_MODELS_DIR or <repo>/models. Throws IoError / InvalidArgument naming the problem.
  static std::unique_ptr<WhisperModel> load(const std::string& path_or_name);

  virtual const WhisperConfig& config() const = 0;
  virtual const std::string& directory() const = 0;

  // mel: [n_mels][3000] row-major (one 30-s window). Returns encoder output [n_audio_ctx][n_audio_state].
  virtual std::vector<float> encode(std::span<const float> mel) const = 0;

  // A decoder state for `batch` sequences over one encoder output (cross-attention K/V computed once, shared).
  virtual std::unique_ptr<DecoderState> start(std::span<const float> encoder_out, int batch) const = 0;
  // Appends `n_per_seq` tokens to every sequence (tokens: [batch][n_per_seq]) and writes the logits of each
  // sequence's last position: logits [batch][n_vocab].
  virtual void step(DecoderState& state, std::span<const int> tokens, int n_per_seq,
                    std::span<float> logits) const = 0;
  // As step(), but writes the logits of every new position: logits [batch][n_per_seq][n_vocab] (teacher forcing:
  // one pass scores a whole given sequence). The base implementation feeds the tokens one position at a time.
  virtual void step_all_positions(DecoderState& state, std::span<const int> tokens, int n_per_seq,
                                  std::span<float> logits) const;
  // Reorders / duplicates sequences for beam search: new sequence i continues old sequence src[i].
  // src.size() becomes the new batch size.
  virtual void reorder(DecoderState& state, std::span<const int> src) const = 0;
  // Number of tokens already in sequence 0's cache.
  virtual int cached_length(const DecoderState& state) const = 0;
  // Installs (or, with nullptr, removes) an observer of every Linear's input. The observer must outlive its
  // installation. Models that cannot report inputs throw InvalidArgument for a non-null observer.
  virtual void set_input_observer(LinearInputObserver* observer);
  // Replaces the FP32 values of one full-precision matrix (canonical weight name of whisper_quantizable_tensors: a
  // Linear, conv1/conv2 as [out][in_ch * 3], or the token embedding, which is also the tied output projection) and
  // returns the previous values: layer sensitivity perturbs one weight, measures and swaps the original back
  // without copying the model. `values` must have the matrix's size, or be empty to take the weight out (the
  // model must not run until a matrix is swapped back); a quantized layer is refused. Models that cannot do this
  // throw InvalidArgument.
  virtual std::vector<float> swap_weight(const std::string& weight_name, std::vector<float> values);
  // How many weight values of full-precision matrices the model holds as FP16, because every value of those
  // matrices is an FP16 number (the products stay FP32 and bit-identical; QUASR_FP32_WEIGHTS=1 at load keeps them
  // FP32): each takes 2 bytes in memory instead of the 4 the size report counts. 0 for models that never do this.
  virtual int64_t weight_values_held_as_fp16() const { return 0; }
};

// Resolves a model name ("tiny.en", "base") or directory to a directory path; throws InvalidArgument listing the
// installed names when it is neither.
std::string resolve_model_dir(const std::string& path_or_name);

}  // namespace quasr::models
