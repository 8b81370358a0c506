#pragma once
// Each sub-command lives in its own cmd_<name>.cpp and registers itself on the app. A command reports failure by
// throwing quasr::Error (printed by main as "quasr: error: ...", exit 1); CLI11 parse errors exit 2 with usage.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "quasr/models/whisper_calibrate.h"

namespace quasr::cli {

void register_info(CLI::App& app);
void register_formats(CLI::App& app);
void register_quantize(CLI::App& app);
void register_transcribe(CLI::App& app);
void register_export(CLI::App& app);
void register_eval(CLI::App& app);
void register_compare(CLI::App& app);
void register_sweep(CLI::App& app);
void register_calibrate(CLI::App& app);
void register_sensitivity(CLI::App& app);  // sensitivity and auto-mix

// The audio a calibration-type command (calibrate, sensitivity) runs on: --data resolved, shuffled with `seed`,
// the first `limit`. The evaluation split (mini-eval) is refused, since statistics or choices made on it would
// leak the test data into the quantized model, unless `allow_eval_data` (then a warning). `command` names the
// command and `purpose` what it would do with the data, for the messages (cmd_calibrate.cpp).
struct CalibrationData {
  std::vector<models::CalibrationAudio> audio;
  std::string description;  // "<format> <path>, N of M utterances, shuffled with seed S"
};
CalibrationData select_calibration_data(const std::string& command, const std::string& purpose,
                                        const std::string& data_arg, std::optional<int64_t> limit, uint64_t seed,
                                        bool allow_eval_data);

}  // namespace quasr::cli
