// Calibration statistics, their file and the static-scale calibrators (quant/calibration.h).
// Placeholder until the calibration work lands: every entry point refuses clearly instead of doing nothing.
#include "quasr/quant/calibration.h"

#include "quasr/core/error.h"

namespace quasr::quant {

const InputStats& Calibration::at(std::string_view weight_name) const {
  auto it = inputs.find(weight_name);
  if (it == inputs.end())
    throw InvalidArgument("calibration has no statistics for " + std::string(weight_name) +
                          " (was it made for this model?)");
  return it->second;
}
void Calibration::save(const std::string&) const { throw InvalidArgument("calibration files are not implemented yet"); }
Calibration Calibration::load(const std::string&) {
  throw InvalidArgument("calibration files are not implemented yet");
}
CalibratorSpec CalibratorSpec::parse(std::string_view) { throw InvalidArgument("calibrators are not implemented yet"); }
std::string CalibratorSpec::to_string() const { return "?"; }
float static_scale(const InputStats&, const CalibratorSpec&, formats::FormatId, std::span<const float>) {
  throw InvalidArgument("calibrators are not implemented yet");
}

}  // namespace quasr::quant
