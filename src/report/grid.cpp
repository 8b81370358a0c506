// Grid file parser (syntax in grid.h and docs/report.md). A line format rather than JSON so that every error
// can name the exact line and column, and so that grids read like the tables they produce.
#include "quasr/report/grid.h"

#include <fstream>
#include <map>
#include <sstream>

#include "quasr/core/error.h"

namespace quasr::report {
namespace {

struct Token {
  std::string text;
  int column = 0;  // 1-based
};

std::vector<Token> tokenize(const std::string& line) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    tokens.push_back({line.substr(start, i - start), int(start) + 1});
  }
  return tokens;
}

// The text of the line from token `first` on (a label may contain spaces).
std::string rest_of_line(const std::string& line, const std::vector<Token>& tokens, size_t first) {
  if (first >= tokens.size()) return {};
  std::string rest = line.substr(size_t(tokens[first].column - 1));
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.pop_back();
  return rest;
}

class GridParser {
 public:
  GridParser(std::string source, const RecipeValidator& validate) : source_(std::move(source)), validate_(validate) {}

  [[noreturn]] void fail(int line, int column, const std::string& message) const {
    throw InvalidArgument(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message);
  }

  void check_recipe(const std::string& recipe, int line, int column) const {
    for (char c : recipe)
      if (static_cast<unsigned char>(c) < 0x21 || c == '"' || c == '#')
        fail(line, column, "recipe '" + recipe + "' contains a character recipes cannot hold");
    if (!validate_) return;
    try {
      validate_(recipe);
    } catch (const InvalidArgument& e) {
      fail(line, column, "bad recipe '" + recipe + "': " + e.what());
    }
  }

  void add(GridEntry entry, int column) {
    if (auto it = recipe_line_.find(entry.recipe); it != recipe_line_.end())
      fail(entry.line, column,
           "duplicate recipe '" + entry.recipe + "' (already in the grid from line " + std::to_string(it->second) +
               (it->second == 0 ? ", the default baseline" : "") + ")");
    if (auto it = label_line_.find(entry.label); it != label_line_.end())
      fail(entry.line, column,
           "duplicate label '" + entry.label + "' (already used on line " + std::to_string(it->second) + ")");
    recipe_line_[entry.recipe] = entry.line;
    label_line_[entry.label] = entry.line;
    grid_.entries.push_back(std::move(entry));
  }

  Grid parse(const std::string& text) {
    grid_.source = source_;
    grid_.entries.push_back({"fp32", "fp32", 0});  // replaced by a `baseline` line
    std::istringstream in(text);
    std::string line;
    int number = 0;
    bool baseline_seen = false;
    while (std::getline(in, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
      auto tokens = tokenize(line);
      if (tokens.empty()) continue;
      const std::string& keyword = tokens[0].text;
      if (in_product_) {
        product_line(line, tokens, number);
        continue;
      }
      if (keyword == "baseline") {
        if (baseline_seen) fail(number, tokens[0].column, "a second 'baseline' line (the grid has one baseline)");
        if (body_started_) fail(number, tokens[0].column, "'baseline' must come before recipes and products");
        if (tokens.size() < 2) fail(number, tokens[0].column + 8, "'baseline' needs a recipe");
        check_recipe(tokens[1].text, number, tokens[1].column);
        std::string label = tokens.size() > 2 ? rest_of_line(line, tokens, 2) : tokens[1].text;
        grid_.entries[0] = {label, tokens[1].text, number};
        baseline_seen = true;
      } else if (keyword == "recipe") {
        if (tokens.size() < 2) fail(number, tokens[0].column + 6, "'recipe' needs a recipe (and optionally a label)");
        if (!baseline_registered_) register_baseline();
        body_started_ = true;
        check_recipe(tokens[1].text, number, tokens[1].column);
        std::string label = tokens.size() > 2 ? rest_of_line(line, tokens, 2) : tokens[1].text;
        add({label, tokens[1].text, number}, tokens[1].column);
      } else if (keyword == "product") {
        if (tokens.size() > 1) fail(number, tokens[1].column, "'product' takes no arguments; list axes on the next lines");
        if (!baseline_registered_) register_baseline();
        body_started_ = true;
        in_product_ = true;
        product_ = {};
        product_.line = number;
      } else {
        fail(number, tokens[0].column,
             "unknown keyword '" + keyword + "' (expected baseline, recipe, product or a '#' comment)");
      }
    }
    if (in_product_) fail(product_.line, 1, "'product' block is not closed by 'end'");
    if (!baseline_registered_) register_baseline();
    return std::move(grid_);
  }

 private:
  struct Axis {
    std::vector<std::string> values;
    int line = 0, column = 0;
  };
  struct Product {
    int line = 0;
    std::map<std::string, Axis> axes;
  };

  void register_baseline() {
    baseline_registered_ = true;
    recipe_line_[grid_.entries[0].recipe] = grid_.entries[0].line;
    label_line_[grid_.entries[0].label] = grid_.entries[0].line;
  }

  void product_line(const std::string& line, const std::vector<Token>& tokens, int number) {
    const std::string& key = tokens[0].text;
    if (key == "end") {
      if (tokens.size() > 1) fail(number, tokens[1].column, "unexpected text after 'end'");
      expand_product(number);
      in_product_ = false;
      return;
    }
    static const char* kAxes[] = {"formats", "granularities", "activations", "options"};
    bool known = false;
    for (const char* a : kAxes) known |= key == a;
    if (!known)
      fail(number, tokens[0].column,
           "unknown product axis '" + key + "' (expected formats, granularities, activations, options or end)");
    if (product_.axes.count(key)) fail(number, tokens[0].column, "axis '" + key + "' given twice in one product");
    if (tokens.size() < 2) fail(number, tokens[0].column + int(key.size()), "axis '" + key + "' lists no values");
    Axis axis{{}, number, tokens[0].column};
    for (size_t i = 1; i < tokens.size(); ++i) {
      const std::string& v = tokens[i].text;
      bool structural = key != "options" && v.find_first_of(",:=") != std::string::npos;
      if (structural)
        fail(number, tokens[i].column, "value '" + v + "' of '" + key + "' may not contain ',', ':' or '='");
      for (const auto& seen : axis.values)
        if (seen == v) fail(number, tokens[i].column, "value '" + v + "' repeated in '" + key + "'");
      axis.values.push_back(v);
    }
    product_.axes[key] = std::move(axis);
  }

  void expand_product(int end_line) {
    for (const char* required : {"formats", "granularities"})
      if (!product_.axes.count(required))
        fail(product_.line, 1, std::string("product (lines ") + std::to_string(product_.line) + "-" +
                                   std::to_string(end_line) + ") has no '" + required + "' axis");
    auto values = [&](const char* key) {
      auto it = product_.axes.find(key);
      return it == product_.axes.end() ? std::vector<std::string>{"none"} : it->second.values;
    };
    const auto formats = values("formats"), grans = values("granularities");
    const auto acts = values("activations"), opts = values("options");
    const Axis& format_axis = product_.axes["formats"];
    for (const auto& f : formats)
      for (const auto& g : grans)
        for (const auto& a : acts)
          for (const auto& o : opts) {
            std::string recipe = product_recipe(f, g, a, o);
            check_recipe(recipe, format_axis.line, format_axis.column);
            add({product_label(f, g, a, o), recipe, product_.line}, 1);
          }
  }

  std::string source_;
  const RecipeValidator& validate_;
  Grid grid_;
  std::map<std::string, int> recipe_line_, label_line_;
  bool in_product_ = false, body_started_ = false, baseline_registered_ = false;
  Product product_;
};

}  // namespace

std::string product_recipe(const std::string& format, const std::string& granularity, const std::string& activation,
                           const std::string& option) {
  std::string recipe = "w=" + format + ":" + granularity;
  if (activation != "none") recipe += ",a=" + activation;
  if (option != "none") recipe += "," + option;
  return recipe;
}

std::string product_label(const std::string& format, const std::string& granularity, const std::string& activation,
                          const std::string& option) {
  std::string label = format + ":" + granularity;
  if (activation != "none") label += " a=" + activation;
  if (option != "none") label += " " + option;
  return label;
}

Grid parse_grid(const std::string& text, const std::string& source_name, const RecipeValidator& validate) {
  return GridParser(source_name, validate).parse(text);
}

Grid load_grid(const std::filesystem::path& path, const RecipeValidator& validate) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open grid file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_grid(text.str(), path.string(), validate);
}

}  // namespace quasr::report
