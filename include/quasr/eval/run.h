#pragma once
// quasr's main job: evaluate one model under one quantization recipe on real speech and report what it does to
// accuracy (WER/CER with bootstrap CIs), size (exact stored bytes per tensor and in total), memory (modelled and
// measured) and speed (real-time factor, encode/decode split). `quasr eval` and the `quasr sweep` callback are
// thin wrappers over evaluate().
//
//   EvalRequest req;  req.model = "tiny.en";  req.data = "mini-eval";  req.selection.limit = 40;
//   req.out_dir = "eval-out";                         // utterances.jsonl + summary.json
//   EvalResult r = evaluate(req);                     // progress lines on stderr
//
// Decoding uses faster-whisper's defaults except the beam size, which defaults to 1 (greedy) here so an
// evaluation finishes in minutes; pass beam_size = 5 to score what `quasr transcribe` would output.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/results.h"
#include "quasr/models/whisper.h"
#include "quasr/quant/recipe.h"

namespace quasr::eval {

struct EvalRequest {
  std::string model = "tiny.en";  // name resolved by models::resolve_model_dir, or a model directory
  std::string recipe = "fp32";    // "fp32" or a quant recipe: text, preset (w8a8, w4-g128...) or @file
  std::string data;               // split dir, manifest, or a name (mini-eval, mini-calib, test-clean)
  Selection selection;
  bool simulate = false;  // quantized recipes: simulation path instead of the native low-bit kernels
  int beam_size = 1;
  std::string language;  // "" = English-only models: en; multilingual: detect
  int threads = 0;  // 0 = all cores
  // Utterances decoded at once, each on one thread (its kernels run inline on its worker): N > 1 uses N cores for
  // N times the throughput of `threads = 1` (batch-1 decoding scales poorly across threads), with the same
  // records as `threads = 1`. `threads` is not used then. Records stay in dataset order.
  int jobs = 1;
  std::string normalizer = "english";
  std::filesystem::path out_dir;  // empty: write nothing
  bool resume = false;            // skip utterances already in out_dir/utterances.jsonl (same model/recipe/beam)
  size_t write_every = 8;         // utterances.jsonl is rewritten atomically after every batch of this many
  std::ostream* progress = nullptr;  // progress lines; nullptr = std::cerr
  // Progress (e.g. a sweep's ETA): called once before decoding with the resumed count (0 if none), then after each
  // decoded utterance with the number finished so far.
  std::function<void(size_t done, size_t total)> on_utterance;
  bool quiet = false;
  BootstrapOptions bootstrap;
};

// One stored tensor under the recipe.
struct TensorSize {
  std::string tensor;  // canonical name
  std::string role;    // models::role_name (attn_q, mlp_fc1, token_embedding, ...)
  int layer = -1;
  std::string format;  // weight QuantSpec text ("fp32", "int4:g128", ...)
  std::string activation = "none";  // activation treatment of a quantized Linear ("int8-dyn-token", ...)
  int64_t bytes = 0;   // payload + scales + zero points + codebook + tensor scale
  int64_t elements = 0;
  bool linear = false;  // a Linear layer weight (attention/MLP projections); conv, embeddings, norms, biases not
};

struct SizeBreakdown {
  int64_t bytes = 0, elements = 0;
  double bits_per_weight() const { return elements ? 8.0 * bytes / elements : 0; }
  double compression_vs_fp32() const { return bytes ? 4.0 * elements / bytes : 0; }
  double compression_vs_fp16() const { return bytes ? 2.0 * elements / bytes : 0; }
};

struct SizeReport {
  std::vector<TensorSize> tensors;
  SizeBreakdown linear, model;  // Linear weights alone (as the Whisper quantization studies report) / everything
  int64_t source_file_bytes = 0;  // the model file as shipped (e.g. FP16 model.bin), 0 if unknown
};

// Exact stored size of a Whisper model of `config` under `recipe` (per tensor: the quant plan's
// formats::expected_storage, equal to QTensor::storage() of the tensor quantize() produces; FP32 for the tensors
// a recipe never quantizes: norms, biases, positional embeddings). Tensors the network never stores (Whisper's
// absent K bias, which CTranslate2 keeps as zeros) are not counted.
SizeReport model_size(const models::WhisperConfig& config, const std::string& recipe);

// Modelled memory of the runtime (see docs/eval.md "Memory model"), KV caches at the recipe's kv= precision
// (models::whisper_kv_cache_bytes, the formula the runtime allocates by; row = one position's n_text_state
// values: 4 or 2 bytes each at fp32 / fp16, 1 byte plus one FP32 scale per head at int8 / fp8):
//   kv_self  = n_text_layer x 2 (K,V) x beam x n_text_ctx x row bytes   (allocated at start())
//   kv_cross = n_text_layer x 2 (K,V) x n_audio_ctx x row bytes         (shared by the beams)
//   activations = the encoder's peak working set (it dominates the decoder's): the larger of the conv stem
//     (mel + im2col + conv1 out + x) and a block (x + 6 T x d buffers + T x ffn MLP + one 256 x T score block
//     per thread), plus the encoder output kept for cross-attention.
struct MemoryModel {
  int64_t weights = 0, kv_self = 0, kv_cross = 0, activations = 0;
  std::string kv_precision = "fp32";
  double kv_bytes_per_element = 4;  // cached bytes per K/V value, scales included (4, 2, 1 + 4 / d_head)
  int64_t total() const { return weights + kv_self + kv_cross + activations; }
};
MemoryModel model_memory(const models::WhisperConfig& config, int64_t weight_bytes, int beam_size, int threads,
                         quant::KvPrecision kv = quant::KvPrecision::kFp32);

struct SpeedReport {
  double audio_seconds = 0;
  double wall_seconds = 0;  // transcribe() wall time summed over utterances (mel + encode + decode)
  double mel_seconds = 0, encode_seconds = 0, decode_seconds = 0;
  double load_seconds = 0;  // model load (not in the RTF)
  double rtf() const { return audio_seconds > 0 ? wall_seconds / audio_seconds : 0; }
};

struct EvalResult {
  std::string model, model_dir, recipe, data_source;
  std::string execution;  // "fp32", "native" (low-bit kernels), or "simulated" (dequantized weights,
                          // fake-quantized activations: the scheme's accuracy, not its speed)
  int beam_size = 1, threads = 1;  // threads per utterance
  int jobs = 1;                    // utterances decoded at once
  std::vector<UtteranceRecord> records;  // in dataset order
  size_t resumed = 0;                    // records taken from a previous run
  SystemSummary summary;
  SizeReport size;
  MemoryModel memory;
  int64_t peak_rss_bytes = 0;
  SpeedReport speed;  // over the utterances decoded in this run (resumed ones excluded); with jobs > 1 each
                      // utterance's wall time is its own stream's, so the RTF is per stream, not throughput
};

// With request.resume, the records already in out_dir/utterances.jsonl are of another run (other model directory,
// recipe, decoding options): thrown before anything is decoded, so a caller that owns the directory (a sweep's
// in-progress point) can discard it and start the point afresh.
class ResumeMismatch : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

EvalResult evaluate(const EvalRequest& request);

// The summary.json object (without the per-tensor list unless `with_tensors`).
nlohmann::json summary_json(const EvalResult& r, bool with_tensors = true);

// `data`: an existing path (split dir or manifest), or a split name looked up as $QUASR_DATA_DIR/<name>,
// $QUASR_DATA_DIR/LibriSpeech/<name>, then <repo>/../shared/data/LibriSpeech/<name> (and <repo>/shared/...).
// Throws InvalidArgument listing where it looked.
std::filesystem::path resolve_dataset(const std::string& data);

// Peak resident set size of this process (VmHWM; getrusage's ru_maxrss where /proc is missing), in bytes.
// evaluate() resets it first (reset_peak_rss: /proc/self/clear_refs "5", Linux >= 4.0) so that each
// evaluation in one process (a sweep) measures its own peak; where the reset is refused the peak is the
// process's since start, which can only overstate.
int64_t peak_rss_bytes();
void reset_peak_rss();

// Throws InvalidArgument naming the problem unless `recipe` is "fp32" or a recipe the quant module accepts.
void check_recipe(const std::string& recipe);

}  // namespace quasr::eval
