// snoop control path: `vswitchctl snoop-show | snoop-port | snoop-conn`.
// All run on each PMD through Pmd::call (between two PMD iterations), so they
// are safe while PMDs forward traffic.
#pragma once
#include <nlohmann/json.hpp>

namespace vsw {

class Switch;

// snoop-show [max=N]: per-PMD port states and up to N connections with their mode and counters.
nlohmann::json snoop_ctl_show(Switch& s, const nlohmann::json& args);
// snoop-port NAME on|off [buf_bytes=N]: per-port enable. `off` stops early ACKs for
// every connection of the port before the command returns (use before a migration).
nlohmann::json snoop_ctl_port(Switch& s, const nlohmann::json& args);
// snoop-conn ADDR PORT ADDR PORT on|off [vlan=N]: per-connection enable.
nlohmann::json snoop_ctl_conn(Switch& s, const nlohmann::json& args);

}  // namespace vsw
