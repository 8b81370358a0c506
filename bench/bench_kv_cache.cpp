// Decoder cost of the KV cache precision (recipe kv=, docs/runtime.md "KV cache precision"): per-token step time
// for batch 1 (greedy) and batch 5 (beam search: a reorder every step) and start() time (cross K/V computed and
// stored), tiny.en with FP32 weights and the caches at fp32 / fp16 / int8 / fp8. Compare the rows of one run:
//
//   build/quasr_bench --benchmark_filter=bm_kv_
//
// Medians of per-call times, as bench_whisper.cpp (a call that lost its core on a shared machine is an outlier).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"
#include "quasr/models/whisper_quantized.h"

namespace {
using quasr::models::WhisperModel;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

const WhisperModel& model(const std::string& kv) {
  static std::map<std::string, std::unique_ptr<WhisperModel>> cache;
  auto& m = cache[kv];
  if (!m) m = quasr::models::load_whisper_model("tiny.en", {false, kv == "fp32" ? "" : "kv=" + kv});
  return *m;
}

// The encoder output does not depend on kv=; one pseudo-random window, encoded once.
const std::vector<float>& encoder_output() {
  static const std::vector<float> enc = [] {
    const WhisperModel& m = model("fp32");
    quasr::Rng rng(7);
    std::vector<float> mel(static_cast<size_t>(m.config().n_mels) * 2 * m.config().n_audio_ctx);
    for (float& x : mel) x = static_cast<float>(rng.uniform() * 2 - 1);
    return m.encode(mel);
  }();
  return enc;
}

void bm_kv_decode(benchmark::State& state, std::string kv) {
  quasr::set_num_threads(static_cast<int>(state.range(0)));
  const int batch = static_cast<int>(state.range(1));
  const WhisperModel& m = model(kv);
  const std::vector<float>& enc = encoder_output();
  const int V = m.config().n_vocab, n_tokens = 32;
  std::vector<float> logits(static_cast<size_t>(batch) * V);
  std::vector<int> src(batch);
  for (int i = 0; i < batch; ++i) src[i] = (i + 1) % batch;
  std::vector<double> times;
  for (auto _ : state) {
    state.PauseTiming();
    auto st = m.start(enc, batch);
    std::vector<int> sot(static_cast<size_t>(2 * batch), 50257);
    m.step(*st, sot, 2, logits);
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < n_tokens; ++t) {
      std::vector<int> tok(batch);
      for (int b = 0; b < batch; ++b)
        tok[b] = static_cast<int>(std::max_element(logits.begin() + static_cast<long>(b) * V,
                                                   logits.begin() + static_cast<long>(b + 1) * V) -
                                  logits.begin() - static_cast<long>(b) * V);
      if (batch > 1) m.reorder(*st, src);
      m.step(*st, tok, 1, logits);
    }
    times.push_back(seconds_since(t0) / n_tokens);
    state.SetIterationTime(times.back() * n_tokens);
  }
  state.counters["median_ms_per_token"] = median(times) * 1e3;
}

void bm_kv_start(benchmark::State& state, std::string kv) {
  quasr::set_num_threads(static_cast<int>(state.range(0)));
  const WhisperModel& m = model(kv);
  const std::vector<float>& enc = encoder_output();
  std::vector<double> times;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto st = m.start(enc, 5);
    benchmark::DoNotOptimize(st.get());
    times.push_back(seconds_since(t0));
    state.SetIterationTime(times.back());
  }
  state.counters["median_ms"] = median(times) * 1e3;
}

}  // namespace

#define QUASR_KV_BENCH(kv)                                                                              \
  BENCHMARK_CAPTURE(bm_kv_decode, kv, std::string(#kv))                                               \
      ->ArgNames({"threads", "batch"})->Args({1, 1})->Args({1, 5})->UseManualTime()->Unit(benchmark::kMillisecond) \
      ->Iterations(7);                                                                                  \
  BENCHMARK_CAPTURE(bm_kv_start, kv, std::string(#kv))                                                \
      ->ArgName("threads")->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(5)
QUASR_KV_BENCH(fp32);
QUASR_KV_BENCH(fp16);
QUASR_KV_BENCH(int8);
QUASR_KV_BENCH(fp8);
