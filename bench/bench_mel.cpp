// Whisper log-mel features for a 30-s window, and the 400-point real FFT behind them against a direct DFT (the
// peer measured in the same run). Run: build/quasr_bench --benchmark_filter='Mel|Fft|Dft'
#include <benchmark/benchmark.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <vector>

#include "quasr/audio/fft.h"
#include "quasr/audio/mel.h"
#include "quasr/core/parallel.h"

namespace {

using namespace quasr::audio;

std::vector<float> noise(size_t n) {
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// 30 s of audio with the default 160-sample padding: 3000 frames, as the runtime computes per window.
// Args: n_mels, threads.
void BM_LogMel30s(benchmark::State& state) {
  const int n_mels = static_cast<int>(state.range(0));
  quasr::set_num_threads(static_cast<int>(state.range(1)));
  const std::vector<float> x = noise(30 * 16000);
  for (auto _ : state) {
    LogMel mel = log_mel_spectrogram(x, n_mels);
    benchmark::DoNotOptimize(mel.data.data());
  }
  state.counters["frames/s"] =
      benchmark::Counter(3000.0 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  quasr::set_num_threads(0);
}
BENCHMARK(BM_LogMel30s)->Args({80, 1})->Args({128, 1})->Args({80, 2})->Unit(benchmark::kMillisecond);

void BM_RealFft400(benchmark::State& state) {
  RealFft fft(kNFft);
  std::vector<double> in(kNFft);
  for (int i = 0; i < kNFft; ++i) in[static_cast<size_t>(i)] = std::sin(0.1 * i);
  std::vector<std::complex<double>> out(kNFft / 2 + 1), scratch(static_cast<size_t>(fft.scratch_size()));
  for (auto _ : state) {
    fft.forward(in, out, scratch);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_RealFft400);

// Peer: the one-sided DFT as a precomputed 201 x 400 cos/sin table (what a "precomputed real DFT" would cost).
void BM_DirectDft400(benchmark::State& state) {
  constexpr int kBins = kNFft / 2 + 1;
  std::vector<double> cos_t(static_cast<size_t>(kBins) * kNFft), sin_t(cos_t.size());
  for (int k = 0; k < kBins; ++k)
    for (int j = 0; j < kNFft; ++j) {
      const double a = -2 * std::numbers::pi * ((k * j) % kNFft) / kNFft;
      cos_t[static_cast<size_t>(k) * kNFft + j] = std::cos(a);
      sin_t[static_cast<size_t>(k) * kNFft + j] = std::sin(a);
    }
  std::vector<double> in(kNFft);
  for (int i = 0; i < kNFft; ++i) in[static_cast<size_t>(i)] = std::sin(0.1 * i);
  std::vector<std::complex<double>> out(kBins);
  for (auto _ : state) {
    for (int k = 0; k < kBins; ++k) {
      double re = 0, im = 0;
      const double* c = &cos_t[static_cast<size_t>(k) * kNFft];
      const double* s = &sin_t[static_cast<size_t>(k) * kNFft];
      for (int j = 0; j < kNFft; ++j) {
        re += in[static_cast<size_t>(j)] * c[j];
        im += in[static_cast<size_t>(j)] * s[j];
      }
      out[static_cast<size_t>(k)] = {re, im};
    }
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_DirectDft400);

}  // namespace
