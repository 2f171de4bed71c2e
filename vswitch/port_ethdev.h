// Any DPDK ethdev as a switch port, attached at run time by devargs
// (PCI address, net_tap, net_af_xdp, net_af_packet, net_pcap, net_ring, net_null...).
#pragma once
#include <rte_mempool.h>
#include <rte_spinlock.h>

#include "vswitch/port.h"

namespace vsw {

struct EthdevPortConfig {
  std::string devargs;
  uint16_t rxq = 1;
  uint16_t rxd = 1024;
  uint16_t txd = 1024;
  uint32_t tx_retries = 4;  // bounded: a stuck device must not stall the PMD
};

class EthdevPort final : public Port {
 public:
  EthdevPort(std::string name, EthdevPortConfig cfg, rte_mempool* mp);
  ~EthdevPort() override;
  bool start(unsigned n_pmds) override;
  void stop() override;
  uint16_t n_rxq() const override { return n_rxq_; }
  uint16_t rx_burst(uint16_t rxq, rte_mbuf** pkts, uint16_t n) override;
  uint16_t tx_burst(unsigned pmd, rte_mbuf** pkts, uint16_t n) override;
  uint64_t tx_offloads() const override { return tx_offloads_; }
  bool link_up() const override;
  nlohmann::json describe() const override;
  uint16_t dpdk_port_id() const { return port_id_; }

 private:
  EthdevPortConfig cfg_;
  rte_mempool* mp_;
  uint16_t port_id_ = 0xffff;
  uint16_t n_rxq_ = 0;
  uint16_t n_txq_ = 0;
  bool started_ = false;
  bool probed_by_us_ = false;
  uint64_t tx_offloads_ = 0;
  std::string driver_;
  rte_spinlock_t txq_lock_[kMaxPmds + 1];
};

}  // namespace vsw
