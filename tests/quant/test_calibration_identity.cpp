// A sweep point's identity covers the contents of the files its recipe names (calib=FILE, sens=FILE): recalibrating
// must not reuse points measured with the old statistics.
#include <gtest/gtest.h>

#include <filesystem>

#include "quasr/io/file_util.h"
#include "quasr/report/sweep.h"

namespace quasr::quant {
namespace {

TEST(CalibrationIdentity, RecipeFilesEnterThePointHash) {
  namespace fs = std::filesystem;
  report::SweepContext ctx;
  ctx.model_id = "model";
  ctx.dataset_id = "data";
  ctx.decode_options = "beam=1";
  const std::string file = (fs::path(::testing::TempDir()) / "quasr_identity.qcal").string();
  const std::string recipe = "w8a8,calib=" + file + ",calibrator=max";
  io::write_text_file_atomic(file, "first calibration");
  const std::string h1 = report::point_hash(ctx, recipe);
  EXPECT_EQ(report::point_hash(ctx, recipe), h1);
  io::write_text_file_atomic(file, "second calibration");
  const std::string h2 = report::point_hash(ctx, recipe);
  EXPECT_NE(h2, h1);
  fs::remove(file);
  const std::string h3 = report::point_hash(ctx, recipe);  // a missing file hashes differently again
  EXPECT_NE(h3, h1);
  EXPECT_NE(h3, h2);
  const std::string sens = "w8a8,auto-bits=6,sens=" + file;
  io::write_text_file_atomic(file, "sensitivities");
  const std::string s1 = report::point_hash(ctx, sens);
  io::write_text_file_atomic(file, "other sensitivities");
  EXPECT_NE(report::point_hash(ctx, sens), s1);
  // Recipes that name no file hash as their text alone (unchanged identities for existing sweeps).
  EXPECT_EQ(report::point_hash(ctx, "w8a8"), report::point_hash(ctx, "w8a8"));
  EXPECT_NE(report::point_hash(ctx, "w8a8"), report::point_hash(ctx, "w4a16"));
}

}  // namespace
}  // namespace quasr::quant
