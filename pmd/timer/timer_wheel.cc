// The wheel is an odometer of 6 digits of 6 bits over the µs clock: a timer
// is filed at the highest digit where its expiry differs from next_us_, in
// the slot named by that digit. When next_us_ reaches a slot's start, its
// timers move to finer levels by their exact expiry, so every level fires on
// time. README.md has the reasoning.
#include "pmd/timer/timer_wheel.h"

#include <algorithm>
#include <bit>

namespace vsw::timer {

namespace {

constexpr unsigned digit(uint64_t us, unsigned level) {
  return unsigned(us >> (level * TimerWheel::kSlotBits)) & (TimerWheel::kSlots - 1);
}

// Bits of slots after `slot` in a level's occupancy word.
constexpr uint64_t slots_after(unsigned slot) {
  return slot + 1 == TimerWheel::kSlots ? 0 : ~uint64_t(0) << (slot + 1);
}

}  // namespace

TimerWheel::TimerWheel(uint32_t capacity, uint64_t start_us)
    : entries_(new Entry[capacity]),
      capacity_(capacity),
      free_head_(capacity ? 0 : kNil),
      next_us_(start_us),
      overflow_epoch_(start_us >> kRangeBits) {
  for (uint32_t i = 0; i < capacity; ++i)
    entries_[i] = Entry{0, i + 1 < capacity ? i + 1 : kNil, kNil, FlowRef{0, 0}, 0, kNoList, 0};
  std::fill(std::begin(heads_), std::end(heads_), kNil);
}

TimerHandle TimerWheel::arm(FlowRef flow, TimerKind kind, uint64_t expire_at_us) {
  if (free_head_ == kNil) {
    ++stats_.arm_full;
    return TimerHandle{};
  }
  const uint32_t i = free_head_;
  Entry& e = entries_[i];
  free_head_ = e.next;
  e.expire_us = expire_at_us;
  e.flow = flow;
  e.kind = kind;
  link(i, list_for(expire_at_us));
  ++pending_;
  ++stats_.armed;
  return TimerHandle{i, e.gen};
}

bool TimerWheel::cancel(TimerHandle h) {
  if (!live(h)) {
    ++stats_.stale_handle;
    return false;
  }
  unlink(h.index);
  release(h.index);
  ++stats_.cancelled;
  return true;
}

bool TimerWheel::rearm(TimerHandle h, uint64_t expire_at_us) {
  if (!live(h)) {
    ++stats_.stale_handle;
    return false;
  }
  Entry& e = entries_[h.index];
  const uint16_t list = list_for(expire_at_us);
  e.expire_us = expire_at_us;
  // Same slot (an RTO pushed back by a few µs on each ACK): the slot's sweep
  // files it by the new expiry, nothing to move.
  if (list != e.list) {
    unlink(h.index);
    link(h.index, list);
  }
  ++stats_.rearmed;
  return true;
}

// The highest digit where the expiry differs from next_us_ picks the level;
// the expiry's digit there picks the slot, always after the current one.
uint16_t TimerWheel::list_for(uint64_t expire_us) const {
  const uint64_t due = std::max(expire_us, next_us_);  // already past: the current tick
  const uint64_t differ = due ^ next_us_;
  if (differ >> kRangeBits) return overflow_list_;
  const unsigned level = differ ? unsigned(std::bit_width(differ) - 1) / kSlotBits : 0;
  return uint16_t(level * kSlots + digit(due, level));
}

uint32_t TimerWheel::pop_expired(uint64_t now_us, ExpiredTimer* out, uint32_t cap, uint32_t& work) {
  uint32_t n = 0;
  while (next_us_ <= now_us) {
    if (!sweep_boundary(work) || !fire_current(out, cap, n, work)) break;  // budget spent: resume here
    next_us_ = std::min(next_event(), now_us + 1);  // skips ticks with nothing to do
  }
  return n;
}

// At the start of a level-L slot (digits below L zero) that slot's timers move
// down; only the lowest non-zero digit's slot can hold any (slot 0 of a level
// above 0 is never filed into).
bool TimerWheel::sweep_boundary(uint32_t& work) {
  if (digit(next_us_, 0) != 0) return true;
  const uint16_t list = list_to_sweep();
  while (heads_[list] != kNil) {
    if (work == 0) return false;
    const uint32_t i = heads_[list];
    prefetch_next(i);
    unlink(i);
    link(i, list_for(entries_[i].expire_us));
    --work;
    ++stats_.cascaded;
  }
  return true;
}

uint16_t TimerWheel::list_to_sweep() {
  const unsigned level = next_us_ ? unsigned(std::countr_zero(next_us_)) / kSlotBits : kLevels;
  if (level < kLevels) return uint16_t(level * kSlots + digit(next_us_, level));
  // A new 2^36 µs epoch: far timers re-file from the old overflow list while
  // new far timers go to the other one, so a sweep never meets its own output.
  if (overflow_epoch_ != next_us_ >> kRangeBits) {
    overflow_epoch_ = next_us_ >> kRangeBits;
    overflow_list_ = overflow_list_ == kOverflowA ? kOverflowB : kOverflowA;
  }
  return overflow_list_ == kOverflowA ? kOverflowB : kOverflowA;
}

bool TimerWheel::fire_current(ExpiredTimer* out, uint32_t cap, uint32_t& n, uint32_t& work) {
  const uint16_t list = uint16_t(digit(next_us_, 0));
  while (heads_[list] != kNil) {
    if (n == cap || work == 0) return false;
    const uint32_t i = heads_[list];
    prefetch_next(i);
    unlink(i);
    out[n++] = ExpiredTimer{entries_[i].flow, entries_[i].kind};
    release(i);
    --work;
    ++stats_.fired;
  }
  return true;
}

// The earliest tick after next_us_ with a slot to fire or sweep (UINT64_MAX:
// none). A level's events all come before the end of its current rotation,
// where the coarser level's first event can be: the finest level with one wins.
uint64_t TimerWheel::next_event() const {
  for (unsigned level = 0; level < kLevels; ++level) {
    const uint64_t later = occupied_[level] & slots_after(digit(next_us_, level));
    if (!later) continue;
    const unsigned shift = level * kSlotBits;
    const uint64_t rotation = next_us_ >> (shift + kSlotBits) << (shift + kSlotBits);
    return rotation | uint64_t(std::countr_zero(later)) << shift;
  }
  return heads_[overflow_list_] != kNil ? ((next_us_ >> kRangeBits) + 1) << kRangeBits : UINT64_MAX;
}

uint64_t TimerWheel::next_work_us() const {
  if (pending_ == 0) return UINT64_MAX;
  const bool at_boundary = digit(next_us_, 0) == 0;
  if (at_boundary || heads_[digit(next_us_, 0)] != kNil) return next_us_;
  return next_event();
}

void TimerWheel::prefetch_next(uint32_t i) const {
  if (entries_[i].next != kNil) __builtin_prefetch(&entries_[entries_[i].next]);
}

void TimerWheel::link(uint32_t i, uint16_t list) {
  Entry& e = entries_[i];
  e.list = list;
  e.prev = kNil;
  e.next = heads_[list];
  if (e.next != kNil) entries_[e.next].prev = i;
  heads_[list] = i;
  if (list < kLevelLists) occupied_[list / kSlots] |= uint64_t(1) << (list % kSlots);
}

void TimerWheel::unlink(uint32_t i) {
  Entry& e = entries_[i];
  if (e.next != kNil) entries_[e.next].prev = e.prev;
  if (e.prev != kNil) {
    entries_[e.prev].next = e.next;
  } else {
    heads_[e.list] = e.next;
    if (e.next == kNil && e.list < kLevelLists) occupied_[e.list / kSlots] &= ~(uint64_t(1) << (e.list % kSlots));
  }
}

void TimerWheel::release(uint32_t i) {
  Entry& e = entries_[i];
  e.list = kNoList;
  ++e.gen;
  e.next = free_head_;
  free_head_ = i;
  --pending_;
}

}  // namespace vsw::timer
