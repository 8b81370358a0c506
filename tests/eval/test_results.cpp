#include <gtest/gtest.h>

#include "eval_test_support.h"
#include "quasr/core/error.h"
#include "quasr/eval/results.h"

namespace quasr::eval {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<UtteranceRecord> records_for(const std::vector<std::pair<std::string, std::string>>& pairs) {
  const EnglishTextNormalizer n;
  std::vector<UtteranceRecord> out;
  int k = 0;
  for (const auto& [ref, hyp] : pairs) {
    Utterance u{"utt-" + std::to_string(k++), "/data/" + std::to_string(k) + ".flac", ref};
    out.push_back(make_record(u, hyp, n));
  }
  return out;
}

TEST(Results, RecordRoundTripThroughJsonl) {
  auto records = records_for({{"It's twenty-five dollars, Mr. Smith.", "its $25 mister smith"},
                              {"The colour is grey", "the color is gray ok"},
                              {"", "uh"}});
  EXPECT_EQ(records[0].reference_normalized, EnglishTextNormalizer()("It's twenty-five dollars, Mr. Smith."));
  EXPECT_EQ(records[0].words, score_utterance(records[0].reference_normalized, records[0].hypothesis_normalized).words);
  EXPECT_EQ(records[1].words.insertions, 1);
  EXPECT_EQ(records[1].words.hits, 4);
  EXPECT_EQ(records[2].words.ref_length(), 0);
  records[1].audio_seconds = 3.5;
  records[1].decode_seconds = 0.25;
  records[1].extra["scheme"] = "int4-g64";

  TempDir tmp;
  const fs::path path = tmp.path() / "utterances.jsonl";
  write_records(path, records);
  const auto back = read_records(path);
  ASSERT_EQ(back.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(to_json(back[i]), to_json(records[i]));
  EXPECT_EQ(back[1].extra["scheme"], "int4-g64");
  EXPECT_EQ(back[1].audio_seconds, 3.5);
  // Nothing but the file itself is left in the directory (the temp file was renamed).
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(tmp.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST(Results, AtomicWriteReplacesAndReportsErrors) {
  TempDir tmp;
  const fs::path path = tmp.path() / "summary.json";
  write_json_atomic(path, {{"a", 1}});
  write_json_atomic(path, {{"a", 2}});
  nlohmann::json j;
  std::ifstream(path) >> j;
  EXPECT_EQ(j["a"], 2);
  EXPECT_THROW(write_json_atomic(tmp.path() / "no" / "such" / "dir.json", {}), IoError);

  testing::write_text(tmp.file("bad.jsonl"), to_json(records_for({{"a", "a"}})[0]).dump() + "\n{broken\n");
  try {
    read_records(tmp.file("bad.jsonl"));
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: malformed JSON"), std::string::npos) << e.what();
  }
  testing::write_text(tmp.file("field.jsonl"), R"({"id": "x"})" "\n");
  try {
    read_records(tmp.file("field.jsonl"));
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("field.jsonl:1: utterance record: missing field \"audio\""), std::string::npos)
        << e.what();
  }
}

TEST(Results, SummaryAndComparison) {
  std::vector<std::pair<std::string, std::string>> base_pairs, worse_pairs;
  for (int k = 0; k < 200; ++k) {
    const std::string ref = "the quick brown fox number " + std::to_string(k) + " jumps over the lazy dog";
    base_pairs.push_back({ref, k % 10 == 0 ? "the quick brown box number " + std::to_string(k) + " jumps over the lazy dog" : ref});
    worse_pairs.push_back({ref, k % 2 == 0 ? "a quick brown box number " + std::to_string(k) + " jumps over a lazy dog" : ref});
  }
  const auto base = records_for(base_pairs);
  const auto worse = records_for(worse_pairs);
  const SystemSummary s = summarize("fp16", base);
  EXPECT_EQ(s.score.utterances, 200u);
  EXPECT_DOUBLE_EQ(s.score.wer(), 20.0 / 2200.0);  // 20 substitutions over 200 x 11 reference words
  EXPECT_LE(s.wer_ci.lower, s.score.wer());
  EXPECT_GE(s.wer_ci.upper, s.score.wer());
  const nlohmann::json js = to_json(s);
  EXPECT_EQ(js["name"], "fp16");
  EXPECT_DOUBLE_EQ(js["wer"].get<double>(), s.score.wer());
  EXPECT_EQ(js["words"]["substitutions"], 20);

  // Matched by id, whatever the order of the second system's records.
  auto shuffled = worse;
  std::reverse(shuffled.begin(), shuffled.end());
  const PairedComparison c = compare_records(base, shuffled);
  EXPECT_EQ(c.rate_b, corpus_rate(word_counts(worse)));
  EXPECT_TRUE(c.significant());
  EXPECT_EQ(c.b_worse, 100);  // every even k: 0 (or 1 for multiples of 10) -> 3 errors; odd k tie
  EXPECT_EQ(c.b_worse + c.b_better + c.ties, 200);
  EXPECT_EQ(to_json(c)["significant"], true);
  auto missing = worse;
  missing.back().id = "other";
  EXPECT_THROW(compare_records(base, missing), InvalidArgument);
}

}  // namespace
}  // namespace quasr::eval
