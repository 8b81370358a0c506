// Parity of quasr's text normalizers with openai-whisper's Python ones, computed at test time by
// scripts/ref_normalize.py (the reference is never pasted into this file).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "eval_test_support.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/normalizer.h"
#include "quasr/eval/unicode.h"

namespace quasr::eval {
namespace {

using testing::TempDir;

const char* kLibriSpeech = "/work/shared/data/LibriSpeech";

struct HardString {
  std::string category, text;
};

std::vector<HardString> hard_strings() {
  std::vector<HardString> out;
  for (const auto& j : testing::read_jsonl(testing::source_dir() + "/tests/eval/data/normalizer_hard_strings.jsonl"))
    out.push_back({j.at("category").get<std::string>(), j.at("text").get<std::string>()});
  return out;
}

std::vector<std::string> librispeech_references(const std::string& split) {
  std::vector<std::string> out;
  for (const auto& u : load_librispeech(std::string(kLibriSpeech) + "/" + split).utterances) out.push_back(u.reference);
  return out;
}

// Real Whisper output (mixed case, punctuation, digits), committed as test input; the expected normalizations
// are still computed by the reference.
std::vector<std::string> whisper_hypotheses() {
  std::vector<std::string> out;
  for (auto& [id, text] : testing::whisper_hypotheses()) out.push_back(text);
  return out;
}

std::vector<std::string> reference_normalize(const std::string& kind, const std::vector<std::string>& texts) {
  TempDir tmp;
  std::vector<nlohmann::json> rows(texts.begin(), texts.end());
  testing::write_jsonl(tmp.file("in.jsonl"), rows);
  testing::run_reference_script("ref_normalize.py", kind + " " + tmp.file("in.jsonl") + " " + tmp.file("out.jsonl"));
  std::vector<std::string> out;
  for (const auto& j : testing::read_jsonl(tmp.file("out.jsonl"))) out.push_back(j.get<std::string>());
  if (out.size() != texts.size()) throw std::runtime_error("reference returned a different number of lines");
  return out;
}

// Compares and prints every mismatch; returns the fraction identical.
double parity(const TextNormalizer& n, const std::string& kind, const std::vector<std::string>& texts,
              const std::string& label) {
  const auto expected = reference_normalize(kind, texts);
  size_t same = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string got = n(texts[i]);
    if (got == expected[i]) {
      ++same;
    } else {
      std::cout << "  mismatch [" << label << "] input:    " << nlohmann::json(texts[i]).dump() << "\n"
                << "                    python:   " << nlohmann::json(expected[i]).dump() << "\n"
                << "                    quasr:    " << nlohmann::json(got).dump() << "\n";
    }
  }
  const double rate = texts.empty() ? 1.0 : static_cast<double>(same) / texts.size();
  std::printf("  parity %-28s %zu / %zu identical (%.2f%%)\n", label.c_str(), same, texts.size(), 100.0 * rate);
  return rate;
}

std::vector<std::string> full_corpus() {
  std::vector<std::string> corpus;
  for (const char* split : {"mini-eval", "mini-calib", "test-clean"})
    for (auto& r : librispeech_references(split)) corpus.push_back(r);
  for (auto& h : whisper_hypotheses()) corpus.push_back(h);
  for (auto& h : hard_strings()) corpus.push_back(h.text);
  return corpus;
}

TEST(EnglishNormalizer, CorpusParityWithOpenAIWhisper) {
  const auto mini_eval = librispeech_references("mini-eval");
  ASSERT_EQ(mini_eval.size(), 532u);
  const auto corpus = full_corpus();
  EnglishTextNormalizer n;
  const double rate = parity(n, "english", corpus, "english/full corpus");
  EXPECT_GE(rate, 0.995);
}

// The exact check: every hard string (numbers, money, ordinals, contractions, British spellings, unicode...)
// must come out exactly as openai-whisper's EnglishTextNormalizer gives it.
TEST(EnglishNormalizer, HardStringsExact) {
  const auto hard = hard_strings();
  ASSERT_GE(hard.size(), 200u);
  std::vector<std::string> texts;
  for (const auto& h : hard) texts.push_back(h.text);
  const auto expected = reference_normalize("english", texts);
  EnglishTextNormalizer n;
  for (size_t i = 0; i < hard.size(); ++i)
    EXPECT_EQ(n(hard[i].text), expected[i]) << "category " << hard[i].category << ", input "
                                            << nlohmann::json(hard[i].text).dump();
}

TEST(EnglishNormalizer, WhisperHypothesesExact) {
  const auto hyps = whisper_hypotheses();
  ASSERT_GE(hyps.size(), 100u);
  EnglishTextNormalizer n;
  EXPECT_EQ(parity(n, "english", hyps, "english/tiny.en hypotheses"), 1.0);
}

// Seeded random strings over a vocabulary chosen to collide the number normalizer's rules with each other
// (number words, digits, currency, "point", "and a half", ordinals, contractions, symbols, unicode).
std::vector<std::string> fuzz_strings(size_t count, uint64_t seed) {
  static const char* vocab[] = {
      "one", "two", "three", "five", "nine", "ten", "eleven", "twelve", "nineteen", "twenty", "thirty", "ninety",
      "hundred", "thousand", "million", "billion", "zero", "oh", "o", "double", "triple", "point", "and", "a",
      "half", "and a half", "minus", "plus", "negative", "dollars", "dollar", "cents", "cent", "pounds", "euro",
      "per", "cent", "percent", "first", "second", "third", "fourth", "ninth", "nineth", "twentieth", "twenties",
      "hundredth", "thousands", "millions", "ones", "sixes", "1", "0", "5", "10", "07", "1.5", "2.50", "3.", ".5",
      "1,000", "$", "$5", "£3", "€2", "¢", "5%", "%", "1st", "2nd", "3rd", "21st", "1990s", "th", "s", "st",
      "it's", "won't", "can't", "i'm", "they've", "'s", "mr.", "dr", "st.", "colour", "grey", "the", "cat",
      "(aside)", "[noise]", "<b>", "uh", "um", "hmm", ",", ".", "!", "?", "-", "'", "\"", "café", "ΣΟΦΟΣ",
      "½", "²", "ﬁ", "…", "’", "—", "\t", "  "};
  const size_t n = sizeof(vocab) / sizeof(vocab[0]);
  Rng rng(seed);
  std::vector<std::string> out;
  for (size_t k = 0; k < count; ++k) {
    std::string s;
    const size_t words = 1 + rng.below(8);
    for (size_t w = 0; w < words; ++w) {
      if (w) s += rng.uniform() < 0.85 ? " " : "";
      s += vocab[rng.below(n)];
    }
    out.push_back(s);
  }
  return out;
}

TEST(EnglishNormalizer, FuzzParityWithOpenAIWhisper) {
  EnglishTextNormalizer n;
  EXPECT_EQ(parity(n, "english", fuzz_strings(3000, 42), "english/fuzz"), 1.0);
}

TEST(BasicNormalizer, ParityWithOpenAIWhisper) {
  const auto corpus = full_corpus();
  EXPECT_EQ(parity(BasicTextNormalizer(false), "basic", corpus, "basic/full corpus"), 1.0);
  EXPECT_EQ(parity(BasicTextNormalizer(true), "basic-nodiacritics", corpus, "basic-nodiacritics/full corpus"), 1.0);
}

// The Unicode primitives against Python on every code point of the BMP and the supplementary letters, plus
// sequences that exercise canonical reordering, composition and final sigma.
TEST(Unicode, PrimitivesMatchPythonOnEveryCodePoint) {
  std::vector<std::string> texts;
  for (char32_t c = 1; c < 0x30000; ++c) {
    if (c >= 0xD800 && c < 0xE000) continue;
    texts.push_back(unicode::encode_utf8(std::u32string(1, c)));
  }
  for (const char* s : {"a\u0301\u0327", "e\u0327\u0301", "\u1100\u1161\u11a8", "\uac00\u11a8", "ΟΔΟΣ ΣΑΣ.",
                        "Σ", "aΣ", "AΣ'", "AΣ'b", "ΑΣ\u0301 ", "q\u0307\u0323", "\u0958\u093c", "ﬃ\u0301",
                        "A\u030a\u0301", "\u0041\u0308\u0304", "ẛ\u0323"})
    texts.push_back(s);
  for (const char* kind : {"lower", "nfkd", "nfkc"}) {
    const auto expected = reference_normalize(kind, texts);
    size_t bad = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::u32string in = unicode::decode_utf8(texts[i]);
      const std::u32string got = std::string(kind) == "lower" ? unicode::to_lower(in)
                                 : std::string(kind) == "nfkd" ? unicode::nfkd(in)
                                                                : unicode::nfkc(in);
      if (unicode::encode_utf8(got) != expected[i] && bad++ < 10)
        ADD_FAILURE() << kind << " of " << nlohmann::json(texts[i]).dump() << ": python "
                      << nlohmann::json(expected[i]).dump() << ", quasr " << nlohmann::json(unicode::encode_utf8(got)).dump();
    }
    EXPECT_EQ(bad, 0u) << kind;
  }
}

TEST(Unicode, Utf8RoundTripAndReplacement) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_EQ(unicode::encode_utf8(unicode::decode_utf8(s)), s);
  EXPECT_EQ(unicode::decode_utf8("a\xFF" "b"), std::u32string(U"a\uFFFDb"));
  EXPECT_EQ(unicode::decode_utf8("a\xE2\x82"), std::u32string(U"a\uFFFD"));
  // The example of the Unicode Standard, section 3.9 (maximal subparts), which Python's decoder follows.
  EXPECT_EQ(unicode::decode_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            std::u32string(U"a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"));
  // Surrogates and overlong forms are ill-formed byte by byte.
  EXPECT_EQ(unicode::decode_utf8("\xED\xA0\x80"), std::u32string(U"\uFFFD\uFFFD\uFFFD"));
  EXPECT_EQ(unicode::decode_utf8("\xC0\xAF"), std::u32string(U"\uFFFD\uFFFD"));
  EXPECT_EQ(unicode::decode_utf8("\xF4\x90\x80\x80"), std::u32string(U"\uFFFD\uFFFD\uFFFD\uFFFD"));
}

TEST(Normalizer, FactoryAndErrors) {
  EXPECT_EQ(make_normalizer("english")->name(), "english");
  EXPECT_EQ(make_normalizer("basic")->name(), "basic");
  EXPECT_EQ(make_normalizer("none")->normalize("A, b"), "A, b");
  EXPECT_THROW(make_normalizer("klingon"), InvalidArgument);
  EXPECT_THROW(EnglishTextNormalizer("/nonexistent/spelling.json"), IoError);
  TempDir tmp;
  testing::write_text(tmp.file("bad.json"), "{not json");
  EXPECT_THROW(EnglishTextNormalizer(tmp.file("bad.json")), IoError);
  // A custom map is used instead of the shipped one.
  testing::write_text(tmp.file("map.json"), R"({"colour": "kolor"})");
  EXPECT_EQ(EnglishTextNormalizer(tmp.file("map.json"))("Colour"), "kolor");
}

}  // namespace
}  // namespace quasr::eval
