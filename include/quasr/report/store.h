#pragma once
// The sweep's on-disk store: one self-checksummed JSON file per finished point (<out>/points/<hash>.json) and a
// manifest (<out>/sweep.json) naming the sweep's context and points. Used by run_sweep / merge_sweeps / the
// renderers; exposed for tests and tools that read sweeps.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quasr/report/sweep.h"

namespace quasr::report {

struct StoredPoint {
  SweepPoint point;
  SweepContext context;
  PointResult result;
};

enum class EntryStatus { Valid, Missing, Corrupt };
struct LoadedEntry {
  EntryStatus status = EntryStatus::Missing;
  std::string problem;  // for Corrupt: what failed (parse error, checksum mismatch, hash mismatch...)
  std::optional<StoredPoint> point;
};

std::filesystem::path point_path(const std::filesystem::path& out_dir, const std::string& hash);

// The file's JSON: the point, context, summary, records, size/memory/speed, layers, and "checksum" = SHA-256 of
// the compact dump of everything else.
nlohmann::json encode_point(const StoredPoint& stored, const eval::BootstrapOptions& bootstrap = {});
// Checks the checksum, the format tag, and that the hash recomputed from the stored context and recipe equals
// `expected_hash` (and the file name); never throws for a bad file (status Corrupt with the reason).
LoadedEntry load_point_file(const std::filesystem::path& file, const std::string& expected_hash);
void write_point_file(const std::filesystem::path& out_dir, const StoredPoint& stored,
                      const eval::BootstrapOptions& bootstrap = {});

struct Manifest {
  SweepContext context;
  std::vector<SweepPoint> points;  // index order; entry.line is not stored
  std::string grid_source;
};
Manifest make_manifest(const Grid& grid, const SweepContext& context);
nlohmann::json to_json(const Manifest& manifest);
Manifest manifest_from_json(const nlohmann::json& j, const std::string& where);  // InvalidArgument naming `where`
std::optional<Manifest> read_manifest(const std::filesystem::path& out_dir);    // nullopt when absent
void write_manifest(const std::filesystem::path& out_dir, const Manifest& manifest);
// Same context and the same points (index, label, recipe, hash).
bool same_sweep(const Manifest& a, const Manifest& b);

nlohmann::json to_json(const SweepContext& context);
SweepContext context_from_json(const nlohmann::json& j);
nlohmann::json to_json(const LayerPrecision& layer);

}  // namespace quasr::report
