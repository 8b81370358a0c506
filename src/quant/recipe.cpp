// Recipe text -> Recipe (parse), and Recipe x tensor table -> plan (resolve_plan). Grammar: docs/quantization.md.
#include "quasr/quant/recipe.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "quasr/core/error.h"
#include "quasr/formats/traits.h"
#include "quasr/io/file_util.h"
#include "quasr/quant/sensitivity.h"

namespace quasr::quant {
namespace {

using formats::FormatId;
using kernels::ActivationQuant;

constexpr std::array kActivationFormats = {FormatId::kInt8, FormatId::kInt4, FormatId::kFp8E4M3};

constexpr Preset kPresets[] = {
    {"w8a8", "w=int8:pc,a=int8-dyn-token", "INT8 per-channel weights, INT8 per-token dynamic activations"},
    {"w8", "w=int8:pc", "INT8 per-channel weights, FP32 activations"},
    {"w4a8-g128", "w=int4:g128,a=int8-dyn-token", "INT4 groups of 128, INT8 per-token dynamic activations"},
    {"w4-g128", "w=int4:g128", "INT4 groups of 128, FP32 activations"},
    {"w4-g64", "w=int4:g64", "INT4 groups of 64, FP32 activations"},
    {"fp8", "w=fp8_e4m3:pc,a=fp8_e4m3-dyn-token", "FP8 E4M3 per-channel weights and per-token activations"},
    {"mxfp4", "w=mxfp4", "OCP MXFP4 weights (blocks of 32, E8M0 scale), FP32 activations"},
    {"mxfp8", "w=mxfp8_e4m3", "OCP MXFP8 E4M3 weights, FP32 activations"},
    {"nvfp4", "w=nvfp4", "NVFP4 weights (blocks of 16, E4M3 scale + FP32 tensor scale), FP32 activations"},
    {"nf4", "w=nf4:g64", "NF4 groups of 64, FP32 activations"},
    {"fp16", "w=fp16", "FP16 weights, FP32 activations"},
};

[[noreturn]] void fail(int column, std::string_view token, const std::string& why) {
  throw InvalidArgument("recipe: column " + std::to_string(column) + ", at '" + std::string(token) + "': " + why);
}

// A piece of the recipe text with the 1-based column where it starts.
struct Piece {
  std::string_view text;
  int column;
};

Piece trim(Piece p) {
  size_t b = 0, e = p.text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(p.text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(p.text[e - 1]))) --e;
  return {p.text.substr(b, e - b), p.column + static_cast<int>(b)};
}

std::vector<Piece> split(Piece p, char sep) {
  std::vector<Piece> out;
  size_t start = 0;
  for (size_t i = 0; i <= p.text.size(); ++i)
    if (i == p.text.size() || p.text[i] == sep) {
      out.push_back(trim({p.text.substr(start, i - start), p.column + static_cast<int>(start)}));
      start = i + 1;
    }
  return out;
}

bool parse_int(std::string_view s, int& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && v >= 0;
}

bool parse_switch(Piece value, std::string_view key) {
  if (value.text == "on") return true;
  if (value.text == "off") return false;
  fail(value.column, value.text, std::string(key) + " takes on or off");
}

formats::QuantSpec parse_weight(Piece value) {
  try {
    return formats::QuantSpec::parse(value.text);
  } catch (const InvalidArgument& e) {
    fail(value.column, value.text, e.what());
  }
}

const Preset* find_preset(std::string_view name) {
  for (const Preset& p : kPresets)
    if (name == p.name) return &p;
  return nullptr;
}

std::string preset_names() {
  std::string s;
  for (const Preset& p : kPresets) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

Selector parse_selector(Piece p) {
  Selector s;
  const std::string_view t = p.text;
  if (t.rfind("role=", 0) == 0 || t.rfind("name=", 0) == 0) {
    s.kind = t[0] == 'r' ? Selector::Kind::kRole : Selector::Kind::kName;
    s.pattern = std::string(t.substr(5));
    if (s.pattern.empty()) fail(p.column, t, "empty pattern");
    return s;
  }
  for (const char* stack : {"encoder", "decoder"}) {
    const std::string_view st(stack);
    if (t.rfind(st, 0) != 0) continue;
    s.kind = Selector::Kind::kStack;
    s.stack = stack;
    std::string_view rest = t.substr(st.size());
    if (rest.empty()) return s;
    const int col = p.column + static_cast<int>(st.size());
    if (rest.rfind(".layers[", 0) != 0 || rest.back() != ']')
      fail(col, rest, "expected .layers[N] or .layers[A-B] after '" + std::string(stack) + "'");
    std::string_view range = rest.substr(8, rest.size() - 9);
    const size_t dash = range.find('-');
    const std::string_view a = range.substr(0, dash), b = dash == std::string_view::npos ? a : range.substr(dash + 1);
    if (!parse_int(a, s.first) || !parse_int(b, s.last))
      fail(col + 8, range, "layer range must be N or A-B with non-negative integers");
    if (s.first > s.last) fail(col + 8, range, "layer range is empty (first > last)");
    return s;
  }
  fail(p.column, t, "unknown selector; selectors are encoder, decoder, encoder.layers[A-B], role=GLOB, name=GLOB");
}

constexpr const char* kPtqKeys =
    "calib, calibrator, smooth, algo, gptq-damp, gptq-block, act-order, rotate, auto-bits, sens";

bool is_ptq_key(std::string_view key) {
  for (std::string_view k : {"calib", "calibrator", "smooth", "algo", "gptq-damp", "gptq-block", "act-order",
                             "rotate", "auto-bits", "sens"})
    if (key == k) return true;
  return false;
}

double parse_number(Piece value, double lo, double hi, const std::string& what) {
  const std::string text(value.text);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v) || v < lo || v > hi)
    fail(value.column, value.text, what);
  return v;
}

void apply_ptq_setting(PtqSettings& p, std::string_view key, Piece value) {
  const std::string v(value.text);
  if (key == "calib") {
    p.calib = v;
  } else if (key == "calibrator") {
    if (v != "max" && v != "mse" && v != "kl" && v.rfind("percentile:", 0) != 0)
      fail(value.column, value.text, "calibrator is max, percentile:P (e.g. percentile:99.99), mse or kl");
    if (v.rfind("percentile:", 0) == 0)
      parse_number({value.text.substr(11), value.column + 11}, 50.0, 100.0, "percentile must be in [50, 100]");
    p.calibrator = v;
  } else if (key == "smooth") {
    p.smooth = static_cast<float>(parse_number(value, 0.0, 1.0, "smooth (SmoothQuant alpha) must be in [0, 1]"));
  } else if (key == "algo") {
    if (v != "rtn" && v != "gptq" && v != "awq") fail(value.column, value.text, "algo is rtn, gptq or awq");
    p.algo = v;
  } else if (key == "gptq-damp") {
    p.gptq_damp = static_cast<float>(parse_number(value, 0.0, 1.0, "gptq-damp must be in [0, 1]"));
  } else if (key == "gptq-block") {
    p.gptq_block = static_cast<int>(parse_number(value, 1.0, 65536.0, "gptq-block must be an integer in [1, 65536]"));
    if (p.gptq_block != std::stod(v)) fail(value.column, value.text, "gptq-block must be an integer");
  } else if (key == "act-order") {
    p.act_order = parse_switch(value, key);
  } else if (key == "rotate") {
    if (v != "hadamard" && v != "none") fail(value.column, value.text, "rotate is hadamard or none");
    p.rotate = v == "none" ? "" : v;
  } else if (key == "auto-bits") {
    p.auto_bits = static_cast<float>(parse_number(value, 1.0, 32.0, "auto-bits must be in [1, 32] bits/weight"));
  } else if (key == "sens") {
    p.sensitivity = v;
  }
}

// Applies the settings of one clause. `global` clauses may hold presets and switches; rule clauses only w=, a=,
// skip.
void apply_settings(Recipe& r, Rule* rule, Piece settings) {
  for (Piece s : split(settings, ',')) {
    if (s.text.empty()) fail(s.column, s.text, "empty setting (doubled ',' or ';'?)");
    if (s.text == "skip") {
      if (!rule) fail(s.column, s.text, "skip needs a selector (e.g. name=*fc2*: skip)");
      rule->skip = true;
      continue;
    }
    const size_t eq = s.text.find('=');
    if (eq == std::string_view::npos) {
      const Preset* preset = find_preset(s.text);
      if (!preset)
        fail(s.column, s.text,
             "unknown setting; settings are w=SPEC, a=ACT, conv=on|off, embed=on|off, kv=fp32|fp16|int8|fp8, skip, "
             "or a preset (" + preset_names() + ")");
      if (rule) fail(s.column, s.text, "presets apply to the whole model; use w= and a= in a rule");
      apply_settings(r, nullptr, {preset->text, s.column});
      continue;
    }
    const std::string_view key = s.text.substr(0, eq);
    const Piece value{s.text.substr(eq + 1), s.column + static_cast<int>(eq) + 1};
    if (value.text.empty()) fail(value.column, s.text, "missing value after '='");
    if (key == "w") {
      if (value.text == "none") {
        if (rule) fail(value.column, value.text, "use skip to keep tensors in FP32");
        r.weight.reset();
      } else {
        std::optional<formats::QuantSpec>& target = rule ? rule->weight : r.weight;
        target = parse_weight(value);
      }
    } else if (key == "a") {
      const ActivationQuant a = parse_activation(value.text, value.column);
      if (rule) rule->act = a;
      else r.act = a;
    } else if (key == "conv" || key == "embed" || key == "kv") {
      if (rule) fail(s.column, s.text, std::string(key) + "= applies to the whole model, not to a rule");
      if (key == "conv") r.conv = parse_switch(value, key);
      if (key == "embed") r.embed = parse_switch(value, key);
      if (key == "kv") r.kv = parse_kv_precision(value.text, value.column);
    } else if (is_ptq_key(key)) {
      if (rule) fail(s.column, s.text, std::string(key) + "= applies to the whole model, not to a rule");
      apply_ptq_setting(r.ptq, key, value);
    } else {
      fail(s.column, key, "unknown key; keys are w, a, conv, embed, kv, " + std::string(kPtqKeys));
    }
  }
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t;
  for (int64_t d : s) t += (t.empty() ? "" : "x") + std::to_string(d);
  return t;
}

int64_t reduction_dim(const std::vector<int64_t>& shape) {
  int64_t k = 1;
  for (size_t i = 1; i < shape.size(); ++i) k *= shape[i];
  return k;
}

bool selects(const Selector& s, const TensorInfo& t) {
  switch (s.kind) {
    case Selector::Kind::kAll: return true;
    case Selector::Kind::kStack:
      return t.stack == s.stack && (s.first < 0 || (t.layer >= s.first && t.layer <= s.last));
    case Selector::Kind::kRole: return glob_match(s.pattern, t.role);
    case Selector::Kind::kName: return glob_match(s.pattern, t.name);
  }
  return false;
}

// Checks that `spec` can quantize tensor `t` (2-D view [out][K]) and returns the exact storage.
formats::StorageBytes check_fits(const formats::QuantSpec& spec, const TensorInfo& t) {
  const int64_t k = reduction_dim(t.shape);
  const std::vector<int64_t> view{t.shape.at(0), k};
  const auto& tr = formats::traits(spec.format);
  const int64_t block = spec.granularity.kind == formats::GranularityKind::kPerGroup ? spec.granularity.group
                                                                                    : tr.fixed_block;
  if (block > 0 && k % block != 0)
    throw InvalidArgument("tensor " + t.name + ": " + (tr.fixed_block ? std::string(tr.name) + " block" : "group") +
                          " size " + std::to_string(block) + " does not divide its reduction dimension K = " +
                          std::to_string(k) + " (shape " + shape_text(t.shape) + ")");
  if (spec.granularity.kind == formats::GranularityKind::kPerChannel && spec.granularity.axis != 0)
    throw InvalidArgument("tensor " + t.name + ": weights are quantized per output channel (pc) or per group (gN); '" +
                          spec.to_string() + "' uses axis " + std::to_string(spec.granularity.axis));
  try {
    return formats::expected_storage(spec, view);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("tensor " + t.name + ": " + e.what());
  }
}

}  // namespace

std::span<const formats::FormatId> activation_formats() { return kActivationFormats; }

ActivationQuant parse_activation(std::string_view text, int column) {
  ActivationQuant a;
  if (text == "none" || text == "fp32") return a;
  std::string supported;
  for (FormatId f : kActivationFormats) supported += (supported.empty() ? "" : ", ") + std::string(formats::traits(f).name);
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos)
    fail(column, text, "activations are none, FMT-dyn-token, FMT-dyn-tensor or FMT-static:SCALE with FMT in " +
                           supported);
  std::string fmt(text.substr(0, dash));
  if (fmt == "fp8") fmt = "fp8_e4m3";
  const formats::FormatTraits* tr = formats::find_format(fmt);
  if (!tr || std::find(kActivationFormats.begin(), kActivationFormats.end(), tr->id) == kActivationFormats.end())
    fail(column, text.substr(0, dash), "unsupported activation format; supported: " + supported);
  a.format = tr->id;
  const std::string_view mode = text.substr(dash + 1);
  if (mode == "dyn-token") {
    a.mode = ActivationQuant::Mode::kDynamicPerToken;
  } else if (mode == "dyn-tensor") {
    a.mode = ActivationQuant::Mode::kDynamicPerTensor;
  } else if (mode.rfind("static:", 0) == 0) {
    a.mode = ActivationQuant::Mode::kStatic;
    const std::string v(mode.substr(7));
    char* end = nullptr;
    const float s = std::strtof(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(s) || s <= 0)
      fail(column + static_cast<int>(dash) + 8, v, "static scale must be a positive finite number");
    a.static_scale = s;
  } else if (mode == "static") {
    a.mode = ActivationQuant::Mode::kStatic;
    a.static_scale = 0.0f;  // from calibration: resolve_plan requires calib= and calibrator=
  } else {
    fail(column + static_cast<int>(dash) + 1, mode, "activation mode must be dyn-token, dyn-tensor or static:SCALE");
  }
  return a;
}

std::string activation_text(const ActivationQuant& a) {
  using M = ActivationQuant::Mode;
  if (a.mode == M::kNone) return "none";
  const std::string f = formats::traits(a.format).name;
  switch (a.mode) {
    case M::kDynamicPerToken: return f + "-dyn-token";
    case M::kDynamicPerTensor: return f + "-dyn-tensor";
    case M::kStatic: {
      if (a.static_scale == 0.0f) return f + "-static";  // scale from calibration
      char buf[64];  // shortest text that reads back as the same float
      const auto res = std::to_chars(buf, buf + sizeof buf, a.static_scale);
      return f + "-static:" + std::string(buf, res.ptr);
    }
    case M::kNone: break;
  }
  return "none";
}

const char* kv_precision_name(KvPrecision p) {
  switch (p) {
    case KvPrecision::kFp32: return "fp32";
    case KvPrecision::kFp16: return "fp16";
    case KvPrecision::kInt8: return "int8";
    case KvPrecision::kFp8: return "fp8";
  }
  return "?";
}

KvPrecision parse_kv_precision(std::string_view text, int column) {
  for (KvPrecision p : {KvPrecision::kFp32, KvPrecision::kFp16, KvPrecision::kInt8, KvPrecision::kFp8})
    if (text == kv_precision_name(p)) return p;
  fail(column, text, "KV cache precision must be fp32, fp16, int8 or fp8");
}

std::span<const Preset> presets() { return kPresets; }

bool glob_match(std::string_view pat, std::string_view s) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[t])) {
      ++p, ++t;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++, mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1, t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

Recipe Recipe::parse(std::string_view text) {
  Recipe r;
  r.text = std::string(text);
  bool first = true;
  for (Piece clause : split({text, 1}, ';')) {
    if (clause.text.empty()) continue;  // a trailing ';', a blank or comment line in a file
    first = false;
    const std::string_view t = clause.text;
    const bool has_selector = t.rfind("encoder", 0) == 0 || t.rfind("decoder", 0) == 0 ||
                              t.rfind("role=", 0) == 0 || t.rfind("name=", 0) == 0;
    if (!has_selector) {
      apply_settings(r, nullptr, clause);
      continue;
    }
    const size_t colon = t.find(':');
    if (colon == std::string_view::npos)
      fail(clause.column, t, "a rule is SELECTOR: SETTINGS (missing ':')");
    Rule rule;
    rule.text = std::string(t);
    rule.selector = parse_selector(trim({t.substr(0, colon), clause.column}));
    const Piece settings = trim({t.substr(colon + 1), clause.column + static_cast<int>(colon) + 1});
    if (settings.text.empty()) fail(settings.column, t, "a rule needs settings after ':' (w=, a= or skip)");
    apply_settings(r, &rule, settings);
    if (rule.skip && (rule.weight || rule.act)) fail(settings.column, settings.text, "skip cannot be combined with w= or a=");
    r.rules.push_back(std::move(rule));
  }
  if (first) fail(1, text, "empty recipe");
  return r;
}

Recipe Recipe::from_argument(const std::string& arg) {
  std::string path;
  if (!arg.empty() && arg[0] == '@') path = arg.substr(1);
  else if (arg.find_first_of("=;:,") == std::string::npos && !find_preset(arg) && io::file_exists(arg)) path = arg;
  if (path.empty()) return parse(arg);
  const std::vector<uint8_t> bytes = io::read_file_bytes(path);
  // Comments to end of line are dropped and newlines become ';', keeping columns (errors name line:column).
  std::string text;
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  int line_no = 0;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    lines.push_back(line);
  }
  for (const auto& l : lines) text += l + ";";
  try {
    Recipe r = parse(text);
    r.text = text;
    return r;
  } catch (const InvalidArgument& e) {
    // Translate the flat column back into line:column of the file.
    std::string msg = e.what();
    const std::string key = "column ";
    const size_t at = msg.find(key);
    if (at == std::string::npos) throw;
    int col = std::atoi(msg.c_str() + at + key.size());
    size_t digits = msg.find(',', at);
    for (line_no = 0; line_no < static_cast<int>(lines.size()) && col > static_cast<int>(lines[line_no].size()) + 1;
         ++line_no)
      col -= static_cast<int>(lines[line_no].size()) + 1;
    throw InvalidArgument(path + ": line " + std::to_string(line_no + 1) + ", column " + std::to_string(col) +
                          msg.substr(digits));
  }
}

// The post-training settings that need each other (docs/ptq.md).
void check_ptq_settings(const Recipe& recipe) {
  const PtqSettings& p = recipe.ptq;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw InvalidArgument("recipe: " + what);
  };
  need(p.calibrator.empty() || !p.calib.empty(), "calibrator=" + p.calibrator + " needs calib=FILE (quasr calibrate)");
  need(!p.smooth || !p.calib.empty(), "smooth= needs calib=FILE (quasr calibrate)");
  need(p.algo == "rtn" || !p.calib.empty(), "algo=" + p.algo + " needs calib=FILE (quasr calibrate)");
  need(!p.auto_bits || !p.sensitivity.empty(), "auto-bits= needs sens=FILE (quasr sensitivity)");
  const PtqSettings defaults;
  need(p.algo == "gptq" || (p.gptq_damp == defaults.gptq_damp && p.gptq_block == defaults.gptq_block &&
                            p.act_order == defaults.act_order),
       "gptq-damp=, gptq-block= and act-order= apply to algo=gptq, not algo=" + p.algo);
  // A rotation changes the input every activation statistic describes: per-channel maxima, sums and histograms of
  // x H cannot be derived from those of x (X^T X can: GPTQ works with it), so what needs them is refused.
  if (!p.rotate.empty()) {
    need(p.algo != "awq", "rotate=" + p.rotate + " does not combine with algo=awq (AWQ's channel magnitudes are "
                          "those of the unrotated input); use algo=rtn or algo=gptq");
    need(!p.smooth, "rotate=" + p.rotate + " does not combine with smooth= (both reshape the input's channels)");
    need(p.calibrator.empty(), "rotate=" + p.rotate + " does not combine with static activation scales (calibrator=" +
                                   p.calibrator + "): the calibration holds no statistics of the rotated inputs; "
                                   "use dynamic activations (e.g. a=int8-dyn-token) or none");
  }
}

std::vector<PlanEntry> resolve_plan(const Recipe& given, std::span<const TensorInfo> tensors) {
  // auto-bits=B,sens=FILE becomes ordinary per-tensor rules first (quant/sensitivity.h); callers that know the
  // model's source hash expand before calling, so that a sens file of another model is refused.
  const Recipe recipe = expand_auto_bits(given, tensors);
  check_ptq_settings(recipe);
  // Every rule must select something: a typo in a role or name would otherwise silently do nothing.
  for (const Rule& rule : recipe.rules) {
    bool any = false;
    for (const TensorInfo& t : tensors) any = any || selects(rule.selector, t);
    if (any) continue;
    if (rule.selector.kind == Selector::Kind::kRole) {
      std::vector<std::string> roles;
      for (const TensorInfo& t : tensors) roles.push_back(t.role);
      std::sort(roles.begin(), roles.end());
      roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
      std::string list;
      for (const auto& r : roles) list += (list.empty() ? "" : ", ") + r;
      throw InvalidArgument("recipe rule '" + rule.text + "': role pattern '" + rule.selector.pattern +
                            "' matches no role; roles are " + list);
    }
    throw InvalidArgument("recipe rule '" + rule.text + "' selects no tensor of this model");
  }
  std::vector<PlanEntry> plan;
  for (const TensorInfo& t : tensors) {
    PlanEntry e;
    e.tensor = t;
    const bool enabled = t.kind == TensorInfo::Kind::kLinear || (t.kind == TensorInfo::Kind::kConv && recipe.conv) ||
                         (t.kind == TensorInfo::Kind::kEmbedding && recipe.embed);
    std::optional<formats::QuantSpec> spec = recipe.weight;
    ActivationQuant act = recipe.act;
    e.why = !enabled ? (t.kind == TensorInfo::Kind::kConv ? "conv=off" : "embed=off") : spec ? "default" : "w=none";
    if (enabled)
      for (const Rule& rule : recipe.rules) {
        if (!selects(rule.selector, t)) continue;
        e.why = rule.text;
        if (rule.skip) spec.reset();
        if (rule.weight) spec = rule.weight;
        if (rule.act) act = *rule.act;
      }
    e.quantized = enabled && spec.has_value();
    if (e.quantized && act.mode == ActivationQuant::Mode::kStatic) {
      if (!recipe.ptq.rotate.empty())
        throw InvalidArgument("recipe: " + t.name + " has static activations (a=" + activation_text(act) +
                              "), which do not combine with rotate=" + recipe.ptq.rotate +
                              ": a given scale describes the unrotated input");
      if (act.static_scale == 0.0f && recipe.ptq.calibrator.empty())
        throw InvalidArgument("recipe: " + t.name + " has a=" + activation_text(act) +
                              " without a scale: give FMT-static:SCALE or calib=FILE,calibrator=max|percentile:P|mse|kl");
    }
    if (e.quantized) {
      e.weight = *spec;
      e.act = act;
      e.storage = check_fits(e.weight, t);
    } else {
      e.storage.elements = e.storage.payload = 0;
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      e.storage.elements = static_cast<size_t>(n);
      e.storage.payload = static_cast<size_t>(n) * 4;
    }
    plan.push_back(std::move(e));
  }
  return plan;
}

std::string format_plan(std::span<const PlanEntry> plan) {
  std::ostringstream o;
  char line[512];
  std::snprintf(line, sizeof line, "%-56s %-10s %-16s %-18s %8s %12s  %s\n", "tensor", "shape", "weight",
                "activations", "bits/w", "bytes", "decided by");
  o << line;
  formats::StorageBytes total;
  size_t fp32_bytes = 0;
  for (const PlanEntry& e : plan) {
    const std::string w = e.quantized ? e.weight.to_string() : "fp32";
    const std::string a = e.quantized ? activation_text(e.act) : "none";
    std::snprintf(line, sizeof line, "%-56s %-10s %-16s %-18s %8.4f %12zu  %s\n", e.tensor.name.c_str(),
                  shape_text(e.tensor.shape).c_str(), w.c_str(), a.c_str(), e.storage.bits_per_weight(),
                  e.storage.total(), e.why.c_str());
    o << line;
    total += e.storage;
    fp32_bytes += e.storage.elements * 4;
  }
  std::snprintf(line, sizeof line,
                "total: %zu weights in %zu tensors, %zu bytes (%.4f bits/weight), FP32 would be %zu bytes (%.2fx)\n",
                total.elements, plan.size(), total.total(), total.bits_per_weight(), fp32_bytes,
                total.total() ? static_cast<double>(fp32_bytes) / total.total() : 0.0);
  o << line;
  // The runtime holds unquantized tensors in FP32, which is what the rows above count; a .quasr container stores
  // them in the source checkpoint's dtype (FP16 for the CTranslate2 models), so its file is smaller than this.
  o << "(unquantized tensors counted at FP32, as held in memory; the container file keeps them in the source "
       "dtype)\n";
  return o.str();
}

}  // namespace quasr::quant
