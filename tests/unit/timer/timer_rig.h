// A TimerWheel that records what fired and at which expire() call.
#pragma once
#include <cstdint>
#include <vector>

#include "pmd/timer/timer_wheel.h"

namespace vsw::timer::test {

struct Fired {
  FlowRef flow;
  TimerKind kind;
  uint64_t at_us;  // the `now` of the expire() call that fired it
};

struct WheelRig {
  TimerWheel wheel;
  std::vector<Fired> fired;
  explicit WheelRig(uint32_t capacity = 1024, uint64_t start_us = 0) : wheel(capacity, start_us) {}

  uint32_t run(uint64_t now_us, uint32_t max_batch = UINT32_MAX) {
    auto record = [&](FlowRef f, TimerKind k) { fired.push_back({f, k, now_us}); };
    return wheel.expire(now_us, record, max_batch);
  }
  // Flow slot `id`, generation derived from it, so a test can check both.
  TimerHandle arm(uint32_t id, uint64_t expire_at_us, TimerKind kind = 0) {
    return wheel.arm(FlowRef{id, id ^ 0x5a5a5a5au}, kind, expire_at_us);
  }
};

inline constexpr uint64_t level_width_us(unsigned level) { return uint64_t(1) << (TimerWheel::kSlotBits * level); }

}  // namespace vsw::timer::test
