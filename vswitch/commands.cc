#include "vswitch/commands.h"

#include <stdexcept>

#include "cc/stages/snoop_ctl.h"
#include "vswitch/log.h"
#include "vswitch/switch.h"

namespace vsw {

namespace {

std::string arg(const nlohmann::json& a, size_t i, const char* what = nullptr) {
  if (a.contains("argv") && a["argv"].size() > i) return a["argv"][i].get<std::string>();
  if (what) throw std::runtime_error(std::string("missing argument: ") + what);
  return {};
}

nlohmann::json help_json() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : commands())
    out.push_back({{"command", c.name}, {"usage", c.usage}, {"help", c.help}, {"live_safe", c.live_safe}});
  return out;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> cmds = {
      {"show", "show", "ports, PMDs, FDB and pipeline summary", true, true,
       [](Switch& s, const nlohmann::json&) { return s.show(); }},
      {"add-port", "add-port NAME type=vhost-user|dpdk [path=SOCK client=true|false queues=N "
                   "disable_features=MASK] [devargs=ARGS rxd=N txd=N] [vlan_mode=access|trunk tag=N trunks=A,B]",
       "add a port at run time; other ports keep forwarding", true, false,
       [](Switch& s, const nlohmann::json& a) {
         nlohmann::json spec = a;
         spec.erase("argv");
         spec["name"] = arg(a, 0, "NAME");
         return s.add_port(port_spec_from_json(spec));
       }},
      {"del-port", "del-port NAME", "remove a port at run time; its FDB entries are flushed", true, false,
       [](Switch& s, const nlohmann::json& a) {
         s.del_port(arg(a, 0, "NAME"));
         return nlohmann::json{{"deleted", arg(a, 0)}};
       }},
      {"port-stats", "port-stats [NAME]", "per-port rx/tx/drop counters (drops split by reason)", true, true,
       [](Switch& s, const nlohmann::json& a) { return s.port_stats(arg(a, 0)); }},
      {"fdb-show", "fdb-show", "MAC learning table", true, true,
       [](Switch& s, const nlohmann::json&) { return s.fdb_show(); }},
      {"fdb-flush", "fdb-flush [PORT]", "forget learned MACs (of one port)", true, false,
       [](Switch& s, const nlohmann::json& a) { return s.fdb_flush(arg(a, 0)); }},
      {"fdb-set-aging", "fdb-set-aging SECONDS", "MAC aging time", true, false,
       [](Switch& s, const nlohmann::json& a) {
         s.set_fdb_aging(static_cast<uint32_t>(std::stoul(arg(a, 0, "SECONDS"))));
         return nlohmann::json{{"aging_s", std::stoul(arg(a, 0))}};
       }},
      {"pmd-stats-show", "pmd-stats-show", "per-PMD packets, busy/idle cycles, cycles per packet", true, true,
       [](Switch& s, const nlohmann::json&) { return s.pmd_stats_show(); }},
      {"pmd-stats-clear", "pmd-stats-clear", "reset PMD cycle and packet counters", true, false,
       [](Switch& s, const nlohmann::json&) {
         s.pmd_stats_clear();
         return nlohmann::json{{"cleared", true}};
       }},
      {"pmd-rxq-show", "pmd-rxq-show", "rx queue to PMD assignment and per-queue usage", true, true,
       [](Switch& s, const nlohmann::json&) { return s.pmd_rxq_show(); }},
      {"pmd-rxq-rebalance", "pmd-rxq-rebalance [roundrobin|cycles]", "reassign rx queues to PMDs now", true, false,
       [](Switch& s, const nlohmann::json& a) { return s.pmd_rxq_rebalance(arg(a, 0)); }},
      {"stage-list", "stage-list", "pipeline stages, enabled state and counters", true, true,
       [](Switch& s, const nlohmann::json&) { return s.stage_list(); }},
      {"stage-enable", "stage-enable NAME", "enable a pipeline stage", true, false,
       [](Switch& s, const nlohmann::json& a) {
         s.stage_enable(arg(a, 0, "NAME"), true);
         return nlohmann::json{{"enabled", arg(a, 0)}};
       }},
      {"stage-disable", "stage-disable NAME", "disable a pipeline stage", true, false,
       [](Switch& s, const nlohmann::json& a) {
         s.stage_enable(arg(a, 0, "NAME"), false);
         return nlohmann::json{{"disabled", arg(a, 0)}};
       }},
      {"tcp-flows", "tcp-flows [sort=bytes|rtt|retrans|age] [top=N] [offset=N] [port=NAME] [addr=IP] | tcp-flows PAGE",
       "monitored TCP connections: RTT, flight, retransmissions, limited-by (PAGE: 8 compact rows)",
       true, true, [](Switch& s, const nlohmann::json& a) { return s.tcp_flows(a); }},
      {"tcp-flow", "tcp-flow PMD:SLOT[:GEN]", "one monitored TCP connection in detail (id from tcp-flows)", true, true,
       [](Switch& s, const nlohmann::json& a) { return s.tcp_flow(a); }},
      {"snoop-show", "snoop-show [max=N]", "snoop: per-port state and connections (mode, NEXT_SEQ, VM_SEQ, window)",
       true, true, snoop_ctl_show},
      {"snoop-port", "snoop-port NAME on|off [buf_bytes=N]",
       "snoop: per-port early ACK; off stops them for all its connections before returning (migration)", true, false,
       snoop_ctl_port},
      {"snoop-conn", "snoop-conn ADDR PORT ADDR PORT on|off [vlan=N]", "snoop: per-connection early ACK", true, false,
       snoop_ctl_conn},
      {"log-level", "log-level trace|debug|info|warn|error", "change the log level", true, false,
       [](Switch&, const nlohmann::json& a) {
         log()->set_level(spdlog::level::from_str(arg(a, 0, "LEVEL")));
         return nlohmann::json{{"level", arg(a, 0)}};
       }},
      {"help", "help", "list commands", true, true, [](Switch&, const nlohmann::json&) { return help_json(); }},
  };
  return cmds;
}

nlohmann::json run_command(Switch& sw, const std::string& name, const nlohmann::json& args) {
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    try {
      return {{"ok", true}, {"result", c.run(sw, args)}};
    } catch (const std::exception& e) {
      log()->warn("command {} failed: {}", name, e.what());
      return {{"ok", false}, {"error", e.what()}};
    }
  }
  return {{"ok", false}, {"error", "unknown command '" + name + "' (try: help)"}};
}

}  // namespace vsw
