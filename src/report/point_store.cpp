// Point files and the sweep manifest (layout in store.h and docs/report.md).
#include "quasr/report/store.h"

#include <fstream>
#include <map>
#include <mutex>
#include <tuple>
#include <sstream>

#include "quasr/core/error.h"
#include "quasr/core/sha256.h"
#include "quasr/quant/recipe.h"

namespace quasr::report {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kPointFormat = "quasr-sweep-point";
constexpr const char* kManifestFormat = "quasr-sweep";
constexpr int kFormatVersion = 1;

void hash_field(Sha256& h, const std::string& field) {
  // Length prefix: ("ab","c") and ("a","bc") must hash differently.
  h.update(std::to_string(field.size()));
  h.update(":");
  h.update(field);
}

// The files a recipe names (calib=FILE, sens=FILE). A recipe that does not parse names none (running it fails).
std::vector<std::string> recipe_files(const std::string& recipe) {
  std::vector<std::string> files;
  try {
    const quant::Recipe r = quant::Recipe::parse(recipe);
    for (const std::string* f : {&r.ptq.calib, &r.ptq.sensitivity})
      if (!f->empty()) files.push_back(*f);
  } catch (const Error&) {
  }
  return files;
}

// SHA-256 of a file a recipe names, remembered per (path, size, modification time): a sweep verifies many points that
// share one calibration file of hundreds of MB.
std::string named_file_hash(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "missing file " + path;
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec);
  static std::mutex mu;
  static std::map<std::string, std::tuple<uintmax_t, fs::file_time_type, std::string>> memo;
  std::lock_guard<std::mutex> lock(mu);
  auto it = memo.find(path);
  if (it != memo.end() && std::get<0>(it->second) == size && std::get<1>(it->second) == mtime)
    return std::get<2>(it->second);
  std::string h = sha256_file_hex(path);
  memo[path] = {size, mtime, h};
  return h;
}

std::string content_checksum(const json& without_checksum) { return sha256_hex(without_checksum.dump()); }

LayerPrecision layer_from_json(const json& j) {
  LayerPrecision l;
  l.tensor = j.at("tensor").get<std::string>();
  l.role = j.value("role", "");
  l.layer = j.value("layer", -1);
  l.format = j.at("format").get<std::string>();
  l.bytes = j.at("bytes").get<int64_t>();
  l.elements = j.value("elements", int64_t{0});
  return l;
}

json point_json(const SweepPoint& p) {
  return {{"index", p.index}, {"label", p.entry.label}, {"recipe", p.entry.recipe}, {"baseline", p.is_baseline},
          {"hash", p.hash}};
}

SweepPoint point_from_json(const json& j, size_t count) {
  SweepPoint p;
  p.index = j.at("index").get<size_t>();
  p.count = count;
  p.entry.label = j.at("label").get<std::string>();
  p.entry.recipe = j.at("recipe").get<std::string>();
  p.is_baseline = j.at("baseline").get<bool>();
  p.hash = j.at("hash").get<std::string>();
  return p;
}

}  // namespace

std::string dataset_identity(const eval::Dataset& selected, const std::string& selection) {
  Sha256 h;
  hash_field(h, "quasr-dataset-v1");
  hash_field(h, selection);
  for (const auto& u : selected.utterances) {
    hash_field(h, u.id);
    hash_field(h, u.reference);
  }
  return h.finish_hex();
}

std::string point_hash(const SweepContext& c, const std::string& recipe) {
  if (c.model_id.empty()) throw InvalidArgument("sweep context: model_id (a content hash of the model) is empty");
  if (c.dataset_id.empty()) throw InvalidArgument("sweep context: dataset_id is empty");
  Sha256 h;
  hash_field(h, "quasr-point-v1");
  hash_field(h, c.model_id);
  hash_field(h, recipe);
  // The contents of files the recipe names are part of its identity, so a recalibrated file never reuses points
  // measured with the old one (recipes without files hash as before).
  for (const std::string& f : recipe_files(recipe)) hash_field(h, named_file_hash(f));
  hash_field(h, c.dataset_id);
  hash_field(h, c.decode_options);
  hash_field(h, c.quasr_version);
  return h.finish_hex();
}

json to_json(const SweepContext& c) {
  return {{"model_id", c.model_id},       {"model_name", c.model_name},
          {"dataset_id", c.dataset_id},   {"dataset_name", c.dataset_name},
          {"decode_options", c.decode_options}, {"quasr_version", c.quasr_version}};
}

SweepContext context_from_json(const json& j) {
  SweepContext c;
  c.model_id = j.at("model_id").get<std::string>();
  c.model_name = j.value("model_name", "");
  c.dataset_id = j.at("dataset_id").get<std::string>();
  c.dataset_name = j.value("dataset_name", "");
  c.decode_options = j.at("decode_options").get<std::string>();
  c.quasr_version = j.at("quasr_version").get<std::string>();
  return c;
}

json to_json(const LayerPrecision& l) {
  return {{"tensor", l.tensor}, {"role", l.role},   {"layer", l.layer},
          {"format", l.format}, {"bytes", l.bytes}, {"elements", l.elements}};
}

fs::path point_path(const fs::path& out_dir, const std::string& hash) { return out_dir / "points" / (hash + ".json"); }

json encode_point(const StoredPoint& s, const eval::BootstrapOptions& bootstrap) {
  const PointResult& r = s.result;
  json records = json::array();
  for (const auto& rec : r.records) records.push_back(eval::to_json(rec));
  json layers = json::array();
  for (const auto& l : r.layers) layers.push_back(to_json(l));
  auto summary = eval::summarize(s.point.entry.label, r.records, bootstrap);
  json j = {{"format", kPointFormat},
            {"version", kFormatVersion},
            {"point", point_json(s.point)},
            {"context", to_json(s.context)},
            {"summary", eval::to_json(summary)},
            {"size", {{"weight_bytes", r.weight_bytes},
                      {"weight_elements", r.weight_elements},
                      {"bits_per_weight", r.bits_per_weight()}}},
            {"memory", {{"peak_bytes", r.peak_memory_bytes}}},
            {"speed", {{"audio_seconds", summary.audio_seconds},
                       {"decode_seconds", summary.decode_seconds},
                       {"rtf", summary.audio_seconds > 0 ? summary.decode_seconds / summary.audio_seconds : 0.0}}},
            {"layers", layers},
            {"extra", r.extra},
            {"records", records}};
  j["checksum"] = content_checksum(j);
  return j;
}

LoadedEntry load_point_file(const fs::path& file, const std::string& expected_hash) {
  LoadedEntry out;
  std::error_code ec;
  if (!fs::exists(file, ec)) return out;
  out.status = EntryStatus::Corrupt;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    out.problem = "cannot open";
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::exception& e) {
    out.problem = std::string("not valid JSON (truncated?): ") + e.what();
    return out;
  }
  try {
    if (!j.is_object() || j.value("format", "") != kPointFormat) {
      out.problem = "not a quasr sweep point file";
      return out;
    }
    if (j.value("version", 0) != kFormatVersion) {
      out.problem = "point format version " + j["version"].dump() + " (this quasr writes " +
                    std::to_string(kFormatVersion) + ")";
      return out;
    }
    std::string stored_checksum = j.at("checksum").get<std::string>();
    json body = j;
    body.erase("checksum");
    if (content_checksum(body) != stored_checksum) {
      out.problem = "checksum mismatch (the file was modified or damaged)";
      return out;
    }
    StoredPoint s;
    s.context = context_from_json(j.at("context"));
    s.point = point_from_json(j.at("point"), 0);
    std::string recomputed = point_hash(s.context, s.point.entry.recipe);
    if (recomputed != s.point.hash || s.point.hash != expected_hash) {
      out.problem = "identity mismatch: the file is for point " + s.point.hash + ", its content hashes to " +
                    recomputed + ", expected " + expected_hash;
      return out;
    }
    for (const auto& rec : j.at("records")) s.result.records.push_back(eval::utterance_record_from_json(rec));
    s.result.weight_bytes = j.at("size").at("weight_bytes").get<int64_t>();
    s.result.weight_elements = j.at("size").at("weight_elements").get<int64_t>();
    s.result.peak_memory_bytes = j.at("memory").at("peak_bytes").get<int64_t>();
    for (const auto& l : j.at("layers")) s.result.layers.push_back(layer_from_json(l));
    s.result.extra = j.at("extra");
    out.point = std::move(s);
    out.status = EntryStatus::Valid;
  } catch (const std::exception& e) {  // json::exception or InvalidArgument from the record reader
    out.problem = std::string("malformed point file: ") + e.what();
  }
  return out;
}

void write_point_file(const fs::path& out_dir, const StoredPoint& stored, const eval::BootstrapOptions& bootstrap) {
  fs::create_directories(out_dir / "points");
  eval::write_text_atomic(point_path(out_dir, stored.point.hash), encode_point(stored, bootstrap).dump(1) + "\n");
}

Manifest make_manifest(const Grid& grid, const SweepContext& context, const eval::BootstrapOptions& bootstrap) {
  Manifest m;
  m.bootstrap = bootstrap;
  m.context = context;
  m.grid_source = grid.source;
  for (size_t i = 0; i < grid.entries.size(); ++i) {
    SweepPoint p;
    p.index = i;
    p.count = grid.entries.size();
    p.entry = grid.entries[i];
    p.is_baseline = i == 0;
    p.hash = point_hash(context, p.entry.recipe);
    m.points.push_back(std::move(p));
  }
  return m;
}

json to_json(const Manifest& m) {
  json points = json::array();
  for (const auto& p : m.points) points.push_back(point_json(p));
  return {{"format", kManifestFormat}, {"version", kFormatVersion}, {"grid", m.grid_source},
          {"context", to_json(m.context)},
          {"bootstrap",
           {{"resamples", m.bootstrap.resamples}, {"level", m.bootstrap.level}, {"seed", m.bootstrap.seed}}},
          {"points", points}};
}

Manifest manifest_from_json(const json& j, const std::string& where) {
  try {
    if (j.value("format", "") != kManifestFormat) throw InvalidArgument(where + ": not a quasr sweep manifest");
    if (j.value("version", 0) != kFormatVersion)
      throw InvalidArgument(where + ": sweep manifest version " + j["version"].dump() + " is not supported");
    Manifest m;
    m.grid_source = j.value("grid", "");
    m.context = context_from_json(j.at("context"));
    const auto& b = j.at("bootstrap");
    m.bootstrap.resamples = b.at("resamples").get<int>();
    m.bootstrap.level = b.at("level").get<double>();
    m.bootstrap.seed = b.at("seed").get<uint64_t>();
    const auto& points = j.at("points");
    for (const auto& p : points) m.points.push_back(point_from_json(p, points.size()));
    for (size_t i = 0; i < m.points.size(); ++i)
      if (m.points[i].index != i) throw InvalidArgument(where + ": point indices are not 0..N-1 in order");
    return m;
  } catch (const json::exception& e) {
    throw InvalidArgument(where + ": malformed sweep manifest: " + e.what());
  }
}

std::optional<Manifest> read_manifest(const fs::path& out_dir) {
  fs::path file = out_dir / "sweep.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file.string() + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw IoError(file.string() + ": not valid JSON: " + e.what());
  }
  return manifest_from_json(j, file.string());
}

void write_manifest(const fs::path& out_dir, const Manifest& m) {
  fs::create_directories(out_dir);
  eval::write_json_atomic(out_dir / "sweep.json", to_json(m));
}

bool same_sweep(const Manifest& a, const Manifest& b) {
  return to_json(a.context) == to_json(b.context) && a.bootstrap.resamples == b.bootstrap.resamples &&
         a.bootstrap.level == b.bootstrap.level && a.bootstrap.seed == b.bootstrap.seed && [&] {
    if (a.points.size() != b.points.size()) return false;
    for (size_t i = 0; i < a.points.size(); ++i)
      if (point_json(a.points[i]) != point_json(b.points[i])) return false;
    return true;
  }();
}

}  // namespace quasr::report
