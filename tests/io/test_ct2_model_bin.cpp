// CTranslate2 model.bin reader/writer: byte-exact round trip of a real model, and corrupt or truncated files
// (every cut point of a small file) give IoError naming the file and the problem, never a crash.
#include <gtest/gtest.h>

#include <cstring>

#include "quasr/core/error.h"
#include "quasr/io/ct2_model_bin.h"
#include "quasr/io/file_util.h"
#include "test_io_util.h"

namespace quasr::io {
namespace {
using testing::TempDir;
using testing::write_bytes;

const std::string kTinyBin = std::string(QUASR_SOURCE_DIR) + "/models/tiny.en/model.bin";

Ct2ModelBin small_model() {
  Ct2ModelBin m;
  m.spec_name = "TestSpec";
  m.spec_revision = 7;
  m.variables["a/weight"] = Tensor{{2, 3}, DType::kF16, {1, -2, 0.5f, 3, 65504, -0.25f}};
  m.variables["a/bias"] = Tensor{{3}, DType::kF32, {0.1f, 0.2f, 0.3f}};
  m.variables["b/bf"] = Tensor{{2}, DType::kBF16, {1.5f, -4}};
  m.variables["num_heads"] = Tensor{{}, DType::kI16, {6}};
  m.variables["flag"] = Tensor{{}, DType::kI8, {-1}};
  m.variables["ids"] = Tensor{{2}, DType::kI32, {50257, -7}};
  m.aliases["c/weight"] = "a/weight";
  return m;
}

std::string error_of(const std::string& path) {
  try {
    read_ct2_model_bin(path);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(Ct2ModelBin, SmallModelRoundTrips) {
  TempDir dir;
  const Ct2ModelBin m = small_model();
  write_ct2_model_bin(dir.file("model.bin"), m);
  const Ct2ModelBin r = read_ct2_model_bin(dir.file("model.bin"));
  EXPECT_EQ(r.binary_version, kCt2BinaryVersion);
  EXPECT_EQ(r.spec_name, "TestSpec");
  EXPECT_EQ(r.spec_revision, 7u);
  ASSERT_EQ(r.variables.size(), m.variables.size());
  for (const auto& [name, t] : m.variables) {
    const Tensor& u = r.variables.at(name);
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(u.source_dtype, t.source_dtype) << name;
    EXPECT_EQ(u.values, t.values) << name;
  }
  ASSERT_NE(r.find("c/weight"), nullptr);
  EXPECT_EQ(r.find("c/weight")->values, m.variables.at("a/weight").values);
  EXPECT_EQ(r.find("nothing"), nullptr);
}

// Reading the converter's own file and writing it back reproduces it byte for byte: the reader understood every
// field (and the writer follows model_spec.py's layout and ordering).
TEST(Ct2ModelBin, RealModelRoundTripsByteForByte) {
  TempDir dir;
  const Ct2ModelBin m = read_ct2_model_bin(kTinyBin);
  EXPECT_EQ(m.spec_name, "WhisperSpec");
  EXPECT_EQ(m.spec_revision, 3u);
  EXPECT_EQ(m.aliases.at("decoder/projection/weight"), "decoder/embeddings/weight");
  write_ct2_model_bin(dir.file("model.bin"), m);
  EXPECT_TRUE(read_file_bytes(dir.file("model.bin")) == read_file_bytes(kTinyBin));
}

TEST(Ct2ModelBin, EveryTruncationIsAnError) {
  TempDir dir;
  write_ct2_model_bin(dir.file("full.bin"), small_model());
  const std::vector<uint8_t> full = read_file_bytes(dir.file("full.bin"));
  for (size_t n = 0; n < full.size(); ++n) {
    write_bytes(dir.file("cut.bin"), full, n);
    const std::string err = error_of(dir.file("cut.bin"));
    EXPECT_NE(err.find("cut.bin"), std::string::npos) << "cut at " << n << ": " << err;
  }
}

TEST(Ct2ModelBin, TruncatedRealModelIsAnError) {
  TempDir dir;
  const std::vector<uint8_t> full = read_file_bytes(kTinyBin);
  for (size_t n : {size_t{2}, size_t{30}, full.size() / 3, full.size() - 40, full.size() - 1}) {
    write_bytes(dir.file("model.bin"), full, n);
    const std::string err = error_of(dir.file("model.bin"));
    EXPECT_NE(err.find("truncated"), std::string::npos) << "cut at " << n << ": " << err;
  }
}

// Offset of the first variable's fields in small_model()'s file: after version, spec name, revision, count.
struct Layout {
  std::vector<uint8_t> bytes;
  size_t first_var;  // offset of the first variable's name length
};
Layout small_layout(const std::string& path) {
  write_ct2_model_bin(path, small_model());
  return {read_file_bytes(path), 4 + 2 + std::strlen("TestSpec") + 1 + 4 + 4};
}

TEST(Ct2ModelBin, CorruptFieldsNameTheProblem) {
  TempDir dir;
  const std::string p = dir.file("model.bin");
  Layout l = small_layout(dir.file("orig.bin"));
  // First variable in name order is "a/bias" (rank 1, f32): name len(2) + "a/bias\0"(7) + rank(1) + dim(4) ...
  const size_t rank_at = l.first_var + 2 + 7, dim_at = rank_at + 1, dtype_at = dim_at + 4, nbytes_at = dtype_at + 1;
  auto with = [&](size_t at, std::vector<uint8_t> patch) {
    std::vector<uint8_t> b = l.bytes;
    std::copy(patch.begin(), patch.end(), b.begin() + static_cast<long>(at));
    write_bytes(p, b);
    return error_of(p);
  };
  EXPECT_NE(with(0, {5, 0, 0, 0}).find("unsupported CTranslate2 binary version 5"), std::string::npos);
  EXPECT_NE(with(dtype_at, {9}).find("unknown dtype id 9"), std::string::npos);
  // A huge dimension must be rejected from the sizes alone (no allocation of 4 G floats).
  EXPECT_NE(with(dim_at, {0xFF, 0xFF, 0xFF, 0xFF}).find("'a/bias' has shape [4294967295]"), std::string::npos);
  EXPECT_NE(with(nbytes_at, {13, 0, 0, 0}).find("but 13 data bytes"), std::string::npos);
  EXPECT_NE(with(l.first_var, {0, 0}).find("length 0"), std::string::npos);
  EXPECT_NE(with(l.first_var - 4, {0xFF, 0xFF, 0xFF, 0x7F}).find("variables cannot fit"), std::string::npos);
  std::vector<uint8_t> trailing = l.bytes;
  trailing.push_back(0);
  write_bytes(p, trailing);
  EXPECT_NE(error_of(p).find("unexpected bytes"), std::string::npos);
  EXPECT_NE(error_of(dir.file("absent.bin")).find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace quasr::io
