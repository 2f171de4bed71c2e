#include "vswitch/port.h"

#include <utility>

namespace vsw {

namespace {
// One table names every port counter (convention: a registry, not ad-hoc names).
constexpr std::pair<const char*, Counter PortCounters::*> kPortCounterNames[] = {
    {"rx_packets", &PortCounters::rx_packets},
    {"rx_bytes", &PortCounters::rx_bytes},
    {"tx_packets", &PortCounters::tx_packets},
    {"tx_bytes", &PortCounters::tx_bytes},
    {"rx_malformed", &PortCounters::rx_malformed},
    {"rx_bad_offload", &PortCounters::rx_bad_offload},
    {"rx_vlan_drop", &PortCounters::rx_vlan_drop},
    {"tx_drop_ring_full", &PortCounters::tx_drop_ring_full},
    {"tx_drop_link_down", &PortCounters::tx_drop_link_down},
    {"tx_drop_other", &PortCounters::tx_drop_other},
    {"tx_sw_csum", &PortCounters::tx_sw_csum},
    {"tx_sw_gso", &PortCounters::tx_sw_gso},
};
}  // namespace

nlohmann::json Port::stats_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, field] : kPortCounterNames) {
    uint64_t sum = 0;
    for (const auto& c : counters_) sum += (c.*field).get();
    j[name] = sum;
  }
  return j;
}

}  // namespace vsw
