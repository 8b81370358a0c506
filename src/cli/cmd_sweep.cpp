// `quasr sweep GRID --model M --data D -o DIR [--shard i/N]`: every recipe of a grid file evaluated with
// eval::evaluate() on the same utterances, through the report module's sweep driver (point store with resume,
// shards, progress, Markdown/CSV/JSONL/HTML Pareto report). `quasr sweep merge IN... -o DIR` combines shard runs.
#include <cstdio>
#include <iostream>
#include <optional>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/eval/run.h"
#include "quasr/models/whisper.h"
#include "quasr/core/sha256.h"
#include "quasr/report/sweep.h"

namespace fs = std::filesystem;

namespace quasr::cli {

namespace {

struct SweepArgs {
  std::string grid;
  eval::EvalRequest req;
  std::optional<int64_t> limit;
  std::optional<uint64_t> shuffle;
  std::string out = "sweep-out";
  std::string shard = "0/1";
  std::string progress = "auto";
  std::vector<std::string> merge_inputs;
  std::string merge_out;
  bool merge_partial = false;
};

report::ProgressStyle parse_progress(const std::string& s) {
  if (s == "auto") return report::ProgressStyle::Auto;
  if (s == "bar") return report::ProgressStyle::Bar;
  if (s == "lines") return report::ProgressStyle::Lines;
  if (s == "quiet") return report::ProgressStyle::Quiet;
  throw InvalidArgument("--progress must be auto, bar, lines or quiet, got '" + s + "'");
}

// Content id of the model: its weights file (a .quasr container is itself the file).
std::string model_identity(const std::string& model) {
  if (fs::is_regular_file(model)) return sha256_file_hex(model);
  const fs::path dir = models::resolve_model_dir(model);
  for (const char* name : {"model.bin", "model.safetensors"})
    if (fs::exists(dir / name)) return sha256_file_hex(dir / name);
  throw InvalidArgument("model " + model + ": no model.bin or model.safetensors in " + dir.string());
}

void run_sweep_command(SweepArgs& a) {
  if (a.grid.empty()) throw InvalidArgument("quasr sweep needs a GRID file (or: quasr sweep merge IN... -o DIR)");
  if (a.limit) {
    if (*a.limit <= 0) throw InvalidArgument("--limit must be >= 1, got " + std::to_string(*a.limit));
    a.req.selection.limit = static_cast<size_t>(*a.limit);
  }
  a.req.selection.shuffle_seed = a.shuffle;
  if (a.req.beam_size < 1) throw InvalidArgument("--beam must be >= 1, got " + std::to_string(a.req.beam_size));
  if (a.req.jobs < 1) throw InvalidArgument("--jobs must be >= 1, got " + std::to_string(a.req.jobs));
  const report::Grid grid = report::load_grid(a.grid, eval::check_recipe);
  report::SweepOptions opt;
  opt.out_dir = a.out;
  opt.shard = report::parse_shard(a.shard);
  opt.progress = parse_progress(a.progress);

  // The selected utterances, once, for the dataset identity (evaluate() selects the same ones again).
  const fs::path data_path = eval::resolve_dataset(a.req.data);
  const eval::Dataset selected = eval::select(eval::load_dataset(data_path), a.req.selection);
  std::string selection = "limit=" + (a.limit ? std::to_string(*a.limit) : std::string("all"));
  if (a.shuffle) selection += ";seed=" + std::to_string(*a.shuffle);

  report::SweepContext ctx;
  ctx.model_id = model_identity(a.req.model);
  ctx.model_name = a.req.model;
  ctx.dataset_id = report::dataset_identity(selected, selection);
  ctx.dataset_name = a.req.data;
  ctx.decode_options = "beam=" + std::to_string(a.req.beam_size) + ";lang=" + a.req.language +
                       ";normalizer=" + a.req.normalizer +
                       (a.req.simulate ? ";simulate" : "");

  const report::SweepStats stats = report::run_sweep(
      grid, ctx,
      [&](const report::SweepPoint& p, report::Progress& progress) {
        eval::EvalRequest req = a.req;
        req.recipe = p.entry.recipe;
        req.quiet = true;
        // Per-utterance records of the point in progress, so an interrupted point resumes mid-way too.
        req.out_dir = fs::path(a.out) / "in-progress" / p.hash;
        req.resume = true;
        req.on_utterance = [&progress](size_t done, size_t total) { progress.advance(done, total); };
        eval::EvalResult r;
        try {
          r = eval::evaluate(req);
        } catch (const eval::ResumeMismatch& e) {
          // The point's identity (its hash) already pins the model's content, recipe, data and options, so
          // records of another run here come from elsewhere (e.g. the store was made in a checkout at another
          // path): start the point afresh rather than stop the sweep.
          std::fprintf(stderr, "quasr sweep: %s: discarding its in-progress records (%s)\n",
                       p.entry.label.c_str(), e.what());
          fs::remove_all(req.out_dir);
          r = eval::evaluate(req);
        }
        report::PointResult out;
        out.weight_bytes = r.size.model.bytes;
        out.weight_elements = r.size.model.elements;
        out.peak_memory_bytes = r.peak_rss_bytes;
        for (const auto& t : r.size.tensors)
          out.layers.push_back({t.tensor, t.role, t.layer, t.format, t.bytes, t.elements});
        nlohmann::json s = eval::summary_json(r, /*with_tensors=*/false);
        out.extra = {{"size", s["size"]}, {"memory", s["memory"]}, {"speed", s["speed"]},
                     {"execution", r.execution}, {"threads", r.threads}, {"jobs", r.jobs},
                     {"beam_size", r.beam_size}};
        out.records = std::move(r.records);
        std::error_code ec;
        fs::remove_all(req.out_dir, ec);  // the point store now holds the records
        fs::remove(req.out_dir.parent_path(), ec);  // only succeeds once empty
        return out;
      },
      opt);
  std::printf("quasr sweep: %zu points in the grid, %zu in this shard: %zu computed, %zu already done%s\n",
              stats.points, stats.in_shard, stats.computed, stats.cached,
              stats.recovered ? (", " + std::to_string(stats.recovered) + " corrupted entries recomputed").c_str()
                              : "");
  if (stats.outputs_written)
    std::printf("report: %s/report.html, %s/results.md, %s/results.csv, %s/results.jsonl, %s/pareto.json\n",
                a.out.c_str(), a.out.c_str(), a.out.c_str(), a.out.c_str(), a.out.c_str());
  else
    std::printf("points stored in %s/points; when every shard has run: quasr sweep merge DIR... -o %s\n",
                a.out.c_str(), a.out.c_str());
}

void run_merge(const SweepArgs& a) {
  std::vector<fs::path> inputs(a.merge_inputs.begin(), a.merge_inputs.end());
  const report::MergeStats m = report::merge_sweeps(inputs, a.merge_out, &std::cerr);
  std::printf("quasr sweep merge: %zu of %zu points present (%zu copied, %zu corrupted skipped)\n", m.present,
              m.points, m.copied, m.skipped_corrupt);
  if (m.outputs_written) {
    std::printf("report: %s/report.html, %s/results.md\n", a.merge_out.c_str(), a.merge_out.c_str());
  } else if (a.merge_partial) {
    // An interim report of a long sweep: the finished points, the rest listed as not finished yet.
    report::write_sweep_outputs(a.merge_out);
    std::printf("partial report (%zu of %zu points): %s/report.html, %s/results.md\n", m.present, m.points,
                a.merge_out.c_str(), a.merge_out.c_str());
  } else {
    std::printf("some points are still missing; run the remaining shards and merge again (--partial reports "
                "the finished ones now)\n");
  }
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "Evaluate every recipe of a grid file (resumable, shardable) and write a Pareto report");
  cmd->add_option("grid", a->grid, "Grid file (docs/report.md; e.g. examples/grids/default.grid)");
  cmd->add_option("--model,-m", a->req.model, "Model name or directory")->capture_default_str();
  cmd->add_option("--data,-d", a->req.data, "Split directory, manifest, or mini-eval | mini-calib | test-clean");
  cmd->add_option("--limit,-n", a->limit, "Evaluate the first N utterances (after shuffling)");
  cmd->add_option("--shuffle", a->shuffle, "Shuffle the utterances with this seed before --limit");
  cmd->add_option("--beam", a->req.beam_size, "Beam size (1 = greedy, for evaluation speed)")->capture_default_str();
  cmd->add_option("--language,-l", a->req.language, "Language (default: en for English-only models, else detect)");
  cmd->add_flag("--simulate", a->req.simulate,
                "Run quantized recipes through the simulation path (accuracy only) instead of native kernels");
  cmd->add_option("--threads,-t", a->req.threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--jobs,-j", a->req.jobs,
                  "Utterances of a point decoded at once, one thread each (same results as -t 1; --threads unused)")
      ->capture_default_str();
  cmd->add_option("--output,-o", a->out, "Output directory (point store + report)")->capture_default_str();
  cmd->add_option("--shard", a->shard, "Run the points with index % N == i (i/N)")->capture_default_str();
  cmd->add_option("--progress", a->progress, "auto, bar, lines or quiet")->capture_default_str();
  CLI::App* merge = cmd->add_subcommand("merge", "Combine shard output directories into one and write the report");
  merge->add_option("inputs", a->merge_inputs, "Shard output directories")->required();
  merge->add_option("--output,-o", a->merge_out, "Merged output directory (may be one of the inputs)")->required();
  merge->add_flag("--partial", a->merge_partial,
                  "Write the report even when points are missing (they are listed as not finished)");
  merge->callback([a] { run_merge(*a); });
  cmd->require_subcommand(0, 1);
  cmd->callback([a, merge] {
    if (merge->parsed()) return;
    if (a->req.data.empty()) throw InvalidArgument("quasr sweep: --data is required");
    run_sweep_command(*a);
  });
}

}  // namespace quasr::cli
