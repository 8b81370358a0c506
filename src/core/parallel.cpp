#include "quasr/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace quasr {
namespace {

// A fixed pool that runs one parallel_for at a time. Nested parallel_for calls from inside a task run inline:
// simple, and it avoids deadlock.
class Pool {
 public:
  ~Pool() { resize(0); }

  void resize(int workers) {
    {
      std::unique_lock lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    stop_ = false;
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker(i + 1); });
  }
  int size() const { return static_cast<int>(threads_.size()) + 1; }

  // Runs task(chunk) for chunk in [0, chunks); the caller takes part.
  void run(int64_t chunks, const std::function<void(int64_t)>& task) {
    std::unique_lock run_lock(run_mu_);
    {
      std::unique_lock lock(mu_);
      task_ = &task;
      chunks_ = chunks;
      next_.store(0);
      pending_ = static_cast<int>(threads_.size());
      error_ = nullptr;
      ++generation_;
      cv_.notify_all();
    }
    drain();
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void drain() {
    tls_in_task = true;
    for (int64_t c; (c = next_.fetch_add(1)) < chunks_;) {
      try {
        (*task_)(c);
      } catch (...) {
        std::unique_lock lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    tls_in_task = false;
  }
  void worker(int) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
      std::unique_lock lock(mu_);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }

 public:
  static thread_local bool tls_in_task;

 private:
  std::vector<std::thread> threads_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};
thread_local bool Pool::tls_in_task = false;

Pool& pool() {
  static Pool p;
  return p;
}
std::once_flag g_init;
std::mutex g_resize_mu;

void ensure_init() {
  std::call_once(g_init, [] { pool().resize(std::max(1u, std::thread::hardware_concurrency()) - 1); });
}

}  // namespace

void set_num_threads(int n) {
  ensure_init();
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::lock_guard lock(g_resize_mu);
  if (pool().size() != n) pool().resize(n - 1);
}

int num_threads() {
  ensure_init();
  return pool().size();
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  ensure_init();
  const int64_t n = end - begin;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = std::min<int64_t>((n + grain - 1) / grain, pool().size());
  if (max_chunks <= 1 || Pool::tls_in_task) {
    fn(begin, end);
    return;
  }
  const int64_t chunk = (n + max_chunks - 1) / max_chunks;
  const int64_t chunks = (n + chunk - 1) / chunk;
  pool().run(chunks, [&](int64_t c) { fn(begin + c * chunk, std::min(end, begin + (c + 1) * chunk)); });
}

}  // namespace quasr
