// Sweep driver and store: round trip, resume after an interruption (exception or SIGKILL), corrupted entries,
// shards + merge, progress output, mismatched sweeps.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "quasr/core/error.h"
#include "quasr/report/grid.h"
#include "quasr/report/store.h"
#include "report_test_support.h"

using namespace quasr::report;
using namespace quasr::report::testing;
namespace fs = std::filesystem;

namespace {

Grid test_grid() {
  return parse_grid(
      "recipe w8a8\nrecipe w4a8-g128 W4A8 g128\n"
      "product\n formats int8 int4\n granularities channel g64\nend\n",
      "test.grid");
}

const char* kOutputs[] = {"results.jsonl", "results.csv", "results.md",      "pareto.json",
                          "report.html",   "size_vs_wer.svg", "speed_vs_wer.svg", "sweep.json"};

void expect_same_outputs(const fs::path& a, const fs::path& b) {
  // Compared as booleans: a mismatch names the file without printing two whole reports.
  for (const char* name : kOutputs) EXPECT_TRUE(slurp(a / name) == slurp(b / name)) << name << " differs";
}

SweepOptions quiet_options(const fs::path& out) {
  SweepOptions o;
  o.out_dir = out;
  o.progress = ProgressStyle::Quiet;
  o.bootstrap.resamples = 200;
  return o;
}

// Options whose progress, in `style`, goes to `log`.
SweepOptions progress_options(const fs::path& out, ProgressStyle style, std::ostream& log) {
  SweepOptions o = quiet_options(out);
  o.progress = style;
  o.progress_stream = &log;
  return o;
}

struct Counting {
  int calls = 0;
  int fail_at = -1;  // index of the point whose evaluation throws
  SweepFunction fn() {
    return [this](const SweepPoint& p, Progress& progress) {
      if (int(p.index) == fail_at) throw std::runtime_error("interrupted");
      ++calls;
      return fake_evaluate(p, progress);
    };
  }
};

fs::path reference_run(const std::string& name) {
  auto dir = fresh_dir(name);
  Counting c;
  auto stats = run_sweep(test_grid(), test_context(), c.fn(), quiet_options(dir));
  EXPECT_EQ(stats.computed, 7u);
  EXPECT_TRUE(stats.outputs_written);
  return dir;
}

}  // namespace

TEST(PointStore, RoundTripKeepsEverything) {
  auto dir = fresh_dir("roundtrip");
  SweepContext ctx = test_context();
  Grid g = test_grid();
  Manifest m = make_manifest(g, ctx);
  struct : Progress {
    void advance(size_t, size_t) override {}
  } ignore;
  StoredPoint s{m.points[2], ctx, fake_evaluate(m.points[2], ignore)};
  write_point_file(dir, s);
  LoadedEntry e = load_point_file(point_path(dir, s.point.hash), s.point.hash);
  ASSERT_EQ(e.status, EntryStatus::Valid) << e.problem;
  EXPECT_EQ(e.point->point.entry.recipe, "w4a8-g128");
  EXPECT_EQ(e.point->point.entry.label, "W4A8 g128");
  EXPECT_EQ(e.point->point.index, 2u);
  EXPECT_EQ(to_json(e.point->context), to_json(ctx));
  ASSERT_EQ(e.point->result.records.size(), s.result.records.size());
  for (size_t i = 0; i < s.result.records.size(); ++i)
    EXPECT_EQ(quasr::eval::to_json(e.point->result.records[i]), quasr::eval::to_json(s.result.records[i]));
  EXPECT_EQ(e.point->result.weight_bytes, s.result.weight_bytes);
  EXPECT_EQ(e.point->result.weight_elements, s.result.weight_elements);
  EXPECT_EQ(e.point->result.peak_memory_bytes, s.result.peak_memory_bytes);
  ASSERT_EQ(e.point->result.layers.size(), 2u);
  EXPECT_EQ(to_json(e.point->result.layers[1]), to_json(s.result.layers[1]));
  EXPECT_EQ(e.point->result.extra, s.result.extra);
  // Re-encoding what was loaded reproduces the file exactly (the checksum covers a canonical dump).
  EXPECT_EQ(encode_point(*e.point).dump(1) + "\n", slurp(point_path(dir, s.point.hash)));
  // Under another expected hash (e.g. a renamed file) the entry is not trusted.
  EXPECT_EQ(load_point_file(point_path(dir, s.point.hash), m.points[3].hash).status, EntryStatus::Corrupt);
  EXPECT_EQ(load_point_file(point_path(dir, m.points[3].hash), m.points[3].hash).status, EntryStatus::Missing);
}

TEST(PointHash, EveryIdentityFieldMatters) {
  SweepContext c = test_context();
  const std::string base = point_hash(c, "w8a8");
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(point_hash(c, "w8a8"), base);
  EXPECT_NE(point_hash(c, "w8a8 "), base);
  auto changed = [&](auto mutate) {
    SweepContext d = c;
    mutate(d);
    return point_hash(d, "w8a8");
  };
  EXPECT_NE(changed([](SweepContext& d) { d.model_id += "0"; }), base);
  EXPECT_NE(changed([](SweepContext& d) { d.dataset_id += "0"; }), base);
  EXPECT_NE(changed([](SweepContext& d) { d.decode_options = "beam=5"; }), base);
  EXPECT_NE(changed([](SweepContext& d) { d.quasr_version = "9.9.9"; }), base);
  EXPECT_EQ(changed([](SweepContext& d) { d.model_name = "renamed"; }), base);  // names are not identity
  SweepContext empty = c;
  empty.model_id.clear();
  EXPECT_THROW(point_hash(empty, "w8a8"), quasr::InvalidArgument);

  quasr::eval::Dataset ds;
  ds.utterances = {{"a", "a.flac", "hello"}, {"b", "b.flac", "world"}};
  auto id = dataset_identity(ds, "limit=2");
  EXPECT_NE(dataset_identity(ds, "limit=3"), id);
  std::swap(ds.utterances[0], ds.utterances[1]);
  EXPECT_NE(dataset_identity(ds, "limit=2"), id);
}

TEST(Sweep, InterruptedByExceptionResumesWithoutRecomputing) {
  auto full = reference_run("full_a");
  auto dir = fresh_dir("interrupted");
  Counting first;
  first.fail_at = 4;
  EXPECT_THROW(run_sweep(test_grid(), test_context(), first.fn(), quiet_options(dir)), std::runtime_error);
  EXPECT_EQ(first.calls, 4);
  EXPECT_FALSE(fs::exists(dir / "results.jsonl"));  // no outputs from an unfinished sweep
  Counting second;
  auto stats = run_sweep(test_grid(), test_context(), second.fn(), quiet_options(dir));
  EXPECT_EQ(second.calls, 3);  // points 4, 5, 6 only
  EXPECT_EQ(stats.cached, 4u);
  EXPECT_EQ(stats.computed, 3u);
  EXPECT_EQ(stats.recovered, 0u);
  expect_same_outputs(full, dir);
  // A third run has nothing to do.
  Counting third;
  EXPECT_EQ(run_sweep(test_grid(), test_context(), third.fn(), quiet_options(dir)).cached, 7u);
  EXPECT_EQ(third.calls, 0);
}

TEST(Sweep, KilledProcessResumes) {
  auto full = reference_run("full_b");
  auto dir = fresh_dir("killed");
  // fork() is safe here: nothing on the sweep path (store, eval summaries) starts threads.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SweepFunction die_at_3 = [](const SweepPoint& p, Progress& progress) {
      if (p.index == 3) kill(getpid(), SIGKILL);
      return fake_evaluate(p, progress);
    };
    try {
      run_sweep(test_grid(), test_context(), die_at_3, quiet_options(dir));
    } catch (...) {
    }
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  size_t entries = 0;
  for (const auto& f : fs::directory_iterator(dir / "points")) entries += f.path().extension() == ".json";
  EXPECT_EQ(entries, 3u);
  Counting resume;
  auto stats = run_sweep(test_grid(), test_context(), resume.fn(), quiet_options(dir));
  EXPECT_EQ(resume.calls, 4);
  EXPECT_EQ(stats.cached, 3u);
  expect_same_outputs(full, dir);
}

TEST(Sweep, CorruptedOrTruncatedEntryIsDetectedAndRecomputed) {
  auto full = reference_run("full_c");
  auto dir = reference_run("corrupt");
  Manifest m = make_manifest(test_grid(), test_context(), quiet_options(dir).bootstrap);
  // Flip one byte inside a number of point 2, truncate point 5.
  auto flip = point_path(dir, m.points[2].hash);
  std::string text = slurp(flip);
  auto pos = text.find("\"weight_bytes\": ") + 17;
  text[pos] = text[pos] == '1' ? '2' : '1';
  std::ofstream(flip, std::ios::binary) << text;
  auto cut = point_path(dir, m.points[5].hash);
  std::string cut_text = slurp(cut);
  std::ofstream(cut, std::ios::binary) << cut_text.substr(0, cut_text.size() / 2);
  EXPECT_EQ(load_point_file(flip, m.points[2].hash).problem, "checksum mismatch (the file was modified or damaged)");
  EXPECT_NE(load_point_file(cut, m.points[5].hash).problem.find("not valid JSON"), std::string::npos);

  std::ostringstream log;
  SweepOptions o = quiet_options(dir);
  o.progress = ProgressStyle::Lines;
  o.progress_stream = &log;
  Counting c;
  auto stats = run_sweep(test_grid(), test_context(), c.fn(), o);
  EXPECT_EQ(c.calls, 2);
  EXPECT_EQ(stats.recovered, 2u);
  EXPECT_EQ(stats.cached, 5u);
  EXPECT_NE(log.str().find(flip.string() + ": checksum mismatch"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("recomputing"), std::string::npos);
  expect_same_outputs(full, dir);
}

TEST(Sweep, ShardsPlusMergeEqualAFullRun) {
  auto full = reference_run("full_d");
  auto s0 = fresh_dir("shard0"), s1 = fresh_dir("shard1"), merged = fresh_dir("merged");
  Counting c0, c1;
  SweepOptions o0 = quiet_options(s0), o1 = quiet_options(s1);
  o0.shard = parse_shard("0/2");
  o1.shard = parse_shard("1/2");
  auto st0 = run_sweep(test_grid(), test_context(), c0.fn(), o0);
  auto st1 = run_sweep(test_grid(), test_context(), c1.fn(), o1);
  EXPECT_EQ(c0.calls, 4);  // indices 0, 2, 4, 6
  EXPECT_EQ(c1.calls, 3);  // 1, 3, 5
  EXPECT_FALSE(st0.outputs_written);
  EXPECT_FALSE(st1.outputs_written);
  std::ostringstream log;
  auto ms = merge_sweeps({s0, s1}, merged, &log);
  EXPECT_EQ(ms.present, 7u);
  EXPECT_EQ(ms.copied, 7u);
  EXPECT_TRUE(ms.outputs_written);
  expect_same_outputs(full, merged);
  // Merging again (out_dir among the inputs) is a no-op.
  auto again = merge_sweeps({merged, s0, s1}, merged, &log);
  EXPECT_EQ(again.copied, 0u);
  expect_same_outputs(full, merged);
}

TEST(Sweep, MergeRejectsConflictsAndForeignSweeps) {
  auto a = fresh_dir("conflict_a"), b = fresh_dir("conflict_b"), out = fresh_dir("conflict_out");
  run_sweep(test_grid(), test_context(), Counting().fn(), quiet_options(a));
  SweepFunction different = [](const SweepPoint& p, Progress& progress) {
    PointResult r = fake_evaluate(p, progress);
    r.records[0].decode_seconds += 1;  // e.g. timing from another machine
    return r;
  };
  run_sweep(test_grid(), test_context(), different, quiet_options(b));
  std::ostringstream log;
  try {
    merge_sweeps({a, b}, out, &log);
    FAIL() << "conflict not detected";
  } catch (const quasr::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("same hash but different content"), std::string::npos) << e.what();
  }
  auto other = fresh_dir("conflict_other");
  SweepContext ctx = test_context();
  ctx.decode_options = "beam=5";
  run_sweep(test_grid(), ctx, Counting().fn(), quiet_options(other));
  EXPECT_THROW(merge_sweeps({a, other}, fresh_dir("conflict_out2"), &log), quasr::InvalidArgument);
  // A run into a directory that holds another sweep is refused instead of mixing results.
  EXPECT_THROW(run_sweep(test_grid(), ctx, Counting().fn(), quiet_options(a)), quasr::InvalidArgument);
  EXPECT_THROW(merge_sweeps({fresh_dir("not_a_sweep")}, out, &log), quasr::InvalidArgument);
}

TEST(Sweep, PlainProgressLinesWhenNotATerminal) {
  std::ostringstream log;
  SweepOptions o = progress_options(fresh_dir("progress"), ProgressStyle::Lines, log);
  run_sweep(test_grid(), test_context(), Counting().fn(), o);
  const std::string s = log.str();
  EXPECT_NE(s.find("[1/7] fp32 ..."), std::string::npos) << s;
  EXPECT_NE(s.find("[3/7] W4A8 g128 (w4a8-g128) ..."), std::string::npos) << s;
  EXPECT_NE(s.find("[7/7] int4:g64 (w=int4:g64) done in"), std::string::npos) << s;
  EXPECT_NE(s.find("ETA 0s"), std::string::npos) << s;
  EXPECT_EQ(s.find('\r'), std::string::npos);
  std::ostringstream again;
  o.progress_stream = &again;
  run_sweep(test_grid(), test_context(), Counting().fn(), o);
  EXPECT_NE(again.str().find("[2/7] w8a8: cached"), std::string::npos) << again.str();
}

// A resumed point reports its finished utterances at once: the ETA must come from the time its new ones take,
// not count the resumed ones as work done in no time. 80 of 100 reported at once, then four more 250 ms apart
// (at least 1 s for 4 %): at least 25 s a point, at least 4 s for the 16 % left; counting the resumed ones
// would say about 0.2 s.
TEST(Sweep, EtaOfAResumedPointIgnoresTheResumedWork) {
  std::ostringstream log;
  SweepOptions o = progress_options(fresh_dir("progress_resumed"), ProgressStyle::Bar, log);
  Grid one = test_grid();
  one.entries.resize(1);
  run_sweep(one, test_context(), [](const SweepPoint& p, Progress& progress) {
    progress.advance(80, 100);
    for (size_t done = 81; done <= 84; ++done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      progress.advance(done, 100);
    }
    return fake_evaluate(p, progress);
  }, o);
  const std::string s = log.str();
  const size_t at = s.find("(84/100) ETA ");
  ASSERT_NE(at, std::string::npos) << s;
  const std::string eta = s.substr(at + 13, s.find_first_of("\r\n", at + 13) - at - 13);
  EXPECT_TRUE(eta.find('m') != std::string::npos || std::stoi(eta) >= 4) << eta;
}

TEST(Sweep, ParseShard) {
  EXPECT_EQ(parse_shard("3/4").index, 3u);
  EXPECT_EQ(parse_shard("3/4").count, 4u);
  for (const char* bad : {"4/4", "1", "a/2", "1/0", "-1/2", "1/2/3", ""})
    EXPECT_THROW(parse_shard(bad), quasr::InvalidArgument) << bad;
}

TEST(Sweep, ProgressBarRedrawsOneLine) {
  std::ostringstream log;
  SweepOptions o = progress_options(fresh_dir("progress_bar"), ProgressStyle::Bar, log);
  run_sweep(test_grid(), test_context(), Counting().fn(), o);
  const std::string s = log.str();
  EXPECT_NE(s.find("\r\033[K[" + std::string(30, '-') + "] 0/7 fp32"), std::string::npos) << s;
  EXPECT_NE(s.find("\r\033[K[" + std::string(30, '#') + "] 7/7 int4:g64 (w=int4:g64) ETA 0s"), std::string::npos)
      << s;
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);  // one line, closed at the end
  EXPECT_EQ(s.back(), '\n');
}
