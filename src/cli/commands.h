#pragma once
// Each sub-command lives in its own cmd_<name>.cpp and registers itself on the app. A command reports failure by
// throwing quasr::Error (printed by main as "quasr: error: ...", exit 1); CLI11 parse errors exit 2 with usage.
#include <CLI/CLI.hpp>

#include <filesystem>

namespace quasr::cli {

void register_info(CLI::App& app);
void register_formats(CLI::App& app);
void register_quantize(CLI::App& app);
void register_transcribe(CLI::App& app);
void register_export(CLI::App& app);
void register_eval(CLI::App& app);
void register_sweep(CLI::App& app);
void register_calibrate(CLI::App& app);
void register_sensitivity(CLI::App& app);  // sensitivity and auto-mix

// True if the dataset path lies in the evaluation split (mini-eval): calibration-type commands refuse it, since
// statistics or choices made on it would leak the test data into the quantized model (cmd_calibrate.cpp).
bool is_evaluation_set(const std::filesystem::path& p);

}  // namespace quasr::cli
