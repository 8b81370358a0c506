// `quasr eval`: one model under one recipe on a dataset selection; prints a summary table (accuracy, size,
// memory, speed; with --baseline the WER change and the paired test) and writes DIR/utterances.jsonl and
// DIR/summary.json. The work is eval::evaluate(); this file only parses options and formats the table.
#include <cstdio>
#include <optional>
#include <unordered_set>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/results.h"
#include "quasr/eval/run.h"

namespace quasr::cli {

namespace {

struct EvalArgs {
  eval::EvalRequest req;
  std::optional<int64_t> limit;
  std::optional<uint64_t> shuffle;
  std::string out = "eval-out";
  std::string baseline;
};

std::string mib(int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MiB", bytes / 1048576.0);
  return b;
}

void print_table(const eval::EvalResult& r, const std::optional<eval::PairedComparison>& vs_baseline) {
  const auto& s = r.summary;
  std::printf("quasr eval: %s, recipe %s (%s), %zu utterances of %s (beam %d, %s)\n", r.model.c_str(),
              r.recipe.c_str(), r.execution.c_str(), r.records.size(), r.data_source.c_str(), r.beam_size,
              r.jobs > 1 ? (std::to_string(r.jobs) + " jobs of 1 thread").c_str()
                         : (std::to_string(r.threads) + " threads").c_str());
  std::printf("  %-22s %6.2f%%  [%.2f, %.2f] %.0f%% bootstrap CI   (%lld errors / %lld words)\n", "WER",
              100 * s.score.wer(), 100 * s.wer_ci.lower, 100 * s.wer_ci.upper, 100 * s.wer_ci.level,
              static_cast<long long>(s.score.words.errors()), static_cast<long long>(s.score.words.ref_length()));
  std::printf("  %-22s %6.2f%%  [%.2f, %.2f]\n", "CER", 100 * s.score.cer(), 100 * s.cer_ci.lower,
              100 * s.cer_ci.upper);
  const auto& m = r.size.model;
  const auto& l = r.size.linear;
  std::printf("  %-22s %s  %.2f bits/weight  x%.2f vs FP32  x%.2f vs FP16  (%lld weights)\n", "size, whole model",
              mib(m.bytes).c_str(), m.bits_per_weight(), m.compression_vs_fp32(), m.compression_vs_fp16(),
              static_cast<long long>(m.elements));
  std::printf("  %-22s %s  %.2f bits/weight  x%.2f vs FP32  x%.2f vs FP16  (%lld weights)\n", "size, linear layers",
              mib(l.bytes).c_str(), l.bits_per_weight(), l.compression_vs_fp32(), l.compression_vs_fp16(),
              static_cast<long long>(l.elements));
  const auto& mm = r.memory;
  std::printf("  %-22s %s = weights %s + KV self %s + KV cross %s (kv=%s) + activations %s\n", "memory, modelled",
              mib(mm.total()).c_str(), mib(mm.weights).c_str(), mib(mm.kv_self).c_str(), mib(mm.kv_cross).c_str(),
              mm.kv_precision.c_str(), mib(mm.activations).c_str());
  std::printf("  %-22s %s\n", "memory, peak RSS", mib(r.peak_rss_bytes).c_str());
  if (r.speed.audio_seconds > 0)
    std::printf("  %-22s %.3f  (%.1f s for %.1f s of audio: mel %.1f s, encode %.1f s, decode %.1f s)\n", "RTF",
                r.speed.rtf(), r.speed.wall_seconds, r.speed.audio_seconds, r.speed.mel_seconds,
                r.speed.encode_seconds, r.speed.decode_seconds);
  else
    std::printf("  %-22s n/a (every utterance was resumed from a previous run)\n", "RTF");
  if (vs_baseline) std::printf("  %-22s %s\n", "vs baseline", eval::comparison_text(*vs_baseline).c_str());
}

// The records of --baseline DIR, read before any decoding; refuses a baseline that is not a finished eval over
// exactly the utterances this run selects (the same ids): the paired test needs one record per utterance on both
// sides.
std::vector<eval::UtteranceRecord> read_matching_baseline(const std::string& baseline_dir,
                                                          const eval::EvalRequest& req) {
  const std::filesystem::path file = std::filesystem::path(baseline_dir) / "utterances.jsonl";
  if (!std::filesystem::exists(file))
    throw InvalidArgument("--baseline " + baseline_dir + ": no utterances.jsonl there (run quasr eval -o " +
                          baseline_dir + " first)");
  const auto base = eval::read_records(file);
  const eval::Dataset selected = eval::select(eval::load_dataset(eval::resolve_dataset(req.data)), req.selection);
  const auto& want = selected.utterances;
  const std::string hint = "; run the baseline with the same --data, --limit and --shuffle";
  if (base.size() != want.size())
    throw InvalidArgument("--baseline " + baseline_dir + " holds " + std::to_string(base.size()) +
                          " utterances, this run selects " + std::to_string(want.size()) + hint);
  std::unordered_set<std::string> ids;
  for (const auto& r : base) ids.insert(r.id);
  for (const auto& u : want)
    if (!ids.contains(u.id))
      throw InvalidArgument("--baseline " + baseline_dir + " has no record of utterance '" + u.id +
                            "', which this run selects" + hint);
  return base;
}

void run(EvalArgs& a) {
  if (a.limit) {
    if (*a.limit <= 0) throw InvalidArgument("--limit must be >= 1, got " + std::to_string(*a.limit));
    a.req.selection.limit = static_cast<size_t>(*a.limit);
  }
  a.req.selection.shuffle_seed = a.shuffle;
  const std::vector<eval::UtteranceRecord> base =
      a.baseline.empty() ? std::vector<eval::UtteranceRecord>() : read_matching_baseline(a.baseline, a.req);
  a.req.out_dir = a.out;
  const eval::EvalResult r = eval::evaluate(a.req);
  std::optional<eval::PairedComparison> vs_baseline;
  if (!a.baseline.empty()) {
    vs_baseline = eval::compare_records(base, r.records);
    // Keep the comparison with the summary so reports need not recompute it.
    nlohmann::json s = eval::summary_json(r);
    s["baseline"] = {{"dir", a.baseline}, {"comparison", eval::to_json(*vs_baseline)}};
    eval::write_json_atomic(a.req.out_dir / "summary.json", s);
  }
  print_table(r, vs_baseline);
  std::printf("results: %s (per utterance), %s (summary)\n", (a.req.out_dir / "utterances.jsonl").c_str(),
              (a.req.out_dir / "summary.json").c_str());
}

}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Evaluate a model under a recipe on real speech: WER/CER, size, memory, speed (beam 1 by default)");
  cmd->add_option("--model,-m", a->req.model, "Model name (tiny.en, base) or model directory")->capture_default_str();
  cmd->add_option("--recipe,-r", a->req.recipe, "fp32, or a quant recipe: text (w=int4:g128,a=int8-dyn-token), preset (w8a8, w4-g128, mxfp4...) or @file")->capture_default_str();
  cmd->add_option("--data,-d", a->req.data,
                  "Split directory, TSV/JSONL manifest, or mini-eval | mini-calib | test-clean")
      ->required();
  cmd->add_option("--limit,-n", a->limit, "Evaluate the first N utterances (after shuffling)");
  cmd->add_option("--shuffle", a->shuffle, "Shuffle the utterances with this seed before --limit");
  cmd->add_option("--beam", a->req.beam_size, "Beam size (1 = greedy, for evaluation speed; 5 = faster-whisper's)")
      ->capture_default_str();
  cmd->add_option("--language,-l", a->req.language, "Language (default: en for English-only models, else detect)");
  cmd->add_flag("--simulate", a->req.simulate,
                "Run quantized recipes through the simulation path (accuracy only) instead of native kernels");
  cmd->add_option("--threads,-t", a->req.threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--jobs,-j", a->req.jobs,
                  "Utterances decoded at once, one thread each (same results as -t 1; --threads unused)")
      ->capture_default_str();
  cmd->add_option("--normalizer", a->req.normalizer, "english, basic, basic-nodiacritics or none")
      ->capture_default_str();
  cmd->add_option("--output,-o", a->out, "Output directory")->capture_default_str();
  cmd->add_flag("--resume", a->req.resume, "Skip utterances already in OUTPUT/utterances.jsonl");
  cmd->add_option("--baseline", a->baseline, "Directory of a previous quasr eval to compare with (paired test)");
  cmd->add_flag("--quiet,-q", a->req.quiet, "No per-utterance progress lines");
  cmd->callback([a] { run(*a); });
}

}  // namespace quasr::cli
