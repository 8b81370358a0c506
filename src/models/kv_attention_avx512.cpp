// Row kernels of attention over quantized KV caches compiled for avx512 (see kv_attention.inc).
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#include "kv_kernels.h"

namespace quasr::models::detail::avx512 {
#include "kv_attention.inc"
}  // namespace quasr::models::detail::avx512
