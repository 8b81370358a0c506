#pragma once
// Shared by the report tests: a deterministic stand-in for `quasr eval` (the SweepFunction is the caller's; what
// is under test here is the driver, the store and the renderers), temp directories and file helpers.
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "quasr/core/sha256.h"
#include "quasr/report/sweep.h"

namespace quasr::report::testing {

inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("quasr_report_test_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline SweepContext test_context() {
  SweepContext c;
  c.model_id = sha256_hex("model bytes");
  c.model_name = "tiny.en";
  c.dataset_id = sha256_hex("dataset");
  c.dataset_name = "unit";
  c.decode_options = "beam=1";
  return c;
}

// A deterministic "evaluation": errors and sizes are functions of the recipe and utterance, so two runs of the
// same point give byte-identical entries. Bits per weight is read from the recipe ("int4" -> 4 ...).
inline PointResult fake_evaluate(const SweepPoint& p, Progress& progress, size_t utterances = 12) {
  PointResult r;
  int bits = 32;
  for (int b : {16, 8, 6, 4, 3, 2})
    if (p.entry.recipe.find("int" + std::to_string(b)) != std::string::npos ||
        p.entry.recipe.find("fp" + std::to_string(b)) != std::string::npos ||
        p.entry.recipe.find("w" + std::to_string(b)) != std::string::npos)
    {  // the widest match wins: "int16" before "int1..."
      bits = b;
      break;
    }
  if (p.entry.recipe.rfind("fp32", 0) == 0) bits = 32;
  const std::string h = sha256_hex(p.entry.recipe);
  for (size_t u = 0; u < utterances; ++u) {
    eval::UtteranceRecord rec;
    rec.id = "utt-" + std::to_string(u);
    rec.reference = rec.reference_normalized = "the quick brown fox jumps over the lazy dog";
    rec.hypothesis = rec.hypothesis_normalized = rec.reference;
    int64_t errors = (u % 3 == 0 ? (32 - bits) / 6 : 0) + ((h[u % 64] - '0') & 1);
    rec.words = {9 - std::min<int64_t>(errors, 9), std::min<int64_t>(errors, 9), 0, 0};
    rec.characters = {43 - errors, errors, 0, 0};
    rec.audio_seconds = 3.0 + 0.25 * double(u);
    rec.decode_seconds = rec.audio_seconds * (0.02 + 0.004 * bits);
    r.records.push_back(rec);
    progress.advance(u + 1, utterances);
  }
  r.weight_elements = 37'000'000;
  r.weight_bytes = r.weight_elements * bits / 8 + (bits < 16 ? r.weight_elements / 64 : 0);
  r.peak_memory_bytes = 100'000'000 + r.weight_bytes;
  for (int layer = 0; layer < 2; ++layer)
    r.layers.push_back({"encoder.layer." + std::to_string(layer) + ".ffn.linear_0.weight", "mlp_fc1", layer,
                        p.entry.recipe, 1536 * 384 * bits / 8, 1536 * 384});
  r.extra = {{"fake", true}};
  return r;
}

}  // namespace quasr::report::testing
