// `quasr sensitivity`: per-tensor sensitivity of a full-precision model to each candidate weight format, on
// calibration audio (models::measure_whisper_sensitivity), written to a JSON sens file. `quasr auto-mix`: the
// per-tensor recipe that auto-bits=B,sens=FILE expands to, printed so it can be saved and edited (docs/ptq.md).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/core/parallel.h"
#include "quasr/eval/dataset.h"
#include "quasr/eval/run.h"
#include "quasr/io/file_util.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_sensitivity.h"
#include "quasr/quant/sensitivity.h"

namespace quasr::cli {
namespace {

namespace fs = std::filesystem;

struct SensitivityArgs {
  std::string model = "tiny.en";
  std::string data = "mini-calib";
  std::optional<int64_t> limit = 4;
  uint64_t seed = 0;
  std::string formats;
  std::string tensors = "*";
  bool conv = false, embed = false;
  int threads = 0;
  std::string out;
  bool allow_eval_data = false;
  bool quiet = false;
};

std::vector<formats::QuantSpec> parse_formats(const std::string& list) {
  std::vector<formats::QuantSpec> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) throw InvalidArgument("--formats: empty entry in '" + list + "'");
    try {
      out.push_back(formats::QuantSpec::parse(item));
    } catch (const Error& e) {
      throw InvalidArgument("--formats: '" + item + "': " + e.what());
    }
    for (size_t i = 0; i + 1 < out.size(); ++i)
      if (out[i] == out.back()) throw InvalidArgument("--formats: " + item + " is listed twice");
  }
  return out;
}

void run(const SensitivityArgs& a) {
  if (a.limit && *a.limit <= 0) throw InvalidArgument("--limit must be >= 1, got " + std::to_string(*a.limit));
  if (a.threads < 0) throw InvalidArgument("--threads must be >= 0, got " + std::to_string(a.threads));
  models::SensitivityOptions opt;
  if (!a.formats.empty()) opt.formats = parse_formats(a.formats);
  opt.tensors = a.tensors;
  opt.conv = a.conv;
  opt.embed = a.embed;
  opt.progress = !a.quiet;
  const auto [audio, description] =
      select_calibration_data("sensitivity", "choosing formats", a.data, a.limit, a.seed, a.allow_eval_data);
  set_num_threads(a.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const quant::Sensitivity s = models::measure_whisper_sensitivity(a.model, audio, description, opt);
  s.save(a.out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("quasr sensitivity: %s on %s: %zu tensors, %lld scored tokens, %.1f s (%d threads); wrote %s\n",
              a.model.c_str(), description.c_str(), s.tensors.size(), static_cast<long long>(s.tokens), secs,
              num_threads(), a.out.c_str());
}

}  // namespace

void register_sensitivity(CLI::App& app) {
  auto a = std::make_shared<SensitivityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sensitivity", "Measure each tensor's sensitivity to each weight format on calibration audio (for auto-bits=)");
  cmd->add_option("--model,-m", a->model, "Full-precision model name (tiny.en, base) or directory")
      ->capture_default_str();
  cmd->add_option("--data,-d", a->data, "Calibration split directory, manifest, or mini-calib (never the evaluation set)")
      ->capture_default_str();
  cmd->add_option("--limit,-n", a->limit, "Use the first N utterances after shuffling")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the utterance shuffle")->capture_default_str();
  cmd->add_option("--formats,-f", a->formats,
                  "Comma-separated candidate weight formats (default int8:pc,int4:g128,int3:g128,int2:g64)");
  cmd->add_option("--tensors", a->tensors, "Glob over canonical tensor names: which tensors to measure")
      ->capture_default_str();
  cmd->add_flag("--conv", a->conv, "Also measure conv1/conv2 (recipes then need conv=on; auto-bits adds it)");
  cmd->add_flag("--embed", a->embed, "Also measure the token embedding (the tied output projection)");
  cmd->add_option("--threads,-t", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--output,-o", a->out, "Sensitivity file to write (JSON)")->required();
  cmd->add_flag("--allow-eval-data", a->allow_eval_data, "Allow mini-eval as data (not for evaluations)");
  cmd->add_flag("--quiet,-q", a->quiet, "No per-tensor progress lines");
  cmd->callback([a] { run(*a); });

  struct DivergenceArgs {
    std::string model = "tiny.en", data = "mini-calib", out;
    std::optional<int64_t> limit = 16;
    uint64_t seed = 0;
    std::vector<std::string> recipes;
    bool native = false, allow_eval_data = false;
    int threads = 0;
  };
  auto d = std::make_shared<DivergenceArgs>();
  CLI::App* div = app.add_subcommand(
      "divergence", "Rank whole recipes by their teacher-forced KL from the FP32 model on calibration audio (fast, "
                    "before a WER evaluation)");
  div->add_option("recipes", d->recipes, "Recipes (text, preset or @file), each measured with all its tensors quantized")
      ->required();
  div->add_option("--model,-m", d->model, "Full-precision model name (tiny.en, base) or directory")->capture_default_str();
  div->add_option("--data,-d", d->data, "Calibration split directory, manifest, or mini-calib (never the evaluation set)")
      ->capture_default_str();
  div->add_option("--limit,-n", d->limit, "Use the first N utterances after shuffling")->capture_default_str();
  div->add_option("--seed", d->seed, "Seed of the utterance shuffle")->capture_default_str();
  div->add_flag("--native", d->native, "Run quantized layers on the native kernels (default: the simulation path)");
  div->add_option("--threads,-t", d->threads, "Worker threads (0 = all cores)")->capture_default_str();
  div->add_option("--output,-o", d->out, "Also write the results as JSON here");
  div->add_flag("--allow-eval-data", d->allow_eval_data, "Allow mini-eval as data (not for evaluations)");
  div->callback([d] {
    if (d->limit && *d->limit <= 0) throw InvalidArgument("--limit must be >= 1, got " + std::to_string(*d->limit));
    if (d->threads < 0) throw InvalidArgument("--threads must be >= 0, got " + std::to_string(d->threads));
    for (const std::string& r : d->recipes)  // syntax errors before any work
      if (r != "fp32") (void)quant::Recipe::from_argument(r);
    const auto [audio, description] =
        select_calibration_data("divergence", "ranking recipes", d->data, d->limit, d->seed, d->allow_eval_data);
    set_num_threads(d->threads);
    std::printf("| recipe | KL nats/token | top-1 agreement %% | seconds |\n|---|---:|---:|---:|\n");
    std::fflush(stdout);
    const auto results = models::measure_recipe_divergence(
        d->model, audio, d->recipes, !d->native, [](const models::RecipeDivergence& r) {
          std::printf("| `%s` | %.4g | %.2f | %.1f |\n", r.recipe.c_str(), r.kl, 100.0 * r.top1_agreement, r.seconds);
          std::fflush(stdout);
        });
    std::printf("%lld scored tokens on %s (%s); FP32 against its stored teacher: KL %.2g\n",
                static_cast<long long>(results.at(0).tokens), description.c_str(), d->model.c_str(),
                results.at(0).fp32_self_kl);
    if (!d->out.empty()) {
      nlohmann::json j = {{"model", d->model}, {"data", description}, {"tokens", results.at(0).tokens},
                          {"fp32_self_kl", results.at(0).fp32_self_kl},
                          {"simulate", !d->native}, {"results", nlohmann::json::array()}};
      for (const auto& r : results)
        j["results"].push_back({{"recipe", r.recipe}, {"kl", r.kl}, {"top1_agreement", r.top1_agreement},
                                {"seconds", r.seconds}});
      io::write_text_file_atomic(d->out, j.dump(1) + "\n");
      std::printf("wrote %s\n", d->out.c_str());
    }
  });

  struct MixArgs {
    std::string sens, model, recipe;
    double bits = 0;
  };
  auto m = std::make_shared<MixArgs>();
  CLI::App* mix = app.add_subcommand(
      "auto-mix", "Print the per-tensor recipe auto-bits=B,sens=FILE expands to (save it, edit it, use it as --recipe)");
  mix->add_option("--sens,-s", m->sens, "Sensitivity file (quasr sensitivity)")->required();
  mix->add_option("--bits,-b", m->bits, "Target average bits/weight over the tensors of the file")->required();
  mix->add_option("--model,-m", m->model,
                  "Check the file against this float model (name or directory) and resolve against its tensors; "
                  "default: the tensor table recorded in the file");
  mix->add_option("--recipe,-r", m->recipe,
                  "Further recipe clauses kept before the chosen rules (e.g. 'a=int8-dyn-token')");
  mix->callback([m] {
    const std::string base = m->recipe.empty() ? "" : quant::Recipe::from_argument(m->recipe).text + ";";
    char bits[64];
    std::snprintf(bits, sizeof bits, "%.17g", m->bits);
    const quant::Recipe recipe = quant::Recipe::parse(base + "auto-bits=" + bits + ",sens=" + m->sens);
    std::string text;
    if (!m->model.empty()) {
      const std::string dir = models::resolve_model_dir(m->model);
      const models::WhisperWeights w = models::load_whisper_weights(dir);
      const auto tensors = models::whisper_quantizable_tensors(w.config);
      text = quant::auto_mix_recipe_text(recipe, tensors,
                                         sha256_file_hex(models::whisper_source_file(dir)));
    } else {
      std::vector<quant::TensorInfo> tensors;
      for (const auto& t : quant::Sensitivity::load(m->sens).tensors) tensors.push_back(t.tensor);
      text = quant::auto_mix_recipe_text(recipe, tensors);
    }
    std::fputs(text.c_str(), stdout);
  });
}

}  // namespace quasr::cli
