// `quasr formats` prints one row per traits-table entry with the measured bits/weight, and `--spec` reports
// one spec's storage or a clear error. Runs the real binary (QUASR_BIN from CTest, else the build dir's).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/wait.h>

#include "format_test_util.h"

namespace quasr::formats {
namespace {

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun run_quasr(const std::string& args) {
  const char* env = std::getenv("QUASR_BIN");
  const std::string bin = env ? env : std::string(QUASR_BINARY_DIR) + "/quasr";
  CliRun r;
  FILE* p = popen((bin + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string row_of(const std::string& table, const std::string& name) {
  const size_t at = table.find("\n| " + name + " |");  // a row starts with its name (pairs-with repeats names)
  if (at == std::string::npos) return "";
  return table.substr(at + 1, table.find('\n', at + 1) - at - 1);
}

TEST(CliFormats, TablePrintsEveryFormatWithMeasuredBitsPerWeight) {
  // A smaller tensor than the default 384x1536 keeps this quick under the sanitizers.
  const CliRun r = run_quasr("formats --shape 96x512");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::vector<int64_t> shape = {96, 512};
  const std::vector<float> x = testing::gaussian(96 * 512, 12345, 0.02);
  for (const FormatTraits& f : all_formats()) {
    SCOPED_TRACE(f.name);
    const std::string row = row_of(r.out, f.name);
    ASSERT_FALSE(row.empty()) << "no row for " << f.name;
    char bpw[32];
    std::snprintf(bpw, sizeof bpw, "%.4f", quantize(x, shape, QuantSpec::defaults(f.id)).storage().bits_per_weight());
    EXPECT_NE(row.find(std::string("| ") + bpw + " |"), std::string::npos) << row;
    EXPECT_NE(row.find(traits(f.pairs_with).name), std::string::npos) << row;
  }
  EXPECT_NE(row_of(r.out, "int4").find("| 4.1250 |"), std::string::npos) << row_of(r.out, "int4");
  EXPECT_NE(row_of(r.out, "mxfp4").find("| 4.2500 |"), std::string::npos);
}

TEST(CliFormats, SpecOptionPrintsStorageOrAClearError) {
  CliRun r = run_quasr("formats --spec int4:g128");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("4.1250 bits/weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scales:        9216 bytes"), std::string::npos) << r.out;  // 384*1536/128 * 2
  r = run_quasr("formats --spec nvfp4 --shape 16x64");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("tensor scale:  4 bytes"), std::string::npos) << r.out;
  r = run_quasr("formats --spec int9");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("'int9'"), std::string::npos) << r.out;
  r = run_quasr("formats --spec int4:g48 --shape 8x100");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("group size 48"), std::string::npos) << r.out;
  r = run_quasr("formats --shape 8xq");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--shape"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace quasr::formats
