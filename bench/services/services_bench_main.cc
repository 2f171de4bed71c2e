// Main of bench_services: the EAL without hugepages (mempools need it), then
// every benchmark linked in. The pool is shared: services_bench_pool().
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cc/pkt_meta.h"

rte_mempool* services_bench_pool() {
  static rte_mempool* p = vsw::pkt_pool_create("svcbench", 8191, 256, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return p;
}

int main(int argc, char** argv) {
  std::vector<std::string> a = {"bench", "--no-huge", "-m", "256", "--no-pci", "-l", "0",
                                "--file-prefix=svcbench" + std::to_string(getpid()), "--log-level=lib.eal:error",
                                "--no-telemetry"};
  std::vector<char*> ev;
  for (auto& s : a) ev.push_back(s.data());
  if (rte_eal_init(int(ev.size()), ev.data()) < 0) return 1;
  if (!services_bench_pool()) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  rte_eal_cleanup();
  return 0;
}
