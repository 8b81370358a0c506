#pragma once
// Whisper's byte-level BPE tokenizer, read from the model directory's tokenizer.json (Hugging Face format), with
// the special tokens (<|endoftext|>, <|startoftranscript|>, languages, tasks, <|notimestamps|>, timestamps).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quasr::models {

class Tokenizer {
 public:
  // Reads <model_dir>/tokenizer.json; throws IoError naming the file and the problem.
  static Tokenizer load(const std::string& model_dir);

  int vocab_size() const;
  // Id of a token given by its text (e.g. "<|startoftranscript|>", "<|en|>", "<|0.00|>"); -1 if absent.
  int token_id(std::string_view token) const;
  std::string token_text(int id) const;
  bool is_special(int id) const;  // id >= <|endoftext|>
  // Text of non-special tokens (special ones are skipped), as UTF-8; invalid UTF-8 bytes become U+FFFD.
  std::string decode(std::span<const int> ids) const;
  // BPE-encode plain text (used for initial prompts).
  std::vector<int> encode(std::string_view text) const;

  // Opaque state, filled by load().
  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace quasr::models
