// Row kernels of attention over quantized KV caches compiled for avx2 (see kv_attention.inc).
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#include "kv_kernels.h"

namespace quasr::models::detail::avx2 {
#include "kv_attention.inc"
}  // namespace quasr::models::detail::avx2
