// TCP flow engine cost per packet: parse + key/segment build + bulk
// lookup/update, at 1, 10k and 1M established connections, plus the memory
// each connection slot costs.
//
// Packet headers are rewritten into a small hot set of frame buffers (as a
// PMD sees freshly received mbufs), while connections are visited in random
// order, so at 1M the flow state comes from DRAM as it would in production.
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cc/checksum.h"
#include "bench/median.h"
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

// ---- DPDK's rte_hash as the reference for the lookup's memory cost ----
//
// BM_VsRteHash/N: the same random visiting order over N established
// connections, 32 keys a batch, hashes precomputed for both (so only the
// lookups and their memory are compared), four configurations alternated
// every kChunk batches in one run (a shared machine's load drifts), per-key
// cycles of the median batch:
//   ours_cyc       TcpFlowTable::lookup_bulk (validated: the key compared)
//   ours_state_cyc + one read and write in each of the two lines of the
//                  connection's 128-byte entry (what a tracking update touches;
//                  lookup_bulk prefetched them)
//   rte_cyc        rte_hash_lookup_with_hash_bulk_data (DPDK 22.11): a
//                  16-byte IPv4 5-tuple key (rte_hash's best case: it compares
//                  16-byte keys with one vector compare; our key is 40 bytes
//                  for IPv4 and IPv6), CRC signatures, sized for half load
//                  (as our index), keys added in creation order, data = the
//                  creation index
//   rte_state_cyc  + the same two-line touch of a 128-byte per-connection
//                  state array indexed by that data (THP hint, as our table),
//                  its lines prefetched for the whole batch after the lookup
// rte_hash's memory comes from EAL hugepages (--in-memory; falls back to
// --no-huge if the pool is short: counter rte_hugepages 0). Misses of
// either (ours_misses, rte_misses) must be 0.
struct alignas(16) Key16 {
  uint32_t src, dst;
  uint16_t sport, dport;
  uint8_t proto, pad[3];
};
static_assert(sizeof(Key16) == 16);

size_t free_hugepages() {
  std::ifstream f("/proc/meminfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("HugePages_Free:", 0) == 0) return std::stoul(line.substr(15));
  return 0;
}

// EAL for rte_hash's memory, initialised once, on first use. Returns whether
// its memory is hugepages (-1: EAL failed).
int eal_once() {
  static int hp = [] {
    const bool huge = free_hugepages() >= 256;  // 512 MB: the 1M table and its key store
    std::vector<std::string> a = {"bench_flow", "-l", "0", "--no-pci", "--no-telemetry", "--log-level=lib.eal:error",
                                  "--file-prefix=flowbench" + std::to_string(getpid())};
    if (huge) {
      a.push_back("--in-memory");
    } else {
      a.insert(a.end(), {"--no-huge", "-m", "1024"});
    }
    std::vector<char*> av;
    for (auto& x : a) av.push_back(x.data());
    // EAL pins the calling thread to its lcore (-l 0): keep the caller's
    // affinity (e.g. taskset) instead.
    cpu_set_t cpus;
    const bool have = sched_getaffinity(0, sizeof(cpus), &cpus) == 0;
    if (rte_eal_init(int(av.size()), av.data()) < 0) return -1;
    if (have) sched_setaffinity(0, sizeof(cpus), &cpus);
    return huge ? 1 : 0;
  }();
  return hp;
}

struct RefRun {
  std::vector<uint32_t> cyc;
  double median() { return median_of(cyc); }
};

void BM_VsRteHash(benchmark::State& st) {
  const int hp = eal_once();
  if (hp < 0) {
    st.SkipWithError("rte_eal_init failed");
    return;
  }
  const size_t n = static_cast<size_t>(st.range(0));
  Fixture fx(n);
  // Visiting order: every connection once per round, in random order (at
  // least a batch long: fewer connections repeat within it). Both tables
  // were filled in creation order (ours by the fixture's handshakes; rte_hash
  // below, data = creation index), so both find their entries and state at
  // random places; inserting into rte_hash in visiting order would hand it
  // consecutive key slots and state (its free-slot ring is FIFO).
  const size_t len = std::max<size_t>(n, kBatch);
  std::vector<FlowKey> keys(len);
  std::vector<uint32_t> hashes(len), sigs(len);
  std::vector<Key16> k16(len);
  auto key16 = [](const Tuple& t) { return Key16{t.client, t.server, t.cport, t.sport, kProtoTcp, {}}; };
  Frame f;
  init_frame(f);
  TcpSegment s;
  for (size_t i = 0; i < len; ++i) {
    const Tuple& t = fx.tuples[fx.order[i % n]];
    fill(f, t, true, tcpflag::kAck, 1, 1, kPayload, 1);
    to_segment(f, kPayload, s);
    keys[i] = s.key;
    hashes[i] = s.hash;
    k16[i] = key16(t);
  }
  const std::string name = "vsrte" + std::to_string(n);
  rte_hash_parameters hp_params{};
  hp_params.name = name.c_str();
  // Load as our index's (two buckets of 8 per slot): rte_hash at half load.
  hp_params.entries = static_cast<uint32_t>(std::max<size_t>(2 * n, 1024));
  hp_params.key_len = sizeof(Key16);
  hp_params.hash_func = rte_hash_crc;
  hp_params.hash_func_init_val = 0;
  hp_params.socket_id = 0;
  rte_hash* h = rte_hash_create(&hp_params);
  if (!h) {
    st.SkipWithError(("rte_hash_create failed: " + std::string(rte_strerror(rte_errno))).c_str());
    return;
  }
  for (size_t i = 0; i < len; ++i) sigs[i] = rte_hash_hash(h, &k16[i]);
  for (size_t j = 0; j < n; ++j) {  // creation order; data: the creation index
    const Key16 k = key16(fx.tuples[j]);
    if (rte_hash_add_key_with_hash_data(h, &k, rte_hash_hash(h, &k), reinterpret_cast<void*>(uintptr_t(j))) < 0) {
      rte_hash_free(h);
      st.SkipWithError("rte_hash_add_key failed");
      return;
    }
  }
  struct alignas(64) Entry {
    unsigned char b[128];
  };
  const size_t state_len = (sizeof(Entry) * n + (2u << 20) - 1) & ~size_t((2u << 20) - 1);
  void* mp = mmap(nullptr, state_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mp == MAP_FAILED) {
    rte_hash_free(h);
    st.SkipWithError("mmap failed");
    return;
  }
  madvise(mp, state_len, MADV_HUGEPAGE);
  std::memset(mp, 0, state_len);
  Entry* state = static_cast<Entry*>(mp);
  // One read and one write in each line of a 128-byte entry (bytes 32 and
  // 96: in our entry's counters and in its d[] line).
  auto touch = [](void* e, uint64_t& sum) {
    unsigned char* p = static_cast<unsigned char*>(e);
    for (size_t off : {size_t(32), size_t(96)}) {
      uint64_t v;
      std::memcpy(&v, p + off, 8);
      sum += v;
      ++v;
      std::memcpy(p + off, &v, 8);
    }
  };

  constexpr unsigned kChunk = 64;
  RefRun runs[4];
  for (auto& r : runs) r.cyc.reserve(1u << 20);
  size_t k = 0;
  uint64_t it = 0, rte_misses = 0, ours_misses = 0;
  uint32_t slots[kBatch];
  void* data[kBatch];
  const void* kp[kBatch];
  for (auto _ : st) {
    const unsigned cfg = unsigned(it++ / kChunk) % 4;
    if (k + kBatch > len) k = 0;
    const size_t base = k;
    k += kBatch;
    constexpr unsigned m = kBatch;
    uint64_t sum = 0;
    const uint64_t c0 = __rdtsc();
    if (cfg < 2) {
      fx.table->lookup_bulk(&keys[base], &hashes[base], m, slots);
      for (unsigned i = 0; i < m; ++i) {
        if (slots[i] == TcpFlowTable::kNoSlot) {
          ++ours_misses;
        } else if (cfg == 1) {
          touch(&fx.table->conn(slots[i]), sum);
        }
      }
    } else {
      for (unsigned i = 0; i < m; ++i) kp[i] = &k16[base + i];
      uint64_t hit = 0;
      rte_hash_lookup_with_hash_bulk_data(h, kp, &sigs[base], m, &hit, data);
      rte_misses += m - unsigned(__builtin_popcountll(hit));
      if (cfg == 3) {
        for (unsigned i = 0; i < m; ++i) {
          if (!(hit >> i & 1)) continue;
          const unsigned char* p = state[uintptr_t(data[i])].b;
          __builtin_prefetch(p, 1);
          __builtin_prefetch(p + 64, 1);
        }
        for (unsigned i = 0; i < m; ++i)
          if (hit >> i & 1) touch(state[uintptr_t(data[i])].b, sum);
      }
    }
    const uint64_t dc = __rdtsc() - c0;
    benchmark::DoNotOptimize(sum);
    benchmark::DoNotOptimize(slots);
    if (runs[cfg].cyc.size() < runs[cfg].cyc.capacity()) runs[cfg].cyc.push_back(uint32_t(dc / m));
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["ours_cyc"] = runs[0].median();
  st.counters["ours_state_cyc"] = runs[1].median();
  st.counters["rte_cyc"] = runs[2].median();
  st.counters["rte_state_cyc"] = runs[3].median();
  st.counters["ours_misses"] = double(ours_misses);
  st.counters["rte_misses"] = double(rte_misses);
  st.counters["rte_hugepages"] = hp;
  st.counters["ours_bytes_per_conn"] = fx.table->bytes_per_conn();
  rte_hash_free(h);
  munmap(mp, state_len);
}
BENCHMARK(BM_VsRteHash)->Arg(1)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond)->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
