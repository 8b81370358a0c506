// write_sweep_outputs: results.jsonl, results.csv, results.md, pareto.json and report.html from the store.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "quasr/core/error.h"
#include "quasr/report/pareto.h"
#include "render.h"

namespace quasr::report {
namespace fs = std::filesystem;
using nlohmann::json;
using detail::ResultRow;

namespace {

std::string weight_format_of(const std::string& recipe) {
  auto w = recipe.find("w=");
  if (w != 0 && (w == std::string::npos || recipe[w - 1] != ',')) return recipe;  // a preset name
  auto end = recipe.find_first_of(":,", w + 2);
  return recipe.substr(w + 2, end == std::string::npos ? std::string::npos : end - w - 2);
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string known(double v, int digits) { return v > 0 ? fixed(v, digits) : ""; }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

json row_json(const ResultRow& r) {
  const auto& p = r.stored.point;
  json j = {{"index", p.index},
            {"label", p.entry.label},
            {"recipe", p.entry.recipe},
            {"baseline", p.is_baseline},
            {"hash", p.hash},
            {"weight_format", r.weight_format},
            {"summary", eval::to_json(r.summary)},
            {"size_mb", r.size_mb},
            {"weight_bytes", r.stored.result.weight_bytes},
            {"weight_elements", r.stored.result.weight_elements},
            {"bits_per_weight", r.bits_per_weight},
            {"linear_mb", r.linear_mb},
            {"linear_bits_per_weight", r.linear_bits_per_weight},
            {"compression_vs_fp32", r.compression_fp32},
            {"compression_vs_fp16", r.compression_fp16},
            {"peak_memory_mb", r.peak_memory_mb},
            {"rtf", r.rtf},
            {"speed_x_realtime", r.speed_x_realtime},
            {"extra", r.stored.result.extra}};
  j["vs_baseline"] = r.vs_baseline ? eval::to_json(*r.vs_baseline) : json(nullptr);
  return j;
}

std::string results_csv(const std::vector<ResultRow>& rows) {
  std::ostringstream o;
  o << "index,label,recipe,weight_format,utterances,wer,wer_lower,wer_upper,cer,delta_wer,delta_lower,delta_upper,"
       "sign_test_p,size_mb,bits_per_weight,linear_mb,linear_bits_per_weight,compression_vs_fp32,"
       "compression_vs_fp16,peak_memory_mb,rtf,speed_x_realtime,hash\n";
  for (const auto& r : rows) {
    const auto& s = r.summary;
    o << r.stored.point.index << "," << csv_field(r.stored.point.entry.label) << ","
      << csv_field(r.stored.point.entry.recipe) << "," << csv_field(r.weight_format) << "," << s.score.utterances
      << "," << fixed(s.score.wer(), 6) << "," << fixed(s.wer_ci.lower, 6) << "," << fixed(s.wer_ci.upper, 6) << ","
      << fixed(s.score.cer(), 6) << ",";
    if (r.vs_baseline)
      o << fixed(r.vs_baseline->delta, 6) << "," << fixed(r.vs_baseline->delta_lower, 6) << ","
        << fixed(r.vs_baseline->delta_upper, 6) << "," << fixed(r.vs_baseline->sign_test_p, 6);
    else
      o << ",,,";
    o << "," << known(r.size_mb, 3) << "," << known(r.bits_per_weight, 3) << "," << known(r.linear_mb, 3) << ","
      << known(r.linear_bits_per_weight, 3) << "," << known(r.compression_fp32, 3)
      << "," << known(r.compression_fp16, 3) << "," << known(r.peak_memory_mb, 1) << "," << known(r.rtf, 4) << ","
      << known(r.speed_x_realtime, 2) << "," << r.stored.point.hash << "\n";
  }
  return o.str();
}

std::string results_markdown(const Manifest& m, const std::vector<ResultRow>& rows,
                             const std::vector<std::string>& missing) {
  std::ostringstream o;
  o << "# quasr sweep: " << (m.context.model_name.empty() ? m.context.model_id.substr(0, 12) : m.context.model_name)
    << " on " << (m.context.dataset_name.empty() ? m.context.dataset_id.substr(0, 12) : m.context.dataset_name)
    << "\n\n";
  o << "WER in %, 95% bootstrap CI; Δ = WER − baseline WER (percentage points) with the paired sign-test p-value; "
       "size = stored weight bytes of the whole model, linear = of the Linear layers alone (as the Whisper study "
       "counts); RTF = decode seconds / audio seconds; speed = audio seconds per second.\n\n";
  o << "| label | recipe | WER % (CI) | Δ vs baseline (p) | size MB | bits/weight | linear MB | linear bits/w | "
       "× vs FP32 | × vs FP16 | memory MB | RTF | speed ×RT |\n";
  o << "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    const auto& s = r.summary;
    o << "| " << md_cell(r.stored.point.entry.label) << " | `" << md_cell(r.stored.point.entry.recipe) << "` | "
      << fixed(100 * s.score.wer(), 2) << " (" << fixed(100 * s.wer_ci.lower, 2) << "–"
      << fixed(100 * s.wer_ci.upper, 2) << ") | ";
    if (r.vs_baseline)
      o << (r.vs_baseline->delta >= 0 ? "+" : "") << fixed(100 * r.vs_baseline->delta, 2) << " (p="
        << fixed(r.vs_baseline->sign_test_p, 3) << ")";
    else
      o << (r.stored.point.is_baseline ? "baseline" : "–");
    o << " | " << known(r.size_mb, 2) << " | " << known(r.bits_per_weight, 2) << " | " << known(r.linear_mb, 2)
      << " | " << known(r.linear_bits_per_weight, 2) << " | " << known(r.compression_fp32, 2)
      << " | " << known(r.compression_fp16, 2) << " | " << known(r.peak_memory_mb, 0) << " | " << known(r.rtf, 3)
      << " | " << known(r.speed_x_realtime, 1) << " |\n";
  }
  if (!missing.empty()) {
    o << "\nNot finished yet (" << missing.size() << "):";
    for (const auto& l : missing) o << " " << md_cell(l) << ";";
    o << "\n";
  }
  return o.str();
}

}  // namespace

size_t write_sweep_outputs(const fs::path& out_dir) {
  auto manifest = read_manifest(out_dir);
  if (!manifest) throw InvalidArgument(out_dir.string() + ": no sweep.json (not a sweep output directory)");
  const eval::BootstrapOptions& bootstrap = manifest->bootstrap;
  std::vector<ResultRow> rows;
  std::vector<std::string> missing;
  for (const auto& p : manifest->points) {
    LoadedEntry e = load_point_file(point_path(out_dir, p.hash), p.hash);
    if (e.status != EntryStatus::Valid) {
      missing.push_back(p.entry.label);
      continue;
    }
    ResultRow r;
    r.stored = std::move(*e.point);
    r.stored.point.count = manifest->points.size();
    r.summary = eval::summarize(p.entry.label, r.stored.result.records, bootstrap);
    r.weight_format = weight_format_of(p.entry.recipe);
    const auto& res = r.stored.result;
    if (res.weight_bytes > 0) r.size_mb = double(res.weight_bytes) / 1e6;
    if (res.weight_bytes > 0 && res.weight_elements > 0) {
      r.bits_per_weight = res.bits_per_weight();
      r.compression_fp32 = 4.0 * double(res.weight_elements) / double(res.weight_bytes);
      r.compression_fp16 = 2.0 * double(res.weight_elements) / double(res.weight_bytes);
    }
    if (res.peak_memory_bytes > 0) r.peak_memory_mb = double(res.peak_memory_bytes) / 1e6;
    if (res.extra.is_object() && res.extra.contains("size") && res.extra["size"].contains("linear")) {
      const json& lin = res.extra["size"]["linear"];
      r.linear_mb = lin.value("bytes", 0.0) / 1e6;
      r.linear_bits_per_weight = lin.value("bits_per_weight", 0.0);
    }
    if (r.summary.audio_seconds > 0 && r.summary.decode_seconds > 0) {
      r.rtf = r.summary.decode_seconds / r.summary.audio_seconds;
      r.speed_x_realtime = 1.0 / r.rtf;
    }
    rows.push_back(std::move(r));
  }
  if (!rows.empty() && rows[0].stored.point.is_baseline)
    for (size_t i = 1; i < rows.size(); ++i)
      rows[i].vs_baseline = eval::compare_records(rows[0].stored.result.records, rows[i].stored.result.records,
                                                  bootstrap);

  std::vector<double> size, rtf, wer;
  for (const auto& r : rows) {
    size.push_back(r.size_mb);
    rtf.push_back(r.rtf);
    wer.push_back(r.summary.score.wer());
  }
  detail::Frontiers frontiers{pareto_frontier(size, wer), pareto_frontier(rtf, wer)};

  std::vector<json> lines;
  for (const auto& r : rows) lines.push_back(row_json(r));
  eval::write_jsonl_atomic(out_dir / "results.jsonl", lines);
  eval::write_text_atomic(out_dir / "results.csv", results_csv(rows));
  eval::write_text_atomic(out_dir / "results.md", results_markdown(*manifest, rows, missing));
  auto frontier_json = [&](const std::vector<size_t>& idx, const char* cost_name, const std::vector<double>& cost) {
    json a = json::array();
    for (size_t i : idx)
      a.push_back({{"label", rows[i].stored.point.entry.label}, {"recipe", rows[i].stored.point.entry.recipe},
                   {cost_name, cost[i]}, {"wer", wer[i]}});
    return a;
  };
  eval::write_json_atomic(out_dir / "pareto.json",
                          {{"size_vs_wer", frontier_json(frontiers.size_vs_wer, "size_mb", size)},
                           {"speed_vs_wer", frontier_json(frontiers.speed_vs_wer, "rtf", rtf)},
                           {"missing", missing}});
  eval::write_text_atomic(out_dir / "report.html", detail::render_html(*manifest, rows, frontiers, missing));
  eval::write_text_atomic(out_dir / "size_vs_wer.svg", detail::scatter_svg(rows, frontiers, /*speed=*/false));
  eval::write_text_atomic(out_dir / "speed_vs_wer.svg", detail::scatter_svg(rows, frontiers, /*speed=*/true));
  return rows.size();
}

}  // namespace quasr::report
