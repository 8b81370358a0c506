#include "quasr/report/pareto.h"

#include <algorithm>
#include <cmath>

namespace quasr::report {

std::vector<size_t> pareto_frontier(const std::vector<double>& cost, const std::vector<double>& error) {
  std::vector<size_t> known;
  for (size_t i = 0; i < cost.size() && i < error.size(); ++i)
    if (std::isfinite(cost[i]) && cost[i] > 0 && std::isfinite(error[i])) known.push_back(i);
  // O(n^2) on purpose: sweeps have tens to hundreds of points and this states the definition directly.
  std::vector<size_t> frontier;
  for (size_t i : known) {
    bool dominated = false;
    for (size_t j : known) {
      if (cost[j] <= cost[i] && error[j] <= error[i] && (cost[j] < cost[i] || error[j] < error[i])) {
        dominated = true;
        break;
      }
    }
    if (!dominated) frontier.push_back(i);
  }
  std::stable_sort(frontier.begin(), frontier.end(), [&](size_t a, size_t b) {
    return cost[a] != cost[b] ? cost[a] < cost[b] : error[a] < error[b];
  });
  return frontier;
}

}  // namespace quasr::report
