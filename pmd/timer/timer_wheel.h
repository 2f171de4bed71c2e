// A per-PMD hierarchical timer wheel keyed by (flow slot, generation): the
// timers of TCP stages (retransmission, delayed release, aging). Single
// thread, fixed capacity (no allocation after construction), O(1) arm,
// cancel and rearm, µs ticks. Design and precision bound: README.md.
#pragma once
#include <cstdint>
#include <memory>

namespace vsw::timer {

// The connection a timer belongs to: its flow-table slot and the slot's
// generation when the timer was armed (as TcpFlowTable::alive(slot, gen)).
struct FlowRef {
  uint32_t slot;
  uint32_t gen;
};

// Which of a flow's timers it is (RTO, delayed release, ...): the stage's own small enum.
using TimerKind = uint8_t;

// Names one arming of a timer. It goes stale when the timer fires or is
// cancelled; cancel/rearm of a stale handle return false and touch nothing.
struct TimerHandle {
  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t index = kNone;
  uint32_t gen = 0;
  bool valid() const { return index != kNone; }
};

struct ExpiredTimer {
  FlowRef flow;
  TimerKind kind;
};

struct TimerWheelStats {
  uint64_t armed = 0, rearmed = 0, cancelled = 0, fired = 0;
  uint64_t cascaded = 0;      // timers moved down to a finer level (or re-filed from the overflow list)
  uint64_t arm_full = 0;      // arm() found every entry in use and returned an invalid handle
  uint64_t stale_handle = 0;  // cancel/rearm of a timer that had fired or was cancelled (harmless)
  uint64_t stale_flow = 0;    // expire_live(): the flow's slot was recycled, callback skipped
};

class TimerWheel {
 public:
  static constexpr unsigned kSlotBits = 6;  // 64 slots a level: a level's occupancy is one word
  static constexpr unsigned kSlots = 1u << kSlotBits;
  static constexpr unsigned kLevels = 6;  // tick 1 µs; level L slots are 64^L µs wide
  static constexpr unsigned kRangeBits = kSlotBits * kLevels;  // 2^36 µs (~19 h); beyond: overflow list
  static constexpr uint32_t kExpireChunk = 32;                 // timers popped per callback round

  // capacity: timers pending at once (< 2^32 - 1), allocated here.
  // start_us: the PMD clock's current time.
  explicit TimerWheel(uint32_t capacity, uint64_t start_us = 0);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Invalid handle (and stats().arm_full + 1) when all `capacity` entries are in use.
  // A time the wheel already processed (<= the last expire()'s now) fires
  // one tick later, at the next expire() with a later now.
  TimerHandle arm(FlowRef flow, TimerKind kind, uint64_t expire_at_us);
  bool cancel(TimerHandle h);                          // false: stale handle
  bool rearm(TimerHandle h, uint64_t expire_at_us);    // false: stale handle (arm anew)
  bool armed(TimerHandle h) const { return live(h); }
  // A stage handling a batch of flows prefetches their timers before rearming them.
  void prefetch(TimerHandle h) const {
    if (h.index < capacity_) __builtin_prefetch(&entries_[h.index]);
  }

  // Calls on_expired(FlowRef, TimerKind) for due timers, earliest first;
  // never before expire_at_us. max_batch bounds the work of one call (timers
  // fired + timers moved down a level); what is left runs on the next call.
  // on_expired may arm, rearm and cancel. Returns the number fired.
  template <typename Fn>
  uint32_t expire(uint64_t now_us, Fn&& on_expired, uint32_t max_batch);

  // expire(), skipping timers whose flow slot was recycled since they were
  // armed (flows.alive(slot, gen) false; counted in stats().stale_flow).
  template <typename FlowTable, typename Fn>
  uint32_t expire_live(uint64_t now_us, const FlowTable& flows, Fn&& on_expired, uint32_t max_batch);

  // The batch form expire() is built on: up to `cap` due timers into out[],
  // one unit of `work` per timer fired or moved. For callers that prefetch
  // the flows of a whole batch before handling it.
  uint32_t pop_expired(uint64_t now_us, ExpiredTimer* out, uint32_t cap, uint32_t& work);

  // No timer fires before this time (UINT64_MAX: none pending): the PMD may sleep until it.
  uint64_t next_work_us() const;
  uint32_t pending() const { return pending_; }
  uint32_t capacity() const { return capacity_; }
  const TimerWheelStats& stats() const { return stats_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint16_t kLevelLists = kLevels * kSlots;
  static constexpr uint16_t kOverflowA = kLevelLists, kOverflowB = kLevelLists + 1;
  static constexpr uint16_t kNoList = UINT16_MAX;  // the entry is free

  // One timer; a pool entry linked into one slot's list by index (as VPP's tw_timer pool).
  struct Entry {
    uint64_t expire_us;
    uint32_t next, prev;
    FlowRef flow;
    uint32_t gen;   // bumped when the timer fires or is cancelled: stale handles no longer match
    uint16_t list;  // level * kSlots + slot, an overflow list, or kNoList
    TimerKind kind;
  };
  static_assert(sizeof(Entry) == 32, "two timers per cache line");

  bool live(TimerHandle h) const {
    return h.index < capacity_ && entries_[h.index].gen == h.gen && entries_[h.index].list != kNoList;
  }
  uint16_t list_for(uint64_t expire_us) const;
  uint16_t list_to_sweep();
  uint64_t next_event() const;
  bool sweep_boundary(uint32_t& work);
  bool fire_current(ExpiredTimer* out, uint32_t cap, uint32_t& n, uint32_t& work);
  void prefetch_next(uint32_t i) const;  // a slot's list is walked from its head
  void link(uint32_t i, uint16_t list);
  void unlink(uint32_t i);
  void release(uint32_t i);

  std::unique_ptr<Entry[]> entries_;
  uint32_t capacity_;
  uint32_t pending_ = 0;
  uint32_t free_head_;
  uint64_t next_us_;               // the earliest µs not yet processed by expire()
  uint64_t overflow_epoch_;        // next_us_ >> kRangeBits when the overflow lists last swapped
  uint16_t overflow_list_ = kOverflowA;  // receives timers beyond the top level
  uint64_t occupied_[kLevels] = {};      // per level: bit s = slot s holds timers
  uint32_t heads_[kLevelLists + 2];
  TimerWheelStats stats_;
};

template <typename Fn>
uint32_t TimerWheel::expire(uint64_t now_us, Fn&& on_expired, uint32_t max_batch) {
  ExpiredTimer chunk[kExpireChunk];
  uint32_t work = max_batch, fired = 0;
  while (work > 0 && next_us_ <= now_us) {
    const uint32_t n = pop_expired(now_us, chunk, kExpireChunk, work);
    for (uint32_t i = 0; i < n; ++i) on_expired(chunk[i].flow, chunk[i].kind);
    fired += n;
  }
  return fired;
}

template <typename FlowTable, typename Fn>
uint32_t TimerWheel::expire_live(uint64_t now_us, const FlowTable& flows, Fn&& on_expired, uint32_t max_batch) {
  auto if_live = [&](FlowRef f, TimerKind k) {
    if (flows.alive(f.slot, f.gen))
      on_expired(f, k);
    else
      ++stats_.stale_flow;
  };
  return expire(now_us, if_live, max_batch);
}

}  // namespace vsw::timer
