// Cycles per packet of the snoop stage (issue 5, proof 4; paper Table I:
// vSnoop_ingress 509, lookup 74, build_ack 52, egress 104 cycles on Xen).
// Batches of 32 in-order MTU data segments toward the guest, each confirmed
// by the transmit notification and early-acknowledged (ACK built and emitted),
// and guest pure ACKs (covered: dropped). rdtsc counters around the stage
// calls only give the cycles the stage adds per packet; flow tracking (the
// PMD's shared lookup, done once per batch for all TCP stages) is reported
// separately.  Run: build/bench/snoop/bench_snoop [--benchmark_min_time=2]
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include <algorithm>

#include "bench/median.h"
#include "tests/unit/snoop/snoop_sim.h"

using namespace vsw;
using namespace vsw::test;

namespace {

rte_mempool* g_pool;

// Median of per-batch samples: a loaded shared machine preempts some batches.
double median_per_pkt(std::vector<uint64_t>& v, unsigned per) { return vsw::bench::median_of(v) / per; }

struct Rig {
  Datapath dp{FdbConfig{}};
  SimPort wire{"wire", Port::Kind::kEthdev}, vm{"vm", Port::Kind::kVhostUser};
  std::unique_ptr<SimCtx> ctx;
  std::unique_ptr<SnoopStage> st;
  uint8_t self = static_cast<uint8_t>(stage_index("snoop") + 1);
  uint32_t seq = 1000, ack_g = 5000, ts = 1;
  Rig() {
    dp.pool = g_pool;
    wire.set_id(0);
    vm.set_id(1);
    dp.ports[0].store(&wire);
    dp.ports[1].store(&vm);
    TcpFlowConfig fc;
    fc.capacity = 1 << 16;
    ctx = std::make_unique<SimCtx>(dp, fc);
    // Default ring bound (desc_bytes 1448) against a 256-descriptor ring with room.
    st = std::make_unique<SnoopStage>(snoop::config_from_json({{"disabled_ports", {"wire"}}}), self);
    vm.ring_free = 256;
  }
  // Builds a batch (mbufs, parsed, tracked) from frames arriving on in_port.
  uint64_t track_cycles = 0;
  void make_batch(Batch& b, BatchFlows& f, const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port) {
    b.reset();
    f.n = 0;
    for (const auto& fr : frames) {
      rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
      std::memcpy(rte_pktmbuf_append(m, uint16_t(fr.size())), fr.data(), fr.size());
      parse_mbuf(m, in_port);
      b.push(m);
    }
    const uint64_t t0 = rte_rdtsc();
    for (uint16_t i = 0; i < b.n; ++i) {
      rte_mbuf* m = b.pkts[i];
      b.flow_idx[i] = -1;
      if (tcp_segment_from_meta(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), meta(m), 0, f.seg[f.n]))
        b.flow_idx[i] = int8_t(f.n++);
    }
    ctx->flows()->track_bulk(f.seg, f.n, 0, f.res);
    track_cycles += rte_rdtsc() - t0;
    b.flows = &f;
    b.table = ctx->flows();
  }
  void handshake() {
    Batch b;
    BatchFlows f;
    TcpSpec syn = snoop_sender_spec();
    syn.seq = seq - 1;
    syn.flags = net::tcpflag::kSyn;
    syn.options = {2, 4, 5, 0xa8, 1, 3, 3, 7, 1, 1, 4, 2};
    auto o = ts_option(ts++, 0);
    syn.options.insert(syn.options.end(), o.begin(), o.end());
    run({FrameBuilder(mac(2), mac(1)).tcp4(syn)}, 0, b, f);
    TcpSpec sa = snoop_guest_spec();
    sa.seq = ack_g - 1;
    sa.ack = seq;
    sa.flags = net::tcpflag::kSyn | net::tcpflag::kAck;
    sa.window = 65000;
    sa.options = {2, 4, 5, 0xa8, 1, 3, 3, 10, 1, 1, 4, 2};
    o = ts_option(ts++, 1);
    sa.options.insert(sa.options.end(), o.begin(), o.end());
    run({FrameBuilder(mac(1), mac(2)).tcp4(sa)}, 1, b, f);
  }
  // Runs process (+ transmit notifications for packets toward the guest); returns stage cycles.
  uint64_t run(const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port, Batch& b, BatchFlows& f) {
    make_batch(b, f, frames, in_port);
    const uint64_t t0 = rte_rdtsc();
    st->process(b, *ctx);
    if (in_port == 0)
      for (uint16_t i = 0; i < b.n; ++i) {
        const PktMeta& pm = meta(b.pkts[i]);
        if (pm.notify_stage == self) st->on_tx(*ctx, 1, pm.cookie, rte_pktmbuf_pkt_len(b.pkts[i]), true);
      }
    Batch none;  // end of notifications: coalesced early ACKs go out
    st->process(none, *ctx);
    const uint64_t c = rte_rdtsc() - t0;
    rte_pktmbuf_free_bulk(b.pkts, b.n);
    for (auto& [m, p] : ctx->out) rte_pktmbuf_free(m);
    ctx->out.clear();
    return c;
  }
  std::vector<std::vector<uint8_t>> data_frames(unsigned n) {
    std::vector<std::vector<uint8_t>> v;
    for (unsigned k = 0; k < n; ++k) {
      TcpSpec t = snoop_sender_spec();
      t.seq = seq;
      t.ack = ack_g;
      t.payload = 1448;
      t.options = ts_option(ts++, 7);
      seq += 1448;
      v.push_back(FrameBuilder(mac(2), mac(1)).tcp4(t));
    }
    return v;
  }
  std::vector<uint8_t> guest_ack(uint32_t a) {
    TcpSpec t = snoop_guest_spec();
    t.seq = ack_g;
    t.ack = a;
    t.window = 60000;  // << 10: plenty
    t.options = ts_option(ts++, 7);
    return FrameBuilder(mac(1), mac(2)).tcp4(t);
  }
};

void BM_SnoopDataEarlyAck(benchmark::State& state) {
  Rig r;
  r.handshake();
  Batch b;
  BatchFlows f;
  uint64_t cyc = 0, pkts = 0;
  std::vector<uint64_t> samples;
  r.track_cycles = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto fr = r.data_frames(32);
    const uint32_t a = r.seq - 32 * 1448;
    state.ResumeTiming();
    const uint64_t c1 = r.run(fr, 0, b, f);
    cyc += c1;
    samples.push_back(c1);
    pkts += 32;
    state.PauseTiming();
    r.run({r.guest_ack(a)}, 1, b, f);  // keeps the guest window moving (not counted)
    state.ResumeTiming();
  }
  state.counters["stage_cycles_per_pkt_mean"] = double(cyc) / double(pkts);
  state.counters["stage_cycles_per_pkt"] = median_per_pkt(samples, 32);
  state.counters["early_acks"] = double(r.st->counter(snoop::kEarlyAck));
}
BENCHMARK(BM_SnoopDataEarlyAck);

void BM_SnoopGuestAcks(benchmark::State& state) {
  Rig r;
  r.handshake();
  Batch b;
  BatchFlows f;
  uint64_t cyc = 0, pkts = 0, trk = 0;
  std::vector<uint64_t> samples, tsamples;
  for (auto _ : state) {
    state.PauseTiming();
    auto fr = r.data_frames(32);
    r.run(fr, 0, b, f);
    std::vector<std::vector<uint8_t>> acks;
    for (unsigned k = 0; k < 32; ++k) acks.push_back(r.guest_ack(r.seq - (32 - k) * 1448));
    r.track_cycles = 0;
    state.ResumeTiming();
    const uint64_t c1 = r.run(acks, 1, b, f);
    cyc += c1;
    samples.push_back(c1);
    tsamples.push_back(r.track_cycles);
    trk += r.track_cycles;
    pkts += 32;
  }
  state.counters["stage_cycles_per_pkt_mean"] = double(cyc) / double(pkts);
  state.counters["stage_cycles_per_pkt"] = median_per_pkt(samples, 32);
  state.counters["track_cycles_per_pkt"] = median_per_pkt(tsamples, 32);
  state.counters["dropped"] = double(r.st->counter(snoop::kGuestAckDropCovered));
}
BENCHMARK(BM_SnoopGuestAcks);

// Flow tracking alone (the PMD's shared per-batch lookup/update), for reference.
void BM_TrackOnly(benchmark::State& state) {
  Rig r;
  r.handshake();
  Batch b;
  BatchFlows f;
  uint64_t pkts = 0;
  r.track_cycles = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto fr = r.data_frames(32);
    state.ResumeTiming();
    r.make_batch(b, f, fr, 0);
    pkts += 32;
    state.PauseTiming();
    rte_pktmbuf_free_bulk(b.pkts, b.n);
    state.ResumeTiming();
  }
  state.counters["track_cycles_per_pkt"] = double(r.track_cycles) / double(pkts);
}
BENCHMARK(BM_TrackOnly);

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a = {"bench", "--no-huge", "-m", "256", "--no-pci", "-l", "0",
                                "--file-prefix=snbench" + std::to_string(getpid()), "--log-level=lib.eal:error",
                                "--no-telemetry"};
  std::vector<char*> ev;
  for (auto& s : a) ev.push_back(s.data());
  if (rte_eal_init(int(ev.size()), ev.data()) < 0) return 1;
  g_pool = pkt_pool_create("snbench", 8191, 256, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  rte_eal_cleanup();
  return 0;
}
