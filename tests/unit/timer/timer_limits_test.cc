// TimerWheel limits: the batch bound, capacity exhaustion, stale handles and
// the generation check of recycled flow slots.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/unit/timer/timer_rig.h"

namespace vsw::timer::test {
namespace {

constexpr uint64_t kStart = 1'000'000;

TEST(TimerLimits, BatchBoundLeavesTheRestForTheNextCall) {
  WheelRig r(128, kStart);
  for (uint32_t i = 0; i < 100; ++i) r.arm(i, kStart + 40);
  EXPECT_EQ(r.run(kStart + 40, 32), 32u);
  EXPECT_EQ(r.wheel.pending(), 68u);
  EXPECT_EQ(r.run(kStart + 40, 32), 32u);
  EXPECT_EQ(r.run(kStart + 41, 32), 32u);
  EXPECT_EQ(r.run(kStart + 41, 32), 4u);
  EXPECT_EQ(r.run(kStart + 41, 32), 0u);
  std::set<uint32_t> ids;
  for (const Fired& f : r.fired) ids.insert(f.flow.slot);
  EXPECT_EQ(ids.size(), 100u);
}

// Moving timers down a level counts against the bound too, so one call never
// sweeps a huge slot at once; nothing fires early and every timer fires once.
TEST(TimerLimits, BatchBoundCoversCascades) {
  const uint64_t slot_start = (kStart / level_width_us(2) + 1) * level_width_us(2);
  WheelRig r(600, kStart);
  for (uint32_t i = 0; i < 600; ++i) r.arm(i, slot_start + (i * 37) % level_width_us(2));
  const uint64_t now = slot_start + level_width_us(2);
  uint32_t calls = 0;
  while (r.wheel.pending() > 0 && calls < 1000) {
    const uint64_t work_before = r.wheel.stats().fired + r.wheel.stats().cascaded;
    r.run(now, 16);
    ASSERT_LE(r.wheel.stats().fired + r.wheel.stats().cascaded - work_before, 16u);
    ++calls;
  }
  ASSERT_EQ(r.fired.size(), 600u);
  EXPECT_GE(r.wheel.stats().cascaded, 600u);  // every timer left the level-2 slot
  std::set<uint32_t> ids;
  uint64_t last_due = 0;
  for (const Fired& f : r.fired) {
    const uint64_t due = slot_start + (f.flow.slot * 37) % level_width_us(2);
    EXPECT_GE(due, last_due) << "earliest first";
    last_due = due;
    ids.insert(f.flow.slot);
  }
  EXPECT_EQ(ids.size(), 600u);
}

TEST(TimerLimits, CapacityExhaustionIsReportedNotFatal) {
  WheelRig r(4, kStart);
  TimerHandle h[4];
  for (uint32_t i = 0; i < 4; ++i) h[i] = r.arm(i, kStart + 100 + i);
  const TimerHandle refused = r.arm(9, kStart + 100);
  EXPECT_FALSE(refused.valid());
  EXPECT_FALSE(r.wheel.armed(refused));
  EXPECT_FALSE(r.wheel.cancel(refused));
  EXPECT_EQ(r.wheel.stats().arm_full, 1u);
  EXPECT_EQ(r.wheel.pending(), 4u);
  ASSERT_TRUE(r.wheel.cancel(h[2]));
  EXPECT_TRUE(r.arm(9, kStart + 50).valid());
  r.run(kStart + 1000);
  EXPECT_EQ(r.fired.size(), 4u);
}

TEST(TimerLimits, ZeroCapacityRefusesEveryArm) {
  WheelRig r(0, kStart);
  EXPECT_FALSE(r.arm(1, kStart + 1).valid());
  EXPECT_EQ(r.run(kStart + 10), 0u);
  EXPECT_EQ(r.wheel.stats().arm_full, 1u);
}

// A handle names one arming: after the timer fired or was cancelled, the same
// pool entry serves a new timer and the old handle must not reach it.
TEST(TimerLimits, StaleHandlesAreHarmless) {
  WheelRig r(1, kStart);
  const TimerHandle fired = r.arm(1, kStart + 10);
  r.run(kStart + 10);
  EXPECT_FALSE(r.wheel.cancel(fired));
  const TimerHandle second = r.arm(2, kStart + 20);
  EXPECT_EQ(second.index, fired.index);  // the entry was reused
  EXPECT_FALSE(r.wheel.cancel(fired));
  EXPECT_FALSE(r.wheel.rearm(fired, kStart + 500));
  EXPECT_TRUE(r.wheel.armed(second));
  EXPECT_TRUE(r.wheel.cancel(second));
  EXPECT_FALSE(r.wheel.cancel(second));
  EXPECT_FALSE(r.wheel.cancel(TimerHandle{}));
  EXPECT_FALSE(r.wheel.cancel(TimerHandle{7, 0}));  // out of range
  EXPECT_EQ(r.wheel.stats().stale_handle, 6u);
  const TimerHandle third = r.arm(3, kStart + 30);
  r.run(kStart + 30);
  ASSERT_EQ(r.fired.size(), 2u);
  EXPECT_EQ(r.fired[1].flow.slot, 3u);
  EXPECT_FALSE(r.wheel.armed(third));
}

// Stand-in for TcpFlowTable: a slot's generation is bumped when it is freed.
struct FakeFlowTable {
  std::vector<uint32_t> gen = std::vector<uint32_t>(16, 1);
  std::vector<bool> used = std::vector<bool>(16, false);
  FlowRef open(uint32_t slot) {
    used[slot] = true;
    return FlowRef{slot, gen[slot]};
  }
  void close(uint32_t slot) {
    used[slot] = false;
    ++gen[slot];
  }
  bool alive(uint32_t slot, uint32_t g) const { return slot < gen.size() && used[slot] && gen[slot] == g; }
};

TEST(TimerLimits, TimerOfARecycledSlotIsIgnored) {
  FakeFlowTable flows;
  TimerWheel wheel(8, kStart);
  const FlowRef old_conn = flows.open(3);
  wheel.arm(old_conn, 1, kStart + 100);
  flows.close(3);  // the stage forgot to cancel: the generation check covers it
  const FlowRef new_conn = flows.open(3);
  wheel.arm(new_conn, 1, kStart + 100);
  const FlowRef closed = flows.open(5);
  wheel.arm(closed, 2, kStart + 100);
  flows.close(5);
  std::vector<FlowRef> called;
  auto on_expired = [&](FlowRef f, TimerKind) { called.push_back(f); };
  EXPECT_EQ(wheel.expire_live(kStart + 100, flows, on_expired, 64), 3u);
  ASSERT_EQ(called.size(), 1u);
  EXPECT_EQ(called[0].slot, 3u);
  EXPECT_EQ(called[0].gen, new_conn.gen);
  EXPECT_EQ(wheel.stats().stale_flow, 2u);
}

// The batch form: pop, then handle the flows together (a stage prefetches them first).
TEST(TimerLimits, PopExpiredFillsAtMostCap) {
  WheelRig r(64, kStart);
  for (uint32_t i = 0; i < 50; ++i) r.arm(i, kStart + 5);
  ExpiredTimer out[20];
  uint32_t work = 1000;
  EXPECT_EQ(r.wheel.pop_expired(kStart + 5, out, 20, work), 20u);
  EXPECT_EQ(work, 980u);
  EXPECT_EQ(r.wheel.pop_expired(kStart + 5, out, 20, work), 20u);
  EXPECT_EQ(r.wheel.pop_expired(kStart + 5, out, 20, work), 10u);
  EXPECT_EQ(r.wheel.pending(), 0u);
}

}  // namespace
}  // namespace vsw::timer::test
