#pragma once
// Private helpers of the eval normalizers: the few regular-expression rewrites of Whisper's normalizers, written
// out by hand with Python `re` semantics (leftmost match, scan resumes after the replaced text, \b and \w as in
// Python). Hand-written rather than std::regex because std::regex has no Unicode classes and its \b is ASCII.
#include <string>
#include <string_view>
#include <vector>

#include "quasr/eval/unicode.h"

namespace quasr::eval::detail {

inline bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
inline bool is_ascii_lower(char32_t c) { return c >= U'a' && c <= U'z'; }

// Python's \b between positions i-1 and i of s.
inline bool word_boundary(std::u32string_view s, size_t i) {
  const bool before = i > 0 && unicode::is_word(s[i - 1]);
  const bool after = i < s.size() && unicode::is_word(s[i]);
  return before != after;
}

inline bool starts_with_at(std::u32string_view s, size_t i, std::u32string_view lit) {
  return s.size() >= i + lit.size() && s.compare(i, lit.size(), lit) == 0;
}

// re.sub(r"\b?<literal>\b?", replacement, s) for a pattern that is a literal with optional \b at either end.
inline std::u32string replace_literal(std::u32string_view s, std::u32string_view literal,
                                      std::u32string_view replacement, bool boundary_before, bool boundary_after) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (starts_with_at(s, i, literal) && (!boundary_before || word_boundary(s, i)) &&
        (!boundary_after || word_boundary(s, i + literal.size()))) {
      out.append(replacement);
      i += literal.size();
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// re.sub(r"[<\[][^>\]]*[>\]]", "", s): drop "[...]" and "<...>" spans (either closer ends either opener).
inline std::u32string remove_bracketed(std::u32string_view s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == U'<' || s[i] == U'[') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != U'>' && s[j] != U']') ++j;
      if (j < s.size()) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

// re.sub(r"\(([^)]+?)\)", "", s): drop "(...)" with at least one character inside.
inline std::u32string remove_parenthesized(std::u32string_view s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == U'(' && i + 1 < s.size() && s[i + 1] != U')') {
      const size_t j = s.find(U')', i + 2);
      if (j != std::u32string_view::npos) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

// re.sub(r"\s+", " ", s)
inline std::u32string collapse_whitespace(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (unicode::is_space(s[i])) {
      while (i < s.size() && unicode::is_space(s[i])) ++i;
      out.push_back(U' ');
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

inline std::u32string join_words(const std::vector<std::u32string>& words) {
  std::u32string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) out.push_back(U' ');
    out.append(words[i]);
  }
  return out;
}

}  // namespace quasr::eval::detail
