// Decoding against faster-whisper 1.2.1 (run at test time through .venv): suppressed-token sets, zlib compression
// ratio, timestamp formatting, and end-to-end transcripts of the LibriSpeech test-clean clips with tiny.en, greedy
// and beam 5, which must be identical (text, tokens, timestamps).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <tuple>
#include <filesystem>

#include "quasr/audio/audio.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/models/tokenizer.h"
#include "quasr/models/transcribe.h"
#include "quasr/models/whisper.h"
#include "quasr/models/whisper_decode.h"
#include "test_decode_util.h"

namespace qt = quasr::testing;
namespace qm = quasr::models;

namespace {

std::vector<std::string> test_clean_clips() {
  std::vector<std::string> files;
  const std::filesystem::path root = qt::librispeech_dir() + "/test-clean";
  if (std::filesystem::exists(root))
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
      if (e.path().extension() == ".flac") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST(Decode, SuppressedTokensMatchFasterWhisper) {
  for (const std::string name : {"tiny.en", "base"}) {
    const std::string dir = qt::model_dir(name);
    const auto tok = qm::Tokenizer::load(dir);
    qt::TempDir tmp;
    const std::string out = qt::run_python(tmp, R"PY(
import json, sys, tokenizers
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens
hf = tokenizers.Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
multilingual = hf.token_to_id("<|de|>") is not None
t = Tokenizer(hf, multilingual, task="transcribe", language="en")
print(json.dumps({"default": list(get_suppressed_tokens(t, [-1])), "explicit": list(get_suppressed_tokens(t, [5, 7]))}))
)PY", dir);
    const auto ref = nlohmann::json::parse(out);
    const std::vector<int> minus_one = {-1}, explicit_ids = {5, 7};
    EXPECT_EQ(qm::suppressed_tokens(tok, minus_one), ref["default"].get<std::vector<int>>()) << name;
    EXPECT_EQ(qm::suppressed_tokens(tok, explicit_ids), ref["explicit"].get<std::vector<int>>()) << name;
    const std::vector<int> bad = {-2};
    EXPECT_THROW(qm::suppressed_tokens(tok, bad), quasr::InvalidArgument);
  }
}

// The timestamp rules on a toy vocabulary: text 0..9, EOT 10, <|notimestamps|> 19, timestamps 20..39. Timestamps
// never decrease, and after text the next one must be later than the last: an equal one would close a
// zero-length segment, after which the long-form loop's seek did not move and, at temperature 0, the same window
// decoded the same way again without end.
TEST(Decode, TimestampRulesForbidZeroLengthSegments) {
  qm::WhisperTokens tok;
  tok.eot = 10;
  tok.no_timestamps = 19;
  tok.timestamp_begin = 20;
  tok.timestamp_end = 39;
  const float disabled = std::numeric_limits<float>::lowest();
  // Text and EOT far likelier than any timestamp, so the timestamp-mass rule stays out of the way.
  auto rules = [&](std::vector<int> seq) {
    std::vector<float> logits(40, 0.0f);
    for (int i = 0; i <= 10; ++i) logits[i] = 10.0f;
    qm::apply_timestamp_rules(tok, 50, logits, seq);
    return logits;
  };
  // <|0.00|> text: the closing timestamp must be later than 0.00 (21 on), text stays allowed.
  auto l = rules({20, 3});
  EXPECT_EQ(l[20], disabled);
  EXPECT_NE(l[21], disabled);
  EXPECT_NE(l[3], disabled);
  // <|0.00|> text <|0.10|> text: after text again, later than 0.10 only.
  l = rules({20, 3, 25, 4});
  for (int t = 20; t <= 25; ++t) EXPECT_EQ(l[t], disabled) << t;
  EXPECT_NE(l[26], disabled);
  // <|0.00|> text <|0.10|>: the next segment may open at the same time the last one closed, or EOT; no text.
  l = rules({20, 3, 25});
  for (int t = 20; t < 25; ++t) EXPECT_EQ(l[t], disabled) << t;
  EXPECT_NE(l[25], disabled);
  EXPECT_NE(l[tok.eot], disabled);
  EXPECT_EQ(l[3], disabled);
  // A pair just closed: text next, no timestamp.
  l = rules({20, 3, 25, 25});
  for (int t = 20; t <= 39; ++t) EXPECT_EQ(l[t], disabled) << t;
  EXPECT_NE(l[4], disabled);
  // The first token: a timestamp within max_initial_timestamp_index (here all 20 of them), <|notimestamps|> never.
  l = rules({});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(l[i], disabled) << i;
  EXPECT_NE(l[20], disabled);
}

TEST(Decode, CompressionRatioMatchesPythonZlib) {
  const std::vector<std::string> texts = {"", "a", "hello hello hello hello hello hello hello hello",
                                          "He hoped there would be stew for dinner, turnips and carrots.",
                                          "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD"};
  qt::TempDir tmp;
  qt::write_file(tmp.file("in.json"), nlohmann::json(texts).dump());
  const std::string out = qt::run_python(tmp, R"PY(
import json, sys
from faster_whisper.transcribe import get_compression_ratio
print(json.dumps([get_compression_ratio(t) for t in json.load(open(sys.argv[1], encoding="utf-8"))]))
)PY", tmp.file("in.json"));
  const auto ref = nlohmann::json::parse(out);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_DOUBLE_EQ(qm::compression_ratio(texts[i]), ref[i].get<double>());
}

TEST(Decode, FormatTimestampAsFasterWhisper) {
  EXPECT_EQ(qm::format_timestamp(0.0), "00:00.000");
  EXPECT_EQ(qm::format_timestamp(5.56), "00:05.560");
  EXPECT_EQ(qm::format_timestamp(3725.4), "01:02:05.400");
  EXPECT_EQ(qm::format_timestamp(1.5, true, ','), "00:00:01,500");
  EXPECT_THROW(qm::format_timestamp(-1.0), quasr::InvalidArgument);
  EXPECT_THROW(qm::parse_transcript_format("xml"), quasr::InvalidArgument);
}

// End-to-end parity on tiny.en and base: quasr's transcription of each test-clean clip equals faster-whisper's
// (float32, cpu_threads=2, no VAD, same options), greedy and beam 5.
class TranscriptParity : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(TranscriptParity, MatchesFasterWhisper) {
  const auto [model_name, beam] = GetParam();
  const auto clips = test_clean_clips();
  ASSERT_EQ(clips.size(), 4u) << "expected the 4 test-clean clips under " << qt::librispeech_dir();
  std::string args = "--model " + qt::model_dir(model_name) + " --beam " + std::to_string(beam) + " --threads 2";
  for (const auto& c : clips) args += " " + c;
  qt::TempDir tmp;
  const auto [rc, out] =
      qt::run_command(qt::venv_python() + " " + qt::source_dir() + "/scripts/ref_transcribe.py " + args + " 2>/dev/null");
  ASSERT_EQ(rc, 0) << "scripts/ref_transcribe.py failed";

  quasr::set_num_threads(2);
  const auto model = qm::WhisperModel::load(model_name);
  const auto tok = qm::Tokenizer::load(model->directory());
  qm::TranscribeOptions opt;
  opt.beam_size = beam;
  std::istringstream lines(out);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    const auto ref = nlohmann::json::parse(line);
    const std::string file = ref["file"];
    const auto t = qm::transcribe(*model, tok, quasr::audio::load_audio_16k(file), opt);
    EXPECT_EQ(t.text(), ref["text"].get<std::string>()) << file;
    ASSERT_EQ(t.segments.size(), ref["segments"].size()) << file;
    for (size_t i = 0; i < t.segments.size(); ++i) {
      const auto& rs = ref["segments"][i];
      const auto& s = t.segments[i];
      EXPECT_EQ(s.tokens, rs["tokens"].get<std::vector<int>>()) << file << " segment " << i;
      EXPECT_NEAR(s.start, rs["start"].get<double>(), 1e-9) << file;
      EXPECT_NEAR(s.end, rs["end"].get<double>(), 1e-9) << file;
      EXPECT_EQ(s.seek, rs["seek"].get<int>()) << file;
      EXPECT_EQ(s.temperature, rs["temperature"].get<float>()) << file;
      // FP32 on different GEMMs: scores agree closely, not bit for bit.
      EXPECT_NEAR(s.avg_logprob, rs["avg_logprob"].get<double>(), 5e-3) << file;
      EXPECT_NEAR(s.no_speech_prob, rs["no_speech_prob"].get<double>(), 5e-3) << file;
      EXPECT_NEAR(s.compression_ratio, rs["compression_ratio"].get<double>(), 1e-12) << file;
    }
    ++n;
  }
  EXPECT_EQ(n, clips.size());
}

INSTANTIATE_TEST_SUITE_P(ModelsAndBeams, TranscriptParity,
                         ::testing::Combine(::testing::Values("tiny.en", "base"), ::testing::Values(1, 5)),
                         [](const auto& info) {
                           const std::string model = std::get<0>(info.param);
                           return (model == "base" ? "Base" : "TinyEn") +
                                  std::string(std::get<1>(info.param) == 1 ? "Greedy" : "Beam5");
                         });

TEST(Decode, BadOptionsAreClearErrors) {
  qm::TranscribeOptions opt;
  opt.beam_size = 0;
  EXPECT_THROW(opt.validate(), quasr::InvalidArgument);
  opt = {};
  opt.temperatures = {};
  EXPECT_THROW(opt.validate(), quasr::InvalidArgument);
  opt = {};
  opt.temperatures = {-0.5f};
  EXPECT_THROW(opt.validate(), quasr::InvalidArgument);
  opt = {};
  opt.task = "summarize";
  EXPECT_THROW(opt.validate(), quasr::InvalidArgument);
}
