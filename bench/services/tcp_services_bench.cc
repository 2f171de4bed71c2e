// Cycles per packet of two stage services: the TCP builder (ACKs, duplicate
// ACKs with SACK, retransmissions; the flow's template built once and
// reused) and the window owner (one rewrite with two proposed bounds).
// Batches of 32 packets, rdtsc around the batch only (mbuf frees and packet
// resets are outside); each figure is the median batch / 32, since a loaded
// machine preempts some batches.  Run: build/bench/services/bench_services
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <array>
#include <vector>

#include "bench/median.h"
#include "cc/services/tcp_builder.h"
#include "cc/services/window_owner.h"

rte_mempool* services_bench_pool();

using namespace vsw;
using namespace vsw::services;

namespace {

constexpr unsigned kBatch = 32;

TcpFlowAddrs flow(uint32_t i = 0) {
  TcpFlowAddrs a;
  a.src = TcpEndpoint::v4(net::Mac{{2, 0, 0, 0, 0, 1}}, 0x0a000001, static_cast<uint16_t>(5001 + i));
  a.dst = TcpEndpoint::v4(net::Mac{{2, 0, 0, 0, 0, 2}}, 0x0a000002, 40000);
  return a;
}

void report(benchmark::State& st, std::vector<uint64_t>& samples) {
  st.counters["cycles_per_pkt"] = bench::median_of(samples) / kBatch;
  st.SetItemsProcessed(static_cast<int64_t>(samples.size()) * kBatch);
}

// range(0): 0 = bare ACK, 1 = + timestamps, 2 = + timestamps + 3 SACK blocks.
// range(1): 1 = TCP checksum left to offload (pseudo-header sum only).
void BM_BuildAck(benchmark::State& st) {
  TcpTemplate t;
  t.init(flow());
  TcpBuilder b(services_bench_pool(), st.range(1) ? CsumMode::kOffload : CsumMode::kSoftware);
  const net::SackBlock blocks[3] = {{5000, 6000}, {7000, 8000}, {9000, 9500}};
  TcpFields f;
  f.window = TcpWindow::from_bytes(1 << 20, 7);
  f.has_ts = st.range(0) >= 1;
  f.sack = st.range(0) == 2 ? blocks : nullptr;
  f.n_sack = st.range(0) == 2 ? 3 : 0;
  std::array<rte_mbuf*, kBatch> out{};
  std::vector<uint64_t> samples;
  uint32_t ack = 1;
  for (auto _ : st) {
    const uint64_t t0 = rte_rdtsc();
    for (unsigned i = 0; i < kBatch; ++i) {
      f.ack = net::Seq(ack += 1448);
      f.ts_val = ack;
      out[i] = b.ack(t, f).m;
    }
    samples.push_back(rte_rdtsc() - t0);
    rte_pktmbuf_free_bulk(out.data(), kBatch);
  }
  if (b.stats().no_mbuf) st.SkipWithError("pool exhausted");
  report(st, samples);
}
BENCHMARK(BM_BuildAck)->ArgsProduct({{0, 1, 2}, {0, 1}})->ArgNames({"opts", "offload"});

// The same ACK with TS, but the template built per packet (no reuse): what the
// template saves.
void BM_BuildAckTemplatePerPacket(benchmark::State& st) {
  TcpBuilder b(services_bench_pool());
  TcpFields f;
  f.has_ts = true;
  std::array<rte_mbuf*, kBatch> out{};
  std::vector<uint64_t> samples;
  uint32_t ack = 1;
  for (auto _ : st) {
    const uint64_t t0 = rte_rdtsc();
    for (unsigned i = 0; i < kBatch; ++i) {
      TcpTemplate t;
      t.init(flow(i));
      f.ack = net::Seq(ack += 1448);
      out[i] = b.ack(t, f).m;
    }
    samples.push_back(rte_rdtsc() - t0);
    rte_pktmbuf_free_bulk(out.data(), kBatch);
  }
  report(st, samples);
}
BENCHMARK(BM_BuildAckTemplatePerPacket);

// Retransmission of a held 1448-byte segment. range(0): 0 = copy, 1 = clone.
void BM_Retransmit(benchmark::State& st) {
  TcpTemplate t;
  t.init(flow());
  TcpBuilder b(services_bench_pool());
  rte_mbuf* held = rte_pktmbuf_alloc(services_bench_pool());
  auto* d = rte_pktmbuf_mtod(held, uint8_t*);
  for (unsigned i = 0; i < 66 + 1448; ++i) d[i] = static_cast<uint8_t>(i);
  rte_pktmbuf_append(held, 66 + 1448);
  const HeldPayload h{held, 66, 1448};
  const PayloadMode mode = st.range(0) ? PayloadMode::kClone : PayloadMode::kCopy;
  TcpFields f;
  f.has_ts = true;
  std::array<rte_mbuf*, kBatch> out{};
  std::vector<uint64_t> samples;
  for (auto _ : st) {
    const uint64_t t0 = rte_rdtsc();
    for (unsigned i = 0; i < kBatch; ++i) out[i] = b.retransmit(t, f, h, mode).m;
    samples.push_back(rte_rdtsc() - t0);
    rte_pktmbuf_free_bulk(out.data(), kBatch);
  }
  rte_pktmbuf_free(held);
  report(st, samples);
}
BENCHMARK(BM_Retransmit)->Arg(0)->Arg(1)->ArgName("clone");

// 32 ACK packets of 32 connections, each with two bounds proposed (or none).
// range(0): 0 = no bound (untouched), 1 = bounded (window + checksum rewritten),
// 2 = bounded through the mbuf entry point (PktMeta, writability, ol_flags).
void BM_WindowRewrite(benchmark::State& st) {
  TcpBuilder b(services_bench_pool());
  std::array<rte_mbuf*, kBatch> pkts{};
  std::array<WindowSide, kBatch> sides{};
  TcpFields f;
  f.has_ts = true;
  f.window = TcpWindow::from_raw(60000);
  for (unsigned i = 0; i < kBatch; ++i) {
    TcpTemplate t;
    t.init(flow(i));
    pkts[i] = b.ack(t, f).m;
    sides[i].set_shift(7);
  }
  const int mode = static_cast<int>(st.range(0));
  std::vector<uint64_t> samples;
  WindowOwner owner;
  uint32_t ack = 1;
  for (auto _ : st) {
    ack += 100000;
    for (rte_mbuf* m : pkts) {  // reset: a fresh ACK with the endpoint's window
      auto* th = rte_pktmbuf_mtod_offset(m, net::TcpHdr*, meta(m).l4_off);
      th->ack.set(ack);
      th->window.set(60000);
    }
    const uint64_t t0 = rte_rdtsc();
    for (unsigned i = 0; i < kBatch; ++i) {
      WindowProposal p;
      if (mode) {
        p.propose(1u << 20);
        p.propose(200000 + i);
      }
      if (mode == 2) {
        owner.apply(sides[i], pkts[i], p);
      } else {
        auto* th = rte_pktmbuf_mtod_offset(pkts[i], net::TcpHdr*, 34);
        owner.apply(sides[i], th, p, net::L4Csum::kComplete);
      }
    }
    samples.push_back(rte_rdtsc() - t0);
  }
  rte_pktmbuf_free_bulk(pkts.data(), kBatch);
  report(st, samples);
  st.counters["bounded"] = static_cast<double>(owner.stats().bounded);
}
BENCHMARK(BM_WindowRewrite)->Arg(0)->Arg(1)->Arg(2)->ArgName("mode");

}  // namespace
