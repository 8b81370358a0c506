#pragma once
// Sweeps: run every scheme of a grid over one model and one dataset, caching each finished point on disk so an
// interrupted sweep resumes without recomputing, and split across machines with --shard i/N + merge.
//
// The report module does not evaluate anything itself (it never reaches into kernels or models): the caller
// (the CLI's `quasr sweep`) supplies a SweepFunction that evaluates one point, and this module owns the grid,
// the point identities, the store, progress, sharding, merging and the outputs.
//
//   Grid grid = load_grid("grid.txt", validate_recipe);
//   SweepContext ctx{.model_id = sha256_file_hex(model/"model.bin"), .model_name = "tiny.en",
//                    .dataset_id = dataset_identity(selected, "limit=100"), .dataset_name = "mini-eval",
//                    .decode_options = "beam=1;lang=en"};
//   SweepOptions opt{.out_dir = "sweep-out", .shard = parse_shard("0/2")};
//   SweepStats stats = run_sweep(grid, ctx, [&](const SweepPoint& p, Progress& progress) {
//       PointResult r;  ... for each utterance: r.records.push_back(...); progress.advance(i + 1, n); ...
//       r.weight_bytes = ...; r.weight_elements = ...; r.layers = ...;
//       return r; }, opt);
//   // later, after all shards finished:  merge_sweeps({"out0", "out1"}, "sweep-out");  (also renders)
//
// Store layout (docs/report.md): <out>/sweep.json (the manifest: context + every point's index, label, recipe,
// hash), <out>/points/<hash>.json (one per finished point, written atomically, self-checksummed), and the
// outputs results.jsonl, results.csv, results.md, pareto.json, report.html.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quasr/eval/dataset.h"
#include "quasr/eval/results.h"
#include "quasr/report/grid.h"

namespace quasr::report {

// What every point of a sweep shares; all of it goes into each point's hash.
struct SweepContext {
  std::string model_id;        // content hash of the model (e.g. sha256_file_hex of model.bin); required
  std::string model_name;      // human-readable (not hashed)
  std::string dataset_id;      // dataset_identity(...) of the selected utterances; required
  std::string dataset_name;    // human-readable (not hashed)
  std::string decode_options;  // canonical text of the decoding options (beam size, language...), hashed
  std::string quasr_version = QUASR_VERSION;
};

// Content id of an evaluation set: SHA-256 over the ids and reference texts of the selected utterances, in
// order, plus `selection` (a canonical text such as "limit=100;seed=7").
std::string dataset_identity(const eval::Dataset& selected, const std::string& selection);

// SHA-256 (hex) of model id, recipe, dataset id, decode options and quasr version, length-prefixed so no two
// different tuples can collide by concatenation.
std::string point_hash(const SweepContext& context, const std::string& recipe);

struct SweepPoint {
  size_t index = 0;  // position in the grid (0 = baseline)
  size_t count = 0;  // points in the grid
  GridEntry entry;
  bool is_baseline = false;
  std::string hash;
};

// One weight tensor as the scheme stores it (for the per-layer precision/size table).
struct LayerPrecision {
  std::string tensor;  // e.g. "encoder.layer.0.self_attention.linear_0.weight"
  std::string role;    // e.g. "attn_qkv", "mlp_fc1", "embedding"
  int layer = -1;      // layer index, -1 when not in a layer
  std::string format;  // e.g. "int4:g128", "fp32"
  int64_t bytes = 0;   // bytes actually stored (payload + scales/zero points/codebook)
  int64_t elements = 0;
};

// What the SweepFunction returns for one point.
struct PointResult {
  std::vector<eval::UtteranceRecord> records;  // one per utterance of the dataset, in dataset order
  int64_t weight_bytes = 0;     // bytes of all weights as stored under the scheme (0 = unknown)
  int64_t weight_elements = 0;  // number of weight elements (FP32 size = 4 x this); 0 = unknown
  int64_t peak_memory_bytes = 0;  // peak resident memory while evaluating (0 = unknown)
  std::vector<LayerPrecision> layers;                 // optional
  nlohmann::json extra = nlohmann::json::object();  // free-form (kernel names, thread count...)

  double bits_per_weight() const { return weight_elements ? 8.0 * weight_bytes / weight_elements : 0; }
};

// Progress within the current point, so the ETA moves during long points. Safe to ignore.
class Progress {
 public:
  virtual ~Progress() = default;
  virtual void advance(size_t done, size_t total) = 0;  // e.g. utterances decoded so far
};

using SweepFunction = std::function<PointResult(const SweepPoint&, Progress&)>;

struct Shard {
  size_t index = 0, count = 1;  // runs the points with grid index % count == index
};
Shard parse_shard(const std::string& text);  // "i/N" with 0 <= i < N; InvalidArgument otherwise

enum class ProgressStyle { Auto, Bar, Lines, Quiet };  // Auto: Bar when stderr is a terminal, else Lines

struct SweepOptions {
  std::filesystem::path out_dir;
  Shard shard;
  ProgressStyle progress = ProgressStyle::Auto;
  std::ostream* progress_stream = nullptr;  // default std::cerr
  // Write results.* / pareto.json / report.html when this run leaves every grid point finished in out_dir.
  bool write_outputs = true;
  eval::BootstrapOptions bootstrap;
};

struct SweepStats {
  size_t points = 0;     // in the grid
  size_t in_shard = 0;   // this run's share
  size_t cached = 0;     // valid entries found and not recomputed
  size_t computed = 0;   // SweepFunction calls that finished
  size_t recovered = 0;  // corrupted/truncated entries found, reported and recomputed (counted in computed too)
  bool outputs_written = false;
};

// Runs the shard's points that have no valid entry yet. A SweepFunction exception stops the sweep and
// propagates (the finished points stay stored, so rerunning resumes). Throws InvalidArgument when out_dir holds
// a manifest of a different sweep (other context or grid).
SweepStats run_sweep(const Grid& grid, const SweepContext& context, const SweepFunction& evaluate,
                     const SweepOptions& options);

// Combines the stores of shard runs into out_dir (which may be one of the inputs): manifests must describe the
// same sweep; a hash present in two inputs with different content is an error (InvalidArgument naming both
// files); corrupted entries are reported and skipped. Writes the outputs when every point is then present.
struct MergeStats {
  size_t points = 0, present = 0, copied = 0, skipped_corrupt = 0;
  bool outputs_written = false;
};
MergeStats merge_sweeps(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out_dir,
                        std::ostream* log = nullptr, const eval::BootstrapOptions& bootstrap = {});

// (Re)writes results.jsonl, results.csv, results.md, pareto.json and report.html from out_dir's manifest and
// points; points not finished yet are listed as missing. Returns the number of points rendered.
size_t write_sweep_outputs(const std::filesystem::path& out_dir, const eval::BootstrapOptions& bootstrap = {});

}  // namespace quasr::report
