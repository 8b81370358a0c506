// The FP32 Whisper network: encoder on one 30-s window and decoder time per token (batch 1 = greedy, batch 5 =
// beam search with a reorder per step, as beams do). scripts/bench_whisper.py runs these next to CTranslate2
// float32 on the same thread count and prints the ratios; run alone:
//
//   build/quasr_bench --benchmark_filter=Whisper
//
// Timings are medians of per-call times (a call that lost its core to another process on a shared machine is
// an outlier the median ignores). The encoder's cost does not depend on the input values, so a fixed
// pseudo-random log-mel is used; decoding times positions 2..33 of a sequence, like a ~30-token transcript.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"
#include "quasr/models/whisper.h"

namespace {
using quasr::models::WhisperModel;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

const WhisperModel& model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<WhisperModel>> cache;
  auto& m = cache[name];
  if (!m) m = WhisperModel::load(name);
  return *m;
}

std::vector<float> test_mel(const WhisperModel& m) {
  quasr::Rng rng(7);
  std::vector<float> mel(static_cast<size_t>(m.config().n_mels) * 2 * m.config().n_audio_ctx);
  for (float& x : mel) x = static_cast<float>(rng.uniform() * 2 - 1);
  return mel;
}

void bm_encode(benchmark::State& state, std::string name) {
  quasr::set_num_threads(static_cast<int>(state.range(0)));
  const WhisperModel& m = model(name);
  const std::vector<float> mel = test_mel(m);
  std::vector<double> times;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(m.encode(mel).data());
    times.push_back(seconds_since(t0));
    state.SetIterationTime(times.back());
  }
  state.counters["median_ms"] = median(times) * 1e3;
}

// Per-token decoder time for `batch` sequences (all advancing together); batch > 1 reorders the caches every
// step with a rotation, the worst case of a beam search (every sequence moves).
void bm_decode(benchmark::State& state, std::string name) {
  quasr::set_num_threads(static_cast<int>(state.range(0)));
  const int batch = static_cast<int>(state.range(1));
  const WhisperModel& m = model(name);
  const std::vector<float> enc = m.encode(test_mel(m));
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

void bm_start(benchmark::State& state, std::string name) {
  quasr::set_num_threads(static_cast<int>(state.range(0)));
  const WhisperModel& m = model(name);
  const std::vector<float> enc = m.encode(test_mel(m));
  std::vector<double> times;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto st = m.start(enc, 1);
    benchmark::DoNotOptimize(st.get());
    times.push_back(seconds_since(t0));
    state.SetIterationTime(times.back());
  }
  state.counters["median_ms"] = median(times) * 1e3;
}

}  // namespace

// Process CPU time (all pool threads), so threads:2 CPU time is comparable with CTranslate2's process time.
BENCHMARK_CAPTURE(bm_encode, tiny_en, std::string("tiny.en"))
    ->ArgName("threads")->Arg(1)->Arg(2)->UseManualTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond)
    ->Iterations(5);
BENCHMARK_CAPTURE(bm_encode, base, std::string("base"))
    ->ArgName("threads")->Arg(1)->Arg(2)->UseManualTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK_CAPTURE(bm_start, tiny_en, std::string("tiny.en"))
    ->ArgName("threads")->Arg(2)->UseManualTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond)
    ->Iterations(5);
BENCHMARK_CAPTURE(bm_decode, tiny_en, std::string("tiny.en"))
    ->ArgNames({"threads", "batch"})->Args({1, 1})->Args({1, 5})->Args({2, 1})->Args({2, 5})
    ->UseManualTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK_CAPTURE(bm_decode, base, std::string("base"))
    ->ArgNames({"threads", "batch"})->Args({1, 1})->Args({1, 5})->Args({2, 1})->Args({2, 5})
    ->UseManualTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond)->Iterations(3);
