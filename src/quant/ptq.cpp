// GPTQ and AWQ (quant/ptq.h). Placeholder until the algorithms land: refuse clearly instead of doing nothing.
#include "quasr/quant/ptq.h"

#include "quasr/core/error.h"

namespace quasr::quant {

formats::QTensor gptq_quantize(std::span<const float>, int64_t, int64_t, const formats::QuantSpec&,
                               std::span<const double>, const GptqOptions&) {
  throw InvalidArgument("algo=gptq is not implemented yet");
}
AwqResult awq_quantize(std::span<const float>, int64_t, int64_t, const formats::QuantSpec&, const InputStats&) {
  throw InvalidArgument("algo=awq is not implemented yet");
}

}  // namespace quasr::quant
