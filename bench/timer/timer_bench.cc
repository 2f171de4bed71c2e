// Cost of the per-PMD timer wheel (pmd/timer) per arm, cancel, rearm and
// fired timer, with 1k and 1M timers pending (RTO-like: 1 ms .. 1 s ahead),
// against a std::multimap keyed by expiry (node reuse on rearm) as baseline.
// Each op runs in batches of kBatch; the counters are the median batch's ns
// and TSC cycles per op (a loaded machine preempts some batches).
// Run: build/bench/timer/bench_timer   (see README.md)
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <vector>

#include "bench/median.h"
#include "pmd/timer/timer_wheel.h"

namespace {

using namespace vsw::timer;

constexpr uint32_t kBatch = 256;
constexpr uint64_t kNow = 1'000'000'000;
constexpr uint64_t kMinDelay = 1'000, kSpan = 1'000'000;  // µs

struct WheelImpl {
  using Handle = TimerHandle;
  TimerWheel w;
  WheelImpl(uint32_t capacity, uint64_t now) : w(capacity, now) {}
  Handle arm(uint32_t id, uint64_t due) { return w.arm(FlowRef{id, 1}, 0, due); }
  void cancel(Handle h) { w.cancel(h); }
  void rearm(Handle& h, uint64_t due) { w.rearm(h, due); }
  void prefetch(Handle h) const { w.prefetch(h); }
  template <typename Fn>
  uint32_t expire(uint64_t now, Fn&& fn) {
    return w.expire(now, fn, UINT32_MAX);
  }
  void report(benchmark::State& st) const {
    st.counters["moves_per_fired"] = double(w.stats().cascaded) / double(std::max<uint64_t>(w.stats().fired, 1));
  }
};

struct MultimapImpl {
  struct Timer {
    FlowRef flow;
    TimerKind kind;
  };
  using Map = std::multimap<uint64_t, Timer>;
  using Handle = Map::iterator;
  Map m;
  MultimapImpl(uint32_t, uint64_t) {}
  Handle arm(uint32_t id, uint64_t due) { return m.emplace(due, Timer{FlowRef{id, 1}, 0}); }
  void cancel(Handle h) { m.erase(h); }
  void rearm(Handle& h, uint64_t due) {
    auto node = m.extract(h);
    node.key() = due;
    h = m.insert(std::move(node));
  }
  void prefetch(Handle h) const { __builtin_prefetch(&*h); }
  void report(benchmark::State&) const {}
  template <typename Fn>
  uint32_t expire(uint64_t now, Fn&& fn) {
    uint32_t n = 0;
    for (auto it = m.begin(); it != m.end() && it->first <= now; it = m.erase(it), ++n) fn(it->second.flow, 0);
    return n;
  }
};

// n timers pending, due uniformly in [now + kMinDelay, now + kMinDelay + kSpan).
template <typename Impl>
struct Fixture {
  Impl impl;
  std::vector<typename Impl::Handle> handles;
  std::vector<uint64_t> due;
  std::mt19937_64 rng{14};
  uint64_t now = kNow;
  explicit Fixture(uint32_t n) : impl(n + kBatch, kNow), handles(n + kBatch), due(n + kBatch) {
    for (uint32_t id = 0; id < n; ++id) handles[id] = impl.arm(id, due[id] = random_due());
  }
  uint64_t random_due() { return now + kMinDelay + rng() % kSpan; }
  uint32_t random_id(uint32_t n) { return uint32_t(rng() % n); }
};

// Per-batch samples of ns and cycles; reported as medians per op.
struct Samples {
  std::vector<uint64_t> ns, cycles;
  uint64_t ops = 0;
  uint64_t t0 = 0, c0 = 0;
  void start() {
    t0 = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    c0 = __rdtsc();
  }
  void stop(uint64_t batch_ops) {
    cycles.push_back(__rdtsc() - c0);
    ns.push_back(uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) - t0);
    ops = batch_ops;
  }
  void report(benchmark::State& st) {
    st.counters["ns_per_op"] = vsw::bench::median_of(ns) / double(std::max<uint64_t>(ops, 1));
    st.counters["cycles_per_op"] = vsw::bench::median_of(cycles) / double(std::max<uint64_t>(ops, 1));
  }
};

template <typename Impl>
void BM_Arm(benchmark::State& st) {
  const uint32_t n = uint32_t(st.range(0));
  Fixture<Impl> fx(n);
  Samples s;
  for (auto _ : st) {
    s.start();
    for (uint32_t i = 0; i < kBatch; ++i) fx.handles[n + i] = fx.impl.arm(n + i, fx.random_due());
    s.stop(kBatch);
    for (uint32_t i = 0; i < kBatch; ++i) fx.impl.cancel(fx.handles[n + i]);
  }
  s.report(st);
}

template <typename Impl>
void BM_Cancel(benchmark::State& st) {
  const uint32_t n = uint32_t(st.range(0));
  Fixture<Impl> fx(n);
  Samples s;
  uint32_t order[kBatch];
  for (uint32_t i = 0; i < kBatch; ++i) order[i] = i;
  for (auto _ : st) {
    for (uint32_t i = 0; i < kBatch; ++i) fx.handles[n + i] = fx.impl.arm(n + i, fx.random_due());
    std::shuffle(order, order + kBatch, fx.rng);
    s.start();
    for (uint32_t i = 0; i < kBatch; ++i) fx.impl.cancel(fx.handles[n + order[i]]);
    s.stop(kBatch);
  }
  s.report(st);
}

// push_back = false: a random new time; true: the RTO pattern, each ACK
// pushes a random flow's timer back by a few µs. Timers are prefetched
// kAhead ahead, as a stage prefetches the flows of its batch.
template <typename Impl, bool push_back>
void BM_Rearm(benchmark::State& st) {
  constexpr uint32_t kAhead = 8;
  const uint32_t n = uint32_t(st.range(0));
  Fixture<Impl> fx(n);
  Samples s;
  uint32_t ids[kBatch + kAhead] = {};
  for (auto _ : st) {
    for (uint32_t i = 0; i < kBatch; ++i) ids[i] = fx.random_id(n);
    s.start();
    for (uint32_t i = 0; i < kBatch; ++i) {
      fx.impl.prefetch(fx.handles[ids[i + kAhead]]);
      const uint32_t id = ids[i];
      fx.impl.rearm(fx.handles[id], push_back ? (fx.due[id] += 7) : fx.random_due());
    }
    s.stop(kBatch);
  }
  s.report(st);
}

// Time advances so about kBatch timers come due per call; each fired timer is
// re-armed a span ahead (not timed), keeping n pending.
template <typename Impl>
void BM_Fire(benchmark::State& st) {
  const uint32_t n = uint32_t(st.range(0));
  Fixture<Impl> fx(n);
  Samples s;
  const uint64_t step = std::max<uint64_t>(1, kSpan * kBatch / n);
  std::vector<uint32_t> fired;
  fired.reserve(n);
  uint64_t fired_total = 0;
  for (auto _ : st) {
    fired.clear();
    fx.now += step;
    s.start();
    const uint32_t got = fx.impl.expire(fx.now, [&](FlowRef f, TimerKind) { fired.push_back(f.slot); });
    s.stop(std::max<uint32_t>(got, 1));
    fired_total += got;
    for (uint32_t id : fired) fx.handles[id] = fx.impl.arm(id, fx.random_due());
  }
  s.report(st);
  fx.impl.report(st);
  st.counters["fired_per_call"] = double(fired_total) / double(std::max<uint64_t>(st.iterations(), 1));
}

constexpr int kIters = 2000;

#define TIMER_BENCH(fn, ...)                                                                   \
  BENCHMARK_TEMPLATE(fn, __VA_ARGS__)->Arg(1000)->Arg(1'000'000)->Iterations(kIters)->Unit( \
      benchmark::kMicrosecond)

TIMER_BENCH(BM_Arm, WheelImpl);
TIMER_BENCH(BM_Arm, MultimapImpl);
TIMER_BENCH(BM_Cancel, WheelImpl);
TIMER_BENCH(BM_Cancel, MultimapImpl);
TIMER_BENCH(BM_Rearm, WheelImpl, false);
TIMER_BENCH(BM_Rearm, MultimapImpl, false);
TIMER_BENCH(BM_Rearm, WheelImpl, true);
TIMER_BENCH(BM_Rearm, MultimapImpl, true);
TIMER_BENCH(BM_Fire, WheelImpl);
TIMER_BENCH(BM_Fire, MultimapImpl);

}  // namespace

BENCHMARK_MAIN();
