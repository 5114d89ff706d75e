// agentbus-bench/stats.hpp — medians and percentiles (nearest-rank, on a sorted copy).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace bench {

// Nearest-rank percentile of an already sorted vector; q in [0, 1].
template <class T>
[[nodiscard]] double percentile_sorted(const std::vector<T>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const auto rank = static_cast<std::size_t>(std::ceil(q * double(sorted.size())));
  return double(sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)]);
}

template <class T>
[[nodiscard]] double median(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, 0.5);
}

}  // namespace bench
