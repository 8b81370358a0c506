#pragma once
// Test helpers for the audio module: runs scripts/ref_features.py (faster-whisper) through the project's .venv to
// produce reference waveforms and log-mel features at test time, and writes synthetic audio with libsndfile.
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace quasr::audio::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("quasr_audio_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::vector<float> read_f32(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  const auto bytes = fs::file_size(path);
  std::vector<float> v(bytes / sizeof(float));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

inline void write_f32(const std::string& path, const std::vector<float>& v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  if (!out) throw std::runtime_error("cannot write " + path);
}

struct RefMel {
  std::string error;  // non-empty when the reference rejected the input
  int64_t n_frames = 0;
  std::vector<float> data;  // [n_mels][n_frames]
};

struct RefInput {
  std::string input;
  std::string written_input;  // for "resampled:" inputs: the WAV the reference wrote (lives as long as Reference)
  std::vector<float> samples;
  std::map<int, RefMel> mel;
};

struct Reference {
  std::map<int, std::vector<float>> filters;  // n_mels -> [n_mels][201]
  std::vector<RefInput> inputs;
  std::shared_ptr<TempDir> dir;  // the script's output, kept for written_input files
};

inline std::string source_dir() { return QUASR_SOURCE_DIR; }

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs faster-whisper on `inputs` (audio paths, or "raw:" + path of float32 samples). Throws with a message
// naming the fix when the project's Python environment is missing.
inline Reference run_reference(const std::vector<std::string>& inputs, const std::vector<int>& n_mels = {80, 128},
                               int64_t padding = 160) {
  const std::string python = source_dir() + "/.venv/bin/python";
  if (!fs::exists(python))
    throw std::runtime_error("reference Python environment missing (" + python +
                             "): run scripts/setup.sh to create .venv with faster-whisper");
  auto dir = std::make_shared<TempDir>();
  const TempDir& out = *dir;
  std::string cmd = shell_quote(python) + " " + shell_quote(source_dir() + "/scripts/ref_features.py") +
                    " --padding " + std::to_string(padding);
  cmd += " --n-mels";  // possibly empty: waveforms only
  for (int n : n_mels) cmd += " " + std::to_string(n);
  cmd += " -- " + shell_quote(out.path().string());
  for (const auto& in : inputs) cmd += " " + shell_quote(in);
  const std::string log = out.file("log.txt");
  cmd += " > " + shell_quote(log) + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    throw std::runtime_error("scripts/ref_features.py failed:\n" + text);
  }
  std::ifstream mf(out.path() / "manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(mf);
  Reference ref;
  for (const auto& [key, value] : manifest["filters"].items())
    ref.filters[std::stoi(key)] = read_f32(out.path() / value["file"].get<std::string>());
  for (const auto& entry : manifest["inputs"]) {
    RefInput r;
    r.input = entry["input"].get<std::string>();
    if (entry.contains("written_input")) r.written_input = entry["written_input"].get<std::string>();
    r.samples = read_f32(out.path() / entry["samples"].get<std::string>());
    for (const auto& [key, value] : entry["mel"].items()) {
      RefMel m;
      if (value.contains("error")) {
        m.error = value["error"].get<std::string>();
      } else {
        m.n_frames = value["n_frames"].get<int64_t>();
        m.data = read_f32(out.path() / value["file"].get<std::string>());
      }
      r.mel[std::stoi(key)] = std::move(m);
    }
    ref.inputs.push_back(std::move(r));
  }
  ref.dir = std::move(dir);
  return ref;
}

// The shared speech clips: the 4 LibriSpeech test-clean clips, the first 3 mini-eval clips (sorted by path), and a
// pocketsphinx test clip when the pocketsphinx-testdata package is installed.
inline std::vector<std::string> shared_clips() {
  std::vector<std::string> clips, mini;
  const fs::path root = "/work/shared/data/LibriSpeech";
  for (const auto& e : fs::recursive_directory_iterator(root / "test-clean"))
    if (e.path().extension() == ".flac") clips.push_back(e.path().string());
  std::sort(clips.begin(), clips.end());
  if (fs::exists(root / "mini-eval"))
    for (const auto& e : fs::recursive_directory_iterator(root / "mini-eval"))
      if (e.path().extension() == ".flac") mini.push_back(e.path().string());
  std::sort(mini.begin(), mini.end());
  for (size_t i = 0; i < mini.size() && i < 3; ++i) clips.push_back(mini[i]);
  const std::string pocketsphinx =
      "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";
  if (fs::exists(pocketsphinx)) clips.push_back(pocketsphinx);
  return clips;
}

// Writes interleaved float frames with libsndfile in the given format.
inline void write_sndfile(const std::string& path, int format, int rate, int channels,
                          const std::vector<float>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error("libsndfile cannot write " + path + ": " + sf_strerror(nullptr));
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size() / static_cast<size_t>(channels));
  const sf_count_t written = sf_writef_float(f, interleaved.data(), frames);
  sf_close(f);
  if (written != frames) throw std::runtime_error("short write to " + path);
}

}  // namespace quasr::audio::testing
