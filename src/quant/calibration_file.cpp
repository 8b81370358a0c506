// The calibration file (quant/calibration.h): safetensors with one group of tensors per distinct Linear input and
// the description in the metadata key "quasr.calibration" (JSON). Layout, revision 1:
//   tensors  "<group>:channel_max_abs" F32 [k], "<group>:channel_sum_abs" F64 [k],
//            "<group>:xtx_upper" F64 [k (k + 1) / 2] (X^T X is symmetric: its upper triangle, row by row),
//            "<group>:samples" F32 [n_samples, k], "<group>:channel_hist_max" F32 [k],
//            "<group>:channel_hist" U64 [k, hist_bins]
//   metadata {"format_revision": 1, "model_sha256", "data", "utterances",
//             "collect": {"max_samples", "hist_bins", "seed"},
//             "groups": {"<group>": {"k", "rows", "n_samples"}},
//             "inputs": {"<weight name>": "<group>"}, "content_sha256"}
// content_sha256 covers every tensor's name, dtype, shape and bytes (in name order): a flipped bit anywhere in the
// data is an error, not a silently different statistic.
// A group is named after the first weight name (in name order) that has it; Linears sharing an input map to it.
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/io/safetensors.h"
#include "quasr/quant/calibration.h"

namespace quasr::quant {
namespace {

static_assert(std::endian::native == std::endian::little, "calibration files are written in host byte order");

constexpr const char* kMetadataKey = "quasr.calibration";

template <class T>
io::RawTensor raw(const char* dtype, std::vector<int64_t> shape, const std::vector<T>& v) {
  io::RawTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

std::string content_hash(const std::map<std::string, io::RawTensor, std::less<>>& tensors) {
  Sha256 h;
  for (const auto& [name, t] : tensors) {
    h.update(name + "\n" + t.dtype + "\n" + nlohmann::json(t.shape).dump() + "\n");
    h.update(std::span<const uint8_t>(t.bytes));
  }
  return h.finish_hex();
}

}  // namespace

const InputStats& Calibration::at(std::string_view weight_name) const {
  auto it = inputs.find(weight_name);
  if (it == inputs.end())
    throw InvalidArgument("calibration has no statistics for " + std::string(weight_name) +
                          " (was it made for this model?)");
  return it->second;
}

void Calibration::check_model(const std::string& source_sha256, const std::string& source) const {
  if (model_sha256 != source_sha256)
    throw InvalidArgument(source + " was made on the model with weights " + model_sha256.substr(0, 12) +
                          "..., not on this one (" + source_sha256.substr(0, 12) +
                          "...): recalibrate with quasr calibrate --model <this model>");
}

void Calibration::save(const std::string& path) const {
  std::map<std::string, io::RawTensor, std::less<>> tensors;
  nlohmann::json groups = nlohmann::json::object(), names = nlohmann::json::object();
  std::vector<std::pair<const std::string*, const InputStats*>> written;
  for (const auto& [name, s] : inputs) {
    // Linears that saw the same input have equal statistics: store them once.
    const std::string* group = nullptr;
    for (const auto& [g, gs] : written)
      if (*gs == s) group = g;
    if (group) {
      names[name] = *group;
      continue;
    }
    const size_t k = static_cast<size_t>(s.k);
    if (s.k < 1 || s.channel_max_abs.size() != k || s.channel_sum_abs.size() != k || s.xtx.size() != k * k ||
        s.samples.size() != static_cast<size_t>(s.n_samples) * k || s.channel_hist_max.size() != k ||
        s.hist_bins < 1 || s.channel_hist.size() != k * static_cast<size_t>(s.hist_bins))
      throw InvalidArgument("calibration: statistics of " + name + " have inconsistent sizes");
    tensors[name + ":channel_max_abs"] = raw("F32", {s.k}, s.channel_max_abs);
    tensors[name + ":channel_sum_abs"] = raw("F64", {s.k}, s.channel_sum_abs);
    std::vector<double> upper;
    upper.reserve(k * (k + 1) / 2);
    for (size_t i = 0; i < k; ++i)
      for (size_t j = i; j < k; ++j) {
        if (s.xtx[i * k + j] != s.xtx[j * k + i])
          throw InvalidArgument("calibration: X^T X of " + name + " is not symmetric");
        upper.push_back(s.xtx[i * k + j]);
      }
    tensors[name + ":xtx_upper"] = raw("F64", {s.k * (s.k + 1) / 2}, upper);
    tensors[name + ":samples"] = raw("F32", {s.n_samples, s.k}, s.samples);
    tensors[name + ":channel_hist_max"] = raw("F32", {s.k}, s.channel_hist_max);
    tensors[name + ":channel_hist"] = raw("U64", {s.k, int64_t{s.hist_bins}}, s.channel_hist);
    groups[name] = {{"k", s.k}, {"rows", s.rows}, {"n_samples", s.n_samples}};
    names[name] = name;
    written.emplace_back(&name, &s);
  }
  nlohmann::json meta = {{"format_revision", kCalibrationFileRevision},
                         {"model_sha256", model_sha256},
                         {"data", data},
                         {"utterances", utterances},
                         {"collect",
                          {{"max_samples", options.max_samples}, {"hist_bins", options.hist_bins}, {"seed", options.seed}}},
                         {"groups", groups},
                         {"inputs", names},
                         {"content_sha256", content_hash(tensors)}};
  io::write_safetensors_raw(path, tensors, {{kMetadataKey, meta.dump()}});
}

Calibration Calibration::load(const std::string& path) {
  io::RawSafetensorsFile f = io::read_safetensors_raw(path);
  auto fail = [&](const std::string& msg) { return IoError(path + ": not a valid calibration file: " + msg); };
  auto it = f.metadata.find(kMetadataKey);
  if (it == f.metadata.end())
    throw fail(std::string("no \"") + kMetadataKey + "\" metadata (is it a calibration file from quasr calibrate?)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("metadata is not valid JSON (") + e.what() + ")");
  }
  Calibration c;
  // Group name -> statistics read from the tensors (each checked once), then copied to every input that uses it.
  std::map<std::string, InputStats, std::less<>> groups;
  try {
    const int revision = meta.at("format_revision").get<int>();
    if (revision != kCalibrationFileRevision)
      throw fail("format revision " + std::to_string(revision) + ", this quasr reads revision " +
                 std::to_string(kCalibrationFileRevision) + " (recalibrate with this version)");
    c.model_sha256 = meta.at("model_sha256").get<std::string>();
    c.data = meta.at("data").get<std::string>();
    c.utterances = meta.at("utterances").get<int64_t>();
    const auto& col = meta.at("collect");
    c.options.max_samples = col.at("max_samples").get<int64_t>();
    c.options.hist_bins = col.at("hist_bins").get<int>();
    c.options.seed = col.at("seed").get<uint64_t>();
    if (c.utterances < 0 || c.options.max_samples < 0 || c.options.hist_bins < 2)
      throw fail("negative utterance or sample count, or fewer than 2 histogram bins");
    size_t used_tensors = 0;
    for (const auto& item : meta.at("groups").items()) {
      const std::string g = item.key();
      const nlohmann::json& info = item.value();
      InputStats s;
      s.k = info.at("k").get<int64_t>();
      s.rows = info.at("rows").get<int64_t>();
      s.n_samples = info.at("n_samples").get<int64_t>();
      s.hist_bins = c.options.hist_bins;
      if (s.k < 1 || s.k > (int64_t{1} << 20) || s.rows < 0 || s.n_samples < 0 || s.n_samples > s.rows ||
          s.n_samples > c.options.max_samples)
        throw fail("group " + g + " has implausible sizes (k " + std::to_string(s.k) + ", rows " +
                   std::to_string(s.rows) + ", samples " + std::to_string(s.n_samples) + ")");
      auto take = [&](const char* field, const char* dtype, std::vector<int64_t> shape, auto& out) {
        const std::string tn = g + ":" + field;
        auto t = f.tensors.find(tn);
        if (t == f.tensors.end()) throw fail("tensor " + tn + " is missing");
        if (t->second.dtype != dtype || t->second.shape != shape)
          throw fail("tensor " + tn + " is " + t->second.dtype + " " + nlohmann::json(t->second.shape).dump() +
                     ", expected " + dtype + " " + nlohmann::json(shape).dump());
        using T = typename std::remove_reference_t<decltype(out)>::value_type;
        out.resize(t->second.bytes.size() / sizeof(T));
        if (!out.empty()) std::memcpy(out.data(), t->second.bytes.data(), t->second.bytes.size());
        ++used_tensors;
      };
      take("channel_max_abs", "F32", {s.k}, s.channel_max_abs);
      take("channel_sum_abs", "F64", {s.k}, s.channel_sum_abs);
      std::vector<double> upper;
      take("xtx_upper", "F64", {s.k * (s.k + 1) / 2}, upper);
      s.xtx.assign(static_cast<size_t>(s.k * s.k), 0.0);
      for (int64_t i = 0, u = 0; i < s.k; ++i)
        for (int64_t j = i; j < s.k; ++j, ++u) s.xtx[i * s.k + j] = s.xtx[j * s.k + i] = upper[u];
      take("samples", "F32", {s.n_samples, s.k}, s.samples);
      take("channel_hist_max", "F32", {s.k}, s.channel_hist_max);
      take("channel_hist", "U64", {s.k, int64_t{s.hist_bins}}, s.channel_hist);
      for (int64_t j = 0; j < s.k; ++j) {
        const uint64_t* h = s.channel_hist.data() + j * s.hist_bins;
        const uint64_t count = std::accumulate(h, h + s.hist_bins, uint64_t{0});
        if (count != static_cast<uint64_t>(s.rows))
          throw fail("group " + g + " channel " + std::to_string(j) + ": histogram counts " + std::to_string(count) +
                     " values, expected the " + std::to_string(s.rows) + " rows");
        const float m = s.channel_max_abs[j], hm = s.channel_hist_max[j];
        if (!std::isfinite(m) || !std::isfinite(hm) || m < 0 || m > hm || !(s.channel_sum_abs[j] >= 0))
          throw fail("group " + g + " channel " + std::to_string(j) + ": max |x| " + std::to_string(m) +
                     ", histogram range " + std::to_string(hm) + " or sum |x| are inconsistent");
      }
      for (double v : s.xtx)
        if (!std::isfinite(v)) throw fail("group " + g + ": X^T X has a non-finite value");
      groups.emplace(g, std::move(s));
    }
    if (used_tensors != f.tensors.size())
      throw fail(std::to_string(f.tensors.size() - used_tensors) + " tensors belong to no group");
    if (meta.at("content_sha256").get<std::string>() != content_hash(f.tensors))
      throw fail("the tensor data does not match its checksum (the file is corrupt)");
    for (const auto& item : meta.at("inputs").items()) {
      auto gi = groups.find(item.value().get<std::string>());
      if (gi == groups.end()) throw fail("input " + item.key() + " refers to a missing group " + item.value().dump());
      c.inputs.emplace(item.key(), gi->second);
    }
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("metadata lacks a field or has a wrong type (") + e.what() + ")");
  }
  return c;
}

}  // namespace quasr::quant
