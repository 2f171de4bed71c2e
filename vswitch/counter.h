// Single-writer statistics counters: the owning thread adds with a plain
// load/store (no locked instruction), readers on other threads see a value
// that is at most one update old.
#pragma once
#include <atomic>
#include <cstdint>

namespace vsw {

struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
  void reset() { v.store(0, std::memory_order_relaxed); }
};

}  // namespace vsw
