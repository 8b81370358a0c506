// Block-Hadamard rotations (quant/hadamard.h): the fast Walsh-Hadamard transform over each block of each row.
#include "quasr/quant/hadamard.h"

#include <cmath>
#include <string>

#include "quasr/core/error.h"
#include "quasr/core/parallel.h"

namespace quasr::quant {
namespace {

void check_block(int64_t k, int64_t block) {
  if (!valid_hadamard_block(k, block))
    throw InvalidArgument("Hadamard rotation: block " + std::to_string(block) +
                          " must be a power of two >= 2 that divides the input width " + std::to_string(k));
}

// In-place unnormalised Walsh-Hadamard transform of v[0..n) (n a power of two), Sylvester ordering: after the
// butterflies of width 1, 2, 4, ... v = H_n v with H_2n = [[H_n, H_n], [H_n, -H_n]].
template <typename T>
void fwht(T* v, int64_t n) {
  for (int64_t h = 1; h < n; h *= 2)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        const T a = v[j], b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
}

}  // namespace

bool valid_hadamard_block(int64_t k, int64_t block) {
  return block >= 2 && (block & (block - 1)) == 0 && k >= 1 && k % block == 0;
}

int64_t hadamard_block(int64_t k, int64_t max_block) {
  int64_t b = 1;
  while (k > 0 && k % (2 * b) == 0 && 2 * b <= max_block) b *= 2;
  return b;
}

void hadamard_rotate_rows(float* x, int64_t rows, int64_t ld, int64_t k, int64_t block) {
  check_block(k, block);
  const float norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(block)));
  parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = x + r * ld;
      for (int64_t b0 = 0; b0 < k; b0 += block) fwht(row + b0, block);
      for (int64_t j = 0; j < k; ++j) row[j] *= norm;
    }
  });
}

void hadamard_rotate_rows_unnormalized(int64_t* x, int64_t rows, int64_t k, int64_t block) {
  check_block(k, block);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b0 = 0; b0 < k; b0 += block) fwht(x + r * k + b0, block);
}

std::vector<double> hadamard_rotate_xtx(std::span<const double> xtx, int64_t k, int64_t block) {
  check_block(k, block);
  if (static_cast<int64_t>(xtx.size()) != k * k)
    throw InvalidArgument("Hadamard rotation: x^T x has " + std::to_string(xtx.size()) + " values, expected " +
                          std::to_string(k) + "^2");
  // H A H = (H (H A)^T)^T and A is symmetric, H too: transform the rows, transpose, transform the rows again.
  std::vector<double> a(xtx.begin(), xtx.end()), t(a.size());
  const double norm = 1.0 / static_cast<double>(block);  // 1/sqrt(B) twice
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t r = 0; r < k; ++r)
      for (int64_t b0 = 0; b0 < k; b0 += block) fwht(a.data() + r * k + b0, block);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) t[j * k + i] = a[i * k + j];
    a.swap(t);
  }
  for (double& v : a) v *= norm;
  return a;
}

}  // namespace quasr::quant
