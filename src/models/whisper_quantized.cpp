// Quantized Whisper: recipes over the spec table, the .quasr container for Whisper, native / simulated loading.
#include "quasr/models/whisper_quantized.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/core/release.h"
#include "quasr/io/file_util.h"
#include "quasr/models/whisper_sensitivity.h"

namespace quasr::models {
namespace {

// Frees a QTensor's sections, keeping its spec and shape (for messages); dequantize() on it then throws.
void release_sections(formats::QTensor& q) {
  release(q.payload);
  release(q.scales);
  release(q.zero_points);
  release(q.codebook);
}

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kConfigKey = "whisper.config";
constexpr const char* kTokenizerKey = "whisper.tokenizer_json";
constexpr const char* kSourceDirKey = "whisper.source_directory";

bool quantizable(const WhisperTensorSpec& s) {
  return s.param == WhisperParam::kWeight && (s.is_matrix() || s.role == WhisperRole::kTokenEmbedding);
}

std::vector<int64_t> matrix_view(const std::vector<int64_t>& shape) {
  int64_t k = 1;
  for (size_t i = 1; i < shape.size(); ++i) k *= shape[i];
  return {shape.at(0), k};
}

json config_json(const WhisperConfig& c) {
  return {{"n_mels", c.n_mels},           {"n_audio_ctx", c.n_audio_ctx},     {"n_audio_state", c.n_audio_state},
          {"n_audio_head", c.n_audio_head}, {"n_audio_layer", c.n_audio_layer}, {"n_text_ctx", c.n_text_ctx},
          {"n_text_state", c.n_text_state}, {"n_text_head", c.n_text_head},   {"n_text_layer", c.n_text_layer},
          {"n_vocab", c.n_vocab},         {"n_audio_ffn", c.n_audio_ffn},     {"n_text_ffn", c.n_text_ffn},
          {"multilingual", c.multilingual}, {"suppress_ids", c.suppress_ids},
          {"suppress_ids_begin", c.suppress_ids_begin}, {"lang_ids", c.lang_ids},
          {"alignment_heads", c.alignment_heads}};
}

WhisperConfig config_from_json(const json& j) {
  WhisperConfig c;
  c.n_mels = j.at("n_mels");
  c.n_audio_ctx = j.at("n_audio_ctx");
  c.n_audio_state = j.at("n_audio_state");
  c.n_audio_head = j.at("n_audio_head");
  c.n_audio_layer = j.at("n_audio_layer");
  c.n_text_ctx = j.at("n_text_ctx");
  c.n_text_state = j.at("n_text_state");
  c.n_text_head = j.at("n_text_head");
  c.n_text_layer = j.at("n_text_layer");
  c.n_vocab = j.at("n_vocab");
  c.n_audio_ffn = j.at("n_audio_ffn");
  c.n_text_ffn = j.at("n_text_ffn");
  c.multilingual = j.at("multilingual");
  c.suppress_ids = j.at("suppress_ids").get<std::vector<int>>();
  c.suppress_ids_begin = j.at("suppress_ids_begin").get<std::vector<int>>();
  c.lang_ids = j.at("lang_ids").get<std::vector<int>>();
  c.alignment_heads = j.at("alignment_heads").get<std::vector<std::pair<int, int>>>();
  auto positive = [](int v) { return v > 0 && v < (1 << 20); };
  if (!positive(c.n_mels) || !positive(c.n_audio_ctx) || !positive(c.n_audio_state) || !positive(c.n_audio_head) ||
      !positive(c.n_audio_layer) || !positive(c.n_text_ctx) || !positive(c.n_text_state) || !positive(c.n_text_head) ||
      !positive(c.n_text_layer) || !positive(c.n_vocab) || !positive(c.n_audio_ffn) || !positive(c.n_text_ffn) ||
      c.n_audio_state % c.n_audio_head != 0 || c.n_text_state % c.n_text_head != 0)
    throw InvalidArgument("dimensions out of range or not divisible by the head count");
  return c;
}

std::string embedding_name(const WhisperConfig& c) {
  for (const WhisperTensorSpec& s : whisper_tensor_specs(c))
    if (s.role == WhisperRole::kTokenEmbedding) return s.name;
  QUASR_ASSERT(false && "no token embedding in the Whisper table");
  std::abort();
}

}  // namespace

std::string whisper_source_file(const std::string& dir) {
  for (const char* f : {"model.bin", "model.safetensors"})
    if (io::file_exists((fs::path(dir) / f).string())) return (fs::path(dir) / f).string();
  throw IoError(dir + ": no model.bin or model.safetensors to hash");
}

std::vector<quant::TensorInfo> whisper_quantizable_tensors(const WhisperConfig& c) {
  std::vector<quant::TensorInfo> out;
  for (const WhisperTensorSpec& s : whisper_tensor_specs(c)) {
    if (!quantizable(s)) continue;
    quant::TensorInfo t;
    t.name = s.name;
    t.stack = stack_name(s.stack);
    t.layer = s.layer;
    t.role = role_name(s.role);
    t.kind = s.role == WhisperRole::kConv1 || s.role == WhisperRole::kConv2 ? quant::TensorInfo::Kind::kConv
             : s.role == WhisperRole::kTokenEmbedding                      ? quant::TensorInfo::Kind::kEmbedding
                                                                           : quant::TensorInfo::Kind::kLinear;
    t.shape = matrix_view(s.shape);
    out.push_back(std::move(t));
  }
  return out;
}

void save_whisper_quasr(const std::string& path, const WhisperWeights& w,
                        const std::map<std::string, quant::ContainerTensor>& quantized, const std::string& recipe,
                        const std::string& source_sha256, const InputScales& input_scales) {
  quant::Container c;
  c.input_scales = input_scales;
  for (const WhisperTensorSpec& s : whisper_tensor_specs(w.config))
    if (!quantized.count(s.name)) c.dense.emplace(s.name, w.tensors.at(s.name));
  c.quantized = quantized;
  c.recipe = recipe;
  c.source_sha256 = source_sha256;
  c.extra[kConfigKey] = config_json(w.config).dump();
  const std::string tok = (fs::path(w.directory) / "tokenizer.json").string();
  if (io::file_exists(tok)) {
    const auto bytes = io::read_file_bytes(tok);
    c.extra[kTokenizerKey] = std::string(bytes.begin(), bytes.end());
  }
  c.extra[kSourceDirKey] = fs::absolute(w.directory).string();
  quant::write_container(path, c);
}

WhisperQuasr load_whisper_quasr(const std::string& path, bool dequantize) {
  quant::Container c = quant::read_container(path);
  auto bad = [&](const std::string& why) { return IoError(path + ": not a valid quasr Whisper model: " + why); };
  WhisperQuasr m;
  if (!c.extra.count(kConfigKey)) throw bad("metadata lacks " + std::string(kConfigKey));
  try {
    m.weights.config = config_from_json(json::parse(c.extra[kConfigKey]));
  } catch (const std::exception& e) {
    throw bad(std::string(kConfigKey) + " is invalid (" + e.what() + ")");
  }
  const auto specs = whisper_tensor_specs(m.weights.config);
  size_t matched = 0;
  for (const WhisperTensorSpec& s : specs) {
    if (auto q = c.quantized.find(s.name); q != c.quantized.end()) {
      if (!quantizable(s)) throw bad("tensor " + s.name + " is quantized but the runtime keeps it in float");
      if (q->second.q.shape != matrix_view(s.shape))
        throw bad("quantized tensor " + s.name + " has the wrong shape for this configuration");
      io::Tensor t;
      t.shape = s.shape;
      // Natively no FP32 copy: the kernels hold their own layout and the embedding looks rows up from the codes.
      if (dequantize) t.values = q->second.q.dequantize();
      m.weights.tensors.emplace(s.name, std::move(t));
      ++matched;
      continue;
    }
    auto d = c.dense.find(s.name);
    if (d == c.dense.end()) throw bad("tensor " + s.name + " is missing");
    if (d->second.shape != s.shape) throw bad("tensor " + s.name + " has shape " + d->second.shape_string());
    m.weights.tensors.emplace(s.name, std::move(d->second));
    ++matched;
  }
  if (matched != c.dense.size() + c.quantized.size())
    throw bad("it holds tensors that are not part of a Whisper model of this configuration");
  // The container checked each input scale's length against its tensor; here: that tensor is a Linear's weight.
  for (const auto& [name, s] : c.input_scales) {
    bool linear = false;
    for (const WhisperTensorSpec& spec : specs) linear = linear || (spec.name == name && quantizable(spec));
    if (!linear) throw bad("input scale of " + name + ", which is not the weight of a Linear, conv or the embedding");
  }
  m.input_scales = std::move(c.input_scales);
  m.quantized = std::move(c.quantized);
  m.recipe = c.recipe;
  m.source_sha256 = c.source_sha256;
  m.tokenizer_json = c.extra.count(kTokenizerKey) ? c.extra[kTokenizerKey] : "";
  // The decoding side reads tokenizer.json from the model's directory: the source directory when it is still
  // there, else the container's own directory.
  const std::string src = c.extra.count(kSourceDirKey) ? c.extra[kSourceDirKey] : "";
  m.weights.directory = !src.empty() && io::file_exists((fs::path(src) / "tokenizer.json").string())
                            ? src
                            : fs::absolute(path).parent_path().string();
  m.weights.format = "quasr";
  return m;
}

bool is_model_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::unique_ptr<WhisperModel> load_whisper_model(const std::string& path_or_name, const WhisperLoadOptions& o) {
  std::map<std::string, quant::ContainerTensor> quantized;
  InputScales input_scales;
  WhisperWeights w;
  quant::KvPrecision kv = quant::KvPrecision::kFp32;
  if (is_model_file(path_or_name)) {
    if (!o.recipe.empty())
      throw InvalidArgument("model " + path_or_name + " is already quantized; a recipe applies to float models");
    WhisperQuasr q = load_whisper_quasr(path_or_name, o.simulate);
    w = std::move(q.weights);
    quantized = std::move(q.quantized);
    input_scales = std::move(q.input_scales);
    if (!q.recipe.empty()) {
      try {
        kv = quant::Recipe::parse(q.recipe).kv;
      } catch (const InvalidArgument& e) {
        throw IoError(path_or_name + ": the recipe stored in the container does not parse: " + e.what());
      }
    }
  } else {
    const std::string dir = resolve_model_dir(path_or_name);
    w = load_whisper_weights(dir);
    if (!o.recipe.empty()) {
      const quant::Recipe recipe = expand_whisper_auto_bits(quant::Recipe::from_argument(o.recipe), dir, w.config);
      kv = recipe.kv;
      WhisperQuantization q = quantize_whisper(w, recipe);
      quantized = std::move(q.quantized);
      input_scales = std::move(q.input_scales);
      for (auto& [name, ct] : quantized) {
        // Simulation multiplies by the dequantized weight; natively the kernels hold their own layout and the
        // embedding looks rows up from the codes (Linear::weight_row), so no FP32 copy is kept.
        auto& t = w.tensors.at(name);
        if (o.simulate) t.values = ct.q.dequantize();
        else release(t.values);
      }
    }
  }
  QuantizedLinears layers;
  const std::string embedding = embedding_name(w.config);
  for (auto& [name, ct] : quantized) {
    auto qw = std::make_shared<quant::QuantizedWeight>();
    qw->qtensor = std::move(ct.q);
    qw->act = ct.act;
    qw->input_hadamard_block = ct.hadamard_block;
    if (o.simulate) quant::prepare_integer_simulation(*qw);
    if (!o.simulate) {
      try {
        qw->prepared = kernels::prepare_weight(qw->qtensor, qw->act);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument("tensor " + name + " (" + qw->qtensor.spec.to_string() + ", activations " +
                              quant::activation_text(qw->act) + ") has no native kernel: " + e.what() +
                              "; run it with --simulate");
      }
      // The prepared weight is the kernel's own copy: the stored codes stay only where rows are looked up.
      if (name != embedding) release_sections(qw->qtensor);
    }
    layers.emplace(name, std::move(qw));
  }
  return build_whisper_model(std::move(w), layers, kv, input_scales);
}

}  // namespace quasr::models
