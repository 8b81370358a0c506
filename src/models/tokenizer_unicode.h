#pragma once
// Unicode classes needed by the GPT-2 pre-tokenization pattern, as sorted code-point range tables
// (generated: scripts/gen_tokenizer_unicode.py), so the tokenizer needs no regex library.
#include <cstddef>
#include <cstdint>

namespace quasr::models::unicode {

struct CodepointRange {
  uint32_t first, last;  // inclusive
};

extern const CodepointRange kLetterRanges[];
extern const size_t kLetterRanges_count;
extern const CodepointRange kNumberRanges[];
extern const size_t kNumberRanges_count;

bool is_letter(uint32_t cp);      // \p{L}
bool is_number(uint32_t cp);      // \p{N}
bool is_whitespace(uint32_t cp);  // \s as Oniguruma (the regex engine of HF tokenizers) defines it: White_Space

}  // namespace quasr::models::unicode
