#include "bench/testbed/link.h"

#include <algorithm>

#include "bench/testbed/clock.h"
#include "bench/testbed/ecn.h"

namespace tb {

namespace {
constexpr unsigned kRing = 1u << 15;  // packets in queue + in flight (the mbuf pool is the real limit)
constexpr unsigned kMaxHeld = 64;
}  // namespace

LinkStage::LinkStage(const LinkParams& p) : p_(p), rng_(p.seed), ring_(kRing), mask_(kRing - 1) {
  if (p_.rate_mbit > 0) cycles_per_byte_ = 8.0 * static_cast<double>(tsc_hz()) / (p_.rate_mbit * 1e6);
  burst_cycles_ = static_cast<uint64_t>(p_.burst_bytes * cycles_per_byte_);
  delay_cycles_ = us_to_tsc(p_.delay_us);
  hold_cycles_ = us_to_tsc(p_.reorder_hold_us);
  held_.reserve(kMaxHeld);
}

LinkStage::~LinkStage() {
  for (uint64_t i = head_; i != tail_; ++i) rte_pktmbuf_free(ring_[i & mask_].m);
  for (auto& h : held_) rte_pktmbuf_free(h.m);
}

// Packets whose departure time has passed leave the queue (and stay in
// flight until their delivery time).
void LinkStage::update_queue(uint64_t now) {
  while (qhead_ != tail_ && ring_[qhead_ & mask_].depart <= now) {
    qbytes_ -= ring_[qhead_ & mask_].len;
    ++qhead_;
  }
}

bool LinkStage::aqm_says_mark() {
  // Occupancy seen on arrival, the arriving packet not counted.
  const uint64_t q = tail_ - qhead_;
  bool mark = false;
  if (p_.ecn_k_pkts > 0 && q > p_.ecn_k_pkts) mark = true;
  if (p_.ecn_k_bytes > 0 && qbytes_ > p_.ecn_k_bytes) mark = true;
  if (p_.red_max > 0) {
    // Average updated per arrival; no idle-time decay (documented limit).
    red_avg_ = (1 - p_.red_wq) * red_avg_ + p_.red_wq * static_cast<double>(q);
    if (red_avg_ >= p_.red_max)
      mark = true;
    else if (red_avg_ >= p_.red_min && draw(p_.red_maxp * (red_avg_ - p_.red_min) / (p_.red_max - p_.red_min)))
      mark = true;
  }
  return mark;
}

void LinkStage::push(rte_mbuf** pkts, unsigned n, uint64_t now) {
  update_queue(now);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    ++c_.rx;
    if (draw(p_.loss)) {
      ++c_.drop_loss;
      rte_pktmbuf_free(m);
      continue;
    }
    const uint32_t len = rte_pktmbuf_pkt_len(m) + static_cast<uint32_t>(p_.overhead_bytes);
    const uint64_t queued = tail_ - qhead_;
    if (queued >= p_.queue_pkts || (p_.queue_bytes > 0 && qbytes_ + len > p_.queue_bytes)) {
      ++c_.drop_queue;
      rte_pktmbuf_free(m);
      continue;
    }
    if (tail_ - head_ > mask_) {
      ++c_.drop_full;
      rte_pktmbuf_free(m);
      continue;
    }
    if (aqm_says_mark()) {
      const Ecn e = mark_ce(m);
      if (e == Ecn::kEct) {
        ++c_.ce_marked;
      } else if (e == Ecn::kCe) {
        ++c_.ce_already;
      } else if (p_.nonect_drop) {
        ++c_.drop_aqm;
        rte_pktmbuf_free(m);
        continue;
      }
    }
    uint64_t depart = now;
    if (cycles_per_byte_ > 0) {
      const uint64_t floor = now > burst_cycles_ ? now - burst_cycles_ : 0;
      finish_ = std::max(finish_, floor) + static_cast<uint64_t>(len * cycles_per_byte_);
      depart = std::max(finish_, now);
    }
    ring_[tail_ & mask_] = Entry{m, depart, depart + delay_cycles_, len};
    ++tail_;
    qbytes_ += len;
    c_.queue_max_pkts = std::max(c_.queue_max_pkts, static_cast<unsigned>(tail_ - qhead_));
  }
  update_queue(now);
}

unsigned LinkStage::pull(rte_mbuf** out, unsigned max, uint64_t now) {
  update_queue(now);
  unsigned k = 0;
  // Held packets whose hold time ran out go first (nothing overtook them).
  for (size_t i = 0; i < held_.size() && k < max;) {
    if (held_[i].deadline <= now) {
      out[k++] = held_[i].m;
      held_.erase(held_.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  while (k < max && head_ != qhead_ && ring_[head_ & mask_].due <= now) {
    rte_mbuf* m = ring_[head_ & mask_].m;
    ++head_;
    if (held_.size() < kMaxHeld && draw(p_.reorder)) {
      held_.push_back(Held{m, p_.reorder_gap, now + hold_cycles_});
      ++c_.reordered;
      continue;
    }
    out[k++] = m;
    // This packet overtook every held one; release those overtaken enough.
    for (size_t i = 0; i < held_.size();) {
      if (held_[i].left > 0) --held_[i].left;
      if (held_[i].left == 0 && k < max) {
        out[k++] = held_[i].m;
        held_.erase(held_.begin() + static_cast<long>(i));
      } else {
        if (held_[i].left == 0) held_[i].deadline = now;  // no room now: first out next time
        ++i;
      }
    }
  }
  c_.tx += k;
  return k;
}

uint64_t LinkStage::next_due(uint64_t) const {
  uint64_t t = kNever;
  if (head_ != tail_) t = ring_[head_ & mask_].due;
  for (const auto& h : held_) t = std::min(t, h.deadline);
  return t;
}

}  // namespace tb
