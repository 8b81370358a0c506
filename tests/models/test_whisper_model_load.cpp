// Loading Whisper model directories that are broken in one way each: the error is an IoError that names the
// file and the problem (never a crash, never a silently wrong model).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "../io/test_io_util.h"
#include "quasr/core/error.h"
#include "quasr/io/ct2_model_bin.h"
#include "quasr/io/file_util.h"
#include "quasr/models/whisper.h"
#include "quasr/models/whisper_spec.h"

namespace quasr::models {
namespace {
using io::testing::TempDir;

const std::string kTiny = std::string(QUASR_SOURCE_DIR) + "/models/tiny.en";

const io::Ct2ModelBin& tiny_bin() {
  static const io::Ct2ModelBin m = io::read_ct2_model_bin(kTiny + "/model.bin");
  return m;
}

// Writes a CT2 directory from tiny.en with `edit_bin` applied to model.bin and `edit_cfg` to config.json, loads
// it, and returns the error message ("" if it loaded).
std::string load_error(const std::function<void(io::Ct2ModelBin&)>& edit_bin,
                       const std::function<void(nlohmann::json&)>& edit_cfg = {}) {
  TempDir dir;
  io::Ct2ModelBin m = tiny_bin();
  if (edit_bin) edit_bin(m);
  io::write_ct2_model_bin(dir.file("model.bin"), m);
  nlohmann::json cfg = io::read_json_file(kTiny + "/config.json");
  if (edit_cfg) edit_cfg(cfg);
  io::write_text_file_atomic(dir.file("config.json"), cfg.dump());
  try {
    load_whisper_weights(dir.path());
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(WhisperModelLoad, UnmodifiedCopyLoads) { EXPECT_EQ(load_error({}), ""); }

TEST(WhisperModelLoad, MissingFiles) {
  TempDir dir;
  std::string e;
  try {
    WhisperModel::load(dir.path());
  } catch (const IoError& x) {
    e = x.what();
  }
  EXPECT_HAS(e, "no model.bin (CTranslate2) or model.safetensors");
  std::filesystem::copy_file(kTiny + "/model.bin", dir.file("model.bin"));
  try {
    WhisperModel::load(dir.path());
  } catch (const IoError& x) {
    e = x.what();
  }
  EXPECT_HAS(e, "config.json: missing");
}

TEST(WhisperModelLoad, WrongNumberOfMelBins) {
  const std::string e = load_error([](io::Ct2ModelBin& m) {
    io::Tensor& w = m.variables.at("encoder/conv1/weight");
    w.shape[1] = 81;
    w.values.resize(static_cast<size_t>(w.numel()));
  });
  EXPECT_HAS(e, "takes 81 mel bins; Whisper models use 80 or 128");
}

TEST(WhisperModelLoad, PreprocessorConfigContradictsMelBins) {
  TempDir dir;
  for (const char* f : {"model.bin", "config.json"}) std::filesystem::copy_file(kTiny + "/" + f, dir.file(f));
  io::write_text_file_atomic(dir.file("preprocessor_config.json"), R"({"feature_size": 128})");
  try {
    load_whisper_weights(dir.path());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_HAS(std::string(e.what()), "feature_size 128 contradicts the model's encoder, which takes 80 mel bins");
  }
}

TEST(WhisperModelLoad, MissingVariable) {
  const std::string e = load_error([](io::Ct2ModelBin& m) { m.variables.erase("decoder/layer_2/ffn/linear_1/weight"); });
  EXPECT_HAS(e, "model.bin: missing variable 'decoder/layer_2/ffn/linear_1/weight'");
}

TEST(WhisperModelLoad, LayerGapOrExtraLayer) {
  // A stray variable of a fifth encoder layer: the table then asks for all of layer 4's variables.
  const std::string e = load_error([](io::Ct2ModelBin& m) {
    m.variables["encoder/layer_4/ffn/linear_0/bias"] = m.variables.at("encoder/layer_3/ffn/linear_0/bias");
  });
  EXPECT_HAS(e, "missing variable 'encoder/layer_4/");
}

TEST(WhisperModelLoad, ShapeContradiction) {
  const std::string e = load_error([](io::Ct2ModelBin& m) {
    io::Tensor& w = m.variables.at("encoder/layer_1/ffn/linear_1/weight");
    w.shape = {384, 1535};
    w.values.resize(384 * 1535);
  });
  EXPECT_HAS(e, "'encoder/layer_1/ffn/linear_1/weight' has shape [384, 1535], expected [384, 1536] for encoder mlp_fc2");
  const std::string f = load_error([](io::Ct2ModelBin& m) {
    io::Tensor& w = m.variables.at("decoder/layer_0/self_attention/linear_0/weight");
    w.shape = {768, 384};
    w.values.resize(768 * 384);
  });
  EXPECT_HAS(f, "decoder/layer_0/self_attention/linear_0/weight");
}

TEST(WhisperModelLoad, QuantizedWeightsAreRejected) {
  const std::string e = load_error([](io::Ct2ModelBin& m) {
    m.variables.at("encoder/layer_0/ffn/linear_0/weight").source_dtype = io::DType::kI8;
  });
  EXPECT_HAS(e, "is int8 (a quantized CTranslate2 model)");
}

TEST(WhisperModelLoad, UnexpectedVariable) {
  const std::string e = load_error([](io::Ct2ModelBin& m) {
    m.variables["encoder/layer_0/ffn/linear_0/weight_scale"] = io::Tensor{{1536}, io::DType::kF32, std::vector<float>(1536, 1)};
  });
  EXPECT_HAS(e, "unexpected variable 'encoder/layer_0/ffn/linear_0/weight_scale'");
}

TEST(WhisperModelLoad, WrongSpecOrFlags) {
  EXPECT_HAS(load_error([](io::Ct2ModelBin& m) { m.spec_name = "TransformerSpec"; }), "not a Whisper model");
  EXPECT_HAS(load_error([](io::Ct2ModelBin& m) { m.spec_revision = 2; }), "unsupported WhisperSpec revision 2");
  EXPECT_HAS(load_error([](io::Ct2ModelBin& m) { m.variables.at("decoder/activation").values = {1}; }),
             "'decoder/activation' is 1");
  EXPECT_HAS(load_error([](io::Ct2ModelBin& m) { m.variables.at("encoder/num_heads").values = {5}; }),
             "encoder heads (5) do not divide the width 384");
}

TEST(WhisperModelLoad, ConfigJsonContradictions) {
  EXPECT_HAS(load_error({}, [](nlohmann::json& c) { c["alignment_heads"] = {{9, 0}}; }),
             "alignment head (9, 0) does not exist in a decoder of 4 layers x 6 heads");
  EXPECT_HAS(load_error({}, [](nlohmann::json& c) { c["suppress_ids"] = {1, 60000}; }),
             "token id 60000 is outside the vocabulary of 51864");
  EXPECT_HAS(load_error({}, [](nlohmann::json& c) { c["lang_ids"] = "en"; }), "'lang_ids' is not a list of integers");
}

TEST(WhisperModelLoad, TruncatedModelBinThroughLoad) {
  TempDir dir;
  const std::vector<uint8_t> full = io::read_file_bytes(kTiny + "/model.bin");
  io::testing::write_bytes(dir.file("model.bin"), full, full.size() / 2);
  std::filesystem::copy_file(kTiny + "/config.json", dir.file("config.json"));
  try {
    WhisperModel::load(dir.path());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_HAS(std::string(e.what()), "model.bin: truncated");
  }
}

}  // namespace
}  // namespace quasr::models
