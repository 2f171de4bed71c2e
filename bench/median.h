// The median of per-batch samples, the figure the micro-benchmarks report: a
// loaded shared machine preempts some batches, which inflates means. Reorders
// v (nth_element); 0 for no samples.
#pragma once
#include <algorithm>
#include <vector>

namespace vsw::bench {

template <typename T>
double median_of(std::vector<T>& v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
  return double(v[v.size() / 2]);
}

}  // namespace vsw::bench
