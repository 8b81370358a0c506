// Ports of openai-whisper's BasicTextNormalizer and EnglishTextNormalizer (whisper/normalizers/basic.py and
// english.py, MIT License, Copyright (c) 2022 OpenAI). Steps are in the Python's order; each regular expression
// of the Python is named in a comment next to the code that replaces it.
#include "quasr/eval/normalizer.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "english_number_normalizer.h"
#include "quasr/core/error.h"
#include "quasr/eval/unicode.h"
#include "text_rewrite.h"

namespace quasr::eval {
namespace {

using U = std::u32string;
using namespace detail;

// Letters NFKD does not take apart, spelled out by hand in the Python (ADDITIONAL_DIACRITICS).
const char32_t* additional_diacritic(char32_t c) {
  switch (c) {
    case U'œ': return U"oe";
    case U'Œ': return U"OE";
    case U'ø': return U"o";
    case U'Ø': return U"O";
    case U'æ': return U"ae";
    case U'Æ': return U"AE";
    case U'ß': return U"ss";
    case U'ẞ': return U"SS";
    case U'đ': return U"d";
    case U'Đ': return U"D";
    case U'ð': return U"d";
    case U'Ð': return U"D";
    case U'þ': return U"th";
    case U'Þ': return U"th";
    case U'ł': return U"l";
    case U'Ł': return U"L";
    default: return nullptr;
  }
}

// remove_symbols_and_diacritics(s, keep): NFKD, drop nonspacing marks, other marks/symbols/punctuation -> space.
U remove_symbols_and_diacritics(std::u32string_view s, std::u32string_view keep) {
  U out;
  for (char32_t c : unicode::nfkd(s)) {
    if (keep.find(c) != std::u32string_view::npos) {
      out.push_back(c);
    } else if (const char32_t* repl = additional_diacritic(c)) {
      out.append(repl);
    } else if (unicode::char_class(c) == unicode::CharClass::NonspacingMark) {
      continue;
    } else if (unicode::is_mark_symbol_or_punctuation(c)) {
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// remove_symbols(s): NFKC, marks/symbols/punctuation -> space, diacritics kept.
U remove_symbols(std::u32string_view s) {
  U out = unicode::nfkc(s);
  for (char32_t& c : out)
    if (unicode::is_mark_symbol_or_punctuation(c)) c = U' ';
  return out;
}

// re.sub(r"\b(hmm|mm|mhm|mmm|uh|um)\b", "", s). Every alternative is all word characters between two \b, so
// a match is exactly a maximal run of \w characters equal to one of them.
U remove_fillers(const U& s) {
  static const U fillers[] = {U"hmm", U"mm", U"mhm", U"mmm", U"uh", U"um"};
  U out;
  size_t i = 0;
  while (i < s.size()) {
    if (!unicode::is_word(s[i])) {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i;
    while (j < s.size() && unicode::is_word(s[j])) ++j;
    const std::u32string_view run(s.data() + i, j - i);
    bool filler = false;
    for (const U& f : fillers) filler = filler || run == f;
    if (!filler) out.append(run);
    i = j;
  }
  return out;
}

struct Replacer {
  const char32_t* pattern;  // literal text between the optional \b
  const char32_t* replacement;
  bool boundary_before;
};

// EnglishTextNormalizer.replacers, in the Python's order; all end in \b.
constexpr Replacer kReplacers[] = {
    // common contractions
    {U"won't", U"will not", true}, {U"can't", U"can not", true}, {U"let's", U"let us", true},
    {U"ain't", U"aint", true}, {U"y'all", U"you all", true}, {U"wanna", U"want to", true},
    {U"gotta", U"got to", true}, {U"gonna", U"going to", true}, {U"i'ma", U"i am going to", true},
    {U"imma", U"i am going to", true}, {U"woulda", U"would have", true}, {U"coulda", U"could have", true},
    {U"shoulda", U"should have", true}, {U"ma'am", U"madam", true},
    // contractions in titles/prefixes
    {U"mr", U"mister ", true}, {U"mrs", U"missus ", true}, {U"st", U"saint ", true}, {U"dr", U"doctor ", true},
    {U"prof", U"professor ", true}, {U"capt", U"captain ", true}, {U"gov", U"governor ", true},
    {U"ald", U"alderman ", true}, {U"gen", U"general ", true}, {U"sen", U"senator ", true},
    {U"rep", U"representative ", true}, {U"pres", U"president ", true}, {U"rev", U"reverend ", true},
    {U"hon", U"honorable ", true}, {U"asst", U"assistant ", true}, {U"assoc", U"associate ", true},
    {U"lt", U"lieutenant ", true}, {U"col", U"colonel ", true}, {U"jr", U"junior ", true},
    {U"sr", U"senior ", true}, {U"esq", U"esquire ", true},
    // perfect tenses
    {U"'d been", U" had been", false}, {U"'s been", U" has been", false}, {U"'d gone", U" had gone", false},
    {U"'s gone", U" has gone", false}, {U"'d done", U" had done", false}, {U"'s got", U" has got", false},
    // general contractions
    {U"n't", U" not", false}, {U"'re", U" are", false}, {U"'s", U" is", false}, {U"'d", U" would", false},
    {U"'ll", U" will", false}, {U"'t", U" not", false}, {U"'ve", U" have", false}, {U"'m", U" am", false},
};

}  // namespace

std::string BasicTextNormalizer::normalize(std::string_view text) const {
  U s = unicode::to_lower(unicode::decode_utf8(text));
  s = remove_bracketed(s);
  s = remove_parenthesized(s);
  s = remove_diacritics_ ? remove_symbols_and_diacritics(s, U"") : remove_symbols(s);
  s = unicode::to_lower(s);
  return unicode::encode_utf8(collapse_whitespace(s));
}

EnglishTextNormalizer::EnglishTextNormalizer(const std::filesystem::path& spelling_map)
    : numbers_(std::make_unique<detail::EnglishNumberNormalizer>()) {
  const std::filesystem::path path = spelling_map.empty() ? find_eval_data_file("english_spelling.json") : spelling_map;
  std::ifstream in(path);
  if (!in) throw IoError("cannot open spelling map " + path.string());
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw IoError("spelling map " + path.string() + " is not valid JSON: " + e.what());
  }
  if (!j.is_object() || j.empty()) throw IoError("spelling map " + path.string() + " is not a non-empty JSON object");
  for (const auto& [british, american] : j.items()) {
    if (!american.is_string()) throw IoError("spelling map " + path.string() + ": value of '" + british + "' is not a string");
    spellings_.emplace(british, american.get<std::string>());
  }
}

EnglishTextNormalizer::~EnglishTextNormalizer() = default;

std::string EnglishTextNormalizer::normalize(std::string_view text) const {
  U s = unicode::to_lower(unicode::decode_utf8(text));
  s = remove_bracketed(s);      // [<\[][^>\]]*[>\]]
  s = remove_parenthesized(s);  // \(([^)]+?)\)
  s = remove_fillers(s);        // \b(hmm|mm|mhm|mmm|uh|um)\b

  // \s+' -> ': no space before an apostrophe.
  {
    U t;
    for (size_t i = 0; i < s.size();) {
      if (unicode::is_space(s[i])) {
        size_t j = i;
        while (j < s.size() && unicode::is_space(s[j])) ++j;
        if (j < s.size() && s[j] == U'\'') {
          i = j;
          continue;
        }
        t.append(s, i, j - i);
        i = j;
      } else {
        t.push_back(s[i++]);
      }
    }
    s = std::move(t);
  }

  for (const Replacer& r : kReplacers) s = replace_literal(s, r.pattern, r.replacement, r.boundary_before, true);

  // (\d),(\d) -> \1\2: commas between digits (non-overlapping, so "1,2,3" -> "12,3" as in Python).
  {
    U t;
    for (size_t i = 0; i < s.size();) {
      if (i + 2 < s.size() && unicode::is_digit(s[i]) && s[i + 1] == U',' && unicode::is_digit(s[i + 2])) {
        t.push_back(s[i]);
        t.push_back(s[i + 2]);
        i += 3;
      } else {
        t.push_back(s[i++]);
      }
    }
    s = std::move(t);
  }
  // \.([^0-9]|$) -> " \1": periods not followed by a digit.
  {
    U t;
    for (size_t i = 0; i < s.size();) {
      if (s[i] == U'.' && (i + 1 == s.size() || !is_ascii_digit(s[i + 1]))) {
        t.push_back(U' ');
        if (i + 1 < s.size()) t.push_back(s[i + 1]);
        i += 2;
      } else {
        t.push_back(s[i++]);
      }
    }
    s = std::move(t);
  }
  s = remove_symbols_and_diacritics(s, U".%$¢€£");  // keep numeric symbols

  s = (*numbers_)(s);

  // British -> American spellings, word by word.
  {
    std::vector<U> words = unicode::split_whitespace(s);
    for (U& w : words) {
      const auto it = spellings_.find(unicode::encode_utf8(w));
      if (it != spellings_.end()) w = unicode::decode_utf8(it->second);
    }
    s = join_words(words);
  }

  // [.$¢€£]([^0-9]) -> " \1" and ([^0-9])% -> "\1 ": symbols not next to a number.
  {
    auto is_symbol = [](char32_t c) { return c == U'.' || c == U'$' || c == U'¢' || c == U'€' || c == U'£'; };
    U t;
    for (size_t i = 0; i < s.size();) {
      if (is_symbol(s[i]) && i + 1 < s.size() && !is_ascii_digit(s[i + 1])) {
        t.push_back(U' ');
        t.push_back(s[i + 1]);
        i += 2;
      } else {
        t.push_back(s[i++]);
      }
    }
    U u;
    for (size_t i = 0; i < t.size();) {
      if (!is_ascii_digit(t[i]) && i + 1 < t.size() && t[i + 1] == U'%') {
        u.push_back(t[i]);
        u.push_back(U' ');
        i += 2;
      } else {
        u.push_back(t[i++]);
      }
    }
    s = std::move(u);
  }
  return unicode::encode_utf8(collapse_whitespace(s));
}

std::unique_ptr<TextNormalizer> make_normalizer(std::string_view name) {
  if (name == "english") return std::make_unique<EnglishTextNormalizer>();
  if (name == "basic") return std::make_unique<BasicTextNormalizer>(false);
  if (name == "basic-nodiacritics") return std::make_unique<BasicTextNormalizer>(true);
  if (name == "none") return std::make_unique<IdentityNormalizer>();
  throw InvalidArgument("unknown text normalizer '" + std::string(name) +
                        "' (choose english, basic, basic-nodiacritics or none)");
}

std::filesystem::path find_eval_data_file(const std::string& name) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* dir = std::getenv("QUASR_DATA_DIR"); dir && *dir) candidates.push_back(fs::path(dir) / name);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / ".." / "data" / name);
    candidates.push_back(exe.parent_path() / ".." / "share" / "quasr" / name);
  }
#ifdef QUASR_SOURCE_DIR
  candidates.push_back(fs::path(QUASR_SOURCE_DIR) / "data" / name);
#endif
  std::string tried;
  for (const fs::path& p : candidates) {
    if (fs::is_regular_file(p, ec)) return fs::weakly_canonical(p, ec);
    tried += (tried.empty() ? "" : ", ") + p.string();
  }
  throw IoError("data file '" + name + "' not found (looked in " + tried + "; set QUASR_DATA_DIR)");
}

}  // namespace quasr::eval
