// loopgen: closed-loop (PVP-like) load generator for a switch with two
// vhost-user ports. Two virtio-user ports on one lcore; an initial burst is
// injected on both, then every packet received on one port is sent back out
// of the other one after its IPv4 source address and UDP source port were
// rewritten from a rotating per-direction counter modulo --flows. Ethernet
// addresses are left alone: a packet sent from port 0 carries (src = port 0,
// dst = port 1), arrives at port 1, leaves port 0 again, so each direction of
// the switch carries its own loop. Rate = packets received on both ports over
// a window after a warm-up; one phase per --flows value. See README.md.
//
// --proto tcp: every frame is a TCP data segment of a real-looking
// connection, for switches that keep per-connection state (vswitch's TCP
// stages). Flow f is the connection A_f:sport_f <-> B:5001; frames injected
// on port 0 carry A->B data, those of port 1 B->A data (a frame keeps its
// direction: Ethernet addresses are never rewritten). Each send carries the
// next sequence number of its (direction, flow) and acknowledges what the
// loop has received of the other direction, so a tracker sees in-order data
// both ways. TCP checksums are left 0 (the switch does not verify them).
// Frames that are not the loop's own data (e.g. ACKs a stage emitted) are
// counted as foreign and dropped, so the loop's population stays constant.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace loopgen {
namespace {

constexpr unsigned kMaxBurst = 64;
constexpr uint32_t kSrcBase = 0x0a000000;  // 10.0.0.0/8: room for 16M flows
constexpr uint32_t kDstAddr = 0x0a800001;  // 10.128.0.1
constexpr uint16_t kDstPort = 5001;

struct Options {
  std::array<std::string, 2> vhost;
  bool server = false;
  unsigned queue_size = 1024, inject = 512, burst = 32, frame = 64;
  std::vector<uint64_t> flows = {1};
  bool tcp = false;
  double warmup_s = 3, window_s = 10, slice_ms = 10;
  int watch_pid = 0;
  std::string hook;
};

volatile sig_atomic_t g_quit = 0;
void on_signal(int) { g_quit = 1; }

// Splits argv at the first "--": EAL arguments before, ours after.
void split_args(int argc, char** argv, std::vector<std::string>& eal, std::vector<std::string>& tool) {
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) eal.emplace_back(argv[i]);
  for (++i; i < argc; ++i) tool.emplace_back(argv[i]);
}

// RFC 1624 eq. 3 incremental update of a one's complement checksum when a
// 32-bit field changes from `from` to `to` (all in network byte order).
inline uint16_t csum_replace4(uint16_t check, uint32_t from, uint32_t to) {
  uint32_t s = static_cast<uint16_t>(~check);
  s += static_cast<uint16_t>(~(from >> 16)) + static_cast<uint16_t>(~from & 0xffff);
  s += (to >> 16) + (to & 0xffff);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

struct FlowHdrs {
  rte_ipv4_hdr* ip;
  rte_udp_hdr* udp;  // UDP mode
  rte_tcp_hdr* tcp;  // TCP mode
  uint32_t payload;  // TCP payload bytes
};

// Our own frames only: Ethernet + option-less IPv4 + UDP (or TCP with data
// and no options), no VLAN.
inline bool locate(rte_mbuf* m, bool tcp, FlowHdrs* h) {
  const size_t l4 = tcp ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr);
  if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + l4) return false;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return false;
  h->ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  if (h->ip->version_ihl != RTE_IPV4_VHL_DEF || h->ip->next_proto_id != (tcp ? IPPROTO_TCP : IPPROTO_UDP))
    return false;
  if (!tcp) {
    h->udp = reinterpret_cast<rte_udp_hdr*>(h->ip + 1);
    return true;
  }
  h->tcp = reinterpret_cast<rte_tcp_hdr*>(h->ip + 1);
  const uint32_t tot = rte_be_to_cpu_16(h->ip->total_length);
  if (h->tcp->data_off != (5 << 4) || tot <= sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr)) return false;
  h->payload = tot - static_cast<uint32_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr));
  return true;
}

// Rewrites the flow fields of one packet to flow number f.
inline void set_flow(const FlowHdrs& h, uint32_t f) {
  const uint32_t src = rte_cpu_to_be_32(kSrcBase + f);
  h.ip->hdr_checksum = csum_replace4(h.ip->hdr_checksum, h.ip->src_addr, src);
  h.ip->src_addr = src;
  h.udp->src_port = rte_cpu_to_be_16(static_cast<uint16_t>(0x8000 | (f & 0x7fff)));
}

rte_mbuf* build_frame(rte_mempool* pool, const rte_ether_addr& src, const rte_ether_addr& dst, unsigned len,
                      bool tcp, bool reverse) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) throw std::runtime_error("mbuf pool exhausted while injecting");
  char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(len));
  if (p == nullptr) throw std::runtime_error("frame does not fit in an mbuf");
  std::memset(p, 0, len);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
  eth->src_addr = src;
  eth->dst_addr = dst;
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(len - sizeof(*eth)));
  ip->time_to_live = 64;
  ip->next_proto_id = tcp ? IPPROTO_TCP : IPPROTO_UDP;
  ip->src_addr = rte_cpu_to_be_32(reverse ? kDstAddr : kSrcBase);
  ip->dst_addr = rte_cpu_to_be_32(reverse ? kSrcBase : kDstAddr);
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  if (tcp) {
    auto* th = reinterpret_cast<rte_tcp_hdr*>(ip + 1);
    th->src_port = rte_cpu_to_be_16(reverse ? kDstPort : 0x8000);
    th->dst_port = rte_cpu_to_be_16(reverse ? 0x8000 : kDstPort);
    th->data_off = 5 << 4;
    th->tcp_flags = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG;
    th->rx_win = rte_cpu_to_be_16(65535);
    return m;
  }
  auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
  udp->src_port = rte_cpu_to_be_16(0x8000);
  udp->dst_port = rte_cpu_to_be_16(kDstPort);
  udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(len - sizeof(*eth) - sizeof(*ip)));
  udp->dgram_cksum = 0;  // no UDP checksum (allowed for IPv4)
  return m;
}

// Run time (ns on CPU) and run-queue wait of one task, from schedstat.
struct TaskTime {
  uint64_t run_ns = 0, wait_ns = 0;
  std::string comm;
};

bool read_task(const std::string& dir, TaskTime* t) {
  std::ifstream s(dir + "/schedstat");
  if (!(s >> t->run_ns >> t->wait_ns)) return false;
  std::ifstream c(dir + "/comm");
  std::getline(c, t->comm);
  std::replace(t->comm.begin(), t->comm.end(), ' ', '_');
  return true;
}

std::map<long, TaskTime> read_tasks(int pid) {
  std::map<long, TaskTime> out;
  const std::string base = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(base.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    TaskTime t;
    if (read_task(base + "/" + e->d_name, &t)) out[std::strtol(e->d_name, nullptr, 10)] = t;
  }
  closedir(d);
  return out;
}

struct PortCounters {
  uint64_t rx = 0, tx = 0, rx_bytes = 0, foreign = 0;
};

// One snapshot of everything a window is computed from.
struct Snapshot {
  uint64_t tsc = 0, busy_cycles = 0;
  std::array<PortCounters, 2> port{};
  TaskTime self;
  std::map<long, TaskTime> watched;
};

class LoopGen {
 public:
  LoopGen(const Options& o, rte_mempool* pool) : o_(o), pool_(pool) {}

  void setup_ports() {
    for (uint16_t p = 0; p < 2; ++p) {
      rte_eth_conf conf{};
      if (rte_eth_dev_configure(p, 1, 1, &conf) != 0) throw std::runtime_error("configure port failed");
      uint16_t nrx = static_cast<uint16_t>(o_.queue_size), ntx = nrx;
      rte_eth_dev_adjust_nb_rx_tx_desc(p, &nrx, &ntx);
      const int sock = rte_eth_dev_socket_id(p);
      if (rte_eth_rx_queue_setup(p, 0, nrx, sock, nullptr, pool_) != 0 ||
          rte_eth_tx_queue_setup(p, 0, ntx, sock, nullptr) != 0)
        throw std::runtime_error("queue setup failed");
      if (rte_eth_dev_start(p) != 0) throw std::runtime_error("port start failed");
      rte_eth_macaddr_get(p, &mac_[p]);
    }
  }

  void wait_links(double timeout_s) {
    const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(timeout_s * rte_get_tsc_hz());
    for (;;) {
      rte_eth_link l0{}, l1{};
      rte_eth_link_get_nowait(0, &l0);
      rte_eth_link_get_nowait(1, &l1);
      if (l0.link_status && l1.link_status) return;
      if (rte_rdtsc() > end || g_quit) throw std::runtime_error("links did not come up (switch not connected?)");
      rte_delay_ms(50);
    }
  }

  // Sends o.inject frames from each port; port p's frames go to port 1-p.
  void inject() {
    const unsigned len = o_.frame - RTE_ETHER_CRC_LEN;
    for (uint16_t p = 0; p < 2; ++p) {
      unsigned sent = 0;
      const uint64_t end = rte_rdtsc() + 5 * rte_get_tsc_hz();
      while (sent < o_.inject) {
        rte_mbuf* b[kMaxBurst];
        const unsigned n = std::min<unsigned>(o_.burst, o_.inject - sent);
        for (unsigned i = 0; i < n; ++i) b[i] = build_frame(pool_, mac_[p], mac_[1 - p], len, o_.tcp, p == 1);
        unsigned k = 0;
        while (k < n && rte_rdtsc() < end) k += rte_eth_tx_burst(p, 0, b + k, static_cast<uint16_t>(n - k));
        if (k < n) {
          rte_pktmbuf_free_bulk(b + k, n - k);
          throw std::runtime_error("could not inject: tx ring stays full");
        }
        sent += n;
      }
    }
  }

  void set_flows(uint64_t n) {
    n_flows_ = static_cast<uint32_t>(n);
    ctr_ = {0, 0};
    if (o_.tcp)
      for (int d = 0; d < 2; ++d) {  // connections of earlier phases keep their sequence numbers
        if (snd_[d].size() < n) snd_[d].resize(n, 0);
        if (rcv_[d].size() < n) rcv_[d].resize(n, 0);
      }
  }

  // Polls until tsc `until` (or a signal). With `slices`, also records the
  // packets received in each slice of `slice_cycles` (a slice the loop did
  // not see end, e.g. while descheduled, is recorded as empty).
  void run_until(uint64_t until, std::vector<uint64_t>* slices = nullptr, uint64_t slice_cycles = 0) {
    uint64_t next = rte_rdtsc() + slice_cycles, base = rx_total();
    while (!g_quit) {
      const uint64_t now = rte_rdtsc();
      if (now >= until) return;
      if (slices != nullptr && now >= next) {
        const uint64_t rx = rx_total();
        slices->push_back(rx - base);
        base = rx;
        for (next += slice_cycles; next <= now; next += slice_cycles) slices->push_back(0);
      }
      service(0, now);
      service(1, rte_rdtsc());
    }
  }

  uint64_t rx_total() const { return cnt_[0].rx + cnt_[1].rx; }

  Snapshot snapshot() const {
    Snapshot s;
    s.tsc = rte_rdtsc();
    s.busy_cycles = busy_cycles_;
    s.port = cnt_;
    read_task("/proc/thread-self", &s.self);
    if (o_.watch_pid > 0) s.watched = read_tasks(o_.watch_pid);
    return s;
  }

  void drain_pending() {
    for (auto& p : pending_) {
      rte_pktmbuf_free_bulk(p.bufs.data(), p.n);
      p.n = 0;
    }
  }

 private:
  struct Pending {
    std::array<rte_mbuf*, kMaxBurst> bufs{};
    unsigned n = 0;
  };

  // Receives a burst on port `in` and sends it out of the other port. Frames
  // the other port's ring did not take wait in `pending_` (no generator drops).
  void service(uint16_t in, uint64_t t0) {
    const uint16_t out = 1 - in;
    Pending& pend = pending_[out];
    if (pend.n > 0) {
      const uint16_t k = rte_eth_tx_burst(out, 0, pend.bufs.data(), static_cast<uint16_t>(pend.n));
      cnt_[out].tx += k;
      pend.n -= k;
      if (pend.n > 0) {
        std::memmove(pend.bufs.data(), pend.bufs.data() + k, pend.n * sizeof(rte_mbuf*));
        busy_cycles_ += rte_rdtsc() - t0;
        return;
      }
    }
    rte_mbuf* b[kMaxBurst];
    uint16_t n = rte_eth_rx_burst(in, 0, b, static_cast<uint16_t>(o_.burst));
    if (n == 0) return;
    PortCounters& c = cnt_[in];
    uint32_t f = ctr_[in];
    uint16_t keep = 0;
    for (uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(b[i + 1], void*));
      FlowHdrs h;
      if (!locate(b[i], o_.tcp, &h)) {
        ++c.foreign;
        if (o_.tcp) {  // not the loop's own data: drop it, the population stays constant
          rte_pktmbuf_free(b[i]);
          continue;
        }
      } else if (o_.tcp) {
        set_tcp_flow(h, out, f);
        if (++f == n_flows_) f = 0;
      } else {
        set_flow(h, f);
        if (++f == n_flows_) f = 0;
      }
      ++c.rx;
      c.rx_bytes += b[i]->pkt_len;
      b[keep++] = b[i];
    }
    ctr_[in] = f;
    n = keep;
    if (n == 0) return;
    const uint16_t k = rte_eth_tx_burst(out, 0, b, n);
    cnt_[out].tx += k;
    if (k < n) {
      std::memcpy(pend.bufs.data(), b + k, (n - k) * sizeof(rte_mbuf*));
      pend.n = n - k;
    }
    busy_cycles_ += rte_rdtsc() - t0;
  }

  // TCP mode: a frame received on port `in` travels in direction d = 1 - in
  // (d = 0: A->B, injected on port 0). Records what the receiving end got of
  // its old flow, then makes it the next segment of flow f.
  void set_tcp_flow(const FlowHdrs& h, uint16_t d, uint32_t f) {
    const uint32_t old_a = rte_be_to_cpu_32(d == 0 ? h.ip->src_addr : h.ip->dst_addr) - kSrcBase;
    if (old_a < rcv_[d].size()) rcv_[d][old_a] = rte_be_to_cpu_32(h.tcp->sent_seq) + h.payload;
    const uint32_t a = rte_cpu_to_be_32(kSrcBase + f);
    const uint16_t port = rte_cpu_to_be_16(static_cast<uint16_t>(0x8000 | (f & 0x7fff)));
    if (d == 0) {
      h.ip->hdr_checksum = csum_replace4(h.ip->hdr_checksum, h.ip->src_addr, a);
      h.ip->src_addr = a;
      h.tcp->src_port = port;
    } else {
      h.ip->hdr_checksum = csum_replace4(h.ip->hdr_checksum, h.ip->dst_addr, a);
      h.ip->dst_addr = a;
      h.tcp->dst_port = port;
    }
    h.tcp->sent_seq = rte_cpu_to_be_32(snd_[d][f]);
    snd_[d][f] += h.payload;
    h.tcp->recv_ack = rte_cpu_to_be_32(rcv_[1 - d][f]);
  }

  const Options& o_;
  rte_mempool* pool_;
  std::array<std::vector<uint32_t>, 2> snd_, rcv_;  // TCP mode: per direction, per flow
  std::array<rte_ether_addr, 2> mac_{};
  std::array<Pending, 2> pending_{};
  std::array<PortCounters, 2> cnt_{};
  std::array<uint32_t, 2> ctr_{};
  uint32_t n_flows_ = 1;
  uint64_t busy_cycles_ = 0;
};

void run_hook(const Options& o, const char* what, size_t phase, uint64_t flows) {
  if (o.hook.empty()) return;
  const std::string cmd = o.hook + " " + what + " " + std::to_string(phase) + " " + std::to_string(flows);
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "loopgen: hook failed: %s\n", cmd.c_str());
}

// One RESULT line (key=value) per phase; run.sh parses these.
// Rate of the q-quantile slice in Mpps (nearest rank).
double slice_quantile_mpps(std::vector<uint64_t> v, double q, double slice_s) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return static_cast<double>(v[i]) / slice_s / 1e6;
}

void report(const Options& o, uint64_t flows, const Snapshot& a, const Snapshot& b,
            const std::vector<uint64_t>& slices) {
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const double secs = static_cast<double>(b.tsc - a.tsc) / hz;
  const double wall_ns = secs * 1e9;
  std::array<double, 2> pps{};
  uint64_t pkts = 0;
  for (int p = 0; p < 2; ++p) {
    const uint64_t rx = b.port[p].rx - a.port[p].rx;
    pps[p] = static_cast<double>(rx) / secs;
    pkts += rx;
  }
  const double busy = static_cast<double>(b.busy_cycles - a.busy_cycles);
  std::printf("RESULT flows=%lu frame=%u window_s=%.3f rx0_pps=%.0f rx1_pps=%.0f mpps=%.4f"
              " gen_cycles_per_pkt=%.1f gen_busy_pct=%.1f gen_cpu_pct=%.1f foreign=%lu",
              static_cast<unsigned long>(flows), o.frame, secs, pps[0], pps[1], (pps[0] + pps[1]) / 1e6,
              pkts ? busy / static_cast<double>(pkts) : 0.0, 100.0 * busy / static_cast<double>(b.tsc - a.tsc),
              100.0 * static_cast<double>(b.self.run_ns - a.self.run_ns) / wall_ns,
              static_cast<unsigned long>(b.port[0].foreign + b.port[1].foreign - a.port[0].foreign -
                                         a.port[1].foreign));
  // The watched process's busiest thread over the window: the switch's PMD.
  long best = -1;
  uint64_t best_run = 0, best_wait = 0;
  std::string comm = "-";
  for (const auto& [tid, t1] : b.watched) {
    auto it = a.watched.find(tid);
    if (it == a.watched.end()) continue;
    const uint64_t run = t1.run_ns - it->second.run_ns;
    if (best < 0 || run > best_run) {
      best = tid;
      best_run = run;
      best_wait = t1.wait_ns - it->second.wait_ns;
      comm = t1.comm;
    }
  }
  // sw_core_cycles_per_pkt: that thread's CPU time (in TSC cycles) per packet
  // forwarded, idle polls included: comparable across switches that busy-poll.
  if (best >= 0)
    std::printf(" sw_tid=%ld sw_comm=%s sw_cpu_pct=%.1f sw_wait_pct=%.1f sw_core_cycles_per_pkt=%.1f", best,
                comm.c_str(), 100.0 * static_cast<double>(best_run) / wall_ns,
                100.0 * static_cast<double>(best_wait) / wall_ns,
                pkts ? static_cast<double>(best_run) * hz / 1e9 / static_cast<double>(pkts) : 0.0);
  // Rates over short slices: on a shared machine the high quantiles show the
  // loop's rate while neither side was descheduled.
  const double slice_s = o.slice_ms / 1e3;
  std::printf(" slices=%zu slice_p50_mpps=%.4f slice_p90_mpps=%.4f", slices.size(),
              slice_quantile_mpps(slices, 0.5, slice_s), slice_quantile_mpps(slices, 0.9, slice_s));
  std::printf("\n");
  std::fflush(stdout);
}

int run(const char* argv0, std::vector<std::string> eal, const Options& o) {
  eal.insert(eal.begin(), argv0);
  eal.emplace_back("--single-file-segments");  // virtio-user shares memory with the backend
  for (int p = 0; p < 2; ++p) {
    std::string dev = "net_virtio_user" + std::to_string(p) + ",path=" + o.vhost[p] +
                      ",queues=1,queue_size=" + std::to_string(o.queue_size) + ",mac=02:bf:00:00:00:0" +
                      std::to_string(p + 1);
    if (o.server) dev += ",server=1";
    eal.emplace_back("--vdev");
    eal.push_back(dev);
  }
  std::vector<char*> av;
  for (auto& s : eal) av.push_back(s.data());
  if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) throw std::runtime_error("rte_eal_init failed");
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (rte_eth_dev_count_avail() != 2) throw std::runtime_error("expected exactly 2 ports");
  const unsigned n_mbufs = 4 * o.queue_size + 2 * o.inject + 4 * kMaxBurst + 1024;
  rte_mempool* pool = rte_pktmbuf_pool_create("loopgen", n_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) throw std::runtime_error("mbuf pool creation failed");
  LoopGen g(o, pool);
  g.setup_ports();
  g.wait_links(30);
  rte_delay_ms(200);  // let the switch finish bringing the ports up
  g.inject();
  const uint64_t hz = rte_get_tsc_hz();
  for (size_t i = 0; i < o.flows.size() && !g_quit; ++i) {
    g.set_flows(o.flows[i]);
    g.run_until(rte_rdtsc() + static_cast<uint64_t>(o.warmup_s * static_cast<double>(hz)));
    run_hook(o, "start", i, o.flows[i]);
    std::vector<uint64_t> slices;
    slices.reserve(static_cast<size_t>(o.window_s * 1e3 / o.slice_ms) + 16);
    const Snapshot a = g.snapshot();
    g.run_until(a.tsc + static_cast<uint64_t>(o.window_s * static_cast<double>(hz)), &slices,
                static_cast<uint64_t>(o.slice_ms * 1e-3 * static_cast<double>(hz)));
    const Snapshot b = g.snapshot();
    if (g_quit) break;
    report(o, o.flows[i], a, b, slices);
    run_hook(o, "end", i, o.flows[i]);
  }
  for (uint16_t p = 0; p < 2; ++p) rte_eth_dev_stop(p);
  g.drain_pending();
  for (uint16_t p = 0; p < 2; ++p) rte_eth_dev_close(p);
  rte_eal_cleanup();
  return g_quit ? 130 : 0;
}

}  // namespace
}  // namespace loopgen

int main(int argc, char** argv) {
  std::vector<std::string> eal, tool;
  loopgen::split_args(argc, argv, eal, tool);
  loopgen::Options o;
  CLI::App app{"loopgen: closed-loop forwarding load through a switch's two vhost-user ports.\n"
               "usage: loopgen [EAL options] -- --vhost0 SOCK --vhost1 SOCK [options]"};
  app.add_option("--vhost0", o.vhost[0], "vhost-user socket of the switch's first port")->required();
  app.add_option("--vhost1", o.vhost[1], "vhost-user socket of the switch's second port")->required();
  app.add_flag("--server", o.server, "virtio-user is the socket server (switch ports in client mode)");
  app.add_option("--queue-size", o.queue_size, "virtio ring size")->check(CLI::Range(64u, 4096u));
  app.add_option("--inject", o.inject, "frames injected per port at start")->check(CLI::Range(1u, 8192u));
  app.add_option("--burst", o.burst, "rx/tx burst size")->check(CLI::Range(1u, loopgen::kMaxBurst));
  app.add_option("--frame", o.frame, "frame size in bytes including the 4-byte FCS (not carried by virtio)")
      ->check(CLI::Range(64u, 1518u));
  app.add_option("--flows", o.flows, "distinct 5-tuples per direction; one measured phase per value")
      ->delimiter(',')
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24));
  app.add_option("--warmup", o.warmup_s, "seconds before each window")->check(CLI::NonNegativeNumber);
  app.add_option("--window", o.window_s, "measurement window, seconds")->check(CLI::PositiveNumber);
  app.add_option("--slice-ms", o.slice_ms, "also report p50/p90 rates over slices of this length")
      ->check(CLI::Range(1.0, 1000.0));
  app.add_option("--watch-pid", o.watch_pid, "report the CPU share of this process's busiest thread");
  app.add_option("--hook", o.hook, "run 'HOOK start|end PHASE FLOWS' around each window (outside it)");
  std::string proto = "udp";
  app.add_option("--proto", proto, "udp, or tcp: data segments of real-looking connections (see the header)")
      ->check(CLI::IsMember({"udp", "tcp"}));
  std::vector<std::string> rev(tool.rbegin(), tool.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.tcp = proto == "tcp";
  try {
    return loopgen::run(argv[0], eal, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopgen: %s\n", e.what());
    return 1;
  }
}
