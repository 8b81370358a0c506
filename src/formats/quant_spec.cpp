// QuantSpec: defaults from the traits table, the text form (parse / to_string) and validation.
#include "quasr/formats/quant_spec.h"

#include <charconv>
#include <string>
#include <vector>

#include "quasr/core/error.h"

namespace quasr::formats {
namespace {

constexpr int kMaxAxis = 7;            // tensors have at most 8 dims
constexpr int kMaxKmeansIters = 1000;  // far beyond convergence; guards against typos like iters=250000
const QuantSpec kBase{};               // field defaults not taken from the table (iters, seed, percentile)

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = text.find(sep, start);
    out.push_back(text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Parses a non-negative decimal integer that must be the whole token remainder.
template <typename T>
bool parse_uint(std::string_view s, T& out) {
  if (!all_digits(s)) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

[[noreturn]] void bad_token(std::string_view token, std::string_view spec, const std::string& why) {
  throw InvalidArgument("quantization spec '" + std::string(spec) + "': '" + std::string(token) + "': " + why);
}

[[noreturn]] void unknown_format(std::string_view token, std::string_view spec) {
  const std::string t(token);
  int bits = 0;
  if (t.rfind("int", 0) == 0 && parse_uint(std::string_view(t).substr(3), bits))
    bad_token(token, spec, "integer formats have 2 to 8 bits (int2 .. int8)");
  if (t.rfind("kmeans", 0) == 0 && parse_uint(std::string_view(t).substr(6), bits))
    bad_token(token, spec, "k-means codebooks have 2, 3, 4, 6 or 8 bits (kmeans2 .. kmeans8)");
  bad_token(token, spec, "unknown format; known formats: " + format_names());
}

std::string granularity_token(const Granularity& g) {
  switch (g.kind) {
    case GranularityKind::kPerTensor: return "pt";
    case GranularityKind::kPerChannel: return g.axis == 0 ? "pc" : "pc" + std::to_string(g.axis);
    case GranularityKind::kPerGroup: return "g" + std::to_string(g.group);
  }
  return "?";
}

std::string shortest(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

QuantSpec QuantSpec::defaults(FormatId id) {
  const FormatTraits& f = traits(id);
  QuantSpec s;
  s.format = id;
  s.granularity.kind = f.default_granularity;
  s.granularity.axis = 0;
  s.granularity.group = f.default_granularity == GranularityKind::kPerGroup ? f.default_group : 0;
  s.scale_type = f.scale;
  return s;
}

QuantSpec QuantSpec::parse(std::string_view text) {
  if (text.empty()) throw InvalidArgument("empty quantization spec; expected FORMAT[:OPTION]... e.g. int4:g128");
  const std::vector<std::string_view> tokens = split(text, ':');
  const FormatTraits* f = find_format(tokens[0]);
  if (!f) {
    if (tokens[0].empty()) bad_token(tokens[0], text, "missing format name");
    unknown_format(tokens[0], text);
  }
  QuantSpec s = defaults(f->id);
  bool seen_granularity = false, seen_scale = false, seen_estimator = false, seen_rounding = false;
  bool seen_range = false;
  auto once = [&](bool& seen, std::string_view tok, const char* what) {
    if (seen) bad_token(tok, text, std::string(what) + " given twice");
    seen = true;
  };
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::string_view tok = tokens[i];
    if (tok.empty()) bad_token(tok, text, "empty option (two ':' in a row or a trailing ':')");
    if (tok == "pt") {
      once(seen_granularity, tok, "granularity");
      s.granularity = Granularity{GranularityKind::kPerTensor, 0, 0};
    } else if (tok.rfind("pc", 0) == 0) {
      once(seen_granularity, tok, "granularity");
      int axis = 0;
      if (tok.size() > 2 && !parse_uint(tok.substr(2), axis))
        bad_token(tok, text, "per-channel axis must be a non-negative integer, e.g. pc or pc1");
      if (axis > kMaxAxis) bad_token(tok, text, "per-channel axis must be 0.." + std::to_string(kMaxAxis));
      s.granularity = Granularity{GranularityKind::kPerChannel, axis, 0};
    } else if (tok[0] == 'g') {
      once(seen_granularity, tok, "granularity");
      int64_t group = 0;
      if (!parse_uint(tok.substr(1), group)) bad_token(tok, text, "group size must be a positive integer, e.g. g128");
      if (group < 1) bad_token(tok, text, "group size must be >= 1");
      s.granularity = Granularity{GranularityKind::kPerGroup, 0, group};
    } else if (tok.rfind("s=", 0) == 0) {
      once(seen_scale, tok, "scale type");
      const std::string_view t = tok.substr(2);
      if (t == "fp32") s.scale_type = ScaleType::kFp32;
      else if (t == "fp16") s.scale_type = ScaleType::kFp16;
      else if (t == "bf16") s.scale_type = ScaleType::kBf16;
      else bad_token(tok, text, "scale type must be s=fp32, s=fp16 or s=bf16");
    } else if (tok == "max" || tok == "mse") {
      once(seen_estimator, tok, "scale estimator");
      s.estimator = tok == "max" ? ScaleEstimator::kMaxAbs : ScaleEstimator::kMse;
    } else if (tok[0] == 'p') {
      once(seen_estimator, tok, "scale estimator");
      double p = 0;
      const std::string_view num = tok.substr(1);
      const auto r = std::from_chars(num.data(), num.data() + num.size(), p);
      if (num.empty() || r.ec != std::errc() || r.ptr != num.data() + num.size())
        bad_token(tok, text, "percentile must be a number, e.g. p99.9");
      if (!(p > 0 && p <= 100)) bad_token(tok, text, "percentile must be in (0, 100]");
      s.estimator = ScaleEstimator::kPercentile;
      s.percentile = p;
    } else if (tok == "zp") {
      once(seen_range, tok, "integer range (zp / full)");
      s.zero_point = true;
    } else if (tok == "full") {
      once(seen_range, tok, "integer range (zp / full)");
      s.int_range = IntRange::kFull;
    } else if (tok == "even" || tok == "away") {
      once(seen_rounding, tok, "rounding");
      s.rounding = tok == "even" ? Rounding::kHalfEven : Rounding::kHalfAway;
    } else if (tok.rfind("iters=", 0) == 0) {
      int it = 0;
      if (!parse_uint(tok.substr(6), it) || it < 1 || it > kMaxKmeansIters)
        bad_token(tok, text, "iters must be an integer in 1.." + std::to_string(kMaxKmeansIters));
      s.kmeans_iters = it;
    } else if (tok.rfind("seed=", 0) == 0) {
      uint64_t seed = 0;
      if (!parse_uint(tok.substr(5), seed)) bad_token(tok, text, "seed must be a non-negative integer");
      s.seed = seed;
    } else {
      bad_token(tok, text,
                "unknown option; options are pt, pc, pcN, gN, s=fp32|fp16|bf16, max, mse, pP, zp, full, even, "
                "away, iters=N, seed=N");
    }
  }
  try {
    s.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("quantization spec '" + std::string(text) + "': " + e.what());
  }
  return s;
}

std::string QuantSpec::to_string() const {
  const FormatTraits& f = traits(format);
  std::string s = f.name;
  if (f.allows_granularity) s += ":" + granularity_token(granularity);
  if (scale_type != f.scale) s += std::string(":s=") + scale_type_name(scale_type);
  if (estimator == ScaleEstimator::kMse) s += ":mse";
  if (estimator == ScaleEstimator::kPercentile) s += ":p" + shortest(percentile);
  if (zero_point) s += ":zp";
  if (int_range == IntRange::kFull) s += ":full";
  if (rounding == Rounding::kHalfAway) s += ":away";
  if (kmeans_iters != kBase.kmeans_iters) s += ":iters=" + std::to_string(kmeans_iters);
  if (seed != kBase.seed) s += ":seed=" + std::to_string(seed);
  return s;
}

void QuantSpec::validate() const {
  const FormatTraits& f = traits(format);
  const std::string name = f.name;
  const std::string gtok = granularity_token(granularity);
  // Granularity.
  if (!f.allows_granularity) {
    const QuantSpec d = defaults(format);
    if (granularity != d.granularity) {
      if (f.fixed_block)
        throw InvalidArgument("'" + gtok + "': " + name + " fixes its granularity (blocks of " +
                              std::to_string(f.fixed_block) + " along the last axis)");
      throw InvalidArgument("'" + gtok + "': " + name + " is a storage format and takes no granularity");
    }
  }
  if (granularity.kind == GranularityKind::kPerGroup && granularity.group < 1)
    throw InvalidArgument("'" + gtok + "': group size must be >= 1");
  if (granularity.kind == GranularityKind::kPerChannel && (granularity.axis < 0 || granularity.axis > kMaxAxis))
    throw InvalidArgument("'" + gtok + "': per-channel axis must be 0.." + std::to_string(kMaxAxis));
  if (f.kind == FormatKind::kCodebook && granularity.kind == GranularityKind::kPerGroup)
    throw InvalidArgument("'" + gtok + "': " + name + " keeps one codebook per tensor (pt) or per channel (pc/pcN)");
  // Scale type.
  if (f.scale == ScaleType::kNone || f.fixed_block) {
    if (scale_type != f.scale)
      throw InvalidArgument(std::string("'s=") + scale_type_name(scale_type) + "': " + name +
                            (f.scale == ScaleType::kNone ? " has no scale"
                                                         : std::string(" fixes its scale type to ") +
                                                               scale_type_name(f.scale)));
  } else if (scale_type != ScaleType::kFp32 && scale_type != ScaleType::kFp16 && scale_type != ScaleType::kBf16) {
    throw InvalidArgument(std::string("'s=") + scale_type_name(scale_type) + "': scales of " + name +
                          " are stored as fp32, fp16 or bf16");
  }
  // Estimator.
  if (estimator != ScaleEstimator::kMaxAbs && !f.allows_estimator)
    throw InvalidArgument("'" + std::string(estimator == ScaleEstimator::kMse ? "mse" : "pP") + "': " + name +
                          " takes no scale estimator (only integer, scaled float-element and nf4 formats do)");
  if (estimator == ScaleEstimator::kPercentile && !(percentile > 0 && percentile <= 100))
    throw InvalidArgument("'p" + shortest(percentile) + "': percentile must be in (0, 100]");
  // Integer options.
  const bool integer = f.kind == FormatKind::kInteger;
  if (zero_point && !integer) throw InvalidArgument("'zp': " + name + " has no zero point (integer formats only)");
  if (int_range == IntRange::kFull && !integer)
    throw InvalidArgument("'full': " + name + " has no integer range (integer formats only)");
  if (zero_point && int_range == IntRange::kFull)
    throw InvalidArgument("'full': symmetric full range and 'zp' (affine) exclude each other");
  if (rounding == Rounding::kHalfAway && !integer)
    throw InvalidArgument("'away': " + name + " rounds to nearest even (rounding options are for integers)");
  // Codebook options.
  const bool codebook = f.kind == FormatKind::kCodebook;
  if (!codebook && kmeans_iters != kBase.kmeans_iters)
    throw InvalidArgument("'iters=" + std::to_string(kmeans_iters) + "': only k-means formats take iters");
  if (!codebook && seed != kBase.seed)
    throw InvalidArgument("'seed=" + std::to_string(seed) + "': only k-means formats take a seed");
  if (kmeans_iters < 1 || kmeans_iters > kMaxKmeansIters)
    throw InvalidArgument("'iters=" + std::to_string(kmeans_iters) + "': iters must be in 1.." +
                          std::to_string(kMaxKmeansIters));
}

}  // namespace quasr::formats
