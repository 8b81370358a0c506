#pragma once
// Calibration of a Whisper model (quant/calibration.h): the FP32 model transcribes calibration audio greedily (the
// decoder sees its own tokens, as at inference) while an observer accumulates the input statistics of every
// quantizable Linear (conv1/conv2 as their im2col inputs, the tied output projection as the final hidden states).
// Linears that read the same input (q/k/v of one attention; the cross-attention k/v of every decoder layer, which
// all read the encoder output) share one accumulator. `quasr calibrate` is the command line (docs/ptq.md).
#include <map>
#include <memory>
#include <span>
#include <string>

#include "quasr/models/whisper.h"
#include "quasr/quant/calibration.h"

namespace quasr::models {

struct CalibrationAudio {
  std::string id;    // for progress lines
  std::string path;  // audio file
};

struct CalibrateOptions {
  quant::CollectOptions collect;
  bool progress = true;  // one line per utterance on stderr (i/N, elapsed, ETA)
};

// Which Linear's accumulator each quantizable weight's input goes to: itself, or the Linear that first reads the same
// input (its q projection for k/v, decoder layer 0's cross k for every cross k/v). By canonical weight name.
std::map<std::string, std::string> whisper_shared_inputs(const WhisperConfig& config);

// The observer calibrate_whisper installs: accumulates each distinct input once. A Linear whose input is shared
// reports the rows its leader reported just before (checked: same pointer, rows and stride), so it only counts its
// calls; finish() checks that every Linear ran as often as its leader.
class WhisperCalibrationObserver final : public LinearInputObserver {
 public:
  WhisperCalibrationObserver(const WhisperConfig& config, const quant::CollectOptions& options);
  void observe(const std::string& weight_name, const float* x, int64_t rows, int64_t ldx, int64_t k) override;
  // The statistics by weight name (model hash, data description and utterance count left empty).
  quant::Calibration finish();

 private:
  struct Seen {
    const float* x = nullptr;
    int64_t rows = 0, ldx = 0;
  };
  quant::CollectOptions options_;
  std::map<std::string, std::string> leader_;
  std::map<std::string, int64_t> width_, calls_;
  std::map<std::string, Seen> last_;
  std::map<std::string, std::unique_ptr<quant::InputStatsAccumulator>> acc_;
};

// Runs `model` (a directory or installed name of a full-precision model) over `audio` in order and returns the
// statistics of every quantizable weight's input. `description` goes to Calibration::data. Throws InvalidArgument /
// IoError naming the problem (a .quasr file, unreadable audio, an empty list).
quant::Calibration calibrate_whisper(const std::string& model, std::span<const CalibrationAudio> audio,
                                     const std::string& description, const CalibrateOptions& options = {});

// The same with an already loaded full-precision model (its observer slot is used and cleared again).
quant::Calibration calibrate_whisper(WhisperModel& model, const std::string& model_sha256,
                                     std::span<const CalibrationAudio> audio, const std::string& description,
                                     const CalibrateOptions& options = {});

}  // namespace quasr::models
