#pragma once
// One process-wide pool of worker threads (set by --threads). parallel_for splits [begin, end) into contiguous
// chunks of at least `grain` items, runs them on the pool and the calling thread, and returns when all are done.
// Chunk boundaries depend only on (begin, end, grain, num_threads()), never on timing, so work that writes
// disjoint outputs per chunk is deterministic for a given thread count.
#include <cstdint>
#include <functional>

namespace quasr {

void set_num_threads(int n);  // n <= 0: hardware concurrency
int num_threads();

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace quasr
