#pragma once
// Pareto frontiers for the sweep report: schemes not beaten on both a cost (size, real-time factor) and WER.
#include <cstddef>
#include <vector>

namespace quasr::report {

// Indices of the points on the lower-left frontier of (cost, error), both to be minimized, sorted by cost
// ascending. A point is on it unless another point has cost <= and error <= with at least one strictly less;
// exact duplicates are both kept. Points whose cost is not a finite positive number (unknown) are left out.
std::vector<size_t> pareto_frontier(const std::vector<double>& cost, const std::vector<double>& error);

}  // namespace quasr::report
