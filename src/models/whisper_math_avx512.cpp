// Whisper elementwise math compiled for avx512 (see whisper_math.inc).
#include <cstdint>
#include <cstring>

#include "whisper_math.h"

namespace quasr::models::detail::avx512 {
#include "whisper_math.inc"

const MathKernels kMath{gelu_span, softmax_span};
}  // namespace quasr::models::detail::avx512
