// TimerWheel: precision at every level, cancel, rearm, cascade, far future,
// re-entrant callbacks. Batches, capacity, handles, generations:
// timer_limits_test.cc; against a reference model: timer_model_test.cc.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/unit/timer/timer_rig.h"

namespace vsw::timer::test {
namespace {

constexpr uint64_t kStart = 123'456'789;  // not aligned to any level

// Delays that land in each level (and beyond the top: the overflow list),
// including the first and last µs of the level's range.
std::vector<uint64_t> delays_for_level(unsigned level) {
  const uint64_t lo = level == 0 ? 1 : level_width_us(level);
  const uint64_t hi = level_width_us(level + 1) - 1;
  return {lo, lo + 1, 3 * lo + 17, hi / 2 + 5, hi};
}

TEST(TimerWheel, FiresExactlyAtExpiryAtEveryLevel) {
  for (unsigned level = 0; level <= TimerWheel::kLevels; ++level) {
    for (uint64_t delay : delays_for_level(level)) {
      WheelRig r(4, kStart);
      const uint64_t due = kStart + delay;
      r.arm(1, due);
      EXPECT_EQ(r.run(due - 1), 0u) << "early: level " << level << " delay " << delay;
      EXPECT_EQ(r.run(due), 1u) << "late: level " << level << " delay " << delay;
      EXPECT_EQ(r.wheel.pending(), 0u);
    }
  }
}

// Polled every `step` µs, a timer fires at the first poll at or after its
// expiry: late by less than one poll interval, never early.
TEST(TimerWheel, LatenessBoundedByPollIntervalAtEveryLevel) {
  for (unsigned level = 0; level <= 4; ++level) {
    for (uint64_t delay : delays_for_level(level)) {
      const uint64_t step = std::max<uint64_t>(1, delay / 41) + 3;
      WheelRig r(4, kStart);
      const uint64_t due = kStart + delay;
      r.arm(7, due);
      uint64_t now = kStart;
      while (r.fired.empty()) r.run(now += step);
      EXPECT_GE(r.fired[0].at_us, due) << "level " << level;
      EXPECT_LT(r.fired[0].at_us - due, step) << "level " << level;
    }
  }
}

TEST(TimerWheel, ExpiryAtSlotBoundariesOfEveryLevel) {
  for (unsigned level = 1; level < TimerWheel::kLevels; ++level) {
    const uint64_t width = level_width_us(level);
    const uint64_t boundary = (kStart / width + 2) * width;  // a slot start of this level
    WheelRig r(4, kStart);
    for (uint32_t id = 0; id < 3; ++id) r.arm(id, boundary - 1 + id);
    for (uint64_t now : {boundary - 2, boundary - 1, boundary, boundary + 1}) r.run(now);
    ASSERT_EQ(r.fired.size(), 3u) << "level " << level;
    for (const Fired& f : r.fired) EXPECT_EQ(f.at_us, boundary - 1 + f.flow.slot) << "level " << level;
  }
}

TEST(TimerWheel, CancelledTimerNeverFires) {
  WheelRig r(8, kStart);
  const TimerHandle keep = r.arm(1, kStart + 5000);
  const TimerHandle drop = r.arm(2, kStart + 5000);
  EXPECT_TRUE(r.wheel.cancel(drop));
  EXPECT_EQ(r.wheel.pending(), 1u);
  EXPECT_FALSE(r.wheel.armed(drop));
  EXPECT_TRUE(r.wheel.armed(keep));
  r.run(kStart + 10'000'000);
  ASSERT_EQ(r.fired.size(), 1u);
  EXPECT_EQ(r.fired[0].flow.slot, 1u);
  EXPECT_EQ(r.wheel.stats().cancelled, 1u);
}

TEST(TimerWheel, RearmEarlierAndLater) {
  WheelRig r(8, kStart);
  const TimerHandle earlier = r.arm(1, kStart + 1'000'000);
  const TimerHandle later = r.arm(2, kStart + 100);
  EXPECT_TRUE(r.wheel.rearm(earlier, kStart + 50));
  EXPECT_TRUE(r.wheel.rearm(later, kStart + 2'000'000));
  r.run(kStart + 49);
  EXPECT_TRUE(r.fired.empty());
  r.run(kStart + 50);
  ASSERT_EQ(r.fired.size(), 1u);
  EXPECT_EQ(r.fired[0].flow.slot, 1u);
  r.run(kStart + 1'999'999);
  EXPECT_EQ(r.fired.size(), 1u);  // not at its first expiry (100) either
  r.run(kStart + 2'000'000);
  ASSERT_EQ(r.fired.size(), 2u);
  EXPECT_EQ(r.wheel.stats().rearmed, 2u);
}

// An RTO pushed back by 1 µs on each ACK stays in its slot (no move) and
// still fires at the last time it was given.
TEST(TimerWheel, RearmWithinOneSlotFiresAtTheNewTime) {
  WheelRig r(8, kStart);
  uint64_t due = kStart + 300'000;
  const TimerHandle h = r.arm(1, due);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(r.wheel.rearm(h, ++due));
  r.run(due - 1);
  EXPECT_TRUE(r.fired.empty());
  r.run(due);
  EXPECT_EQ(r.fired.size(), 1u);
}

TEST(TimerWheel, ManyTimersInOneSlot) {
  WheelRig r(5000, kStart);
  for (uint32_t i = 0; i < 5000; ++i) r.arm(i, kStart + 700, TimerKind(i % 3));
  EXPECT_EQ(r.run(kStart + 699), 0u);
  EXPECT_EQ(r.run(kStart + 700), 5000u);
  std::vector<bool> seen(5000);
  for (const Fired& f : r.fired) {
    EXPECT_FALSE(seen[f.flow.slot]);
    seen[f.flow.slot] = true;
    EXPECT_EQ(f.kind, f.flow.slot % 3);
    EXPECT_EQ(f.flow.gen, f.flow.slot ^ 0x5a5a5a5au);
  }
  EXPECT_EQ(r.wheel.pending(), 0u);
}

// Timers sharing one level-3 slot spread over lower levels as it is swept and
// each still fires at its own µs.
TEST(TimerWheel, CascadeAcrossLevelsKeepsEachExpiry) {
  const uint64_t slot_start = (kStart / level_width_us(3) + 1) * level_width_us(3);
  WheelRig r(2000, kStart);
  std::vector<uint64_t> due;
  for (uint32_t i = 0; i < 2000; ++i) {
    due.push_back(slot_start + (uint64_t(i) * 131'071) % level_width_us(3));
    r.arm(i, due.back());
  }
  std::vector<uint64_t> polls = due;
  std::sort(polls.begin(), polls.end());
  for (uint64_t now : polls) {
    r.run(now - 1);
    r.run(now);
  }
  ASSERT_EQ(r.fired.size(), 2000u);
  for (const Fired& f : r.fired) EXPECT_EQ(f.at_us, due[f.flow.slot]);
  EXPECT_GT(r.wheel.stats().cascaded, 2000u);
}

TEST(TimerWheel, FarFutureBeyondTheTopLevel) {
  const uint64_t epoch = uint64_t(1) << TimerWheel::kRangeBits;
  WheelRig r(8, 5);
  const uint64_t far[] = {(uint64_t(1) << 40) + 12'345, epoch, 3 * epoch - 1, epoch + 1};
  for (uint32_t i = 0; i < 4; ++i) r.arm(i, far[i]);
  std::vector<uint64_t> sorted(std::begin(far), std::end(far));
  std::sort(sorted.begin(), sorted.end());
  uint64_t now = 5;
  for (uint64_t due : sorted) {
    while (now + epoch / 3 < due) r.run(now += epoch / 3);  // polls across epochs
    r.run(due - 1);
    r.run(now = due);
  }
  ASSERT_EQ(r.fired.size(), 4u);
  for (const Fired& f : r.fired) EXPECT_EQ(f.at_us, far[f.flow.slot]);
}

// Close in time but across an epoch boundary: filed in the overflow list,
// still exact.
TEST(TimerWheel, NearTimerAcrossTheEpochBoundary) {
  const uint64_t epoch = uint64_t(1) << TimerWheel::kRangeBits;
  WheelRig r(4, epoch - 10);
  r.arm(1, epoch + 5);
  r.run(epoch + 4);
  EXPECT_TRUE(r.fired.empty());
  r.run(epoch + 5);
  EXPECT_EQ(r.fired.size(), 1u);
}

TEST(TimerWheel, FarTimerRearmedNearAndBack) {
  WheelRig r(4, kStart);
  const TimerHandle h = r.arm(1, uint64_t(1) << 45);
  ASSERT_TRUE(r.wheel.rearm(h, kStart + 10));
  ASSERT_TRUE(r.wheel.rearm(h, (uint64_t(1) << 44) + 3));
  r.run(uint64_t(1) << 44);
  EXPECT_TRUE(r.fired.empty());
  r.run((uint64_t(1) << 44) + 3);
  EXPECT_EQ(r.fired.size(), 1u);
}

// The wheel has processed up to the last expire()'s now: a timer armed for a
// time up to then fires one tick (1 µs) after it.
TEST(TimerWheel, PastExpiryFiresOneTickAfterTheLastExpire) {
  WheelRig r(4, kStart);
  r.run(kStart + 1000);
  r.arm(1, kStart + 10);
  r.arm(2, 0);
  r.arm(3, kStart + 1000);
  EXPECT_EQ(r.run(kStart + 1000), 0u);
  EXPECT_EQ(r.run(kStart + 1001), 3u);
}

// A stage re-arms from the callback (RTO backoff) and cancels another timer.
TEST(TimerWheel, CallbackMayArmAndCancel) {
  WheelRig r(8, kStart);
  TimerHandle other = r.arm(2, kStart + 500);
  r.arm(1, kStart + 100);
  std::vector<uint64_t> rto_fired;
  uint64_t backoff = 100;
  auto on_rto = [&](FlowRef f, TimerKind) {
    rto_fired.push_back(f.slot);
    r.wheel.cancel(other);
    backoff *= 2;
    r.wheel.arm(f, 0, kStart + backoff);
  };
  for (uint64_t now = kStart; now <= kStart + 1000; now += 10) r.wheel.expire(now, on_rto, 64);
  EXPECT_EQ(rto_fired, (std::vector<uint64_t>{1, 1, 1, 1}));  // at 100, 200, 400, 800
  EXPECT_EQ(r.wheel.pending(), 1u);                            // the one due at 1600
}

TEST(TimerWheel, NextWorkIsALowerBound) {
  WheelRig r(8, kStart);
  EXPECT_EQ(r.wheel.next_work_us(), UINT64_MAX);
  r.arm(1, kStart + 250'000);
  r.run(kStart + 3);
  for (int i = 0; i < 20; ++i) {
    const uint64_t next = r.wheel.next_work_us();
    ASSERT_LE(next, kStart + 250'000);
    if (next > kStart + 3) r.run(next - 1);
    EXPECT_TRUE(r.fired.empty());
    r.run(next);
    if (!r.fired.empty()) break;
  }
  ASSERT_EQ(r.fired.size(), 1u);
  EXPECT_EQ(r.fired[0].at_us, kStart + 250'000);
}

}  // namespace
}  // namespace vsw::timer::test
