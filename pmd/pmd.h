// A poll-mode thread: polls its rx queues in bursts of 32, runs the stage
// pipeline, makes the L2 decision, buffers per egress port and flushes, runs
// stage timers, and sleeps when idle (idle_sleep_max_us) so it can share a
// core on small machines.
#pragma once
#include <rte_gso.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "cc/parse.h"
#include "flowtable/tcp_flow_table.h"
#include "pmd/datapath.h"
#include "pmd/stage.h"

namespace vsw {

struct RxqRef {
  uint16_t port;
  uint16_t queue;
};

// Immutable once published; replaced wholesale by the control thread.
struct PollList {
  std::vector<RxqRef> rxqs;
};

struct alignas(64) PmdStats {
  Counter iterations, busy_cycles, idle_cycles;
  Counter rx_packets, tx_packets;
  Counter flood_packets;          // packets sent to more than one port
  Counter drop_same_port;         // destination is the ingress port
  Counter drop_no_port;           // destination port vanished
  Counter drop_malformed;         // policy drop of malformed frames
  Counter drop_stage;             // stages said drop (see stage counters for why)
  Counter drop_vlan;              // VLAN not allowed at ingress or egress
  Counter drop_no_mbuf;           // copy for VLAN rewrite failed
  Counter handoff_out, handoff_in, handoff_full;
  Counter stage_emitted;
  Counter fdb_learned, fdb_moved, fdb_full;
  Counter sleeps, sleep_ns;
  Counter tx_stalls;              // bursts that took >= kStallMinUs from rx to sent (PmdContext::tx_stalls)
  Counter parse_err[static_cast<size_t>(net::ParseError::kCount)];
};

class PmdContext {
 public:
  // Stages: emit a packet they built. out_port = kNoPort: L2 decision decides.
  virtual void emit(rte_mbuf* m, uint16_t out_port) = 0;
  virtual ~PmdContext() = default;
  unsigned index() const { return index_; }
  uint64_t now_tsc() const { return now_tsc_; }
  uint32_t now_ms() const { return now_ms_; }
  // The latest time this PMD's rx queues were seen drained: the start of the
  // previous poll iteration, held while the PMD is still working off a
  // backlog (an rx queue returned a full burst). A packet of this iteration
  // may have waited in its ring since then, e.g. while this thread was
  // descheduled by the host: a stage that times an endpoint's silence
  // (monitor: guest scheduling) must not count that wait as the endpoint's.
  uint64_t rx_seen_tsc() const { return rx_seen_tsc_; }
  // The latest bursts this PMD took unusually long to handle, from the end of
  // the previous busy rx queue to the end of the burst's send: the thread was
  // descheduled between a stage's step (which stamped the packets) and the
  // send, so those packets reached their ports only at `to`. A stage that
  // times an endpoint's silence from such a packet (monitor: a guest
  // receiver) starts it there. TSC; {0, 0}: none.
  struct Stall {
    uint64_t from, to;
  };
  static constexpr unsigned kStalls = 4;
  static constexpr uint64_t kStallMinUs = 200;  // a burst takes tens of us when the thread runs
  const std::array<Stall, kStalls>& tx_stalls() const { return tx_stalls_; }
  // The PMD's TCP connection table (null if no TCP stage is in the pipeline).
  TcpFlowTable* flows() { return flows_.get(); }
  const TcpFlowTable* flows() const { return flows_.get(); }
  Datapath& dp() { return dp_; }

 protected:
  PmdContext(Datapath& dp, unsigned index) : dp_(dp), index_(index) {}
  Datapath& dp_;
  unsigned index_;
  uint64_t now_tsc_ = 0;
  uint64_t rx_seen_tsc_ = 0;
  std::array<Stall, kStalls> tx_stalls_{};
  unsigned tx_stall_next_ = 0;
  uint32_t now_ms_ = 0;
  std::unique_ptr<TcpFlowTable> flows_;
};

class Pmd final : public PmdContext {
 public:
  Pmd(Datapath& dp, unsigned index, unsigned lcore);
  ~Pmd() override;
  // Creates stage instances and handoff rings; false on failure.
  bool init(const std::vector<nlohmann::json>& stage_configs, unsigned n_pmds);
  bool launch();   // rte_eal_remote_launch on lcore
  void request_stop() { stop_.store(true); }
  void join();

  void emit(rte_mbuf* m, uint16_t out_port) override;

  // Control thread: runs fn on this PMD's thread between two iterations (so it
  // may read single-writer state such as a stage's flow table) and waits for
  // it. Runs fn inline if the PMD is not running. False on timeout (fn is
  // then never run).
  bool call(const std::function<void(Pmd&)>& fn, std::chrono::milliseconds timeout = std::chrono::seconds(2));
  Stage* stage_mut(size_t i) { return i < stages_.size() ? stages_[i].get() : nullptr; }

  // Control thread.
  void set_poll_list(std::unique_ptr<PollList> pl);  // frees the old one after a grace period
  const PollList& poll_list() const { return *poll_.load(std::memory_order_acquire); }
  unsigned lcore() const { return lcore_; }
  const PmdStats& stats() const { return stats_; }
  void clear_stats();
  const Stage* stage(size_t i) const { return i < stages_.size() ? stages_[i].get() : nullptr; }
  rte_ring* handoff_ring_from(unsigned src) const { return in_rings_[src]; }
  nlohmann::json stats_json() const;

  int run();  // the loop; public for the launch trampoline

 private:
  struct TxBuf {
    uint16_t n = 0;
    bool dirty = false;
    Port* port = nullptr;
    rte_mbuf* pkts[2 * kBurst];
  };

  void process_rx(Port* p, rte_mbuf** pkts, uint16_t n);
  void run_pipeline(Batch& b);
  bool tcp_stage_on() const;
  bool any_stage_on() const;
  void track_flows(Batch& b);
  void l2_forward(rte_mbuf** pkts, uint16_t n);
  void to_port(uint16_t port_id, rte_mbuf* m);
  void flush_tx();
  void send_txbuf(Port& p, TxBuf& tb);
  void drain_handoff();
  unsigned handoff_filter(rte_mbuf** pkts, unsigned n);
  bool ingress_vlan(Port& p, rte_mbuf* m);

  void serve_call();

  struct CallSlot {
    std::mutex mu;
    std::condition_variable cv;
    const std::function<void(Pmd&)>* fn = nullptr;  // set by the caller under mu
    bool done = false;
  };
  CallSlot call_;
  std::atomic<bool> call_pending_{false};
  std::mutex call_serial_;  // one caller at a time

  unsigned lcore_;
  unsigned n_pmds_ = 1;
  unsigned rcu_slot_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<const PollList*> poll_;
  std::vector<std::unique_ptr<Stage>> stages_;  // index = registry index (null if not in pipeline)
  std::vector<rte_ring*> in_rings_;             // [src pmd] -> this pmd
  std::vector<rte_mbuf*> emitted_;
  std::vector<std::pair<rte_mbuf*, uint16_t>> emitted_direct_;
  std::unique_ptr<TxBuf[]> txbufs_;
  uint16_t dirty_[kMaxPorts];
  uint16_t n_dirty_ = 0;
  bool notified_ = false;  // transmit notifications were delivered since the last flush
  rte_gso_ctx gso_{};
  std::unique_ptr<BatchFlows> batch_flows_;
  uint64_t last_tick_ = 0;
  uint64_t tick_cycles_ = 0;
  uint32_t now_s_ = 0;
  bool parse_full_ = true;  // this iteration: parse L3/L4 of every packet
  PmdStats stats_;
};

}  // namespace vsw
