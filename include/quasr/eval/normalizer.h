#pragma once
// Text normalizers applied to references and hypotheses before scoring, ports of openai-whisper's
// whisper/normalizers (MIT License, Copyright (c) 2022 OpenAI), the ones the Whisper paper, the Open ASR
// Leaderboard and most papers score with:
//   EnglishTextNormalizer  lower-case; drop [..] <..> (..) spans and fillers (hmm, uh, um...); expand contractions
//                          and titles; spelled-out numbers to digits ("twenty five" -> 25, "$20 million",
//                          ordinals, percent, "one oh one" -> 101); British -> American spelling; strip symbols
//                          and diacritics.
//   BasicTextNormalizer    lower-case, drop bracketed spans, symbols and punctuation to spaces (NFKC, or NFKD
//                          and no diacritics with remove_diacritics); for any language.
// Both agree with the Python character for character, including its whitespace (results may start or end with
// a space); see docs/eval.md for the measured parity. Input is UTF-8 (malformed bytes become U+FFFD).
// Normalizers hold no mutable state after construction: one instance can serve many threads.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace quasr::eval {

namespace detail {
class EnglishNumberNormalizer;
}

class TextNormalizer {
 public:
  virtual ~TextNormalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
  std::string operator()(std::string_view text) const { return normalize(text); }
  virtual std::string name() const = 0;
};

class BasicTextNormalizer : public TextNormalizer {
 public:
  explicit BasicTextNormalizer(bool remove_diacritics = false) : remove_diacritics_(remove_diacritics) {}
  std::string normalize(std::string_view text) const override;
  std::string name() const override { return remove_diacritics_ ? "basic-nodiacritics" : "basic"; }

 private:
  bool remove_diacritics_;
};

class EnglishTextNormalizer : public TextNormalizer {
 public:
  // spelling_map: a JSON object {"british": "american", ...}; empty -> find_eval_data_file("english_spelling.json").
  explicit EnglishTextNormalizer(const std::filesystem::path& spelling_map = {});
  ~EnglishTextNormalizer() override;
  std::string normalize(std::string_view text) const override;
  std::string name() const override { return "english"; }

 private:
  std::unique_ptr<detail::EnglishNumberNormalizer> numbers_;
  std::unordered_map<std::string, std::string> spellings_;
};

// Identity: score raw text (still split on whitespace by the scorer).
class IdentityNormalizer : public TextNormalizer {
 public:
  std::string normalize(std::string_view text) const override { return std::string(text); }
  std::string name() const override { return "none"; }
};

// "english" | "basic" | "basic-nodiacritics" | "none"; throws InvalidArgument naming the choices otherwise.
std::unique_ptr<TextNormalizer> make_normalizer(std::string_view name);

// Locate a data file shipped under data/: $QUASR_DATA_DIR, then <dir of the executable>/../data,
// <dir of the executable>/../share/quasr, then the source tree's data/. Throws IoError listing where it looked.
std::filesystem::path find_eval_data_file(const std::string& name);

}  // namespace quasr::eval
