// A line-by-line port of EnglishNumberNormalizer from openai-whisper (whisper/normalizers/english.py, MIT
// License, Copyright (c) 2022 OpenAI): same word tables, same branch order, same quirks ("nineth" is its
// ordinal of nine, "point" before a non-decimal word is dropped), because parity with the Python is the point.
#include "english_number_normalizer.h"

#include <optional>

#include "quasr/core/error.h"
#include "quasr/eval/unicode.h"
#include "text_rewrite.h"

namespace quasr::eval::detail {
namespace {

using U = std::u32string;

U ascii(std::string_view s) { return U(s.begin(), s.end()); }
U to_u(long long v) { return ascii(std::to_string(v)); }

// ---- non-negative integers of any size as canonical decimal strings (Python ints do not overflow, and
// "nine hundred decillion" has 36 digits) ---------------------------------------------------------------------
U canonical(U digits) {
  size_t k = 0;
  while (k + 1 < digits.size() && digits[k] == U'0') ++k;
  digits.erase(0, k);
  return digits.empty() ? U(U"0") : digits;
}

U add(const U& a, const U& b) {
  U out;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    int d = carry;
    if (i < a.size()) d += static_cast<int>(a[a.size() - 1 - i] - U'0');
    if (i < b.size()) d += static_cast<int>(b[b.size() - 1 - i] - U'0');
    out.insert(out.begin(), static_cast<char32_t>(U'0' + d % 10));
    carry = d / 10;
  }
  return canonical(out);
}

int mod_pow10(const U& a, int k) {  // a % 10^k
  int v = 0;
  for (size_t i = a.size() >= static_cast<size_t>(k) ? a.size() - k : 0; i < a.size(); ++i)
    v = v * 10 + static_cast<int>(a[i] - U'0');
  return v;
}

U times_pow10(const U& a, int e) { return a == U"0" ? a : a + U(static_cast<size_t>(e), U'0'); }

// value // 1000 * 1000 + value % 1000 * 10^e: how Whisper applies "thousand", "million"... to a running value.
U apply_multiplier(const U& value, int e) {
  const U before = value.size() <= 3 ? U(U"0") : value.substr(0, value.size() - 3) + U(U"000");
  return add(before, times_pow10(to_u(mod_pow10(value, 3)), e));
}

// A Python value of the normalizer: None, int, or str.
struct Value {
  enum Kind { kNone, kInt, kStr } kind = kNone;
  U text;  // decimal digits for kInt
  bool none() const { return kind == kNone; }
  bool is_str() const { return kind == kStr; }
  static Value integer(U digits) { return {kInt, canonical(std::move(digits))}; }
  static Value str(U s) { return {kStr, std::move(s)}; }
  // str(value or ""): None and int 0 are falsy.
  U or_empty() const { return (kind == kNone || (kind == kInt && text == U"0")) ? U() : text; }
};

bool is_arabic_number(const U& w) {  // re.match(r"^\d+(\.\d+)?$", w)
  size_t i = 0;
  while (i < w.size() && unicode::is_digit(w[i])) ++i;
  if (i == 0) return false;
  if (i == w.size()) return true;
  if (w[i] != U'.') return false;
  const size_t frac_start = ++i;
  while (i < w.size() && unicode::is_digit(w[i])) ++i;
  return i > frac_start && i == w.size();
}

// fractions.Fraction(s) for the strings this normalizer builds (digits with at most one '.'); nullopt where
// Python raises ValueError.
struct Decimal {
  U integer, fraction;  // ASCII digits
};
std::optional<Decimal> to_fraction(const U& s) {
  Decimal d;
  size_t i = 0;
  for (; i < s.size() && unicode::is_digit(s[i]); ++i) d.integer.push_back(U'0' + unicode::digit_value(s[i]));
  if (i < s.size() && s[i] == U'.') {
    for (++i; i < s.size() && unicode::is_digit(s[i]); ++i) d.fraction.push_back(U'0' + unicode::digit_value(s[i]));
  }
  if (i != s.size() || (d.integer.empty() && d.fraction.empty())) return std::nullopt;
  while (!d.fraction.empty() && d.fraction.back() == U'0') d.fraction.pop_back();
  return d;
}

// Fraction * 10^e when that is an integer (its numerator), else nullopt.
std::optional<U> integer_times_pow10(const Decimal& d, int e) {
  if (d.fraction.size() > static_cast<size_t>(e)) return std::nullopt;
  return canonical(d.integer + d.fraction + U(e - d.fraction.size(), U'0'));
}

template <typename Container>
bool contains(const Container& c, const U* word) {
  return word && c.count(*word);
}

}  // namespace

EnglishNumberNormalizer::EnglishNumberNormalizer() {
  zeros_ = {U"o", U"oh", U"zero"};
  const char* ones[] = {"one",     "two",     "three",     "four",     "five",    "six",      "seven",
                        "eight",   "nine",    "ten",       "eleven",   "twelve",  "thirteen", "fourteen",
                        "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  for (int i = 0; i < 19; ++i) ones_[ascii(ones[i])] = i + 1;
  for (const auto& [name, value] : ones_) ones_suffixed_[name == U"six" ? U(U"sixes") : name + U"s"] = {value, U"s"};
  std::map<U, std::pair<int, U>> ordinals = {{U"zeroth", {0, U"th"}}, {U"first", {1, U"st"}},
                                             {U"second", {2, U"nd"}}, {U"third", {3, U"rd"}},
                                             {U"fifth", {5, U"th"}},  {U"twelfth", {12, U"th"}}};
  for (const auto& [name, value] : ones_)
    if (value > 3 && value != 5 && value != 12) ordinals[name + (name.back() == U't' ? U"h" : U"th")] = {value, U"th"};
  for (auto& [k, v] : ordinals) ones_suffixed_[k] = v;  // ordinals override plurals, as {**plural, **ordinal}

  const char* tens[] = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
  for (int i = 0; i < 8; ++i) tens_[ascii(tens[i])] = 20 + 10 * i;
  for (const auto& [name, value] : tens_) {
    const U stem = name.substr(0, name.size() - 1);  // every tens word ends in its only 'y'
    tens_suffixed_[stem + U"ies"] = {value, U"s"};
    tens_suffixed_[stem + U"ieth"] = {value, U"th"};
  }

  const char* multipliers[] = {"hundred",     "thousand",   "million",    "billion",   "trillion",
                               "quadrillion", "quintillion", "sextillion", "septillion", "octillion",
                               "nonillion",   "decillion"};
  for (int i = 0; i < 12; ++i) {
    const U name = ascii(multipliers[i]);
    const int e = i == 0 ? 2 : 3 * i;
    multipliers_[name] = e;
    multipliers_suffixed_[name + U"s"] = {e, U"s"};
    multipliers_suffixed_[name + U"th"] = {e, U"th"};
  }

  preceding_prefixers_ = {{U"minus", U'-'}, {U"negative", U'-'}, {U"plus", U'+'}, {U"positive", U'+'}};
  following_prefixers_ = {{U"pound", U'£'}, {U"pounds", U'£'}, {U"euro", U'€'}, {U"euros", U'€'},
                          {U"dollar", U'$'}, {U"dollars", U'$'}, {U"cent", U'¢'}, {U"cents", U'¢'}};
  for (const auto& m : {preceding_prefixers_, following_prefixers_})
    for (const auto& [k, v] : m) prefixes_.insert(v);
  specials_ = {U"and", U"double", U"triple", U"point"};

  decimals_ = zeros_;
  for (const auto& m : {ones_, tens_})
    for (const auto& [k, v] : m) decimals_.insert(k);
  words_ = decimals_;
  for (const auto& m : {ones_suffixed_, tens_suffixed_, multipliers_suffixed_})
    for (const auto& [k, v] : m) words_.insert(k);
  for (const auto& [k, v] : multipliers_) words_.insert(k);
  for (const auto& m : {preceding_prefixers_, following_prefixers_})
    for (const auto& [k, v] : m) words_.insert(k);
  words_.insert(U"per");
  words_.insert(U"percent");
  words_.insert(specials_.begin(), specials_.end());
}

std::vector<U> EnglishNumberNormalizer::process_words(const std::vector<U>& words) const {
  std::vector<U> out;
  std::optional<char32_t> prefix;
  Value value;
  bool skip = false;

  // output() of the Python: prepend the pending prefix, then forget value and prefix.
  auto output = [&](U result) {
    if (prefix) result.insert(result.begin(), *prefix);
    value = Value{};
    prefix.reset();
    out.push_back(std::move(result));
  };

  for (size_t idx = 0; idx < words.size(); ++idx) {
    if (skip) {
      skip = false;
      continue;
    }
    const U* prev = idx > 0 ? &words[idx - 1] : nullptr;
    const U& current = words[idx];
    const U* next = idx + 1 < words.size() ? &words[idx + 1] : nullptr;
    const bool next_is_numeric = next && is_arabic_number(*next);
    const bool has_prefix = prefixes_.count(current[0]) > 0;
    const U current_without_prefix = has_prefix ? current.substr(1) : current;

    if (is_arabic_number(current_without_prefix)) {
      const Decimal f = *to_fraction(current_without_prefix);
      if (!value.none()) {
        if (value.is_str() && !value.text.empty() && value.text.back() == U'.') {
          value.text += current;  // concatenate decimals / ip address components
          continue;
        }
        output(value.text);
      }
      if (has_prefix) prefix = current[0];
      value = f.fraction.empty() ? Value::integer(f.integer) : Value::str(current_without_prefix);
    } else if (!words_.count(current)) {
      if (!value.none()) output(value.text);
      output(current);
    } else if (zeros_.count(current)) {
      value = Value::str(value.or_empty() + U"0");
    } else if (ones_.count(current)) {
      const int ones = ones_.at(current);
      if (value.none()) {
        value = Value::integer(to_u(ones));
      } else if (value.is_str() || contains(ones_, prev)) {
        if (contains(tens_, prev) && ones < 10) {
          QUASR_ASSERT(value.is_str() && value.text.back() == U'0');
          value.text.back() = U'0' + ones;
        } else {
          value = Value::str(value.text + to_u(ones));
        }
      } else if (ones < 10) {
        value = mod_pow10(value.text, 1) == 0 ? Value::integer(add(value.text, to_u(ones)))
                                              : Value::str(value.text + to_u(ones));
      } else {  // eleven to nineteen
        value = mod_pow10(value.text, 2) == 0 ? Value::integer(add(value.text, to_u(ones)))
                                              : Value::str(value.text + to_u(ones));
      }
    } else if (ones_suffixed_.count(current)) {
      const auto& [ones, suffix] = ones_suffixed_.at(current);
      if (value.none()) {
        output(to_u(ones) + suffix);
      } else if (value.is_str() || contains(ones_, prev)) {
        if (contains(tens_, prev) && ones < 10) {
          QUASR_ASSERT(value.is_str() && value.text.back() == U'0');
          output(value.text.substr(0, value.text.size() - 1) + to_u(ones) + suffix);
        } else {
          output(value.text + to_u(ones) + suffix);
        }
      } else if (ones < 10) {
        output(mod_pow10(value.text, 1) == 0 ? add(value.text, to_u(ones)) + suffix
                                             : value.text + to_u(ones) + suffix);
      } else {
        output(mod_pow10(value.text, 2) == 0 ? add(value.text, to_u(ones)) + suffix
                                             : value.text + to_u(ones) + suffix);
      }
      value = Value{};
    } else if (tens_.count(current)) {
      const int tens = tens_.at(current);
      if (value.none()) {
        value = Value::integer(to_u(tens));
      } else if (value.is_str()) {
        value = Value::str(value.text + to_u(tens));
      } else {
        value = mod_pow10(value.text, 2) == 0 ? Value::integer(add(value.text, to_u(tens)))
                                              : Value::str(value.text + to_u(tens));
      }
    } else if (tens_suffixed_.count(current)) {
      const auto& [tens, suffix] = tens_suffixed_.at(current);
      if (value.none()) {
        output(to_u(tens) + suffix);
      } else if (value.is_str()) {
        output(value.text + to_u(tens) + suffix);
      } else {
        output(mod_pow10(value.text, 2) == 0 ? add(value.text, to_u(tens)) + suffix
                                             : value.text + to_u(tens) + suffix);
      }
    } else if (multipliers_.count(current)) {
      const int e = multipliers_.at(current);
      const U multiplier = times_pow10(U(U"1"), e);
      if (value.none()) {
        value = Value::integer(multiplier);
      } else if (value.is_str() || value.text == U"0") {
        const auto f = value.is_str() ? to_fraction(value.text) : std::optional<Decimal>(Decimal{U"0", U""});
        const auto p = f ? integer_times_pow10(*f, e) : std::nullopt;
        if (p) {
          value = Value::integer(*p);
        } else {
          output(value.text);
          value = Value::integer(multiplier);
        }
      } else {
        value = Value::integer(apply_multiplier(value.text, e));
      }
    } else if (multipliers_suffixed_.count(current)) {
      const auto& [e, suffix] = multipliers_suffixed_.at(current);
      const U multiplier = times_pow10(U(U"1"), e);
      if (value.none()) {
        output(multiplier + suffix);
      } else if (value.is_str()) {
        const auto f = to_fraction(value.text);
        const auto p = f ? integer_times_pow10(*f, e) : std::nullopt;
        if (p) {
          output(*p + suffix);
        } else {
          output(value.text);
          output(multiplier + suffix);
        }
      } else {
        output(apply_multiplier(value.text, e) + suffix);
      }
      value = Value{};
    } else if (preceding_prefixers_.count(current)) {
      if (!value.none()) output(value.text);
      if (contains(words_, next) || next_is_numeric) {
        prefix = preceding_prefixers_.at(current);
      } else {
        output(current);
      }
    } else if (following_prefixers_.count(current)) {
      if (!value.none()) {
        prefix = following_prefixers_.at(current);
        output(value.text);
      } else {
        output(current);
      }
    } else if (current == U"per" || current == U"percent") {
      if (!value.none()) {
        if (current == U"per") {
          if (next && *next == U"cent") {
            output(value.text + U"%");
            skip = true;
          } else {
            output(value.text);
            output(current);
          }
        } else {
          output(value.text + U"%");
        }
      } else {
        output(current);
      }
    } else {
      QUASR_ASSERT(specials_.count(current));
      if (!contains(words_, next) && !next_is_numeric) {
        if (!value.none()) output(value.text);
        output(current);
      } else if (current == U"and") {
        if (!contains(multipliers_, prev)) {  // "and" after hundreds, thousands... is dropped
          if (!value.none()) output(value.text);
          output(current);
        }
      } else if (current == U"double" || current == U"triple") {
        if (contains(ones_, next) || contains(zeros_, next)) {
          const int repeats = current == U"double" ? 2 : 3;
          const int ones = ones_.count(*next) ? ones_.at(*next) : 0;
          U digits = value.or_empty();
          for (int r = 0; r < repeats; ++r) digits += to_u(ones);
          value = Value::str(digits);
          skip = true;
        } else {
          if (!value.none()) output(value.text);
          output(current);
        }
      } else if (current == U"point") {
        if (contains(decimals_, next) || next_is_numeric) value = Value::str(value.or_empty() + U".");
      }
    }
  }
  if (!value.none()) output(value.text);
  return out;
}

U EnglishNumberNormalizer::preprocess(const U& s) const {
  // "<number> and a half" -> "<number> point five": split on \band\s+a\s+half\b.
  std::vector<U> segments;
  {
    size_t start = 0, i = 0;
    while (i < s.size()) {
      size_t j = i;
      bool match = word_boundary(s, i) && starts_with_at(s, i, U"and");
      if (match) {
        j = i + 3;
        auto spaces_then = [&](std::u32string_view lit) {
          const size_t k = j;
          while (j < s.size() && unicode::is_space(s[j])) ++j;
          if (j == k || !starts_with_at(s, j, lit)) return false;
          j += lit.size();
          return true;
        };
        match = spaces_then(U"a") && spaces_then(U"half") && word_boundary(s, j);
      }
      if (match) {
        segments.push_back(s.substr(start, i - start));
        start = i = j;
      } else {
        ++i;
      }
    }
    segments.push_back(s.substr(start));
  }
  std::vector<U> results;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::vector<U> words = unicode::split_whitespace(segments[i]);
    if (words.empty()) continue;
    results.push_back(segments[i]);
    if (i + 1 < segments.size()) {
      const U& last_word = words.back();
      results.push_back(decimals_.count(last_word) || multipliers_.count(last_word) ? U(U"point five")
                                                                                   : U(U"and a half"));
    }
  }
  const U joined = join_words(results);

  // Space at letter/digit boundaries ([a-z] and [0-9] are ASCII in the Python patterns too)...
  U spaced;
  for (size_t i = 0; i < joined.size(); ++i) {
    spaced.push_back(joined[i]);
    if (i + 1 < joined.size() && ((is_ascii_lower(joined[i]) && is_ascii_digit(joined[i + 1])) ||
                                  (is_ascii_digit(joined[i]) && is_ascii_lower(joined[i + 1]))))
      spaced.push_back(U' ');
  }
  // ...but not before what could be a suffix: ([0-9])\s+(st|nd|rd|th|s)\b -> \1\2.
  U out;
  for (size_t i = 0; i < spaced.size();) {
    out.push_back(spaced[i]);
    if (is_ascii_digit(spaced[i])) {
      size_t j = i + 1;
      while (j < spaced.size() && unicode::is_space(spaced[j])) ++j;
      if (j > i + 1) {
        for (std::u32string_view suffix : {U"st", U"nd", U"rd", U"th", U"s"}) {
          if (starts_with_at(spaced, j, suffix) && word_boundary(spaced, j + suffix.size())) {
            out.append(suffix);
            i = j + suffix.size();
            goto next_char;
          }
        }
      }
    }
    ++i;
  next_char:;
  }
  return out;
}

U EnglishNumberNormalizer::postprocess(const U& s) {
  auto is_currency = [](char32_t c) { return c == U'€' || c == U'£' || c == U'$'; };
  // Up to two digits at s[j] followed by \b (the {1,2} quantifier backtracks from two to one); 0 if none.
  auto cents_digits = [&](const U& t, size_t j) -> size_t {
    for (size_t n = 2; n >= 1; --n) {
      bool ok = j + n <= t.size();
      for (size_t k = 0; ok && k < n; ++k) ok = is_ascii_digit(t[j + k]);
      if (ok && word_boundary(t, j + n)) return n;
    }
    return 0;
  };
  // "$2 and ¢7" -> "$2.07": ([€£$])([0-9]+) (?:and )?¢([0-9]{1,2})\b
  U a;
  for (size_t i = 0; i < s.size();) {
    if (is_currency(s[i])) {
      size_t j = i + 1;
      while (j < s.size() && is_ascii_digit(s[j])) ++j;
      if (j > i + 1 && j < s.size() && s[j] == U' ') {
        const size_t integer_end = j++;
        for (bool with_and : {true, false}) {
          size_t k = j;
          if (with_and) {
            if (!starts_with_at(s, k, U"and ")) continue;
            k += 4;
          }
          if (k >= s.size() || s[k] != U'¢') continue;
          if (const size_t n = cents_digits(s, k + 1)) {
            const int cents = n == 2 ? (s[k + 1] - U'0') * 10 + (s[k + 2] - U'0') : (s[k + 1] - U'0');
            a.append(s.substr(i, integer_end - i));
            a.push_back(U'.');
            a.push_back(U'0' + cents / 10);
            a.push_back(U'0' + cents % 10);
            i = k + 1 + n;
            goto next_a;
          }
        }
      }
    }
    a.push_back(s[i++]);
  next_a:;
  }
  // "$0.5" -> "¢5": [€£$]0.([0-9]{1,2})\b (the '.' there is any character but a newline).
  U b;
  for (size_t i = 0; i < a.size();) {
    if (is_currency(a[i]) && i + 2 < a.size() && a[i + 1] == U'0' && a[i + 2] != U'\n') {
      if (const size_t n = cents_digits(a, i + 3)) {
        const int cents = n == 2 ? (a[i + 3] - U'0') * 10 + (a[i + 4] - U'0') : (a[i + 3] - U'0');
        b.push_back(U'¢');
        b.append(to_u(cents));
        i += 3 + n;
        continue;
      }
    }
    b.push_back(a[i++]);
  }
  // "1" -> "one", "1s" -> "ones": \b1(s?)\b
  U c;
  for (size_t i = 0; i < b.size();) {
    if (b[i] == U'1' && word_boundary(b, i)) {
      if (i + 1 < b.size() && b[i + 1] == U's' && word_boundary(b, i + 2)) {
        c.append(U"ones");
        i += 2;
        continue;
      }
      if (word_boundary(b, i + 1)) {
        c.append(U"one");
        i += 1;
        continue;
      }
    }
    c.push_back(b[i++]);
  }
  return c;
}

U EnglishNumberNormalizer::operator()(const U& s) const {
  return postprocess(join_words(process_words(unicode::split_whitespace(preprocess(s)))));
}

}  // namespace quasr::eval::detail
