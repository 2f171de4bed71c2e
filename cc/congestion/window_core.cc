#include "cc/congestion/window_core.h"

#include <algorithm>

namespace vsw::congestion::core {

namespace {
uint32_t add_capped(uint32_t a, uint64_t b, uint32_t cap) {
  return static_cast<uint32_t>(std::min<uint64_t>(uint64_t{a} + b, cap));
}
}  // namespace

void init(CcState& s, const CcConfig& cfg) {
  s.mss_bytes = cfg.mss ? cfg.mss : 1;
  const uint32_t mss = s.mss_bytes;
  const uint32_t rfc6928_iw = std::min(10 * mss, std::max(2 * mss, 14600u));
  s.cwnd_bytes = std::min(cfg.initial_window ? cfg.initial_window : rfc6928_iw, kMaxCwnd);
  s.ssthresh_bytes = cfg.initial_ssthresh;
  s.ca_bytes_acked = 0;
  s.recover = cfg.snd_una - 1;  // RFC 6582 sec 3.2 step 1: recover starts at the ISS
  s.cwr_end = cfg.snd_una - 1;
  s.abc_limit_segments = static_cast<uint8_t>(std::clamp(cfg.abc_limit_segments, 1u, 255u));
  s.flags = 0;
}

uint32_t half_flight(const CcState& s, uint32_t flight_bytes) {
  return std::max(flight_bytes / 2, 2 * s.mss_bytes);
}

void note_ack(CcState& s, const AckSample& a) {
  if (a.bytes_acked > 0) s.flags &= ~CcState::kRtoBackedOff;
  if ((s.flags & CcState::kInCwr) && seq_after(a.ack_seq, s.cwr_end)) s.flags &= ~CcState::kInCwr;
}

bool may_grow(const CcState& s, const AckSample& a) {
  return !s.in_recovery() && a.bytes_acked > 0 && !a.ece;
}

bool slow_start(CcState& s, uint32_t bytes_acked) {
  if (s.cwnd_bytes >= s.ssthresh_bytes) return false;
  const bool after_rto = s.flags & CcState::kSlowStartAfterRto;
  const uint32_t limit = (after_rto ? 1u : s.abc_limit_segments) * s.mss_bytes;
  // Stops at ssthresh, as Linux does; RFC 5681 would let one ACK overshoot it.
  s.cwnd_bytes = add_capped(s.cwnd_bytes, std::min(bytes_acked, limit), std::min(s.ssthresh_bytes, kMaxCwnd));
  if (s.cwnd_bytes >= s.ssthresh_bytes) s.flags &= ~CcState::kSlowStartAfterRto;
  return true;
}

void reno_avoidance(CcState& s, uint32_t bytes_acked) {
  s.ca_bytes_acked += bytes_acked;
  if (s.ca_bytes_acked >= s.cwnd_bytes) {
    s.ca_bytes_acked -= s.cwnd_bytes;
    s.cwnd_bytes = add_capped(s.cwnd_bytes, s.mss_bytes, kMaxCwnd);
  }
}

AckOutcome recovery_ack(CcState& s, const AckSample& a, RecoveryStyle style) {
  const uint32_t mss = s.mss_bytes;
  if (a.bytes_acked == 0) {
    // RFC 5681 sec 3.2 step 4 / RFC 6582 step 3: each further dup ACK means a
    // segment left the network.
    if (a.dup_ack) s.cwnd_bytes = add_capped(s.cwnd_bytes, mss, kMaxCwnd);
    return AckOutcome::kNone;
  }
  const bool full_ack = style == RecoveryStyle::kReno || seq_after(a.ack_seq, s.recover);
  if (full_ack) {
    // RFC 5681 step 6: cwnd = ssthresh. RFC 6582 step 4 option (1):
    // min(ssthresh, max(FlightSize, SMSS) + SMSS), which avoids a burst.
    s.cwnd_bytes = style == RecoveryStyle::kReno
                       ? s.ssthresh_bytes
                       : std::min(s.ssthresh_bytes, std::max(a.flight_bytes, mss) + mss);
    s.flags &= ~CcState::kInRecovery;
    s.ca_bytes_acked = 0;
    return AckOutcome::kRecoveryExit;
  }
  // RFC 6582 step 5: deflate by the newly acked data, add back one SMSS if at
  // least one SMSS was acked.
  const uint32_t deflated = s.cwnd_bytes > a.bytes_acked ? s.cwnd_bytes - a.bytes_acked : 0;
  s.cwnd_bytes = std::max(deflated + (a.bytes_acked >= mss ? mss : 0), mss);
  return AckOutcome::kPartialAck;
}

LossReaction classify_loss(const CcState& s, const CongestionEvent& e, RecoveryStyle style) {
  if (s.in_recovery()) return LossReaction::kIgnore;
  // RFC 6582 sec 3.2 step 2: dup ACKs that do not cover more than recover come
  // from data sent before the last recovery or RTO: no fast retransmit.
  if (style == RecoveryStyle::kNewReno && !seq_after(e.ack_seq, s.recover)) return LossReaction::kIgnore;
  // RFC 3168 sec 6.1.2: ssthresh is not reduced twice in one window.
  if (s.flags & CcState::kInCwr) return LossReaction::kRetransmitOnly;
  return LossReaction::kReduce;
}

void enter_recovery(CcState& s, const CongestionEvent& e) {
  s.flags |= CcState::kInRecovery;
  s.flags &= ~CcState::kSlowStartAfterRto;
  s.recover = e.snd_nxt - 1;  // highest sequence transmitted so far
  s.cwnd_bytes = add_capped(s.ssthresh_bytes, 3 * uint64_t{s.mss_bytes}, kMaxCwnd);
  s.ca_bytes_acked = 0;
}

bool ecn_may_reduce(const CcState& s) {
  return !(s.flags & (CcState::kInRecovery | CcState::kInCwr));
}

void mark_cwr(CcState& s, const CongestionEvent& e) {
  s.flags |= CcState::kInCwr;
  s.flags &= ~CcState::kSlowStartAfterRto;
  s.cwr_end = e.snd_nxt - 1;
  s.ca_bytes_acked = 0;
}

bool timeout_holds_ssthresh(const CcState& s) { return s.flags & CcState::kRtoBackedOff; }

void timeout(CcState& s, const TimeoutEvent& e, uint32_t new_ssthresh) {
  if (!timeout_holds_ssthresh(s)) s.ssthresh_bytes = new_ssthresh;
  s.cwnd_bytes = s.mss_bytes;  // RFC 5681 sec 3.1: loss window LW = 1 SMSS
  s.flags &= ~(CcState::kInRecovery | CcState::kInCwr);
  s.flags |= CcState::kRtoBackedOff | CcState::kSlowStartAfterRto;
  s.recover = e.snd_nxt - 1;  // RFC 6582 sec 3.2 step 1 (after an RTO)
  s.ca_bytes_acked = 0;
}

bool halve_on_loss(CcState& s, const CongestionEvent& e, RecoveryStyle style) {
  const LossReaction r = classify_loss(s, e, style);
  if (r == LossReaction::kIgnore) return false;
  if (r == LossReaction::kReduce) s.ssthresh_bytes = half_flight(s, e.flight_bytes);
  enter_recovery(s, e);
  return true;
}

void halve_on_timeout(CcState& s, const TimeoutEvent& e) { timeout(s, e, half_flight(s, e.flight_bytes)); }

}  // namespace vsw::congestion::core
