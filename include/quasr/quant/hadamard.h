#pragma once
// Block-Hadamard rotations of Linear inputs (recipe key rotate=hadamard, docs/ptq.md; QuaRot, Ashkboos et al.
// 2024; QuIP#, Tseng et al. 2024). For a Linear y = x W^T and an orthogonal H, y = (x H)(W H)^T: quantizing W H
// and x H instead of W and x computes the same function before rounding, while H spreads a channel's outlier over
// the whole block, so that per-group scales and per-token activation scales see flatter values.
//
// H here is block-diagonal: K / B copies of the B x B Sylvester Hadamard matrix divided by sqrt(B), B a power of
// two dividing K. It is symmetric and orthogonal (H H = I), so x H is computed in place by the fast Walsh-Hadamard
// transform of each row's blocks, O(K log B) per row, and the weight is rotated the same way, row by row.
#include <cstdint>
#include <span>
#include <vector>

namespace quasr::quant {

// The block used for an input of width k: the largest power of two dividing k, at most max_block. 1 means no
// rotation is possible (odd k).
int64_t hadamard_block(int64_t k, int64_t max_block = 4096);

// Whether `block` is a usable Hadamard block for inputs of width k: a power of two >= 2 that divides k.
bool valid_hadamard_block(int64_t k, int64_t block);

// x[r][0..k) <- x[r][0..k) H for r < rows (rows ld floats apart), H with blocks of `block` (a power of two >= 2
// dividing k). Throws InvalidArgument otherwise.
void hadamard_rotate_rows(float* x, int64_t rows, int64_t ld, int64_t k, int64_t block);

// The same transform without the 1 / sqrt(B) normalisation, in exact integer arithmetic: rows of +-1 sums. Used by
// the tests to show H is exactly orthogonal (unnormalised H H^T = B I).
void hadamard_rotate_rows_unnormalized(int64_t* x, int64_t rows, int64_t k, int64_t block);

// The second moments of the rotated input: (x H)^T (x H) = H (x^T x) H for xtx [k][k] (row-major, symmetric), in
// double precision.
std::vector<double> hadamard_rotate_xtx(std::span<const double> xtx, int64_t k, int64_t block);

}  // namespace quasr::quant
