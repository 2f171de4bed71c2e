// TimerWheel against a reference model (std::multimap of due time -> timer):
// thousands of random arms, cancels, rearms and expiries with a fixed seed,
// delays spread over every level and beyond the top one.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <unordered_map>

#include "tests/unit/timer/timer_rig.h"

namespace vsw::timer::test {
namespace {

struct Model {
  struct Timer {
    TimerHandle handle;
    std::multimap<uint64_t, uint32_t>::iterator due;
  };
  std::multimap<uint64_t, uint32_t> by_due;  // effective due time -> id
  std::unordered_map<uint32_t, Timer> live;
  std::vector<uint32_t> ids;  // of live, for random picks (may hold dead ids)
};

class TimerModelTest : public ::testing::Test {
 protected:
  std::mt19937_64 rng{14};
  WheelRig rig{1 << 16, 987'654'321};
  Model model;
  uint64_t now = 987'654'321;
  uint64_t processed_to = now;  // the wheel has processed times below this (unbounded expiries only)
  uint32_t next_id = 0;

  uint64_t pick(uint64_t n) { return n ? rng() % n : 0; }
  // A delay in a random level (or beyond the top), sometimes in the past.
  int64_t random_delay() {
    const unsigned level = unsigned(pick(TimerWheel::kLevels + 1));
    const int64_t d = int64_t(pick(level_width_us(level + 1)));
    return pick(20) == 0 ? -int64_t(pick(2000)) : d;
  }
  uint64_t due_from_now() {
    const int64_t d = random_delay();
    return d < 0 && uint64_t(-d) > now ? 0 : now + d;
  }
  uint64_t effective(uint64_t due) const { return std::max(due, processed_to); }

  void arm() {
    const uint32_t id = next_id++;
    const uint64_t due = due_from_now();
    const TimerHandle h = rig.arm(id, due, TimerKind(id % 4));
    ASSERT_TRUE(h.valid());
    model.live[id] = {h, model.by_due.emplace(effective(due), id)};
    model.ids.push_back(id);
  }
  Model::Timer* random_live(uint32_t* id) {
    while (!model.ids.empty()) {
      const size_t k = pick(model.ids.size());
      *id = model.ids[k];
      auto it = model.live.find(*id);
      if (it != model.live.end()) return &it->second;
      model.ids[k] = model.ids.back();  // dead: drop it
      model.ids.pop_back();
    }
    return nullptr;
  }
  void cancel() {
    uint32_t id;
    Model::Timer* t = random_live(&id);
    if (!t) return;
    EXPECT_TRUE(rig.wheel.cancel(t->handle));
    model.by_due.erase(t->due);
    model.live.erase(id);
  }
  // Returns the id rearmed (UINT32_MAX: none live).
  uint32_t rearm() {
    uint32_t id;
    Model::Timer* t = random_live(&id);
    if (!t) return UINT32_MAX;
    const uint64_t due = due_from_now();
    EXPECT_TRUE(rig.wheel.rearm(t->handle, due));
    model.by_due.erase(t->due);
    t->due = model.by_due.emplace(effective(due), id);
    return id;
  }
  uint64_t random_step() {
    switch (pick(4)) {
      case 0: return pick(100);
      case 1: return pick(10'000);
      case 2: return pick(100'000'000);
      default: return pick(uint64_t(1) << 38);
    }
  }
  // Unbounded expiry: the wheel must fire exactly the model's due timers, earliest first.
  void expire_and_compare() {
    now += random_step();
    std::vector<std::pair<uint64_t, uint32_t>> want;
    while (!model.by_due.empty() && model.by_due.begin()->first <= now) {
      want.emplace_back(*model.by_due.begin());
      model.live.erase(model.by_due.begin()->second);
      model.by_due.erase(model.by_due.begin());
    }
    const size_t first = rig.fired.size();
    rig.run(now);
    processed_to = now + 1;
    std::vector<std::pair<uint64_t, uint32_t>> got;
    for (size_t i = first; i < rig.fired.size(); ++i) got.emplace_back(0, rig.fired[i].flow.slot);
    ASSERT_EQ(got.size(), want.size()) << "at now " << now;
    std::unordered_map<uint32_t, uint64_t> due_of;
    for (auto& [due, id] : want) due_of[id] = due;
    for (auto& g : got) {
      ASSERT_TRUE(due_of.count(g.second)) << "fired a timer not due: " << g.second;
      g.first = due_of[g.second];
    }
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end(), [](auto& a, auto& b) { return a.first < b.first; }));
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
};

TEST_F(TimerModelTest, MatchesMultimapModel) {
  for (int op = 0; op < 20'000; ++op) {
    const uint64_t r = pick(100);
    if (r < 45) arm();
    else if (r < 55) cancel();
    else if (r < 75) rearm();
    else expire_and_compare();
    ASSERT_EQ(rig.wheel.pending(), model.live.size());
    if (HasFatalFailure()) return;
  }
  now += uint64_t(1) << 44;  // everything left
  while (!model.by_due.empty() && !HasFailure()) expire_and_compare();
  EXPECT_EQ(rig.wheel.pending(), 0u);
  EXPECT_GT(rig.wheel.stats().fired, 3000u);
  EXPECT_GT(rig.wheel.stats().cascaded, 1000u);
}

// Small batches: the wheel may lag, but nothing fires early, nothing twice,
// nothing cancelled, and once caught up it has fired every due timer.
// Checks what fired since fired[first] and removes it from the model.
void absorb_fired(WheelRig& rig, Model& model, size_t first, uint64_t now) {
  for (size_t i = first; i < rig.fired.size(); ++i) {
    const uint32_t id = rig.fired[i].flow.slot;
    auto it = model.live.find(id);
    ASSERT_TRUE(it != model.live.end()) << "fired twice or after cancel: " << id;
    EXPECT_LE(it->second.due->first, now) << "early: " << id;
    EXPECT_EQ(rig.fired[i].kind, id % 4);
    model.by_due.erase(it->second.due);
    model.live.erase(it);
  }
}

TEST_F(TimerModelTest, SmallBatchesNeverEarlyNeverLost) {
  processed_to = 0;  // a lagging wheel: the model keeps every timer's own time
  for (int op = 0; op < 20'000; ++op) {
    const uint64_t r = pick(100);
    if (r < 45) {
      arm();
    } else if (r < 55) {
      cancel();
    } else if (r < 65) {
      rearm();
    } else {
      now += pick(4) == 0 ? random_step() : pick(50);
      const size_t first = rig.fired.size();
      rig.run(now, 1 + uint32_t(pick(40)));
      absorb_fired(rig, model, first, now);
    }
    ASSERT_EQ(rig.wheel.pending(), model.live.size());
    if (HasFatalFailure()) return;
  }
  const size_t first = rig.fired.size();
  rig.run(now);  // catch up
  absorb_fired(rig, model, first, now);
  for (auto& [due, id] : model.by_due) EXPECT_GT(due, now) << "due timer left behind: " << id;
}

}  // namespace
}  // namespace vsw::timer::test
