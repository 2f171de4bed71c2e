// vhost-user port on rte_vhost: the switch as socket server, or as client
// (QEMU is server) with automatic reconnect after either side restarts.
//
// Threading: new_device/destroy_device/vring_state_changed arrive on the
// rte_vhost event thread. The device id is published with release semantics;
// destroy_device unpublishes it and waits an RCU grace period so no PMD is
// still inside an rte_vhost call for that device when the library frees it.
#pragma once
#include <rte_mempool.h>
#include <rte_spinlock.h>

#include <atomic>

#include "vswitch/port.h"

namespace vsw {

struct VhostPortConfig {
  std::string path;
  bool client = false;               // switch connects to QEMU's server socket
  uint16_t queues = 1;               // rx queues polled (guest tx queues); max kVhostMaxQueues
  uint64_t disable_features = 0;     // virtio feature bits masked for this frontend
  uint32_t tx_retries = 4;           // bounded retries into a full guest ring
};

inline constexpr uint16_t kVhostMaxQueues = 16;

// Guest queue mapping of the tx side: with `nq` guest rx queues enabled, PMD
// `pmd` fills queue pmd % nq, and that queue is filled by this many of the
// `n_pmds` PMDs (more than one: they take a lock, and share its free space).
inline uint16_t vhost_txq_of(unsigned pmd, uint16_t nq) { return static_cast<uint16_t>(pmd % nq); }
inline unsigned vhost_txq_writers(uint16_t q, uint16_t nq, unsigned n_pmds) {
  return n_pmds > q ? (n_pmds - q + nq - 1) / nq : 1;
}

class VhostPort final : public Port {
 public:
  VhostPort(std::string name, VhostPortConfig cfg, rte_mempool* mp);
  ~VhostPort() override;
  bool start(unsigned n_pmds) override;
  void stop() override;
  uint16_t n_rxq() const override { return cfg_.queues; }
  uint16_t rx_burst(uint16_t rxq, rte_mbuf** pkts, uint16_t n) override;
  uint16_t tx_burst(unsigned pmd, rte_mbuf** pkts, uint16_t n) override;
  uint64_t tx_offloads() const override { return tx_offloads_.load(std::memory_order_relaxed); }
  bool link_up() const override { return vid_.load(std::memory_order_acquire) >= 0; }
  int rx_ring_free(uint16_t q) const override;
  int tx_ring_free(unsigned pmd) const override;
  uint64_t guest_progress_tsc(uint16_t q) const override;
  nlohmann::json describe() const override;

  // rte_vhost callbacks (event thread).
  int on_new_device(int vid);
  void on_destroy_device(int vid);
  int on_vring_state(uint16_t vring, bool enable);

  int vid() const { return vid_.load(std::memory_order_acquire); }
  uint16_t queues_enabled() const { return n_enabled_.load(std::memory_order_acquire); }
  uint64_t negotiated_features() const { return features_.load(); }
  uint64_t connects() const { return connects_.load(); }

 private:
  bool queue_ready(uint16_t q, int& vid) const;

  VhostPortConfig cfg_;
  rte_mempool* mp_;
  bool registered_ = false;
  unsigned n_pmds_ = 1;
  std::atomic<int> vid_{-1};
  std::atomic<uint32_t> rx_enabled_mask_{0};  // bit q: guest tx queue q (our rx) enabled
  std::atomic<uint32_t> tx_enabled_mask_{0};  // bit q: guest rx queue q (our tx) enabled
  std::atomic<uint16_t> n_enabled_{0};        // guest rx queues enabled: our tx queues
  std::atomic<uint64_t> features_{0};
  std::atomic<uint64_t> tx_offloads_{0};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> progress_tsc_[kVhostMaxQueues] = {};
  rte_spinlock_t txq_lock_[kVhostMaxQueues];
};

}  // namespace vsw
