// The .quasr container: round trip, every truncation, corrupt fields, unknown revision, input scales (revision 2),
// input rotations (revision 3); SHA-256 vectors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
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

// The safetensors header of a container file: its length (the first 8 bytes, little-endian) and its JSON.
uint64_t header_length(const std::vector<uint8_t>& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  return n;
}
nlohmann::json header_of(const std::vector<uint8_t>& bytes) {
  const uint64_t n = header_length(bytes);
  return nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
}
std::string revision_of(const std::string& path) {
  return header_of(io::read_file_bytes(path))["__metadata__"]["quasr.revision"].get<std::string>();
}

// Rewrites the header with `edit` applied, keeping the data block.
std::string with_header(const std::vector<uint8_t>& bytes, const std::function<void(nlohmann::json&)>& edit) {
  const uint64_t n = header_length(bytes);
  nlohmann::json h = header_of(bytes);
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

// One corruption of a container's header and the error it must give.
struct HeaderEdit {
  const char* what;
  std::function<void(nlohmann::json&)> edit;
  const char* expect;
};
// Each edit of `bytes` (a valid container) is rejected with an error naming the problem.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::vector<HeaderEdit>& edits) {
  for (const HeaderEdit& c : edits) {
    const std::string p = with_header(bytes, c.edit);
    const std::string err = read_error(p);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
    EXPECT_NE(err.find("not a valid quasr container"), std::string::npos) << c.what << ": " << err;
    std::filesystem::remove(p);
  }
}

// quasr.tensors of a header, parsed, and written back.
nlohmann::json tensors_of(nlohmann::json& h) {
  return nlohmann::json::parse(h["__metadata__"]["quasr.tensors"].get<std::string>());
}
void set_tensors(nlohmann::json& h, const nlohmann::json& t) { h["__metadata__"]["quasr.tensors"] = t.dump(); }

TEST(Container, CorruptFieldsAreRejectedWithAClearError) {
  const std::string path = temp_path("corrupt.quasr");
  write_container(path, sample());
  const auto bytes = io::read_file_bytes(path);
  expect_rejected(bytes, {
      {"revision", [](auto& h) { h["__metadata__"]["quasr.revision"] = "4"; }, "unknown container revision '4'"},
      {"format", [](auto& h) { h["__metadata__"]["quasr.format"] = "x"; }, "quasr.format"},
      {"no metadata", [](auto& h) { h.erase("__metadata__"); }, "no __metadata__"},
      {"spec text",
       [&](auto& h) { auto t = tensors_of(h); t["w.int8:pc"]["spec"] = "int8:bogus"; set_tensors(h, t); },
       "tensor 'w.int8:pc': bad format entry"},
      {"spec changes sizes",
       [&](auto& h) { auto t = tensors_of(h); t["w.int8:pc"]["spec"] = "int4:pc"; set_tensors(h, t); },
       "payload holds 1024 bytes"},
      {"shape", [&](auto& h) { auto t = tensors_of(h); t["w.mxfp4"]["shape"] = {16, 60}; set_tensors(h, t); },
       "w.mxfp4"},
      {"activation", [&](auto& h) { auto t = tensors_of(h); t["w.mxfp4"]["act"] = "int3-dyn"; set_tensors(h, t); },
       "bad format entry"},
      {"tensor scale", [&](auto& h) { auto t = tensors_of(h); t["w.nvfp4"].erase("tensor_scale"); set_tensors(h, t); },
       "missing tensor_scale"},
      {"dtype", [](auto& h) { h["dense.f32"]["dtype"] = "I64"; }, "unsupported dtype 'I64'"},
      {"offsets", [](auto& h) { h["dense.f32"]["data_offsets"][1] = 1u << 30; }, "outside the data block"},
      {"orphan section", [](auto& h) {
         h["w.zz#payload"] = h["w.mxfp4#payload"];
         h.erase("w.mxfp4#payload");
       }, "belongs to no tensor"},
      {"missing section", [](auto& h) { h.erase("w.int4:g32:zp#zero_points"); }, "gap or overlap"},
  });
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

// A container with input scales (AWQ): on a quantized and on a dense tensor.
Container with_input_scales() {
  Container c = sample();
  std::vector<float> s(64);
  for (size_t j = 0; j < s.size(); ++j) s[j] = 0.25f + 0.01f * static_cast<float>(j);
  c.input_scales["w.int8:pc"] = s;
  c.input_scales["dense.f32"] = {1.0f, 2.0f, 0.5f, 3.0f, 0.125f};
  return c;
}

TEST(Container, InputScalesRoundTripAsRevision2AndOtherFilesStayRevision1) {
  const std::string path = temp_path("scales.quasr"), again = temp_path("scales2.quasr");
  const Container c = with_input_scales();
  write_container(path, c);
  const Container r = read_container(path);
  EXPECT_EQ(r.input_scales, c.input_scales);
  write_container(again, r);
  EXPECT_EQ(io::read_file_bytes(again), io::read_file_bytes(path)) << "save(load(x)) is not x";
  EXPECT_EQ(revision_of(path), "2");
  write_container(again, sample());  // no input scales: the revision earlier builds read
  EXPECT_EQ(revision_of(again), "1");
  EXPECT_TRUE(read_container(again).input_scales.empty());
  // Every truncation of a file with input scales is rejected too.
  const auto bytes = io::read_file_bytes(path);
  for (size_t n = 0; n < bytes.size(); n += 13) {
    io::write_file_atomic(again, std::span(bytes.data(), n));
    EXPECT_NE(read_error(again), "(no error)") << "truncated to " << n << " bytes";
  }
  // The writer refuses what the reader would.
  Container bad = sample();
  bad.input_scales["w.int8:pc"] = std::vector<float>(63, 1.0f);
  EXPECT_THROW(write_container(again, bad), InvalidArgument);
  bad.input_scales["w.int8:pc"] = std::vector<float>(64, 1.0f);
  bad.input_scales["w.int8:pc"][5] = std::nanf("");
  EXPECT_THROW(write_container(again, bad), InvalidArgument);
  std::filesystem::remove(path);
  std::filesystem::remove(again);
}

TEST(Container, MissingWrongOrNonFiniteInputScalesAreRejectedNamingThem) {
  const std::string path = temp_path("scales_bad.quasr");
  write_container(path, with_input_scales());
  const auto bytes = io::read_file_bytes(path);
  auto list = [](nlohmann::json& h, const nlohmann::json& names) {
    h["__metadata__"]["quasr.input_scales"] = names.dump();
  };
  expect_rejected(bytes, {
      {"listed but missing", [&](auto& h) { list(h, {"dense.f32", "w.int8:pc", "w.mxfp4"}); },
       "input scale of tensor 'w.mxfp4' (w.mxfp4#input_scale, listed in quasr.input_scales) is missing"},
      {"not listed", [&](auto& h) { list(h, {"dense.f32"}); }, "'w.int8:pc#input_scale' is not listed"},
      {"no list", [](auto& h) { h["__metadata__"].erase("quasr.input_scales"); }, "lacks 'quasr.input_scales'"},
      {"revision 1", [](auto& h) { h["__metadata__"]["quasr.revision"] = "1"; }, "need container revision 2"},
      {"wrong length", [&](auto& h) {
         // dense.f32's 5 scales presented as those of w.int8:pc (K = 64), and the other way round.
         std::swap(h["dense.f32#input_scale"], h["w.int8:pc#input_scale"]);
       }, "input scale of tensor 'dense.f32' has 64 values, the tensor's reduction dimension K is 5"},
      {"wrong dtype", [](auto& h) {
         h["dense.f32#input_scale"]["dtype"] = "U8";  // the same 20 bytes as U8
         h["dense.f32#input_scale"]["shape"] = {20};
       }, "'dense.f32#input_scale' is not a 1-D F32 tensor"},
      {"no such tensor", [&](auto& h) {
         h["w.zz#input_scale"] = h["dense.f32#input_scale"];
         h.erase("dense.f32#input_scale");
         list(h, {"w.int8:pc", "w.zz"});
       }, "input scale of tensor 'w.zz' belongs to no tensor"},
  });
  // A non-finite value in the data: overwrite dense.f32's third scale with a NaN.
  const uint64_t n = header_length(bytes);
  const auto h = header_of(bytes);
  const uint64_t at = 8 + n + h["dense.f32#input_scale"]["data_offsets"][0].get<uint64_t>() + 2 * 4;
  auto b = bytes;
  const float nan = std::nanf("");
  std::memcpy(b.data() + at, &nan, 4);
  io::write_file_atomic(path, b);
  EXPECT_NE(read_error(path).find("input scale of tensor 'dense.f32' holds"), std::string::npos) << read_error(path);
  EXPECT_NE(read_error(path).find("at index 2"), std::string::npos) << read_error(path);
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

TEST(Container, HadamardRotationsRoundTripAsRevision3AndBadBlocksAreRejected) {
  const std::string path = temp_path("rot.quasr"), again = temp_path("rot2.quasr");
  Container c = with_input_scales();
  c.quantized.at("w.int8:pc").hadamard_block = 64;
  c.quantized.at("w.mxfp4").hadamard_block = 16;
  write_container(path, c);
  const Container r = read_container(path);
  for (const auto& [name, ct] : c.quantized) EXPECT_EQ(r.quantized.at(name).hadamard_block, ct.hadamard_block) << name;
  EXPECT_EQ(r.input_scales, c.input_scales);
  write_container(again, r);
  EXPECT_EQ(io::read_file_bytes(again), io::read_file_bytes(path)) << "save(load(x)) is not x";
  const auto bytes = io::read_file_bytes(path);
  EXPECT_EQ(revision_of(path), "3");
  // Without input scales a rotated file is still revision 3 and lists no scales.
  Container plain = sample();
  plain.quantized.at("w.nvfp4").hadamard_block = 32;
  write_container(again, plain);
  EXPECT_EQ(read_container(again).quantized.at("w.nvfp4").hadamard_block, 32);
  EXPECT_TRUE(read_container(again).input_scales.empty());

  auto set_block = [](nlohmann::json& h, const nlohmann::json& b) {
    auto t = tensors_of(h);
    t["w.int8:pc"]["hadamard"] = b;
    set_tensors(h, t);
  };
  expect_rejected(bytes, {
      {"revision 2", [](auto& h) { h["__metadata__"]["quasr.revision"] = "2"; },
       "tensor 'w.int8:pc': input rotations need container revision 3, this file says 2"},
      {"not a power of two", [&](auto& h) { set_block(h, 48); }, "Hadamard block 48 is not a power of two >= 2"},
      {"does not divide K", [&](auto& h) { set_block(h, 128); }, "dividing the reduction dimension 64"},
      {"block 1", [&](auto& h) { set_block(h, 1); }, "Hadamard block 1 is not"},
      {"negative", [&](auto& h) { set_block(h, -64); }, "Hadamard block -64 is not"},
      {"not a number", [&](auto& h) { set_block(h, "64"); }, "tensor 'w.int8:pc': bad format entry"},
  });
  // The writer refuses what the reader would.
  Container bad = sample();
  bad.quantized.at("w.int8:pc").hadamard_block = 24;
  EXPECT_THROW(write_container(again, bad), InvalidArgument);
  std::filesystem::remove(path);
  std::filesystem::remove(again);
}

}  // namespace
}  // namespace quasr::quant
