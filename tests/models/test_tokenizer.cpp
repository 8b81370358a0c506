// The tokenizer against the `tokenizers` package (what faster-whisper uses), run at test time through .venv:
// encoding of LibriSpeech transcripts and tricky strings, decoding of random id sequences (which split UTF-8
// characters across tokens), and the special/timestamp token ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/models/tokenizer.h"
#include "test_decode_util.h"

namespace qt = quasr::testing;
using quasr::models::Tokenizer;

namespace {

const char* kRefScript = R"PY(
import json, sys, tokenizers
tok = tokenizers.Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
req = json.load(open(sys.argv[2], encoding="utf-8"))
out = {
    "encode": [tok.encode(s, add_special_tokens=False).ids for s in req["encode"]],
    "decode": [tok.decode(ids) for ids in req["decode"]],
    "ids": [tok.token_to_id(t) for t in req["tokens"]],
}
json.dump(out, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=False)
)PY";

std::vector<std::string> librispeech_transcripts() {
  std::vector<std::string> lines;
  for (const char* subset : {"test-clean", "mini-calib"}) {
    const std::filesystem::path root = qt::librispeech_dir() + "/" + subset;
    if (!std::filesystem::exists(root)) continue;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
      if (e.path().extension() != ".txt") continue;
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) {
        const auto sp = line.find(' ');
        if (sp != std::string::npos) lines.push_back(line.substr(sp + 1));
      }
    }
  }
  return lines;
}

std::vector<std::string> tricky_strings() {
  return {
      "",
      " ",
      "   ",
      "Hello world",
      " Hello world",
      "  two leading spaces",
      "trailing space ",
      "trailing spaces   ",
      "tabs\tand\nnewlines\n\n  indented",
      "don't I'm we've they're she'll he'd it's",
      "DON'T SHOUT'S 'quoted' '",
      "numbers 1234567 3.14159 -42 1,000,000 2nd 10%",
      "punctuation!!! ... ?! (parens) [brackets] {braces} \"quotes\" -- --- a-b",
      "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xC3\x9C""ber Stra\xC3\x9F""e",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C",  // Chinese
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",  // Russian
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\xB5 \xE2\x99\xAA\xE2\x99\xAA music",
      "\xD9\xA3\xD9\xA4 arabic digits \xE2\x85\xA7 roman",
      "non\xC2\xA0" "breaking\xE2\x80\x83" "em space",
      "<|endoftext|> inside <|startoftranscript|>text<|0.00|>",
      "a<|notimestamps|>b <|en|>",
      "Mr. O'Neil's 'seventies' rock'n'roll",
      "x's 'S 'RE 're've'll'd'm't",
  };
}

}  // namespace

class TokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerTest, MatchesHuggingFaceTokenizers) {
  const std::string dir = qt::model_dir(GetParam());
  const Tokenizer tok = Tokenizer::load(dir);

  std::vector<std::string> texts = tricky_strings();
  const auto transcripts = librispeech_transcripts();
  ASSERT_GE(transcripts.size(), 400u) << "LibriSpeech transcripts not found under " << qt::librispeech_dir();
  for (const auto& t : transcripts) {
    texts.push_back(" " + t);  // as faster-whisper encodes prompts: leading space
    std::string lower = t;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    texts.push_back(lower);
  }

  // Decoding: random sequences of text tokens (many are partial UTF-8 bytes), plus specials and timestamps that
  // must be skipped.
  const int eot = tok.token_id("<|endoftext|>");
  ASSERT_GT(eot, 0);
  quasr::Rng rng(1234);
  std::vector<std::vector<int>> decode_cases;
  for (int c = 0; c < 300; ++c) {
    std::vector<int> ids;
    const int len = 1 + static_cast<int>(rng.below(12));
    for (int k = 0; k < len; ++k) ids.push_back(static_cast<int>(rng.below(eot)));
    decode_cases.push_back(ids);
  }
  // Byte tokens that form a multi-byte character only together, and split it.
  decode_cases.push_back(tok.encode("\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80"));
  decode_cases.push_back({tok.encode("\xF0\x9F\x98\x80")[0]});
  decode_cases.push_back({eot, tok.token_id("<|notimestamps|>")});

  const std::vector<std::string> specials = {"<|endoftext|>", "<|startoftranscript|>", "<|en|>",
                                             "<|transcribe|>", "<|translate|>", "<|startofprev|>",
                                             "<|startoflm|>", "<|nocaptions|>", "<|notimestamps|>"};

  qt::TempDir tmp;
  nlohmann::json req;
  req["encode"] = texts;
  req["decode"] = decode_cases;
  req["tokens"] = specials;
  qt::write_file(tmp.file("req.json"), req.dump());
  qt::run_python(tmp, kRefScript, dir + " " + tmp.file("req.json") + " " + tmp.file("out.json"));
  const auto ref = nlohmann::json::parse(qt::read_file(tmp.file("out.json")));

  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto expected = ref["encode"][i].get<std::vector<int>>();
    const auto got = tok.encode(texts[i]);
    if (got != expected && ++mismatches <= 10) ADD_FAILURE() << "encode mismatch for '" << texts[i] << "'";
  }
  for (size_t i = 0; i < decode_cases.size(); ++i) {
    const auto expected = ref["decode"][i].get<std::string>();
    const auto got = tok.decode(decode_cases[i]);
    if (got != expected && ++mismatches <= 10) ADD_FAILURE() << "decode mismatch, case " << i;
  }
  EXPECT_EQ(mismatches, 0) << "of " << texts.size() << " encodings and " << decode_cases.size() << " decodings";
  for (size_t i = 0; i < specials.size(); ++i) {
    if (ref["ids"][i].is_null()) continue;  // e.g. a token this checkpoint lacks
    EXPECT_EQ(tok.token_id(specials[i]), ref["ids"][i].get<int>()) << specials[i];
  }
  // Round trip of plain text.
  for (const auto& t : tricky_strings()) {
    if (t.find("<|") == std::string::npos) {
      EXPECT_EQ(tok.decode(tok.encode(t)), t);
    }
  }
}

TEST_P(TokenizerTest, TimestampTokensFollowNoTimestamps) {
  const Tokenizer tok = Tokenizer::load(qt::model_dir(GetParam()));
  const int nt = tok.token_id("<|notimestamps|>");
  ASSERT_GT(nt, 0);
  EXPECT_EQ(tok.token_id("<|0.00|>"), nt + 1);
  EXPECT_EQ(tok.token_id("<|0.02|>"), nt + 2);
  EXPECT_EQ(tok.token_id("<|30.00|>"), nt + 1501);
  EXPECT_EQ(tok.vocab_size(), nt + 1502);
  EXPECT_TRUE(tok.is_special(nt + 1));
  EXPECT_FALSE(tok.is_special(tok.token_id("<|endoftext|>") - 1));
  EXPECT_EQ(tok.token_text(nt), "<|notimestamps|>");
  EXPECT_EQ(tok.token_id("<|no such token|>"), -1);
}

INSTANTIATE_TEST_SUITE_P(Models, TokenizerTest, ::testing::Values("tiny.en", "base"),
                         [](const auto& info) { return info.param == "tiny.en" ? "TinyEn" : "Base"; });

TEST(Tokenizer, BadInputIsAClearError) {
  EXPECT_THROW(Tokenizer::load("/nonexistent/model"), quasr::IoError);
  qt::TempDir tmp;
  qt::write_file(tmp.file("tokenizer.json"), "{ not json");
  EXPECT_THROW(Tokenizer::load(tmp.path.string()), quasr::IoError);
  const Tokenizer tok = Tokenizer::load(qt::model_dir("tiny.en"));
  const std::vector<int> bad = {-1};
  EXPECT_THROW(tok.decode(bad), quasr::InvalidArgument);
  EXPECT_THROW(tok.encode("\xFF\xFE"), quasr::InvalidArgument);
}
