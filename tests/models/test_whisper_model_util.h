#pragma once
// Shared by the Whisper model tests: runs scripts/ref_ct2.py (CTranslate2 compute_type=float32 via the project's
// .venv) once per test binary on the test-clean clips and loads what it wrote; compares tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quasr/io/file_util.h"
#include "quasr/models/whisper.h"

namespace quasr::models::testing {

inline std::string source_path(const std::string& rel) { return std::string(QUASR_SOURCE_DIR) + "/" + rel; }

inline std::vector<std::string> test_clean_clips() {
  std::vector<std::string> clips;
  const std::string root = "/work/shared/data/LibriSpeech/test-clean";
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root, ec))
    if (e.path().extension() == ".flac") clips.push_back(e.path().string());
  std::sort(clips.begin(), clips.end());
  return clips;
}

inline std::vector<float> read_f32(const std::string& path) {
  const std::vector<uint8_t> b = io::read_file_bytes(path);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

struct RefClip {
  std::string stem;
  std::vector<float> features, encoder, logits;  // logits: [n_logits][n_vocab]
  std::vector<int> sot, prefix, greedy;
  int n_logits = 0;
};

// Reference outputs of CTranslate2 for `model_dir`, computed once per process into a temporary directory.
inline const std::vector<RefClip>& ct2_reference(const std::string& model_dir) {
  static std::map<std::string, std::vector<RefClip>> cache;
  if (auto it = cache.find(model_dir); it != cache.end()) return it->second;
  const auto clips = test_clean_clips();
  if (clips.empty()) throw std::runtime_error("no test-clean clips under /work/shared/data/LibriSpeech/test-clean");
  const std::string out = std::filesystem::temp_directory_path() / ("quasr_ref_ct2_" + std::to_string(::getpid()) + "_" +
                                                                    std::filesystem::path(model_dir).filename().string());
  std::string cmd = source_path(".venv/bin/python") + " " + source_path("scripts/ref_ct2.py") + " --model " + model_dir +
                    " --out " + out;
  for (const auto& c : clips) cmd += " " + c;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("reference script failed: " + cmd);
  const nlohmann::json meta = io::read_json_file(out + "/meta.json");
  std::vector<RefClip> refs;
  for (const auto& c : meta["clips"]) {
    RefClip r;
    r.stem = c["stem"];
    const std::string d = out + "/" + r.stem;
    r.features = read_f32(d + "/features.f32");
    r.encoder = read_f32(d + "/encoder.f32");
    r.logits = read_f32(d + "/logits.f32");
    r.sot = c["sot"].get<std::vector<int>>();
    r.prefix = c["prefix"].get<std::vector<int>>();
    r.n_logits = c["n_logits"];
    r.greedy = io::read_json_file(d + "/greedy.json")["tokens"].get<std::vector<int>>();
    refs.push_back(std::move(r));
  }
  std::filesystem::remove_all(out);
  return cache.emplace(model_dir, std::move(refs)).first->second;
}

// max |a - b| / max |b|: the error relative to the reference tensor's scale.
inline double rel_max_diff(std::span<const float> a, std::span<const float> b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

inline std::shared_ptr<const WhisperModel> shared_model(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const WhisperModel>> cache;
  auto& m = cache[name];
  if (!m) m = WhisperModel::load(name);
  return m;
}

}  // namespace quasr::models::testing
