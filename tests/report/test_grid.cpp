#include <gtest/gtest.h>

#include "quasr/core/error.h"
#include "quasr/report/grid.h"

using namespace quasr::report;

namespace {

std::string error_of(const std::string& text, const RecipeValidator& v = {}) {
  try {
    parse_grid(text, "g.txt", v);
  } catch (const quasr::InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Grid, ExplicitRecipesAndProductExpandInOrderWithBaselineFirst) {
  Grid g = parse_grid(
      "# a grid\n"
      "recipe w4a8-g128   int4 g128, int8 acts\n"
      "recipe mxfp4\n"
      "product\n"
      "  formats int8 int4   # two formats\n"
      "  granularities channel g64\n"
      "  activations none int8-dyn-token\n"
      "end\n",
      "g.txt");
  ASSERT_EQ(g.entries.size(), 1u + 2u + 8u);
  EXPECT_EQ(g.baseline().recipe, "fp32");
  EXPECT_EQ(g.entries[1].recipe, "w4a8-g128");
  EXPECT_EQ(g.entries[1].label, "int4 g128, int8 acts");
  EXPECT_EQ(g.entries[1].line, 2);
  EXPECT_EQ(g.entries[2].label, "mxfp4");
  EXPECT_EQ(g.entries[3].recipe, "w=int8:channel");
  EXPECT_EQ(g.entries[4].recipe, "w=int8:channel,a=int8-dyn-token");
  EXPECT_EQ(g.entries[4].label, "int8:channel a=int8-dyn-token");
  EXPECT_EQ(g.entries[5].recipe, "w=int8:g64");
  EXPECT_EQ(g.entries[10].recipe, "w=int4:g64,a=int8-dyn-token");
}

TEST(Grid, BaselineLineAndOptionsAxis) {
  Grid g = parse_grid(
      "baseline fp16 FP16 reference\n"
      "product\n formats nf4\n granularities g64\n options none calib=gptq,round=even\nend\n",
      "g.txt");
  ASSERT_EQ(g.entries.size(), 3u);
  EXPECT_EQ(g.baseline().recipe, "fp16");
  EXPECT_EQ(g.baseline().label, "FP16 reference");
  EXPECT_EQ(g.entries[2].recipe, "w=nf4:g64,calib=gptq,round=even");
  EXPECT_EQ(g.entries[2].label, "nf4:g64 calib=gptq,round=even");
}

TEST(Grid, EmptyGridIsJustTheBaseline) {
  Grid g = parse_grid("# nothing\n\n", "g.txt");
  ASSERT_EQ(g.entries.size(), 1u);
  EXPECT_EQ(g.baseline().recipe, "fp32");
}

TEST(Grid, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(error_of("recipe w8a8\nfrobnicate x\n"),
            "g.txt:2:1: unknown keyword 'frobnicate' (expected baseline, recipe, product or a '#' comment)");
  EXPECT_NE(error_of("recipe w8a8\n  recipe w8a8 again\n").find("g.txt:2:10: duplicate recipe 'w8a8' (already in "
                                                                 "the grid from line 1)"),
            std::string::npos);
  EXPECT_NE(error_of("recipe fp32\n").find("g.txt:1:8: duplicate recipe 'fp32'"), std::string::npos);
  EXPECT_NE(error_of("recipe a X\nrecipe b X\n").find("g.txt:2:8: duplicate label 'X'"), std::string::npos);
  EXPECT_EQ(error_of("product\n formats int4\n granularities g64\n"),
            "g.txt:1:1: 'product' block is not closed by 'end'");
  EXPECT_NE(error_of("product\n formats int4\nend\n").find("g.txt:1:1: product (lines 1-3) has no 'granularities'"),
            std::string::npos);
  EXPECT_EQ(error_of("product\n formats int4\n granularity g64\nend\n"),
            "g.txt:3:2: unknown product axis 'granularity' (expected formats, granularities, activations, options "
            "or end)");
  EXPECT_NE(error_of("product\n formats int4 int4\n granularities g64\nend\n").find("g.txt:2:15: value 'int4' repeated"),
            std::string::npos);
  EXPECT_NE(error_of("product\n formats int4:x\n granularities g64\nend\n").find("g.txt:2:10: value 'int4:x'"),
            std::string::npos);
  EXPECT_NE(error_of("product\n formats\n granularities g64\nend\n").find("g.txt:2:9: axis 'formats' lists no values"),
            std::string::npos);
  EXPECT_NE(error_of("recipe w8a8\nbaseline fp16\n").find("g.txt:2:1: 'baseline' must come before"),
            std::string::npos);
  EXPECT_NE(error_of("baseline fp16\nbaseline fp32\n").find("g.txt:2:1: a second 'baseline'"), std::string::npos);
  EXPECT_NE(error_of("recipe\n").find("g.txt:1:7: 'recipe' needs a recipe"), std::string::npos);
}

TEST(Grid, ValidatorErrorsArePositioned) {
  RecipeValidator only_known = [](const std::string& recipe) {
    if (recipe.find("int3") != std::string::npos) throw quasr::InvalidArgument("unknown format 'int3'");
  };
  EXPECT_EQ(error_of("recipe w8a8\nrecipe   w=int3:g64 three\n", only_known),
            "g.txt:2:10: bad recipe 'w=int3:g64': unknown format 'int3'");
  EXPECT_EQ(error_of("product\n  formats int4 int3\n granularities g64\nend\n", only_known),
            "g.txt:2:3: bad recipe 'w=int3:g64': unknown format 'int3'");
  EXPECT_EQ(parse_grid("recipe w=int4:g64\n", "g.txt", only_known).entries.size(), 2u);
}

TEST(Grid, ExampleGridsParse) {
  auto dir = std::filesystem::path(QUASR_SOURCE_DIR) / "examples" / "grids";
  int parsed = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    Grid g = load_grid(f.path());
    EXPECT_GE(g.entries.size(), 2u) << f.path();
    ++parsed;
  }
  EXPECT_GE(parsed, 1);
  EXPECT_THROW(load_grid(dir / "does-not-exist.grid"), quasr::IoError);
}
