// vswitchd configuration: a TOML file (see configs/*.toml and
// docs/operations.md). Port specs share one parser between the config file
// and `vswitchctl add-port`.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "flowtable/fdb.h"
#include "pmd/datapath.h"
#include "vswitch/port.h"

namespace vsw {

struct PortSpec {
  std::string name;
  std::string type;  // "vhost-user" | "dpdk"
  // vhost-user
  std::string path;
  bool client = false;
  uint64_t disable_features = 0;
  // dpdk
  std::string devargs;
  uint16_t rxd = 1024, txd = 1024;
  // both
  uint16_t queues = 1;
  VlanConfig vlan;
  std::vector<int> rxq_pmd;  // optional pinning: rx queue i -> pmd index
};

struct SwitchConfig {
  // [dpdk]
  std::vector<std::string> eal_args;  // extra EAL arguments
  std::string file_prefix = "vswitch";
  unsigned socket_mem_mb = 512;
  bool no_huge = false;                // tests only: --no-huge (no vhost-user then)
  uint32_t mbufs = 32768;
  // [pmd]
  unsigned main_lcore = 0;
  std::vector<unsigned> pmd_lcores = {1};
  std::string lcore_map;  // optional EAL --lcores value, e.g. "0@0,1@1,2@1"
  std::string rxq_assign = "cycles";
  DatapathConfig dp;
  // [fdb]
  FdbConfig fdb;
  // [stages]
  std::vector<std::string> stage_order = {"noop"};
  std::vector<std::string> stages_enabled;  // subset enabled at start
  std::map<std::string, nlohmann::json> stage_config;
  // [control]
  std::string control_socket = "/run/vswitch/vswitchd.sock";
  bool telemetry = true;
  // [log]
  std::string log_level = "info";
  std::string log_file;
  std::vector<PortSpec> ports;
};

// Throws std::runtime_error with a message naming the bad key.
SwitchConfig load_config_file(const std::string& path);
SwitchConfig load_config_string(const std::string& toml_text);
// From a JSON object of port settings (same keys as a [[port]] table).
PortSpec port_spec_from_json(const nlohmann::json& j);
nlohmann::json port_spec_to_json(const PortSpec& s);
// "0x..." or decimal.
uint64_t parse_u64(const std::string& s);

}  // namespace vsw
