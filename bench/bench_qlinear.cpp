// Quantized Linear kernels on the GEMM shapes of Whisper tiny / base / small, beside oneDNN (libdnnl) on the same
// shapes in the same loop: matmul u8 x s8 -> f32 with per-channel output scales ("int8"), bf16 x bf16 -> f32
// and f32. One benchmark per registry kernel (its representative weight spec below), shape and M in
// {1, 4, 5, 1500}; each iteration calls quasr and each oneDNN peer once, alternating, so a noisy shared machine
// slows all alike. Single-threaded, timed in CPU time of the calling thread. Reported from median call times: *_us per library and the ratios
// vs_<peer> = peer time / quasr time (> 1: quasr is faster).
//
// Cold: M = 1 with weights not in cache. Each library cycles through as many copies of its weights as fill
// 4x this machine's L3 (cold_bytes()), so every call streams its weights from DRAM: the case where 4-bit weights pay.
//
//   OMP_NUM_THREADS=1 build/quasr_bench --benchmark_filter=Qlinear
//
// What differs between the peers: quasr's integer kernels start from FP32 activations (quantization per token
// is inside the timed call); oneDNN's int8 matmul is handed activations already in u8 and its bf16 one already
// in bf16. For the VNNI kernels the GEMM alone is timed too, handed u8 codes like oneDNN (quasr_gemm_us,
// vs_dnnl_int8_gemm). For every integer kernel (hot) the whole call is also set against oneDNN doing the same
// whole job from FP32 activations, per-token quantization by its own primitives included (DnnlInt8FromF32;
// dnnl_int8_f32in_us, vs_dnnl_int8_f32in). Every library gets its weights prepacked once, outside the timing (oneDNN: reorder to its
// preferred layout; quasr: prepare_weight).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <unistd.h>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../src/kernels/qlinear_internal.h"
#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"
#include "quasr/formats/minifloat.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/kernels/qlinear.h"

#ifdef QUASR_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using quasr::kernels::ActivationQuant;
using quasr::kernels::KernelInfo;

struct Shape {
  std::string name;
  int64_t N, K;
};

std::vector<Shape> whisper_linear_shapes() {
  std::vector<Shape> s;
  for (const auto& [model, d] : {std::pair<const char*, int64_t>{"tiny", 384}, {"base", 512}, {"small", 768}}) {
    s.push_back({std::string(model) + "_proj", d, d});
    s.push_back({std::string(model) + "_fc1", 4 * d, d});
    s.push_back({std::string(model) + "_fc2", d, 4 * d});
  }
  return s;
}

// Weights cycled through per library in the cold benchmarks: 4x this machine's L3 (128 MiB at least, and when the
// size is not reported), so that no copy is still cached when its turn comes again.
size_t cold_bytes() {
  static const size_t bytes = [] {
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return std::max<size_t>(size_t{128} << 20, l3 > 0 ? 4 * static_cast<size_t>(l3) : 0);
  }();
  return bytes;
}

std::vector<float> random_vector(size_t n, uint64_t seed, double sigma) {
  quasr::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(sigma * rng.normal());
  return v;
}

// CPU time of the calling thread: with one thread (quasr::set_num_threads(1), OMP_NUM_THREADS=1) every library
// runs entirely on it, and CPU time leaves out the time spent waiting for a core on a loaded shared machine.
double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double seconds_since(double t0) { return thread_cpu_seconds() - t0; }
double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// The weight spec a kernel is benchmarked with: the first of these it accepts.
const char* const kBenchSpecs[] = {"int8:pc", "int4:g128"};

ActivationQuant activation_for(const KernelInfo& k) {
  ActivationQuant a;
  if (k.integer_activations) a.mode = ActivationQuant::Mode::kDynamicPerToken;
  return a;
}

std::string spec_for(const KernelInfo& k, const Shape& s) {
  const ActivationQuant act = activation_for(k);
  for (const char* spec : kBenchSpecs) {
    const auto w = quasr::formats::quantize(random_vector(16 * 128, 1, 0.05), std::vector<int64_t>{16, 128},
                                            quasr::formats::QuantSpec::parse(spec));
    if (quasr::kernels::kernel_rejects(k, w, act).empty()) return spec;
  }
  return "";
}

#ifdef QUASR_HAVE_DNNL
// One oneDNN matmul y[M][N] = x[M][K] . W^T with weights given [N][K] (tag ba of the K x N weights matrix),
// reordered `copies` times into the primitive's preferred layout.
struct DnnlLinear {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::matmul prim;
  dnnl::memory src, dst;
  std::vector<dnnl::memory> weights;

  DnnlLinear(int64_t M, int64_t N, int64_t K, dnnl::memory::data_type src_t, dnnl::memory::data_type wei_t,
             const void* x, void* w_nk, size_t copies) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::desc src_md({M, K}, src_t, tag::ab), dst_md({M, N}, dt::f32, tag::ab);
    const dnnl::memory::desc wei_any({K, N}, wei_t, tag::any), wei_user({K, N}, wei_t, tag::ba);
    dnnl::primitive_attr attr;
    if (wei_t == dt::s8) attr.set_output_scales(1 << 1, std::vector<float>(static_cast<size_t>(N), 0.01f));
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md), attr, eng);
    prim = dnnl::matmul(pd);
    src = dnnl::memory(src_md, eng, const_cast<void*>(x));
    dst = dnnl::memory(dst_md, eng);
    dnnl::memory user(wei_user, eng, w_nk);
    for (size_t i = 0; i < copies; ++i) {
      weights.emplace_back(pd.weights_desc(), eng);
      dnnl::reorder(user, weights.back()).execute(strm, user, weights.back());
    }
    strm.wait();
  }
  void run(size_t copy) {
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights[copy % weights.size()]}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }
};

// oneDNN's int8 matmul handed the same FP32 activations quasr's whole call gets, quantizing them per token with
// oneDNN's own primitives, so that it pays for what quasr pays for: the row max and min (two reductions; max|x|
// = max(max, -min)), a reorder f32 -> s8 with a runtime scale per row (127 / max|x|), the matmul s8 x s8 -> f32
// with per-channel output scales, and a binary multiply of its output by the row scales (max|x| / 127). The
// row scales are a separate binary primitive because oneDNN 2.6's matmul with a per-row binary post-op falls back
// to its reference implementation (ONEDNN_VERBOSE: ref_int8, thousands of times slower). The loop over M (scales
// from the row extremes) is the only non-oneDNN code; it touches M values.
struct DnnlInt8FromF32 {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  int64_t M;
  dnnl::reduction row_max, row_min;
  dnnl::reorder quantize;
  dnnl::matmul prim;
  dnnl::binary scale_rows;
  dnnl::memory src, mx, mn, codes, inv_scales, row_scales, dst, weights;
  std::vector<float> inv, rs;

  DnnlInt8FromF32(int64_t m, int64_t N, int64_t K, const float* x, const int8_t* w_nk) : M(m) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::desc src_md({M, K}, dt::f32, tag::ab), ext_md({M, 1}, dt::f32, tag::ab);
    const dnnl::memory::desc codes_md({M, K}, dt::s8, tag::ab), dst_md({M, N}, dt::f32, tag::ab);
    src = dnnl::memory(src_md, eng, const_cast<float*>(x));
    mx = dnnl::memory(ext_md, eng);
    mn = dnnl::memory(ext_md, eng);
    row_max = dnnl::reduction(dnnl::reduction::primitive_desc(
        dnnl::reduction::desc(dnnl::algorithm::reduction_max, src_md, ext_md, 0.f, 0.f), eng));
    row_min = dnnl::reduction(dnnl::reduction::primitive_desc(
        dnnl::reduction::desc(dnnl::algorithm::reduction_min, src_md, ext_md, 0.f, 0.f), eng));
    inv.resize(static_cast<size_t>(M));
    rs.resize(static_cast<size_t>(M));
    inv_scales = dnnl::memory(dnnl::memory::desc({M}, dt::f32, tag::a), eng, inv.data());
    row_scales = dnnl::memory(ext_md, eng, rs.data());
    codes = dnnl::memory(codes_md, eng);
    dnnl::primitive_attr qattr;
    qattr.set_output_scales(1 << 0, {DNNL_RUNTIME_F32_VAL});
    quantize = dnnl::reorder(dnnl::reorder::primitive_desc(eng, src_md, eng, codes_md, qattr));
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, std::vector<float>(static_cast<size_t>(N), 0.01f));
    const dnnl::memory::desc wei_any({K, N}, dt::s8, tag::any), wei_user({K, N}, dt::s8, tag::ba);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(codes_md, wei_any, dst_md), attr, eng);
    prim = dnnl::matmul(pd);
    dst = dnnl::memory(dst_md, eng);
    scale_rows = dnnl::binary(dnnl::binary::primitive_desc(
        dnnl::binary::desc(dnnl::algorithm::binary_mul, dst_md, ext_md, dst_md), eng));
    dnnl::memory user(wei_user, eng, const_cast<int8_t*>(w_nk));
    weights = dnnl::memory(pd.weights_desc(), eng);
    dnnl::reorder(user, weights).execute(strm, user, weights);
    strm.wait();
  }
  void run() {
    row_max.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, mx}});
    row_min.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, mn}});
    strm.wait();
    const float* hi = static_cast<const float*>(mx.get_data_handle());
    const float* lo = static_cast<const float*>(mn.get_data_handle());
    for (int64_t m = 0; m < M; ++m) {
      const float amax = std::max(hi[m], -lo[m]);
      inv[static_cast<size_t>(m)] = amax > 0 ? 127.0f / amax : 1.0f;
      rs[static_cast<size_t>(m)] = amax > 0 ? amax / 127.0f : 1.0f;
    }
    quantize.execute(strm, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, codes},
                            {DNNL_ARG_ATTR_OUTPUT_SCALES, inv_scales}});
    prim.execute(strm, {{DNNL_ARG_SRC, codes}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    scale_rows.execute(strm, {{DNNL_ARG_SRC_0, dst}, {DNNL_ARG_SRC_1, row_scales}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }
};
#endif

void bm_qlinear(benchmark::State& state, size_t kernel_index, Shape s, int64_t M, bool cold) {
  const KernelInfo& k = quasr::kernels::kernel_registry()[kernel_index];
  if (!quasr::kernels::kernel_runnable(k)) {
    state.SkipWithError((std::string(k.name) + ": ISA not available").c_str());
    return;
  }
  quasr::set_num_threads(1);
  const std::string spec = spec_for(k, s);
  const ActivationQuant act = activation_for(k);
  const std::vector<float> wf = random_vector(static_cast<size_t>(s.N * s.K), 2, 0.05);
  const auto qw = quasr::formats::quantize(wf, std::vector<int64_t>{s.N, s.K}, quasr::formats::QuantSpec::parse(spec));
  const size_t qbytes = qw.storage().total();
  const size_t copies = cold ? std::max<size_t>(2, cold_bytes() / qbytes + 1) : 1;
  std::vector<std::shared_ptr<const quasr::kernels::PreparedWeight>> prepared;
  for (size_t i = 0; i < copies; ++i) prepared.push_back(quasr::kernels::prepare_weight_for(k, qw, act));
  const std::vector<float> x = random_vector(static_cast<size_t>(M * s.K), 3, 1.0);
  std::vector<float> y(static_cast<size_t>(M * s.N));
  std::vector<double> t_quasr;
  // The VNNI and AMX kernels' GEMM alone, handed u8 activation codes as oneDNN int8 is (hot only): the like-for-like
  // comparison, beside the whole call above that also quantizes FP32 activations.
  const bool amx = std::string(k.name).find("_amx") != std::string::npos;
  const bool gemm_only = !cold && (amx || std::string(k.name).find("avx512vnni") != std::string::npos);
  quasr::kernels::detail::IntGemmWeight ig;
  std::vector<uint8_t> codes;
  std::vector<float> row_scales(static_cast<size_t>(M), 0.01f);
  std::vector<double> t_gemm;
  if (gemm_only) {
    ig = quasr::kernels::detail::pack_int_gemm(quasr::kernels::detail::decompose_weight(qw), amx ? 64 : 4);
    codes.resize(static_cast<size_t>((M + 15) / 16 * 16 * ig.Kp));  // AMX tiles read whole 16-row tiles
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(x[i % x.size()] * 40.0f + 128.0f);
  }
#ifdef QUASR_HAVE_DNNL
  using dt = dnnl::memory::data_type;
  const size_t nk = static_cast<size_t>(s.N * s.K);
  auto copies_of = [&](size_t bytes) { return cold ? std::max<size_t>(2, cold_bytes() / bytes + 1) : size_t{1}; };
  std::vector<uint8_t> xu8(static_cast<size_t>(M * s.K));
  std::vector<int8_t> w8(nk);
  std::vector<uint16_t> xbf(x.size()), wbf(nk);
  for (size_t i = 0; i < xu8.size(); ++i) xu8[i] = static_cast<uint8_t>(std::clamp(x[i] * 40.0f + 128.0f, 0.0f, 255.0f));
  for (size_t i = 0; i < nk; ++i) w8[i] = static_cast<int8_t>(std::clamp(wf[i] * 1000.0f, -127.0f, 127.0f));
  for (size_t i = 0; i < x.size(); ++i) xbf[i] = quasr::formats::fp32_to_bf16(x[i]);
  for (size_t i = 0; i < nk; ++i) wbf[i] = quasr::formats::fp32_to_bf16(wf[i]);
  std::vector<float> wcopy = wf;
  // A peer this CPU has no oneDNN implementation for (bf16 without AVX-512) is left out, not a crash.
  auto peer = [&](dt src_t, dt wei_t, const void* xs, void* ws, size_t bytes) -> std::unique_ptr<DnnlLinear> {
    try {
      return std::make_unique<DnnlLinear>(M, s.N, s.K, src_t, wei_t, xs, ws, copies_of(bytes));
    } catch (const dnnl::error&) {
      return nullptr;
    }
  };
  const auto d_int8 = peer(dt::u8, dt::s8, xu8.data(), w8.data(), nk);
  const auto d_bf16 = peer(dt::bf16, dt::bf16, xbf.data(), wbf.data(), 2 * nk);
  const auto d_f32 = peer(dt::f32, dt::f32, x.data(), wcopy.data(), 4 * nk);
  std::vector<double> t_int8, t_bf16, t_f32, t_int8_f32in;
  // Hot integer kernels only: the like-for-like whole call (both start from FP32 activations).
  std::unique_ptr<DnnlInt8FromF32> d_int8_f32in;
  if (k.integer_activations && !cold) {
    try {
      d_int8_f32in = std::make_unique<DnnlInt8FromF32>(M, s.N, s.K, x.data(), w8.data());
    } catch (const dnnl::error&) {
    }
  }
#endif
  size_t it = 0;
  for (auto _ : state) {
    double t0 = thread_cpu_seconds();
    quasr::kernels::qlinear(*prepared[it % copies], x.data(), M, s.K, nullptr, y.data(), s.N);
    t_quasr.push_back(seconds_since(t0));
    benchmark::DoNotOptimize(y.data());
    if (gemm_only) {
      t0 = thread_cpu_seconds();
      if (amx) quasr::kernels::detail::amx::int_gemm(ig, codes.data(), row_scales.data(), M, nullptr, y.data(), s.N);
      else quasr::kernels::detail::avx512vnni::int_gemm(ig, codes.data(), row_scales.data(), M, nullptr, y.data(), s.N);
      t_gemm.push_back(seconds_since(t0));
      benchmark::DoNotOptimize(y.data());
    }
#ifdef QUASR_HAVE_DNNL
    const std::pair<DnnlLinear*, std::vector<double>*> peers[] = {
        {d_int8.get(), &t_int8}, {d_bf16.get(), &t_bf16}, {d_f32.get(), &t_f32}};
    for (auto [d, t] : peers) {
      if (!d) continue;
      t0 = thread_cpu_seconds();
      d->run(it);
      t->push_back(seconds_since(t0));
    }
    if (d_int8_f32in) {
      t0 = thread_cpu_seconds();
      d_int8_f32in->run();
      t_int8_f32in.push_back(seconds_since(t0));
    }
#endif
    ++it;
  }
  const double q = median(t_quasr);
  state.counters["quasr_us"] = q * 1e6;
#ifdef QUASR_HAVE_DNNL
  const std::pair<const char*, std::vector<double>*> timed[] = {{"int8", &t_int8}, {"bf16", &t_bf16}, {"f32", &t_f32}};
  for (auto [name, t] : timed) {
    if (t->empty()) continue;
    const double peer_s = median(*t);
    state.counters[std::string("dnnl_") + name + "_us"] = peer_s * 1e6;
    state.counters[std::string("vs_dnnl_") + name] = peer_s / q;
  }
  if (gemm_only && !t_int8.empty()) state.counters["vs_dnnl_int8_gemm"] = median(t_int8) / median(t_gemm);
  if (!t_int8_f32in.empty()) {
    state.counters["dnnl_int8_f32in_us"] = median(t_int8_f32in) * 1e6;
    state.counters["vs_dnnl_int8_f32in"] = median(t_int8_f32in) / q;
  }
#endif
  if (gemm_only) state.counters["quasr_gemm_us"] = median(t_gemm) * 1e6;
  state.SetLabel(spec + " " + act.to_string() + (cold ? " cold x" + std::to_string(copies) : ""));
}

const bool registered = [] {
  const auto reg = quasr::kernels::kernel_registry();
  for (size_t i = 0; i < reg.size(); ++i) {
    if (std::string(reg[i].name) == "reference_scalar") continue;  // minutes per call at M = 1500
    for (const Shape& s : whisper_linear_shapes()) {
      for (int64_t M : {1, 4, 5, 1500})  // 5: a beam-5 decoder step
        benchmark::RegisterBenchmark(("Qlinear/" + std::string(reg[i].name) + "/" + s.name + "/M" +
                                      std::to_string(M)).c_str(),
                                     bm_qlinear, i, s, M, false)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      if (s.name.find("_fc") != std::string::npos)
        benchmark::RegisterBenchmark(("QlinearCold/" + std::string(reg[i].name) + "/" + s.name + "/M1").c_str(),
                                     bm_qlinear, i, s, int64_t{1}, true)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
  }
  return true;
}();

}  // namespace
