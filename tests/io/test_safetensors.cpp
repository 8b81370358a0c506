// safetensors reader/writer: round trip in every float type, header layout as the format specifies, and corrupt
// or truncated files (every cut point) give IoError naming the file and the tensor.
#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/io/file_util.h"
#include "quasr/io/safetensors.h"
#include "test_io_util.h"

namespace quasr::io {
namespace {
using testing::TempDir;
using testing::write_bytes;

TensorMap sample() {
  TensorMap t;
  t["model.w"] = Tensor{{2, 3}, DType::kF16, {1, -2, 0.5f, 3, 65504, -0.25f}};
  t["model.b"] = Tensor{{3}, DType::kF32, {0.1f, 0.2f, 1e-30f}};
  t["z.bf"] = Tensor{{1, 2}, DType::kBF16, {1.5f, -4}};
  t["empty"] = Tensor{{0, 4}, DType::kF32, {}};
  return t;
}

std::string error_of(const std::string& path) {
  try {
    read_safetensors(path);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripKeepsValuesTypesAndMetadata) {
  TempDir dir;
  write_safetensors(dir.file("m.safetensors"), sample(), {{"format", "pt"}});
  const SafetensorsFile f = read_safetensors(dir.file("m.safetensors"));
  EXPECT_EQ(f.metadata.at("format"), "pt");
  ASSERT_EQ(f.tensors.size(), sample().size());
  for (const auto& [name, t] : sample()) {
    EXPECT_EQ(f.tensors.at(name).shape, t.shape) << name;
    EXPECT_EQ(f.tensors.at(name).source_dtype, t.source_dtype) << name;
    EXPECT_EQ(f.tensors.at(name).values, t.values) << name;
  }
}

TEST(Safetensors, FileLayoutFollowsTheFormat) {
  TempDir dir;
  write_safetensors(dir.file("m.safetensors"), sample());
  const std::vector<uint8_t> b = read_file_bytes(dir.file("m.safetensors"));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(b[i]) << (8 * i);
  EXPECT_EQ(n % 8, 0u);  // data block 8-byte aligned
  const auto h = nlohmann::json::parse(b.begin() + 8, b.begin() + 8 + static_cast<long>(n));
  EXPECT_EQ(h["model.w"]["dtype"], "F16");
  EXPECT_EQ(h["model.w"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(h["z.bf"]["dtype"], "BF16");
  // Data of "model.w" (F16): 1.0 is 0x3C00 little-endian at its data offset.
  const uint64_t off = h["model.w"]["data_offsets"][0].get<uint64_t>();
  EXPECT_EQ(b[8 + n + off], 0x00);
  EXPECT_EQ(b[8 + n + off + 1], 0x3C);
  EXPECT_EQ(b.size(), 8 + n + 6 * 2 + 3 * 4 + 2 * 2);
}

TEST(Safetensors, ForcedDtypeConverts) {
  TempDir dir;
  const DType f32 = DType::kF32;
  write_safetensors(dir.file("m.safetensors"), sample(), {}, &f32);
  const SafetensorsFile f = read_safetensors(dir.file("m.safetensors"));
  EXPECT_EQ(f.tensors.at("model.w").source_dtype, DType::kF32);
  EXPECT_EQ(f.tensors.at("model.w").values, sample().at("model.w").values);
  TensorMap bad;
  bad["x"] = Tensor{{2}, DType::kI8, {1, 2}};
  EXPECT_THROW(write_safetensors(dir.file("i8.safetensors"), bad), InvalidArgument);
  bad["x"] = Tensor{{3}, DType::kF32, {1, 2}};
  EXPECT_THROW(write_safetensors(dir.file("short.safetensors"), bad), InvalidArgument);
}

TEST(Safetensors, EveryTruncationIsAnError) {
  TempDir dir;
  write_safetensors(dir.file("full.safetensors"), sample());
  const std::vector<uint8_t> full = read_file_bytes(dir.file("full.safetensors"));
  for (size_t n = 0; n < full.size(); ++n) {
    write_bytes(dir.file("cut.safetensors"), full, n);
    const std::string err = error_of(dir.file("cut.safetensors"));
    EXPECT_NE(err.find("cut.safetensors"), std::string::npos) << "cut at " << n << ": " << err;
  }
}

// Writes a file with the given header text and `data_bytes` zero bytes of data.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  write_bytes(path, b);
}

TEST(Safetensors, CorruptHeadersNameTheProblem) {
  TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  auto err = [&](const std::string& header, size_t data) {
    write_raw(p, header, data);
    return error_of(p);
  };
  EXPECT_NE(err("{not json", 0).find("not valid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8).find("unsupported dtype \"F64\""),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8).find("tensor 'a' shape and dtype need 12"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4).find("outside the data block"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)
                .find("overlaps"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8).find("hole"), std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8).find("after the last tensor"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4).find("tensor 'a'"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4).find("negative"), std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[1]}})", 4).find("lacks"), std::string::npos);
  // A header length larger than the file.
  std::vector<uint8_t> b = {0xFF, 0xFF, 0, 0, 0, 0, 0, 0, '{', '}'};
  write_bytes(p, b);
  EXPECT_NE(error_of(p).find("truncated"), std::string::npos);
  b = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  write_bytes(p, b);
  EXPECT_NE(error_of(p).find("implausible"), std::string::npos);
}

}  // namespace
}  // namespace quasr::io
