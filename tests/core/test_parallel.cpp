#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "quasr/core/parallel.h"

namespace quasr {

TEST(Parallel, CoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    EXPECT_EQ(num_threads(), threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(0, n, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
  set_num_threads(0);
}

TEST(Parallel, NestedCallsRunInlineAndExceptionsPropagate) {
  set_num_threads(2);
  std::atomic<int> total{0};
  parallel_for(0, 4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) parallel_for(0, 10, 1, [&](int64_t b2, int64_t e2) { total += int(e2 - b2); });
  });
  EXPECT_EQ(total.load(), 40);
  EXPECT_THROW(parallel_for(0, 100, 1, [](int64_t b, int64_t) {
                 if (b >= 50) throw std::runtime_error("boom");
               }),
               std::runtime_error);
  // The pool still works after an exception.
  std::atomic<int> after{0};
  parallel_for(0, 100, 1, [&](int64_t b, int64_t e) { after += int(e - b); });
  EXPECT_EQ(after.load(), 100);
}

}  // namespace quasr
