// k-means codebook quantization: 2^b centroids per tensor or per channel (1-D k-means on the block's values),
// k-means++ seeding with quasr::Rng and a fixed seed, then Lloyd iterations; centroids are stored as FP16,
// sorted ascending, and every element is assigned to its nearest *stored* centroid (ties to the lower one).
//
// Determinism: blocks (codebooks) are independent and run in parallel with disjoint outputs; inside a block the
// k-means++ distance sums are computed over fixed chunks of kChunk values and reduced in chunk order, so the
// result is the same for every thread count. Lloyd works on the sorted values with prefix sums: a cell is the
// run of sorted values between two centroid midpoints, its mean comes from two prefix-sum lookups.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "format_impl.h"
#include "quasr/core/error.h"
#include "quasr/core/parallel.h"
#include "quasr/core/rng.h"

namespace quasr::formats::detail {
namespace {

constexpr int64_t kChunk = 16384;  // fixed reduction chunk for k-means++ (independent of the thread count)

// An independent stream per codebook: hash (seed, block) through one SplitMix step (seeds that differ by the
// SplitMix increment would otherwise give shifted copies of the same stream).
Rng block_rng(uint64_t seed, int64_t block) {
  Rng mix(seed ^ (static_cast<uint64_t>(block) * 0xD1B54A32D192ED03ull));
  return Rng(mix.next_u64());
}

// k-means++ (Arthur & Vassilvitskii 2007) on sorted values: first centre uniform, each next one drawn with
// probability proportional to the squared distance to the nearest centre chosen so far.
std::vector<double> seed_centroids(const std::vector<double>& sv, int k, Rng& rng) {
  const int64_t n = static_cast<int64_t>(sv.size());
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> c;
  c.push_back(sv[rng.below(static_cast<uint64_t>(n))]);
  std::vector<double> d2(n);
  std::vector<double> partial(chunks);
  auto update = [&](double centre, bool first) {
    parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch) {
        double sum = 0;
        for (int64_t i = ch * kChunk; i < std::min(n, (ch + 1) * kChunk); ++i) {
          const double d = (sv[i] - centre) * (sv[i] - centre);
          d2[i] = first ? d : std::min(d2[i], d);
          sum += d2[i];
        }
        partial[ch] = sum;
      }
    });
  };
  update(c[0], true);
  while (static_cast<int>(c.size()) < k) {
    double total = 0;
    for (double p : partial) total += p;
    if (!(total > 0)) {  // fewer distinct values than centroids: repeat the last centre
      c.push_back(c.back());
      continue;
    }
    double target = rng.uniform() * total;
    int64_t ch = 0;
    while (ch + 1 < chunks && target >= partial[ch]) target -= partial[ch++];
    int64_t pick = ch * kChunk;
    const int64_t end = std::min(n, (ch + 1) * kChunk);
    for (int64_t i = pick; i < end; ++i) {
      pick = i;
      if (target < d2[i]) break;
      target -= d2[i];
    }
    c.push_back(sv[pick]);
    update(c.back(), false);
  }
  std::sort(c.begin(), c.end());
  return c;
}

// Lloyd iterations on sorted values with prefix sums; empty cells keep their centroid.
void lloyd(const std::vector<double>& sv, std::vector<double>& c, int iters) {
  const size_t n = sv.size(), k = c.size();
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + sv[i];
  for (int it = 0; it < iters; ++it) {
    std::vector<double> next = c;
    size_t start = 0;
    for (size_t j = 0; j < k; ++j) {
      // Cell j: values <= midpoint(c_j, c_j+1) not taken by earlier cells (ties go to the lower centroid).
      size_t end = n;
      if (j + 1 < k) {
        const double mid = 0.5 * (c[j] + c[j + 1]);
        end = static_cast<size_t>(std::upper_bound(sv.begin() + start, sv.end(), mid) - sv.begin());
      }
      if (end > start) next[j] = (prefix[end] - prefix[start]) / static_cast<double>(end - start);
      start = end;
    }
    std::sort(next.begin(), next.end());
    if (next == c) break;
    c.swap(next);
  }
}

// Nearest stored centroid (sorted), ties to the lower index.
struct Assigner {
  std::vector<double> mids;
  explicit Assigner(std::span<const float> centroids) {
    for (size_t j = 1; j < centroids.size(); ++j) mids.push_back(0.5 * (double(centroids[j - 1]) + centroids[j]));
  }
  uint8_t operator()(float x) const {
    return static_cast<uint8_t>(std::lower_bound(mids.begin(), mids.end(), double(x)) - mids.begin());
  }
};

}  // namespace

QTensor quantize_codebook(std::span<const float> x, std::span<const int64_t> shape, const QuantSpec& spec) {
  validate_quantize_args(x, shape, spec);
  const FormatTraits& f = traits(spec.format);
  const int k = 1 << f.bits;
  const BlockLayout layout = group_elements(shape, spec.granularity);
  const int64_t nb = static_cast<int64_t>(layout.offsets.size()) - 1;
  std::vector<float> centroids(static_cast<size_t>(nb) * k);
  std::vector<uint8_t> codes(x.size());
  auto quantize_block = [&](int64_t b) {
      std::vector<float> v(layout.size(b));
      layout.gather(x, b, v);
      std::vector<double> sv(v.begin(), v.end());
      std::sort(sv.begin(), sv.end());
      Rng rng = block_rng(spec.seed, b);
      std::vector<double> c = seed_centroids(sv, k, rng);
      lloyd(sv, c, spec.kmeans_iters);
      float* stored = centroids.data() + b * k;
      for (int j = 0; j < k; ++j) {
        if (std::fabs(c[j]) > 65504.0)
          throw InvalidArgument("codebook " + std::to_string(b) + ": centroid " + std::to_string(c[j]) +
                                " exceeds the FP16 range of stored centroids");
        stored[j] = fp16_to_fp32(fp32_to_fp16(static_cast<float>(c[j])));
      }
      std::sort(stored, stored + k);  // FP16 rounding is monotone; kept sorted regardless
      const Assigner assign(std::span<const float>(stored, k));
      for (size_t i = 0; i < v.size(); ++i) codes[layout.flat_index(b, static_cast<int64_t>(i))] = assign(v[i]);
  };
  // One codebook: run it on this thread so its chunked k-means++ can use the pool (nested loops run inline).
  if (nb == 1) {
    quantize_block(0);
  } else {
    parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) quantize_block(b);
    });
  }
  QTensor q;
  q.spec = spec;
  q.shape.assign(shape.begin(), shape.end());
  q.payload = pack_bits(codes, f.bits);
  q.codebook.resize(centroids.size() * 2);
  for (size_t j = 0; j < centroids.size(); ++j) put_u16(q.codebook.data() + 2 * j, fp32_to_fp16(centroids[j]));
  return q;
}

void dequantize_codebook(const QTensor& q, std::span<float> out) {
  check_dequantize_args(q, out);
  const FormatTraits& f = traits(q.spec.format);
  const int k = 1 << f.bits;
  const int64_t n = q.numel();
  const std::vector<uint8_t> codes = unpack_bits(q.payload, f.bits, static_cast<size_t>(n));
  std::vector<float> centroids(q.codebook.size() / 2);
  for (size_t j = 0; j < centroids.size(); ++j) centroids[j] = fp16_to_fp32(get_u16(q.codebook.data() + 2 * j));
  const BlockMapper map(q.shape, q.spec.granularity);
  parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = centroids[static_cast<size_t>(map(i)) * k + codes[i]];
  });
}

}  // namespace quasr::formats::detail
