#pragma once
// Sweep grids: which schemes a sweep runs. A grid file (docs/report.md, examples/grids/) is a line format:
//
//   # comment                      (blank lines and '#' comments are ignored anywhere)
//   baseline fp32 [label...]       optional; default "fp32". Always point 0 of the sweep.
//   recipe <recipe> [label...]     one explicit scheme; the label (rest of the line) defaults to the recipe
//   product                        a cartesian product, expanded to w=<format>:<gran>[,a=<act>][,<option>]
//     formats        int8 int4 nf4         (required)
//     granularities  channel g128 g64      (required)
//     activations    none int8-dyn-token   (optional; "none" = weights only; default none)
//     options        none calib=gptq       (optional; an option is appended as is; default none)
//   end
//
// Recipes are opaque strings to this module (their syntax belongs to quant/); a caller may pass a validator
// (e.g. quant's recipe parser) and its InvalidArgument is reported with the file:line:column of the recipe.
// Errors (unknown keyword, empty list, duplicate recipe or label, unterminated product, bad token) throw
// InvalidArgument "<file>:<line>:<column>: <problem>".
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace quasr::report {

struct GridEntry {
  std::string label;   // human-readable, unique within a grid
  std::string recipe;  // e.g. "w=int4:g128,a=int8-dyn-token" or a preset ("w4a8-g128"); unique within a grid
  int line = 0;        // where it came from in the grid file (0 when built in code)
};

struct Grid {
  std::string source;              // file name (for messages)
  std::vector<GridEntry> entries;  // entries[0] is the baseline; then the file's order, products expanded in
                                   // formats × granularities × activations × options order (last varies fastest)
  const GridEntry& baseline() const { return entries.front(); }
};

// Throws InvalidArgument for a recipe it rejects; the grid parser adds the position.
using RecipeValidator = std::function<void(const std::string& recipe)>;

Grid parse_grid(const std::string& text, const std::string& source_name, const RecipeValidator& validate = {});
Grid load_grid(const std::filesystem::path& path, const RecipeValidator& validate = {});  // IoError if unreadable

// The recipe a product point expands to, and its default label ("int4:g128 a=int8-dyn-token calib=gptq").
std::string product_recipe(const std::string& format, const std::string& granularity, const std::string& activation,
                           const std::string& option);
std::string product_label(const std::string& format, const std::string& granularity, const std::string& activation,
                          const std::string& option);

}  // namespace quasr::report
