// The forwarding skeleton shared by vmsim and wiresim: two DPDK ports, one
// Stage per direction between them, an optional Gate that can stop all port
// service (vmsim's "descheduled"), and a poll loop that sleeps when idle.
//
// Buffer ownership: Stage::push takes ownership of the mbufs it is given;
// Stage::pull hands ownership back to the bridge, which transmits them, keeps
// what the egress ring refused for the next loop (never more than one burst),
// and frees nothing silently: every drop is counted by whoever drops.
#pragma once
#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace tb {

// ---- EAL and ports --------------------------------------------------------

// Runs rte_eal_init with argv[0], the user's EAL arguments and one --vdev per
// entry of vdevs. Adds --no-pci, and, when the user gave no core list, an
// lcore 0 that may run on every CPU the process is allowed on: the tools
// sleep-poll and must not pin themselves onto a core others also use.
void eal_init(const std::string& prog, const std::vector<std::string>& eal_args,
              const std::vector<std::string>& vdevs);

// Splits argv at the first "--": EAL arguments before, tool arguments after.
// Without "--" everything is a tool argument.
void split_args(int argc, char** argv, std::vector<std::string>& eal, std::vector<std::string>& tool);

rte_mempool* make_pool(const char* name, unsigned n_mbufs);

struct PortSetup {
  std::string dev_name;  // the vdev name, e.g. "net_tap0"; the port is found by it
  uint16_t ring_size = 256;
  uint64_t rx_offloads = 0;  // what is requested here decides virtio features
  uint64_t tx_offloads = 0;
};
// Configures one rx and one tx queue and starts the port. Throws on error.
uint16_t open_port(const PortSetup& s, rte_mempool* pool);

// ---- Stage, Gate, Bridge --------------------------------------------------

class Stage {
 public:
  virtual ~Stage() = default;
  // How many packets push() accepts now; the bridge reads at most this many
  // from the ingress port, so a full stage back-pressures into that port.
  virtual unsigned room() const = 0;
  // Takes ownership of pkts[0..n).
  virtual void push(rte_mbuf** pkts, unsigned n, uint64_t now) = 0;
  // Moves up to max packets that may leave at `now` to out; ownership passes.
  virtual unsigned pull(rte_mbuf** out, unsigned max, uint64_t now) = 0;
  // TSC time at which pull() will have something, kNever if nothing is held.
  virtual uint64_t next_due(uint64_t now) const = 0;
};

class Gate {
 public:
  virtual ~Gate() = default;
  // Whether the ports may be serviced at `now`; *next_change is the TSC time
  // of the next open/closed transition (kNever if none is planned).
  virtual bool open(uint64_t now, uint64_t* next_change) = 0;
};

// A bounded FIFO of mbufs (power-of-two ring) used by the stages.
class MbufFifo {
 public:
  explicit MbufFifo(unsigned capacity_pow2);
  ~MbufFifo();
  MbufFifo(const MbufFifo&) = delete;
  MbufFifo& operator=(const MbufFifo&) = delete;
  bool push(rte_mbuf* m);  // false when full: caller still owns m
  rte_mbuf* front() const { return ring_[head_ & mask_]; }
  rte_mbuf* pop() { return ring_[head_++ & mask_]; }
  unsigned size() const { return static_cast<unsigned>(tail_ - head_); }
  unsigned free_slots() const { return mask_ + 1 - size(); }
  bool empty() const { return head_ == tail_; }

 private:
  std::vector<rte_mbuf*> ring_;
  unsigned mask_;
  uint64_t head_ = 0, tail_ = 0;
};

// Pass-through stage with an optional per-packet transform (which may turn
// one packet into several, e.g. software GSO). Bounded: back-pressures.
class FifoStage : public Stage {
 public:
  explicit FifoStage(unsigned capacity_pow2 = 1024) : fifo_(capacity_pow2) {}
  unsigned room() const override { return fifo_.free_slots() > 64 ? fifo_.free_slots() - 64 : 0; }
  void push(rte_mbuf** pkts, unsigned n, uint64_t now) override;
  unsigned pull(rte_mbuf** out, unsigned max, uint64_t now) override;
  uint64_t next_due(uint64_t now) const override;
  uint64_t dropped() const { return dropped_; }

 protected:
  // Default: forward as is. Writes up to max_out packets, returns the count;
  // owns m (must free it if it returns 0).
  virtual unsigned transform(rte_mbuf* m, rte_mbuf** out, unsigned max_out);
  uint64_t dropped_ = 0;

 private:
  MbufFifo fifo_;
};

struct DirCounters {
  uint64_t rx = 0;       // packets read from the ingress port
  uint64_t tx = 0;       // packets accepted by the egress port
  uint64_t tx_retry = 0; // tx_burst calls that left packets for the next loop
};

struct BridgeConfig {
  uint16_t port[2] = {0, 1};
  unsigned burst = 32;
  double idle_sleep_us = 30;  // sleep after a poll that found nothing to do
};

class Bridge {
 public:
  // stage[0] carries port[0] -> port[1], stage[1] carries port[1] -> port[0].
  // gate may be null (always open).
  Bridge(const BridgeConfig& cfg, Stage* s01, Stage* s10, Gate* gate);
  ~Bridge();
  // Polls until stop is set or the TSC passes deadline.
  void run(const std::atomic<bool>& stop, uint64_t deadline);
  const DirCounters& counters(int dir) const { return dir_[dir].c; }
  uint64_t sleeps() const { return sleeps_; }
  uint64_t loops() const { return loops_; }
  // Host stalls: the loop came back more than stall_min_us after it should
  // have (after work at once, after an idle sleep at its wake time): the
  // thread was kept off its core (a runqueue wait, a late wakeup). Sleeps
  // through a closed gate are not counted (the gate's own log has them).
  // Intervals on CLOCK_MONOTONIC, us.
  struct Stall {
    uint64_t end_mono_us, dur_us;
  };
  void record_stalls(double min_us) { stall_min_us_ = min_us; }
  const std::vector<Stall>& stalls() const { return stalls_; }

 private:
  struct Dir {
    Stage* stage;
    uint16_t in, out;
    std::vector<rte_mbuf*> pending;  // refused by the egress ring last time
    DirCounters c;
  };
  unsigned service(Dir& d, uint64_t now);
  BridgeConfig cfg_;
  Dir dir_[2];
  Gate* gate_;
  uint64_t sleeps_ = 0, loops_ = 0;
  double stall_min_us_ = 0;  // 0: not recorded
  std::vector<Stall> stalls_;
};

// Installs SIGINT/SIGTERM handlers that set the returned flag.
std::atomic<bool>& stop_flag_on_signals();

}  // namespace tb
