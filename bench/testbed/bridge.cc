#include "bench/testbed/bridge.h"

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <sched.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <stdexcept>

#include "bench/testbed/clock.h"

namespace tb {

// ---- EAL and ports --------------------------------------------------------

void split_args(int argc, char** argv, std::vector<std::string>& eal, std::vector<std::string>& tool) {
  int dd = -1;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      dd = i;
      break;
    }
  for (int i = 1; i < argc; ++i) {
    if (dd >= 0 && i < dd) eal.emplace_back(argv[i]);
    if (dd < 0 || i > dd) tool.emplace_back(argv[i]);
  }
}

static std::string allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return "0";
  std::string s;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    if (!s.empty()) s += ',';
    s += std::to_string(c);
  }
  return s.empty() ? "0" : s;
}

void eal_init(const std::string& prog, const std::vector<std::string>& eal_args,
              const std::vector<std::string>& vdevs) {
  std::vector<std::string> args{prog};
  bool has_cores = false;
  for (const auto& a : eal_args) {
    if (a == "-l" || a == "-c" || a.rfind("--lcores", 0) == 0) has_cores = true;
    args.push_back(a);
  }
  if (!has_cores) args.push_back("--lcores=0@(" + allowed_cpus() + ")");
  args.push_back("--no-pci");
  for (const auto& v : vdevs) {
    args.push_back("--vdev");
    args.push_back(v);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0)
    throw std::runtime_error("rte_eal_init failed: " + std::string(rte_strerror(rte_errno)));
  clock_init();
}

rte_mempool* make_pool(const char* name, unsigned n_mbufs) {
  rte_mempool* p = rte_pktmbuf_pool_create(name, n_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (!p) throw std::runtime_error(std::string("mbuf pool: ") + rte_strerror(rte_errno));
  return p;
}

uint16_t open_port(const PortSetup& s, rte_mempool* pool) {
  uint16_t port;
  if (rte_eth_dev_get_port_by_name(s.dev_name.c_str(), &port) != 0)
    throw std::runtime_error("no port named " + s.dev_name);
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0) throw std::runtime_error("dev_info " + s.dev_name);
  if ((info.rx_offload_capa & s.rx_offloads) != s.rx_offloads ||
      (info.tx_offload_capa & s.tx_offloads) != s.tx_offloads)
    throw std::runtime_error("offloads not supported by " + s.dev_name);
  rte_eth_conf conf{};
  conf.rxmode.offloads = s.rx_offloads;
  conf.txmode.offloads = s.tx_offloads;
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0) throw std::runtime_error("configure " + s.dev_name);
  uint16_t nrx = s.ring_size, ntx = s.ring_size;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
  const int sock = rte_eth_dev_socket_id(port) < 0 ? 0 : rte_eth_dev_socket_id(port);
  if (rte_eth_rx_queue_setup(port, 0, nrx, sock, nullptr, pool) != 0)
    throw std::runtime_error("rx queue " + s.dev_name);
  if (rte_eth_tx_queue_setup(port, 0, ntx, sock, nullptr) != 0) throw std::runtime_error("tx queue " + s.dev_name);
  if (rte_eth_dev_start(port) != 0) throw std::runtime_error("start " + s.dev_name);
  return port;
}

// ---- FIFO and pass-through stage ------------------------------------------

MbufFifo::MbufFifo(unsigned capacity_pow2) : ring_(capacity_pow2), mask_(capacity_pow2 - 1) {
  if (capacity_pow2 == 0 || (capacity_pow2 & mask_) != 0) throw std::invalid_argument("fifo size not 2^n");
}
MbufFifo::~MbufFifo() {
  while (!empty()) rte_pktmbuf_free(pop());
}
bool MbufFifo::push(rte_mbuf* m) {
  if (size() > mask_) return false;
  ring_[tail_++ & mask_] = m;
  return true;
}

void FifoStage::push(rte_mbuf** pkts, unsigned n, uint64_t) {
  rte_mbuf* out[128];  // a 64 KB TSO packet with an MSS >= 512 fits
  for (unsigned i = 0; i < n; ++i) {
    const unsigned k = transform(pkts[i], out, 128);
    for (unsigned j = 0; j < k; ++j)
      if (!fifo_.push(out[j])) {
        rte_pktmbuf_free(out[j]);
        ++dropped_;
      }
  }
}
unsigned FifoStage::pull(rte_mbuf** out, unsigned max, uint64_t) {
  unsigned k = 0;
  while (k < max && !fifo_.empty()) out[k++] = fifo_.pop();
  return k;
}
uint64_t FifoStage::next_due(uint64_t now) const { return fifo_.empty() ? kNever : now; }
unsigned FifoStage::transform(rte_mbuf* m, rte_mbuf** out, unsigned) {
  out[0] = m;
  return 1;
}

// ---- Bridge ---------------------------------------------------------------

Bridge::Bridge(const BridgeConfig& cfg, Stage* s01, Stage* s10, Gate* gate) : cfg_(cfg), gate_(gate) {
  dir_[0].stage = s01;
  dir_[0].in = cfg.port[0];
  dir_[0].out = cfg.port[1];
  dir_[1].stage = s10;
  dir_[1].in = cfg.port[1];
  dir_[1].out = cfg.port[0];
  for (auto& d : dir_) d.pending.reserve(cfg.burst);
}

Bridge::~Bridge() {
  for (auto& d : dir_)
    for (auto* m : d.pending) rte_pktmbuf_free(m);
}

unsigned Bridge::service(Dir& d, uint64_t now) {
  unsigned work = 0;
  rte_mbuf* pkts[256];
  const unsigned burst = std::min(cfg_.burst, 256u);
  // Egress first: what the egress ring refused last time goes before
  // anything newer, so packet order is kept.
  if (!d.pending.empty()) {
    const uint16_t sent = rte_eth_tx_burst(d.out, 0, d.pending.data(), static_cast<uint16_t>(d.pending.size()));
    d.c.tx += sent;
    work += sent;
    d.pending.erase(d.pending.begin(), d.pending.begin() + sent);
  }
  if (d.pending.empty()) {
    const unsigned n = d.stage->pull(pkts, burst, now);
    if (n > 0) {
      const uint16_t sent = rte_eth_tx_burst(d.out, 0, pkts, static_cast<uint16_t>(n));
      d.c.tx += sent;
      work += sent;
      if (sent < n) {
        ++d.c.tx_retry;
        d.pending.assign(pkts + sent, pkts + n);
      }
    }
  }
  const unsigned want = std::min(burst, d.stage->room());
  if (want > 0) {
    const uint16_t n = rte_eth_rx_burst(d.in, 0, pkts, static_cast<uint16_t>(want));
    if (n > 0) {
      d.c.rx += n;
      work += n;
      d.stage->push(pkts, n, now);
    }
  }
  return work;
}

void Bridge::run(const std::atomic<bool>& stop, uint64_t deadline) {
  const uint64_t stall_min = stall_min_us_ > 0 ? us_to_tsc(stall_min_us_) : 0;
  uint64_t expect = 0;  // when this loop should be back (0: not known, e.g. after a closed gate)
  auto stall = [&](uint64_t cycles) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    stalls_.push_back(Stall{uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000,
                            static_cast<uint64_t>(tsc_to_us(cycles))});
  };
  while (!stop.load(std::memory_order_relaxed)) {
    uint64_t now = now_tsc();
    if (now >= deadline) break;
    if (stall_min && expect && now > expect + stall_min) stall(now - expect);
    expect = 0;
    ++loops_;
    uint64_t change = kNever;
    if (gate_ && !gate_->open(now, &change)) {
      // Descheduled: touch neither port. Sleep through the whole off period
      // (in chunks, so a signal or the deadline is noticed).
      ++sleeps_;
      sleep_until(std::min(change, deadline), 100000);
      continue;
    }
    unsigned work = service(dir_[0], now) + service(dir_[1], now);
    if (work > 0) {
      if (stall_min) {
        // A pass that took this long was preempted (moving a burst takes
        // tens to hundreds of us, the guest stack's share included).
        expect = now_tsc();
        if (expect - now > stall_min) stall(expect - now);
      }
      continue;
    }
    // Idle: sleep for the idle period, but wake for a stage's due packet, a
    // gate transition or the deadline, whichever comes first.
    now = now_tsc();
    uint64_t wake = now + us_to_tsc(cfg_.idle_sleep_us);
    for (auto& d : dir_)  // an egress that refused packets is retried after the idle sleep, not spun on
      if (d.pending.empty()) wake = std::min(wake, d.stage->next_due(now));
    wake = std::min({wake, change, deadline});
    if (wake > now) {
      ++sleeps_;
      sleep_until(wake, cfg_.idle_sleep_us);
    }
    if (stall_min) expect = std::max(wake, now);
  }
}

static std::atomic<bool> g_stop{false};
static void on_signal(int) { g_stop.store(true); }

std::atomic<bool>& stop_flag_on_signals() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  return g_stop;
}

}  // namespace tb
