// Recipe syntax, presets, error positions, and plan resolution over tiny.en's spec table.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tiny_en_config.h"
#include "quasr/core/error.h"
#include "quasr/models/whisper_quantized.h"
#include "quasr/quant/recipe.h"

namespace quasr::quant {
namespace {

using formats::FormatId;
using formats::GranularityKind;
using Mode = kernels::ActivationQuant::Mode;

models::WhisperConfig tiny_en() { return testing::tiny_en_config(); }

std::string error_of(const std::string& text) {
  try {
    Recipe::parse(text);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

std::string resolve_error(const std::string& text) {
  try {
    resolve_plan(Recipe::parse(text), models::whisper_quantizable_tensors(tiny_en()));
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

const PlanEntry& entry(const std::vector<PlanEntry>& plan, const std::string& name) {
  for (const auto& e : plan)
    if (e.tensor.name == name) return e;
  throw std::runtime_error("no plan entry " + name);
}

TEST(Recipe, ParsesGlobalSchemeAndRules) {
  const Recipe r = Recipe::parse(
      "w=int4:g128,a=int8-dyn-token ; encoder.layers[0-2]: w=int4:g64 ; role=attn_*: w=int8:pc ; name=*fc2*: skip;"
      "conv=on,embed=off,kv=fp32");
  ASSERT_TRUE(r.weight);
  EXPECT_EQ(r.weight->format, FormatId::kInt4);
  EXPECT_EQ(r.weight->granularity.group, 128);
  EXPECT_EQ(r.act.mode, Mode::kDynamicPerToken);
  EXPECT_EQ(r.act.format, FormatId::kInt8);
  EXPECT_TRUE(r.conv);
  EXPECT_FALSE(r.embed);
  ASSERT_EQ(r.rules.size(), 3u);
  EXPECT_EQ(r.rules[0].selector.kind, Selector::Kind::kStack);
  EXPECT_EQ(r.rules[0].selector.first, 0);
  EXPECT_EQ(r.rules[0].selector.last, 2);
  EXPECT_EQ(r.rules[1].selector.kind, Selector::Kind::kRole);
  EXPECT_EQ(r.rules[1].selector.pattern, "attn_*");
  EXPECT_TRUE(r.rules[2].skip);
}

TEST(Recipe, PresetsExpandToTheirText) {
  for (const Preset& p : presets()) {
    const Recipe a = Recipe::parse(p.name), b = Recipe::parse(p.text);
    ASSERT_TRUE(a.weight) << p.name;
    EXPECT_EQ(*a.weight, *b.weight) << p.name;
    EXPECT_EQ(activation_text(a.act), activation_text(b.act)) << p.name;
  }
  const Recipe r = Recipe::parse("w4a8-g128");
  EXPECT_EQ(r.weight->to_string(), formats::QuantSpec::parse("int4:g128").to_string());
  EXPECT_EQ(activation_text(r.act), "int8-dyn-token");
}

TEST(Recipe, ActivationTextRoundTrips) {
  for (const char* t : {"none", "int8-dyn-token", "int8-dyn-tensor", "int4-dyn-token", "fp8_e4m3-dyn-token",
                        "int8-static:0.0125"})
    EXPECT_EQ(activation_text(parse_activation(t)), t);
  EXPECT_EQ(activation_text(parse_activation("fp8-dyn-tensor")), "fp8_e4m3-dyn-tensor");
  EXPECT_FLOAT_EQ(parse_activation("int8-static:0.0125").static_scale, 0.0125f);
}

// Errors name the column and the offending token.
TEST(Recipe, ErrorsPointAtTheOffendingToken) {
  EXPECT_NE(error_of("w=int4:g128,a=int8-dyn-tokn").find("column 20, at 'dyn-tokn'"), std::string::npos)
      << error_of("w=int4:g128,a=int8-dyn-tokn");
  EXPECT_NE(error_of("w=int4:q128").find("column 3, at 'int4:q128'"), std::string::npos) << error_of("w=int4:q128");
  EXPECT_NE(error_of("w8a8;encoder.layers[2-x]: w=int8").find("column 21, at '2-x'"), std::string::npos)
      << error_of("w8a8;encoder.layers[2-x]: w=int8");
  EXPECT_NE(error_of("w8a8; foo=3").find("column 7, at 'foo'"), std::string::npos) << error_of("w8a8; foo=3");
  EXPECT_NE(error_of("w8a9").find("column 1, at 'w8a9'"), std::string::npos) << error_of("w8a9");
  EXPECT_NE(error_of("w8a8;role=attn_q w=int8").find("missing ':'"), std::string::npos);
  EXPECT_NE(error_of("w8a8,conv=maybe").find("column 11, at 'maybe'"), std::string::npos) << error_of("w8a8,conv=maybe");
  EXPECT_NE(error_of("w8a8;decoder: kv=int8").find("column 15"), std::string::npos) << error_of("w8a8;decoder: kv=int8");
  EXPECT_NE(error_of("w=int8,a=int2-dyn-token").find("supported: int8, int4, fp8_e4m3"), std::string::npos)
      << error_of("w=int8,a=int2-dyn-token");
  EXPECT_NE(resolve_error("w=int8,a=int8-static").find("without a scale"), std::string::npos)
      << resolve_error("w=int8,a=int8-static");
  EXPECT_NE(error_of("skip").find("skip needs a selector"), std::string::npos);
  EXPECT_NE(error_of("").find("empty recipe"), std::string::npos);
  EXPECT_NE(error_of("w8a8,,kv=fp32").find("column 6"), std::string::npos) << error_of("w8a8,,kv=fp32");
}

TEST(Recipe, PostTrainingSettingsParseAndTheirErrorsPointAtTheToken) {
  const Recipe r = Recipe::parse("w=int4:g128,algo=gptq,calib=c.qcal,gptq-damp=0.02,gptq-block=64,act-order=on");
  EXPECT_EQ(r.ptq.algo, "gptq");
  EXPECT_EQ(r.ptq.calib, "c.qcal");
  EXPECT_FLOAT_EQ(r.ptq.gptq_damp, 0.02f);
  EXPECT_EQ(r.ptq.gptq_block, 64);
  EXPECT_TRUE(r.ptq.act_order);
  const Recipe s = Recipe::parse("w8a8,smooth=0.5,calib=x,calibrator=percentile:99.9,rotate=hadamard");
  EXPECT_FLOAT_EQ(*s.ptq.smooth, 0.5f);
  EXPECT_EQ(s.ptq.calibrator, "percentile:99.9");
  EXPECT_EQ(s.ptq.rotate, "hadamard");
  EXPECT_NE(error_of("w8a8,smooth=1.5").find("column 13, at '1.5'"), std::string::npos) << error_of("w8a8,smooth=1.5");
  EXPECT_NE(error_of("w8a8,algo=gtpq").find("column 11, at 'gtpq'"), std::string::npos) << error_of("w8a8,algo=gtpq");
  EXPECT_NE(error_of("w8a8,calibrator=entropy").find("at 'entropy'"), std::string::npos);
  EXPECT_NE(error_of("w8a8;decoder: algo=gptq").find("not to a rule"), std::string::npos);
  EXPECT_NE(resolve_error("w=int4:g128,algo=gptq").find("needs calib=FILE"), std::string::npos)
      << resolve_error("w=int4:g128,algo=gptq");
  EXPECT_NE(resolve_error("w=int4:g128,auto-bits=4.5").find("needs sens=FILE"), std::string::npos);
}

// Settings that do not combine are refused with the keys named, never silently ignored; what the pipeline applies
// resolves (the calibration file itself is read by the pipeline, models::quantize_whisper, not by resolve_plan).
TEST(Recipe, PostTrainingSettingsThatDoNotCombineAreRefusedNamingTheKey) {
  EXPECT_EQ(resolve_error("w=int4:g128,algo=gptq,calib=c.cal,gptq-damp=0.02,act-order=on"), "(no error)");
  EXPECT_EQ(resolve_error("w=int8:pc,a=int8-static,calib=c.cal,calibrator=mse"), "(no error)");
  EXPECT_EQ(resolve_error("w=int4:g128,algo=awq,calib=c.cal"), "(no error)");
  EXPECT_EQ(resolve_error("w8a8,smooth=0.5,calib=c.cal"), "(no error)");
  EXPECT_EQ(resolve_error("w8a8,rotate=hadamard"), "(no error)");
  EXPECT_EQ(resolve_error("w=int3:g128,algo=gptq,calib=c.cal,rotate=hadamard"), "(no error)");
  EXPECT_NE(resolve_error("w8a8,smooth=0.5").find("smooth= needs calib=FILE"), std::string::npos);
  for (const auto& [recipe, key] : std::vector<std::pair<std::string, std::string>>{
           // A rotation works with RTN and GPTQ, weight-only or with dynamic activations; what needs channel
           // statistics of the rotated input is refused.
           {"w=int4:g128,algo=awq,calib=c.cal,rotate=hadamard", "rotate=hadamard does not combine with algo=awq"},
           {"w8a8,smooth=0.5,calib=c.cal,rotate=hadamard", "rotate=hadamard does not combine with smooth="},
           {"w=int8:pc,a=int8-static,calib=c.cal,calibrator=max,rotate=hadamard",
            "does not combine with static activation scales (calibrator=max)"},
           {"w=int8:pc,rotate=hadamard;encoder: a=int8-static:0.05",
            "has static activations (a=int8-static:0.05), which do not combine with rotate=hadamard"},
           // auto-bits= and sens= are implemented (quant/sensitivity.h); alone, each names the other.
           {"w8a8,sens=s.json", "sens=s.json needs auto-bits=B"},
           {"w8a8,auto-bits=4.5", "auto-bits= needs sens=FILE"}}) {
    const std::string e = resolve_error(recipe);
    EXPECT_NE(e.find(key), std::string::npos) << recipe << ": " << e;
  }
  EXPECT_NE(resolve_error("w=int4:g128,gptq-block=64").find("apply to algo=gptq, not algo=rtn"), std::string::npos)
      << resolve_error("w=int4:g128,gptq-block=64");
}

TEST(Recipe, FileSyntaxIsTheSameWithCommentsAndLines) {
  const std::string path = std::filesystem::temp_directory_path() / "quasr_test_recipe.txt";
  {
    std::ofstream f(path);
    f << "# mixed precision\nw=int8:pc, a=int8-dyn-token\nencoder.layers[0-2]: w=int4:g128  # first 3 layers\n";
  }
  const Recipe r = Recipe::from_argument("@" + path);
  EXPECT_EQ(r.weight->format, FormatId::kInt8);
  ASSERT_EQ(r.rules.size(), 1u);
  EXPECT_EQ(r.rules[0].weight->format, FormatId::kInt4);
  EXPECT_EQ(Recipe::from_argument(path).rules.size(), 1u);
  {
    std::ofstream f(path);
    f << "w=int8:pc\nencoder.layers[0-2]: w=int4:g12x\n";
  }
  try {
    Recipe::from_argument(path);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, column 24, at 'int4:g12x'"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(Recipe, GlobMatches) {
  EXPECT_TRUE(glob_match("attn_*", "attn_q"));
  EXPECT_TRUE(glob_match("*fc2*", "model.encoder.layers.0.fc2.weight"));
  EXPECT_TRUE(glob_match("cross_?", "cross_k"));
  EXPECT_FALSE(glob_match("cross_?", "cross_out"));
  EXPECT_FALSE(glob_match("attn_*", "cross_q"));
}

// The Conformer study's mixed-precision example: INT4 for the first 3 encoder layers, INT8 elsewhere, keep
// self-attention at INT8; later rules override earlier ones.
TEST(Plan, MixedPrecisionOverTinyEnSpecTable) {
  const auto tensors = models::whisper_quantizable_tensors(tiny_en());
  const auto plan = resolve_plan(
      Recipe::parse("w=int8:pc,a=int8-dyn-token; encoder.layers[0-2]: w=int4:g128; role=attn_*: w=int8:pc; "
                    "name=*decoder.layers.3.fc2*: skip"),
      tensors);
  ASSERT_EQ(plan.size(), tensors.size());
  // 4 encoder layers x 6 + 4 decoder layers x 10 Linear matrices + conv1, conv2 + token embedding.
  EXPECT_EQ(plan.size(), 4u * 6 + 4u * 10 + 3);
  const auto& fc1_0 = entry(plan, "model.encoder.layers.0.fc1.weight");
  EXPECT_TRUE(fc1_0.quantized);
  EXPECT_EQ(fc1_0.weight.format, FormatId::kInt4);
  EXPECT_EQ(fc1_0.act.mode, Mode::kDynamicPerToken);
  EXPECT_EQ(entry(plan, "model.encoder.layers.3.fc1.weight").weight.format, FormatId::kInt8);
  EXPECT_EQ(entry(plan, "model.encoder.layers.1.self_attn.q_proj.weight").weight.format, FormatId::kInt8);
  EXPECT_EQ(entry(plan, "model.encoder.layers.1.self_attn.q_proj.weight").why, "role=attn_*: w=int8:pc");
  EXPECT_EQ(entry(plan, "model.decoder.layers.0.encoder_attn.q_proj.weight").weight.format, FormatId::kInt8);
  EXPECT_FALSE(entry(plan, "model.decoder.layers.3.fc2.weight").quantized);
  EXPECT_TRUE(entry(plan, "model.decoder.layers.2.fc2.weight").quantized);
  EXPECT_FALSE(entry(plan, "model.encoder.conv1.weight").quantized);  // conv=off by default
  EXPECT_FALSE(entry(plan, "model.decoder.embed_tokens.weight").quantized);
  // Exact sizes: INT4 g128 over [1536][384]: 4 bits + one FP16 scale per 128 weights.
  EXPECT_EQ(fc1_0.storage.payload, 1536u * 384 / 2);
  EXPECT_EQ(fc1_0.storage.scales, 1536u * 3 * 2);
  EXPECT_DOUBLE_EQ(fc1_0.storage.bits_per_weight(), 4.125);
  EXPECT_NE(format_plan(plan).find("total:"), std::string::npos);
}

TEST(Plan, SwitchesSelectConvAndEmbedding) {
  const auto plan = resolve_plan(Recipe::parse("w=int8:pc,conv=on,embed=on"),
                                 models::whisper_quantizable_tensors(tiny_en()));
  EXPECT_TRUE(entry(plan, "model.encoder.conv1.weight").quantized);
  EXPECT_EQ(entry(plan, "model.encoder.conv1.weight").tensor.shape, (std::vector<int64_t>{384, 240}));
  EXPECT_TRUE(entry(plan, "model.decoder.embed_tokens.weight").quantized);
}

TEST(Plan, RejectsGroupsThatDoNotDivideAndUnknownRoles) {
  // conv1's reduction dim is 80 mels x 3 taps = 240, which 128 does not divide.
  const std::string e1 = resolve_error("w=int4:g128,conv=on");
  EXPECT_NE(e1.find("model.encoder.conv1.weight: group size 128 does not divide its reduction dimension K = 240"),
            std::string::npos) << e1;
  const std::string e2 = resolve_error("w=int4:g100");
  EXPECT_NE(e2.find("group size 100 does not divide"), std::string::npos) << e2;
  EXPECT_NE(e2.find("K = 384"), std::string::npos) << e2;
  const std::string e3 = resolve_error("w8a8;role=atn_*: skip");
  EXPECT_NE(e3.find("role pattern 'atn_*' matches no role; roles are attn_k"), std::string::npos) << e3;
  EXPECT_NE(resolve_error("w8a8;encoder.layers[7]: skip").find("selects no tensor"), std::string::npos);
  // Every parsed KV precision resolves (the runtime stores the caches at it); an unknown one fails at parse time.
  for (const char* kv : {"w8a8,kv=fp16", "w8a8,kv=int8", "w8a8,kv=fp8", "kv=int8"}) EXPECT_EQ(resolve_error(kv), "(no error)") << kv;
  const std::string e4 = error_of("w8a8,kv=int4");
  EXPECT_NE(e4.find("KV cache precision must be fp32, fp16, int8 or fp8"), std::string::npos) << e4;
  EXPECT_NE(e4.find("column 9, at 'int4'"), std::string::npos) << e4;
  const std::string e5 = resolve_error("w=int4:pc1");
  EXPECT_NE(e5.find("per output channel"), std::string::npos) << e5;
}

}  // namespace
}  // namespace quasr::quant
