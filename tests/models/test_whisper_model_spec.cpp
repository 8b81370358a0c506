// The Whisper tensor table as the single declaration of the model: complete, consistent with the real file,
// and queryable by role / stack / layer (what mixed-precision rules will use).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "quasr/io/ct2_model_bin.h"
#include "quasr/models/whisper_spec.h"

namespace quasr::models {
namespace {

TEST(WhisperSpec, TableCoversEveryRoleOfEveryLayer) {
  WhisperConfig c;
  c.n_mels = 80, c.n_audio_state = c.n_text_state = 384, c.n_audio_layer = 4, c.n_text_layer = 4;
  c.n_audio_ffn = c.n_text_ffn = 1536, c.n_vocab = 51864;
  const auto specs = whisper_tensor_specs(c);
  std::set<std::string> names;
  std::map<std::pair<WhisperStack, WhisperRole>, int> matrices;
  for (const auto& s : specs) {
    EXPECT_TRUE(names.insert(s.name).second) << "duplicate " << s.name;
    if (s.is_matrix()) ++matrices[{s.stack, s.role}];
    EXPECT_EQ(s.hf_stored, !(s.param == WhisperParam::kBias && (s.role == WhisperRole::kAttnK || s.role == WhisperRole::kCrossK)))
        << s.name;
  }
  using R = WhisperRole;
  const auto E = WhisperStack::kEncoder, D = WhisperStack::kDecoder;
  for (R r : {R::kAttnQ, R::kAttnK, R::kAttnV, R::kAttnOut, R::kMlpFc1, R::kMlpFc2}) {
    EXPECT_EQ((matrices[{E, r}]), 4) << role_name(r);
    EXPECT_EQ((matrices[{D, r}]), 4) << role_name(r);
  }
  for (R r : {R::kCrossQ, R::kCrossK, R::kCrossV, R::kCrossOut}) EXPECT_EQ((matrices[{D, r}]), 4) << role_name(r);
  EXPECT_EQ((matrices[{E, R::kConv1}]), 1);
  EXPECT_EQ((matrices[{E, R::kConv2}]), 1);
  // Embeddings and norms are not matrices a quantizer replaces; 2 convs + 6 per encoder + 10 per decoder layer.
  int total = 0;
  for (const auto& [k, n] : matrices) total += n;
  EXPECT_EQ(total, 2 + 6 * 4 + 10 * 4);
}

// The loaded tiny.en weights are exactly the table: same names, shapes from the table, and the CT2 slices of
// fused Q/K/V reproduce the fused variable row for row.
TEST(WhisperSpec, LoadedWeightsFollowTheTable) {
  const std::string dir = std::string(QUASR_SOURCE_DIR) + "/models/tiny.en";
  const WhisperWeights w = load_whisper_ct2(dir);
  const auto specs = whisper_tensor_specs(w.config);
  ASSERT_EQ(w.tensors.size(), specs.size());
  const io::Ct2ModelBin bin = io::read_ct2_model_bin(dir + "/model.bin");
  for (const auto& s : specs) {
    const io::Tensor& t = w.tensors.at(s.name);
    EXPECT_EQ(t.shape, s.shape) << s.name;
    const io::Tensor* v = bin.find(s.ct2_name);
    ASSERT_NE(v, nullptr) << s.ct2_name;
    const int64_t row = t.numel() / s.shape[0];
    EXPECT_TRUE(std::equal(t.values.begin(), t.values.end(), v->values.begin() + s.ct2_row_begin * row)) << s.name;
  }
  // Whisper has no K bias: the converter's zeros.
  for (const auto& v : w.tensors.at("model.encoder.layers.0.self_attn.k_proj.bias").values) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace quasr::models
