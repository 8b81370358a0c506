// `quasr calibrate`: runs the full-precision model over calibration audio and writes the input statistics of every
// quantizable Linear to a calibration file (recipes use it with calib=FILE; docs/ptq.md). The work is
// models::calibrate_whisper(); this file parses options, selects the utterances and guards against calibrating on
// the evaluation set.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/run.h"
#include "quasr/models/whisper_calibrate.h"

namespace quasr::cli {
namespace {

namespace fs = std::filesystem;

struct CalibrateArgs {
  std::string model = "tiny.en";
  std::string data = "mini-calib";
  std::optional<int64_t> limit;
  uint64_t seed = 0;
  int64_t samples = 256;
  int bins = 256;
  int threads = 0;
  std::string out;
  bool allow_eval_data = false;
  bool quiet = false;
};

void run(const CalibrateArgs& a) {
  if (a.limit && *a.limit <= 0) throw InvalidArgument("--limit must be >= 1, got " + std::to_string(*a.limit));
  if (a.samples < 0) throw InvalidArgument("--samples must be >= 0, got " + std::to_string(a.samples));
  if (a.threads < 0) throw InvalidArgument("--threads must be >= 0, got " + std::to_string(a.threads));
  const auto [audio, description] =
      select_calibration_data("calibrate", "calibrating", a.data, a.limit, a.seed, a.allow_eval_data);
  set_num_threads(a.threads);
  models::CalibrateOptions opt;
  opt.collect.max_samples = a.samples;
  opt.collect.hist_bins = a.bins;
  opt.collect.seed = a.seed;
  opt.progress = !a.quiet;
  const auto t0 = std::chrono::steady_clock::now();
  const quant::Calibration c = models::calibrate_whisper(a.model, audio, description, opt);
  c.save(a.out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  const auto bytes = fs::file_size(a.out, ec);
  std::printf("quasr calibrate: %s on %s: %zu Linear inputs, %.1f s (%d threads); wrote %s (%.1f MiB)\n",
              a.model.c_str(), description.c_str(), c.inputs.size(), secs, num_threads(), a.out.c_str(),
              ec ? 0.0 : static_cast<double>(bytes) / 1048576.0);
}

}  // namespace

// Statistics gathered on the evaluation set would leak it into the quantized model.
namespace {

bool is_evaluation_set(const std::filesystem::path& p) {
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(p, ec);
  for (const auto& part : ec ? p : canon)
    if (part == "mini-eval") return true;
  return false;
}

}  // namespace

CalibrationData select_calibration_data(const std::string& command, const std::string& purpose,
                                        const std::string& data_arg, std::optional<int64_t> limit, uint64_t seed,
                                        bool allow_eval_data) {
  const fs::path data = eval::resolve_dataset(data_arg);
  if (is_evaluation_set(data)) {
    if (!allow_eval_data)
      throw InvalidArgument("--data " + data.string() + " is the evaluation set (mini-eval): " + purpose +
                            " on it would leak the test data into the quantized model; use mini-calib (or "
                            "--allow-eval-data for an experiment that is not an evaluation)");
    std::fprintf(stderr, "quasr %s: WARNING: %s on the evaluation set %s; results evaluated on it are not valid\n",
                 command.c_str(), purpose.c_str(), data.c_str());
  }
  const eval::Dataset all = eval::load_dataset(data);
  eval::Selection sel;
  sel.shuffle_seed = seed;
  if (limit) sel.limit = static_cast<size_t>(*limit);
  CalibrationData out;
  for (const auto& u : eval::select(all, sel).utterances) out.audio.push_back({u.id, u.audio.string()});
  out.description = std::string(eval::to_string(all.format)) + " " + data.string() + ", " +
                    std::to_string(out.audio.size()) + " of " + std::to_string(all.utterances.size()) +
                    " utterances, shuffled with seed " + std::to_string(seed);
  return out;
}

void register_calibrate(CLI::App& app) {
  auto a = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Gather activation statistics of every Linear input on calibration audio (for calib=FILE recipes)");
  cmd->add_option("--model,-m", a->model, "Full-precision model name (tiny.en, base) or directory")
      ->capture_default_str();
  cmd->add_option("--data,-d", a->data, "Calibration split directory, manifest, or mini-calib (never the evaluation set)")
      ->capture_default_str();
  cmd->add_option("--limit,-n", a->limit, "Use the first N utterances after shuffling (default: all)");
  cmd->add_option("--seed", a->seed, "Seed of the utterance shuffle and of the row sampler")->capture_default_str();
  cmd->add_option("--samples", a->samples, "Rows kept per Linear input by the reservoir sampler (AWQ)")
      ->capture_default_str();
  cmd->add_option("--bins", a->bins, "Histogram bins per channel (even)")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--output,-o", a->out, "Calibration file to write")->required();
  cmd->add_flag("--allow-eval-data", a->allow_eval_data, "Allow mini-eval as calibration data (not for evaluations)");
  cmd->add_flag("--quiet,-q", a->quiet, "No per-utterance progress lines");
  cmd->callback([a] { run(*a); });
}

}  // namespace quasr::cli
