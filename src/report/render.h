#pragma once
// Internal to the report module: the rows the outputs are rendered from (one per finished point, with its
// summary and paired comparison against the baseline), shared by the table writers and the HTML renderer so
// every output shows the same numbers.
#include <optional>
#include <string>
#include <vector>

#include "quasr/report/store.h"

namespace quasr::report::detail {

struct ResultRow {
  StoredPoint stored;
  eval::SystemSummary summary;
  std::optional<eval::PairedComparison> vs_baseline;  // absent for the baseline and when it is missing
  std::string weight_format;                          // "int4" from "w=int4:g128,...", else the recipe
  double size_mb = 0, bits_per_weight = 0, compression_fp32 = 0, compression_fp16 = 0;
  double peak_memory_mb = 0, rtf = 0, speed_x_realtime = 0;  // 0 = unknown
  // The linear layers alone (what the Whisper study reports), from the point's extra.size.linear; 0 = unknown.
  double linear_mb = 0, linear_bits_per_weight = 0;
};

struct Frontiers {
  std::vector<size_t> size_vs_wer, speed_vs_wer;  // indices into the rows
};

// One scatter (size or, with speed, RTF against WER) as a stand-alone SVG document: the report's chart.
std::string scatter_svg(const std::vector<ResultRow>& rows, const Frontiers& frontiers, bool speed);

std::string render_html(const Manifest& manifest, const std::vector<ResultRow>& rows, const Frontiers& frontiers,
                        const std::vector<std::string>& missing_labels);

}  // namespace quasr::report::detail
