#pragma once
// Quantized Whisper models: the spec table seen as quantizable tensors (for recipes), quantization of loaded
// weights by a plan, the .quasr container for Whisper (config and tokenizer embedded as text), and loading a
// model natively or through the simulation path (docs/quantization.md).
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quasr/models/whisper.h"
#include "quasr/models/whisper_spec.h"
#include "quasr/quant/container.h"
#include "quasr/quant/quantized_weight.h"
#include "quasr/quant/recipe.h"

namespace quasr::models {

// Every matrix of the spec table a recipe can quantize, in table order: Linear weights, conv1/conv2 (as
// [out][in_ch * 3]) and the token embedding (tied output projection). Shapes are the 2-D [out][K] view.
std::vector<quant::TensorInfo> whisper_quantizable_tensors(const WhisperConfig& c);

// Per-Linear input multipliers by canonical weight name: the runtime multiplies every input row elementwise by
// them before the product (AWQ's input_scale, SmoothQuant's 1/s where no LayerNorm absorbs it); stored in a .quasr
// container (revision 2) as NAME#input_scale.
using InputScales = quant::InputScales;

struct WhisperQuantization {
  std::vector<quant::PlanEntry> plan;  // resolved; static activation scales filled from the calibration
  std::map<std::string, quant::ContainerTensor> quantized;
  InputScales input_scales;
};
// The quantization pipeline (models/whisper_ptq.cpp, docs/ptq.md): resolves the recipe's plan over the model;
// with calib=FILE loads the calibration and checks it was made on this model (the hash of w.directory's weights
// file); with smooth=ALPHA applies SmoothQuant (modifying `w`: the smoothed weights, LayerNorm gains and biases
// that absorb 1/s); with rotate=hadamard replaces every planned weight but the tied embedding by W H (modifying `w`;
// ContainerTensor::hadamard_block tells the runtime to rotate the input); rounds every planned weight with algo=
// (rtn; gptq on the input's X^T X; awq on its samples, giving an input scale per Linear), all on the statistics of
// the input the Linear will see (smoothed, rotated); fills static activation scales
// (a=FMT-static) with calibrator=, for the input the Linear finally sees. Throws InvalidArgument naming the
// tensor and the problem.
WhisperQuantization quantize_whisper(WhisperWeights& w, const quant::Recipe& recipe);

// Whether the pipeline gives this plan entry a runtime input scale (a quantized tensor with algo=awq, or with
// smooth= where no block LayerNorm feeds it): exact size accounting adds its 4 * K bytes without running the
// pipeline.
bool whisper_input_scaled(const quant::Recipe& recipe, const quant::PlanEntry& entry);

// Writes a .quasr container: `quantized` tensors as QTensor sections, every other tensor of the spec table as
// its source float type, the config as JSON and tokenizer.json's text (from w.directory) in the metadata, the
// recipe and `source_sha256`.
// `input_scales` (AWQ) are stored with the tensors they belong to.
void save_whisper_quasr(const std::string& path, const WhisperWeights& w,
                        const std::map<std::string, quant::ContainerTensor>& quantized, const std::string& recipe,
                        const std::string& source_sha256, const InputScales& input_scales = {});

// A .quasr container read and checked against the Whisper spec table (every tensor present, shapes matching).
struct WhisperQuasr {
  WhisperWeights weights;  // dense tensors; quantized ones hold their dequantized values (see `dequantize`)
  std::map<std::string, quant::ContainerTensor> quantized;
  InputScales input_scales;  // checked: each belongs to a quantizable matrix and has its K positive finite values
  std::string recipe, source_sha256, tokenizer_json;
};
// `dequantize`: fill the quantized tensors' values (simulation); otherwise only the token embedding's (its lookup).
WhisperQuasr load_whisper_quasr(const std::string& path, bool dequantize = true);

// The weights file of a model directory (model.bin or model.safetensors): what a container's source hash covers.
std::string whisper_source_file(const std::string& dir);

// True if `path` is a regular file (a model given as a file is a .quasr container).
bool is_model_file(const std::string& path);

struct WhisperLoadOptions {
  bool simulate = false;  // run quantized layers through the simulation path instead of native kernels
  std::string recipe;     // quantize a float model on load with this recipe (text, preset, @file); "" = none
};
// Loads a model directory / name / .quasr file, quantizing on the fly when options.recipe is set. The KV cache
// precision is the recipe's kv= (for a .quasr file: the recipe stored in it).
std::unique_ptr<WhisperModel> load_whisper_model(const std::string& path_or_name, const WhisperLoadOptions& options);

// Quantized layers by canonical weight name (what build_whisper_model attaches to each Linear).
using QuantizedLinears = std::map<std::string, std::shared_ptr<const quant::QuantizedWeight>, std::less<>>;
// Builds the network from weights, attaching quantized weights, with the decoder's KV caches stored at `kv`
// (the recipe's kv=), and each Linear of `input_scales` multiplying its input by them (the token embedding's lookup
// multiplies the looked-up row too, so that lookup and output projection stay one tensor); defined with the network
// (whisper_model.cpp). Throws InvalidArgument for an input scale of no Linear or of the wrong length.
std::unique_ptr<WhisperModel> build_whisper_model(WhisperWeights&& w, const QuantizedLinears& quantized,
                                                  quant::KvPrecision kv = quant::KvPrecision::kFp32,
                                                  const InputScales& input_scales = {});

}  // namespace quasr::models
