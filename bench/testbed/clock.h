// TSC time for the test bed tools, and a sleep that does not burn a core.
//
// Every timestamp in vmsim/wiresim is a TSC value (cheap to read in the poll
// loop, µs resolution and better). Sleeping uses clock_nanosleep on relative
// durations converted from TSC cycles.
#pragma once
#include <cstdint>
#include <limits>

namespace tb {

inline constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

// Must be called once after rte_eal_init (reads the TSC frequency).
void clock_init();
uint64_t now_tsc();
uint64_t tsc_hz();
uint64_t us_to_tsc(double us);
double tsc_to_us(uint64_t cycles);

// Sleeps until `deadline` (TSC) or for at most `max_us`, whichever is
// earlier; returns early on a signal. Sets the thread's timer slack to 1 µs on
// first use: the default 50 µs slack would add up to 50 µs to every sleep,
// which shows up directly in wiresim's delay accuracy.
void sleep_until(uint64_t deadline, double max_us);

}  // namespace tb
