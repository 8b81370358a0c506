#pragma once
// Helpers shared by the tokenizer/decoding tests: run the reference implementation (faster-whisper, `tokenizers`)
// through the project's .venv Python, and locate data. The reference runs at test time; nothing is hard-coded.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>

namespace quasr::testing {

inline std::string source_dir() { return QUASR_SOURCE_DIR; }
inline std::string venv_python() { return source_dir() + "/.venv/bin/python"; }
inline std::string model_dir(const std::string& name) { return source_dir() + "/models/" + name; }
inline std::string librispeech_dir() {
  const char* env = std::getenv("QUASR_LIBRISPEECH");
  return env ? env : "/work/shared/data/LibriSpeech";
}

// A fresh directory under the system temp dir, removed at destruction.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "quasr_test_XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Runs a shell command, returns (exit status, stdout).
inline std::pair<int, std::string> run_command(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return {-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  const int status = pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `script` (Python source) with .venv's interpreter and the given arguments; fails the test on error.
inline std::string run_python(const TempDir& dir, const std::string& script, const std::string& args) {
  const std::string path = dir.file("ref.py");
  write_file(path, script);
  auto [rc, out] = run_command(venv_python() + " " + path + " " + args + " 2>" + dir.file("ref.err"));
  EXPECT_EQ(rc, 0) << "reference script failed: " << read_file(dir.file("ref.err"));
  return out;
}

}  // namespace quasr::testing

namespace quasr::testing {

// Writes mono 16-bit PCM WAV (what any audio tool reads), clipping to [-1, 1].
inline void write_wav16(const std::string& path, const std::vector<float>& samples, int sample_rate = 16000) {
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  const uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 2);
  out.write("RIFF", 4);
  u32(36 + data_bytes);
  out.write("WAVEfmt ", 8);
  u32(16), u16(1), u16(1), u32(sample_rate), u32(sample_rate * 2), u16(2), u16(16);
  out.write("data", 4);
  u32(data_bytes);
  for (float s : samples) {
    const float c = s > 1.f ? 1.f : (s < -1.f ? -1.f : s);
    u16(static_cast<uint16_t>(static_cast<int16_t>(c * 32767.f)));
  }
}

}  // namespace quasr::testing
