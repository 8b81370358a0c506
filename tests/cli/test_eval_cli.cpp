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
  // Modelled weight memory: what the runtime holds, every matrix of the FP16 checkpoint in 2 bytes per value
  // (docs/runtime.md), the rest (norms, biases, positions) in 4.
  int64_t matrix_values = 0;
  for (const auto& t : s["size"]["tensors"]) {
    const std::string role = t["role"];
    const bool matrix = t["linear"].get<bool>() || role == "conv1" || role == "conv2" || role == "token_embedding";
    if (matrix && t["tensor"].get<std::string>().ends_with(".weight")) matrix_values += t["elements"].get<int64_t>();
  }
  EXPECT_GT(matrix_values, s["size"]["model"]["elements"].get<int64_t>() * 9 / 10);
  EXPECT_EQ(s["memory"]["modelled"]["weights"].get<int64_t>(),
            s["size"]["model"]["bytes"].get<int64_t>() - 2 * matrix_values);
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

  // `quasr compare` pairs finished runs without decoding: the same numbers as --baseline, and JSON on request.
  const std::string cmp_json = tmp.file("cmp.json");
  const CliRun cmp = run_quasr(tmp, "compare " + out + " " + out + " --json " + cmp_json);
  ASSERT_EQ(cmp.rc, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("+0.00 points"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("same on 4 utterances"), std::string::npos) << cmp.out;
  const nlohmann::json cj = read_json(cmp_json);
  ASSERT_EQ(cj["systems"].size(), 1u);
  EXPECT_EQ(cj["systems"][0]["comparison"], s3["baseline"]["comparison"]);
  // Runs over different utterances are refused, naming both; so is a directory that holds no eval.
  const std::string half = tmp.file("half");
  std::filesystem::create_directories(half);
  qe::write_records(std::filesystem::path(half) / "utterances.jsonl",
                    std::vector<qe::UtteranceRecord>(records.begin(), records.begin() + 2));
  CliRun bad = run_quasr(tmp, "compare " + out + " " + half);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find(half + " against " + out), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("baseline has 4 utterances, system 2"), std::string::npos) << bad.err;
  bad = run_quasr(tmp, "compare " + out + " " + tmp.path.string());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("no utterances.jsonl"), std::string::npos) << bad.err;
  // eval --baseline over other utterances is refused before decoding anything (no records written).
  const std::string refused = tmp.file("refused");
  bad = run_quasr(tmp, "eval --data " + test_clean() + " --limit 3 -t 2 -q -o " + refused + " --baseline " + out);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("holds 4 utterances, this run selects 3"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(refused) / "utterances.jsonl"));
  bad = run_quasr(tmp, "eval --data " + test_clean() + " -t 2 -q -o " + refused + " --baseline " + half);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("holds 2 utterances, this run selects 4"), std::string::npos) << bad.err;
  std::vector<qe::UtteranceRecord> renamed = records;
  renamed[1].id = "not-in-test-clean";
  qe::write_records(std::filesystem::path(half) / "utterances.jsonl", renamed);
  bad = run_quasr(tmp, "eval --data " + test_clean() + " -t 2 -q -o " + refused + " --baseline " + half);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("no record of utterance '" + records[1].id + "'"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(refused) / "utterances.jsonl"));
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

// A .quasr container is evaluated as what it stores: its recipe, its size and its transcripts equal those of the
// float model quantized on load by the same recipe; a recipe on top of a container is refused.
TEST(EvalCli, ContainerReportsItsOwnRecipeAndSize) {
  qt::TempDir tmp;
  const std::string container = tmp.file("w4a8.quasr");
  CliRun r = run_quasr(tmp, "quantize --model tiny.en --recipe w4a8-g128 -o " + container);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string on_load = tmp.file("on-load"), from_file = tmp.file("from-file");
  r = run_quasr(tmp, "eval --recipe w4a8-g128 --data " + test_clean() + " -t 2 -q -o " + on_load);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_quasr(tmp, "eval --model " + container + " --data " + test_clean() + " -t 2 -q -o " + from_file);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("recipe w4a8-g128 (native)"), std::string::npos) << r.out;
  const nlohmann::json a = read_json(std::filesystem::path(on_load) / "summary.json");
  const nlohmann::json b = read_json(std::filesystem::path(from_file) / "summary.json");
  EXPECT_EQ(b["recipe"], "w4a8-g128");
  EXPECT_EQ(b["size"]["model"], a["size"]["model"]);
  EXPECT_EQ(b["size"]["linear"], a["size"]["linear"]);
  EXPECT_LT(b["size"]["linear"]["bits_per_weight"].get<double>(), 5.0);
  EXPECT_EQ(b["memory"]["modelled"], a["memory"]["modelled"]);
  EXPECT_DOUBLE_EQ(b["accuracy"]["wer"].get<double>(), a["accuracy"]["wer"].get<double>());
  r = run_quasr(tmp, "eval --model " + container + " --recipe w8a8 --data " + test_clean() + " -o " + tmp.file("o"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("quantized .quasr container"), std::string::npos) << r.err;
}

// Calibration-type commands refuse the evaluation split before doing any work, each naming why, and write nothing.
TEST(EvalCli, CalibrationCommandsRefuseTheEvaluationSet) {
  qt::TempDir tmp;
  for (const std::string cmd : {"calibrate", "sensitivity", "divergence w8a8"}) {
    const std::string out = tmp.file(cmd.substr(0, cmd.find(' ')) + ".out");
    const CliRun r = run_quasr(tmp, cmd + " --model tiny.en --data " + qt::librispeech_dir() + "/mini-eval -o " + out);
    EXPECT_EQ(r.rc, 1) << cmd;
    EXPECT_NE(r.err.find("is the evaluation set (mini-eval)"), std::string::npos) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("use mini-calib"), std::string::npos) << cmd << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << cmd;
  }
}

// `quasr divergence` prints one table row per recipe and writes the same numbers as JSON; a misspelt recipe is
// refused before any model is loaded.
TEST(EvalCli, DivergenceTableAndJson) {
  qt::TempDir tmp;
  const std::string out = tmp.file("div.json");
  const CliRun r = run_quasr(tmp, "divergence fp32 w=int8:pc --data " + qt::librispeech_dir() +
                                      "/mini-calib --limit 1 -t 2 -o " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("| `w=int8:pc` |"), std::string::npos) << r.out;
  const auto j = read_json(out);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["recipe"], "fp32");
  EXPECT_LT(j["results"][0]["kl"].get<double>(), 1e-6);
  EXPECT_GT(j["results"][1]["kl"].get<double>(), 0.0);
  EXPECT_GT(j["tokens"].get<int64_t>(), 0);

  const CliRun bad = run_quasr(tmp, "divergence w=int9:pc --data " + qt::librispeech_dir() + "/mini-calib");
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("int9"), std::string::npos) << bad.err;
}

// `quasr sweep` over a two-point grid on one clip: each point's records are evaluate()'s (same WER as quasr eval
// on that clip), a rerun resumes without recomputing, and two shards merged give the same report.
TEST(SweepCli, RunResumeShardMerge) {
  qt::TempDir tmp;
  const std::string grid = tmp.file("grid.txt");
  qt::write_file(grid, "baseline fp32\nrecipe w4-g128\n");
  const std::string common = " --data " + test_clean() + " --limit 1 -t 2 --progress lines";
  const CliRun r = run_quasr(tmp, "sweep " + grid + common + " -o " + tmp.file("all"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("2 computed"), std::string::npos) << r.out;
  for (const char* f : {"report.html", "results.md", "results.csv", "results.jsonl", "pareto.json"})
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(tmp.file("all")) / f)) << f;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(tmp.file("all")) / "in-progress"));

  // The fp32 point scores what quasr eval scores on the same clip.
  const CliRun e = run_quasr(tmp, "eval --data " + test_clean() + " --limit 1 -t 2 -q -o " + tmp.file("eval"));
  ASSERT_EQ(e.rc, 0) << e.err;
  const double eval_wer = read_json(std::filesystem::path(tmp.file("eval")) / "summary.json")["accuracy"]["wer"];
  bool found = false;
  std::ifstream results(std::filesystem::path(tmp.file("all")) / "results.jsonl");
  for (std::string line; std::getline(results, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("recipe", "") == "fp32") {
      found = true;
      EXPECT_DOUBLE_EQ(j["summary"]["wer"].get<double>(), eval_wer);
      EXPECT_EQ(j["weight_bytes"].get<int64_t>(), 4 * j["weight_elements"].get<int64_t>());
      EXPECT_DOUBLE_EQ(j["linear_bits_per_weight"].get<double>(), 32.0);
    } else {  // int4 codes + one FP16 scale per 128 weights, in the Linear layers
      EXPECT_DOUBLE_EQ(j["linear_bits_per_weight"].get<double>(), 4.125);
      EXPECT_LT(j["linear_mb"].get<double>(), j["size_mb"].get<double>() / 4);
    }
  }
  EXPECT_TRUE(found);
  const std::string md = qt::read_file((std::filesystem::path(tmp.file("all")) / "results.md").string());
  EXPECT_NE(md.find("| linear MB | linear bits/w |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 4.12 |"), std::string::npos) << md;

  const CliRun again = run_quasr(tmp, "sweep " + grid + common + " -o " + tmp.file("all"));
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.out.find("0 computed, 2 already done"), std::string::npos) << again.out;

  // A point left in progress by another run (here: the fp32 eval's records under w4-g128's hash, as a store
  // moved from a checkout at another path would hold) is started afresh, not a reason to stop the sweep.
  {
    const auto manifest = read_json(std::filesystem::path(tmp.file("all")) / "sweep.json");
    std::string w4_hash;
    for (const auto& p : manifest["points"])
      if (p["recipe"] == "w4-g128") w4_hash = p["hash"];
    ASSERT_FALSE(w4_hash.empty()) << manifest.dump();
    const std::filesystem::path all = tmp.file("all");
    std::filesystem::remove(all / "points" / (w4_hash + ".json"));
    std::filesystem::create_directories(all / "in-progress" / w4_hash);
    std::filesystem::copy_file(std::filesystem::path(tmp.file("eval")) / "utterances.jsonl",
                               all / "in-progress" / w4_hash / "utterances.jsonl");
    const CliRun moved = run_quasr(tmp, "sweep " + grid + common + " -o " + all.string());
    ASSERT_EQ(moved.rc, 0) << moved.err;
    EXPECT_NE(moved.out.find("1 computed, 1 already done"), std::string::npos) << moved.out;
    EXPECT_NE(moved.err.find("w4-g128: discarding its in-progress records"), std::string::npos) << moved.err;
    EXPECT_TRUE(std::filesystem::exists(all / "points" / (w4_hash + ".json")));
  }

  for (const char* shard : {"0/2", "1/2"}) {
    const CliRun s = run_quasr(tmp, "sweep " + grid + common + " --shard " + shard + " -o " +
                                         tmp.file(std::string("shard") + shard[0]));
    ASSERT_EQ(s.rc, 0) << s.err;
    EXPECT_NE(s.out.find("1 computed"), std::string::npos) << s.out;
  }
  // One shard alone: no report unless asked for; --partial renders the finished point and lists the other.
  const std::filesystem::path half = tmp.file("half");
  CliRun m = run_quasr(tmp, "sweep merge " + tmp.file("shard0") + " -o " + half.string());
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_NE(m.out.find("1 of 2 points present"), std::string::npos) << m.out;
  EXPECT_FALSE(std::filesystem::exists(half / "report.html"));
  m = run_quasr(tmp, "sweep merge " + tmp.file("shard0") + " -o " + half.string() + " --partial");
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_NE(m.out.find("partial report (1 of 2 points)"), std::string::npos) << m.out;
  EXPECT_TRUE(std::filesystem::exists(half / "report.html"));
  const std::string partial_md = qt::read_file((half / "results.md").string());
  EXPECT_NE(partial_md.find("Not finished yet (1): w4-g128;"), std::string::npos) << partial_md;

  m = run_quasr(tmp, "sweep merge " + tmp.file("shard0") + " " + tmp.file("shard1") + " -o " +
                         tmp.file("merged"));
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_NE(m.out.find("2 of 2 points present"), std::string::npos) << m.out;
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(tmp.file("merged")) / "report.html"));

  const CliRun bad = run_quasr(tmp, "sweep " + grid + " -o " + tmp.file("x"));
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("--data"), std::string::npos) << bad.err;
}
