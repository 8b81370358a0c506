// The calibration file: exact round trip (shared inputs stored once), every truncation and corruption rejected with a
// message naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/io/file_util.h"
#include "quasr/io/safetensors.h"
#include "quasr/quant/calibration.h"

namespace quasr::quant {
namespace {

namespace fs = std::filesystem;

InputStats stats(int64_t k, int64_t rows, uint64_t seed, const CollectOptions& opt) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows * k));
  for (float& v : x) v = static_cast<float>(rng.normal());
  InputStatsAccumulator acc(k, opt, seed);
  acc.add(x.data(), rows, k);
  return acc.finish();
}

Calibration sample(const CollectOptions& opt) {
  Calibration c;
  c.model_sha256 = std::string(64, 'a');
  c.data = "LibriSpeech mini-calib, 3 utterances, seed 0";
  c.utterances = 3;
  c.options = opt;
  c.inputs["model.encoder.layers.0.self_attn.q_proj.weight"] = stats(6, 40, 1, opt);
  // k and v share q's input: equal statistics, stored once.
  c.inputs["model.encoder.layers.0.self_attn.k_proj.weight"] = c.inputs["model.encoder.layers.0.self_attn.q_proj.weight"];
  c.inputs["model.encoder.layers.0.self_attn.v_proj.weight"] = c.inputs["model.encoder.layers.0.self_attn.q_proj.weight"];
  c.inputs["model.encoder.layers.0.fc2.weight"] = stats(10, 25, 2, opt);
  return c;
}

std::string tmp(const std::string& name) {
  return (fs::path(::testing::TempDir()) / ("quasr_calib_" + name)).string();
}

std::string load_error(const std::string& path) {
  try {
    Calibration::load(path);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

// A plain write (no fsync): the truncation test writes thousands of files.
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

TEST(CalibrationFile, RoundTripIsExactAndSharedInputsAreStoredOnce) {
  CollectOptions opt;
  opt.max_samples = 16;
  opt.hist_bins = 8;
  opt.seed = 5;
  const Calibration c = sample(opt);
  const std::string path = tmp("roundtrip.safetensors");
  c.save(path);
  const Calibration r = Calibration::load(path);
  EXPECT_EQ(r.model_sha256, c.model_sha256);
  EXPECT_EQ(r.data, c.data);
  EXPECT_EQ(r.utterances, c.utterances);
  EXPECT_EQ(r.options, c.options);
  ASSERT_EQ(r.inputs.size(), c.inputs.size());
  for (const auto& [name, s] : c.inputs) EXPECT_TRUE(r.at(name) == s) << name;
  // Two groups of six tensors: q/k/v once, fc2 once.
  EXPECT_EQ(io::read_safetensors_raw(path).tensors.size(), 12u);
  // Saving what was loaded gives the same bytes.
  const std::string again = tmp("roundtrip2.safetensors");
  r.save(again);
  EXPECT_EQ(io::read_file_bytes(path), io::read_file_bytes(again));
  EXPECT_NO_THROW(r.check_model(std::string(64, 'a')));
  EXPECT_THROW(r.check_model(std::string(64, 'b'), path), InvalidArgument);
  try {
    r.at("model.decoder.layers.0.fc1.weight");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("model.decoder.layers.0.fc1.weight"), std::string::npos);
  }
}

TEST(CalibrationFile, EveryTruncationIsRejected) {
  CollectOptions opt;
  opt.max_samples = 4;
  opt.hist_bins = 4;
  const std::string path = tmp("full.safetensors"), cut = tmp("cut.safetensors");
  sample(opt).save(path);
  const std::vector<uint8_t> bytes = io::read_file_bytes(path);
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(cut, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    const std::string err = load_error(cut);
    ASSERT_NE(err, "") << "a file truncated to " << n << " of " << bytes.size() << " bytes was accepted";
    EXPECT_NE(err.find(cut), std::string::npos) << err;
  }
}

TEST(CalibrationFile, CorruptionIsRejectedWithAClearMessage) {
  CollectOptions opt;
  opt.max_samples = 4;
  opt.hist_bins = 4;
  const std::string path = tmp("good.safetensors"), bad = tmp("bad.safetensors");
  sample(opt).save(path);
  const std::vector<uint8_t> bytes = io::read_file_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  auto with_replaced = [&](const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    std::string t = text;
    t.replace(at, from.size(), to);  // same length keeps the header length valid
    EXPECT_EQ(t.size(), text.size());
    write_bytes(bad, std::vector<uint8_t>(t.begin(), t.end()));
    return load_error(bad);
  };
  EXPECT_NE(with_replaced("format_revision\\\":1", "format_revision\\\":7").find("revision 7"), std::string::npos);
  EXPECT_NE(with_replaced("\"U64\"", "\"I64\"").find("expected U64"), std::string::npos);
  EXPECT_NE(with_replaced("quasr.calibration", "quasr.calibratioN").find("no \"quasr.calibration\" metadata"),
            std::string::npos);
  EXPECT_NE(with_replaced("{\"", "[\"").find("not valid JSON"), std::string::npos);
  EXPECT_NE(with_replaced("\\\"rows\\\":40", "\\\"rows\\\":41").find("histogram counts"), std::string::npos);
  // A flipped bit anywhere in the tensor data fails the checksum.
  std::vector<uint8_t> flipped = bytes;
  flipped[bytes.size() - 3] ^= 0x10;
  write_bytes(bad, flipped);
  EXPECT_NE(load_error(bad).find("checksum"), std::string::npos) << load_error(bad);
  // Not a calibration file at all.
  io::write_text_file_atomic(bad, "hello");
  EXPECT_NE(load_error(bad), "");
  EXPECT_THROW(Calibration::load(tmp("does_not_exist.safetensors")), IoError);
}

}  // namespace
}  // namespace quasr::quant
