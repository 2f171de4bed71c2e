// FDB lookup and learning cost at several table sizes.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "flowtable/fdb.h"

namespace {

std::vector<uint64_t> make_keys(size_t n) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> k(n);
  for (auto& x : k) {
    uint8_t mac[6];
    uint64_t r = rng();
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(r >> (8 * i));
    mac[0] &= 0xfe;
    x = vsw::Fdb::make_key(mac, 0);
  }
  return k;
}

void BM_FdbLookupBulk32(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  vsw::Fdb fdb({static_cast<uint32_t>(n), 300});
  auto keys = make_keys(n);
  for (size_t i = 0; i < n; ++i) fdb.learn(keys[i], static_cast<uint16_t>(i % 8), 1);
  uint16_t ports[32];
  size_t off = 0;
  for (auto _ : st) {
    if (off + 32 > n) off = 0;
    fdb.lookup_bulk(&keys[off], 32, ports);
    benchmark::DoNotOptimize(ports);
    off += 32;
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * 32);
}
BENCHMARK(BM_FdbLookupBulk32)->Arg(64)->Arg(8192)->Arg(1 << 20);

void BM_FdbLearnRefresh(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  vsw::Fdb fdb({static_cast<uint32_t>(n), 300});
  auto keys = make_keys(n);
  size_t i = 0;
  uint32_t now = 1;
  for (auto _ : st) {
    benchmark::DoNotOptimize(fdb.learn(keys[i], 1, now));
    if (++i == n) {
      i = 0;
      ++now;
    }
  }
  st.SetItemsProcessed(int64_t(st.iterations()));
}
BENCHMARK(BM_FdbLearnRefresh)->Arg(64)->Arg(8192)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
