// The sweep driver: resume from the store, run the shard's missing points through the caller's SweepFunction,
// report progress, and merge shard stores.
#include "quasr/report/sweep.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <iostream>
#include <map>

#include "quasr/core/error.h"
#include "quasr/report/store.h"

namespace quasr::report {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

// Progress over the points of this run. ETA = mean seconds of the points computed so far (before the first
// finishes: the current point's own rate, from its first report on, so that a resumed point's records reported
// at once do not count as fast work) times the work left; unknown before the first estimate.
class SweepProgress final : public Progress {
 public:
  SweepProgress(std::ostream& out, ProgressStyle style, size_t total) : out_(out), style_(style), total_(total) {
    if (style_ == ProgressStyle::Auto) style_ = isatty(STDERR_FILENO) && &out == &std::cerr ? ProgressStyle::Bar
                                                                                             : ProgressStyle::Lines;
  }

  void begin_point(size_t ordinal, const SweepPoint& p) {
    ordinal_ = ordinal;
    label_ = p.entry.label == p.entry.recipe ? p.entry.recipe : p.entry.label + " (" + p.entry.recipe + ")";
    point_start_ = Clock::now();
    fraction_ = 0;
    base_set_ = false;
    if (style_ == ProgressStyle::Lines) line("...");
    if (style_ == ProgressStyle::Bar) draw(true);
  }

  void cached(size_t ordinal, const SweepPoint& p, const char* what) {
    if (style_ == ProgressStyle::Quiet) return;
    finish_bar_line();
    out_ << "[" << ordinal << "/" << total_ << "] " << p.entry.label << ": " << what << "\n" << std::flush;
  }

  void note(const std::string& text) {
    if (style_ == ProgressStyle::Quiet) return;
    finish_bar_line();
    out_ << text << "\n" << std::flush;
  }

  void advance(size_t done, size_t total) override {
    if (total == 0) return;
    fraction_ = std::min(1.0, double(done) / double(total));
    if (!base_set_) {  // the point's rate is measured from here: work reported at once (resumed) is not timed
      base_set_ = true;
      base_fraction_ = fraction_;
      base_time_ = Clock::now();
    }
    sub_ = std::to_string(done) + "/" + std::to_string(total);
    auto now = Clock::now();
    double since = std::chrono::duration<double>(now - last_draw_).count();
    if (style_ == ProgressStyle::Bar && since >= 0.2) draw(false);
    // Plain lines go to logs: one every 30 s at most, so long points still show life.
    if (style_ == ProgressStyle::Lines && since >= 30) line(sub_);
  }

  void end_point() {
    double seconds = std::chrono::duration<double>(Clock::now() - point_start_).count();
    computed_seconds_ += seconds;
    ++computed_;
    fraction_ = 0;
    sub_.clear();
    if (style_ == ProgressStyle::Lines) line("done in " + format_duration(seconds));
    if (style_ == ProgressStyle::Bar) draw(true);
  }

  void set_remaining(size_t remaining) { remaining_ = remaining; }
  void finish() { finish_bar_line(); }

 private:
  std::string eta() const {
    double per_point;
    if (computed_ > 0)
      per_point = computed_seconds_ / double(computed_);
    else if (base_set_ && fraction_ - base_fraction_ > 0.02)
      per_point = std::chrono::duration<double>(Clock::now() - base_time_).count() / (fraction_ - base_fraction_);
    else
      return "ETA ?";
    double left = per_point * (double(remaining_) - fraction_);
    return "ETA " + format_duration(left);
  }

  void line(const std::string& status) {
    last_draw_ = Clock::now();
    out_ << "[" << ordinal_ << "/" << total_ << "] " << label_ << " " << status << " " << eta() << "\n"
         << std::flush;
  }

  void draw(bool force) {
    last_draw_ = Clock::now();
    const int width = 30;
    double done_points = double(total_ - remaining_) + fraction_;
    int filled = total_ ? int(width * done_points / double(total_)) : width;
    std::string bar(size_t(filled), '#');
    bar.resize(width, '-');
    out_ << "\r\033[K[" << bar << "] " << (total_ - remaining_) << "/" << total_ << " " << label_;
    if (!sub_.empty()) out_ << " (" << sub_ << ")";
    out_ << " " << eta() << std::flush;
    bar_open_ = true;
    (void)force;
  }

  void finish_bar_line() {
    if (bar_open_) out_ << "\n";
    bar_open_ = false;
  }

  std::ostream& out_;
  ProgressStyle style_;
  size_t total_, remaining_ = 0, ordinal_ = 0, computed_ = 0;
  double computed_seconds_ = 0, fraction_ = 0, base_fraction_ = 0;
  bool base_set_ = false;
  Clock::time_point base_time_;
  std::string label_, sub_;
  Clock::time_point point_start_ = Clock::now(), last_draw_ = Clock::now() - std::chrono::hours(1);
  bool bar_open_ = false;
};

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file.string() + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool all_points_valid(const fs::path& out_dir, const Manifest& m) {
  for (const auto& p : m.points)
    if (load_point_file(point_path(out_dir, p.hash), p.hash).status != EntryStatus::Valid) return false;
  return true;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  auto slash = text.find('/');
  auto bad = [&](const std::string& why) {
    return InvalidArgument("--shard '" + text + "': " + why + " (expected i/N with 0 <= i < N, e.g. 0/4)");
  };
  if (slash == std::string::npos) throw bad("no '/'");
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      throw bad("'" + s + "' is not a number");
    return size_t(std::stoul(s));
  };
  Shard shard{number(text.substr(0, slash)), number(text.substr(slash + 1))};
  if (shard.count == 0) throw bad("N must be at least 1");
  if (shard.index >= shard.count) throw bad("i must be less than N");
  return shard;
}

SweepStats run_sweep(const Grid& grid, const SweepContext& context, const SweepFunction& evaluate,
                     const SweepOptions& options) {
  if (grid.entries.empty()) throw InvalidArgument("sweep: the grid has no points");
  if (options.out_dir.empty()) throw InvalidArgument("sweep: no output directory");
  if (options.shard.count == 0 || options.shard.index >= options.shard.count)
    throw InvalidArgument("sweep: bad shard " + std::to_string(options.shard.index) + "/" +
                          std::to_string(options.shard.count));
  const Manifest manifest = make_manifest(grid, context, options.bootstrap);
  if (auto existing = read_manifest(options.out_dir); existing && !same_sweep(*existing, manifest))
    throw InvalidArgument(options.out_dir.string() +
                          " holds a different sweep (another model, dataset, decode options, quasr version or grid);"
                          " use another output directory or remove its sweep.json");
  write_manifest(options.out_dir, manifest);

  std::vector<const SweepPoint*> mine;
  for (const auto& p : manifest.points)
    if (p.index % options.shard.count == options.shard.index) mine.push_back(&p);

  SweepStats stats;
  stats.points = manifest.points.size();
  stats.in_shard = mine.size();
  std::ostream& out = options.progress_stream ? *options.progress_stream : std::cerr;
  SweepProgress progress(out, options.progress, mine.size());

  // First pass: which points are already done (so the ETA counts only the work left).
  std::vector<const SweepPoint*> todo;
  for (size_t k = 0; k < mine.size(); ++k) {
    const SweepPoint& p = *mine[k];
    LoadedEntry entry = load_point_file(point_path(options.out_dir, p.hash), p.hash);
    if (entry.status == EntryStatus::Valid) {
      ++stats.cached;
      progress.cached(k + 1, p, "cached");
      continue;
    }
    if (entry.status == EntryStatus::Corrupt) {
      ++stats.recovered;
      progress.note("warning: " + point_path(options.out_dir, p.hash).string() + ": " + entry.problem +
                    "; recomputing " + p.entry.label);
    }
    todo.push_back(&p);
  }
  size_t remaining = todo.size();
  for (const SweepPoint* p : todo) {
    progress.set_remaining(remaining);
    size_t ordinal = size_t(std::find(mine.begin(), mine.end(), p) - mine.begin()) + 1;
    progress.begin_point(ordinal, *p);
    PointResult result = evaluate(*p, progress);
    StoredPoint stored{*p, context, std::move(result)};
    write_point_file(options.out_dir, stored, options.bootstrap);
    ++stats.computed;
    --remaining;
    progress.set_remaining(remaining);
    progress.end_point();
  }
  progress.finish();
  if (options.write_outputs && all_points_valid(options.out_dir, manifest)) {
    write_sweep_outputs(options.out_dir);
    stats.outputs_written = true;
  }
  return stats;
}

MergeStats merge_sweeps(const std::vector<fs::path>& inputs, const fs::path& out_dir, std::ostream* log) {
  if (inputs.empty()) throw InvalidArgument("merge: no input sweep directories");
  std::ostream& out = log ? *log : std::cerr;
  std::optional<Manifest> manifest;
  fs::path manifest_from;
  for (const auto& dir : inputs) {
    auto m = read_manifest(dir);
    if (!m) throw InvalidArgument("merge: " + dir.string() + " has no sweep.json (not a sweep output directory)");
    if (manifest && !same_sweep(*manifest, *m))
      throw InvalidArgument("merge: " + dir.string() + " and " + manifest_from.string() +
                            " are different sweeps (context or grid differ)");
    if (!manifest) manifest = std::move(m), manifest_from = dir;
  }
  if (auto existing = read_manifest(out_dir); existing && !same_sweep(*existing, *manifest))
    throw InvalidArgument("merge: " + out_dir.string() + " holds a different sweep");
  write_manifest(out_dir, *manifest);

  MergeStats stats;
  stats.points = manifest->points.size();
  for (const auto& p : manifest->points) {
    const fs::path dest = point_path(out_dir, p.hash);
    std::optional<fs::path> chosen;
    std::string chosen_bytes;
    // out_dir's own entry takes part like an input, so re-merging is idempotent and conflicts with it are seen.
    std::vector<fs::path> candidates{dest};
    for (const auto& dir : inputs) candidates.push_back(point_path(dir, p.hash));
    std::error_code ec;
    for (const auto& file : candidates) {
      if (chosen && fs::equivalent(*chosen, file, ec)) continue;
      LoadedEntry entry = load_point_file(file, p.hash);
      if (entry.status == EntryStatus::Missing) continue;
      if (entry.status == EntryStatus::Corrupt) {
        ++stats.skipped_corrupt;
        out << "warning: " << file.string() << ": " << entry.problem << "; skipped\n";
        continue;
      }
      std::string bytes = read_text(file);
      if (!chosen) {
        chosen = file;
        chosen_bytes = std::move(bytes);
      } else if (bytes != chosen_bytes) {
        throw InvalidArgument("merge: conflict for point " + std::to_string(p.index) + " (" + p.entry.label +
                              "): " + chosen->string() + " and " + file.string() +
                              " have the same hash but different content");
      }
    }
    if (!chosen) continue;
    ++stats.present;
    if (!fs::exists(dest, ec) || !fs::equivalent(*chosen, dest, ec)) {
      fs::create_directories(out_dir / "points");
      eval::write_text_atomic(dest, chosen_bytes);
      ++stats.copied;
    }
  }
  if (stats.present == stats.points) {
    write_sweep_outputs(out_dir);
    stats.outputs_written = true;
  } else {
    out << "merge: " << stats.present << " of " << stats.points
        << " points present; outputs not written until every shard has finished\n";
  }
  return stats;
}

}  // namespace quasr::report
