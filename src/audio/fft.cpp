// Recursive decimation-in-time mixed-radix FFT. Level `level` splits a length-(p*m) transform into p interleaved
// sub-transforms of length m (inputs taken with stride `stride * p`), computes them into consecutive blocks of
// `out`, then combines them with p-point butterflies: out[k + q*m] = sum_r W_pm^{rk} Y_r[k] W_p^{rq}.
//
// Complex products are written out by hand: std::complex<double> operator* follows C Annex G (NaN/Inf recovery)
// and, without -ffast-math, compiles to a call to __muldc3, several times slower than the four multiplies.
#include "quasr/audio/fft.h"

#include <cmath>
#include <numbers>
#include <string>

#include "quasr/core/error.h"

namespace quasr::audio {
namespace {

using cd = std::complex<double>;

inline cd mul(cd a, cd b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}
// Multiply by -i (the forward-transform sign of a quarter turn).
inline cd mul_neg_i(cd a) { return {a.imag(), -a.real()}; }

std::vector<cd> twiddles(int n, int count) {
  std::vector<cd> t(static_cast<size_t>(count));
  for (int k = 0; k < count; ++k) {
    // Reduce the angle to the first octant's accuracy by computing it from k/n in long double.
    const long double a = -2.0L * std::numbers::pi_v<long double> * k / n;
    t[static_cast<size_t>(k)] = {static_cast<double>(std::cos(a)), static_cast<double>(std::sin(a))};
  }
  return t;
}

}  // namespace

ComplexFft::ComplexFft(int n) : n_(n) {
  if (n < 1) throw InvalidArgument("FFT size must be >= 1, got " + std::to_string(n));
  // Radix 4 first (fewest multiplies), then 2, 3, 5, then any remaining prime.
  int rest = n;
  for (int p : {4, 2, 3, 5}) {
    while (rest % p == 0) {
      factors_.push_back(p);
      rest /= p;
    }
  }
  for (int p = 7; rest > 1; p += 2) {
    while (rest % p == 0) {
      factors_.push_back(p);
      rest /= p;
    }
    if (p * p > rest && rest > 1) {
      factors_.push_back(rest);
      rest = 1;
    }
  }
  twiddle_ = twiddles(n, n);
}

void ComplexFft::forward(std::span<const cd> in, std::span<cd> out) const {
  if (static_cast<int>(in.size()) != n_ || static_cast<int>(out.size()) != n_)
    throw InvalidArgument("ComplexFft::forward: expected " + std::to_string(n_) + " values in and out");
  if (n_ == 1) {
    out[0] = in[0];
    return;
  }
  work(out.data(), in.data(), 1, 0);
}

void ComplexFft::work(cd* out, const cd* in, int stride, int level) const {
  const int p = factors_[static_cast<size_t>(level)];
  int m = 1;
  for (size_t i = static_cast<size_t>(level) + 1; i < factors_.size(); ++i) m *= factors_[i];
  if (m == 1) {
    for (int q = 0; q < p; ++q) out[q] = in[q * stride];
  } else {
    for (int r = 0; r < p; ++r) work(out + r * m, in + r * stride, stride * p, level + 1);
  }
  // Twiddle W_{p*m}^{j} is twiddle_[j * stride] because n = stride * p * m.
  const cd* tw = twiddle_.data();
  switch (p) {
    case 2:
      for (int k = 0; k < m; ++k) {
        const cd a = out[k], b = mul(out[k + m], tw[k * stride]);
        out[k] = a + b;
        out[k + m] = a - b;
      }
      break;
    case 4:
      for (int k = 0; k < m; ++k) {
        const cd a0 = out[k];
        const cd a1 = mul(out[k + m], tw[k * stride]);
        const cd a2 = mul(out[k + 2 * m], tw[2 * k * stride]);
        const cd a3 = mul(out[k + 3 * m], tw[3 * k * stride]);
        const cd s02 = a0 + a2, d02 = a0 - a2, s13 = a1 + a3, d13 = mul_neg_i(a1 - a3);
        out[k] = s02 + s13;
        out[k + m] = d02 + d13;
        out[k + 2 * m] = s02 - s13;
        out[k + 3 * m] = d02 - d13;
      }
      break;
    case 3: {
      const double s = -std::sqrt(3.0) / 2;  // Im W_3
      for (int k = 0; k < m; ++k) {
        const cd a0 = out[k];
        const cd a1 = mul(out[k + m], tw[k * stride]);
        const cd a2 = mul(out[k + 2 * m], tw[2 * k * stride]);
        const cd sum = a1 + a2, diff = a1 - a2;
        const cd mid = a0 - 0.5 * sum;
        const cd rot{-s * diff.imag(), s * diff.real()};  // i * s * diff
        out[k] = a0 + sum;
        out[k + m] = mid + rot;
        out[k + 2 * m] = mid - rot;
      }
      break;
    }
    case 5: {
      // W_5 = c1 + i s1, W_5^2 = c2 + i s2 (forward sign: s1, s2 < 0).
      const double c1 = std::cos(2 * std::numbers::pi / 5), s1 = -std::sin(2 * std::numbers::pi / 5);
      const double c2 = std::cos(4 * std::numbers::pi / 5), s2 = -std::sin(4 * std::numbers::pi / 5);
      for (int k = 0; k < m; ++k) {
        const cd a0 = out[k];
        const cd a1 = mul(out[k + m], tw[k * stride]);
        const cd a2 = mul(out[k + 2 * m], tw[2 * k * stride]);
        const cd a3 = mul(out[k + 3 * m], tw[3 * k * stride]);
        const cd a4 = mul(out[k + 4 * m], tw[4 * k * stride]);
        const cd s14 = a1 + a4, d14 = a1 - a4, s23 = a2 + a3, d23 = a2 - a3;
        const cd m1 = a0 + c1 * s14 + c2 * s23;
        const cd m2 = a0 + c2 * s14 + c1 * s23;
        // i * (s1 * d14 + s2 * d23) and i * (s2 * d14 - s1 * d23)
        const cd t1 = s1 * d14 + s2 * d23, t2 = s2 * d14 - s1 * d23;
        const cd r1{-t1.imag(), t1.real()}, r2{-t2.imag(), t2.real()};
        out[k] = a0 + s14 + s23;
        out[k + m] = m1 + r1;
        out[k + 4 * m] = m1 - r1;
        out[k + 2 * m] = m2 + r2;
        out[k + 3 * m] = m2 - r2;
      }
      break;
    }
    default: {
      // Generic prime radix: O(p^2) per output group. W_p^{j} = twiddle_[j * n / p].
      std::vector<cd> t(static_cast<size_t>(p));
      const int np = n_ / p;
      for (int k = 0; k < m; ++k) {
        for (int r = 0; r < p; ++r) t[static_cast<size_t>(r)] = mul(out[k + r * m], tw[r * k * stride]);
        for (int q = 0; q < p; ++q) {
          cd acc = t[0];
          for (int r = 1; r < p; ++r) acc += mul(t[static_cast<size_t>(r)], tw[((r * q) % p) * np]);
          out[k + q * m] = acc;
        }
      }
    }
  }
}

RealFft::RealFft(int n) : n_(n), half_(n >= 2 && n % 2 == 0 ? n / 2 : 1) {
  if (n < 2 || n % 2 != 0) throw InvalidArgument("RealFft size must be even and >= 2, got " + std::to_string(n));
  twiddle_ = twiddles(n, n / 2 + 1);
}

void RealFft::forward(std::span<const double> in, std::span<cd> out, std::span<cd> scratch) const {
  const int h = n_ / 2;
  if (static_cast<int>(in.size()) != n_ || static_cast<int>(out.size()) != h + 1 ||
      static_cast<int>(scratch.size()) < scratch_size())
    throw InvalidArgument("RealFft::forward: expected " + std::to_string(n_) + " inputs, " +
                          std::to_string(h + 1) + " outputs and " + std::to_string(scratch_size()) + " scratch");
  // Pack even samples as real parts and odd samples as imaginary parts: z[j] = x[2j] + i x[2j+1].
  cd* z = scratch.data();
  cd* zf = scratch.data() + h;
  for (int j = 0; j < h; ++j) z[j] = {in[2 * j], in[2 * j + 1]};
  half_.forward({z, static_cast<size_t>(h)}, {zf, static_cast<size_t>(h)});
  // Split Z into the transforms of the even (E) and odd (O) samples, then X[k] = E[k] + W_n^k O[k].
  for (int k = 0; k <= h; ++k) {
    const cd zk = zf[k % h], zc = std::conj(zf[(h - k) % h]);
    const cd even = 0.5 * (zk + zc);
    const cd odd = mul_neg_i(0.5 * (zk - zc));
    out[k] = even + mul(twiddle_[static_cast<size_t>(k)], odd);
  }
}

}  // namespace quasr::audio
