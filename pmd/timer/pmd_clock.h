// One clock for a PMD: monotonic 64-bit µs from a cycle counter. The PMD reads
// it once per iteration and hands the same `now_us` to every stage and to its
// TimerWheel. Header-only and DPDK-free: the cycle source is a parameter.
#pragma once
#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace vsw::timer {

// A cycle source: `cycles()` counts up at `hz()` per second.
template <typename S>
concept CycleSource = requires(const S& s) {
  { s.cycles() } -> std::convertible_to<uint64_t>;
  { s.hz() } -> std::convertible_to<uint64_t>;
};

// For tests and tools: std::chrono::steady_clock in ns.
struct SteadyCycles {
  uint64_t cycles() const {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
  }
  uint64_t hz() const { return 1'000'000'000; }
};

#if defined(__x86_64__) || defined(__i386__)
// The TSC, as rte_rdtsc() reads it; the PMD passes rte_get_tsc_hz() so this
// header needs no DPDK.
struct TscCycles {
  uint64_t tsc_hz;
  uint64_t cycles() const { return __rdtsc(); }
  uint64_t hz() const { return tsc_hz; }
};
#endif

template <CycleSource Source>
class PmdClock {
 public:
  explicit PmdClock(Source src = {}) : src_(src), us_per_cycle_q52_(q52_us_per_cycle(src_.hz())) {}

  uint64_t now_us() const { return to_us(src_.cycles()); }
  // For a cycle count the PMD already read (its now_tsc): no second read.
  uint64_t to_us(uint64_t cycles) const {
    return uint64_t((static_cast<unsigned __int128>(cycles) * us_per_cycle_q52_) >> kFracBits);
  }
  uint64_t hz() const { return src_.hz(); }

 private:
  // µs per cycle in 12.52 fixed point: a multiply and a shift instead of a
  // divide. Rounded up, so whole µs convert exactly; within 1 µs for 2^52
  // cycles (17 days at 3 GHz), no drift. Needs hz >= 1 MHz.
  static constexpr unsigned kFracBits = 52;
  static uint64_t q52_us_per_cycle(uint64_t hz) {
    const unsigned __int128 one_second_us = static_cast<unsigned __int128>(1'000'000) << kFracBits;
    return uint64_t((one_second_us + hz - 1) / hz);
  }
  Source src_;
  uint64_t us_per_cycle_q52_;
};

}  // namespace vsw::timer
