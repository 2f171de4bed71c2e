// Cost per packet: parse + segment build + flow-table track_bulk, without and
// with the monitor's per-packet inference, at 1, 10k and 1M established
// connections, each against the same loop with only the traffic generator
// (frames rewritten in place, nothing parsed or looked up). Differences: what
// parse + lookup add, what the monitor adds, and what all of them add. Traffic: each visit
// to a connection is a data segment from the client followed, one visit
// later, by the server's ACK for it, connections in random order (so at 1M
// the state of both the table and the monitor comes from DRAM) - a worst case
// for the monitor: every ACK completes an RTT sample and rolls the flight
// window, so every packet touches its warm lines.
//
// This machine is shared and noisy, so configurations are never compared
// across runs: one benchmark builds one fixture (its own table and state)
// per configuration and alternates between them every kChunk batches; the
// counters are medians of the per-batch TSC cycle counts of each.
//   BM_Cost/N/G     generator only vs + table vs + table + monitor as
//                   MonitorStage runs it (one MonState array with a THP hint,
//                   its hot and warm lines prefetched by the table's bulk
//                   lookup: add_companion). Counters per packet, median batch:
//                   gen_cyc, base_cyc (+ parse + lookup), mon_cyc (+ monitor);
//                   table_adds_cyc = base - gen, adds_cyc = mon - base (the
//                   monitor), total_adds_cyc = mon - gen (parse + lookup +
//                   monitor); *_mean: mean over batches; bytes per connection.
//                   G = 1: the server a running guest (its samples also
//                   feed the guest delay, its silences are checked and, as a
//                   running guest's, are short). Its samples last one round
//                   of visits (220 ms at 1M), which takes the guest delay's
//                   expm1 path (~+35 cycles/packet there); a running guest's,
//                   < 16 ms, take the cubic (10k: ~+5).
//   BM_Variants     1M connections, monitor on: where the 1M cost goes.
//                   v0-v2 4 KB pages (MADV_NOHUGEPAGE), v3-v5 THP hint,
//                   v6-v8 hugetlbfs pages (MAP_HUGETLB; falls back to the THP
//                   hint if the pool is short); each with no prefetch, one
//                   prefetch pass over the batch after track_bulk (what the
//                   stage did), prefetch from the table's lookup (the stage
//                   now). base_cyc: table only. v<i>_cyc per packet, median batch.
//   BM_NextBatch    1M: the state prefetched by the lookup (the stage) against
//                   the next batch's lines prefetched during this batch's
//                   monitor loop (what cross-batch pipelining would give).
//   BM_Lines        the memory floor: cycles per item against DRAM lines
//                   touched per item, batch-prefetched or not (no table).
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <random>
#include <sys/mman.h>
#include <thread>
#include <vector>

#include "cc/net_headers.h"
#include "bench/median.h"
#include "bench/tcp_frames.h"
#include "cc/parse.h"
#include "cc/stages/monitor_state.h"
#include "cc/tcp_segment.h"
#include "flowtable/tcp_flow_table.h"

namespace {

using namespace vsw;
using namespace vsw::net;

constexpr unsigned kBatch = 32;
constexpr unsigned kChunk = 64;  // batches per turn of one configuration
using namespace vsw::bench;

// Port roles: both endpoints uplinks, or (guest) the server behind port 1 a
// guest that is running (its receiver-side samples then also feed the
// guest delay, and its silences are checked).
struct BenchEnv {
  bool guest = false;
  uint8_t role(uint16_t port) { return guest && port == 1 ? mon::kRoleGuest : mon::kRoleUplink; }
  bool guest_off(uint16_t) { return false; }
};

struct Visit {
  Tuple t;
  uint32_t seq;    // next client sequence
  bool ack_due;    // next visit is the server's ACK
  uint32_t slot = ~0u;  // the table's slot at the last visit (BM_NextBatch's oracle)
};

enum Pages : unsigned { kThp, k4K, kHugetlb };

struct Fixture {
  unsigned variant;
  std::unique_ptr<TcpFlowTable> table;
  mon::MonState* st = nullptr;  // as MonitorStage: one array, hot + warm lines first
  size_t cap = 0;
  std::vector<Visit> visits;
  uint32_t now_ms = 1000;
  uint32_t now_us = 1'000'000;

  // pages: kThp (a hint, as MonitorStage; the kernel may not find 2 MB
  // pages), k4K (MADV_NOHUGEPAGE), kHugetlb (MAP_HUGETLB from the hugetlbfs
  // pool, falls back to kThp).
  template <typename T>
  T* map(size_t n, unsigned pages) {
    const size_t len = (sizeof(T) * n + (2u << 20) - 1) & ~size_t((2u << 20) - 1);
    void* p = MAP_FAILED;
    if (pages == kHugetlb) p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED) {
      p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      madvise(p, len, pages == k4K ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
      if (pages == kHugetlb) hugetlb_fallback = true;
    }
    return static_cast<T*>(p);
  }
  bool hugetlb_fallback = false;
  bool guest = false;  // the server is a guest (BenchEnv)

  // with_state false: the traffic generator's visits only (no table, no monitor state).
  Fixture(size_t n, unsigned pages, bool with_state = true, bool guest = false) : variant(pages), guest(guest) {
    std::vector<Tuple> tuples = make_tuples(n);
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(3));
    visits.resize(n);
    for (size_t i = 0; i < n; ++i) visits[i] = {tuples[order[i]], 101, false, ~0u};
    if (!with_state) return;
    TcpFlowConfig cfg;
    cfg.capacity = static_cast<uint32_t>(std::max<size_t>(n, 1024));
    table = std::make_unique<TcpFlowTable>(cfg);
    cap = table->capacity();
    st = map<mon::MonState>(cap, pages);
    Frame f;
    init_frame(f);
    TcpSegment s;
    BenchEnv env{guest};
    mon::MonParams p;
    auto run = [&](const Tuple& t, bool c2s, uint8_t fl, uint32_t seq, uint32_t ack) {
      fill(f, t, c2s, fl, seq, ack, 0, 1);
      to_segment(f, 0, s);
      const TrackResult r = table->track(s, now_ms);
      mon::mon_packet(st[r.slot].h, st[r.slot].c, s, r, table->conn(r.slot), now_us, c2s ? 0 : 1, env, p);
    };
    for (const Tuple& t : tuples) {
      run(t, true, tcpflag::kSyn, 100, 0);
      run(t, false, tcpflag::kSyn | tcpflag::kAck, 900, 101);
      run(t, true, tcpflag::kAck, 101, 901);
    }
  }
  ~Fixture() {
    auto len = [](size_t b) { return (b + (2u << 20) - 1) & ~size_t((2u << 20) - 1); };
    if (st) munmap(st, len(sizeof(mon::MonState) * cap));
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

// kPfLookup: the table's bulk lookup prefetches the state with its entry
// (add_companion, as MonitorStage); kPfBatch: one prefetch pass over the batch
// after track_bulk, then the loop (the stage before); kPfNone: no prefetch;
// kPfNext: while the monitor works on packet i, the entry and state lines of
// packet i of the next batch are prefetched (slots from the previous visit:
// an oracle, BM_NextBatch).
enum Prefetch : unsigned { kPfBatch, kPfLookup, kPfNone, kPfNext };

struct Config {
  bool table;    // parse + segment build + track_bulk (false: only the traffic generator)
  bool monitor;
  Pages pages;
  Prefetch pf;
  bool guest = false;  // the server is a running guest (BenchEnv)
};

// One configuration's fixture and its per-batch cycle counts.
struct Runner {
  Config cfg;
  std::unique_ptr<Fixture> fx;
  size_t k = 0;
  uint32_t tsv = 2;
  uint64_t batches = 0;
  std::vector<uint32_t> cyc;
  Frame frames[kBatch];
  TcpSegment segs[kBatch];
  TrackResult res[kBatch];
  uint16_t in_port[kBatch];
  Visit* vis[kBatch];

  Runner(size_t n, Config c) : cfg(c), fx(std::make_unique<Fixture>(n, c.pages, c.table, c.guest)) {
    for (auto& f : frames) init_frame(f);
    if (c.monitor && c.pf == kPfLookup) {  // the table's lookup prefetches the state
      fx->table->add_companion(fx->st, sizeof(mon::MonState), 0, mon::kMonWarmLines);
    }
    cyc.reserve(1u << 21);
  }

  void batch() {
    const size_t n = fx->visits.size();
    BenchEnv env{cfg.guest};
    mon::MonParams p;
    // A connection's ACK comes one round of visits after its data (2 ms at
    // 10k connections, 220 ms at 1M): to a guest receiver that is a silence
    // on every ACK. A running guest answers within the stall threshold.
    if (cfg.guest) p.guest_stall_us = 1'000'000'000;
    const uint64_t c0 = __rdtsc();
    unsigned m = 0;
    for (unsigned i = 0; i < kBatch; ++i) {
      Visit& v = fx->visits[k];
      vis[i] = &v;
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
      if (cfg.table && to_segment(frames[i], len, segs[m])) fx->table->prefetch(segs[m++].hash);  // as Pmd::track_flows
    }
    if (!cfg.table) {  // the generator alone: what the other two configurations subtract
      benchmark::ClobberMemory();
      m = kBatch;
    } else {
      fx->table->track_bulk(segs, m, fx->now_ms, res);
    }
    if (cfg.monitor) {
      const uint32_t now_us = fx->now_us;
      if (cfg.pf == kPfBatch)
        for (unsigned j = 0; j < m; ++j)
          if (res[j].tracked()) mon::mon_prefetch(&fx->st[res[j].slot]);
      for (unsigned i = 0; i < m; ++i) {
        if (cfg.pf == kPfNext) {  // packet i of the next batch: its entry and state
          const uint32_t ns = fx->visits[(k + i) % n].slot;
          if (ns != ~0u) {
            const char* e = reinterpret_cast<const char*>(&fx->table->conn(ns));
            __builtin_prefetch(e, 1);
            __builtin_prefetch(e + 64, 1);
            mon::mon_prefetch(&fx->st[ns]);
          }
          vis[i]->slot = res[i].slot;
        }
        if (!res[i].tracked()) continue;
        const uint32_t s = res[i].slot;
        const mon::MonOut o =
            mon::mon_packet(fx->st[s].h, fx->st[s].c, segs[i], res[i], fx->table->conn(s), now_us, in_port[i], env, p);
        benchmark::DoNotOptimize(o);
      }
    }
    benchmark::DoNotOptimize(res);
    const uint64_t dc = __rdtsc() - c0;
    if (cyc.size() < cyc.capacity()) cyc.push_back(static_cast<uint32_t>(std::min<uint64_t>(dc, ~0u)) / m);
    fx->now_us += 7;  // ~ the time a 32-packet batch takes at line rate
    if ((++batches & 63) == 0) {
      if (fx->table) fx->table->tick(fx->now_ms + 1);
      ++fx->now_ms;
      ++tsv;
    }
  }
  double median() {
    std::vector<uint32_t> v = cyc;  // keeps the samples in order for mean() and later batches
    return median_of(v);
  }
  double mean() const {
    return cyc.empty() ? 0 : double(std::accumulate(cyc.begin(), cyc.end(), uint64_t(0))) / double(cyc.size());
  }
};

// Runs the configurations round robin, kChunk batches each, one benchmark
// iteration per batch.
void interleave(benchmark::State& st, std::vector<std::unique_ptr<Runner>>& rs) {
  for (auto& r : rs) r->cyc.clear();
  size_t it = 0;
  for (auto _ : st) {
    rs[(it / kChunk) % rs.size()]->batch();
    ++it;
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["tsc_ghz"] = tsc_hz() / 1e9;
}

std::vector<std::unique_ptr<Runner>> g_cost;
size_t g_cost_n = 0;
bool g_cost_guest = false;

// 1M-connection runners of one benchmark, one per configuration, built on
// its first call (BM_Cost's runners are released first: memory).
std::vector<std::unique_ptr<Runner>>& runners_1m(std::vector<std::unique_ptr<Runner>>& rs,
                                                 std::initializer_list<Config> cfgs) {
  if (rs.empty()) {
    g_cost.clear();
    g_cost_n = 0;
    for (const Config& c : cfgs) rs.push_back(std::make_unique<Runner>(1'000'000, c));
  }
  return rs;
}

void BM_Cost(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  const bool guest = st.range(1) != 0;
  if (g_cost_n != n || g_cost_guest != guest) {
    g_cost.clear();
    g_cost.push_back(std::make_unique<Runner>(n, Config{false, false, kThp, kPfNone}));  // generator only
    g_cost.push_back(std::make_unique<Runner>(n, Config{true, false, kThp, kPfNone}));   // + parse + lookup
    // + monitor, as MonitorStage (the server a running guest if `guest`)
    g_cost.push_back(std::make_unique<Runner>(n, Config{true, true, kThp, kPfLookup, guest}));
    g_cost_n = n;
    g_cost_guest = guest;
  }
  interleave(st, g_cost);
  const double g = g_cost[0]->median(), b = g_cost[1]->median(), m = g_cost[2]->median();
  st.counters["guest"] = guest;
  st.counters["gen_cyc"] = g;
  st.counters["base_cyc"] = b;
  st.counters["mon_cyc"] = m;
  st.counters["table_adds_cyc"] = b - g;  // parse + segment build + lookup/track
  st.counters["adds_cyc"] = m - b;        // the monitor
  st.counters["total_adds_cyc"] = m - g;  // parse + lookup + monitor
  st.counters["gen_cyc_mean"] = g_cost[0]->mean();
  st.counters["base_cyc_mean"] = g_cost[1]->mean();
  st.counters["mon_cyc_mean"] = g_cost[2]->mean();
  st.counters["conns"] = g_cost[2]->fx->table->size();
  st.counters["table_bytes_per_conn"] = g_cost[2]->fx->table->bytes_per_conn();
  st.counters["monitor_bytes_per_conn"] = double(sizeof(mon::MonState));
}
BENCHMARK(BM_Cost)->ArgsProduct({{1, 10'000, 1'000'000}, {0, 1}})->Unit(benchmark::kMicrosecond)->MinTime(3);

void BM_Variants(benchmark::State& st) {
  static std::vector<std::unique_ptr<Runner>> store;
  auto& rs = runners_1m(store, {{true, true, k4K, kPfNone}, {true, true, k4K, kPfBatch}, {true, true, k4K, kPfLookup},
                                {true, true, kThp, kPfNone}, {true, true, kThp, kPfBatch}, {true, true, kThp, kPfLookup},
                                {true, true, kHugetlb, kPfNone}, {true, true, kHugetlb, kPfBatch},
                                {true, true, kHugetlb, kPfLookup}, {true, false, kThp, kPfNone}});
  interleave(st, rs);
  for (size_t i = 0; i + 1 < rs.size(); ++i) st.counters["v" + std::to_string(i) + "_cyc"] = rs[i]->median();
  st.counters["base_cyc"] = rs.back()->median();
}
BENCHMARK(BM_Variants)->Unit(benchmark::kMicrosecond)->MinTime(5);

// What prefetching across batches would give (the PMD would have to receive
// and parse batch N+1 before the stages run on batch N): at 1M, + monitor
// with the state prefetched by the table's lookup (as the stage) against
// the entry and state lines of the next batch prefetched one packet per
// packet of the monitor's loop (kPfNext; slots from the previous visit, as
// a flow cache would give them). Counters as BM_Cost: *_adds_cyc over the
// generator alone.
void BM_NextBatch(benchmark::State& st) {
  static std::vector<std::unique_ptr<Runner>> store;
  auto& rs = runners_1m(store, {{false, false, kThp, kPfNone}, {true, false, kThp, kPfNone},
                                {true, true, kThp, kPfLookup}, {true, true, kThp, kPfNext}});
  interleave(st, rs);
  const double g = rs[0]->median();
  st.counters["table_adds_cyc"] = rs[1]->median() - g;
  st.counters["lookup_total_adds_cyc"] = rs[2]->median() - g;
  st.counters["next_total_adds_cyc"] = rs[3]->median() - g;
}
BENCHMARK(BM_NextBatch)->Unit(benchmark::kMicrosecond)->MinTime(5);

// The memory floor (BM_Lines/lines/mode/work): cycles per item of a
// 32-item batch whose items each read and write `lines` cache lines of a
// 512 MB THP-hinted array (DRAM at 1M connections), plus `work` dependent
// multiply-adds per item (compute to overlap with; ~4 cycles each). mode 0: every line of
// the batch prefetched first, then the items processed (what the table's
// lookup_bulk + companions do); 1: each item's lines prefetched kDist items
// ahead (software pipeline); 2: no prefetch; 3: as 0 but an item's lines
// adjacent in one random 512-byte slot (one connection's state) instead of
// independent random lines. Counters: cyc (per item, median batch),
// cyc_per_line. The slope of cyc over lines in mode 0 is the cost of one
// more DRAM line per packet (docs/monitor.md "Cost").
void BM_Lines(benchmark::State& st) {
  const unsigned lines = unsigned(st.range(0)), mode = unsigned(st.range(1)), work = unsigned(st.range(2));
  constexpr size_t kSlots = 1u << 20, kStride = 512, kBytes = kSlots * kStride;
  constexpr unsigned kDist = 8;
  static char* mem = [] {
    void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, kBytes, MADV_HUGEPAGE);
    std::memset(p, 1, kBytes);
    return static_cast<char*>(p);
  }();
  static std::vector<uint32_t> idx = [] {
    std::vector<uint32_t> v(1u << 24);
    std::mt19937 g(7);
    for (auto& x : v) x = uint32_t(g() % (kBytes / 64));
    return v;
  }();
  size_t k = 0;
  std::vector<uint32_t> cyc;
  cyc.reserve(1u << 20);
  uint64_t acc = 1;
  for (auto _ : st) {
    if (k + kBatch * lines > idx.size()) k = 0;
    const uint32_t* ix = &idx[k];
    k += kBatch * lines;
    // mode 3: the item's lines adjacent, in one random 512-byte slot (a connection's state)
    auto addr = [&](unsigned i, unsigned l) {
      return mode == 3 ? mem + size_t(ix[i * lines] / 8) * 512 + 64 * l : mem + size_t(ix[i * lines + l]) * 64;
    };
    auto pf = [&](unsigned i) {
      for (unsigned l = 0; l < lines; ++l) __builtin_prefetch(addr(i, l), 1);
    };
    const uint64_t c0 = __rdtsc();
    if (mode == 0 || mode == 3)
      for (unsigned i = 0; i < kBatch; ++i) pf(i);
    else if (mode == 1)
      for (unsigned i = 0; i < kDist && i < kBatch; ++i) pf(i);
    for (unsigned i = 0; i < kBatch; ++i) {
      if (mode == 1 && i + kDist < kBatch) pf(i + kDist);
      uint64_t x = i;
      for (unsigned l = 0; l < lines; ++l) {
        uint64_t* w = reinterpret_cast<uint64_t*>(addr(i, l));
        x += *w;
        *w = x;
      }
      // Dependent within the item (~4 cycles each), independent of the other
      // items (as packets of different connections).
      for (unsigned j = 0; j < work; ++j) x = x * 0x9E3779B97F4A7C15ull + j;
      acc ^= x;
    }
    const uint64_t dc = __rdtsc() - c0;
    if (cyc.size() < cyc.capacity()) cyc.push_back(uint32_t(dc / kBatch));
  }
  benchmark::DoNotOptimize(acc);
  const double med = median_of(cyc);
  st.counters["cyc"] = med;
  st.counters["cyc_per_line"] = lines ? med / lines : 0;
}
BENCHMARK(BM_Lines)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 8, 10}, {0, 1, 2}, {0}})
    ->ArgsProduct({{1, 2, 3, 4, 5, 6, 7, 8}, {3}, {0}})
    ->ArgsProduct({{0, 4, 8}, {0, 1}, {25}})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);

}  // namespace

BENCHMARK_MAIN();
