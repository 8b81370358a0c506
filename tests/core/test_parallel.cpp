#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
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

// Runs back to back, runs after the workers have gone back to sleep, and runs issued from two threads at once
// (serialised by the pool) must all complete every chunk exactly once. A lost wake-up would hang this test.
TEST(Parallel, BackToBackSpacedAndConcurrentRunsAllComplete) {
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    std::atomic<int64_t> sum{0};
    int64_t expect = 0;
    for (int run = 0; run < 4000; ++run) {
      const int64_t n = 1 + run % 7;
      parallel_for(0, n, 1, [&](int64_t b, int64_t e) { sum += e - b; });
      expect += n;
      if (run % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers fall asleep
    }
    EXPECT_EQ(sum.load(), expect) << threads << " threads";
    std::atomic<int64_t> a{0}, b{0};
    auto issue = [](std::atomic<int64_t>& into) {
      for (int run = 0; run < 500; ++run) parallel_for(0, 8, 1, [&](int64_t lo, int64_t hi) { into += hi - lo; });
    };
    std::thread other(issue, std::ref(b));
    issue(a);
    other.join();
    EXPECT_EQ(a.load(), 500 * 8);
    EXPECT_EQ(b.load(), 500 * 8);
  }
  set_num_threads(0);
}

}  // namespace quasr
