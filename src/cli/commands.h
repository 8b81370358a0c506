#pragma once
// Each sub-command lives in its own cmd_<name>.cpp and registers itself on the app. A command reports failure by
// throwing quasr::Error (printed by main as "quasr: error: ...", exit 1); CLI11 parse errors exit 2 with usage.
#include <CLI/CLI.hpp>

namespace quasr::cli {

void register_info(CLI::App& app);
void register_formats(CLI::App& app);
void register_quantize(CLI::App& app);
void register_transcribe(CLI::App& app);
void register_export(CLI::App& app);
void register_eval(CLI::App& app);
void register_sweep(CLI::App& app);
void register_calibrate(CLI::App& app);

}  // namespace quasr::cli
