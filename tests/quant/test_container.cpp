// The .quasr container: round trip, every truncation, corrupt fields, unknown revision; SHA-256 vectors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/io/file_util.h"
#include "quasr/quant/container.h"
#include "quasr/quant/recipe.h"

namespace quasr::quant {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// A small container covering every section kind: zero points (int4:g32:zp), a codebook (kmeans4), NVFP4's tensor
// scale, an FP16 and an FP32 dense tensor.
Container sample() {
  Container c;
  const std::vector<int64_t> shape{16, 64};
  const auto x = random_values(16 * 64, 1);
  for (const char* spec : {"int4:g32:zp", "kmeans4:pt", "nvfp4", "int8:pc", "mxfp4"})
    c.quantized[std::string("w.") + spec] = {formats::quantize(x, shape, formats::QuantSpec::parse(spec)),
                                            parse_activation("int8-dyn-token")};
  io::Tensor t;
  t.shape = {3, 5};
  t.values = random_values(15, 2);
  c.dense["dense.f32"] = t;
  t.source_dtype = io::DType::kF16;
  for (auto& v : t.values) v = 0.5f;  // exactly representable
  c.dense["dense.f16"] = t;
  c.recipe = "w4a8-g128;name=x*: skip";
  c.source_sha256 = std::string(64, 'a');
  c.extra["whisper.config"] = "{}";
  return c;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("quasr_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string read_error(const std::string& path) {
  try {
    read_container(path);
  } catch (const IoError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Container, RoundTripGivesIdenticalTensors) {
  const std::string path = temp_path("rt.quasr");
  const Container c = sample();
  write_container(path, c);
  const Container r = read_container(path);
  ASSERT_EQ(r.quantized.size(), c.quantized.size());
  for (const auto& [name, ct] : c.quantized) {
    const auto& q = r.quantized.at(name);
    EXPECT_EQ(q.q.spec, ct.q.spec) << name;
    EXPECT_EQ(q.q.shape, ct.q.shape) << name;
    EXPECT_EQ(q.q.serialize(), ct.q.serialize()) << name;  // every byte of every section, tensor scale included
    EXPECT_EQ(activation_text(q.act), activation_text(ct.act));
  }
  EXPECT_EQ(r.dense.at("dense.f32").values, c.dense.at("dense.f32").values);
  EXPECT_EQ(r.dense.at("dense.f16").values, c.dense.at("dense.f16").values);
  EXPECT_EQ(r.dense.at("dense.f16").source_dtype, io::DType::kF16);
  EXPECT_EQ(r.recipe, c.recipe);
  EXPECT_EQ(r.source_sha256, c.source_sha256);
  EXPECT_EQ(r.extra, c.extra);
  // No temp file is left next to the container.
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(e.path().string().find(path + ".tmp"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(Container, EveryTruncationIsRejected) {
  const std::string path = temp_path("trunc.quasr"), cut = temp_path("cut.quasr");
  write_container(path, sample());
  const auto bytes = io::read_file_bytes(path);
  for (size_t n = 0; n < bytes.size(); n += (n < 4096 ? 1 : 97)) {
    io::write_file_atomic(cut, std::span(bytes.data(), n));
    EXPECT_NE(read_error(cut), "(no error)") << "truncated to " << n << " bytes";
  }
  std::filesystem::remove(path);
  std::filesystem::remove(cut);
}

// Rewrites the header with `edit` applied, keeping the data block.
std::string with_header(const std::vector<uint8_t>& bytes, const std::function<void(nlohmann::json&)>& edit) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  nlohmann::json h = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  edit(h);
  std::string hs = h.dump();
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(uint64_t(hs.size()) >> (8 * i));
  out.insert(out.end(), hs.begin(), hs.end());
  out.insert(out.end(), bytes.begin() + 8 + n, bytes.end());
  const std::string path = temp_path("edited.quasr");
  io::write_file_atomic(path, out);
  return path;
}

TEST(Container, CorruptFieldsAreRejectedWithAClearError) {
  const std::string path = temp_path("corrupt.quasr");
  write_container(path, sample());
  const auto bytes = io::read_file_bytes(path);
  auto tensors = [](nlohmann::json& h) -> nlohmann::json {
    return nlohmann::json::parse(h["__metadata__"]["quasr.tensors"].get<std::string>());
  };
  auto set_tensors = [](nlohmann::json& h, const nlohmann::json& t) { h["__metadata__"]["quasr.tensors"] = t.dump(); };
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"revision", [](auto& h) { h["__metadata__"]["quasr.revision"] = "2"; }, "unknown container revision '2'"},
      {"format", [](auto& h) { h["__metadata__"]["quasr.format"] = "x"; }, "quasr.format"},
      {"no metadata", [](auto& h) { h.erase("__metadata__"); }, "no __metadata__"},
      {"spec text",
       [&](auto& h) { auto t = tensors(h); t["w.int8:pc"]["spec"] = "int8:bogus"; set_tensors(h, t); },
       "tensor 'w.int8:pc': bad format entry"},
      {"spec changes sizes",
       [&](auto& h) { auto t = tensors(h); t["w.int8:pc"]["spec"] = "int4:pc"; set_tensors(h, t); },
       "payload holds 1024 bytes"},
      {"shape", [&](auto& h) { auto t = tensors(h); t["w.mxfp4"]["shape"] = {16, 60}; set_tensors(h, t); },
       "w.mxfp4"},
      {"activation", [&](auto& h) { auto t = tensors(h); t["w.mxfp4"]["act"] = "int3-dyn"; set_tensors(h, t); },
       "bad format entry"},
      {"tensor scale", [&](auto& h) { auto t = tensors(h); t["w.nvfp4"].erase("tensor_scale"); set_tensors(h, t); },
       "missing tensor_scale"},
      {"dtype", [](auto& h) { h["dense.f32"]["dtype"] = "I64"; }, "unsupported dtype 'I64'"},
      {"offsets", [](auto& h) { h["dense.f32"]["data_offsets"][1] = 1u << 30; }, "outside the data block"},
      {"orphan section", [](auto& h) {
         h["w.zz#payload"] = h["w.mxfp4#payload"];
         h.erase("w.mxfp4#payload");
       }, "belongs to no tensor"},
      {"missing section", [](auto& h) { h.erase("w.int4:g32:zp#zero_points"); }, "gap or overlap"},
  };
  for (const Case& c : cases) {
    const std::string p = with_header(bytes, c.edit);
    const std::string err = read_error(p);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
    EXPECT_NE(err.find("not a valid quasr container"), std::string::npos) << c.what << ": " << err;
    std::filesystem::remove(p);
  }
  // Garbage in the length field and in the JSON.
  auto b = bytes;
  b[7] = 0x7f;
  io::write_file_atomic(path, b);
  EXPECT_NE(read_error(path).find("header length"), std::string::npos);
  b = bytes;
  b[8] = '[';
  io::write_file_atomic(path, b);
  EXPECT_NE(read_error(path).find("not valid JSON"), std::string::npos) << read_error(path);
  std::filesystem::remove(path);
}

// A real model file against Python's hashlib.
TEST(ContainerSourceHash, MatchesHashlibOnModelBin) {
  const std::string model = std::string(QUASR_SOURCE_DIR) + "/models/tiny.en/model.bin";
  const std::string out = temp_path("sha.txt");
  const std::string cmd = std::string(QUASR_SOURCE_DIR) + "/.venv/bin/python -c \"import hashlib,sys;print(hashlib."
                          "sha256(open(sys.argv[1],'rb').read()).hexdigest())\" " + model + " > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto b = io::read_file_bytes(out);
  EXPECT_EQ(sha256_file_hex(model), std::string(b.begin(), b.begin() + 64));
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace quasr::quant
