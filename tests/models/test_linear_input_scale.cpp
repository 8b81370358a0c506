// The per-Linear input transform (AWQ's input_scale, Linear::input_scale in src/models/whisper_model_layers.h):
// applied before the product in the FP32, native and simulation paths alike, after the calibration observer.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "../../src/models/whisper_model_layers.h"
#include "quasr/formats/qtensor.h"
#include "quasr/kernels/qlinear.h"
#include "quasr/quant/quantized_weight.h"
#include "quasr/quant/recipe.h"

namespace quasr::models {
namespace {

using detail::Linear;

std::vector<float> randn(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

struct FirstRow final : LinearInputObserver {
  std::vector<float> row;
  void observe(const std::string&, const float* x, int64_t, int64_t, int64_t k) override { row.assign(x, x + k); }
};

TEST(LinearInputScale, MultipliesTheInputInEveryPathAndTheObserverSeesItUntransformed) {
  const int64_t rows = 7, in = 64, out = 24, ldx = 70;
  const std::vector<float> x = randn(rows * ldx, 1), w = randn(out * in, 2, -0.2f, 0.2f), bias = randn(out, 3);
  const std::vector<float> m = randn(in, 4, 0.25f, 4.0f);
  std::vector<float> xm(rows * in);  // the transformed input, dense
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < in; ++j) xm[r * in + j] = x[r * ldx + j] * m[j];

  const std::vector<int64_t> shape{out, in};
  const formats::QTensor q = formats::quantize(w, shape, formats::QuantSpec::parse("int8:pc"));
  auto native = std::make_shared<quant::QuantizedWeight>();
  native->qtensor = q;
  native->act = quant::parse_activation("int8-dyn-token");
  native->prepared = kernels::prepare_weight(q, native->act);
  auto simulated = std::make_shared<quant::QuantizedWeight>();
  simulated->qtensor = q;
  simulated->act = native->act;
  quant::prepare_integer_simulation(*simulated);

  struct Path {
    const char* name;
    std::vector<float> weight;
    std::shared_ptr<const quant::QuantizedWeight> quant;
  };
  std::vector<std::vector<float>> quantized_outputs;
  for (const Path& p : {Path{"fp32", w, nullptr}, Path{"native", {}, native}, Path{"simulated", q.dequantize(), simulated}}) {
    Linear plain;
    plain.out = out, plain.in = in, plain.weight = p.weight, plain.bias = bias, plain.quant = p.quant;
    Linear scaled = plain;
    scaled.input_scale = m;
    FirstRow seen;
    scaled.observer = &seen;
    std::vector<float> want(rows * out), got(rows * out);
    plain.forward(xm.data(), rows, in, want.data(), out);
    scaled.forward(x.data(), rows, ldx, got.data(), out);
    EXPECT_EQ(got, want) << p.name << ": (x * input_scale) W^T differs from the transform done by hand";
    EXPECT_EQ(seen.row, std::vector<float>(x.begin(), x.begin() + in)) << p.name << ": the observer saw a transformed input";
    if (p.quant) quantized_outputs.push_back(got);
  }
  // Integer x integer: native kernels and the simulation stay bit-exact with the transform in place.
  ASSERT_EQ(quantized_outputs.size(), 2u);
  EXPECT_EQ(quantized_outputs[0], quantized_outputs[1]);
}

}  // namespace
}  // namespace quasr::models
