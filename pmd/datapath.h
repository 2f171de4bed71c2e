// State shared by all PMD threads and the control thread.
//
// Readers on PMDs load pointers with acquire; the control thread publishes
// with release and frees old objects only after rcu().synchronize().
#pragma once
#include <rte_mempool.h>

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "flowtable/fdb.h"
#include "flowtable/tcp_flow_table.h"
#include "vswitch/port.h"

namespace vsw {

class Pmd;

inline constexpr unsigned kMaxStages = 16;

struct DatapathConfig {
  uint32_t idle_sleep_max_us = 0;  // 0 = never sleep (pure busy polling)
  bool drop_malformed = false;     // else malformed frames are switched at L2, skipped by TCP stages
  bool parse_full = false;         // parse L3/L4 of every packet (else only when a stage or offload needs it)
  uint32_t tick_us = 100;          // stage timer granularity
  uint32_t handoff_ring_size = 1024;
  TcpFlowConfig flows;             // per-PMD TCP connection table (when a TCP stage is in the pipeline)
};

struct Datapath {
  explicit Datapath(const FdbConfig& fc);  // out of line (pmd.cc), where Pmd is complete
  ~Datapath();
  std::array<std::atomic<Port*>, kMaxPorts> ports;
  Fdb fdb;
  rte_mempool* pool = nullptr;
  rte_mempool* indirect_pool = nullptr;  // for software GSO
  DatapathConfig cfg;
  std::vector<int> stage_order;  // registry indexes, pipeline order (fixed at start)
  std::array<std::atomic<bool>, kMaxStages> stage_on;
  std::atomic<bool> handoff_on{false};  // a TCP stage is enabled and there is more than one PMD
  std::vector<std::unique_ptr<Pmd>> pmds;

  Port* port(uint16_t id) const { return id < kMaxPorts ? ports[id].load(std::memory_order_acquire) : nullptr; }
};

}  // namespace vsw
