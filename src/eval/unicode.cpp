#include "quasr/eval/unicode.h"

#include <algorithm>
#include <cstdint>

namespace quasr::eval::unicode {
namespace {

struct ClassRange {
  char32_t first;
  uint8_t flags;
};
struct LowerMapping {
  char32_t from, to0, to1;
};
struct Decomposition {
  char32_t from;
  uint16_t offset;
  uint8_t length;
};
struct CombiningRun {
  char32_t first, last;
  uint8_t ccc;
};
struct Composition {
  char32_t first, second, composite;
};

#include "unicode_decompositions.inc"
#include "unicode_properties.inc"

// Flag bits, as written by scripts/gen_eval_data.py.
constexpr uint8_t kWord = 1, kDigit = 2, kSpace = 4, kCased = 8, kCaseIgnorable = 16;

uint8_t flags_of(char32_t c) {
  if (c >= 0x110000) return 0;
  const auto* end = std::end(kClassRanges);
  const auto* it = std::upper_bound(std::begin(kClassRanges), end, c,
                                    [](char32_t v, const ClassRange& r) { return v < r.first; });
  return (it - 1)->flags;  // kClassRanges starts at U+0000
}

// Hangul syllables decompose (and compose) arithmetically (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = std::end(kCompositions);
  const auto* it = std::lower_bound(std::begin(kCompositions), end, Composition{a, b, 0},
                                    [](const Composition& x, const Composition& y) {
                                      return x.first != y.first ? x.first < y.first : x.second < y.second;
                                    });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace

const char* unicode_version() { return QUASR_UNICODE_VERSION; }

std::u32string decode_utf8(std::string_view text) {
  // Well-formed sequences per Unicode Table 3-7; anything else is replaced by one U+FFFD per maximal subpart
  // (Unicode 3.9, "U+FFFD Substitution of Maximal Subparts"), which is what Python's decoder does.
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    if (len == 0) {  // C0, C1, F5..FF, or a stray continuation byte
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = b & (0xFF >> (len + 1));
    int k = 1;
    for (; k < len && i + k < n; ++k) {
      const unsigned char c = s[i + k];
      if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) break;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (k < len) {
      out.push_back(0xFFFD);
      i += k;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool is_word(char32_t c) { return flags_of(c) & kWord; }
bool is_digit(char32_t c) { return flags_of(c) & kDigit; }
bool is_space(char32_t c) { return flags_of(c) & kSpace; }

int digit_value(char32_t c) {
  if (c >= U'0' && c <= U'9') return static_cast<int>(c - U'0');
  if (!is_digit(c)) return -1;
  const auto* it = std::upper_bound(std::begin(kDigitZeros), std::end(kDigitZeros), c);
  return static_cast<int>(c - *(it - 1));
}

CharClass char_class(char32_t c) { return static_cast<CharClass>(flags_of(c) >> 5); }

int combining_class(char32_t c) {
  const auto* end = std::end(kCombiningRuns);
  const auto* it = std::upper_bound(std::begin(kCombiningRuns), end, c,
                                    [](char32_t v, const CombiningRun& r) { return v < r.first; });
  if (it == std::begin(kCombiningRuns)) return 0;
  --it;
  return c <= it->last ? it->ccc : 0;
}

std::u32string to_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == 0x3A3) {
      // Final sigma, as CPython's handle_capital_sigma: a capital sigma preceded by a cased letter and not
      // followed by one (looking through case-ignorable characters on both sides) lowers to final form.
      size_t j = i;
      while (j > 0 && (flags_of(text[j - 1]) & kCaseIgnorable)) --j;
      bool final_sigma = j > 0 && (flags_of(text[j - 1]) & kCased);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < text.size() && (flags_of(text[k]) & kCaseIgnorable)) ++k;
        final_sigma = k == text.size() || !(flags_of(text[k]) & kCased);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
      continue;
    }
    const auto* end = std::end(kLower);
    const auto* it = std::lower_bound(std::begin(kLower), end, c,
                                      [](const LowerMapping& m, char32_t v) { return m.from < v; });
    if (it != end && it->from == c) {
      out.push_back(it->to0);
      if (it->to1) out.push_back(it->to1);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string nfkd(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size() + text.size() / 4);
  for (char32_t c : text) {
    if (c >= kSBase && c < kSBase + kSCount) {
      const int s = static_cast<int>(c - kSBase);
      out.push_back(kLBase + s / kNCount);
      out.push_back(kVBase + (s % kNCount) / kTCount);
      if (s % kTCount) out.push_back(kTBase + s % kTCount);
      continue;
    }
    const auto* end = std::end(kDecompositions);
    const auto* it = std::lower_bound(std::begin(kDecompositions), end, c,
                                      [](const Decomposition& d, char32_t v) { return d.from < v; });
    if (it != end && it->from == c) {
      out.append(kDecompositionPool + it->offset, it->length);
    } else {
      out.push_back(c);
    }
  }
  // Canonical ordering: stable-sort every run of non-starters by combining class.
  size_t i = 0;
  while (i < out.size()) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return out;
}

std::u32string nfkc(std::u32string_view text) {
  std::u32string s = nfkd(text);
  if (s.empty()) return s;
  // Canonical composition (UAX #15): a character composes with the last starter unless blocked.
  size_t starter_pos = 0, out_pos = 1;
  char32_t starter = s[0];
  int last_class = combining_class(starter) ? 256 : 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const char32_t c = s[i];
    const int cls = combining_class(c);
    const char32_t composite = compose_pair(starter, c);
    if (composite && (last_class < cls || last_class == 0)) {
      s[starter_pos] = composite;
      starter = composite;
      continue;
    }
    if (cls == 0) {
      starter_pos = out_pos;
      starter = c;
    }
    last_class = cls;
    s[out_pos++] = c;
  }
  s.resize(out_pos);
  return s;
}

std::vector<std::u32string> split_whitespace(std::u32string_view text) {
  std::vector<std::u32string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !is_space(text[j])) ++j;
    if (j > i) words.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return words;
}

}  // namespace quasr::eval::unicode
