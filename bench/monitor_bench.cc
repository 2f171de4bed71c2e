// Monitor stage cost per packet: parse + segment build + flow-table
// track_bulk, without and with the monitor's per-packet inference (prefetch of
// its state for the batch, then mon_packet per packet), at 1, 10k and 1M
// established connections. The difference of the two is what the monitor
// adds. Traffic: each visit to a connection is a data segment from the client
// followed, one visit later, by the server's ACK for it, connections in random
// order (so at 1M the state of both the table and the monitor comes from DRAM).
//
// Counters: cyc_per_pkt (TSC cycles), per_pkt (ns), monitor_bytes_per_conn.
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <sys/mman.h>
#include <thread>
#include <vector>

#include "cc/net_headers.h"
#include "bench/tcp_frames.h"
#include "cc/parse.h"
#include "cc/stages/monitor_state.h"
#include "cc/tcp_segment.h"
#include "flowtable/tcp_flow_table.h"

namespace {

using namespace vsw;
using namespace vsw::net;

constexpr unsigned kBatch = 32;
using namespace vsw::bench;

struct NoEnv {
  uint8_t role(uint16_t) { return mon::kRoleUplink; }
  bool guest_off(uint16_t) { return false; }
};

struct Visit {
  Tuple t;
  uint32_t seq;    // next client sequence
  bool ack_due;    // next visit is the server's ACK
};

struct Fixture {
  std::unique_ptr<TcpFlowTable> table;
  mon::MonConn* hot = nullptr;
  mon::MonCold* cold = nullptr;
  size_t cap = 0;
  std::vector<Visit> visits;
  uint32_t now_ms = 1000;
  uint32_t now_us = 1'000'000;

  explicit Fixture(size_t n) {
    TcpFlowConfig cfg;
    cfg.capacity = static_cast<uint32_t>(std::max<size_t>(n, 1024));
    table = std::make_unique<TcpFlowTable>(cfg);
    cap = table->capacity();
    hot = static_cast<mon::MonConn*>(mmap(nullptr, sizeof(mon::MonConn) * cap, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    cold = static_cast<mon::MonCold*>(mmap(nullptr, sizeof(mon::MonCold) * cap, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::vector<Tuple> tuples = make_tuples(n);
    Frame f;
    init_frame(f);
    TcpSegment s;
    NoEnv env;
    mon::MonParams p;
    auto run = [&](const Tuple& t, bool c2s, uint8_t fl, uint32_t seq, uint32_t ack) {
      fill(f, t, c2s, fl, seq, ack, 0, 1);
      to_segment(f, 0, s);
      const TrackResult r = table->track(s, now_ms);
      mon::mon_packet(hot[r.slot], cold[r.slot], s, r, table->conn(r.slot), now_us, c2s ? 0 : 1, env, p);
    };
    for (const Tuple& t : tuples) {
      run(t, true, tcpflag::kSyn, 100, 0);
      run(t, false, tcpflag::kSyn | tcpflag::kAck, 900, 101);
      run(t, true, tcpflag::kAck, 101, 901);
    }
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(3));
    visits.resize(n);
    for (size_t i = 0; i < n; ++i) visits[i] = {tuples[order[i]], 101, false};
  }
  ~Fixture() {
    munmap(hot, sizeof(mon::MonConn) * cap);
    munmap(cold, sizeof(mon::MonCold) * cap);
  }
};

double tsc_hz() {
  static double hz = [] {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t c0 = __rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const uint64_t c1 = __rdtsc();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return double(c1 - c0) / s;
  }();
  return hz;
}

std::unique_ptr<Fixture> fx;  // shared by both variants; rebuilt when the size changes

template <bool kMonitor>
void BM_Engine(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  if (!fx || fx->visits.size() != n) {
    fx.reset();
    fx = std::make_unique<Fixture>(n);
  }
  Frame frames[kBatch];
  for (auto& f : frames) init_frame(f);
  TcpSegment segs[kBatch];
  TrackResult res[kBatch];
  uint16_t in_port[kBatch];
  NoEnv env;
  mon::MonParams p;
  size_t k = 0;
  uint64_t batches = 0, cycles = 0, pkts = 0;
  uint32_t tsv = 2;
  for (auto _ : st) {
    const uint64_t c0 = __rdtsc();
    unsigned m = 0;
    for (unsigned i = 0; i < kBatch; ++i) {
      Visit& v = fx->visits[k];
      if (++k == n) k = 0;
      uint32_t len;
      if (v.ack_due) {  // server ACKs everything sent so far
        len = 0;
        fill(frames[i], v.t, false, tcpflag::kAck, 901, v.seq, 0, tsv);
        in_port[m] = 1;
      } else {
        len = kPayload;
        fill(frames[i], v.t, true, tcpflag::kAck, v.seq, 901, kPayload, tsv);
        v.seq += kPayload;
        in_port[m] = 0;
      }
      v.ack_due = !v.ack_due;
      m += to_segment(frames[i], len, segs[m]);
    }
    fx->table->track_bulk(segs, m, fx->now_ms, res);
    if constexpr (kMonitor) {
      const uint32_t now_us = fx->now_us;
      for (unsigned i = 0; i < m; ++i) {
        const char* pp = reinterpret_cast<const char*>(&fx->hot[res[i].slot]);
        __builtin_prefetch(pp, 1);
        __builtin_prefetch(pp + 64, 1);
        const char* cp = reinterpret_cast<const char*>(&fx->cold[res[i].slot]);
        __builtin_prefetch(cp, 1);
        __builtin_prefetch(cp + 64, 1);
        __builtin_prefetch(cp + 128, 1);
      }
      for (unsigned i = 0; i < m; ++i) {
        if (!res[i].tracked()) continue;
        const uint32_t s = res[i].slot;
        const mon::MonOut o =
            mon::mon_packet(fx->hot[s], fx->cold[s], segs[i], res[i], fx->table->conn(s), now_us, in_port[i], env, p);
        benchmark::DoNotOptimize(o);
      }
    }
    benchmark::DoNotOptimize(res);
    cycles += __rdtsc() - c0;
    pkts += m;
    fx->now_us += 7;  // ~ the time a 32-packet batch takes at line rate
    if ((++batches & 63) == 0) {
      fx->table->tick(++fx->now_ms);
      ++tsv;
    }
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["per_pkt"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["cyc_per_pkt"] = pkts ? double(cycles) / double(pkts) : 0;
  st.counters["tsc_ghz"] = tsc_hz() / 1e9;
  st.counters["conns"] = fx->table->size();
  st.counters["table_bytes_per_conn"] = fx->table->bytes_per_conn();
  st.counters["monitor_bytes_per_conn"] = double(sizeof(mon::MonConn) + sizeof(mon::MonCold));
}
BENCHMARK_TEMPLATE(BM_Engine, false)->Arg(1)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_Engine, true)->Arg(1)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
