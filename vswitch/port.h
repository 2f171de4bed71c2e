// A switch port: the data-path face of a vhost-user device or a DPDK ethdev.
//
// Threading: rx_burst/tx_burst run on PMD threads; start/stop/describe on the
// control thread. A port is destroyed only after an RCU grace period (see
// pmd/rcu.h), so PMDs never see a dangling Port*.
#pragma once
#include <rte_mbuf.h>

#include <bitset>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "vswitch/counter.h"

namespace vsw {

inline constexpr unsigned kMaxPmds = 16;
inline constexpr uint16_t kMaxPorts = 256;
inline constexpr uint16_t kNoPort = 0xffff;
inline constexpr uint16_t kBurst = 32;

// Per-port counters, one set per writer thread (each PMD, plus one for the
// control thread), summed on read.
struct alignas(64) PortCounters {
  Counter rx_packets, rx_bytes;
  Counter tx_packets, tx_bytes;
  Counter rx_malformed;        // failed parsing (see parse error counters)
  Counter rx_bad_offload;      // guest offload metadata inconsistent with the packet
  Counter rx_vlan_drop;        // tagged frame on an access port / VLAN not in trunk
  Counter tx_drop_ring_full;   // guest receive ring / device tx queue full after retries
  Counter tx_drop_link_down;   // port (or guest) not running
  Counter tx_drop_other;       // offload fix-up failed, no mbufs
  Counter tx_sw_csum;          // checksums completed in software for this egress
  Counter tx_sw_gso;           // segmented in software for this egress
};

// Per rx queue load, written only by the PMD that polls the queue; used by
// pmd-rxq-show and load-based rx queue assignment.
struct alignas(64) RxqStats {
  Counter packets, cycles;
};
inline constexpr uint16_t kMaxRxqPerPort = 16;

enum class VlanMode : uint8_t { kNone, kAccess, kTrunk };

struct VlanConfig {
  VlanMode mode = VlanMode::kNone;
  uint16_t tag = 0;             // access VLAN, or trunk native VLAN (0 = none)
  std::bitset<4096> trunks;     // allowed VLANs on a trunk (all if none set)
  bool allows(uint16_t vid) const { return trunks.none() || trunks.test(vid & 0xfff); }
};

class Port {
 public:
  enum class Kind { kEthdev, kVhostUser };
  Port(std::string name, Kind kind) : name_(std::move(name)), kind_(kind) {}
  virtual ~Port() = default;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  // Control thread. start() returns false with a reason in error().
  virtual bool start(unsigned n_pmds) = 0;
  virtual void stop() = 0;

  // Data path. rx_burst returns mbufs the caller owns.
  virtual uint16_t n_rxq() const = 0;
  virtual uint16_t rx_burst(uint16_t rxq, rte_mbuf** pkts, uint16_t n) = 0;
  // Sends on the tx queue that belongs to PMD `pmd`. Takes ownership of all n
  // mbufs: what the device did not accept after bounded retries is freed and
  // counted (ring full / link down). Returns the number sent.
  virtual uint16_t tx_burst(unsigned pmd, rte_mbuf** pkts, uint16_t n) = 0;
  // RTE_ETH_TX_OFFLOAD_* bits this egress completes itself; everything else
  // is fixed up in software before tx_burst.
  virtual uint64_t tx_offloads() const = 0;
  virtual bool link_up() const = 0;

  // Guest ring state for the TCP stages (vhost-user ports; -1/0 elsewhere).
  // Free descriptors in the switch->guest ring of queue q.
  virtual int rx_ring_free(uint16_t /*q*/) const { return -1; }
  // What PMD `pmd` may count on in the guest ring its tx_burst fills: that
  // ring's free descriptors divided among the PMDs that share it (with more
  // PMDs than enabled guest queues several write one ring). Multi-queue
  // guests: each PMD fills its own queue, so each sees only that one.
  virtual int tx_ring_free(unsigned /*pmd*/) const { return rx_ring_free(0); }
  // TSC of the last time the guest made progress (posted rx buffers or tx packets).
  virtual uint64_t guest_progress_tsc(uint16_t /*q*/) const { return 0; }

  virtual nlohmann::json describe() const = 0;

  const std::string& name() const { return name_; }
  Kind kind() const { return kind_; }
  uint16_t id() const { return id_; }
  void set_id(uint16_t id) { id_ = id; }
  const std::string& error() const { return error_; }
  VlanConfig vlan;
  PortCounters& counters(unsigned writer) { return counters_[writer]; }
  nlohmann::json stats_json() const;
  RxqStats& rxq_stats(uint16_t q) { return rxq_stats_[q % kMaxRxqPerPort]; }
  const RxqStats& rxq_stats(uint16_t q) const { return rxq_stats_[q % kMaxRxqPerPort]; }

  // Writer index of the control thread in counters().
  static constexpr unsigned kCtlWriter = kMaxPmds;

 protected:
  std::string error_;

 private:
  std::string name_;
  Kind kind_;
  uint16_t id_ = kNoPort;
  PortCounters counters_[kMaxPmds + 1];
  RxqStats rxq_stats_[kMaxRxqPerPort];
};

}  // namespace vsw
