#pragma once
// Mixed-radix FFT in double precision, for the STFT behind Whisper's log-mel features (n_fft = 400 = 2^4 * 5^2,
// not a power of two). Any size works: factors 4, 2, 3 and 5 have unrolled butterflies, other primes fall back to
// an O(p^2) butterfly. Plans are immutable after construction, so one plan may be shared by many threads, each
// passing its own scratch buffer.
#include <complex>
#include <span>
#include <vector>

namespace quasr::audio {

// Forward complex DFT: X[k] = sum_j x[j] exp(-2 pi i j k / n), unnormalised.
class ComplexFft {
 public:
  explicit ComplexFft(int n);  // n >= 1, else InvalidArgument
  int size() const { return n_; }
  // in and out must not overlap; both hold n values.
  void forward(std::span<const std::complex<double>> in, std::span<std::complex<double>> out) const;

 private:
  void work(std::complex<double>* out, const std::complex<double>* in, int stride, int level) const;
  int n_;
  std::vector<int> factors_;                  // radices, outermost first
  std::vector<std::complex<double>> twiddle_;  // exp(-2 pi i k / n), k < n
};

// Forward DFT of a real signal of even length n through one complex FFT of length n/2; returns bins 0..n/2.
class RealFft {
 public:
  explicit RealFft(int n);  // n >= 2 and even, else InvalidArgument
  int size() const { return n_; }
  int scratch_size() const { return n_; }  // complex values of scratch forward() needs
  // in: n values; out: n/2 + 1 values; scratch: scratch_size() values (per thread).
  void forward(std::span<const double> in, std::span<std::complex<double>> out,
               std::span<std::complex<double>> scratch) const;

 private:
  int n_;
  ComplexFft half_;
  std::vector<std::complex<double>> twiddle_;  // exp(-2 pi i k / n), k <= n/2
};

}  // namespace quasr::audio
