#include "bench/testbed/clock.h"

#include <rte_cycles.h>
#include <sys/prctl.h>
#include <time.h>

namespace tb {
namespace {
uint64_t g_hz = 1;
bool g_slack_set = false;
}  // namespace

void clock_init() { g_hz = rte_get_tsc_hz(); }
uint64_t now_tsc() { return rte_get_tsc_cycles(); }
uint64_t tsc_hz() { return g_hz; }
uint64_t us_to_tsc(double us) { return static_cast<uint64_t>(us * static_cast<double>(g_hz) / 1e6); }
double tsc_to_us(uint64_t cycles) { return static_cast<double>(cycles) * 1e6 / static_cast<double>(g_hz); }

void sleep_until(uint64_t deadline, double max_us) {
  if (!g_slack_set) {
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // 1 µs, in ns
    g_slack_set = true;
  }
  const uint64_t now = now_tsc();
  if (deadline <= now) return;
  double us = tsc_to_us(deadline - now);
  if (us > max_us) us = max_us;
  const auto ns = static_cast<int64_t>(us * 1000.0);
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  nanosleep(&ts, nullptr);  // EINTR is fine: the loop re-checks its stop flag
}

}  // namespace tb
