// Row kernels of attention over quantized KV caches compiled for baseline (see kv_attention.inc).
#include <cstdint>
#include <cstring>

#include "kv_kernels.h"

namespace quasr::models::detail::baseline {
#include "kv_attention.inc"
}  // namespace quasr::models::detail::baseline
