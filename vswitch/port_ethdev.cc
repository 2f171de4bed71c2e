#include "vswitch/port_ethdev.h"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "vswitch/log.h"

namespace vsw {

namespace {
constexpr uint64_t kWantedTxOffloads = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                       RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                       RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
std::string dev_name_of(const std::string& devargs) { return devargs.substr(0, devargs.find(',')); }
}  // namespace

EthdevPort::EthdevPort(std::string name, EthdevPortConfig cfg, rte_mempool* mp)
    : Port(std::move(name), Kind::kEthdev), cfg_(std::move(cfg)), mp_(mp) {
  for (auto& l : txq_lock_) rte_spinlock_init(&l);
}

EthdevPort::~EthdevPort() { stop(); }

bool EthdevPort::start(unsigned n_pmds) {
  const std::string dname = dev_name_of(cfg_.devargs);
  int rc = rte_dev_probe(cfg_.devargs.c_str());
  if (rc < 0 && rc != -EEXIST) {
    error_ = fmt::format("rte_dev_probe({}) failed: {}", cfg_.devargs, rte_strerror(-rc));
    return false;
  }
  probed_by_us_ = rc == 0;
  if (rte_eth_dev_get_port_by_name(dname.c_str(), &port_id_) != 0) {
    error_ = fmt::format("no ethdev named {} after probing {}", dname, cfg_.devargs);
    return false;
  }
  rte_eth_dev_info info{};
  if ((rc = rte_eth_dev_info_get(port_id_, &info)) != 0) {
    error_ = fmt::format("dev_info_get: {}", rte_strerror(-rc));
    return false;
  }
  driver_ = info.driver_name ? info.driver_name : "";
  n_rxq_ = std::min<uint16_t>(cfg_.rxq, info.max_rx_queues);
  // One tx queue per PMD plus one for the control thread, if the device has them.
  n_txq_ = std::min<uint16_t>(n_pmds + 1, info.max_tx_queues);
  rte_eth_conf conf{};
  tx_offloads_ = info.tx_offload_capa & kWantedTxOffloads;
  // net_tap (DPDK 22.11) advertises TSO but rejects a TSO packet whose
  // segment plus headers exceeds the MTU, i.e. every full-sized one a guest
  // sends: segment in software instead (rte_gso), checksums stay offloaded.
  if (driver_ == "net_tap") tx_offloads_ &= ~RTE_ETH_TX_OFFLOAD_TCP_TSO;
  conf.txmode.offloads = tx_offloads_;
  rc = rte_eth_dev_configure(port_id_, n_rxq_, n_txq_, &conf);
  if (rc != 0 && n_rxq_ != n_txq_) {
    // Some drivers (net_tap) want as many rx as tx queues: poll them all.
    n_rxq_ = n_txq_ = std::max(n_rxq_, n_txq_);
    rc = rte_eth_dev_configure(port_id_, n_rxq_, n_txq_, &conf);
  }
  if (rc != 0) {
    error_ = fmt::format("configure: {}", rte_strerror(-rc));
    return false;
  }
  uint16_t rxd = cfg_.rxd, txd = cfg_.txd;
  rte_eth_dev_adjust_nb_rx_tx_desc(port_id_, &rxd, &txd);
  int socket = rte_eth_dev_socket_id(port_id_);
  for (uint16_t q = 0; q < n_rxq_; ++q)
    if ((rc = rte_eth_rx_queue_setup(port_id_, q, rxd, socket, nullptr, mp_)) != 0) {
      error_ = fmt::format("rx queue {}: {}", q, rte_strerror(-rc));
      return false;
    }
  rte_eth_txconf txc = info.default_txconf;
  txc.offloads = tx_offloads_;
  for (uint16_t q = 0; q < n_txq_; ++q)
    if ((rc = rte_eth_tx_queue_setup(port_id_, q, txd, socket, &txc)) != 0) {
      error_ = fmt::format("tx queue {}: {}", q, rte_strerror(-rc));
      return false;
    }
  rte_eth_promiscuous_enable(port_id_);
  if ((rc = rte_eth_dev_start(port_id_)) != 0) {
    error_ = fmt::format("start: {}", rte_strerror(-rc));
    return false;
  }
  started_ = true;
  log()->info("port {}: ethdev {} ({}) port_id={} rxq={} txq={} tx_offloads=0x{:x}", name(), cfg_.devargs,
              driver_, port_id_, n_rxq_, n_txq_, tx_offloads_);
  return true;
}

void EthdevPort::stop() {
  if (port_id_ == 0xffff) return;
  rte_eth_dev_info info{};
  rte_eth_dev_info_get(port_id_, &info);
  rte_device* dev = info.device;
  if (started_) rte_eth_dev_stop(port_id_);
  started_ = false;
  rte_eth_dev_close(port_id_);
  if (probed_by_us_ && dev) {
    int rc = rte_eal_hotplug_remove(rte_bus_name(rte_dev_bus(dev)), rte_dev_name(dev));
    if (rc != 0) log()->warn("port {}: hotplug remove: {}", name(), rte_strerror(-rc));
  }
  port_id_ = 0xffff;
}

uint16_t EthdevPort::rx_burst(uint16_t rxq, rte_mbuf** pkts, uint16_t n) {
  return rte_eth_rx_burst(port_id_, rxq, pkts, n);
}

uint16_t EthdevPort::tx_burst(unsigned pmd, rte_mbuf** pkts, uint16_t n) {
  // Queue n_txq_-1 is shared by whoever has no queue of its own (locked).
  const bool own = pmd + 1 < n_txq_;
  const uint16_t q = own ? static_cast<uint16_t>(pmd) : static_cast<uint16_t>(n_txq_ - 1);
  if (!own) rte_spinlock_lock(&txq_lock_[q]);
  uint16_t ok = rte_eth_tx_prepare(port_id_, q, pkts, n);
  uint16_t sent = 0;
  for (uint32_t tries = 0; sent < ok && tries <= cfg_.tx_retries; ++tries)
    sent += rte_eth_tx_burst(port_id_, q, pkts + sent, ok - sent);
  if (!own) rte_spinlock_unlock(&txq_lock_[q]);
  if (sent < n) {
    auto& c = counters(pmd);
    // The device's tx queue stayed full through the retries. (Link state is
    // no guide: net_tap reports "down" once its interface moves to another
    // network namespace, while it keeps carrying traffic.)
    if (sent < ok) c.tx_drop_ring_full.add(ok - sent);
    if (ok < n) c.tx_drop_other.add(n - ok);  // tx_prepare rejected (bad offload request)
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
  }
  return sent;
}

bool EthdevPort::link_up() const {
  rte_eth_link l{};
  if (rte_eth_link_get_nowait(port_id_, &l) != 0) return false;
  return l.link_status == RTE_ETH_LINK_UP;
}

nlohmann::json EthdevPort::describe() const {
  rte_eth_link l{};
  rte_eth_link_get_nowait(port_id_, &l);
  return {{"type", "dpdk"},          {"devargs", cfg_.devargs}, {"driver", driver_},
          {"dpdk_port_id", port_id_}, {"rxq", n_rxq_},          {"txq", n_txq_},
          {"link_up", l.link_status == RTE_ETH_LINK_UP},        {"link_speed_mbps", l.link_speed},
          {"tx_offloads", tx_offloads_}};
}

}  // namespace vsw
