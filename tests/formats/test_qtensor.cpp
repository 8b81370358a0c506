// Bit packing, block indexing and the serialized form of QTensor, including corrupt and truncated input.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "format_test_util.h"
#include "quasr/core/error.h"

namespace quasr::formats {
namespace {

using testing::gaussian;

TEST(Packing, RoundTripsEveryWidthAtOddLengths) {
  Rng rng(3);
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t count : {0u, 1u, 2u, 3u, 5u, 7u, 8u, 9u, 13u, 31u, 33u, 63u, 65u, 1001u}) {
      std::vector<uint8_t> codes(count);
      for (uint8_t& c : codes) c = static_cast<uint8_t>(rng.below(1u << bits));
      const std::vector<uint8_t> packed = pack_bits(codes, bits);
      ASSERT_EQ(packed.size(), packed_bytes(count, bits)) << bits << " " << count;
      EXPECT_EQ(unpack_bits(packed, bits, count), codes) << bits << " bits, " << count << " codes";
    }
  }
}

TEST(Packing, LayoutIsTheDocumentedLsbFirstStream) {
  // 4-bit: element 2j in the low nibble of byte j.
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{0x1, 0xA, 0x3}, 4), (std::vector<uint8_t>{0xA1, 0x03}));
  // 2-bit: element 4j in bits 0-1.
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{1, 2, 3, 0, 2}, 2), (std::vector<uint8_t>{0b00111001, 0b10}));
  // 3-bit codes straddle bytes: 5,6,7 -> bits 101 110 111 -> stream 101,110,111 from bit 0.
  // byte0 = (5) | (6 << 3) | ((7 & 3) << 6) = 5 + 48 + 192 = 245; byte1 = 7 >> 2 = 1.
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{5, 6, 7}, 3), (std::vector<uint8_t>{245, 1}));
  // 6-bit: 0x3F, 0x01 -> byte0 = 0x3F | (1 << 6) = 0x7F, byte1 = 0.
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{0x3F, 0x01}, 6), (std::vector<uint8_t>{0x7F, 0x00}));
}

TEST(Packing, RejectsBadArguments) {
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{1}, 0), InvalidArgument);
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{1}, 9), InvalidArgument);
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{16}, 4), InvalidArgument);  // does not fit
  EXPECT_THROW(unpack_bits(std::vector<uint8_t>{1}, 4, 3), InvalidArgument);  // too few bytes
  EXPECT_THROW(unpack_bits(std::vector<uint8_t>{1}, -1, 1), InvalidArgument);
}

TEST(Blocks, IndexingPerGranularity) {
  const std::vector<int64_t> shape = {2, 3, 4};
  EXPECT_EQ(num_blocks(shape, {GranularityKind::kPerTensor, 0, 0}), 1);
  EXPECT_EQ(num_blocks(shape, {GranularityKind::kPerChannel, 1, 0}), 3);
  EXPECT_EQ(num_blocks(shape, {GranularityKind::kPerGroup, 0, 2}), 12);
  // flat 13 = [1, 0, 1]
  EXPECT_EQ(block_index(shape, {GranularityKind::kPerChannel, 0, 0}, 13), 1);
  EXPECT_EQ(block_index(shape, {GranularityKind::kPerChannel, 1, 0}, 13), 0);
  EXPECT_EQ(block_index(shape, {GranularityKind::kPerChannel, 2, 0}, 13), 1);
  EXPECT_EQ(block_index(shape, {GranularityKind::kPerGroup, 0, 2}, 13), 6);
  EXPECT_THROW(block_index(shape, {GranularityKind::kPerChannel, 3, 0}, 0), InvalidArgument);
  EXPECT_THROW(block_index(shape, {GranularityKind::kPerGroup, 0, 3}, 0), InvalidArgument);
  EXPECT_THROW(block_index(shape, {GranularityKind::kPerTensor, 0, 0}, 24), InvalidArgument);
}

class Serialized : public ::testing::Test {
 protected:
  QTensor make(const char* spec) {
    return quantize(gaussian(6 * 64, 11), std::vector<int64_t>{6, 64}, QuantSpec::parse(spec));
  }
};

TEST_F(Serialized, HeaderLayoutAsDocumented) {
  const QTensor q = make("int4:g32:zp");
  const std::vector<uint8_t> b = q.serialize();
  ASSERT_GE(b.size(), 12u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "QSRT");
  EXPECT_EQ(b[4], 1);  // revision 1, little-endian
  const std::string text = q.spec.to_string();
  EXPECT_EQ(b[8], text.size());
  EXPECT_EQ(std::string(b.begin() + 12, b.begin() + 12 + text.size()), text);
  EXPECT_EQ(q.header_bytes(), 4 + 4 + 4 + text.size() + 4 + 2 * 8 + 5 * 8);
}

TEST_F(Serialized, TruncationAtEveryLengthThrowsIoError) {
  for (const char* spec : {"int4:g32:zp", "nvfp4", "kmeans3:pc", "bf16"}) {
    const std::vector<uint8_t> b = make(spec).serialize();
    for (size_t len = 0; len < b.size(); ++len)
      EXPECT_THROW(QTensor::deserialize(std::span<const uint8_t>(b.data(), len)), IoError) << spec << " " << len;
    std::vector<uint8_t> longer = b;
    longer.push_back(0);
    EXPECT_THROW(QTensor::deserialize(longer), IoError) << spec << " trailing byte";
  }
}

TEST_F(Serialized, CorruptHeaderFieldsThrowIoError) {
  const QTensor q = make("int4:g32");
  const std::vector<uint8_t> good = q.serialize();
  auto expect_io = [&](auto mutate, const char* what) {
    std::vector<uint8_t> b = good;
    mutate(b);
    EXPECT_THROW(QTensor::deserialize(b), IoError) << what;
  };
  expect_io([](auto& b) { b[0] = 'X'; }, "magic");
  expect_io([](auto& b) { b[4] = 2; }, "revision");
  expect_io([](auto& b) { b[8] = 0; }, "spec length 0");
  expect_io([](auto& b) { b[9] = 0xFF; }, "spec length huge");
  expect_io([](auto& b) { b[12] = 'q'; }, "spec text");           // "qnt4:g32"
  expect_io([](auto& b) { b[18] = '5'; }, "spec group g52");       // group does not divide 64
  expect_io([](auto& b) { b[17] = 'm'; b[18] = 'a'; b[19] = 'x'; }, "spec text 'int4:max' parses but is not canonical");
  const size_t rank_at = 12 + q.spec.to_string().size();
  expect_io([&](auto& b) { b[rank_at] = 0; }, "rank 0");
  expect_io([&](auto& b) { b[rank_at] = 9; }, "rank 9");
  expect_io([&](auto& b) { b[rank_at + 4] = 0; }, "dim 0");
  expect_io([&](auto& b) { b[rank_at + 4] = 7; }, "dim changed: sizes no longer match");
  expect_io([&](auto& b) { b[rank_at + 4 + 16] ^= 1; }, "payload size");
  expect_io([&](auto& b) { b[rank_at + 4 + 24] ^= 1; }, "scales size");
  expect_io([&](auto& b) { b[rank_at + 4 + 32] = 1; }, "zero-point size");
}

TEST_F(Serialized, CorruptSectionContentsThrowIoError) {
  {  // FP16 scale set to NaN (0x7E00)
    const QTensor q = make("int4:g32");
    std::vector<uint8_t> b = q.serialize();
    const size_t at = q.header_bytes() + q.payload.size();
    b[at] = 0x00;
    b[at + 1] = 0x7E;
    EXPECT_THROW(QTensor::deserialize(b), IoError);
    b[at + 1] = 0xBC;  // negative scale
    EXPECT_THROW(QTensor::deserialize(b), IoError);
  }
  {  // E8M0 NaN scale
    const QTensor q = make("mxfp4");
    std::vector<uint8_t> b = q.serialize();
    b[q.header_bytes() + q.payload.size()] = 0xFF;
    EXPECT_THROW(QTensor::deserialize(b), IoError);
  }
  {  // NVFP4 tensor scale NaN / zero; E4M3 block scale NaN
    const QTensor q = make("nvfp4");
    std::vector<uint8_t> b = q.serialize();
    const size_t ts = b.size() - 4;
    std::vector<uint8_t> c = b;
    c[ts] = c[ts + 1] = c[ts + 2] = c[ts + 3] = 0;
    EXPECT_THROW(QTensor::deserialize(c), IoError);
    c = b;
    c[ts + 3] = 0x7F;
    c[ts + 2] = 0xC0;
    EXPECT_THROW(QTensor::deserialize(c), IoError);
    c = b;
    c[q.header_bytes() + q.payload.size()] = 0x7F;  // E4M3 NaN
    EXPECT_THROW(QTensor::deserialize(c), IoError);
  }
  {  // FP8 E4M3 element NaN code
    const QTensor q = make("fp8_e4m3:pc");
    std::vector<uint8_t> b = q.serialize();
    b[q.header_bytes() + 5] = 0xFF;
    EXPECT_THROW(QTensor::deserialize(b), IoError);
  }
  {  // Inf in FP32 storage
    const QTensor q = make("fp32");
    std::vector<uint8_t> b = q.serialize();
    const size_t at = q.header_bytes() + 8;
    b[at] = 0;
    b[at + 1] = 0;
    b[at + 2] = 0x80;
    b[at + 3] = 0x7F;
    EXPECT_THROW(QTensor::deserialize(b), IoError);
  }
  {  // non-finite codebook entry
    const QTensor q = make("kmeans2:pc");
    std::vector<uint8_t> b = q.serialize();
    const size_t at = q.header_bytes() + q.payload.size() + 1;
    b[at] = 0x7C;  // high byte of an FP16 -> Inf/NaN
    EXPECT_THROW(QTensor::deserialize(b), IoError);
  }
  {  // nonzero padding bits after the last 3-bit code (6*64*3 bits = 144 bytes exactly: use an odd shape)
    const QTensor q = quantize(gaussian(7, 1), std::vector<int64_t>{7}, QuantSpec::parse("int3:pt"));
    std::vector<uint8_t> b = q.serialize();
    ASSERT_EQ(q.payload.size(), 3u);  // 21 bits
    b[q.header_bytes() + 2] |= 0x80;
    EXPECT_THROW(QTensor::deserialize(b), IoError);
  }
}

TEST_F(Serialized, RandomByteFlipsNeverCrash) {
  // Any single corrupted byte either throws IoError or yields a tensor that dequantizes without trouble
  // (a flipped code inside the payload is indistinguishable from a real one). ASan/UBSan watch this.
  Rng rng(99);
  for (const char* spec : {"int4:g32:zp", "mxfp6_e3m2", "nvfp4", "kmeans4:pc", "fp16", "nf4:pc1"}) {
    const std::vector<uint8_t> good = make(spec).serialize();
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<uint8_t> b = good;
      b[rng.below(b.size())] ^= static_cast<uint8_t>(1 + rng.below(255));
      try {
        const QTensor q = QTensor::deserialize(b);
        const std::vector<float> y = q.dequantize();
        for (float v : y) ASSERT_TRUE(std::isfinite(v)) << spec;
      } catch (const IoError&) {
      }
    }
  }
}

TEST(QTensorApi, DequantizeChecksItsArguments) {
  QTensor q = quantize(gaussian(64, 1), std::vector<int64_t>{2, 32}, QuantSpec::parse("int4:g32"));
  std::vector<float> small(10);
  EXPECT_THROW(q.dequantize(small), InvalidArgument);
  q.payload.pop_back();  // hand-broken tensor: sections no longer match spec and shape
  EXPECT_THROW(q.dequantize(), InvalidArgument);
  EXPECT_THROW(q.serialize(), InvalidArgument);  // never writes bytes deserialize would reject
  QTensor empty;
  EXPECT_THROW(empty.dequantize(), InvalidArgument);
  EXPECT_THROW(empty.serialize(), InvalidArgument);
  QTensor huge = quantize(gaussian(64, 1), std::vector<int64_t>{2, 32}, QuantSpec::parse("int8:pt"));
  huge.shape = {int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_THROW(huge.numel(), InvalidArgument);
  EXPECT_THROW(huge.serialize(), InvalidArgument);
  EXPECT_THROW(huge.dequantize(), InvalidArgument);
}


// slice_rows is how a quantized token embedding is looked up without a dequantized copy: every format and
// granularity, odd row widths for the codes that straddle bytes (3 and 6 bits), zero points and codebooks.
TEST(QTensorApi, SliceRowsDequantizesToTheSameRows) {
  struct Case {
    const char* spec;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {"int8:pc", {9, 33}},        {"int8:pt", {5, 7}},          {"int4:g32:zp", {6, 64}},
      {"int4:pt", {5, 7}},         {"int3:pt", {7, 11}},         {"int3:g32:zp", {5, 96}},
      {"int2:g16", {4, 48}},       {"fp8_e4m3:pc", {5, 9}},      {"fp8_e5m2:pt", {3, 5}},
      {"fp4_e2m1:g32", {4, 64}},   {"nvfp4", {6, 48}},           {"mxfp4", {5, 64}},
      {"mxfp6_e3m2", {3, 96}},     {"mxfp8_e4m3", {4, 32}},      {"nf4:g64", {3, 128}},
      {"nf4:pc1", {5, 6}},         {"kmeans4:pc", {6, 20}},      {"kmeans3:pt", {7, 13}},
      {"kmeans2:pc", {4, 9}},      {"int8:pc1", {4, 10}},        {"bf16", {5, 3}},
      {"fp16", {4, 7}},            {"int4:g32", {2, 3, 64}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    const QuantSpec spec = QuantSpec::parse(c.spec);
    const int64_t n = testing::numel(c.shape), rows = c.shape[0], w = n / rows;
    const QTensor q = quantize(testing::with_outliers(n, 7), c.shape, spec);
    const std::vector<float> all = q.dequantize();
    for (int64_t r0 = 0; r0 < rows; ++r0)
      for (int64_t r1 = r0 + 1; r1 <= rows; r1 += 2) {
        const QTensor s = slice_rows(q, r0, r1);
        ASSERT_EQ(s.shape[0], r1 - r0);
        const std::vector<float> part = s.dequantize();
        ASSERT_EQ(part.size(), static_cast<size_t>((r1 - r0) * w));
        // Compared as bits: a slice is the same codes and scales, so the same values, -0 and all.
        ASSERT_EQ(0, std::memcmp(part.data(), all.data() + r0 * w, part.size() * sizeof(float)))
            << "rows [" << r0 << ", " << r1 << ")";
      }
  }
}

TEST(QTensorApi, SliceRowsRejectsBadRanges) {
  const QTensor q = quantize(gaussian(64, 1), std::vector<int64_t>{2, 32}, QuantSpec::parse("int4:g32"));
  EXPECT_THROW(slice_rows(q, 0, 3), InvalidArgument);
  EXPECT_THROW(slice_rows(q, -1, 1), InvalidArgument);
  EXPECT_THROW(slice_rows(q, 1, 1), InvalidArgument);
  const QTensor v = quantize(gaussian(32, 1), std::vector<int64_t>{32}, QuantSpec::parse("int4:g32"));
  EXPECT_THROW(slice_rows(v, 0, 1), InvalidArgument);
  QTensor broken = q;
  broken.scales.pop_back();
  EXPECT_THROW(slice_rows(broken, 0, 1), InvalidArgument);
}

}  // namespace
}  // namespace quasr::formats
