#pragma once
// Private to eval/: the number part of Whisper's EnglishTextNormalizer (EnglishNumberNormalizer in
// openai-whisper's whisper/normalizers/english.py), kept in its own file because it is half the normalizer.
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace quasr::eval::detail {

class EnglishNumberNormalizer {
 public:
  EnglishNumberNormalizer();
  // Spelled-out numbers to digits: "twenty five" -> "25", "two point five" -> "2.5", "$20 million" ->
  // "$20000000", "one oh one" -> "101", ordinals "twenty first" -> "21st", "five percent" -> "5%".
  std::u32string operator()(const std::u32string& s) const;

 private:
  std::u32string preprocess(const std::u32string& s) const;
  std::vector<std::u32string> process_words(const std::vector<std::u32string>& words) const;
  static std::u32string postprocess(const std::u32string& s);

  std::set<std::u32string> zeros_, specials_, words_, decimals_;
  std::map<std::u32string, int> ones_, tens_;
  std::map<std::u32string, std::pair<int, std::u32string>> ones_suffixed_, tens_suffixed_;
  std::map<std::u32string, int> multipliers_;  // word -> power of ten
  std::map<std::u32string, std::pair<int, std::u32string>> multipliers_suffixed_;
  std::map<std::u32string, char32_t> preceding_prefixers_, following_prefixers_;
  std::set<char32_t> prefixes_;
};

}  // namespace quasr::eval::detail
