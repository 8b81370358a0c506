// The outputs: Pareto frontiers on hand-made points, the tables, and report.html rendered by headless Chromium
// (Debian's `chromium`, installed by scripts/setup.sh): the DOM it builds must hold the charts' SVG elements
// and its screenshot must show them in the charts' colours.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "quasr/report/grid.h"
#include "quasr/report/pareto.h"
#include "quasr/report/store.h"
#include "report_test_support.h"

using namespace quasr::report;
using namespace quasr::report::testing;
namespace fs = std::filesystem;

TEST(Pareto, HandMadePoints) {
  //                      A     B     C     D    E(unknown) F(=B)  G(same cost as B, worse)
  std::vector<double> cost{10, 5, 6, 2, 0, 5, 5};
  std::vector<double> err{0.05, 0.06, 0.07, 0.2, 0.01, 0.06, 0.08};
  EXPECT_EQ(pareto_frontier(cost, err), (std::vector<size_t>{3, 1, 5, 0}));
  EXPECT_TRUE(pareto_frontier({}, {}).empty());
  EXPECT_EQ(pareto_frontier({1, 2, 3}, {0.3, 0.2, 0.1}), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(pareto_frontier({1, 2, 3}, {0.1, 0.2, 0.3}), (std::vector<size_t>{0}));
}

namespace {

fs::path rendered_sweep(const std::string& name) {
  auto dir = fresh_dir(name);
  Grid g = parse_grid(
      "recipe w8a8 W8A8\nrecipe nvfp4 NVFP4\n"
      "product\n formats int8 int4 fp6\n granularities channel g64\nend\n",
      "report.grid");
  SweepOptions o;
  o.out_dir = dir;
  o.progress = ProgressStyle::Quiet;
  o.bootstrap.resamples = 200;
  auto stats = run_sweep(g, test_context(), [](const SweepPoint& p, Progress& pr) { return fake_evaluate(p, pr); }, o);
  EXPECT_TRUE(stats.outputs_written);
  return dir;
}

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // 3 bytes per pixel
};

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Minimal PNG reader (8-bit RGB/RGBA, not interlaced: what Chromium writes) to look at the screenshot.
Image read_png(const std::string& bytes) {
  Image img;
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < 8 || bytes.compare(1, 3, "PNG") != 0) return img;
  std::string idat;
  int color_type = 0, depth = 0, interlace = 0;
  for (size_t pos = 8; pos + 8 <= bytes.size();) {
    uint32_t len = be32(d + pos);
    std::string type = bytes.substr(pos + 4, 4);
    const uint8_t* body = d + pos + 8;
    if (type == "IHDR") {
      img.width = int(be32(body));
      img.height = int(be32(body + 4));
      depth = body[8];
      color_type = body[9];
      interlace = body[12];
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    }
    pos += 12 + len;
  }
  if (depth != 8 || (color_type != 2 && color_type != 6) || interlace != 0) return Image{};
  const int channels = color_type == 6 ? 4 : 3;
  const size_t stride = size_t(img.width) * channels;
  std::vector<uint8_t> raw((stride + 1) * size_t(img.height));
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK)
    return Image{};
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  img.rgb.resize(size_t(img.width) * img.height * 3);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* src = &raw[y * (stride + 1) + 1];
    for (size_t i = 0; i < stride; ++i) {
      int a = i >= size_t(channels) ? cur[i - channels] : 0, b = prev[i],
          c = i >= size_t(channels) ? prev[i - channels] : 0;
      int pred = 0;
      switch (filter) {
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: break;
      }
      cur[i] = uint8_t(src[i] + pred);
    }
    for (int x = 0; x < img.width; ++x)
      for (int k = 0; k < 3; ++k) img.rgb[(size_t(y) * img.width + x) * 3 + k] = cur[size_t(x) * channels + k];
    std::swap(prev, cur);
  }
  return img;
}

size_t count_near(const Image& img, int r, int g, int b, int tolerance) {
  size_t n = 0;
  for (size_t i = 0; i + 2 < img.rgb.size(); i += 3)
    n += std::abs(img.rgb[i] - r) <= tolerance && std::abs(img.rgb[i + 1] - g) <= tolerance &&
         std::abs(img.rgb[i + 2] - b) <= tolerance;
  return n;
}

std::string run_capture(const std::string& cmd, int* rc) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, got);
  *rc = pclose(pipe);
  return out;
}

bool have_chromium() { return std::system("command -v chromium > /dev/null 2>&1") == 0; }

std::string chromium(const fs::path& profile) {
  return "timeout 120 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --user-data-dir=" +
         profile.string() + " ";
}

}  // namespace

TEST(ReportOutputs, TablesAgreeWithTheStore) {
  auto dir = rendered_sweep("tables");
  const std::string md = slurp(dir / "results.md"), csv = slurp(dir / "results.csv");
  EXPECT_NE(md.find("| fp32 | `fp32` |"), std::string::npos) << md;
  EXPECT_NE(md.find("| baseline |"), std::string::npos);
  EXPECT_NE(md.find("| int4:g64 | `w=int4:g64` |"), std::string::npos);
  // 9 points + header in every table.
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 10);
  std::string jsonl = slurp(dir / "results.jsonl");
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 9);
  // int4 with the fake's sizes: 37e6 * 4/8 + 37e6/64 bytes -> 4.125 bits/weight, 7.76x vs FP32.
  auto first_int4 = nlohmann::json::parse(jsonl.substr(0, jsonl.find('\n')));
  EXPECT_EQ(first_int4["label"], "fp32");
  for (size_t start = 0; start < jsonl.size();) {
    size_t end = jsonl.find('\n', start);
    auto row = nlohmann::json::parse(jsonl.substr(start, end - start));
    if (row["recipe"] == "w=int4:g64") {
      EXPECT_NEAR(row["bits_per_weight"].get<double>(), 4.125, 1e-12);
      EXPECT_NEAR(row["compression_vs_fp32"].get<double>(), 32 / 4.125, 1e-12);
      EXPECT_FALSE(row["vs_baseline"].is_null());
    }
    start = end + 1;
  }
  auto pareto = nlohmann::json::parse(slurp(dir / "pareto.json"));
  ASSERT_FALSE(pareto["size_vs_wer"].empty());
  // The frontier's cheapest point is the smallest scheme; WER falls along it as size grows.
  double last_wer = 2, last_size = 0;
  for (const auto& p : pareto["size_vs_wer"]) {
    EXPECT_GT(p["size_mb"].get<double>(), last_size);
    EXPECT_LT(p["wer"].get<double>(), last_wer);
    last_size = p["size_mb"];
    last_wer = p["wer"];
  }
}

// The two scatters also stand alone as SVG files (for documents), with their own style. Their WER axis is linear
// for points within a factor 8 and logarithmic once a collapsed point (here int2: every word wrong) sits beside
// good ones, so the good points are not squashed together at the bottom.
TEST(ReportOutputs, ScattersStandAloneAndGoLogarithmicForACollapsedPoint) {
  const fs::path linear = rendered_sweep("svg_linear");
  for (const char* name : {"size_vs_wer.svg", "speed_vs_wer.svg"}) {
    const std::string svg = slurp(linear / name);
    EXPECT_EQ(svg.rfind("<svg ", 0), 0u) << name;
    EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos) << name;
    EXPECT_NE(svg.find("<style>"), std::string::npos) << name;
    EXPECT_EQ(svg.find("log scale"), std::string::npos) << name;
    EXPECT_NE(svg.find("class=\"frontier\""), std::string::npos) << name;
  }
  EXPECT_NE(slurp(linear / "report.html").find(slurp(linear / "size_vs_wer.svg")), std::string::npos)
      << "the page shows the same chart as the file";

  auto dir = fresh_dir("svg_log");
  Grid g = parse_grid("recipe w8a8 W8A8\nrecipe w=int2:g64 collapsed\n", "log.grid");
  SweepOptions o;
  o.out_dir = dir;
  o.progress = ProgressStyle::Quiet;
  o.bootstrap.resamples = 200;
  run_sweep(g, test_context(), [](const SweepPoint& p, Progress& pr) {
    PointResult r = fake_evaluate(p, pr);
    if (p.entry.label == "collapsed")
      for (auto& rec : r.records) rec.words = {0, 9, 0, 0};  // 9 substitutions of 9 words
    // Every point's model is its Linear layers plus the same 1 MB of other weights.
    r.extra = {{"size", {{"linear", {{"bytes", r.weight_bytes - 1'000'000}, {"bits_per_weight", 1.0}}}}}};
    return r;
  }, o);
  const std::string svg = slurp(dir / "size_vs_wer.svg");
  EXPECT_NE(svg.find("WER % (95% CI, log scale)"), std::string::npos);
  // The x axis is then the Linear layers' size, logarithmic: they span 8.8 (int2) to 147 MB (fp32).
  EXPECT_NE(svg.find("Linear layers' weight size (MB; the other 1.00 MB are the same in every point), log scale"),
            std::string::npos)
      << svg.substr(0, 2000);
  EXPECT_NE(svg.find(">100</text>"), std::string::npos) << "a 1-2-5 tick at 100 %";
  EXPECT_NE(svg.find(">10</text>"), std::string::npos);
  size_t circles = 0;
  for (size_t p = svg.find("<circle"); p != std::string::npos; p = svg.find("<circle", p + 1)) ++circles;
  EXPECT_EQ(circles, 3u + 3u) << "3 points and 3 legend dots (fp32, w8a8, int2)";
}

TEST(ReportOutputs, HtmlIsSelfContainedAndRendersInHeadlessChromium) {
  auto dir = rendered_sweep("html");
  const std::string html = slurp(dir / "report.html");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace URI
  EXPECT_EQ(html.find("https://"), std::string::npos);
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it); not rendering";

  auto profile = fresh_dir("chromium_profile");
  const std::string url = "file://" + (dir / "report.html").string();
  int rc = -1;
  std::string dom = run_capture(chromium(profile) + "--dump-dom " + url + " 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0) << "chromium --dump-dom failed";
  // The parsed DOM has both scatters, the bars and the frontier lines: 9 points x 2 scatters + legends.
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t p = dom.find(needle); p != std::string::npos; p = dom.find(needle, p + 1)) ++n;
    return n;
  };
  EXPECT_GE(count("<circle"), 18u);
  EXPECT_EQ(count("class=\"frontier\""), 2u);
  EXPECT_EQ(count("class=\"bar\""), 9u);
  EXPECT_NE(dom.find("id=\"scatter-size\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"scatter-speed\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"format-bars\""), std::string::npos);

  const fs::path shot = dir / "report.png";
  run_capture(chromium(profile) + "--screenshot=" + shot.string() + " --window-size=1100,2200 " + url +
                  " > /dev/null 2>&1",
              &rc);
  ASSERT_EQ(rc, 0) << "chromium --screenshot failed";
  Image img = read_png(slurp(shot));
  ASSERT_GT(img.width, 0) << "could not read the screenshot PNG";
  EXPECT_EQ(img.width, 1100);
  size_t non_white = img.rgb.size() / 3 - count_near(img, 255, 255, 255, 8);
  EXPECT_GT(non_white, size_t(img.width) * img.height / 50) << "the page is nearly blank";
  // The first palette colours (#1f77b4 blue, #d62728 red) fill circles and bars: they must show on the page.
  EXPECT_GT(count_near(img, 0x1f, 0x77, 0xb4, 12), 500u);
  EXPECT_GT(count_near(img, 0xd6, 0x27, 0x28, 12), 500u);
  fs::remove_all(profile);
}
