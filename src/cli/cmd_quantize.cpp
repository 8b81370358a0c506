// quasr quantize: resolve a recipe over a model's tensors, print the plan (--dry-run) or write a .quasr container.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/io/file_util.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/models/whisper_sensitivity.h"
#include "quasr/quant/container.h"
#include "quasr/quant/recipe.h"

namespace quasr::cli {

void register_quantize(CLI::App& app) {
  struct Args {
    std::string model = "tiny.en", recipe, output;
    bool dry_run = false, list_presets = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model by a recipe into a .quasr container");
  cmd->add_option("--model,-m", a->model, "model directory or installed name")->capture_default_str();
  cmd->add_option("--recipe,-r", a->recipe, "recipe text, a preset name, @FILE or a recipe file (docs/quantization.md)");
  cmd->add_option("--output,-o", a->output, "output container (.quasr)");
  cmd->add_flag("--dry-run", a->dry_run, "print the per-tensor plan with exact sizes; write nothing");
  cmd->add_flag("--list-presets", a->list_presets, "list the recipe presets");
  cmd->callback([a] {
    if (a->list_presets) {
      for (const auto& p : quant::presets()) std::printf("%-10s %-40s %s\n", p.name, p.text, p.description);
      return;
    }
    if (a->recipe.empty()) throw InvalidArgument("quantize: --recipe is required (see --list-presets)");
    if (!a->dry_run && a->output.empty()) throw InvalidArgument("quantize: -o OUTPUT.quasr is required (or --dry-run)");
    const std::string dir = models::resolve_model_dir(a->model);
    models::WhisperWeights w = models::load_whisper_weights(dir);
    // auto-bits= becomes per-tensor rules here, so the container stores the expanded recipe (no sens file needed).
    const quant::Recipe recipe = models::expand_whisper_auto_bits(quant::Recipe::from_argument(a->recipe), dir, w.config);
    const auto plan = quant::resolve_plan(recipe, models::whisper_quantizable_tensors(w.config));
    if (a->dry_run) {
      std::printf("model %s, recipe '%s', kv cache %s\n%s", dir.c_str(), recipe.text.c_str(),
                  quant::kv_precision_name(recipe.kv), quant::format_plan(plan).c_str());
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const models::WhisperQuantization q = models::quantize_whisper(w, recipe);
    const auto& quantized = q.quantized;
    const std::string source = models::whisper_source_file(dir);
    const std::string sha = sha256_file_hex(source);
    models::save_whisper_quasr(a->output, w, quantized, recipe.text, sha, q.input_scales);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s: %zu quantized tensors, %ju bytes, source %s sha256 %s (%.1f s)\n", a->output.c_str(),
                quantized.size(), static_cast<uintmax_t>(std::filesystem::file_size(a->output)), source.c_str(),
                sha.c_str(), s);
  });
}

}  // namespace quasr::cli
