// Sensitivity files, the byte-budget allocator (against brute force; monotone in the budget) and the expansion
// of auto-bits=B,sens=FILE into per-tensor rules over tiny.en's tensor table.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "tiny_en_config.h"
#include "quasr/core/error.h"
#include "quasr/formats/qtensor.h"
#include "quasr/io/file_util.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/recipe.h"
#include "quasr/quant/sensitivity.h"

namespace quasr::quant {
namespace {

namespace fs = std::filesystem;

void expect_invalid(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no InvalidArgument; expected one mentioning '" << needle << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Exhaustive minimum over every combination (the allocator's reference).
double brute_force(const std::vector<std::vector<AllocationOption>>& items, int64_t budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> idx(items.size(), 0);
  while (true) {
    int64_t b = 0;
    double c = 0;
    for (size_t i = 0; i < items.size(); ++i) b += items[i][idx[i]].bytes, c += items[i][idx[i]].cost;
    if (b <= budget) best = std::min(best, c);
    size_t i = 0;
    while (i < items.size() && ++idx[i] == items[i].size()) idx[i++] = 0;
    if (i == items.size()) break;
  }
  return best;
}

std::vector<std::vector<AllocationOption>> random_items(std::mt19937_64& rng, int n, int max_options) {
  std::uniform_int_distribution<int> n_opt(1, max_options);
  std::uniform_int_distribution<int64_t> bytes(1, 40);
  std::uniform_real_distribution<double> cost(0.0, 1.0);
  std::vector<std::vector<AllocationOption>> items(static_cast<size_t>(n));
  for (auto& it : items) {
    const int k = n_opt(rng);
    for (int j = 0; j < k; ++j) it.push_back({bytes(rng), cost(rng)});
  }
  return items;
}

void check_choice(const std::vector<std::vector<AllocationOption>>& items, const Allocation& a) {
  ASSERT_EQ(a.choice.size(), items.size());
  int64_t b = 0;
  double c = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_GE(a.choice[i], 0);
    ASSERT_LT(a.choice[i], static_cast<int>(items[i].size()));
    b += items[i][a.choice[i]].bytes;
    c += items[i][a.choice[i]].cost;
  }
  EXPECT_EQ(b, a.bytes);
  EXPECT_NEAR(c, a.cost, 1e-12);
}

TEST(Allocator, MatchesBruteForce) {
  std::mt19937_64 rng(7);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const auto items = random_items(rng, 1 + trial % 7, 4);
    int64_t lo = 0, hi = 0;
    for (const auto& it : items) {
      int64_t mn = std::numeric_limits<int64_t>::max(), mx = 0;
      for (const auto& o : it) mn = std::min(mn, o.bytes), mx = std::max(mx, o.bytes);
      lo += mn, hi += mx;
    }
    std::uniform_int_distribution<int64_t> budget(lo, hi + 5);
    for (int b = 0; b < 4; ++b) {
      const int64_t B = budget(rng);
      const Allocation a = allocate_min_cost(items, B);
      check_choice(items, a);
      EXPECT_LE(a.bytes, B);
      EXPECT_NEAR(a.cost, brute_force(items, B), 1e-12) << "trial " << trial << " budget " << B;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 1600);
}

TEST(Allocator, MoreBytesNeverCostMore) {
  std::mt19937_64 rng(11);
  const auto items = random_items(rng, 24, 5);
  int64_t lo = 0, hi = 0;
  for (const auto& it : items) {
    int64_t mn = std::numeric_limits<int64_t>::max(), mx = 0;
    for (const auto& o : it) mn = std::min(mn, o.bytes), mx = std::max(mx, o.bytes);
    lo += mn, hi += mx;
  }
  double prev = std::numeric_limits<double>::infinity();
  for (int64_t B = lo; B <= hi; ++B) {
    const Allocation a = allocate_min_cost(items, B);
    check_choice(items, a);
    EXPECT_LE(a.bytes, B);
    EXPECT_LE(a.cost, prev) << "budget " << B;
    prev = a.cost;
  }
}

TEST(Allocator, Refusals) {
  const std::vector<std::vector<AllocationOption>> items = {{{10, 1.0}, {4, 2.0}}, {{6, 0.5}}};
  expect_invalid([&] { allocate_min_cost(items, 9); }, "cheapest choice needs 10 bytes");
  const std::vector<std::vector<AllocationOption>> empty = {{{1, 1.0}}, {}};
  expect_invalid([&] { allocate_min_cost(empty, 9); }, "item 1 has no option");
  EXPECT_EQ(allocate_min_cost(items, 10).choice, (std::vector<int>{1, 0}));
  EXPECT_EQ(allocate_min_cost(items, 16).choice, (std::vector<int>{0, 0}));
}

// ---- sens files and auto-bits over tiny.en's table ------------------------------------------------------------

models::WhisperConfig tiny_en() { return testing::tiny_en_config(); }

const std::string kSha(64, 'a');

// A synthetic sens file over the first `n` Linear tensors: KL falls with bits, and later layers matter less.
Sensitivity synthetic(size_t n) {
  Sensitivity s;
  s.model_sha256 = kSha;
  s.model = "tiny.en";
  s.data = "synthetic";
  s.utterances = 2;
  s.tokens = 100;
  s.proxy = "synthetic";
  size_t i = 0;
  for (const TensorInfo& t : models::whisper_quantizable_tensors(tiny_en())) {
    if (t.kind != TensorInfo::Kind::kLinear) continue;
    if (i++ == n) break;
    SensitivityTensor st;
    st.tensor = t;
    st.elements = t.shape[0] * t.shape[1];
    for (const char* f : {"int8:pc", "int4:g128", "int3:g128", "int2:g64"}) {
      SensitivityOption o;
      o.format = formats::QuantSpec::parse(f);
      o.bytes = static_cast<int64_t>(formats::expected_storage(o.format, t.shape).total());
      o.bits_per_weight = 8.0 * static_cast<double>(o.bytes) / static_cast<double>(st.elements);
      o.kl = std::pow(2.0, -o.bits_per_weight) / static_cast<double>(i);
      st.options.push_back(o);
    }
    s.tensors.push_back(std::move(st));
  }
  return s;
}

std::string temp_path(const std::string& name) { return (fs::path(::testing::TempDir()) / name).string(); }

TEST(SensitivityFile, RoundTrip) {
  const Sensitivity s = synthetic(5);
  const std::string p = temp_path("quasr_sens_roundtrip.json");
  s.save(p);
  const Sensitivity r = Sensitivity::load(p);
  EXPECT_EQ(r.model_sha256, s.model_sha256);
  EXPECT_EQ(r.data, s.data);
  EXPECT_EQ(r.utterances, 2);
  EXPECT_EQ(r.tokens, 100);
  ASSERT_EQ(r.tensors.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(r.tensors[i].tensor.name, s.tensors[i].tensor.name);
    EXPECT_EQ(r.tensors[i].tensor.role, s.tensors[i].tensor.role);
    EXPECT_EQ(r.tensors[i].tensor.layer, s.tensors[i].tensor.layer);
    EXPECT_EQ(r.tensors[i].tensor.shape, s.tensors[i].tensor.shape);
    ASSERT_EQ(r.tensors[i].options.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(r.tensors[i].options[k].format, s.tensors[i].options[k].format);
      EXPECT_EQ(r.tensors[i].options[k].bytes, s.tensors[i].options[k].bytes);
      EXPECT_EQ(r.tensors[i].options[k].kl, s.tensors[i].options[k].kl);  // JSON doubles round-trip exactly
    }
  }
  EXPECT_NO_THROW(r.check_model(kSha));
  expect_invalid([&] { r.check_model(std::string(64, 'b')); }, "measured on another model");
}

TEST(SensitivityFile, Rejections) {
  const std::string good = temp_path("quasr_sens_good.json");
  synthetic(3).save(good);
  const nlohmann::json base = io::read_json_file(good);
  auto rejects = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& needle) {
    nlohmann::json j = base;
    edit(j);
    const std::string p = temp_path("quasr_sens_bad.json");
    io::write_text_file_atomic(p, j.dump());
    expect_invalid([&] { Sensitivity::load(p); }, needle);
  };
  rejects([](auto& j) { j.erase("model_sha256"); }, "missing field 'model_sha256'");
  rejects([](auto& j) { j["format"] = "quasr-calibration"; }, "not a sensitivity file");
  rejects([](auto& j) { j["format_revision"] = 2; }, "format_revision 2 is not supported");
  rejects([](auto& j) { j["model_sha256"] = "xyz"; }, "64 lowercase hex");
  rejects([](auto& j) { j["tensors"][1].erase("role"); }, "tensors[1] (model.encoder.layers.0.self_attn.k_proj.weight): missing field 'role'");
  rejects([](auto& j) { j["tensors"][0]["options"][1]["kl"] = nullptr; }, "'kl' must be a finite number");
  rejects([](auto& j) { j["tensors"][0]["options"][1]["kl"] = -0.5; }, "kl must be >= 0");
  rejects([](auto& j) { j["tensors"][0]["options"][0]["bytes"] = 12; }, "differ from the");
  rejects([](auto& j) { j["tensors"][0]["options"][0]["format"] = "int4:g100"; }, "does not fit");
  rejects([](auto& j) { j["tensors"][2] = j["tensors"][0]; }, "tensor listed twice");
  rejects([](auto& j) { j["tensors"][0]["options"][1] = j["tensors"][0]["options"][0]; }, "listed twice");
  rejects([](auto& j) { j["tensors"] = nlohmann::json::array(); }, "non-empty array");
  rejects([](auto& j) { j["tensors"][0]["shape"] = {384}; }, "shape must be [out, K]");
}

TEST(AutoBits, ExpandsToPerTensorRules) {
  const Sensitivity s = synthetic(12);
  const std::string p = temp_path("quasr_sens_expand.json");
  s.save(p);
  const auto tensors = models::whisper_quantizable_tensors(tiny_en());
  // The step between neighbouring options, in bytes, bounds how far below the budget an optimum can stay.
  int64_t max_step = 0;
  for (const auto& t : s.tensors)
    for (size_t k = 0; k + 1 < t.options.size(); ++k)
      max_step = std::max(max_step, std::abs(t.options[k].bytes - t.options[k + 1].bytes));
  int64_t elements = 0;
  for (const auto& t : s.tensors) elements += t.elements;
  for (double bits : {2.6, 3.5, 4.2, 6.0}) {
    const Recipe r = Recipe::parse("auto-bits=" + std::to_string(bits) + ",sens=" + p);
    const auto plan = resolve_plan(r, tensors);
    int64_t bytes = 0;
    size_t quantized = 0;
    for (const PlanEntry& e : plan) {
      const bool in_file = std::any_of(s.tensors.begin(), s.tensors.end(),
                                       [&](const SensitivityTensor& t) { return t.tensor.name == e.tensor.name; });
      EXPECT_EQ(e.quantized, in_file) << e.tensor.name;
      if (!e.quantized) continue;
      ++quantized;
      bytes += static_cast<int64_t>(e.storage.total());
      EXPECT_EQ(e.why.rfind("name=" + e.tensor.name + ": w=", 0), 0u) << e.why;
    }
    EXPECT_EQ(quantized, s.tensors.size());
    const double budget = bits * static_cast<double>(elements) / 8.0;
    EXPECT_LE(static_cast<double>(bytes), budget) << bits;
    EXPECT_GE(static_cast<double>(bytes), budget - static_cast<double>(max_step)) << bits;
  }
  // Other clauses are kept: activations and the remaining tensors' global format.
  const auto plan = resolve_plan(Recipe::parse("w=int8:pc,a=int8-dyn-token;auto-bits=3,sens=" + p), tensors);
  for (const PlanEntry& e : plan) {
    if (e.tensor.kind != TensorInfo::Kind::kLinear) continue;
    EXPECT_TRUE(e.quantized) << e.tensor.name;
    EXPECT_EQ(e.act.mode, kernels::ActivationQuant::Mode::kDynamicPerToken);
  }
}

TEST(AutoBits, MixTextParsesBackToTheSamePlan) {
  const std::string p = temp_path("quasr_sens_mix.json");
  synthetic(8).save(p);
  const auto tensors = models::whisper_quantizable_tensors(tiny_en());
  const Recipe r = Recipe::parse("a=int8-dyn-token;auto-bits=3.5,sens=" + p);
  const std::string text = auto_mix_recipe_text(r, tensors, kSha);
  EXPECT_EQ(text.rfind("# auto-bits=3.5000 from " + p, 0), 0u) << text;
  const std::string file = temp_path("quasr_sens_mix.recipe");
  io::write_text_file_atomic(file, text);
  const auto a = resolve_plan(Recipe::from_argument("@" + file), tensors);
  const auto b = resolve_plan(r, tensors);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].quantized, b[i].quantized);
    if (a[i].quantized) {
      EXPECT_EQ(a[i].weight, b[i].weight) << a[i].tensor.name;
      EXPECT_EQ(a[i].act.mode, b[i].act.mode);
    }
  }
}

TEST(AutoBits, Errors) {
  const Sensitivity s = synthetic(4);
  const std::string p = temp_path("quasr_sens_errors.json");
  s.save(p);
  const auto tensors = models::whisper_quantizable_tensors(tiny_en());
  auto resolve = [&](const std::string& text) { resolve_plan(Recipe::parse(text), tensors); };
  expect_invalid([&] { resolve("auto-bits=1.5,sens=" + p); }, "outside what the measured formats reach: ");
  expect_invalid([&] { resolve("auto-bits=1.5,sens=" + p); }, " to 8.0");
  expect_invalid([&] { resolve("auto-bits=9,sens=" + p); }, "bits/weight over 4 tensors");
  expect_invalid([&] { resolve("auto-bits=4"); }, "auto-bits= needs sens=FILE");
  expect_invalid([&] { resolve("w=int8:pc,sens=" + p); }, "needs auto-bits=B");
  expect_invalid([&] { expand_auto_bits(Recipe::parse("auto-bits=4,sens=" + p), tensors, std::string(64, 'c')); },
                 "measured on another model");
  // A tensor this model does not have, and one with another shape.
  Sensitivity other = s;
  other.tensors[0].tensor.name = "model.encoder.layers.9.fc1.weight";
  other.save(p);
  expect_invalid([&] { resolve("auto-bits=4,sens=" + p); }, "unknown tensor model.encoder.layers.9.fc1.weight");
  models::WhisperConfig small = tiny_en();
  small.n_audio_ffn = small.n_text_ffn = 768;
  const auto small_tensors = models::whisper_quantizable_tensors(small);
  Sensitivity fc = synthetic(6);  // includes encoder layer 0 fc1 (1536x384)
  fc.save(p);
  expect_invalid([&] { resolve_plan(Recipe::parse("auto-bits=4,sens=" + p), small_tensors); }, "another shape");
  EXPECT_THROW(resolve("auto-bits=4,sens=" + temp_path("quasr_no_such_sens.json")), IoError);
}

}  // namespace
}  // namespace quasr::quant
