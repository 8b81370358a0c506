// Cross-check against an independent reference: tests/formats/reference_formats.py implements the format
// definitions in numpy with ml_dtypes' element casts (not quasr's codecs). Dequantized values must match
// bit for bit. Needs the project's .venv (scripts/setup.sh installs numpy and ml_dtypes).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "format_test_util.h"

namespace quasr::formats {
namespace {

namespace fs = std::filesystem;

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& x);

// Runs the reference for every spec in one process; returns specs.size() * x.size() values (empty on failure).
std::vector<float> python_reference(const std::vector<std::string>& specs, const std::vector<float>& x,
                                    int64_t rows, int64_t cols) {
  const fs::path dir = fs::temp_directory_path() / ("quasr_ref_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path in = dir / "in.f32", out = dir / "out.f32";
  {
    std::ofstream f(in, std::ios::binary);
    f.write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
  }
  const std::string src = QUASR_SOURCE_DIR;
  std::string cmd = src + "/.venv/bin/python " + src + "/tests/formats/reference_formats.py " +
                    std::to_string(rows) + " " + std::to_string(cols) + " " + in.string() + " " + out.string();
  for (const std::string& s : specs) cmd += " '" + s + "'";
  const int rc = std::system(cmd.c_str());
  std::vector<float> y;
  if (rc == 0) {
    y.resize(x.size() * specs.size());
    std::ifstream f(out, std::ios::binary);
    f.read(reinterpret_cast<char*>(y.data()), static_cast<std::streamsize>(y.size() * sizeof(float)));
    if (!f) y.clear();
  }
  fs::remove_all(dir);
  return y;
}

void compare_all(const std::vector<std::string>& specs, const std::vector<float>& x,
                 const std::vector<int64_t>& shape) {
  const int64_t rows = shape.size() == 2 ? shape[0] : 1, cols = shape.back();
  const std::vector<float> ref = python_reference(specs, x, rows, cols);
  ASSERT_EQ(ref.size(), x.size() * specs.size()) << "reference script failed";
  for (size_t k = 0; k < specs.size(); ++k) {
    SCOPED_TRACE(specs[k]);
    const std::vector<float> want(ref.begin() + k * x.size(), ref.begin() + (k + 1) * x.size());
    expect_same_bits(quantize(x, shape, QuantSpec::parse(specs[k])).dequantize(), want, x);
  }
}

// Bitwise equality (so -0 vs +0 and NaN would both show), reporting the first differences.
void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& x) {
  ASSERT_EQ(got.size(), want.size());
  int shown = 0;
  size_t diffs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    // Compare values; +0 and -0 are the same number (the reference's products may differ in the sign of 0).
    if (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) continue;
    ++diffs;
    if (shown++ < 5) ADD_FAILURE() << "index " << i << ": x=" << x[i] << " quasr=" << got[i] << " ref=" << want[i];
  }
  EXPECT_EQ(diffs, 0u);
}

class PythonReference : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(std::string(QUASR_SOURCE_DIR) + "/.venv/bin/python"))
      GTEST_SKIP() << "no .venv (run scripts/setup.sh); the reference needs numpy and ml_dtypes";
  }
};

TEST_F(PythonReference, DequantizedValuesMatchBitForBit) {
  const int64_t rows = 16, cols = 256;
  std::vector<float> x = testing::with_outliers(rows * cols, 2024);
  for (float& v : x) v *= 0.05f;                       // weight-like magnitudes
  for (int64_t c = 0; c < cols; ++c) x[3 * cols + c] = 0.0f;  // an all-zero row (zero blocks)
  for (int64_t i = 0; i < rows * cols; i += 37) x[i] = 0.0f;
  compare_all({"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "nvfp4", "fp8_e4m3:pc", "fp8_e5m2:pc",
               "fp6_e3m2:g32", "fp6_e2m3:g32", "fp4_e2m1:g32", "int4:g128", "int8:pc", "int3:pt", "int2:g32",
               "int4:g32:s=bf16", "int8:pc:s=fp32", "int4:g64:zp", "int8:pc:zp", "int5:pt:zp", "nf4:g64",
               "nf4:pc:s=fp32", "fp16", "bf16"},
              x, {rows, cols});
}

TEST_F(PythonReference, StorageSaturationMatches) {
  const std::vector<float> x = {1e6f, -1e6f, 65519.0f, 65521.0f, 3.4e38f, -3.39e38f, 1.0f / 3, 1e-8f};
  compare_all({"fp16", "bf16"}, x, {static_cast<int64_t>(x.size())});
}

}  // namespace
}  // namespace quasr::formats
