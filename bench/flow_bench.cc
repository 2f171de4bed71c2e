// TCP flow engine cost per packet: parse + key/segment build + bulk
// lookup/update, at 1, 10k and 1M established connections, plus the memory
// each connection slot costs.
//
// Packet headers are rewritten into a small hot set of frame buffers (as a
// PMD sees freshly received mbufs), while connections are visited in random
// order, so at 1M the flow state comes from DRAM as it would in production.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "cc/checksum.h"
#include "bench/tcp_frames.h"
#include "cc/net_headers.h"
#include "cc/parse.h"
#include "cc/tcp_segment.h"
#include "flowtable/tcp_flow_table.h"

namespace {

using namespace vsw;
using namespace vsw::net;

constexpr unsigned kBatch = 32;
using namespace vsw::bench;

// One connection in visiting order; the benchmark walks these sequentially so
// that only the table's own accesses are random.
struct Visit {
  Tuple t;
  uint32_t seq;
};

struct Fixture {
  std::unique_ptr<TcpFlowTable> table;
  std::vector<Tuple> tuples;
  std::vector<uint32_t> order;  // random visiting order
  uint32_t now = 1000;

  explicit Fixture(size_t n, uint32_t capacity = 0) : tuples(make_tuples(n)), order(n) {
    TcpFlowConfig cfg;
    cfg.capacity = capacity ? capacity : static_cast<uint32_t>(std::max<size_t>(n, 1024));
    table = std::make_unique<TcpFlowTable>(cfg);
    Frame f;
    init_frame(f);
    TcpSegment s;
    for (const Tuple& t : tuples) {  // three-way handshake for each
      fill(f, t, true, tcpflag::kSyn, 100, 0, kPayload, 1);
      to_segment(f, kPayload, s);
      s.payload_len = 0;
      table->track(s, now);
      fill(f, t, false, tcpflag::kSyn | tcpflag::kAck, 900, 101, kPayload, 1);
      to_segment(f, kPayload, s);
      s.payload_len = 0;
      table->track(s, now);
      fill(f, t, true, tcpflag::kAck, 101, 901, kPayload, 1);
      to_segment(f, kPayload, s);
      s.payload_len = 0;
      table->track(s, now);
    }
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(3));
  }
};

void set_counters(benchmark::State& st, const TcpFlowTable& t) {
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["per_pkt"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["conns"] = t.size();
  st.counters["refused"] = double(t.stats().refused_full);
  st.counters["bytes_per_conn"] = t.bytes_per_conn();
}

// Whole engine: parse, build segment (key, hash, options), track_bulk.
void BM_FlowEngine(benchmark::State& st) {
  static std::unique_ptr<Fixture> fx;  // 1M connections take a while to build: reuse across repetitions
  const size_t n = static_cast<size_t>(st.range(0));
  if (!fx || fx->tuples.size() != n) {
    fx.reset();
    fx = std::make_unique<Fixture>(n);
  }
  Frame frames[kBatch];
  for (auto& f : frames) init_frame(f);
  TcpSegment segs[kBatch];
  TrackResult res[kBatch];
  std::vector<Visit> visits(n);
  for (size_t i = 0; i < n; ++i) visits[i] = {fx->tuples[fx->order[i]], 101};
  size_t k = 0;
  uint64_t batches = 0;
  for (auto _ : st) {
    unsigned m = 0;
    for (unsigned i = 0; i < kBatch; ++i) {
      Visit& v = visits[k];
      if (++k == n) k = 0;
      fill(frames[i], v.t, true, tcpflag::kAck, v.seq, 901, kPayload, 1);
      v.seq += kPayload;
      if (to_segment(frames[i], kPayload, segs[m])) fx->table->prefetch(segs[m++].hash);  // as Pmd::track_flows
    }
    fx->table->track_bulk(segs, m, fx->now, res);
    benchmark::DoNotOptimize(res);
    if ((++batches & 63) == 0) fx->table->tick(++fx->now);
  }
  set_counters(st, *fx->table);
}
BENCHMARK(BM_FlowEngine)->Arg(1)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

// Lookup only, on segments already built (what a second TCP stage would pay
// if it looked up again instead of reusing the first stage's slots).
void BM_LookupBulk(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  Fixture fx(n);
  const size_t pool = std::min<size_t>(n * 2, 1u << 16);
  std::vector<TcpSegment> segs(std::max<size_t>(pool, kBatch));
  Frame f;
  init_frame(f);
  for (size_t i = 0; i < segs.size(); ++i) {
    fill(f, fx.tuples[fx.order[i % n]], i & 1, tcpflag::kAck, 1, 1, kPayload, 1);
    to_segment(f, kPayload, segs[i]);
  }
  uint32_t slots[kBatch];
  size_t off = 0;
  for (auto _ : st) {
    if (off + kBatch > segs.size()) off = 0;
    fx.table->lookup_bulk(&segs[off], kBatch, slots);
    benchmark::DoNotOptimize(slots);
    off += kBatch;
  }
  set_counters(st, *fx.table);
}
BENCHMARK(BM_LookupBulk)->Arg(1)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

// Parse + segment build alone (no table).
void BM_ParseAndKey(benchmark::State& st) {
  Frame frames[kBatch];
  TcpSegment segs[kBatch];
  auto tuples = make_tuples(kBatch);
  for (unsigned i = 0; i < kBatch; ++i) {
    init_frame(frames[i]);
    fill(frames[i], tuples[i], i & 1, tcpflag::kAck, i, 1, kPayload, 1);
  }
  for (auto _ : st) {
    for (unsigned i = 0; i < kBatch; ++i) to_segment(frames[i], kPayload, segs[i]);
    benchmark::DoNotOptimize(segs);
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["per_pkt"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ParseAndKey);

// SYN flood against a table holding 10k established connections (capacity
// 20k, so 5k embryonic budget): every SYN creates an embryonic entry and
// evicts the oldest one.
void BM_SynFlood(benchmark::State& st) {
  Fixture fx(10'000, 20'000);
  Frame frames[kBatch];
  for (auto& f : frames) init_frame(f);
  TcpSegment segs[kBatch];
  TrackResult res[kBatch];
  std::mt19937 rng(9);
  for (auto _ : st) {
    for (unsigned i = 0; i < kBatch; ++i) {
      const Tuple t{0xc0000000u | static_cast<uint32_t>(rng() & 0xffffff), 0x0a000001u, static_cast<uint16_t>(rng()), 80};
      fill(frames[i], t, true, tcpflag::kSyn, rng(), 0, kPayload, 1);
      to_segment(frames[i], kPayload, segs[i]);
    }
    fx.table->track_bulk(segs, kBatch, fx.now, res);
    benchmark::DoNotOptimize(res);
  }
  set_counters(st, *fx.table);
  st.counters["evicted"] = double(fx.table->stats().removed[size_t(RemoveReason::kEvicted)]);
  st.counters["refused"] = double(fx.table->stats().refused_full);
}
BENCHMARK(BM_SynFlood)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
