// `quasr formats`: the traits table as a table. Bits per weight are measured, not computed from the row: each
// format quantizes a Gaussian tensor of --shape (default 384x1536, a Whisper tiny MLP weight) at its default
// granularity and the size is read from the QTensor's storage().
// `quasr formats --spec SPEC` prints the storage breakdown of one spec string on that tensor.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "quasr/core/error.h"
#include "quasr/core/rng.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/quant_spec.h"
#include "quasr/formats/traits.h"

namespace quasr::cli {
namespace {

using namespace quasr::formats;

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t x = text.find('x', start);
    const std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || v < 1)
      throw InvalidArgument("--shape '" + text + "': expected positive dims separated by 'x', e.g. 384x1536");
    shape.push_back(v);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return shape;
}

std::vector<float> gaussian(int64_t n) {
  Rng rng(12345);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = static_cast<float>(0.02 * rng.normal());  // Whisper-like weight scale
  return x;
}

std::string granularity_text(const QuantSpec& s) {
  switch (s.granularity.kind) {
    case GranularityKind::kPerTensor: return "per-tensor";
    case GranularityKind::kPerChannel: return "per-channel" + (s.granularity.axis ? std::to_string(s.granularity.axis) : "");
    case GranularityKind::kPerGroup: return "g" + std::to_string(s.granularity.group);
  }
  return "?";
}

std::string bound_text(const ErrorBound& b) {
  char buf[96];
  if (b.per_tensor > 0)
    std::snprintf(buf, sizeof buf, "%.4g*amax_b + %.3g*amax_t", b.per_block, b.per_tensor);
  else if (b.per_block > 0)
    std::snprintf(buf, sizeof buf, "%.4g*amax_b", b.per_block);
  else
    std::snprintf(buf, sizeof buf, "exact");
  return buf;
}

void print_table(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const std::vector<float> x = gaussian(n);
  std::printf("| format | bits/elem | block | scale | default | bits/weight | pairs with | error bound (max-abs) | "
              "description |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const FormatTraits& f : all_formats()) {
    const QuantSpec spec = QuantSpec::defaults(f.id);
    std::string bpw;
    try {
      const StorageBytes st = quantize(x, shape, spec).storage();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.4f", st.bits_per_weight());
      bpw = buf;
    } catch (const InvalidArgument& e) {
      bpw = "n/a (shape)";
    }
    const std::string block = f.fixed_block ? std::to_string(f.fixed_block) : "any";
    std::printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", f.name, f.bits, block.c_str(),
                f.kind == FormatKind::kCodebook ? "fp16 codebook" : scale_type_name(f.scale),
                granularity_text(spec).c_str(), bpw.c_str(), traits(f.pairs_with).name,
                bound_text(f.tolerance).c_str(), f.description);
  }
  std::string dims;
  for (int64_t d : shape) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  std::printf("\nbits/weight: measured from storage() after quantizing a %s Gaussian tensor at the default "
              "granularity (scales, zero points, codebooks and NVFP4's FP32 tensor scale included).\n",
              dims.c_str());
  std::printf("error bound: |x - x_hat| <= per_block*amax_b + per_tensor*amax_t (+ a subnormal-scale term; "
              "see docs/formats.md), amax_b = block absmax, amax_t = tensor absmax.\n");
}

void print_spec(const std::string& text, const std::vector<int64_t>& shape) {
  const QuantSpec spec = QuantSpec::parse(text);
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const QTensor q = quantize(gaussian(n), shape, spec);
  const StorageBytes st = q.storage();
  const ErrorBound b = error_bound(spec);
  std::string dims;
  for (int64_t d : shape) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  std::printf("spec:          %s\n", spec.to_string().c_str());
  std::printf("tensor:        %s (%lld elements), %lld blocks\n", dims.c_str(), static_cast<long long>(n),
              static_cast<long long>(q.num_blocks()));
  std::printf("payload:       %zu bytes\n", st.payload);
  std::printf("scales:        %zu bytes (%s)\n", st.scales, scale_type_name(spec.scale_type));
  std::printf("zero points:   %zu bytes\n", st.zero_points);
  std::printf("codebook:      %zu bytes\n", st.codebook);
  std::printf("tensor scale:  %zu bytes\n", st.tensor_scale);
  std::printf("total:         %zu bytes = %.4f bits/weight\n", st.total(), st.bits_per_weight());
  std::printf("error bound:   %s + %.3g (max-abs estimator)\n", bound_text(b).c_str(), b.absolute);
}

}  // namespace

void register_formats(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("formats", "List every number format with its bits per weight");
  auto spec = std::make_shared<std::string>();
  auto shape = std::make_shared<std::string>("384x1536");
  CLI::Option* spec_opt =
      cmd->add_option("--spec", *spec, "Print the storage of one quantization spec, e.g. int4:g128 or nvfp4");
  cmd->add_option("--shape", *shape, "Tensor shape to quantize for the size measurement (default 384x1536)");
  cmd->callback([spec, shape, spec_opt] {
    const std::vector<int64_t> dims = parse_shape(*shape);
    if (spec_opt->count() == 0)
      print_table(dims);
    else
      print_spec(*spec, dims);
  });
}

}  // namespace quasr::cli
