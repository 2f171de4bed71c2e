// The switch: owns the datapath, its ports and PMD threads, and implements
// every control operation. All public methods are control-plane calls, safe
// while PMDs run (they serialize on one mutex and publish changes with RCU).
#pragma once
#include <rte_mempool.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pmd/datapath.h"
#include "pmd/pmd.h"
#include "pmd/rxq_assign.h"
#include "vswitch/config.h"

namespace vsw {

class Switch {
 public:
  explicit Switch(SwitchConfig cfg);
  ~Switch();
  // After rte_eal_init. Creates pools, PMDs and the configured ports, starts PMDs.
  bool start(std::string& err);
  void shutdown();

  // Ports.
  nlohmann::json add_port(const PortSpec& spec);  // {"port": id} or throws
  // Adds an already constructed port (tests use in-memory ports). spec.vlan applies.
  nlohmann::json add_port_object(std::unique_ptr<Port> p, const PortSpec& spec);
  void del_port(const std::string& name);
  nlohmann::json show() const;
  nlohmann::json port_stats(const std::string& name) const;  // all ports if name empty
  nlohmann::json port_clear_stats(const std::string& name);

  // FDB.
  nlohmann::json fdb_show() const;
  nlohmann::json fdb_flush(const std::string& port);
  void set_fdb_aging(uint32_t s);

  // PMDs.
  nlohmann::json pmd_stats_show() const;
  void pmd_stats_clear();
  nlohmann::json pmd_rxq_show() const;
  nlohmann::json pmd_rxq_rebalance(const std::string& mode);

  // Stages.
  nlohmann::json stage_list() const;
  void stage_enable(const std::string& name, bool on);

  // TCP connections seen by the monitor stage (vswitch/tcp_flows_ctl.cc).
  nlohmann::json tcp_flows(const nlohmann::json& args);
  nlohmann::json tcp_flow(const nlohmann::json& args);

  // Called about once a second by the main thread: FDB aging and slot reclaim.
  void housekeeping();
  Datapath& datapath() { return *dp_; }

  const SwitchConfig& config() const { return cfg_; }
  uint32_t now_s() const;

 private:
  Port* find_port(const std::string& name, uint16_t* id = nullptr) const;
  void reassign_rxqs_locked();
  void update_handoff_locked();

  SwitchConfig cfg_;
  RxqAssignMode assign_mode_ = RxqAssignMode::kCycles;
  mutable std::mutex mu_;
  std::unique_ptr<Datapath> dp_;
  std::vector<std::unique_ptr<Port>> owned_;  // index = port id
  std::vector<PortSpec> specs_;                // index = port id
  bool started_ = false;
};

}  // namespace vsw
