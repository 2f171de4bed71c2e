// PmdClock: cycles -> µs conversion without drift, and monotonic sources.
#include "pmd/timer/pmd_clock.h"

#include <gtest/gtest.h>

#include <thread>

namespace vsw::timer {
namespace {

// A cycle counter the test sets by hand.
struct ManualCycles {
  const uint64_t* counter;
  uint64_t freq;
  uint64_t cycles() const { return *counter; }
  uint64_t hz() const { return freq; }
};

uint64_t exact_us(uint64_t cycles, uint64_t hz) {
  return uint64_t(static_cast<unsigned __int128>(cycles) * 1'000'000 / hz);
}

TEST(PmdClock, WholeMicrosecondsConvertExactly) {
  for (uint64_t hz : {uint64_t(1'000'000), uint64_t(1'000'000'000), uint64_t(2'500'000'000), uint64_t(3'000'000'000)}) {
    uint64_t counter = 0;
    PmdClock<ManualCycles> clock(ManualCycles{&counter, hz});
    for (uint64_t us : {uint64_t(0), uint64_t(1), uint64_t(999), uint64_t(1'000'000), uint64_t(3'600'000'000),
                        uint64_t(7) * 86'400'000'000}) {
      counter = us * (hz / 1'000'000);
      EXPECT_EQ(clock.now_us(), us) << "hz " << hz;
    }
  }
}

TEST(PmdClock, OddFrequencyWithinOneMicrosecondAfterDays) {
  const uint64_t hz = 2'994'374'917;  // a measured TSC rate, not a round number
  uint64_t counter = 0;
  PmdClock<ManualCycles> clock(ManualCycles{&counter, hz});
  for (uint64_t cycles = 12'345; cycles < (uint64_t(1) << 52); cycles = cycles * 3 + 7) {
    counter = cycles;
    const uint64_t got = clock.now_us(), want = exact_us(cycles, hz);
    EXPECT_LE(got - want, 1u) << cycles;
    EXPECT_GE(got, want) << cycles;
  }
  EXPECT_EQ(clock.to_us(hz * 10), 10'000'000u);
}

TEST(PmdClock, SteadySourceIsMonotonicAndAdvances) {
  PmdClock<SteadyCycles> clock;
  uint64_t last = clock.now_us();
  const uint64_t start = last;
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t t = clock.now_us();
    ASSERT_GE(t, last);
    last = t;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  EXPECT_GE(clock.now_us() - start, 3000u);
}

#if defined(__x86_64__) || defined(__i386__)
TEST(PmdClock, TscSourceIsMonotonic) {
  PmdClock<TscCycles> clock(TscCycles{2'000'000'000});
  uint64_t last = clock.now_us();
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t t = clock.now_us();
    ASSERT_GE(t, last);
    last = t;
  }
}
#endif

}  // namespace
}  // namespace vsw::timer
