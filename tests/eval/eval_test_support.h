#pragma once
// Test helpers for eval/: temp directories, JSONL string files, and running the reference scripts
// (scripts/ref_normalize.py, scripts/ref_wer.py) through the project's .venv at test time.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace quasr::eval::testing {

namespace fs = std::filesystem;

inline std::string source_dir() { return QUASR_SOURCE_DIR; }

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("quasr_eval_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
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

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline void write_jsonl(const fs::path& path, const std::vector<nlohmann::json>& rows) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& r : rows) out << r.dump() << '\n';
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Runs `.venv/bin/python scripts/<script> <args>`; throws with a clear message when the venv is missing or the
// script fails (a missing reference is an error, not a pass).
inline void run_reference_script(const std::string& script, const std::string& args) {
  const std::string python = source_dir() + "/.venv/bin/python";
  if (!fs::exists(python))
    throw std::runtime_error("reference Python not found at " + python +
                             ": run scripts/setup.sh to create .venv (openai-whisper, jiwer)");
  const std::string cmd = python + " " + source_dir() + "/scripts/" + script + " " + args;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("reference script failed: " + cmd);
}

// Hypotheses of faster-whisper tiny.en on mini-eval, in utterance-id order (see docs/eval.md): id -> text.
inline std::vector<std::pair<std::string, std::string>> whisper_hypotheses() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& j : read_jsonl(source_dir() + "/tests/eval/data/tiny_en_mini_eval_hypotheses.jsonl"))
    out.emplace_back(j.at("id").get<std::string>(), j.at("hypothesis").get<std::string>());
  return out;
}

}  // namespace quasr::eval::testing
