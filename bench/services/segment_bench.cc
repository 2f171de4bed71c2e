// Cycles per hold and per release of the segment buffer
// (cc/services/segment_buffer.h) at 1 and 10k flows.
// Each round: 32 holds (one new segment on each of 32 flows, the way a batch
// of guest data arrives), then the pipeline's references are dropped (as the
// transmit path would, untimed), then 32 cumulative ACKs releasing one
// segment each. Flows keep ~4 segments held; with 10k flows the flows of a
// batch are a random permutation (cache-cold flow slots and descriptors).
// hold/ref: refcnt+1 (the default); hold/take: the caller's reference moves in
// (a stage that consumes the packet). Timed: the batch's prefetch passes
// (segment_buffer.h) and the operations. Medians of per-batch rdtsc samples.
// Run: build/bench/services/bench_services --benchmark_filter=Segment
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "bench/median.h"
#include "cc/pkt_meta.h"
#include "cc/services/segment_buffer.h"

using namespace vsw::services;
using vsw::net::Seq;

namespace {

constexpr unsigned kBatch = 32;
constexpr unsigned kDepth = 4;        // segments each flow keeps held
constexpr uint32_t kLen = 64;         // payload bytes a segment (the cost does not depend on it)
constexpr uint32_t kHdrLen = 54;

struct Rig {
  rte_mempool* src = nullptr;
  std::unique_ptr<SegmentBuffer> sb;
  std::vector<SegFlow> flows;
  std::vector<uint32_t> next_seq, acked, order_hold, order_rel;
  size_t pos_hold = 0, pos_rel = 0;
  HoldMode mode;
  rte_mbuf* m[kBatch];
  bool ok = true;

  Rig(uint32_t n, HoldMode md) : flows(n), next_seq(n), acked(n), order_hold(n), order_rel(n), mode(md) {
    const uint32_t cap = n * (kDepth + 2) + 4 * kBatch;
    src = rte_pktmbuf_pool_create("segbench_src", cap + 1024, 256, vsw::kPktMetaPrivSize,
                                  RTE_PKTMBUF_HEADROOM + 256, SOCKET_ID_ANY);
    SegmentBufferConfig cfg;
    cfg.name = "segbench_own";
    cfg.descriptors = cap;
    cfg.pool_mbufs = 511;
    cfg.pool_cache = 32;
    cfg.priv_size = vsw::kPktMetaPrivSize;
    cfg.max_vms = 1;
    if (src) sb = SegmentBuffer::create(cfg);
    if (!src || !sb) {
      ok = false;
      return;
    }
    sb->set_vm_limits(0, VmLimits{uint64_t(1) << 40, 1u << 30, 255});
    std::mt19937 rng(7);
    std::iota(order_hold.begin(), order_hold.end(), 0u);
    std::iota(order_rel.begin(), order_rel.end(), 0u);
    std::shuffle(order_hold.begin(), order_hold.end(), rng);
    std::shuffle(order_rel.begin(), order_rel.end(), rng);
    for (uint32_t i = 0; i < n; ++i) {
      SegmentBuffer::init_flow(flows[i], 0);
      next_seq[i] = acked[i] = 0xfffff000u + 7919u * i;  // some flows wrap during the run
    }
    for (unsigned d = 0; d < kDepth && ok; ++d)
      for (uint32_t i = 0; i < n && ok; i += kBatch) {
        const unsigned k = std::min<uint32_t>(kBatch, n - i);
        ok = alloc();
        for (unsigned j = 0; j < k && ok; ++j) ok = hold_one(i + j, m[j]);
        if (mode == HoldMode::kTake) rte_pktmbuf_free_bulk(m + k, kBatch - k);  // allocated, not held
        drop_caller_refs();
      }
  }
  ~Rig() {
    sb.reset();
    if (src) rte_mempool_free(src);
  }
  bool alloc() {
    if (rte_pktmbuf_alloc_bulk(src, m, kBatch) != 0) return false;
    for (rte_mbuf* x : m) rte_pktmbuf_append(x, kHdrLen + kLen);
    return true;
  }
  bool hold_one(uint32_t fi, rte_mbuf* x) {
    const bool held = sb->hold(flows[fi], x, Seq(next_seq[fi]), kLen, kHdrLen, 0, mode) == Verdict::kOk;
    next_seq[fi] += kLen;
    return held;
  }
  // The pipeline's references: sent (freed by the tx path). With kTake the buffer owns them.
  void drop_caller_refs() {
    if (mode != HoldMode::kTake) rte_pktmbuf_free_bulk(m, kBatch);
  }
  uint32_t next_hold_flow() { return order_hold[pos_hold++ % order_hold.size()]; }
  uint32_t next_rel_flow() { return order_rel[pos_rel++ % order_rel.size()]; }
};

void BM_SegmentHoldRelease(benchmark::State& st) {
  Rig r(uint32_t(st.range(0)), st.range(1) ? HoldMode::kTake : HoldMode::kRef);
  if (!r.ok) {
    st.SkipWithError("setup failed (pool, buffer or prefill)");
    return;
  }
  std::vector<uint64_t> hold_cyc, rel_cyc;
  uint32_t fl[kBatch];
  for (auto _ : st) {
    st.PauseTiming();
    if (!r.alloc()) {
      st.SkipWithError("mbuf pool empty");
      break;
    }
    for (unsigned j = 0; j < kBatch; ++j) fl[j] = r.next_hold_flow();
    st.ResumeTiming();
    uint64_t t0 = rte_rdtsc();
    bool ok = true;
    for (unsigned j = 0; j < kBatch; ++j) r.sb->prefetch(r.flows[fl[j]]);
    for (unsigned j = 0; j < kBatch; ++j) ok &= r.hold_one(fl[j], r.m[j]);
    hold_cyc.push_back(rte_rdtsc() - t0);
    st.PauseTiming();
    r.drop_caller_refs();
    for (unsigned j = 0; j < kBatch; ++j) fl[j] = r.next_rel_flow();
    st.ResumeTiming();
    t0 = rte_rdtsc();
    for (unsigned j = 0; j < kBatch; ++j) r.sb->prefetch(r.flows[fl[j]]);
    for (unsigned j = 0; j < kBatch; ++j) r.sb->prefetch_mbuf(r.flows[fl[j]]);
    for (unsigned j = 0; j < kBatch; ++j) {
      const uint32_t fi = fl[j];
      r.acked[fi] += kLen;
      ok &= r.sb->release(r.flows[fi], Seq(r.acked[fi])).segs == 1;
    }
    rel_cyc.push_back(rte_rdtsc() - t0);
    if (!ok) {
      st.SkipWithError("a hold was refused or a release freed no segment");
      break;
    }
  }
  st.counters["hold_cycles"] = vsw::bench::median_of(hold_cyc) / kBatch;
  st.counters["release_cycles"] = vsw::bench::median_of(rel_cyc) / kBatch;
  st.counters["held_segments"] = double(r.sb->descriptors_in_use());
}
BENCHMARK(BM_SegmentHoldRelease)
    ->ArgNames({"flows", "take"})
    ->Args({1, 0})
    ->Args({10000, 0})
    ->Args({1, 1})
    ->Args({10000, 1});

}  // namespace
