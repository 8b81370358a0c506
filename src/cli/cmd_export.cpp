// quasr export-hf: writes a loaded Whisper model as a Hugging Face transformers directory (model.safetensors in
// transformers' tensor names, config.json, generation_config.json, preprocessor_config.json, tokenizer.json).
#include <cstdio>
#include <optional>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/models/whisper.h"
#include "quasr/models/whisper_spec.h"

namespace quasr::cli {

void register_export(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("export-hf", "Write a Whisper model as a Hugging Face transformers directory");
  auto model = std::make_shared<std::string>("tiny.en");
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("source");
  cmd->add_option("-m,--model", *model, "model name (tiny.en, base) or directory (CTranslate2 or Hugging Face)")
      ->capture_default_str();
  cmd->add_option("-o,--output", *out, "output directory (created if needed)")->required();
  cmd->add_option("--dtype", *dtype, "tensor type: source (lossless), float32, float16, bfloat16")
      ->check(CLI::IsMember({"source", "float32", "float16", "bfloat16"}))
      ->capture_default_str();
  cmd->callback([model, out, dtype] {
    const models::WhisperWeights w = models::load_whisper_weights(models::resolve_model_dir(*model));
    std::optional<io::DType> dt;
    if (*dtype == "float32") dt = io::DType::kF32;
    if (*dtype == "float16") dt = io::DType::kF16;
    if (*dtype == "bfloat16") dt = io::DType::kBF16;
    models::save_whisper_hf(w, *out, dt);
    std::printf("wrote %s: Hugging Face Whisper, %s weights, from the %s model in %s\n", out->c_str(),
                io::dtype_name(dt.value_or(w.source_dtype)), w.format.c_str(), w.directory.c_str());
  });
}

}  // namespace quasr::cli
