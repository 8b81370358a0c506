// `quasr eval` as a user runs it, with the real tiny.en on the 4 test-clean clips: the summary table, the files it
// writes (WER recomputed from the JSONL with the eval module equals the summary), resume, the baseline
// comparison, and clear errors for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../models/test_decode_util.h"
#include "quasr/eval/results.h"

namespace qt = quasr::testing;
namespace qe = quasr::eval;

namespace {

std::string quasr_bin() {
  const char* bin = std::getenv("QUASR_BIN");
  return bin ? bin : std::string(QUASR_BINARY_DIR) + "/quasr";
}

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun run_quasr(const qt::TempDir& tmp, const std::string& args) {
  const std::string err_file = tmp.file("stderr.txt");
  auto [rc, out] = qt::run_command(quasr_bin() + " " + args + " 2>" + err_file);
  return {rc, out, qt::read_file(err_file)};
}

nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(qt::read_file(p.string())); }

std::string test_clean() { return qt::librispeech_dir() + "/test-clean"; }

}  // namespace

TEST(EvalCli, SummaryFilesAndResume) {
  qt::TempDir tmp;
  const std::string out = tmp.file("out");
  const CliRun r = run_quasr(tmp, "eval --data " + test_clean() + " -t 2 -o " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  // Progress lines and the summary table.
  EXPECT_NE(r.err.find("[4/4] "), std::string::npos) << r.err;
  for (const char* row : {"WER", "CER", "size, whole model", "size, linear layers", "memory, modelled",
                          "memory, peak RSS", "RTF", "utterances.jsonl", "summary.json"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;

  const auto records = qe::read_records(std::filesystem::path(out) / "utterances.jsonl");
  ASSERT_EQ(records.size(), 4u);
  std::vector<qe::UtteranceScore> scores;
  for (const auto& rec : records) scores.push_back(qe::score_utterance(rec.reference_normalized, rec.hypothesis_normalized));
  const qe::CorpusScore recomputed = qe::score_corpus(scores);
  const nlohmann::json s = read_json(std::filesystem::path(out) / "summary.json");
  EXPECT_DOUBLE_EQ(s["accuracy"]["wer"].get<double>(), recomputed.wer());
  EXPECT_DOUBLE_EQ(s["accuracy"]["cer"].get<double>(), recomputed.cer());
  EXPECT_LT(recomputed.wer(), 0.15);  // tiny.en on 4 clean read-speech clips (6.9% measured)
  EXPECT_GT(recomputed.words.ref_length(), 40);
  for (const char* k : {"size", "memory", "speed", "accuracy", "model", "recipe", "beam_size"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_EQ(s["size"]["model"]["bytes"].get<int64_t>(), 4 * s["size"]["model"]["elements"].get<int64_t>());
  EXPECT_GT(s["size"]["tensors"].size(), 100u);
  EXPECT_GT(s["memory"]["peak_rss_bytes"].get<int64_t>(), 0);
  EXPECT_GT(s["speed"]["rtf"].get<double>(), 0);
  EXPECT_EQ(s["beam_size"].get<int>(), 1);

  // Resume after losing the last two records: only those two are decoded again.
  {
    std::vector<qe::UtteranceRecord> first_two(records.begin(), records.begin() + 2);
    qe::write_records(std::filesystem::path(out) / "utterances.jsonl", first_two);
  }
  const CliRun again = run_quasr(tmp, "eval --data " + test_clean() + " -t 2 --resume -o " + out);
  ASSERT_EQ(again.rc, 0) << again.err;
  const nlohmann::json s2 = read_json(std::filesystem::path(out) / "summary.json");
  EXPECT_EQ(s2["resumed"].get<int>(), 2);
  EXPECT_EQ(s2["utterances"].get<int>(), 4);
  EXPECT_NEAR(s2["speed"]["audio_seconds"].get<double>(), records[2].audio_seconds + records[3].audio_seconds, 1e-6);
  EXPECT_DOUBLE_EQ(s2["accuracy"]["wer"].get<double>(), recomputed.wer());  // greedy decoding is deterministic

  // Against itself as baseline: zero change, not significant.
  const CliRun base = run_quasr(tmp, "eval --data " + test_clean() + " -t 2 --resume -q -o " + out +
                                         " --baseline " + out);
  ASSERT_EQ(base.rc, 0) << base.err;
  EXPECT_NE(base.out.find("vs baseline"), std::string::npos) << base.out;
  const nlohmann::json s3 = read_json(std::filesystem::path(out) / "summary.json");
  EXPECT_DOUBLE_EQ(s3["baseline"]["comparison"]["delta"].get<double>(), 0.0);
}

TEST(EvalCli, ClearErrors) {
  qt::TempDir tmp;
  CliRun r = run_quasr(tmp, "eval --data no-such-split -o " + tmp.file("o"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("dataset 'no-such-split' not found"), std::string::npos) << r.err;
  r = run_quasr(tmp, "eval --data " + test_clean() + " --limit 0 -o " + tmp.file("o"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--limit must be >= 1"), std::string::npos) << r.err;
  r = run_quasr(tmp, "eval --model no-such-model --data " + test_clean() + " -o " + tmp.file("o"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no-such-model"), std::string::npos) << r.err;
  r = run_quasr(tmp, "eval --recipe bogus --data " + test_clean() + " -o " + tmp.file("o"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("recipe"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bogus"), std::string::npos) << r.err;
  r = run_quasr(tmp, "eval --data " + test_clean() + " --baseline " + tmp.file("nothing") + " -o " + tmp.file("o"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no utterances.jsonl"), std::string::npos) << r.err;
}
