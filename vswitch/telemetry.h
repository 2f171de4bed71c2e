// Exports the control commands marked `telemetry` as DPDK telemetry commands
// (/vswitch/port_stats, /vswitch/pmd_stats_show, ...), readable with
// dpdk-telemetry.py -f <file-prefix>. The optional parameter is the first
// positional argument (e.g. a port name).
#pragma once
#include <nlohmann/json.hpp>

struct rte_tel_data;

namespace vsw {

class Switch;

void telemetry_register(Switch& sw);
// JSON -> telemetry data (exposed for tests). Telemetry in DPDK 22.11 nests
// one level of containers; deeper values are rendered as JSON strings.
void json_to_tel(const nlohmann::json& j, rte_tel_data* d);

}  // namespace vsw
