#include "vhost/vhost_port.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_vhost.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "pmd/rcu.h"
#include "vswitch/log.h"

namespace vsw {

namespace {

// virtio-net feature bits (virtio spec 5.1.3).
constexpr unsigned kFGuestCsum = 1, kFGuestTso4 = 7, kFGuestTso6 = 8;

std::mutex g_mu;
std::map<std::string, VhostPort*>& registry() {
  static std::map<std::string, VhostPort*> m;
  return m;
}

VhostPort* port_of(int vid) {
  char path[PATH_MAX];
  if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0) return nullptr;
  std::lock_guard lk(g_mu);
  auto it = registry().find(path);
  return it == registry().end() ? nullptr : it->second;
}

int cb_new(int vid) {
  VhostPort* p = port_of(vid);
  return p ? p->on_new_device(vid) : -1;
}
void cb_destroy(int vid) {
  if (VhostPort* p = port_of(vid)) p->on_destroy_device(vid);
}
int cb_vring(int vid, uint16_t vring, int enable) {
  VhostPort* p = port_of(vid);
  return p ? p->on_vring_state(vring, enable != 0) : 0;
}

const rte_vhost_device_ops kOps = {
    .new_device = cb_new,
    .destroy_device = cb_destroy,
    .vring_state_changed = cb_vring,
    .features_changed = nullptr,
    .new_connection = nullptr,
    .destroy_connection = nullptr,
    .guest_notified = nullptr,
    .reserved = {},
};

uint64_t offloads_from_features(uint64_t f) {
  uint64_t o = 0;
  if (f & (1ULL << kFGuestCsum))
    o |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
  if ((f & (1ULL << kFGuestTso4)) && (f & (1ULL << kFGuestTso6)))
    o |= RTE_ETH_TX_OFFLOAD_TCP_TSO;
  // The vhost library copies chains into guest buffers: multi-segment is fine.
  o |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  return o;
}

}  // namespace

VhostPort::VhostPort(std::string name, VhostPortConfig cfg, rte_mempool* mp)
    : Port(std::move(name), Kind::kVhostUser), cfg_(std::move(cfg)), mp_(mp) {
  for (auto& l : txq_lock_) rte_spinlock_init(&l);
}

VhostPort::~VhostPort() { stop(); }

bool VhostPort::start(unsigned n_pmds) {
  n_pmds_ = n_pmds;
  {
    std::lock_guard lk(g_mu);
    if (registry().count(cfg_.path)) {
      error_ = "socket path already used by another port: " + cfg_.path;
      return false;
    }
    registry()[cfg_.path] = this;
  }
  uint64_t flags = 0;
  if (cfg_.client) flags |= RTE_VHOST_USER_CLIENT;  // reconnects by default
  else unlink(cfg_.path.c_str());  // a stale socket from a previous run blocks bind()
  int rc = rte_vhost_driver_register(cfg_.path.c_str(), flags);
  if (rc != 0) {
    error_ = "rte_vhost_driver_register failed for " + cfg_.path;
    std::lock_guard lk(g_mu);
    registry().erase(cfg_.path);
    return false;
  }
  registered_ = true;
  if (cfg_.disable_features) rte_vhost_driver_disable_features(cfg_.path.c_str(), cfg_.disable_features);
  rte_vhost_driver_callback_register(cfg_.path.c_str(), &kOps);
  if (rte_vhost_driver_start(cfg_.path.c_str()) != 0) {
    error_ = "rte_vhost_driver_start failed for " + cfg_.path;
    stop();
    return false;
  }
  log()->info("port {}: vhost-user {} mode, socket {}, disabled features 0x{:x}", name(),
              cfg_.client ? "client" : "server", cfg_.path, cfg_.disable_features);
  return true;
}

void VhostPort::stop() {
  if (!registered_) return;
  // Unregister fails while the connection is being torn down; retry for a while.
  for (int i = 0; i < 200; ++i) {
    if (rte_vhost_driver_unregister(cfg_.path.c_str()) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  registered_ = false;
  vid_.store(-1, std::memory_order_release);
  rcu().synchronize();
  {
    std::lock_guard lk(g_mu);
    registry().erase(cfg_.path);
  }
  if (!cfg_.client) unlink(cfg_.path.c_str());
}

int VhostPort::on_new_device(int vid) {
  uint64_t f = 0;
  rte_vhost_get_negotiated_features(vid, &f);
  features_.store(f);
  tx_offloads_.store(offloads_from_features(f));
  uint16_t nvr = rte_vhost_get_vring_num(vid);
  for (uint16_t i = 0; i < nvr; ++i) rte_vhost_enable_guest_notification(vid, i, 0);
  uint64_t now = rte_rdtsc();
  for (auto& t : progress_tsc_) t.store(now);
  connects_.fetch_add(1);
  vid_.store(vid, std::memory_order_release);
  log()->info("port {}: guest connected (vid {}, {} vrings, features 0x{:x})", name(), vid, nvr, f);
  return 0;
}

void VhostPort::on_destroy_device(int vid) {
  if (vid_.load() != vid) return;
  vid_.store(-1, std::memory_order_release);
  rx_enabled_mask_.store(0);
  tx_enabled_mask_.store(0);
  n_enabled_.store(0);
  rcu().synchronize();  // no PMD touches the device after this returns
  log()->info("port {}: guest disconnected (vid {})", name(), vid);
}

int VhostPort::on_vring_state(uint16_t vring, bool enable) {
  uint16_t q = vring / 2;
  if (q >= kVhostMaxQueues) return 0;
  auto& mask = (vring & 1) ? rx_enabled_mask_ : tx_enabled_mask_;  // odd vring = guest tx = our rx
  uint32_t bit = 1u << q;
  if (enable) mask.fetch_or(bit);
  else mask.fetch_and(~bit);
  if (!(vring & 1)) {
    // Our tx queues are the contiguous prefix of enabled guest rx queues.
    uint32_t m = tx_enabled_mask_.load();
    n_enabled_.store(static_cast<uint16_t>(__builtin_ctz(~m)));
  }
  log()->debug("port {}: vring {} {}", name(), vring, enable ? "enabled" : "disabled");
  return 0;
}

bool VhostPort::queue_ready(uint16_t q, int& vid) const {
  vid = vid_.load(std::memory_order_acquire);
  return vid >= 0 && (rx_enabled_mask_.load(std::memory_order_relaxed) & (1u << q));
}

uint16_t VhostPort::rx_burst(uint16_t rxq, rte_mbuf** pkts, uint16_t n) {
  int vid;
  if (!queue_ready(rxq, vid)) return 0;
  uint16_t got = rte_vhost_dequeue_burst(vid, static_cast<uint16_t>(rxq * 2 + 1), mp_, pkts, n);
  if (got) progress_tsc_[rxq].store(rte_rdtsc(), std::memory_order_relaxed);
  return got;
}

uint16_t VhostPort::tx_burst(unsigned pmd, rte_mbuf** pkts, uint16_t n) {
  int vid = vid_.load(std::memory_order_acquire);
  uint16_t nq = n_enabled_.load(std::memory_order_relaxed);
  auto& c = counters(pmd);
  if (vid < 0 || nq == 0) {
    c.tx_drop_link_down.add(n);
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  const uint16_t q = vhost_txq_of(pmd, nq);
  const bool shared = vhost_txq_writers(q, nq, n_pmds_) > 1;  // several PMDs map to this guest queue
  if (shared) rte_spinlock_lock(&txq_lock_[q]);
  uint16_t sent = 0;
  for (uint32_t tries = 0; sent < n && tries <= cfg_.tx_retries; ++tries) {
    uint16_t k = rte_vhost_enqueue_burst(vid, static_cast<uint16_t>(q * 2), pkts + sent, n - sent);
    if (k == 0 && tries > 0) break;  // guest is not draining: stop, do not stall this PMD
    sent += k;
  }
  if (shared) rte_spinlock_unlock(&txq_lock_[q]);
  if (sent) progress_tsc_[q].store(rte_rdtsc(), std::memory_order_relaxed);
  if (sent < n) c.tx_drop_ring_full.add(n - sent);
  rte_pktmbuf_free_bulk(pkts, n);  // enqueue copies: the switch still owns every mbuf
  return sent;
}

int VhostPort::rx_ring_free(uint16_t q) const {
  int vid = vid_.load(std::memory_order_acquire);
  if (vid < 0) return 0;
  return rte_vhost_avail_entries(vid, static_cast<uint16_t>(q * 2));
}

int VhostPort::tx_ring_free(unsigned pmd) const {
  const uint16_t nq = n_enabled_.load(std::memory_order_relaxed);
  if (nq == 0) return 0;
  const uint16_t q = vhost_txq_of(pmd, nq);  // the queue tx_burst(pmd) fills
  const int f = rx_ring_free(q);
  return f > 0 ? f / static_cast<int>(std::max(1u, vhost_txq_writers(q, nq, n_pmds_))) : f;
}

uint64_t VhostPort::guest_progress_tsc(uint16_t q) const {
  return q < kVhostMaxQueues ? progress_tsc_[q].load(std::memory_order_relaxed) : 0;
}

nlohmann::json VhostPort::describe() const {
  return {{"type", "vhost-user"},
          {"mode", cfg_.client ? "client" : "server"},
          {"socket", cfg_.path},
          {"connected", link_up()},
          {"vid", vid()},
          {"queues_enabled", queues_enabled()},
          {"negotiated_features", fmt::format("0x{:x}", negotiated_features())},
          {"disabled_features", fmt::format("0x{:x}", cfg_.disable_features)},
          {"tx_offloads", tx_offloads()},
          {"connects", connects()}};
}

}  // namespace vsw
