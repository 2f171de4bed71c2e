// wiresim's per-direction link model (a Stage of the bridge skeleton).
//
// Order a packet meets: random loss -> bottleneck queue (tail drop, ECN/AQM
// decision on arrival) -> rate limiter -> propagation delay -> reordering.
// The rate limiter is a virtual-finish-time (GCRA) token bucket: at arrival a
// packet gets its exact departure time, max(arrival - burst/rate, previous
// departure) + len/rate, and its delivery time departure + delay. Timing
// therefore does not depend on when the poll loop wakes; only delivery can be
// late by the loop's wake-up latency. A packet is "in the queue" until its
// departure time, which is what tail drop and ECN marking look at.
#pragma once
#include <rte_mbuf.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench/testbed/bridge.h"

namespace tb {

struct LinkParams {
  double rate_mbit = 0;        // 0: unlimited
  double burst_bytes = 0;      // token bucket depth beyond one packet
  double overhead_bytes = 0;   // added to each frame's length for the rate (24: preamble+IFG+FCS)
  double delay_us = 0;         // one-way propagation delay
  double loss = 0;             // probability, per packet, before the queue
  double reorder = 0;          // probability that a delivered packet is held back
  unsigned reorder_gap = 3;    // ...until this many later packets have overtaken it
  double reorder_hold_us = 1000;  // ...or this long has passed
  unsigned queue_pkts = 1000;  // tail-drop limit (packets waiting for the rate limiter)
  uint64_t queue_bytes = 0;    // tail-drop limit in bytes, 0: none
  unsigned ecn_k_pkts = 0;     // DCTCP step: mark when more than K packets queued on arrival (0: off)
  uint64_t ecn_k_bytes = 0;    // same in bytes (0: off)
  double red_min = 0, red_max = 0;  // RED thresholds on the average queue, packets (max 0: off)
  double red_maxp = 0.1, red_wq = 0.002;
  bool nonect_drop = true;     // an AQM "mark" on a Not-ECT packet drops it (as RED with ecn)
  uint64_t seed = 1;
};

struct LinkCounters {
  uint64_t rx = 0, tx = 0;
  uint64_t drop_loss = 0, drop_queue = 0, drop_aqm = 0, drop_full = 0;
  uint64_t ce_marked = 0, ce_already = 0, reordered = 0;
  unsigned queue_max_pkts = 0;
};

class LinkStage final : public Stage {
 public:
  explicit LinkStage(const LinkParams& p);
  ~LinkStage() override;
  unsigned room() const override { return 256; }  // never back-pressures: the queue drops
  void push(rte_mbuf** pkts, unsigned n, uint64_t now) override;
  unsigned pull(rte_mbuf** out, unsigned max, uint64_t now) override;
  uint64_t next_due(uint64_t now) const override;
  const LinkCounters& counters() const { return c_; }

 private:
  struct Entry {
    rte_mbuf* m;
    uint64_t depart, due;  // TSC
    uint32_t len;
  };
  struct Held {
    rte_mbuf* m;
    unsigned left;
    uint64_t deadline;
  };
  bool draw(double p) { return p > 0 && static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p; }
  void update_queue(uint64_t now);
  bool aqm_says_mark();

  LinkParams p_;
  LinkCounters c_;
  std::mt19937_64 rng_;
  double cycles_per_byte_ = 0;  // 0: unlimited rate
  uint64_t burst_cycles_ = 0, delay_cycles_ = 0, hold_cycles_ = 0;
  uint64_t finish_ = 0;  // departure time of the last packet accepted
  std::vector<Entry> ring_;
  uint64_t mask_, head_ = 0, qhead_ = 0, tail_ = 0;  // [head, qhead): in flight; [qhead, tail): queued
  uint64_t qbytes_ = 0;
  double red_avg_ = 0;
  std::vector<Held> held_;
};

}  // namespace tb
