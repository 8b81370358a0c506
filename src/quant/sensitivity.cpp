// Sensitivity files, the exact byte-budget allocator and the expansion of auto-bits= into per-tensor rules
// (quant/sensitivity.h, docs/ptq.md).
#include "quasr/quant/sensitivity.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/formats/qtensor.h"
#include "quasr/io/file_util.h"

namespace quasr::quant {
namespace {

using nlohmann::json;

constexpr const char* kFormatTag = "quasr-sensitivity";

const char* kind_name(TensorInfo::Kind k) {
  switch (k) {
    case TensorInfo::Kind::kLinear: return "linear";
    case TensorInfo::Kind::kConv: return "conv";
    case TensorInfo::Kind::kEmbedding: return "embedding";
  }
  return "?";
}

// Reads one field of a JSON object with the file and the field's place in the message.
struct Reader {
  const std::string& path;
  [[noreturn]] void fail(const std::string& where, const std::string& why) const {
    throw InvalidArgument("sensitivity file " + path + ": " + where + ": " + why);
  }
  const json& field(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object()) fail(where, "expected a JSON object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(where, std::string("missing field '") + key + "'");
    return *it;
  }
  std::string str(const json& obj, const char* key, const std::string& where) const {
    const json& v = field(obj, key, where);
    if (!v.is_string()) fail(where, std::string("field '") + key + "' must be a string");
    return v.get<std::string>();
  }
  int64_t integer(const json& obj, const char* key, const std::string& where) const {
    const json& v = field(obj, key, where);
    if (!v.is_number_integer()) fail(where, std::string("field '") + key + "' must be an integer");
    return v.get<int64_t>();
  }
  double number(const json& obj, const char* key, const std::string& where) const {
    const json& v = field(obj, key, where);
    // nlohmann writes NaN and infinity as null; a string is what a hand-edited file would hold.
    if (!v.is_number()) fail(where, std::string("field '") + key + "' must be a finite number, got " + v.dump());
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(where, std::string("field '") + key + "' is not finite");
    return d;
  }
};

int64_t total_elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string bits_text(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", b);
  return buf;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// The recipe's clauses without the auto-bits= and sens= settings (a clause left empty is dropped).
std::vector<std::string> clauses_without_auto_bits(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream clauses(text);
  std::string clause;
  while (std::getline(clauses, clause, ';')) {
    clause = trim(clause);
    if (clause.empty()) continue;
    const bool rule = clause.rfind("encoder", 0) == 0 || clause.rfind("decoder", 0) == 0 ||
                      clause.rfind("role=", 0) == 0 || clause.rfind("name=", 0) == 0;
    if (rule) {
      out.push_back(clause);
      continue;
    }
    std::string kept;
    std::stringstream settings(clause);
    std::string s;
    while (std::getline(settings, s, ',')) {
      s = trim(s);
      if (s.rfind("auto-bits=", 0) == 0 || s.rfind("sens=", 0) == 0) continue;
      kept += (kept.empty() ? "" : ",") + s;
    }
    if (!kept.empty()) out.push_back(kept);
  }
  return out;
}

struct Expansion {
  Recipe recipe;
  AutoMix mix;
  std::string sens_path;
  std::vector<std::string> clauses;  // the expanded recipe, clause by clause
};

Expansion expand(const Recipe& recipe, std::span<const TensorInfo> tensors, const std::string& model_sha256) {
  const PtqSettings& p = recipe.ptq;
  if (!p.auto_bits && p.sensitivity.empty()) return {recipe, {}, "", {}};
  if (!p.auto_bits) throw InvalidArgument("recipe: sens=" + p.sensitivity + " needs auto-bits=B (bits/weight)");
  if (p.sensitivity.empty()) throw InvalidArgument("recipe: auto-bits= needs sens=FILE (quasr sensitivity)");
  const Sensitivity sens = Sensitivity::load(p.sensitivity);
  if (!model_sha256.empty()) sens.check_model(model_sha256, "sensitivity file " + p.sensitivity);
  std::map<std::string, const TensorInfo*> by_name;
  for (const TensorInfo& t : tensors) by_name.emplace(t.name, &t);
  bool conv = false, embed = false;
  for (const SensitivityTensor& st : sens.tensors) {
    auto it = by_name.find(st.tensor.name);
    if (it == by_name.end())
      throw InvalidArgument("sensitivity file " + p.sensitivity + ": unknown tensor " + st.tensor.name +
                            ": not a quantizable tensor of this model (measured on another model?)");
    if (it->second->shape != st.tensor.shape)
      throw InvalidArgument("sensitivity file " + p.sensitivity + ": tensor " + st.tensor.name +
                            " has another shape in this model (measured on another model?)");
    conv = conv || it->second->kind == TensorInfo::Kind::kConv;
    embed = embed || it->second->kind == TensorInfo::Kind::kEmbedding;
  }
  Expansion e;
  e.sens_path = p.sensitivity;
  try {
    e.mix = auto_mix(sens, *p.auto_bits);
  } catch (const InvalidArgument& err) {
    throw InvalidArgument("recipe: auto-bits=" + bits_text(*p.auto_bits) + " with sens=" + p.sensitivity + ": " +
                          err.what());
  }
  e.clauses = clauses_without_auto_bits(recipe.text);
  if (conv && !recipe.conv) e.clauses.push_back("conv=on");
  if (embed && !recipe.embed) e.clauses.push_back("embed=on");
  for (size_t i = 0; i < e.mix.names.size(); ++i)
    e.clauses.push_back("name=" + e.mix.names[i] + ": w=" + e.mix.formats[i].to_string());
  std::string text;
  for (const std::string& c : e.clauses) text += (text.empty() ? "" : ";") + c;
  e.recipe = Recipe::parse(text);
  if (e.recipe.ptq.auto_bits || !e.recipe.ptq.sensitivity.empty())
    throw InvalidArgument("recipe: auto-bits= or sens= given more than once");
  return e;
}

}  // namespace

// ---- file ------------------------------------------------------------------------------------------------------

void Sensitivity::save(const std::string& path) const {
  json tensors_json = json::array();
  for (const SensitivityTensor& t : tensors) {
    json options = json::array();
    for (const SensitivityOption& o : t.options) {
      if (!std::isfinite(o.kl)) throw InvalidArgument("sensitivity of " + t.tensor.name + " is not finite");
      options.push_back({{"format", o.format.to_string()},
                         {"bits_per_weight", o.bits_per_weight},
                         {"bytes", o.bytes},
                         {"kl", o.kl}});
    }
    tensors_json.push_back({{"name", t.tensor.name},
                            {"stack", t.tensor.stack},
                            {"layer", t.tensor.layer},
                            {"role", t.tensor.role},
                            {"kind", kind_name(t.tensor.kind)},
                            {"shape", t.tensor.shape},
                            {"elements", t.elements},
                            {"options", std::move(options)}});
  }
  const json j = {{"format", kFormatTag},
                  {"format_revision", kSensitivityRevision},
                  {"model_sha256", model_sha256},
                  {"model", model},
                  {"data", data},
                  {"utterances", utterances},
                  {"tokens", tokens},
                  {"proxy", proxy},
                  {"tensors", std::move(tensors_json)}};
  io::write_text_file_atomic(path, j.dump(1) + "\n");
}

Sensitivity Sensitivity::load(const std::string& path) {
  const json j = io::read_json_file(path);
  const Reader r{path};
  if (!j.is_object()) r.fail("top level", "expected a JSON object");
  if (r.str(j, "format", "top level") != kFormatTag)
    r.fail("top level", std::string("not a sensitivity file (format must be '") + kFormatTag + "')");
  const int64_t rev = r.integer(j, "format_revision", "top level");
  if (rev != kSensitivityRevision)
    r.fail("top level", "format_revision " + std::to_string(rev) + " is not supported (this build reads " +
                            std::to_string(kSensitivityRevision) + ")");
  Sensitivity s;
  s.model_sha256 = r.str(j, "model_sha256", "top level");
  if (s.model_sha256.size() != 64 ||
      s.model_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    r.fail("top level", "model_sha256 must be 64 lowercase hex digits");
  s.model = r.str(j, "model", "top level");
  s.data = r.str(j, "data", "top level");
  s.utterances = r.integer(j, "utterances", "top level");
  s.tokens = r.integer(j, "tokens", "top level");
  s.proxy = r.str(j, "proxy", "top level");
  if (s.utterances < 1 || s.tokens < 1) r.fail("top level", "utterances and tokens must be >= 1");
  const json& tensors = r.field(j, "tensors", "top level");
  if (!tensors.is_array() || tensors.empty()) r.fail("top level", "'tensors' must be a non-empty array");
  std::set<std::string> seen;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const json& tj = tensors[i];
    SensitivityTensor t;
    const std::string at = "tensors[" + std::to_string(i) + "]";
    t.tensor.name = r.str(tj, "name", at);
    const std::string where = at + " (" + t.tensor.name + ")";
    if (!seen.insert(t.tensor.name).second) r.fail(where, "tensor listed twice");
    t.tensor.stack = r.str(tj, "stack", where);
    t.tensor.layer = static_cast<int>(r.integer(tj, "layer", where));
    t.tensor.role = r.str(tj, "role", where);
    const std::string kind = r.str(tj, "kind", where);
    if (kind == "linear") t.tensor.kind = TensorInfo::Kind::kLinear;
    else if (kind == "conv") t.tensor.kind = TensorInfo::Kind::kConv;
    else if (kind == "embedding") t.tensor.kind = TensorInfo::Kind::kEmbedding;
    else r.fail(where, "kind must be linear, conv or embedding, got '" + kind + "'");
    const json& shape = r.field(tj, "shape", where);
    if (!shape.is_array() || shape.size() != 2) r.fail(where, "shape must be [out, K]");
    for (const json& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1) r.fail(where, "shape entries must be positive integers");
      t.tensor.shape.push_back(d.get<int64_t>());
    }
    t.elements = r.integer(tj, "elements", where);
    if (t.elements != total_elements(t.tensor.shape)) r.fail(where, "elements does not match the shape");
    const json& options = r.field(tj, "options", where);
    if (!options.is_array() || options.empty()) r.fail(where, "'options' must be a non-empty array");
    std::set<std::string> formats_seen;
    for (size_t k = 0; k < options.size(); ++k) {
      const std::string ow = where + " options[" + std::to_string(k) + "]";
      SensitivityOption o;
      const std::string spec = r.str(options[k], "format", ow);
      try {
        o.format = formats::QuantSpec::parse(spec);
      } catch (const Error& e) {
        r.fail(ow, "format '" + spec + "': " + e.what());
      }
      if (!formats_seen.insert(o.format.to_string()).second) r.fail(ow, "format " + spec + " listed twice");
      o.bytes = r.integer(options[k], "bytes", ow);
      o.bits_per_weight = r.number(options[k], "bits_per_weight", ow);
      o.kl = r.number(options[k], "kl", ow);
      if (o.kl < 0) r.fail(ow, "kl must be >= 0");
      // The bytes must be what this build stores for the format: a file from a build with other size accounting
      // (or edited by hand) would otherwise silently miss the budget.
      int64_t expected = -1;
      try {
        expected = static_cast<int64_t>(formats::expected_storage(o.format, t.tensor.shape).total());
      } catch (const Error& e) {
        r.fail(ow, "format " + spec + " does not fit the shape: " + e.what());
      }
      if (o.bytes != expected)
        r.fail(ow, "bytes " + std::to_string(o.bytes) + " differ from the " + std::to_string(expected) +
                       " this build stores for " + spec);
      if (std::abs(o.bits_per_weight - 8.0 * static_cast<double>(o.bytes) / static_cast<double>(t.elements)) > 1e-6)
        r.fail(ow, "bits_per_weight does not match bytes / elements");
      t.options.push_back(std::move(o));
    }
    s.tensors.push_back(std::move(t));
  }
  return s;
}

void Sensitivity::check_model(const std::string& sha, const std::string& source) const {
  if (sha != model_sha256)
    throw InvalidArgument(source + " was measured on another model (source sha256 " + model_sha256 + ", this model " +
                          sha + "): run quasr sensitivity on this model");
}

// ---- allocator -------------------------------------------------------------------------------------------------

Allocation allocate_min_cost(std::span<const std::vector<AllocationOption>> items, int64_t budget) {
  const size_t n = items.size();
  // Cheapest bytes of items i.. (suffix sums), to drop partial choices that can no longer fit.
  std::vector<int64_t> min_rest(n + 1, 0);
  for (size_t i = n; i-- > 0;) {
    if (items[i].empty()) throw InvalidArgument("allocation: item " + std::to_string(i) + " has no option");
    int64_t m = std::numeric_limits<int64_t>::max();
    for (const AllocationOption& o : items[i]) m = std::min(m, o.bytes);
    min_rest[i] = min_rest[i + 1] + m;
  }
  if (min_rest[0] > budget)
    throw InvalidArgument("allocation: the cheapest choice needs " + std::to_string(min_rest[0]) +
                          " bytes, more than the budget of " + std::to_string(budget));
  // frontier[i]: Pareto-optimal partial choices over items [0, i), sorted by bytes with strictly decreasing cost.
  struct Point {
    int64_t bytes;
    double cost;
    int32_t parent;  // index into frontier[i - 1]
    int32_t option;
  };
  std::vector<std::vector<Point>> frontier(n + 1);
  frontier[0] = {{0, 0.0, -1, -1}};
  std::vector<Point> cand;
  for (size_t i = 0; i < n; ++i) {
    cand.clear();
    const int64_t limit = budget - min_rest[i + 1];
    const auto& prev = frontier[i];
    for (size_t pi = 0; pi < prev.size(); ++pi)
      for (size_t k = 0; k < items[i].size(); ++k) {
        const int64_t b = prev[pi].bytes + items[i][k].bytes;
        if (b <= limit)
          cand.push_back({b, prev[pi].cost + items[i][k].cost, static_cast<int32_t>(pi), static_cast<int32_t>(k)});
      }
    // By bytes, then cost, then (parent, option) so ties resolve the same way every run.
    std::sort(cand.begin(), cand.end(), [](const Point& a, const Point& b) {
      if (a.bytes != b.bytes) return a.bytes < b.bytes;
      if (a.cost != b.cost) return a.cost < b.cost;
      if (a.parent != b.parent) return a.parent < b.parent;
      return a.option < b.option;
    });
    auto& next = frontier[i + 1];
    double best = std::numeric_limits<double>::infinity();
    for (const Point& p : cand)
      if (p.cost < best) {  // dominated otherwise: no fewer bytes and no lower cost than a kept point
        next.push_back(p);
        best = p.cost;
      }
    QUASR_ASSERT(!next.empty());
  }
  // The last point has the lowest cost (costs decrease along a frontier).
  Allocation a;
  a.choice.assign(n, -1);
  int32_t idx = static_cast<int32_t>(frontier[n].size()) - 1;
  a.bytes = frontier[n][idx].bytes;
  a.cost = frontier[n][idx].cost;
  for (size_t i = n; i > 0; --i) {
    const Point& p = frontier[i][idx];
    a.choice[i - 1] = p.option;
    idx = p.parent;
  }
  return a;
}

// ---- recipe integration ----------------------------------------------------------------------------------------

AutoMix auto_mix(const Sensitivity& sens, double bits) {
  AutoMix m;
  std::vector<std::vector<AllocationOption>> items;
  int64_t min_bytes = 0, max_bytes = 0;
  for (const SensitivityTensor& t : sens.tensors) {
    m.names.push_back(t.tensor.name);
    m.elements += t.elements;
    std::vector<AllocationOption> opts;
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
    for (const SensitivityOption& o : t.options) {
      opts.push_back({o.bytes, o.kl});
      lo = std::min(lo, o.bytes);
      hi = std::max(hi, o.bytes);
    }
    min_bytes += lo;
    max_bytes += hi;
    items.push_back(std::move(opts));
  }
  const double el = static_cast<double>(m.elements);
  m.min_bits = 8.0 * static_cast<double>(min_bytes) / el;
  m.max_bits = 8.0 * static_cast<double>(max_bytes) / el;
  if (!std::isfinite(bits) || bits < m.min_bits || bits > m.max_bits)
    throw InvalidArgument("target " + bits_text(bits) + " bits/weight is outside what the measured formats reach: " +
                          bits_text(m.min_bits) + " to " + bits_text(m.max_bits) + " bits/weight over " +
                          std::to_string(sens.tensors.size()) + " tensors (measure more formats to widen it)");
  // The budget in whole bytes, floor(bits * elements / 8), computed so that bits == max_bits or min_bits (as
  // printed from exact byte counts) is never lost to rounding.
  m.budget_bytes = static_cast<int64_t>(std::floor(bits * el / 8.0 + 1e-9 * el));
  m.budget_bytes = std::clamp(m.budget_bytes, min_bytes, max_bytes);
  const Allocation a = allocate_min_cost(items, m.budget_bytes);
  for (size_t i = 0; i < sens.tensors.size(); ++i) m.formats.push_back(sens.tensors[i].options[a.choice[i]].format);
  m.bytes = a.bytes;
  m.kl = a.cost;
  m.bits_per_weight = 8.0 * static_cast<double>(m.bytes) / el;
  return m;
}

Recipe expand_auto_bits(const Recipe& recipe, std::span<const TensorInfo> tensors, const std::string& model_sha256) {
  return expand(recipe, tensors, model_sha256).recipe;
}

std::string auto_mix_recipe_text(const Recipe& recipe, std::span<const TensorInfo> tensors,
                                 const std::string& model_sha256) {
  const Expansion e = expand(recipe, tensors, model_sha256);
  if (e.sens_path.empty()) throw InvalidArgument("auto-mix: the recipe has no auto-bits=B,sens=FILE");
  std::ostringstream o;
  char line[512];
  std::snprintf(line, sizeof line,
                "# auto-bits=%s from %s: %.4f bits/weight (%lld of %lld budget bytes) over %zu tensors, summed KL "
                "%.6g\n# achievable with the measured formats: %.4f to %.4f bits/weight\n",
                bits_text(*recipe.ptq.auto_bits).c_str(), e.sens_path.c_str(), e.mix.bits_per_weight,
                static_cast<long long>(e.mix.bytes), static_cast<long long>(e.mix.budget_bytes), e.mix.names.size(),
                e.mix.kl, e.mix.min_bits, e.mix.max_bits);
  o << line;
  for (const std::string& c : e.clauses) o << c << "\n";
  return o.str();
}

}  // namespace quasr::quant
