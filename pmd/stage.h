// The stage interface of the pipeline (design.md conventions 1-4).
//
// A stage is a final class with one batch entry point. It writes a next step
// for each packet; the pipeline then frees dropped packets, forgets consumed
// ones (the stage owns them now) and hands the rest to the L2 decision.
// A stage may build packets (ACKs, retransmissions) and emit them toward a
// port or toward the L2 decision. Every decision increments a named counter.
#pragma once
#include <rte_mbuf.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cc/tcp_segment.h"
#include "flowtable/tcp_flow_state.h"
#include "vswitch/counter.h"
#include "vswitch/port.h"

namespace vsw {

enum class Next : uint8_t {
  kForward = 0,  // continue to the next stage, then L2
  kDrop = 1,     // the pipeline frees it; the stage has counted why
  kConsumed = 2, // the stage keeps the mbuf (buffered, queued for later)
};

inline constexpr uint16_t kBatchMax = 64;

class TcpFlowTable;

// The PMD tracks the TCP packets of a batch in its flow table once, before
// the TCP stages run, and hands every stage the same results.
struct BatchFlows {
  TcpSegment seg[kBatchMax];   // compact: segments of the tracked packets
  TrackResult res[kBatchMax];  // res[k] belongs to seg[k]
  uint16_t n = 0;
};

struct Batch {
  rte_mbuf* pkts[kBatchMax];
  Next next[kBatchMax];
  int8_t flow_idx[kBatchMax];  // index into flows->seg/res, or -1 (not TCP / not tracked)
  uint16_t n = 0;
  BatchFlows* flows = nullptr;  // null when no TCP stage is enabled
  TcpFlowTable* table = nullptr;
  void reset() { n = 0; }
  void push(rte_mbuf* m) {
    pkts[n] = m;
    next[n] = Next::kForward;
    ++n;
  }
  // Segment and tracking result of packet i, or null.
  const TcpSegment* seg(uint16_t i) const { return flows && flow_idx[i] >= 0 ? &flows->seg[flow_idx[i]] : nullptr; }
  const TrackResult* track(uint16_t i) const {
    return flows && flow_idx[i] >= 0 ? &flows->res[flow_idx[i]] : nullptr;
  }
};

class PmdContext;

// Per-stage counters are declared by name in the registry; each stage
// instance (one per PMD) owns an array of them in that order.
class Stage {
 public:
  explicit Stage(size_t n_counters) : counters_(new Counter[n_counters]), n_counters_(n_counters) {}
  virtual ~Stage() = default;
  virtual void process(Batch& b, PmdContext& ctx) = 0;
  // Called periodically by the owning PMD (timers: retransmissions, aging).
  virtual void tick(PmdContext& /*ctx*/, uint64_t /*now_tsc*/) {}
  // Called on the PMD after a burst toward `port` for every packet this stage
  // marked with PktMeta::notify_stage: sent = the device (guest ring) took it.
  // After the notifications of a flush the PMD calls process() once with an
  // empty batch, so a stage can act on them together (e.g. one ACK per flow).
  virtual void on_tx(PmdContext& /*ctx*/, uint16_t /*port*/, const uint32_t /*cookie*/[2], uint32_t /*pkt_len*/,
                     bool /*sent*/) {}
  // Control thread, for `stage show`: extra state beyond the counters.
  virtual nlohmann::json details() const { return nlohmann::json::object(); }
  uint64_t counter(size_t i) const { return counters_[i].get(); }
  size_t n_counters() const { return n_counters_; }

 protected:
  Counter& ctr(size_t i) { return counters_[i]; }

 private:
  std::unique_ptr<Counter[]> counters_;
  size_t n_counters_;
};

struct StageInit {
  unsigned pmd_index;
  const nlohmann::json& config;  // the stage's table from the config file (may be empty)
};

// One row of the stage registry.
// Counters are declared once, as an X-macro list of (enum id, name) beside
// the stage: X(kSeen, "seen") X(...). The enum and the registry's name list
// both expand it, so they cannot drift apart.
#define VSW_COUNTER_ID(id, name) id,
#define VSW_COUNTER_NAME(id, name) name,

struct StageDesc {
  const char* name;
  const char* help;
  std::vector<const char*> next_steps;  // documentation of what the stage may decide
  std::vector<const char*> counters;
  bool tcp;  // needs both directions of a flow on one PMD (flow-owner handoff)
  std::unique_ptr<Stage> (*make)(const StageInit&);
};

// The registry: every stage the switch knows, in default pipeline order.
const std::vector<StageDesc>& stage_registry();
int stage_index(const std::string& name);

}  // namespace vsw
