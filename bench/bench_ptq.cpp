// GPTQ (quant/ptq.h) on the real Linear weights of Whisper tiny.en and base, against round-to-nearest
// (formats::quantize) of the same weight and spec in the same loop: each iteration runs one GPTQ and one RTN, so
// a noisy shared machine slows both alike. Reported: gptq_ms and rtn_ms (median wall time per call) and
// gptq_vs_rtn = GPTQ / RTN time; peak_MiB = the most heap bytes in use at once during one GPTQ call above what was
// in use when it started (operator new/delete of this binary count live bytes with malloc_usable_size; the
// returned QTensor included; one warm-up call first so the thread-local GEMM scratch is already there).
// The Hessian is a synthetic sum x x^T over 2k correlated rows (its values do not change GPTQ's work), built
// outside the timing. Weights come from models/<name>/model.bin; a missing model skips with a message.
//
//   build/quasr_bench --benchmark_filter=Gptq
//
// Layers: encoder layer 0's fused QKV (3d x d), attention output (d x d), fc1 (4d x d) and fc2 (d x 4d); and
// the whole model: every 2-D Linear weight of the encoder and decoder layers, each with its own Hessian, one call
// each (one iteration; rtn_ms / gptq_ms are then the totals).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "quasr/core/rng.h"
#include "quasr/formats/qtensor.h"
#include "quasr/io/ct2_model_bin.h"
#include "quasr/kernels/gemm.h"
#include "quasr/quant/ptq.h"

// ---- live heap bytes, for peak_MiB ------------------------------------------------------------------------------
namespace {
std::atomic<int64_t> g_live{0}, g_peak{0};
void note_alloc(void* p) {
  if (!p) return;
  const int64_t now = g_live.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed) +
                      static_cast<int64_t>(malloc_usable_size(p));
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
void* counted_alloc(size_t n, size_t align) {
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                               : std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  note_alloc(p);
  return p;
}
void counted_free(void* p) {
  if (!p) return;
  g_live.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(size_t n) { return counted_alloc(n, 0); }
void* operator new[](size_t n) { return counted_alloc(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<size_t>(a)); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, size_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { counted_free(p); }

namespace {

using quasr::formats::QuantSpec;

const quasr::io::Ct2ModelBin* model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<quasr::io::Ct2ModelBin>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string path = std::string(QUASR_SOURCE_DIR) + "/models/" + name + "/model.bin";
    std::unique_ptr<quasr::io::Ct2ModelBin> m;
    if (std::filesystem::exists(path)) m = std::make_unique<quasr::io::Ct2ModelBin>(quasr::io::read_ct2_model_bin(path));
    it = cache.emplace(name, std::move(m)).first;
  }
  return it->second.get();
}

// sum over 2k rows of x x^T, x = z A with a random mixing A: a positive definite, correlated Hessian.
std::vector<double> synthetic_hessian(int64_t k, uint64_t seed) {
  quasr::Rng rng(seed);
  const int64_t m = 2 * k;
  std::vector<float> z(static_cast<size_t>(m * k)), a(static_cast<size_t>(k * k)), x(z.size()),
      h(static_cast<size_t>(k * k));
  for (auto& v : z) v = static_cast<float>(rng.normal());
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) a[i * k + j] = (i == j) + static_cast<float>(rng.normal() * 1.5 / std::sqrt(k));
  quasr::kernels::sgemm(false, false, m, k, k, 1.0f, z.data(), k, a.data(), k, 0.0f, x.data(), k);
  quasr::kernels::sgemm(true, false, k, k, m, 1.0f, x.data(), k, x.data(), k, 0.0f, h.data(), k);
  std::vector<double> hd(h.size());
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) hd[i * k + j] = h[std::max(i, j) * k + std::min(i, j)];  // exactly symmetric
  return hd;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void bm_gptq_layer(benchmark::State& state, const std::string& model_name, const std::string& weight,
                   const std::string& spec_text) {
  const quasr::io::Ct2ModelBin* m = model(model_name);
  if (!m) {
    state.SkipWithError(("models/" + model_name + "/model.bin not found (run scripts/setup.sh)").c_str());
    return;
  }
  const quasr::io::Tensor* t = m->find(weight);
  if (!t || t->shape.size() != 2) {
    state.SkipWithError(("no 2-D weight " + weight).c_str());
    return;
  }
  const int64_t n = t->shape[0], k = t->shape[1];
  const int64_t shape[2] = {n, k};
  const QuantSpec spec = QuantSpec::parse(spec_text);
  const std::vector<double> h = synthetic_hessian(k, 1);
  benchmark::DoNotOptimize(quasr::quant::gptq_quantize(t->values, n, k, spec, h));  // warm-up
  g_peak.store(g_live.load());
  const int64_t base = g_live.load();
  benchmark::DoNotOptimize(quasr::quant::gptq_quantize(t->values, n, k, spec, h));
  const int64_t peak = g_peak.load() - base;
  std::vector<double> tg, tr;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(quasr::quant::gptq_quantize(t->values, n, k, spec, h));
    tg.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(quasr::formats::quantize(t->values, shape, spec));
    tr.push_back(seconds_since(t0));
  }
  state.counters["gptq_ms"] = median(tg) * 1e3;
  state.counters["rtn_ms"] = median(tr) * 1e3;
  state.counters["gptq_vs_rtn"] = median(tg) / median(tr);
  state.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
  state.SetLabel(std::to_string(n) + "x" + std::to_string(k) + " " + spec_text);
}

void bm_gptq_model(benchmark::State& state, const std::string& model_name, const std::string& spec_text) {
  const quasr::io::Ct2ModelBin* m = model(model_name);
  if (!m) {
    state.SkipWithError(("models/" + model_name + "/model.bin not found (run scripts/setup.sh)").c_str());
    return;
  }
  const QuantSpec spec = QuantSpec::parse(spec_text);
  std::map<int64_t, std::vector<double>> hessians;  // one per input width, built outside the timing
  std::vector<const quasr::io::Tensor*> layers;
  for (const auto& [name, t] : m->variables)
    if ((name.rfind("encoder/layer_", 0) == 0 || name.rfind("decoder/layer_", 0) == 0) &&
        name.size() > 7 && name.compare(name.size() - 7, 7, "/weight") == 0 && t.shape.size() == 2 &&
        name.find("linear_") != std::string::npos) {
      layers.push_back(&t);
      if (!hessians.count(t.shape[1])) hessians[t.shape[1]] = synthetic_hessian(t.shape[1], 2);
    }
  int64_t peak = 0;
  double tg = 0, tr = 0;
  for (auto _ : state) {
    for (const quasr::io::Tensor* t : layers) {
      const int64_t n = t->shape[0], k = t->shape[1];
      const int64_t shape[2] = {n, k};
      const int64_t base = g_live.load();
      g_peak.store(base);
      auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(quasr::quant::gptq_quantize(t->values, n, k, spec, hessians[k]));
      tg += seconds_since(t0);
      peak = std::max(peak, g_peak.load() - base);
      t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(quasr::formats::quantize(t->values, shape, spec));
      tr += seconds_since(t0);
    }
  }
  state.counters["layers"] = static_cast<double>(layers.size());
  state.counters["gptq_ms"] = tg * 1e3 / static_cast<double>(state.iterations());
  state.counters["rtn_ms"] = tr * 1e3 / static_cast<double>(state.iterations());
  state.counters["gptq_vs_rtn"] = tg / tr;
  state.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
  state.SetLabel(spec_text);
}

void register_all() {
  for (const auto& [name, tag] : {std::pair<std::string, std::string>{"tiny.en", "tiny_en"}, {"base", "base"}}) {
    for (const char* layer : {"self_attention/linear_0", "self_attention/linear_1", "ffn/linear_0", "ffn/linear_1"}) {
      const std::string w = std::string("encoder/layer_0/") + layer + "/weight";
      benchmark::RegisterBenchmark(("Gptq/" + tag + "/enc0_" + layer).c_str(), bm_gptq_layer, name, w,
                                   std::string("int4:g128"))
          ->Unit(benchmark::kMillisecond)
          ->Iterations(3)
          ->UseRealTime();
    }
    benchmark::RegisterBenchmark(("Gptq/" + tag + "/whole_model").c_str(), bm_gptq_model, name,
                                 std::string("int4:g128"))
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1)
        ->UseRealTime();
  }
}

const bool registered = (register_all(), true);

}  // namespace
