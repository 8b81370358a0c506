// report.html: one self-contained page (inline CSS and SVG; no scripts, fonts or network) so it can be mailed,
// archived next to the results, and opened anywhere.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "render.h"

namespace quasr::report::detail {
namespace {

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

std::map<std::string, std::string> format_colors(const std::vector<ResultRow>& rows) {
  std::map<std::string, std::string> colors;
  for (const auto& r : rows)
    if (!colors.count(r.weight_format)) colors[r.weight_format] = kPalette[colors.size() % 10];
  return colors;
}

// "Nice" axis ticks covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 5) {
  double span = hi - lo;
  if (span <= 0) span = std::abs(hi) > 0 ? std::abs(hi) : 1;
  double raw = span / target, mag = std::pow(10, std::floor(std::log10(raw))), step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(v);
  return t;
}

// Ticks for a log-scale axis over [lo, hi] (lo > 0): 1, 2, 5 times the powers of ten inside it.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  for (double decade = std::pow(10, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (m * decade >= lo * (1 - 1e-9) && m * decade <= hi * (1 + 1e-9)) t.push_back(m * decade);
  return t;
}

// The scatters' CSS, inside the SVG so the stand-alone files (size_vs_wer.svg, ...) look like the page's charts.
const char* kChartStyle =
    "<style>text{font:11px sans-serif;fill:#333}.label{font-size:11px;fill:#111}.axis{font-size:12px}</style>\n";

// Scatter of cost (x) against WER % (y) with CI error bars, the frontier polyline and labelled points. Each axis
// turns logarithmic when the points span more than a factor kLogSpan on it (a collapsed scheme near 100 % beside
// good ones at 5 % would otherwise squash every good point into the bottom few pixels).
constexpr double kLogSpan = 8;
const char* kSizeAxis = "weight size (MB)";
const char* kSpeedAxis = "real-time factor (decode s / audio s, lower is faster)";
std::string scatter(const std::string& id, const std::string& x_title, const std::vector<ResultRow>& rows,
                    const std::vector<double>& cost, const std::vector<size_t>& frontier,
                    const std::map<std::string, std::string>& colors) {
  std::vector<size_t> shown;
  for (size_t i = 0; i < rows.size(); ++i)
    if (cost[i] > 0) shown.push_back(i);
  std::ostringstream o;
  if (shown.empty()) return "<p class=\"note\">No point reports " + esc(x_title) + ".</p>\n";
  const double W = 760, H = 420, left = 64, right = 170, top = 20, bottom = 52;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (size_t i : shown) {
    x0 = std::min(x0, cost[i]);
    x1 = std::max(x1, cost[i]);
    y0 = std::min(y0, 100 * rows[i].summary.wer_ci.lower);
    y1 = std::max(y1, 100 * rows[i].summary.wer_ci.upper);
  }
  double min_wer = 1e300;  // the lowest point WER above zero (CI lower bounds may be 0)
  for (size_t i : shown)
    if (rows[i].summary.score.wer() > 0) min_wer = std::min(min_wer, 100 * rows[i].summary.score.wer());
  const bool log_y = min_wer < 1e300 && y1 / min_wer > kLogSpan;
  const bool log_x = x0 > 0 && x1 / x0 > kLogSpan;  // e.g. 4-bit Linear layers at 8 MB beside FP32 at 66
  double xpad = (x1 - x0) * 0.08 + (x1 == x0 ? x1 * 0.1 + 1e-9 : 0), ypad = (y1 - y0) * 0.08 + 0.1;
  if (log_x) {
    x0 /= 1.15, x1 *= 1.15;
  } else {
    x0 = std::max(0.0, x0 - xpad), x1 += xpad;
  }
  if (log_y) {
    y0 = std::max(y0, min_wer / 2) / 1.1, y1 *= 1.1;  // a CI bound at 0 is drawn at the axis' bottom
  } else {
    y0 = std::max(0.0, y0 - ypad), y1 += ypad;
  }
  auto X = [&](double v) {
    const double f = log_x ? (std::log(v) - std::log(x0)) / (std::log(x1) - std::log(x0)) : (v - x0) / (x1 - x0);
    return left + f * (W - left - right);
  };
  auto Y = [&](double v) {
    const double f = log_y ? (std::log(std::max(v, y0)) - std::log(y0)) / (std::log(y1) - std::log(y0))
                           : (v - y0) / (y1 - y0);
    return H - bottom - f * (H - top - bottom);
  };
  o << "<svg id=\"" << id << "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W
    << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\">\n" << kChartStyle;
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\""
    << H - top - bottom << "\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n";
  for (double t : log_x ? log_ticks(x0, x1) : ticks(x0, x1))
    o << "<line x1=\"" << X(t) << "\" x2=\"" << X(t) << "\" y1=\"" << top << "\" y2=\"" << H - bottom
      << "\" stroke=\"#e4e4e4\"/><text x=\"" << X(t) << "\" y=\"" << H - bottom + 16
      << "\" text-anchor=\"middle\" class=\"tick\">" << num(t, t < 10 ? 2 : 0) << "</text>\n";
  for (double t : log_y ? log_ticks(y0, y1) : ticks(y0, y1))
    o << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << Y(t) << "\" y2=\"" << Y(t)
      << "\" stroke=\"#e4e4e4\"/><text x=\"" << left - 6 << "\" y=\"" << Y(t) + 4
      << "\" text-anchor=\"end\" class=\"tick\">" << num(t, t < 1 ? 2 : (log_y ? 0 : 1)) << "</text>\n";
  o << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\" class=\"axis\">"
    << esc(x_title) << (log_x ? ", log scale" : "") << "</text>\n";
  o << "<text transform=\"translate(16," << (top + H - bottom) / 2
    << ") rotate(-90)\" text-anchor=\"middle\" class=\"axis\">WER % (95% CI" << (log_y ? ", log scale" : "")
    << ")</text>\n";
  if (frontier.size() >= 1) {
    o << "<path class=\"frontier\" d=\"";
    for (size_t k = 0; k < frontier.size(); ++k)
      o << (k ? " L" : "M") << X(cost[frontier[k]]) << " " << Y(100 * rows[frontier[k]].summary.score.wer());
    o << "\" fill=\"none\" stroke=\"#444\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n";
  }
  // Labels: greedy placement so clustered points (same size, close WER) stay readable: each label takes the
  // first vertical offset whose box overlaps no label placed before it.
  struct Box {
    double x0, x1, y0, y1;
  };
  std::vector<Box> placed;
  std::map<size_t, double> label_y;
  for (size_t i : shown) {
    double cx = X(cost[i]) + 8, cy = Y(100 * rows[i].summary.score.wer());
    double w = 6.3 * double(rows[i].stored.point.entry.label.size());
    for (double dy : {-6.0, 8.0, -20.0, 22.0, -34.0, 36.0, -48.0, 50.0, -62.0, 64.0}) {
      Box b{cx, cx + w, cy + dy - 10, cy + dy + 2};
      bool clash = std::any_of(placed.begin(), placed.end(), [&](const Box& o) {
        return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1;
      });
      if (!clash || dy == 64.0) {
        placed.push_back(b);
        label_y[i] = cy + dy;
        break;
      }
    }
  }
  for (size_t i : shown) {
    const auto& s = rows[i].summary;
    double cx = X(cost[i]), cy = Y(100 * s.score.wer());
    const std::string& color = colors.at(rows[i].weight_format);
    bool on_frontier = std::find(frontier.begin(), frontier.end(), i) != frontier.end();
    o << "<g class=\"point\"><title>" << esc(rows[i].stored.point.entry.label) << " — WER "
      << num(100 * s.score.wer(), 2) << "%</title>";
    o << "<line class=\"errorbar\" x1=\"" << cx << "\" x2=\"" << cx << "\" y1=\"" << Y(100 * s.wer_ci.lower)
      << "\" y2=\"" << Y(100 * s.wer_ci.upper) << "\" stroke=\"" << color << "\" stroke-width=\"1.2\"/>";
    o << "<circle cx=\"" << cx << "\" cy=\"" << cy << "\" r=\"" << (on_frontier ? 6 : 4.5) << "\" fill=\"" << color
      << "\" stroke=\"" << (on_frontier ? "#000" : "#fff") << "\" stroke-width=\"1.2\"/>";
    o << "<text x=\"" << cx + 8 << "\" y=\"" << label_y[i] << "\" class=\"label\">"
      << esc(rows[i].stored.point.entry.label) << "</text></g>\n";
  }
  double ly = top + 8;
  for (const auto& [format, color] : colors) {
    o << "<circle cx=\"" << W - right + 18 << "\" cy=\"" << ly << "\" r=\"5\" fill=\"" << color << "\"/><text x=\""
      << W - right + 28 << "\" y=\"" << ly + 4 << "\" class=\"tick\">" << esc(format) << "</text>\n";
    ly += 18;
  }
  o << "<path d=\"M" << W - right + 10 << " " << ly << " h18\" stroke=\"#444\" stroke-dasharray=\"6 4\"/><text x=\""
    << W - right + 32 << "\" y=\"" << ly + 4 << "\" class=\"tick\">Pareto frontier</text>\n";
  o << "</svg>\n";
  return o.str();
}

// One horizontal bar per point (WER %), coloured and grouped by weight format, with size beside it.
std::string format_bars(const std::vector<ResultRow>& rows, const std::map<std::string, std::string>& colors) {
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rows[a].weight_format < rows[b].weight_format; });
  double max_wer = 0;
  for (const auto& r : rows) max_wer = std::max(max_wer, 100 * r.summary.wer_ci.upper);
  if (max_wer <= 0) max_wer = 1;
  const double W = 760, label_w = 230, bar_w = 400, row_h = 22, top = 10;
  const double H = top + row_h * double(rows.size()) + 30;
  std::ostringstream o;
  o << "<svg id=\"format-bars\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W
    << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\">\n";
  double y = top;
  for (size_t i : order) {
    const auto& r = rows[i];
    double w = bar_w * 100 * r.summary.score.wer() / max_wer;
    o << "<text x=\"" << label_w - 8 << "\" y=\"" << y + 15 << "\" text-anchor=\"end\" class=\"label\">"
      << esc(r.stored.point.entry.label) << "</text>";
    o << "<rect class=\"bar\" x=\"" << label_w << "\" y=\"" << y + 3 << "\" width=\"" << std::max(w, 1.0)
      << "\" height=\"" << row_h - 6 << "\" fill=\"" << colors.at(r.weight_format) << "\"/>";
    o << "<line x1=\"" << label_w + bar_w * 100 * r.summary.wer_ci.lower / max_wer << "\" x2=\""
      << label_w + bar_w * 100 * r.summary.wer_ci.upper / max_wer << "\" y1=\"" << y + row_h / 2 << "\" y2=\""
      << y + row_h / 2 << "\" stroke=\"#000\"/>";
    o << "<text x=\"" << label_w + bar_w + 10 << "\" y=\"" << y + 15 << "\" class=\"tick\">"
      << num(100 * r.summary.score.wer(), 2) << "%"
      << (r.size_mb > 0 ? " · " + num(r.size_mb, 1) + " MB" : std::string()) << "</text>\n";
    y += row_h;
  }
  o << "<text x=\"" << label_w << "\" y=\"" << H - 8 << "\" class=\"axis\">WER % by weight format (bar), 95% CI"
    << " (line)</text>\n</svg>\n";
  return o.str();
}

std::string layer_tables(const std::vector<ResultRow>& rows) {
  std::ostringstream o;
  for (const auto& r : rows) {
    const auto& layers = r.stored.result.layers;
    if (layers.empty()) continue;
    int64_t total = 0;
    for (const auto& l : layers) total += l.bytes;
    o << "<details><summary>" << esc(r.stored.point.entry.label) << " — " << layers.size() << " tensors, "
      << num(double(total) / 1e6, 2) << " MB</summary>\n<table class=\"layers\"><tr><th>tensor</th><th>role</th>"
      << "<th>layer</th><th>format</th><th>bytes</th><th>bits/elem</th></tr>\n";
    for (const auto& l : layers)
      o << "<tr><td>" << esc(l.tensor) << "</td><td>" << esc(l.role) << "</td><td>"
        << (l.layer >= 0 ? std::to_string(l.layer) : "") << "</td><td>" << esc(l.format) << "</td><td>" << l.bytes
        << "</td><td>" << (l.elements > 0 ? num(8.0 * double(l.bytes) / double(l.elements), 2) : "") << "</td></tr>\n";
    o << "</table></details>\n";
  }
  if (o.str().empty()) return "<p class=\"note\">No point carries a per-layer breakdown.</p>\n";
  return o.str();
}

std::string results_table(const std::vector<ResultRow>& rows, const Frontiers& f) {
  std::ostringstream o;
  o << "<table class=\"results\"><tr><th>label</th><th>recipe</th><th>WER % (95% CI)</th><th>Δ vs baseline"
       " (p)</th><th>size MB</th><th>bits/w</th><th>linear MB</th><th>linear bits/w</th><th>× FP32</th>"
       "<th>× FP16</th><th>memory MB</th><th>RTF</th><th>speed ×RT</th></tr>\n";
  auto cell = [](double v, int d) { return v > 0 ? num(v, d) : std::string("–"); };
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    bool pareto = std::find(f.size_vs_wer.begin(), f.size_vs_wer.end(), i) != f.size_vs_wer.end();
    o << "<tr" << (pareto ? " class=\"pareto\"" : "") << "><td>" << esc(r.stored.point.entry.label) << "</td><td><code>"
      << esc(r.stored.point.entry.recipe) << "</code></td><td>" << num(100 * r.summary.score.wer(), 2) << " ("
      << num(100 * r.summary.wer_ci.lower, 2) << "–" << num(100 * r.summary.wer_ci.upper, 2) << ")</td><td>";
    if (r.vs_baseline)
      o << (r.vs_baseline->delta >= 0 ? "+" : "") << num(100 * r.vs_baseline->delta, 2) << " (p="
        << num(r.vs_baseline->sign_test_p, 3) << ")";
    else
      o << (r.stored.point.is_baseline ? "baseline" : "–");
    o << "</td><td>" << cell(r.size_mb, 2) << "</td><td>" << cell(r.bits_per_weight, 2) << "</td><td>"
      << cell(r.linear_mb, 2) << "</td><td>" << cell(r.linear_bits_per_weight, 2) << "</td><td>"
      << cell(r.compression_fp32, 2) << "</td><td>" << cell(r.compression_fp16, 2) << "</td><td>"
      << cell(r.peak_memory_mb, 0) << "</td><td>" << cell(r.rtf, 3) << "</td><td>" << cell(r.speed_x_realtime, 1)
      << "</td></tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

}  // namespace

std::string render_html(const Manifest& m, const std::vector<ResultRow>& rows, const Frontiers& frontiers,
                        const std::vector<std::string>& missing) {
  auto colors = format_colors(rows);
  const std::string model = m.context.model_name.empty() ? m.context.model_id.substr(0, 12) : m.context.model_name;
  const std::string data =
      m.context.dataset_name.empty() ? m.context.dataset_id.substr(0, 12) : m.context.dataset_name;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>quasr sweep: " << esc(model)
    << "</title>\n<style>\n"
       "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1000px;"
       "color:#222;padding:0 16px}\nh1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}\n"
       "table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;"
       "text-align:right}td:first-child,td:nth-child(2),th{text-align:left}tr.pareto td:first-child{font-weight:600}\n"
       ".chart text{font:11px sans-serif;fill:#333}.chart .label{font-size:11px;fill:#111}.chart .axis{font-size:12px}"
       "\n.note{color:#666}code{font-size:12px}details{margin:4px 0}summary{cursor:pointer}\n"
       "</style></head><body>\n";
  o << "<h1>quasr sweep: " << esc(model) << " on " << esc(data) << "</h1>\n";
  o << "<p class=\"note\">" << rows.size() << " of " << m.points.size() << " points finished"
    << (missing.empty() ? "" : " (missing: " + esc([&] {
          std::string s;
          for (const auto& l : missing) s += (s.empty() ? "" : ", ") + l;
          return s;
        }()) + ")")
    << ". quasr " << esc(m.context.quasr_version) << "; model " << esc(m.context.model_id.substr(0, 16))
    << "…; dataset " << esc(m.context.dataset_id.substr(0, 16)) << "…; decode options: <code>"
    << esc(m.context.decode_options) << "</code>. Rows in bold are on the size–WER Pareto frontier.</p>\n";
  o << "<h2>Results</h2>\n" << results_table(rows, frontiers);
  o << "<h2>Size vs WER</h2>\n" << scatter_svg(rows, frontiers, /*speed=*/false);
  o << "<h2>Speed vs WER</h2>\n" << scatter_svg(rows, frontiers, /*speed=*/true);
  o << "<h2>WER per format</h2>\n" << format_bars(rows, colors);
  o << "<h2>Per-layer precision and size</h2>\n" << layer_tables(rows);
  o << "</body></html>\n";
  return o.str();
}

std::string scatter_svg(const std::vector<ResultRow>& rows, const Frontiers& frontiers, bool speed) {
  std::vector<double> cost;
  if (speed) {
    for (const auto& r : rows) cost.push_back(r.rtf);
    return scatter("scatter-speed", kSpeedAxis, rows, cost, frontiers.speed_vs_wer, format_colors(rows));
  }
  // When the points differ only in their Linear layers (the rest of the model, e.g. an unquantized token
  // embedding, is the same size in every point), the x axis is the Linear layers' size: the Whisper study's axis,
  // which spreads points that a large constant would crowd together. whole = constant + linear, so the frontier
  // (computed on the whole size) is the same on either axis.
  double rest_lo = 1e300, rest_hi = -1e300;
  for (const auto& r : rows) {
    if (r.size_mb <= 0) continue;
    const double rest = r.linear_mb > 0 ? r.size_mb - r.linear_mb : -1e300;
    rest_lo = std::min(rest_lo, rest), rest_hi = std::max(rest_hi, rest);
  }
  const bool linear_axis = rest_lo > 0 && rest_hi - rest_lo <= 1e-3 * rest_hi;
  for (const auto& r : rows) cost.push_back(linear_axis ? (r.size_mb > 0 ? r.linear_mb : 0) : r.size_mb);
  const std::string title = linear_axis ? "Linear layers' weight size (MB; the other " + num(rest_hi, 2) +
                                              " MB are the same in every point)"
                                        : std::string(kSizeAxis);
  return scatter("scatter-size", title, rows, cost, frontiers.size_vs_wer, format_colors(rows));
}

}  // namespace quasr::report::detail
