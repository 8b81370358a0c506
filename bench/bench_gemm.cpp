// FP32 GEMM on the shapes Whisper runs, quasr::kernels::sgemm against OpenBLAS cblas_sgemm.
//
// Each benchmark times both libraries in the same loop, alternating one call of each, so that a noisy shared
// machine slows both alike; it reports GFLOP/s of each from the median call time, and their ratio
// (quasr_vs_openblas = OpenBLAS median time / quasr median time; > 1: quasr is faster). With threads:1 the times
// are CPU time of the calling thread (robust to preemption), with threads:2 wall time (see bm_sgemm). OpenBLAS's
// idle workers spin after each call and take a core from whatever runs next; run with OPENBLAS_THREAD_TIMEOUT=4
// (OpenBLAS's own setting for that busy-wait) so that threads:2 does not charge OpenBLAS's spinning to quasr.
// Without OpenBLAS at build time (CMake finds it with pkg-config) only quasr is timed.
//
//   build/quasr_bench --benchmark_filter=Sgemm
//
// Shapes (row-major, C[M x N] = A[M x K] . op(B)); Linear layers use B = weights stored [out, in] (trans_b):
//   encoder: M = 1500 frames, (N, K) = (d, d), (4d, d), (d, 4d) for d = 384 (tiny), 512 (base), 768 (small);
//   attention per head: Q K^T (1500 x 1500 x 64, trans_b) and P V (1500 x 64 x 1500);
//   decoder: M = 1 .. 5 (beams) on the same weights, and cross-attention against 1500 encoder frames.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <string>
#include <vector>

#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"
#include "quasr/kernels/gemm.h"

#ifdef QUASR_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Shape {
  std::string name;
  bool ta, tb;
  int64_t M, N, K;
};

std::vector<float> random_matrix(size_t n, uint64_t seed) {
  quasr::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// Wall time and CPU time of the calling thread for one call.
struct CallTime {
  double wall, cpu;
};
double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
template <class Fn>
CallTime time_call(Fn&& fn) {
  const auto w0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu_seconds();
  fn();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count(), thread_cpu_seconds() - c0};
}

// Median of per-call times: on a shared machine a call that lost its core to another process is an outlier,
// and the median ignores it where a mean would not.
double median(const std::vector<CallTime>& calls, double CallTime::*field) {
  std::vector<double> v;
  for (const CallTime& c : calls) v.push_back(c.*field);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

void bm_sgemm(benchmark::State& state, Shape s) {
  const int threads = static_cast<int>(state.range(0));
  quasr::set_num_threads(threads);
  const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
  const std::vector<float> A = random_matrix(static_cast<size_t>(s.M * s.K), 1);
  const std::vector<float> B = random_matrix(static_cast<size_t>(s.K * s.N), 2);
  std::vector<float> C(static_cast<size_t>(s.M * s.N)), C_ref(C.size());
  std::vector<CallTime> t_quasr;
  [[maybe_unused]] std::vector<CallTime> t_blas, t_gemv;
  // For M = 1 OpenBLAS's own matrix-vector product is the fairer peer (its sgemm does not switch to it), so it is
  // timed too. It computes op(B)^T a, which for M = 1 is the same product.
  const bool gemv_peer = s.M == 1 && !s.ta;
#ifdef QUASR_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#endif
  for (auto _ : state) {
    t_quasr.push_back(time_call([&] {
      quasr::kernels::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc);
    }));
    benchmark::DoNotOptimize(C.data());
#ifdef QUASR_HAVE_OPENBLAS
    t_blas.push_back(time_call([&] {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0f, A.data(),
                  static_cast<int>(lda), B.data(), static_cast<int>(ldb), 0.0f, C_ref.data(), static_cast<int>(ldc));
    }));
    benchmark::DoNotOptimize(C_ref.data());
    if (gemv_peer) {
      t_gemv.push_back(time_call([&] {
        // trans_b: B is N x K, y = B a; else B is K x N, y = B^T a.
        cblas_sgemv(CblasRowMajor, s.tb ? CblasNoTrans : CblasTrans, static_cast<int>(s.tb ? s.N : s.K),
                    static_cast<int>(s.tb ? s.K : s.N), 1.0f, B.data(), static_cast<int>(ldb), A.data(), 1, 0.0f,
                    C_ref.data(), 1);
      }));
      benchmark::DoNotOptimize(C_ref.data());
    }
#endif
  }
  const double flops = 2.0 * static_cast<double>(s.M) * s.N * s.K;
  // With one thread both libraries run entirely on the calling thread, so its CPU time excludes the time the
  // thread waited for a core on a loaded machine: the steadier measure. With two threads only wall time means
  // anything.
  const bool use_cpu = threads == 1;
  double CallTime::*field = use_cpu ? &CallTime::cpu : &CallTime::wall;
  const double q = median(t_quasr, field);
  state.counters["quasr_GFLOPs"] = flops / q * 1e-9;
#ifdef QUASR_HAVE_OPENBLAS
  const double o = median(t_blas, field);
  state.counters["openblas_GFLOPs"] = flops / o * 1e-9;
  state.counters["quasr_vs_openblas"] = o / q;
  if (gemv_peer) state.counters["quasr_vs_openblas_gemv"] = median(t_gemv, field) / q;
#endif
  state.SetLabel(std::string(quasr::isa_name(quasr::kernels::sgemm_isa())) + (use_cpu ? " cpu-time" : " wall-time"));
}

std::vector<Shape> whisper_shapes() {
  std::vector<Shape> shapes;
  const struct {
    const char* model;
    int64_t d;
  } models[] = {{"tiny", 384}, {"base", 512}, {"small", 768}};
  for (const auto& m : models) {
    const std::string p = m.model;
    shapes.push_back({"enc_" + p + "_proj", false, true, 1500, m.d, m.d});
    shapes.push_back({"enc_" + p + "_fc1", false, true, 1500, 4 * m.d, m.d});
    shapes.push_back({"enc_" + p + "_fc2", false, true, 1500, m.d, 4 * m.d});
  }
  shapes.push_back({"enc_base_fc1_nn", false, false, 1500, 2048, 512});  // weights stored [in, out]
  shapes.push_back({"enc_base_fc1_tn", true, true, 1500, 2048, 512});    // activations stored transposed
  shapes.push_back({"attn_qk", false, true, 1500, 1500, 64});
  shapes.push_back({"attn_pv", false, false, 1500, 64, 1500});
  shapes.push_back({"attn_qk_tn", true, true, 1500, 1500, 64});
  for (int64_t M : {1, 5})
    for (const auto& m : models) {
      const std::string p = std::string("dec_") + m.model + "_M" + std::to_string(M);
      shapes.push_back({p + "_proj", false, true, M, m.d, m.d});
      shapes.push_back({p + "_fc1", false, true, M, 4 * m.d, m.d});
      shapes.push_back({p + "_fc2", false, true, M, m.d, 4 * m.d});
    }
  // The output projection onto the vocabulary (the tied embedding, [n_vocab, d]): 80-100 MB of FP32 weights read
  // once per decoder step, the largest product of a step and the one bounded by memory bandwidth.
  shapes.push_back({"dec_tiny_M1_logits", false, true, 1, 51864, 384});
  shapes.push_back({"dec_base_M1_logits", false, true, 1, 51865, 512});
  shapes.push_back({"dec_tiny_M5_logits", false, true, 5, 51864, 384});
  for (int64_t M : {2, 3, 4}) shapes.push_back({"dec_base_M" + std::to_string(M) + "_fc1", false, true, M, 2048, 512});
  shapes.push_back({"dec_base_M1_fc1_nn", false, false, 1, 2048, 512});
  shapes.push_back({"dec_xattn_qk_M1", false, true, 1, 1500, 64});
  shapes.push_back({"dec_xattn_pv_M1", false, false, 1, 64, 1500});
  shapes.push_back({"dec_xattn_qk_M5", false, true, 5, 1500, 64});
  return shapes;
}

const bool registered = [] {
  for (const Shape& s : whisper_shapes())
    benchmark::RegisterBenchmark(("Sgemm/" + s.name).c_str(), bm_sgemm, s)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  return true;
}();

}  // namespace
