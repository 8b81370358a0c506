#pragma once
// The handful of Unicode operations Whisper's text normalizers rely on, with Python's exact semantics, so that
// quasr's C++ normalizers agree with openai-whisper's Python ones character for character:
//   str.lower() (full case mapping, final sigma), str.split(), re's \w \d \s, unicodedata.category classes,
//   unicodedata.normalize("NFKD"/"NFKC").
// The property tables are generated from Python's own unicodedata by scripts/gen_eval_data.py (Unicode
// version: unicode_version()), so no ICU is needed and the versions cannot drift apart silently.
#include <string>
#include <string_view>
#include <vector>

namespace quasr::eval::unicode {

// UTF-8 -> code points. Malformed bytes become U+FFFD (as Python's bytes.decode(errors="replace") does), so a
// hypothesis with a broken byte-level BPE token still scores instead of aborting an evaluation.
std::u32string decode_utf8(std::string_view text);
std::string encode_utf8(std::u32string_view text);

const char* unicode_version();

// Python `re` classes for str patterns.
bool is_word(char32_t c);   // \w: alphanumeric (any script) or '_'
bool is_digit(char32_t c);  // \d: any Unicode decimal digit (category Nd)
bool is_space(char32_t c);  // \s and str.isspace()
// Decimal value of a \d character (0-9), or -1.
int digit_value(char32_t c);

// unicodedata.category() reduced to what the normalizers ask about.
enum class CharClass { Other, NonspacingMark /* Mn */, Mark /* Mc, Me */, Symbol /* S* */, Punctuation /* P* */ };
CharClass char_class(char32_t c);
inline bool is_mark_symbol_or_punctuation(char32_t c) { return char_class(c) != CharClass::Other; }

int combining_class(char32_t c);

std::u32string to_lower(std::u32string_view text);  // str.lower()
std::u32string nfkd(std::u32string_view text);      // unicodedata.normalize("NFKD", text)
std::u32string nfkc(std::u32string_view text);      // unicodedata.normalize("NFKC", text)
std::vector<std::u32string> split_whitespace(std::u32string_view text);  // str.split()

}  // namespace quasr::eval::unicode
