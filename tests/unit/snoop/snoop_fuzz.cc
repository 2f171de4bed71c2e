// Fuzz target for the snoop stage: the input bytes choose the connection
// options and every step of SnoopSim (sender, guest, ring, control), and the
// reference model's properties (snoop_sim.h S1-S4) are asserted after each.
// With -DSNOOP_LIBFUZZER (clang -fsanitize=fuzzer) libFuzzer drives it;
// otherwise main() replays files given as arguments, or `--random N` inputs.
#include <rte_eal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/snoop/snoop_sim.h"

using namespace vsw;
using namespace vsw::test;

namespace {

rte_mempool* g_pool = nullptr;

void init_once() {
  if (g_pool) return;
  std::vector<std::string> a = {"fuzz", "--no-huge", "-m", "256", "--no-pci", "-l", "0",
                                "--file-prefix=snfz" + std::to_string(getpid()), "--log-level=lib.eal:error",
                                "--no-telemetry"};
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  if (rte_eal_init(int(argv.size()), argv.data()) < 0) std::abort();
  g_pool = pkt_pool_create("snfz", 16383, 256, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!g_pool) std::abort();
}

void run_one(const uint8_t* d, size_t n) {
  if (n < 8) return;
  SimOptions o;
  o.ts = d[0] & 1;
  o.sack = d[0] & 2;
  o.midstream = d[0] & 4;
  o.guest_ws = d[1] % 15;
  o.mss = 64 + (d[2] | (d[3] << 8)) % 1400;
  o.isn_s = uint32_t(d[4]) << 24 | 0xffff00u;
  o.buf_bytes = 2048 + uint32_t(d[5]) * 1024;
  o.guest_rbuf = 1000 + uint32_t(d[6]) * 512;
  SnoopSim sim(g_pool, o, d[7]);
  sim.set_total(1000 + uint32_t(d[2]) * 400);
  sim.handshake();
  for (size_t i = 8; i < n && sim.fail.empty(); ++i) {
    const uint8_t b = d[i];
    switch (b & 15) {
      case 0: case 1: case 2: sim.send_new(1 + (b >> 4) % 8); break;
      case 3: sim.send_new(2 + (b >> 4) % 6, true); break;
      case 4: sim.send_new(2 + (b >> 4) % 6, false, true); break;
      case 5: sim.send_new(2 + (b >> 4) % 4, false, false, true); break;
      case 6: sim.retransmit(1 + (b >> 4) % 3); break;
      case 7: case 8: sim.guest_run(1 + (b >> 4) * 3, b & 16, (b >> 5) == 7); break;
      case 9: sim.ring_cap_ = (b >> 4) * 3; break;
      case 10: sim.g_.app_reads = b & 16; break;
      case 11: sim.vm_port().up = b & 16; break;
      case 12: sim.stage().set_port(sim.ctx(), "vm", b & 16, 0); break;
      case 13: sim.guest_run(0, false, b & 16); break;
      default: sim.ctx().advance(1 + (b >> 4)); break;
    }
  }
  if (sim.fail.empty()) sim.drain(500);
  if (!sim.fail.empty()) {
    fprintf(stderr, "snoop fuzz: property violated: %s\n", sim.fail.c_str());
    std::abort();
  }
}

}  // namespace

#ifdef SNOOP_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  init_once();
  run_one(d, n);
  return 0;
}
#else
int main(int argc, char** argv) {
  init_once();
  if (argc >= 3 && std::string(argv[1]) == "--random") {
    std::mt19937_64 r(42);
    const int n = std::atoi(argv[2]);
    for (int i = 0; i < n; ++i) {
      std::vector<uint8_t> in(8 + r() % 400);
      for (auto& x : in) x = uint8_t(r());
      run_one(in.data(), in.size());
    }
    printf("snoop fuzz replay: %d random inputs, no violation\n", n);
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    std::vector<uint8_t> in((std::istreambuf_iterator<char>(f)), {});
    run_one(in.data(), in.size());
  }
  printf("snoop fuzz replay: %d inputs, no violation\n", argc - 1);
  return 0;
}
#endif
