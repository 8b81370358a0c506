// Hugging Face export: quasr writes a loaded CTranslate2 Whisper in transformers' layout; the reference
// safetensors reader sees the same tensors, and loading the exported directory gives identical outputs.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "../io/test_io_util.h"
#include "quasr/core/error.h"
#include "quasr/io/file_util.h"
#include "quasr/io/safetensors.h"
#include "quasr/models/whisper_spec.h"
#include "test_whisper_model_util.h"

namespace quasr::models {
namespace {
using io::testing::TempDir;

const std::string kTiny = std::string(QUASR_SOURCE_DIR) + "/models/tiny.en";

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(WhisperModelHf, ExportIsReadByTheReferenceSafetensorsReader) {
  TempDir dir;
  const WhisperWeights w = load_whisper_ct2(kTiny);
  save_whisper_hf(w, dir.path());
  for (const char* f : {"model.safetensors", "config.json", "generation_config.json", "preprocessor_config.json",
                        "tokenizer.json"})
    EXPECT_TRUE(io::file_exists(dir.file(f))) << f;
  const std::string json_out = dir.file("summary.json");
  const std::string cmd = testing::source_path(".venv/bin/python") + " " +
                          testing::source_path("scripts/ref_safetensors.py") + " " + dir.file("model.safetensors") +
                          " > " + json_out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const nlohmann::json ref = io::read_json_file(json_out);
  size_t stored = 0;
  for (const WhisperTensorSpec& s : whisper_tensor_specs(w.config)) {
    if (!s.hf_stored) {
      EXPECT_FALSE(ref.contains(s.name)) << s.name;
      continue;
    }
    ++stored;
    ASSERT_TRUE(ref.contains(s.name)) << s.name;
    const auto& r = ref[s.name];
    EXPECT_EQ(r["dtype"], "float16") << s.name;  // tiny.en's model.bin is FP16: the export stays lossless
    EXPECT_EQ(r["shape"].get<std::vector<int64_t>>(), s.shape) << s.name;
    const auto& v = w.tensors.at(s.name).values;
    double sum = 0, sumsq = 0;
    for (float x : v) sum += x, sumsq += static_cast<double>(x) * x;
    EXPECT_NEAR(r["sum"].get<double>(), sum, 1e-9 * std::max(1.0, sumsq)) << s.name;
    EXPECT_NEAR(r["sumsq"].get<double>(), sumsq, 1e-9 * std::max(1.0, sumsq)) << s.name;
    for (size_t i = 0; i < 4 && i < v.size(); ++i) EXPECT_EQ(r["first"][i].get<double>(), v[i]) << s.name;
  }
  EXPECT_EQ(ref.size(), stored + 1);  // + __metadata__
  EXPECT_EQ(ref["__metadata__"]["format"], "pt");
  const nlohmann::json cfg = io::read_json_file(dir.file("config.json"));
  EXPECT_EQ(cfg["model_type"], "whisper");
  EXPECT_EQ(cfg["num_mel_bins"], 80);
  EXPECT_EQ(cfg["d_model"], 384);
  EXPECT_EQ(cfg["decoder_start_token_id"], 50257);
}

TEST(WhisperModelHf, ExportedModelGivesIdenticalOutputs) {
  TempDir dir;
  save_whisper_hf(load_whisper_ct2(kTiny), dir.path());
  const auto ct2 = testing::shared_model(kTiny);
  const auto hf = WhisperModel::load(dir.path());
  const WhisperConfig &a = ct2->config(), &b = hf->config();
  EXPECT_EQ(a.n_mels, b.n_mels);
  EXPECT_EQ(a.n_audio_layer, b.n_audio_layer);
  EXPECT_EQ(a.n_text_layer, b.n_text_layer);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_audio_ctx, b.n_audio_ctx);
  EXPECT_EQ(a.n_text_ctx, b.n_text_ctx);
  EXPECT_EQ(a.suppress_ids, b.suppress_ids);
  EXPECT_EQ(a.suppress_ids_begin, b.suppress_ids_begin);
  EXPECT_EQ(a.lang_ids, b.lang_ids);
  EXPECT_EQ(a.alignment_heads, b.alignment_heads);
  const auto& r = testing::ct2_reference(ct2->directory()).front();
  const std::vector<float> ea = ct2->encode(r.features), eb = hf->encode(r.features);
  EXPECT_TRUE(ea == eb) << "encoder outputs differ";
  auto sa = ct2->start(ea, 1), sb = hf->start(eb, 1);
  std::vector<float> la(a.n_vocab), lb(b.n_vocab);
  ct2->step(*sa, r.prefix, static_cast<int>(r.prefix.size()), la);
  hf->step(*sb, r.prefix, static_cast<int>(r.prefix.size()), lb);
  EXPECT_TRUE(la == lb) << "decoder logits differ";
}

TEST(WhisperModelHf, Float32ExportRoundTripsAndReExportsHf) {
  TempDir d1, d2;
  const WhisperWeights w = load_whisper_ct2(kTiny);
  save_whisper_hf(w, d1.path(), io::DType::kF32);
  const WhisperWeights h = load_whisper_weights(d1.path());
  EXPECT_EQ(h.format, "huggingface");
  EXPECT_EQ(h.source_dtype, io::DType::kF32);
  for (const auto& [name, t] : w.tensors) EXPECT_TRUE(h.tensors.at(name).values == t.values) << name;
  save_whisper_hf(h, d2.path(), io::DType::kF16);  // HF -> HF, back to FP16: the same bytes as the first export
  TempDir d3;
  save_whisper_hf(w, d3.path());
  EXPECT_TRUE(io::read_file_bytes(d2.file("model.safetensors")) == io::read_file_bytes(d3.file("model.safetensors")));
}

TEST(WhisperModelHf, CliExportHf) {
  TempDir dir;
  const char* bin = std::getenv("QUASR_BIN");
  const std::string quasr = bin ? bin : std::string(QUASR_BINARY_DIR) + "/quasr";
  const std::string out = dir.file("hf");
  ASSERT_EQ(std::system((quasr + " export-hf --model tiny.en -o " + out + " > /dev/null").c_str()), 0);
  const WhisperWeights h = load_whisper_weights(out);
  const WhisperWeights w = load_whisper_ct2(kTiny);
  for (const auto& [name, t] : w.tensors) EXPECT_TRUE(h.tensors.at(name).values == t.values) << name;
  // Bad input: unknown model name and bad dtype exit non-zero.
  EXPECT_NE(std::system((quasr + " export-hf --model no-such -o " + out + " 2> /dev/null").c_str()), 0);
  EXPECT_NE(std::system((quasr + " export-hf --model tiny.en --dtype int8 -o " + out + " 2> /dev/null").c_str()), 0);
}

TEST(WhisperModelHf, BrokenHfDirectoriesNameTheProblem) {
  TempDir src;
  save_whisper_hf(load_whisper_ct2(kTiny), src.path());
  auto error_with = [&](const std::function<void(const std::string&)>& edit) {
    TempDir d;
    for (const auto& e : std::filesystem::directory_iterator(src.path()))
      std::filesystem::copy_file(e.path(), d.file(e.path().filename().string()));
    edit(d.path());
    try {
      load_whisper_weights(d.path());
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto edit_json = [](const std::string& path, const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = io::read_json_file(path);
    f(j);
    io::write_text_file_atomic(path, j.dump());
  };
  EXPECT_EQ(error_with([](const std::string&) {}), "");
  EXPECT_HAS(error_with([&](const std::string& d) {
               edit_json(d + "/config.json", [](nlohmann::json& j) { j["num_mel_bins"] = 128; });
               std::filesystem::remove(d + "/preprocessor_config.json");
             }),
             "tensor 'model.encoder.conv1.weight' has shape [384, 80, 3], expected [384, 128, 3]");
  EXPECT_HAS(error_with([&](const std::string& d) {
               edit_json(d + "/config.json", [](nlohmann::json& j) { j["decoder_layers"] = 5; });
             }),
             "missing tensor 'model.decoder.layers.4.");
  EXPECT_HAS(error_with([&](const std::string& d) {
               edit_json(d + "/config.json", [](nlohmann::json& j) { j["encoder_layers"] = 3; });
             }),
             "unexpected tensor 'model.encoder.layers.3.");
  EXPECT_HAS(error_with([&](const std::string& d) {
               edit_json(d + "/config.json", [](nlohmann::json& j) { j.erase("d_model"); });
             }),
             "missing or invalid 'd_model'");
  EXPECT_HAS(error_with([&](const std::string& d) {
               io::SafetensorsFile f = io::read_safetensors(d + "/model.safetensors");
               f.tensors.erase("model.decoder.layer_norm.bias");
               io::write_safetensors(d + "/model.safetensors", f.tensors);
             }),
             "missing tensor 'model.decoder.layer_norm.bias'");
  EXPECT_EQ(error_with([&](const std::string& d) {  // bare WhisperModel naming: no "model." prefix
              io::SafetensorsFile f = io::read_safetensors(d + "/model.safetensors");
              io::TensorMap bare;
              for (auto& [name, t] : f.tensors) bare.emplace(name.substr(6), std::move(t));
              io::write_safetensors(d + "/model.safetensors", bare);
            }),
            "");
  EXPECT_HAS(error_with([&](const std::string& d) {
               std::filesystem::resize_file(d + "/model.safetensors", 1000);
             }),
             "model.safetensors: truncated");
}

}  // namespace
}  // namespace quasr::models
