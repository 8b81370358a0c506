// Whisper elementwise math compiled for baseline (see whisper_math.inc).
#include <cstdint>
#include <cstring>

#include "whisper_math.h"

namespace quasr::models::detail::baseline {
#include "whisper_math.inc"

const MathKernels kMath{gelu_span, softmax_span};
}  // namespace quasr::models::detail::baseline
