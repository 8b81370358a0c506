// Loading Whisper weights from CTranslate2 and Hugging Face directories, and writing Hugging Face ones, as
// queries over the tensor table (whisper_spec.cpp). Every inconsistency is an IoError naming the file.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "quasr/core/error.h"
#include "quasr/io/ct2_model_bin.h"
#include "quasr/io/file_util.h"
#include "quasr/io/safetensors.h"
#include "quasr/models/whisper_spec.h"

namespace quasr::models {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string join(const std::string& dir, const char* file) { return (fs::path(dir) / file).string(); }

std::string shape_str(const std::vector<int64_t>& s) {
  io::Tensor t;
  t.shape = s;
  return t.shape_string();
}

// ---- config.json helpers ---------------------------------------------------------------------------------------
std::vector<int> int_list(const json& j, const char* key, const std::string& file) {
  std::vector<int> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  if (!j[key].is_array()) throw IoError(file + ": '" + key + "' is not a list of integers");
  for (const auto& v : j[key]) {
    if (!v.is_number_integer()) throw IoError(file + ": '" + key + "' is not a list of integers");
    out.push_back(v.get<int>());
  }
  return out;
}

std::vector<std::pair<int, int>> head_list(const json& j, const char* key, const std::string& file) {
  std::vector<std::pair<int, int>> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  if (!j[key].is_array()) throw IoError(file + ": '" + key + "' is not a list of [layer, head] pairs");
  for (const auto& v : j[key]) {
    if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer())
      throw IoError(file + ": '" + key + "' is not a list of [layer, head] pairs");
    out.emplace_back(v[0].get<int>(), v[1].get<int>());
  }
  return out;
}

int required_int(const json& j, const char* key, const std::string& file) {
  if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0 ||
      j[key].get<int64_t>() > (1 << 24))
    throw IoError(file + ": missing or invalid '" + key + "' (a positive integer is required)");
  return j[key].get<int>();
}

// Checks the numbers of a configuration against each other; `file` names where they came from.
void validate_config(const WhisperConfig& c, const std::string& file) {
  auto bad = [&](const std::string& msg) { throw IoError(file + ": " + msg); };
  if (c.n_mels != 80 && c.n_mels != 128)
    bad("the encoder takes " + std::to_string(c.n_mels) + " mel bins; Whisper models use 80 or 128");
  if (c.n_audio_state <= 0 || c.n_text_state <= 0) bad("model width must be positive");
  if (c.n_audio_head <= 0 || c.n_audio_state % c.n_audio_head)
    bad("encoder heads (" + std::to_string(c.n_audio_head) + ") do not divide the width " +
        std::to_string(c.n_audio_state));
  if (c.n_text_head <= 0 || c.n_text_state % c.n_text_head)
    bad("decoder heads (" + std::to_string(c.n_text_head) + ") do not divide the width " +
        std::to_string(c.n_text_state));
  if (c.n_audio_layer <= 0 || c.n_text_layer <= 0) bad("the model has no encoder or no decoder layers");
  if (c.n_audio_ctx <= 0 || c.n_text_ctx <= 0 || c.n_vocab <= 0 || c.n_audio_ffn <= 0 || c.n_text_ffn <= 0)
    bad("context lengths, vocabulary and MLP sizes must be positive");
  for (const auto* list : {&c.suppress_ids, &c.suppress_ids_begin, &c.lang_ids})
    for (int id : *list)
      if (id < 0 || id >= c.n_vocab)
        bad("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(c.n_vocab));
  for (auto [l, h] : c.alignment_heads)
    if (l < 0 || l >= c.n_text_layer || h < 0 || h >= c.n_text_head)
      bad("alignment head (" + std::to_string(l) + ", " + std::to_string(h) + ") does not exist in a decoder of " +
          std::to_string(c.n_text_layer) + " layers x " + std::to_string(c.n_text_head) + " heads");
}

// A preprocessor_config.json (faster-whisper ships one with 128-bin models) must agree on the mel bins.
void check_preprocessor(const std::string& dir, int n_mels) {
  const std::string path = join(dir, "preprocessor_config.json");
  if (!io::file_exists(path)) return;
  const json j = io::read_json_file(path);
  if (j.contains("feature_size") && (!j["feature_size"].is_number_integer() || j["feature_size"].get<int>() != n_mels))
    throw IoError(path + ": feature_size " + j["feature_size"].dump() + " contradicts the model's encoder, which takes " +
                  std::to_string(n_mels) + " mel bins");
}

void require_file(const std::string& path, const std::string& what) {
  if (!io::file_exists(path)) throw IoError(path + ": missing (" + what + ")");
}

// ---- CTranslate2 -----------------------------------------------------------------------------------------------
const io::Tensor& ct2_var(const io::Ct2ModelBin& m, const std::string& name) {
  const io::Tensor* t = m.find(name);
  if (!t) throw IoError(m.path + ": missing variable '" + name + "'");
  return *t;
}

int ct2_scalar(const io::Ct2ModelBin& m, const std::string& name) {
  const io::Tensor& t = ct2_var(m, name);
  if (t.values.size() != 1) throw IoError(m.path + ": variable '" + name + "' should be a scalar, has shape " + t.shape_string());
  return static_cast<int>(t.values[0]);
}

// Number of blocks under `prefix` ("encoder/layer_"): 1 + the largest index N of a variable "<prefix>N/...".
// Gaps are caught later, when the table asks for a variable of the missing layer.
int count_layers(const io::Ct2ModelBin& m, const std::string& prefix) {
  int n = 0;
  for (const auto& [name, t] : m.variables) {
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t end = name.find('/', prefix.size());
    const std::string idx = name.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
    if (idx.empty() || idx.size() > 4 || idx.find_first_not_of("0123456789") != std::string::npos) continue;
    n = std::max(n, std::stoi(idx) + 1);
  }
  return n;
}

// Flags of the generic CT2 Transformer that Whisper fixes; a model with other values would need other code.
void check_ct2_flags(const io::Ct2ModelBin& m) {
  const std::pair<const char*, int> expected[] = {{"decoder/activation", 3 /* GELU (erf) */},
                                                  {"decoder/pre_norm", 1},
                                                  {"decoder/scale_embeddings", 0},
                                                  {"decoder/alibi", 0},
                                                  {"decoder/start_from_zero_embedding", 0}};
  for (auto [name, value] : expected)
    if (m.find(name) && ct2_scalar(m, name) != value)
      throw IoError(m.path + ": unsupported model: '" + name + "' is " + std::to_string(ct2_scalar(m, name)) +
                    ", quasr's Whisper network requires " + std::to_string(value));
}

const std::set<std::string> kCt2KnownScalars = {
    "encoder/num_heads", "decoder/num_heads", "decoder/activation", "decoder/pre_norm", "decoder/scale_embeddings",
    "decoder/alibi", "decoder/start_from_zero_embedding", "decoder/alignment_heads", "decoder/alignment_layer"};

}  // namespace

WhisperWeights load_whisper_ct2(const std::string& dir) {
  const std::string bin_path = join(dir, "model.bin"), cfg_path = join(dir, "config.json");
  require_file(bin_path, "a CTranslate2 model directory needs model.bin");
  require_file(cfg_path, "a CTranslate2 Whisper directory needs config.json");
  io::Ct2ModelBin m = io::read_ct2_model_bin(bin_path);
  if (m.spec_name != "WhisperSpec")
    throw IoError(bin_path + ": not a Whisper model (spec '" + m.spec_name + "', expected 'WhisperSpec')");
  if (m.spec_revision != 3)
    throw IoError(bin_path + ": unsupported WhisperSpec revision " + std::to_string(m.spec_revision) +
                  " (quasr reads revision 3)");
  check_ct2_flags(m);

  WhisperWeights w;
  w.directory = dir;
  w.format = "ctranslate2";
  WhisperConfig& c = w.config;
  const io::Tensor& conv1 = ct2_var(m, "encoder/conv1/weight");
  if (conv1.shape.size() != 3 || conv1.shape[2] != 3)
    throw IoError(bin_path + ": 'encoder/conv1/weight' has shape " + conv1.shape_string() + ", expected [d_model, n_mels, 3]");
  c.n_audio_state = static_cast<int>(conv1.shape[0]);
  c.n_mels = static_cast<int>(conv1.shape[1]);
  const io::Tensor& epos = ct2_var(m, "encoder/position_encodings/encodings");
  if (epos.shape.size() != 2) throw IoError(bin_path + ": 'encoder/position_encodings/encodings' is not a matrix");
  c.n_audio_ctx = static_cast<int>(epos.shape[0]);
  c.n_audio_head = ct2_scalar(m, "encoder/num_heads");
  c.n_audio_layer = count_layers(m, "encoder/layer_");
  c.n_audio_ffn = static_cast<int>(ct2_var(m, "encoder/layer_0/ffn/linear_0/weight").shape.at(0));
  const io::Tensor& emb = ct2_var(m, "decoder/embeddings/weight");
  if (emb.shape.size() != 2) throw IoError(bin_path + ": 'decoder/embeddings/weight' is not a matrix");
  c.n_vocab = static_cast<int>(emb.shape[0]);
  c.n_text_state = static_cast<int>(emb.shape[1]);
  const io::Tensor& dpos = ct2_var(m, "decoder/position_encodings/encodings");
  if (dpos.shape.size() != 2) throw IoError(bin_path + ": 'decoder/position_encodings/encodings' is not a matrix");
  c.n_text_ctx = static_cast<int>(dpos.shape[0]);
  c.n_text_head = ct2_scalar(m, "decoder/num_heads");
  c.n_text_layer = count_layers(m, "decoder/layer_");
  c.n_text_ffn = static_cast<int>(ct2_var(m, "decoder/layer_0/ffn/linear_0/weight").shape.at(0));
  c.multilingual = c.n_vocab >= 51865;

  const json cfg = io::read_json_file(cfg_path);
  if (!cfg.is_object()) throw IoError(cfg_path + ": not a JSON object");
  c.suppress_ids = int_list(cfg, "suppress_ids", cfg_path);
  c.suppress_ids_begin = int_list(cfg, "suppress_ids_begin", cfg_path);
  c.lang_ids = int_list(cfg, "lang_ids", cfg_path);
  std::sort(c.lang_ids.begin(), c.lang_ids.end());
  c.alignment_heads = head_list(cfg, "alignment_heads", cfg_path);
  validate_config(c, bin_path + " with " + cfg_path);
  check_preprocessor(dir, c.n_mels);

  // Pull every tensor of the table out of model.bin, slicing fused matrices, and account for every variable.
  std::set<std::string> used;
  std::map<std::string, int64_t> fused_rows;  // rows of each fused variable covered by slices
  bool any_matrix_dtype = false;
  for (const WhisperTensorSpec& s : whisper_tensor_specs(c)) {
    const io::Tensor& v = ct2_var(m, s.ct2_name);
    used.insert(m.aliases.count(s.ct2_name) ? m.aliases.at(s.ct2_name) : s.ct2_name);
    if (!io::dtype_is_float(v.source_dtype))
      throw IoError(bin_path + ": variable '" + s.ct2_name + "' is " + io::dtype_name(v.source_dtype) +
                    " (a quantized CTranslate2 model); quasr loads float32/float16/bfloat16 model.bin files: "
                    "re-convert with --quantization float16 or float32");
    const int64_t rows = s.shape[0];
    std::vector<int64_t> expect = s.shape;
    if (s.ct2_fused) expect[0] = v.shape.empty() ? -1 : v.shape[0];
    if (v.shape != expect || (s.ct2_fused && s.ct2_row_begin + rows > v.shape[0]))
      throw IoError(bin_path + ": variable '" + s.ct2_name + "' has shape " + v.shape_string() + ", expected " +
                    (s.ct2_fused ? "rows [" + std::to_string(s.ct2_row_begin) + ", " +
                                       std::to_string(s.ct2_row_begin + rows) + ") of a matrix "
                                 : std::string()) +
                    shape_str(s.shape) + " for " + stack_name(s.stack) + " " + role_name(s.role) +
                    " (n_mels=" + std::to_string(c.n_mels) + ", d_model=" + std::to_string(c.n_audio_state) + ")");
    io::Tensor t;
    if (s.ct2_fused) {
      t.shape = s.shape;
      t.source_dtype = v.source_dtype;
      const int64_t row_len = t.numel() / rows;
      t.values.assign(v.values.begin() + s.ct2_row_begin * row_len,
                      v.values.begin() + (s.ct2_row_begin + rows) * row_len);
      fused_rows[s.ct2_name] = std::max(fused_rows[s.ct2_name], s.ct2_row_begin + rows);
    } else {
      // Each unfused variable feeds exactly one tensor: move it rather than hold the model twice in memory.
      t = std::move(const_cast<io::Tensor&>(v));
    }
    if (s.is_matrix() && !any_matrix_dtype) {
      w.source_dtype = v.source_dtype;
      any_matrix_dtype = true;
    }
    w.tensors.emplace(s.name, std::move(t));
  }
  for (const auto& [name, rows] : fused_rows)
    if (ct2_var(m, name).shape[0] != rows)
      throw IoError(bin_path + ": fused variable '" + name + "' has " + std::to_string(ct2_var(m, name).shape[0]) +
                    " rows, expected " + std::to_string(rows));
  for (const auto& [name, t] : m.variables)
    if (!used.count(name) && !kCt2KnownScalars.count(name))
      throw IoError(bin_path + ": unexpected variable '" + name + "' (shape " + t.shape_string() +
                    ") for a Whisper model with " + std::to_string(c.n_audio_layer) + " encoder and " +
                    std::to_string(c.n_text_layer) + " decoder layers");
  return w;
}

// ---- Hugging Face ----------------------------------------------------------------------------------------------
WhisperWeights load_whisper_hf(const std::string& dir) {
  const std::string st_path = join(dir, "model.safetensors"), cfg_path = join(dir, "config.json");
  require_file(st_path, "a Hugging Face model directory needs model.safetensors");
  require_file(cfg_path, "a Hugging Face model directory needs config.json");
  const json cfg = io::read_json_file(cfg_path);
  if (!cfg.is_object()) throw IoError(cfg_path + ": not a JSON object");
  if (cfg.contains("model_type") && cfg["model_type"] != "whisper")
    throw IoError(cfg_path + ": model_type is " + cfg["model_type"].dump() + ", not \"whisper\"");
  if (cfg.contains("activation_function") && cfg["activation_function"] != "gelu")
    throw IoError(cfg_path + ": activation_function " + cfg["activation_function"].dump() + " is not supported (gelu)");
  if (cfg.value("scale_embedding", false)) throw IoError(cfg_path + ": scale_embedding=true is not supported");

  WhisperWeights w;
  w.directory = dir;
  w.format = "huggingface";
  WhisperConfig& c = w.config;
  c.n_audio_state = c.n_text_state = required_int(cfg, "d_model", cfg_path);
  c.n_mels = required_int(cfg, "num_mel_bins", cfg_path);
  c.n_audio_layer = required_int(cfg, "encoder_layers", cfg_path);
  c.n_audio_head = required_int(cfg, "encoder_attention_heads", cfg_path);
  c.n_text_layer = required_int(cfg, "decoder_layers", cfg_path);
  c.n_text_head = required_int(cfg, "decoder_attention_heads", cfg_path);
  c.n_audio_ffn = required_int(cfg, "encoder_ffn_dim", cfg_path);
  c.n_text_ffn = required_int(cfg, "decoder_ffn_dim", cfg_path);
  c.n_vocab = required_int(cfg, "vocab_size", cfg_path);
  c.n_audio_ctx = required_int(cfg, "max_source_positions", cfg_path);
  c.n_text_ctx = required_int(cfg, "max_target_positions", cfg_path);
  c.multilingual = c.n_vocab >= 51865;

  // Decoding lists: generation_config.json (current transformers), else the legacy keys of config.json.
  const std::string gen_path = join(dir, "generation_config.json");
  const json gen = io::file_exists(gen_path) ? io::read_json_file(gen_path) : json::object();
  const bool has_gen = io::file_exists(gen_path);
  const json& src = has_gen && gen.contains("suppress_tokens") ? gen : cfg;
  const std::string& src_path = has_gen && gen.contains("suppress_tokens") ? gen_path : cfg_path;
  c.suppress_ids = int_list(src, "suppress_tokens", src_path);
  c.suppress_ids_begin = int_list(src, "begin_suppress_tokens", src_path);
  c.alignment_heads = head_list(gen, "alignment_heads", gen_path);
  if (gen.contains("lang_to_id")) {
    if (!gen["lang_to_id"].is_object()) throw IoError(gen_path + ": 'lang_to_id' is not an object");
    for (const auto& v : gen["lang_to_id"]) {
      if (!v.is_number_integer()) throw IoError(gen_path + ": 'lang_to_id' values must be token ids");
      c.lang_ids.push_back(v.get<int>());
    }
    std::sort(c.lang_ids.begin(), c.lang_ids.end());
  }
  validate_config(c, cfg_path);
  check_preprocessor(dir, c.n_mels);

  io::SafetensorsFile st = io::read_safetensors(st_path);
  std::set<std::string> used;
  bool any_matrix_dtype = false;
  for (const WhisperTensorSpec& s : whisper_tensor_specs(c)) {
    auto it = st.tensors.find(s.name);
    if (it == st.tensors.end()) {
      if (s.hf_stored) throw IoError(st_path + ": missing tensor '" + s.name + "'");
      io::Tensor zeros;  // Whisper's K projections have no bias
      zeros.shape = s.shape;
      zeros.values.assign(static_cast<size_t>(zeros.numel()), 0.0f);
      w.tensors.emplace(s.name, std::move(zeros));
      continue;
    }
    used.insert(s.name);
    if (!io::dtype_is_float(it->second.source_dtype))
      throw IoError(st_path + ": tensor '" + s.name + "' is " + io::dtype_name(it->second.source_dtype) +
                    "; quasr loads float32/float16/bfloat16 weights");
    if (it->second.shape != s.shape)
      throw IoError(st_path + ": tensor '" + s.name + "' has shape " + it->second.shape_string() + ", expected " +
                    shape_str(s.shape) + " from " + cfg_path);
    if (s.is_matrix() && !any_matrix_dtype) {
      w.source_dtype = it->second.source_dtype;
      any_matrix_dtype = true;
    }
    w.tensors.emplace(s.name, std::move(it->second));
  }
  // transformers ties proj_out to embed_tokens and usually does not store it; if stored it must be the same.
  if (auto it = st.tensors.find("proj_out.weight"); it != st.tensors.end()) {
    if (it->second.values != w.tensors.at("model.decoder.embed_tokens.weight").values)
      throw IoError(st_path + ": 'proj_out.weight' differs from 'model.decoder.embed_tokens.weight'; "
                    "quasr's Whisper ties the output projection to the token embedding");
    used.insert("proj_out.weight");
  }
  for (const auto& [name, t] : st.tensors)
    if (!used.count(name))
      throw IoError(st_path + ": unexpected tensor '" + name + "' (shape " + t.shape_string() + ") for a Whisper model with " +
                    std::to_string(c.n_audio_layer) + " encoder and " + std::to_string(c.n_text_layer) + " decoder layers");
  return w;
}

WhisperWeights load_whisper_weights(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir + ": not a directory");
  if (io::file_exists(join(dir, "model.bin"))) return load_whisper_ct2(dir);
  if (io::file_exists(join(dir, "model.safetensors"))) return load_whisper_hf(dir);
  throw IoError(dir + ": no model.bin (CTranslate2) or model.safetensors (Hugging Face) in this directory");
}

// ---- Hugging Face writer ---------------------------------------------------------------------------------------
namespace {

// Special-token ids from tokenizer.json's added_tokens (the only part of the tokenizer the writer needs).
std::map<std::string, int> special_token_ids(const std::string& tokenizer_path) {
  const json tok = io::read_json_file(tokenizer_path);
  std::map<std::string, int> ids;
  if (!tok.contains("added_tokens") || !tok["added_tokens"].is_array())
    throw IoError(tokenizer_path + ": no 'added_tokens' list");
  for (const auto& t : tok["added_tokens"])
    if (t.contains("content") && t.contains("id") && t["content"].is_string() && t["id"].is_number_integer())
      ids[t["content"].get<std::string>()] = t["id"].get<int>();
  return ids;
}

int need_token(const std::map<std::string, int>& ids, const std::string& tok, const std::string& path) {
  auto it = ids.find(tok);
  if (it == ids.end()) throw IoError(path + ": special token " + tok + " not found");
  return it->second;
}

}  // namespace

void save_whisper_hf(const WhisperWeights& w, const std::string& out_dir, std::optional<io::DType> dtype) {
  const WhisperConfig& c = w.config;
  const io::DType dt = dtype.value_or(w.source_dtype);
  if (!io::dtype_is_float(dt)) throw InvalidArgument(std::string("cannot export weights as ") + io::dtype_name(dt));
  if (c.n_audio_state != c.n_text_state)
    throw InvalidArgument("transformers' Whisper has one d_model; this model's encoder and decoder widths differ");
  const std::string tok_src = join(w.directory, "tokenizer.json");
  require_file(tok_src, "the exported model needs the source directory's tokenizer.json");
  const auto specials = special_token_ids(tok_src);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw IoError(out_dir + ": cannot create directory (" + ec.message() + ")");

  // Tensors in transformers' names; the K biases (absent in transformers) are dropped: adding the same vector
  // to every key shifts all of a query's scores by one constant, which softmax cancels, so they never matter.
  io::TensorMap out;
  for (const WhisperTensorSpec& s : whisper_tensor_specs(c)) {
    if (!s.hf_stored) continue;
    out.emplace(s.name, w.tensors.at(s.name));
  }
  io::write_safetensors(join(out_dir, "model.safetensors"), out, {{"format", "pt"}}, &dt);

  const int eot = need_token(specials, "<|endoftext|>", tok_src);
  const int sot = need_token(specials, "<|startoftranscript|>", tok_src);
  const char* torch_dtype = dt == io::DType::kF32 ? "float32" : dt == io::DType::kF16 ? "float16" : "bfloat16";
  json cfg = {{"architectures", {"WhisperForConditionalGeneration"}},
              {"model_type", "whisper"},
              {"activation_function", "gelu"},
              {"d_model", c.n_audio_state},
              {"encoder_layers", c.n_audio_layer},
              {"encoder_attention_heads", c.n_audio_head},
              {"encoder_ffn_dim", c.n_audio_ffn},
              {"decoder_layers", c.n_text_layer},
              {"decoder_attention_heads", c.n_text_head},
              {"decoder_ffn_dim", c.n_text_ffn},
              {"num_hidden_layers", c.n_audio_layer},
              {"num_mel_bins", c.n_mels},
              {"vocab_size", c.n_vocab},
              {"max_source_positions", c.n_audio_ctx},
              {"max_target_positions", c.n_text_ctx},
              {"scale_embedding", false},
              {"tie_word_embeddings", true},
              {"bos_token_id", eot},
              {"eos_token_id", eot},
              {"pad_token_id", eot},
              {"decoder_start_token_id", sot},
              {"torch_dtype", torch_dtype},
              {"use_cache", true},
              {"dropout", 0.0},
              {"attention_dropout", 0.0},
              {"activation_dropout", 0.0},
              {"suppress_tokens", c.suppress_ids},
              {"begin_suppress_tokens", c.suppress_ids_begin}};
  io::write_text_file_atomic(join(out_dir, "config.json"), cfg.dump(2) + "\n");

  json heads = json::array();
  for (auto [l, h] : c.alignment_heads) heads.push_back({l, h});
  json gen = {{"bos_token_id", eot},
              {"eos_token_id", eot},
              {"pad_token_id", eot},
              {"decoder_start_token_id", sot},
              {"max_length", c.n_text_ctx},
              {"is_multilingual", c.multilingual},
              {"suppress_tokens", c.suppress_ids},
              {"begin_suppress_tokens", c.suppress_ids_begin},
              {"alignment_heads", heads}};
  if (auto it = specials.find("<|notimestamps|>"); it != specials.end()) gen["no_timestamps_token_id"] = it->second;
  if (c.multilingual) {
    json lang = json::object();
    for (const auto& [text, id] : specials)
      if (std::binary_search(c.lang_ids.begin(), c.lang_ids.end(), id)) lang[text] = id;
    gen["lang_to_id"] = lang;
    json task = json::object();
    for (const char* t : {"transcribe", "translate"})
      if (auto it = specials.find(std::string("<|") + t + "|>"); it != specials.end()) task[t] = it->second;
    gen["task_to_id"] = task;
  }
  io::write_text_file_atomic(join(out_dir, "generation_config.json"), gen.dump(2) + "\n");

  json pre = {{"feature_extractor_type", "WhisperFeatureExtractor"},
              {"feature_size", c.n_mels},
              {"sampling_rate", 16000},
              {"hop_length", 160},
              {"chunk_length", 30},
              {"n_fft", 400},
              {"n_samples", 480000},
              {"nb_max_frames", 3000},
              {"padding_side", "right"},
              {"padding_value", 0.0},
              {"return_attention_mask", false},
              {"processor_class", "WhisperProcessor"}};
  io::write_text_file_atomic(join(out_dir, "preprocessor_config.json"), pre.dump(2) + "\n");
  io::write_file_atomic(join(out_dir, "tokenizer.json"), io::read_file_bytes(tok_src));
}

}  // namespace quasr::models
