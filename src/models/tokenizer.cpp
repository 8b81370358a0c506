// Whisper's byte-level BPE tokenizer (GPT-2 scheme) read from a Hugging Face tokenizer.json, reproducing what the
// `tokenizers` package does for this configuration: added tokens split out first (leftmost-longest), the GPT-2
// pre-tokenization pattern (emulated without a regex library), bytes mapped to printable code points, BPE merges
// by rank. Decoding maps the code points back to bytes and replaces invalid UTF-8 the way Rust's
// String::from_utf8_lossy does (one U+FFFD per maximal invalid subsequence), which Python's errors="replace"
// matches too.
#include "quasr/models/tokenizer.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "quasr/core/error.h"
#include "tokenizer_unicode.h"

namespace quasr::models {

namespace unicode {

static bool in_ranges(const CodepointRange* ranges, size_t count, uint32_t cp) {
  const CodepointRange* end = ranges + count;
  const CodepointRange* it =
      std::upper_bound(ranges, end, cp, [](uint32_t v, const CodepointRange& r) { return v < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

bool is_letter(uint32_t cp) { return in_ranges(kLetterRanges, kLetterRanges_count, cp); }
bool is_number(uint32_t cp) { return in_ranges(kNumberRanges, kNumberRanges_count, cp); }
bool is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace unicode

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length of the valid UTF-8 sequence starting at s[i], or the length of the maximal invalid prefix as a negative
// number (at least 1 byte), following the Unicode "maximal subpart" replacement practice.
int utf8_sequence(std::string_view s, size_t i, uint32_t* cp_out) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp_out = b0;
    return 1;
  }
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) return -k;
    lo = 0x80, hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  *cp_out = cp;
  return need + 1;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    uint32_t cp = 0;
    const int n = utf8_sequence(bytes, i, &cp);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += -n;
    }
  }
  return out;
}

std::vector<uint32_t> utf8_to_codepoints(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const int n = utf8_sequence(text, i, &cp);
    if (n <= 0)
      throw InvalidArgument("tokenizer: text to encode is not valid UTF-8 (byte " + std::to_string(i) + ")");
    cps.push_back(cp);
    i += n;
  }
  return cps;
}

enum class CharClass { kSpace, kLetter, kNumber, kOther };

CharClass classify(uint32_t cp) {
  if (unicode::is_whitespace(cp)) return CharClass::kSpace;
  if (unicode::is_letter(cp)) return CharClass::kLetter;
  if (unicode::is_number(cp)) return CharClass::kNumber;
  return CharClass::kOther;
}

// Splits code points into pre-tokens exactly as the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does with leftmost-first alternation; returns [begin, end) code-point index pairs.
std::vector<std::pair<size_t, size_t>> gpt2_pretokenize(const std::vector<uint32_t>& cps) {
  std::vector<std::pair<size_t, size_t>> pieces;
  const size_t n = cps.size();
  std::vector<CharClass> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = classify(cps[i]);
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    // Contractions.
    if (cps[i] == '\'' && i + 1 < n) {
      const uint32_t c1 = cps[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        end = i + 2;
      } else if (i + 2 < n && ((c1 == 'r' && cps[i + 2] == 'e') || (c1 == 'v' && cps[i + 2] == 'e') ||
                                (c1 == 'l' && cps[i + 2] == 'l'))) {
        end = i + 3;
      }
    }
    // ` ?X+` for X = letters, numbers, other (neither space, letter nor number).
    for (CharClass c : {CharClass::kLetter, CharClass::kNumber, CharClass::kOther}) {
      if (end != i) break;
      const size_t j = i + (cps[i] == ' ' ? 1 : 0);
      if (j < n && cls[j] == c) {
        size_t k = j;
        while (k < n && cls[k] == c) ++k;
        end = k;
      }
    }
    if (end == i) {
      // Whitespace: `\s+(?!\S)` keeps the last space of a run for the word that follows; `\s+` otherwise.
      QUASR_ASSERT(cls[i] == CharClass::kSpace);
      size_t r = i;
      while (r < n && cls[r] == CharClass::kSpace) ++r;
      end = (r == n || r - i == 1) ? r : r - 1;
    }
    pieces.emplace_back(i, end);
    i = end;
  }
  return pieces;
}

// GPT-2's reversible byte -> printable code point map.
std::array<uint32_t, 256> byte_to_codepoint_table() {
  std::array<uint32_t, 256> table{};
  uint32_t extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = printable ? static_cast<uint32_t>(b) : extra++;
  }
  return table;
}

}  // namespace

struct Tokenizer::Impl {
  std::unordered_map<std::string, int> token_to_id;  // vocab + added + synthesized timestamps
  std::vector<std::string> id_to_token;
  std::unordered_map<std::string, int> merge_rank;    // "left right" -> rank
  std::vector<std::string> added_tokens;              // contents, longest first (for leftmost-longest)
  std::array<bool, 256> added_first_byte{};           // bytes an added token can start with
  std::array<std::string, 256> byte_to_unicode;      // byte -> its printable UTF-8 form
  std::unordered_map<uint32_t, uint8_t> unicode_to_byte;
  int eot = -1;

  std::vector<int> bpe(const std::string& word_bytes) const;
  std::string token_bytes(int id) const;
};

std::string Tokenizer::Impl::token_bytes(int id) const {
  const std::string& tok = id_to_token[id];
  std::string bytes;
  bool all_mapped = true;
  for (size_t i = 0; i < tok.size();) {
    uint32_t cp = 0;
    const int n = utf8_sequence(tok, i, &cp);
    if (n <= 0) return tok;
    auto it = unicode_to_byte.find(cp);
    if (it == unicode_to_byte.end()) {
      all_mapped = false;
      break;
    }
    bytes += static_cast<char>(it->second);
    i += n;
  }
  // As the ByteLevel decoder: a token with a character outside the byte map contributes its raw UTF-8.
  return all_mapped ? bytes : tok;
}

std::vector<int> Tokenizer::Impl::bpe(const std::string& word_bytes) const {
  std::vector<std::string> parts;
  parts.reserve(word_bytes.size());
  for (unsigned char b : word_bytes) parts.push_back(byte_to_unicode[b]);
  while (parts.size() > 1) {
    int best_rank = INT_MAX;
    size_t best = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = merge_rank.find(parts[i] + " " + parts[i + 1]);
      if (it != merge_rank.end() && it->second < best_rank) best_rank = it->second, best = i;
    }
    if (best_rank == INT_MAX) break;
    const std::string left = parts[best], right = parts[best + 1];
    std::vector<std::string> merged;
    merged.reserve(parts.size());
    for (size_t i = 0; i < parts.size();) {
      if (i + 1 < parts.size() && parts[i] == left && parts[i + 1] == right) {
        merged.push_back(left + right);
        i += 2;
      } else {
        merged.push_back(parts[i++]);
      }
    }
    parts.swap(merged);
  }
  std::vector<int> ids;
  ids.reserve(parts.size());
  for (const auto& p : parts) {
    auto it = token_to_id.find(p);
    if (it == token_to_id.end()) throw InvalidArgument("tokenizer: BPE produced a piece missing from the vocabulary");
    ids.push_back(it->second);
  }
  return ids;
}

Tokenizer Tokenizer::load(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer.json";
  std::ifstream in(path);
  if (!in) throw IoError("cannot open " + path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw IoError(path + ": not valid JSON: " + e.what());
  }
  auto impl = std::make_shared<Impl>();
  try {
    const auto& model = j.at("model");
    if (model.value("type", std::string("BPE")) != "BPE") throw IoError(path + ": model.type is not BPE");
    int max_id = -1;
    auto add = [&](const std::string& text, int id) {
      if (id < 0) throw IoError(path + ": negative token id for '" + text + "'");
      impl->token_to_id[text] = id;
      max_id = std::max(max_id, id);
      if (static_cast<size_t>(id) >= impl->id_to_token.size()) impl->id_to_token.resize(id + 1);
      impl->id_to_token[id] = text;
    };
    for (const auto& [text, id] : model.at("vocab").items()) add(text, id.get<int>());
    int rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string key;
      if (m.is_string()) {
        key = m.get<std::string>();
      } else {
        key = m.at(0).get<std::string>() + " " + m.at(1).get<std::string>();
      }
      impl->merge_rank.emplace(key, rank++);
    }
    for (const auto& t : j.at("added_tokens")) {
      const std::string content = t.at("content").get<std::string>();
      add(content, t.at("id").get<int>());
      if (!content.empty()) impl->added_tokens.push_back(content);
    }
    // tokenizer.json of English-only checkpoints stops at <|notimestamps|>: the 1501 timestamp tokens
    // <|0.00|> ... <|30.00|> follow it in the model's vocabulary whether listed or not.
    auto nt = impl->token_to_id.find("<|notimestamps|>");
    if (nt != impl->token_to_id.end()) {
      for (int i = 0; i <= 1500; ++i) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "<|%.2f|>", i * 0.02);
        if (!impl->token_to_id.count(buf)) add(buf, nt->second + 1 + i);
      }
    }
    (void)max_id;
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": unexpected layout: " + e.what());
  }
  std::sort(impl->added_tokens.begin(), impl->added_tokens.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& t : impl->added_tokens)
    if (!t.empty()) impl->added_first_byte[static_cast<unsigned char>(t[0])] = true;
  const auto table = byte_to_codepoint_table();
  for (int b = 0; b < 256; ++b) {
    append_utf8(impl->byte_to_unicode[b], table[b]);
    impl->unicode_to_byte[table[b]] = static_cast<uint8_t>(b);
  }
  auto eot = impl->token_to_id.find("<|endoftext|>");
  if (eot == impl->token_to_id.end()) throw IoError(path + ": no <|endoftext|> token");
  impl->eot = eot->second;
  Tokenizer tok;
  tok.impl_ = std::move(impl);
  return tok;
}

int Tokenizer::vocab_size() const { return static_cast<int>(impl_->id_to_token.size()); }

int Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->token_to_id.find(std::string(token));
  return it == impl_->token_to_id.end() ? -1 : it->second;
}

std::string Tokenizer::token_text(int id) const {
  if (id < 0 || id >= vocab_size()) throw InvalidArgument("tokenizer: token id " + std::to_string(id) + " out of range");
  return impl_->id_to_token[id];
}

bool Tokenizer::is_special(int id) const { return id >= impl_->eot; }

std::string Tokenizer::decode(std::span<const int> ids) const {
  std::string bytes;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size())
      throw InvalidArgument("tokenizer: token id " + std::to_string(id) + " out of range");
    if (is_special(id)) continue;
    bytes += impl_->token_bytes(id);
  }
  return utf8_lossy(bytes);
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  auto encode_plain = [&](std::string_view chunk) {
    if (chunk.empty()) return;
    const std::vector<uint32_t> cps = utf8_to_codepoints(chunk);
    for (const auto& [b, e] : gpt2_pretokenize(cps)) {
      std::string word;
      for (size_t k = b; k < e; ++k) append_utf8(word, cps[k]);
      const std::vector<int> piece = impl_->bpe(word);
      ids.insert(ids.end(), piece.begin(), piece.end());
    }
  };
  // Added tokens (specials such as <|endoftext|>, timestamps) are matched leftmost-longest before BPE.
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const std::string* match = nullptr;
    if (impl_->added_first_byte[static_cast<unsigned char>(text[i])]) {
      for (const auto& t : impl_->added_tokens) {
        if (text.substr(i, t.size()) == t) {
          match = &t;
          break;
        }
      }
    }
    if (match) {
      encode_plain(text.substr(start, i - start));
      ids.push_back(impl_->token_to_id.at(*match));
      i += match->size();
      start = i;
    } else {
      ++i;
    }
  }
  encode_plain(text.substr(start));
  return ids;
}

}  // namespace quasr::models
