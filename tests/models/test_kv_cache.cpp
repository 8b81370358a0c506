// KV caches at FP16 / INT8 / FP8 (src/models/kv_cache.h): rows round trip within the format's bound and equal the
// formats module's reference quantize -> dequantize, attention over a quantized cache equals attention over its
// dequantized FP32 copy, reorder moves codes with their scales, the row kernels of every ISA decode exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "../../src/models/kv_cache.h"
#include "quasr/core/cpu_features.h"
#include "quasr/core/error.h"
#include "quasr/formats/minifloat.h"
#include "quasr/formats/qtensor.h"
#include "quasr/formats/traits.h"
#include "quasr/models/kv_cache.h"

namespace quasr::models::detail {
namespace {

constexpr KvPrecision kQuantized[] = {KvPrecision::kFp16, KvPrecision::kInt8, KvPrecision::kFp8};

// Values with a different magnitude per head and per row (as K/V have), so per-(row, head) scales matter:
// N(0, 1) times 10^u, u uniform in [lo, hi] per (row, head).
std::vector<float> random_rows(int64_t rows, int n_heads, int64_t d_head, uint64_t seed, float lo = -3.0f,
                               float hi = 2.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::vector<float> x(static_cast<size_t>(rows * n_heads * d_head));
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < n_heads; ++h) {
      const float m = std::pow(10.0f, mag(gen));
      for (int64_t c = 0; c < d_head; ++c) x[(r * n_heads + h) * d_head + c] = m * normal(gen);
    }
  return x;
}

std::vector<float> dequantized(const KvCache& c) {
  std::vector<float> out(static_cast<size_t>(c.rows() * c.width()));
  c.dequantize(0, c.rows(), out.data());
  return out;
}

TEST(KvCache, RowsRoundTripWithinTheFormatBound) {
  const int H = 6;
  const int64_t dh = 64, rows = 40;
  const std::vector<float> x = random_rows(rows, H, dh, 1);
  for (KvPrecision p : kQuantized) {
    SCOPED_TRACE(quant::kv_precision_name(p));
    KvCache c(p, rows, H, dh);
    c.store(0, x.data(), rows, H * dh);
    const std::vector<float> y = dequantized(c);
    const formats::ErrorBound bound = formats::error_bound(kv_row_spec(p, dh));
    double worst = 0;  // the largest error as a fraction of what the bound allows
    for (int64_t r = 0; r < rows; ++r)
      for (int h = 0; h < H; ++h) {
        const float* xr = x.data() + (r * H + h) * dh;
        float amax = 0;
        for (int64_t i = 0; i < dh; ++i) amax = std::max(amax, std::fabs(xr[i]));
        for (int64_t i = 0; i < dh; ++i) {
          const double err = std::fabs(double(xr[i]) - y[(r * H + h) * dh + i]);
          // FP16 (no scale): relative to the value itself, 2^-11, plus half the smallest subnormal.
          const double allowed = p == KvPrecision::kFp16 ? std::ldexp(std::fabs(double(xr[i])), -11) + std::ldexp(1.0, -25)
                                                         : bound.per_block * amax + bound.absolute;
          ASSERT_LE(err, allowed) << "row " << r << " head " << h << " value " << xr[i];
          worst = std::max(worst, err / allowed);
        }
        if (p != KvPrecision::kFp16) {  // the scale is max|x| / qmax of this (row, head), stored as FP32
          EXPECT_EQ(c.scales()[r * H + h], static_cast<float>(amax / (p == KvPrecision::kInt8 ? 127.0 : 448.0)));
        }
      }
    EXPECT_GT(worst, 0.1) << "errors far below the bound: is anything quantized?";
  }
}

TEST(KvCache, RowsAreTheFormatsReferenceQuantization) {
  // Rows written in pieces (as decode steps write them) equal one formats::quantize -> dequantize of the whole.
  const int H = 4;
  const int64_t dh = 32, rows = 9;
  const std::vector<float> x = random_rows(rows, H, dh, 2);
  for (KvPrecision p : kQuantized) {
    SCOPED_TRACE(quant::kv_precision_name(p));
    KvCache c(p, rows, H, dh);
    c.store(0, x.data(), 4, H * dh);
    c.store(4, x.data() + 4 * H * dh, 1, H * dh);
    c.store(5, x.data() + 5 * H * dh, 4, H * dh);
    const int64_t shape[2] = {rows, H * dh};
    const std::vector<float> ref = formats::quantize(x, shape, kv_row_spec(p, dh)).dequantize();
    const std::vector<float> got = dequantized(c);
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * 4), 0);
  }
}

TEST(KvCache, RowKernelsOfEveryIsaDecodeExactly) {
  // Every FP16 code, decoded by each ISA's row kernel, against formats::fp16_to_fp32; INT8 codes likewise.
  std::vector<uint16_t> halves(65536);
  std::iota(halves.begin(), halves.end(), 0);
  std::vector<int8_t> bytes(256);
  for (int i = 0; i < 256; ++i) bytes[i] = static_cast<int8_t>(i - 128);
  struct Candidate { const char* name; Isa isa; const KvKernels* k; };
  for (const Candidate& c : {Candidate{"baseline", Isa::Scalar, &baseline::kKv}, Candidate{"avx2", Isa::Avx2, &avx2::kKv},
                             Candidate{"avx512", Isa::Avx512, &avx512::kKv}}) {
    if (!isa_supported(c.isa)) continue;  // a CPU without the ISA skips it
    SCOPED_TRACE(c.name);
    // Lengths that exercise the 16-wide body and the tail.
    for (int64_t n : {int64_t{65536}, int64_t{65535 - 16}}) {
      std::vector<float> y(static_cast<size_t>(n), -1.0f);
      c.k->decode_f16(halves.data() + (65536 - n), y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const float ref = formats::fp16_to_fp32(halves[65536 - n + i]);
        uint32_t got_bits, ref_bits;
        std::memcpy(&got_bits, &y[i], 4);
        std::memcpy(&ref_bits, &ref, 4);
        if (std::isnan(ref)) {  // F16C sets the quiet bit of a signalling NaN; a cache never holds NaN anyway
          ASSERT_TRUE(std::isnan(y[i])) << "code " << (65536 - n + i);
        } else {
          ASSERT_EQ(got_bits, ref_bits) << "code " << (65536 - n + i);
        }
      }
    }
    std::vector<float> yi(256, -1.0f);
    c.k->decode_i8(bytes.data(), yi.data(), 256);
    for (int i = 0; i < 256; ++i) ASSERT_EQ(yi[i], static_cast<float>(i - 128));
    for (int64_t n : {1, 15, 16, 17, 64, 100}) {
      std::vector<float> q(n), x(n), y(n, 0.5f);
      for (int64_t i = 0; i < n; ++i) {
        q[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
        x[i] = 0.125f * static_cast<float>(i % 5) - 0.25f;
      }
      double ref = 0;
      for (int64_t i = 0; i < n; ++i) ref += double(q[i]) * x[i];  // exact: few short binary fractions
      EXPECT_EQ(c.k->dot_f32(q.data(), x.data(), n), ref) << n;
      c.k->axpy_f32(2.0f, x.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 0.5f + 2.0f * x[i]);
    }
  }
}

// attention_cached over a quantized cache against attention() over the cache's dequantized FP32 values.
void expect_attention_matches(const AttentionShape& a, int64_t cache_rows, uint64_t seed) {
  const int64_t w = a.n_heads * a.d_head;
  // Scores of a few units (as in Whisper), so float rounding of a score stays far below the tolerance.
  const std::vector<float> kx = random_rows(cache_rows, a.n_heads, a.d_head, seed, -1.0f, 0.3f);
  const std::vector<float> vx = random_rows(cache_rows, a.n_heads, a.d_head, seed + 1);
  const int64_t q_rows = a.n_seq == 1 ? a.nq : (a.n_seq - 1) * (a.q_seq_stride / a.ldq) + a.nq;
  const std::vector<float> q = random_rows(q_rows, a.n_heads, a.d_head, seed + 2, 0.0f, 0.0f);
  const int64_t out_rows = a.n_seq == 1 ? a.nq : (a.n_seq - 1) * (a.out_seq_stride / a.ldo) + a.nq;
  for (KvPrecision p : {KvPrecision::kFp32, KvPrecision::kFp16, KvPrecision::kInt8, KvPrecision::kFp8}) {
    SCOPED_TRACE(quant::kv_precision_name(p));
    KvCache k(p, cache_rows, a.n_heads, a.d_head), v(p, cache_rows, a.n_heads, a.d_head);
    k.store(0, kx.data(), cache_rows, w);
    v.store(0, vx.data(), cache_rows, w);
    const std::vector<float> kd = dequantized(k), vd = dequantized(v);
    std::vector<float> got(static_cast<size_t>(out_rows * w), -7.0f), ref(got.size(), -7.0f);
    attention_cached(a, q.data(), k, v, got.data());
    attention(a, q.data(), kd.data(), vd.data(), ref.data());
    if (p == KvPrecision::kFp32) {  // the FP32 runtime's path itself
      EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * 4), 0);
      continue;
    }
    // Same math in another summation order (dot products of decoded rows, scale applied to the dot product):
    // float rounding only. Outputs are averages of V rows, so compare against the largest |V|.
    float vmax = 0;
    for (float x : vd) vmax = std::max(vmax, std::fabs(x));
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - ref[i])));
    EXPECT_LE(worst, 2e-6 * vmax) << "max |diff| " << worst << " (max |V| " << vmax << ")";
  }
}

TEST(KvCache, AttentionOverQuantizedCacheEqualsAttentionOverDequantized) {
  // Self-attention as a decode step writes it: 3 sequences, cache capacity 12 rows each, 2 new queries per
  // sequence after 5 cached positions (causal).
  AttentionShape self;
  self.n_seq = 3;
  self.nq = 2;
  self.nk = 7;
  self.n_heads = 6;
  self.d_head = 64;
  self.ldq = self.ldk = self.ldo = 6 * 64;
  self.q_seq_stride = self.out_seq_stride = 2 * 6 * 64;
  self.kv_seq_stride = 12 * 6 * 64;
  self.causal_offset = 5;
  expect_attention_matches(self, 3 * 12, 10);
  // Cross-attention: all queries against one shared K/V (stride 0), more queries than one 256-row block.
  AttentionShape cross = self;
  cross.n_seq = 1;
  cross.nq = 300;
  cross.nk = 150;
  cross.n_heads = 2;
  cross.d_head = 48;
  cross.ldq = cross.ldk = cross.ldo = 96;
  cross.q_seq_stride = cross.kv_seq_stride = cross.out_seq_stride = 0;
  cross.causal_offset = -1;
  expect_attention_matches(cross, 150, 20);
  // A prompt of 300 tokens written at once (causal within the block, two query blocks).
  AttentionShape prompt = cross;
  prompt.nk = 300;
  prompt.causal_offset = 0;
  expect_attention_matches(prompt, 300, 30);
}

TEST(KvCache, ReorderKeepsRowsAndScalesTogether) {
  const int H = 3;
  const int64_t dh = 16, cap = 5, used = 4;
  const std::vector<float> x = random_rows(3 * cap, H, dh, 3);
  for (KvPrecision p : {KvPrecision::kFp32, KvPrecision::kFp16, KvPrecision::kInt8, KvPrecision::kFp8}) {
    SCOPED_TRACE(quant::kv_precision_name(p));
    KvCache c(p, 3 * cap, H, dh);
    c.store(0, x.data(), 3 * cap, H * dh);
    const std::vector<float> before = dequantized(c);
    // Beam reorder: new sequence i continues old sequence src[i] (a duplicate and a dropped one).
    const int src[4] = {2, 0, 2, 1};
    KvCache next(p, 0, H, dh);
    next.resize_rows(4 * cap);
    for (int i = 0; i < 4; ++i) next.copy_rows(i * cap, c, src[i] * cap, used);
    const std::vector<float> after = dequantized(next);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(std::memcmp(after.data() + i * cap * H * dh, before.data() + src[i] * cap * H * dh,
                            used * H * dh * 4), 0) << "sequence " << i;
    if (p == KvPrecision::kInt8 || p == KvPrecision::kFp8) {
      for (int i = 0; i < 4; ++i)
        for (int64_t r = 0; r < used * H; ++r) EXPECT_EQ(next.scales()[i * cap * H + r], c.scales()[src[i] * cap * H + r]);
    }
  }
}

TEST(KvCache, BytesFollowTheFormula) {
  const int H = 6;
  const int64_t dh = 64;
  EXPECT_EQ(kv_row_bytes(KvPrecision::kFp32, H, dh), 384 * 4);
  EXPECT_EQ(kv_row_bytes(KvPrecision::kFp16, H, dh), 384 * 2);
  EXPECT_EQ(kv_row_bytes(KvPrecision::kInt8, H, dh), 384 + 6 * 4);  // codes + one FP32 scale per head
  EXPECT_EQ(kv_row_bytes(KvPrecision::kFp8, H, dh), 384 + 6 * 4);
  for (KvPrecision p : {KvPrecision::kFp32, KvPrecision::kFp16, KvPrecision::kInt8, KvPrecision::kFp8}) {
    KvCache c(p, 37, H, dh);
    EXPECT_EQ(c.bytes(), 37 * kv_row_bytes(p, H, dh));
    // What the cache actually holds.
    const int64_t held = p == KvPrecision::kFp32   ? 37 * 384 * 4
                         : p == KvPrecision::kFp16 ? 37 * 384 * 2
                                                   : 37 * 384 + 37 * 6 * 4;
    EXPECT_EQ(c.bytes(), held);
  }
  EXPECT_THROW(kv_row_bytes(KvPrecision::kInt8, 0, 64), InvalidArgument);
}

TEST(KvCache, BadWritesAreRefused) {
  KvCache c(KvPrecision::kInt8, 4, 2, 8);
  std::vector<float> x(5 * 16, 1.0f);
  EXPECT_THROW(c.store(0, x.data(), 5, 16), InvalidArgument);  // past the last row
  EXPECT_THROW(c.store(0, x.data(), 1, 8), InvalidArgument);   // stride shorter than a row
  x[3] = std::nanf("");
  try {
    c.store(0, x.data(), 1, 16);
    FAIL() << "a NaN was cached";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache at int8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quasr::models::detail
