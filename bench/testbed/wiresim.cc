// wiresim: link emulation between two DPDK ports (tap <-> tap, or a
// virtio-user port on a switch's vhost-user socket <-> a tap in a remote
// host's namespace). Per direction: loss, tail-drop queue with ECN marking
// (DCTCP step or RED), rate limit, delay, reordering. See README.md.
#include <rte_eal.h>
#include <rte_ethdev.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>

#include "bench/testbed/bridge.h"
#include "bench/testbed/clock.h"
#include "bench/testbed/link.h"

namespace tb {
namespace {

// "tap:iface=X[,mac=M]" or "virtio:path=P[,server=1][,queue_size=N]" -> vdev
// string for port index i; the devargs after ':' go to DPDK unchanged.
std::string vdev_for(const std::string& spec, int i, std::string* name) {
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon), args = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "tap")
    *name = "net_tap" + std::to_string(i);
  else if (kind == "virtio")
    *name = "net_virtio_user" + std::to_string(i);
  else
    throw std::invalid_argument("port spec must start with tap: or virtio: (" + spec + ")");
  return *name + (args.empty() ? "" : "," + args);
}

// Registers --NAME (both directions), --ab-NAME and --ba-NAME; the
// direction-specific value wins.
class DirOptions {
 public:
  DirOptions(CLI::App& app, LinkParams* p) : app_(app), p_(p) {}
  void add(const std::string& name, const std::string& help, std::function<void(LinkParams&, double)> set) {
    auto& v = vals_.emplace_back();
    app_.add_option("--" + name, v.all, help + " (both directions)");
    app_.add_option("--ab-" + name, v.ab, "a->b only");
    app_.add_option("--ba-" + name, v.ba, "b->a only");
    v.set = std::move(set);
  }
  void apply() {
    for (auto& v : vals_) {
      if (auto x = v.ab ? v.ab : v.all) v.set(p_[0], *x);
      if (auto x = v.ba ? v.ba : v.all) v.set(p_[1], *x);
    }
  }

 private:
  struct Val {
    std::optional<double> all, ab, ba;
    std::function<void(LinkParams&, double)> set;
  };
  CLI::App& app_;
  LinkParams* p_;
  std::deque<Val> vals_;  // stable addresses: CLI11 keeps pointers into these
};

void print_dir(const char* name, const LinkStage& s, const DirCounters& b) {
  const auto& c = s.counters();
  std::printf("wiresim %s: rx=%llu tx=%llu drop_loss=%llu drop_queue=%llu drop_aqm=%llu drop_full=%llu "
              "ce_marked=%llu ce_already=%llu reordered=%llu queue_max_pkts=%u port_rx=%llu port_tx=%llu\n",
              name, (unsigned long long)c.rx, (unsigned long long)c.tx, (unsigned long long)c.drop_loss,
              (unsigned long long)c.drop_queue, (unsigned long long)c.drop_aqm, (unsigned long long)c.drop_full,
              (unsigned long long)c.ce_marked, (unsigned long long)c.ce_already, (unsigned long long)c.reordered,
              c.queue_max_pkts, (unsigned long long)b.rx, (unsigned long long)b.tx);
}

}  // namespace
}  // namespace tb

int main(int argc, char** argv) {
  using tb::LinkParams;
  std::vector<std::string> eal, tool;
  tb::split_args(argc, argv, eal, tool);
  CLI::App app{"wiresim: link emulation (rate, delay, loss, reordering, queue, ECN) between two ports.\n"
               "usage: wiresim [EAL options] -- --port-a SPEC --port-b SPEC [link options]\n"
               "SPEC: tap:iface=NAME[,mac=MAC]  |  virtio:path=SOCK[,server=1][,queue_size=N]"};
  std::string spec_a, spec_b;
  double duration_s = 0, idle_sleep_us = 20;
  unsigned mbufs = 16383, burst = 32;
  uint64_t seed = 1;
  LinkParams lp[2];
  app.add_option("--port-a", spec_a, "port a")->required();
  app.add_option("--port-b", spec_b, "port b")->required();
  app.add_option("--duration", duration_s, "stop after this many seconds (0: until SIGINT/SIGTERM)");
  app.add_option("--idle-sleep-us", idle_sleep_us, "sleep after a poll that found nothing")
      ->check(CLI::Range(1.0, 10000.0));
  app.add_option("--mbufs", mbufs, "mbuf pool size (bounds packets queued + in flight)");
  app.add_option("--burst", burst, "rx/tx burst size")->check(CLI::Range(1u, 256u));
  app.add_option("--seed", seed, "seed for loss/reorder/RED draws (b->a uses seed+1)");
  tb::DirOptions d(app, lp);
  d.add("rate-mbit", "rate limit, Mbit/s, 0: none", [](LinkParams& p, double v) { p.rate_mbit = v; });
  d.add("burst-bytes", "token bucket depth, bytes", [](LinkParams& p, double v) { p.burst_bytes = v; });
  d.add("overhead-bytes", "bytes added per frame for the rate", [](LinkParams& p, double v) { p.overhead_bytes = v; });
  d.add("delay-ms", "one-way delay, ms (µs resolution)", [](LinkParams& p, double v) { p.delay_us = v * 1000; });
  d.add("loss", "loss probability 0..1", [](LinkParams& p, double v) { p.loss = v; });
  d.add("reorder", "reorder probability 0..1", [](LinkParams& p, double v) { p.reorder = v; });
  d.add("reorder-gap", "packets that overtake a reordered one",
        [](LinkParams& p, double v) { p.reorder_gap = static_cast<unsigned>(v); });
  d.add("reorder-hold-ms", "longest hold of a reordered packet, ms",
        [](LinkParams& p, double v) { p.reorder_hold_us = v * 1000; });
  d.add("queue-pkts", "queue limit, packets (tail drop)",
        [](LinkParams& p, double v) { p.queue_pkts = static_cast<unsigned>(v); });
  d.add("queue-bytes", "queue limit, bytes, 0: none",
        [](LinkParams& p, double v) { p.queue_bytes = static_cast<uint64_t>(v); });
  d.add("ecn-k-pkts", "CE-mark when more than K packets are queued, 0: off",
        [](LinkParams& p, double v) { p.ecn_k_pkts = static_cast<unsigned>(v); });
  d.add("ecn-k-bytes", "CE-mark when more than K bytes are queued, 0: off",
        [](LinkParams& p, double v) { p.ecn_k_bytes = static_cast<uint64_t>(v); });
  d.add("red-min", "RED min threshold, packets (average queue)", [](LinkParams& p, double v) { p.red_min = v; });
  d.add("red-max", "RED max threshold, packets, 0: RED off", [](LinkParams& p, double v) { p.red_max = v; });
  d.add("red-maxp", "RED marking probability at max", [](LinkParams& p, double v) { p.red_maxp = v; });
  d.add("red-wq", "RED averaging weight", [](LinkParams& p, double v) { p.red_wq = v; });
  d.add("nonect-drop", "1: an AQM mark drops a Not-ECT packet; 0: passes it",
        [](LinkParams& p, double v) { p.nonect_drop = v != 0; });
  std::vector<std::string> rev(tool.rbegin(), tool.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    std::string name_a, name_b;
    const std::string va = tb::vdev_for(spec_a, 0, &name_a), vb = tb::vdev_for(spec_b, 1, &name_b);
    tb::eal_init(argv[0], eal, {va, vb});
    d.apply();  // after eal_init: LinkStage converts times with the TSC rate
    lp[0].seed = seed;
    lp[1].seed = seed + 1;
    for (auto& p : lp)
      if (p.red_max > 0 && p.red_min >= p.red_max) throw std::invalid_argument("red-min must be < red-max");
    auto& stop = tb::stop_flag_on_signals();
    rte_mempool* pool = tb::make_pool("tb_wiresim", mbufs);
    const uint16_t pa = tb::open_port(tb::PortSetup{name_a, 1024, 0, 0}, pool);
    const uint16_t pb = tb::open_port(tb::PortSetup{name_b, 1024, 0, 0}, pool);
    {  // stages and bridge hold mbufs: release them before the ports and the EAL go
    tb::LinkStage ab(lp[0]), ba(lp[1]);
    tb::BridgeConfig bc;
    bc.port[0] = pa;
    bc.port[1] = pb;
    bc.burst = burst;
    bc.idle_sleep_us = idle_sleep_us;
    tb::Bridge br(bc, &ab, &ba, nullptr);
    std::printf("wiresim: running a->b rate=%.3f Mbit/s delay=%.3f ms; b->a rate=%.3f Mbit/s delay=%.3f ms\n",
                lp[0].rate_mbit, lp[0].delay_us / 1000, lp[1].rate_mbit, lp[1].delay_us / 1000);
    std::fflush(stdout);
    const uint64_t t0 = tb::now_tsc();
    br.run(stop, duration_s > 0 ? t0 + tb::us_to_tsc(duration_s * 1e6) : tb::kNever);
    tb::print_dir("a->b", ab, br.counters(0));
    tb::print_dir("b->a", ba, br.counters(1));
    std::printf("wiresim loop: loops=%llu sleeps=%llu\n", (unsigned long long)br.loops(),
                (unsigned long long)br.sleeps());
    std::fflush(stdout);
    }
    rte_eth_dev_stop(pa);
    rte_eth_dev_stop(pb);
    rte_eth_dev_close(pa);
    rte_eth_dev_close(pb);
    rte_eal_cleanup();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wiresim: %s\n", e.what());
    return 1;
  }
  return 0;
}
