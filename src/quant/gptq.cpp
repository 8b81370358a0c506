// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers", ICLR 2023), as specified in quant/ptq.h. Written from the paper's Algorithm 1.
//
// Linear algebra: GPTQ needs the upper Cholesky factor U of Hinv = (H + lambda I)^-1 = U^T U. With J the
// reversal permutation, Cholesky of the reversed matrix J H J = L L^T gives H = R R^T with R = J L J upper
// triangular, so Hinv = R^-T R^-1 and U = R^-1 = J L^-1 J: one Cholesky and one triangular inverse (2k^3/3
// flops) instead of Cholesky, inverse and Cholesky again. Both are done in double (the Hessian of real
// activations is ill-conditioned; kernels in gptq_linalg.inc, compiled per ISA), then U is rounded to FP32 for
// the sweep, which runs in FP32 like the paper's.
//
// Work and memory: O(k^3) for the factorisation, O(n k^2) for the sweep (the lazy updates are one sgemm per
// block); two k x k doubles, one k x k float, the weight (n x k float) and its codes (n x k bytes) at the peak.
// Rows of W are independent given U, so the sweep runs in parallel over rows; every result is computed in an
// order that does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "gptq_linalg.h"
#include "ptq_common.h"
#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/release.h"
#include "quasr/formats/block_codec.h"
#include "quasr/kernels/gemm.h"
#include "quasr/quant/ptq.h"

namespace quasr::quant {
namespace {

using formats::BlockCodec;
using formats::BlockScale;
using formats::GranularityKind;

constexpr int64_t kRowsPerTask = 32;

// The factorisation kernels of the best ISA this machine has (gptq_linalg.inc).
int64_t cholesky_lower(std::vector<double>& a, int64_t k) {
  switch (best_isa()) {
    case Isa::Scalar: return detail::portable::cholesky_lower(a, k);
    case Isa::Avx2: return detail::avx2::cholesky_lower(a, k);
    default: return detail::avx512::cholesky_lower(a, k);
  }
}

void invert_lower(const std::vector<double>& l, int64_t k, std::vector<double>& x) {
  switch (best_isa()) {
    case Isa::Scalar: return detail::portable::invert_lower(l, k, x);
    case Isa::Avx2: return detail::avx2::invert_lower(l, k, x);
    default: return detail::avx512::invert_lower(l, k, x);
  }
}

// Checks xtx and returns it prepared in sweep order: dead inputs marked (diag set to 1), columns permuted by
// `perm`, dampened, and reversed (a[i][j] = H[perm[k-1-i]][perm[k-1-j]]), ready for cholesky_lower.
std::vector<double> prepare_hessian(std::span<const double> xtx, int64_t k, const GptqOptions& o,
                                    std::vector<uint8_t>& dead, std::vector<int64_t>& perm) {
  if (static_cast<int64_t>(xtx.size()) / k != k || static_cast<int64_t>(xtx.size()) % k != 0)
    throw InvalidArgument("gptq: Hessian (xtx) has " + std::to_string(xtx.size()) + " values, expected k * k = " +
                          std::to_string(k) + " * " + std::to_string(k));
  for (size_t i = 0; i < xtx.size(); ++i)
    if (!std::isfinite(xtx[i]))
      throw InvalidArgument("gptq: Hessian (xtx) entry [" + std::to_string(static_cast<int64_t>(i) / k) + "][" +
                            std::to_string(static_cast<int64_t>(i) % k) + "] is not finite");
  std::vector<double> diag(static_cast<size_t>(k));
  dead.assign(static_cast<size_t>(k), 0);
  for (int64_t j = 0; j < k; ++j) {
    diag[j] = xtx[j * k + j];
    if (diag[j] < 0)
      throw InvalidArgument("gptq: Hessian (xtx) is not positive semidefinite: diagonal entry " + std::to_string(j) +
                            " is negative (" + std::to_string(diag[j]) + ")");
    if (diag[j] == 0) {
      dead[j] = 1;
      diag[j] = 1;  // the paper's code: a dead input's weights are zeroed and its pivot made 1
    }
  }
  // xtx is a sum of outer products, symmetric up to rounding; a clearly asymmetric matrix is not one.
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j) {
      const double a = xtx[i * k + j], b = xtx[j * k + i];
      if (std::fabs(a - b) > 1e-6 * std::sqrt(diag[i] * diag[j]) + 1e-6 * std::max(std::fabs(a), std::fabs(b)))
        throw InvalidArgument("gptq: Hessian (xtx) is not symmetric: [" + std::to_string(i) + "][" +
                              std::to_string(j) + "] = " + std::to_string(a) + " but [" + std::to_string(j) + "][" +
                              std::to_string(i) + "] = " + std::to_string(b));
    }
  perm.resize(static_cast<size_t>(k));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (o.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  const double lambda = o.damp * std::accumulate(diag.begin(), diag.end(), 0.0) / static_cast<double>(k);
  std::vector<double> a(static_cast<size_t>(k * k), 0.0);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t hi = perm[k - 1 - i];
    for (int64_t j = 0; j <= i; ++j) {
      const int64_t hj = perm[k - 1 - j];
      a[i * k + j] = hi == hj ? diag[hi] + lambda : xtx[std::max(hi, hj) * k + std::min(hi, hj)];
    }
  }
  return a;
}

// U (upper, FP32, sweep order) with (H + lambda I)^-1 = U^T U; see the top of the file.
std::vector<float> inverse_hessian_factor(std::vector<double> a, int64_t k, const std::vector<int64_t>& perm,
                                          float damp) {
  const int64_t bad = cholesky_lower(a, k);
  if (bad >= 0)
    throw InvalidArgument("gptq: the Hessian (xtx) is not positive definite even after dampening (gptq-damp=" +
                          std::to_string(damp) + " of its mean diagonal): the factorisation fails at input column " +
                          std::to_string(perm[k - 1 - bad]) +
                          "; raise gptq-damp or check the calibration statistics");
  std::vector<double> x;
  invert_lower(a, k, x);
  release(a);
  std::vector<float> u(static_cast<size_t>(k * k), 0.0f);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j) u[i * k + j] = static_cast<float>(x[(k - 1 - i) * k + (k - 1 - j)]);
  return u;
}

}  // namespace

formats::QTensor gptq_quantize(std::span<const float> w, int64_t n, int64_t k, const formats::QuantSpec& spec,
                               std::span<const double> xtx, const GptqOptions& options) {
  detail::check_weight("gptq", w, n, k, spec);
  if (!std::isfinite(options.damp) || options.damp < 0)
    throw InvalidArgument("gptq: damp must be finite and >= 0, got " + std::to_string(options.damp));
  if (options.block < 1) throw InvalidArgument("gptq: block must be >= 1, got " + std::to_string(options.block));
  const formats::FormatKind kind = formats::traits(spec.format).kind;
  if (kind == formats::FormatKind::kCodebook)
    throw InvalidArgument(std::string("gptq: ") + formats::traits(spec.format).name +
                          " is a learned codebook, not a format with scales; GPTQ supports integer, scaled FP, "
                          "NF4, MX and NVFP4 formats");

  std::vector<uint8_t> dead;
  std::vector<int64_t> perm;
  std::vector<double> hessian = prepare_hessian(xtx, k, options, dead, perm);
  const int64_t shape[2] = {n, k};
  if (kind == formats::FormatKind::kStorage) return formats::quantize(w, shape, spec);

  // Working weights in sweep order, dead inputs zeroed.
  std::vector<float> w0(w.begin(), w.end());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j)
      if (dead[j]) w0[r * k + j] = 0.0f;
  const std::vector<float> u = inverse_hessian_factor(std::move(hessian), k, perm, options.damp);

  const BlockCodec codec(spec, detail::max_abs(w0));
  const detail::WeightBlocks blocks(n, k, spec.granularity);
  std::vector<BlockScale> scales(static_cast<size_t>(blocks.count()));
  const bool per_group = spec.granularity.kind == GranularityKind::kPerGroup;
  const bool per_column = spec.granularity.kind == GranularityKind::kPerChannel && spec.granularity.axis == 1;
  // Scales fixed before the sweep: every one under act_order (static groups), else those whose block starts at
  // column 0 of every row (per-tensor, per-channel axis 0). Per-group and per-column scales are fixed on arrival.
  const bool lazy = !options.act_order && (per_group || per_column);
  if (!lazy) {
    parallel_for(0, blocks.count(), 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> v;
      for (int64_t b = b0; b < b1; ++b) {
        blocks.gather(w0, b, v);
        scales[b] = codec.choose_scale(v, b);
      }
    });
  }

  std::vector<float> wp(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j) wp[r * k + j] = w0[r * k + perm[j]];
  release(w0);
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));
  const int64_t bmax = std::min<int64_t>(options.block, k);
  std::vector<float> w1t(static_cast<size_t>(bmax * n)), e1t(static_cast<size_t>(bmax * n));
  const int64_t group = per_group ? spec.granularity.group : 0;

  for (int64_t i1 = 0; i1 < k;) {
    int64_t i2 = std::min(k, i1 + bmax);
    if (lazy && per_group) {
      // A group starting inside this block must end inside it, so that its values are current when read.
      const int64_t last_start = (i2 - 1) / group * group;
      if (last_start > i1 && last_start + group > i2) i2 = last_start;
    }
    const int64_t count = i2 - i1;
    for (int64_t i = 0; i < count; ++i)
      for (int64_t r = 0; r < n; ++r) w1t[i * n + r] = wp[r * k + i1 + i];

    // Columns [ia, ib) of this block for rows [r0, r1): fix arriving group scales, round, spread the error.
    auto sweep = [&](int64_t r0, int64_t r1, int64_t ia, int64_t ib) {
      std::vector<float> v;
      for (int64_t i = ia; i < ib; ++i) {
        const int64_t j = i1 + i, oj = perm[j];
        if (lazy && per_group && j % group == 0) {
          for (int64_t r = r0; r < r1; ++r) {
            v.resize(static_cast<size_t>(group));
            for (int64_t c = 0; c < group; ++c)
              v[c] = j + c < i2 ? w1t[(i + c) * n + r] : wp[r * k + j + c];
            scales[blocks.of(r, oj)] = codec.choose_scale(v, blocks.of(r, oj));
          }
        }
        const float d = u[j * k + j];
        float* col = &w1t[i * n];
        float* err = &e1t[i * n];
        for (int64_t r = r0; r < r1; ++r) {
          const BlockScale& s = scales[blocks.of(r, oj)];
          const uint8_t code = codec.encode(col[r], s);
          codes[r * k + oj] = code;
          err[r] = (col[r] - codec.decode(code, s)) / d;
        }
        for (int64_t t = i + 1; t < count; ++t) {
          const float h = u[j * k + i1 + t];
          if (h == 0.0f) continue;
          float* dst = &w1t[t * n];
          for (int64_t r = r0; r < r1; ++r) dst[r] -= err[r] * h;
        }
      }
    };
    if (lazy && per_column) {
      // One scale per input column, shared by all rows: fixed from the whole current column as it arrives.
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < count; ++i) {
        std::copy_n(&w1t[i * n], n, v.begin());
        scales[perm[i1 + i]] = codec.choose_scale(v, perm[i1 + i]);
        parallel_for(0, n, kRowsPerTask, [&](int64_t r0, int64_t r1) { sweep(r0, r1, i, i + 1); });
      }
    } else {
      parallel_for(0, n, kRowsPerTask, [&](int64_t r0, int64_t r1) { sweep(r0, r1, 0, count); });
    }
    // Lazy update of every later column with this block's errors: W[:, i2:] -= Err1 U[i1:i2, i2:].
    if (i2 < k)
      kernels::sgemm(true, false, n, k - i2, count, -1.0f, e1t.data(), n, &u[i1 * k + i2], k, 1.0f, &wp[i2], k);
    i1 = i2;
  }
  return codec.assemble(shape, codes, scales);
}

}  // namespace quasr::quant
