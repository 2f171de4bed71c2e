// The window machinery Reno, NewReno, CUBIC and DCTCP share: initial window,
// slow start, byte-counted congestion avoidance, fast recovery, the ECN
// once-per-window rule and the RTO loss window. Algorithms compose these;
// only the reduction factor and the congestion-avoidance growth differ.
#pragma once
#include "cc/congestion/cc_ops.h"

namespace vsw::congestion::core {

enum class RecoveryStyle : uint8_t {
  kReno,     // RFC 5681 sec 3.2: the first ACK of new data ends recovery
  kNewReno,  // RFC 6582: stay until everything sent before the loss is acked
};

enum class LossReaction : uint8_t {
  kIgnore,          // already recovering, or dup ACKs for data sent before `recover`
  kRetransmitOnly,  // enter recovery, but cwnd was already cut for ECN in this window
  kReduce,          // enter recovery with a new ssthresh
};

// Common part of init: cwnd = IW, ssthresh, recover = snd_una - 1 (the ISS).
void init(CcState& s, const CcConfig& cfg);

// RFC 5681 eq. (4): max(FlightSize / 2, 2*SMSS).
uint32_t half_flight(const CcState& s, uint32_t flight_bytes);

// Bookkeeping every ACK needs first: progress ends the repeat-RTO hold, and an
// ACK beyond cwr_end closes the ECN reduction window.
void note_ack(CcState& s, const AckSample& a);

// Window growth is allowed only for new data outside recovery and without ECE
// (RFC 3168 sec 6.1.2: no increase in response to an ECN-Echo ACK).
bool may_grow(const CcState& s, const AckSample& a);

// RFC 5681 sec 3.1 with RFC 3465 byte counting: cwnd += min(N, L), stopping
// at ssthresh. Returns false (and does nothing) when cwnd >= ssthresh.
bool slow_start(CcState& s, uint32_t bytes_acked);

// RFC 3465 sec 2.1: +1 SMSS each time a cwnd's worth of bytes is acked.
void reno_avoidance(CcState& s, uint32_t bytes_acked);

// An ACK while in fast recovery: dup-ACK inflation, partial ACK deflation
// (NewReno), or exit.
AckOutcome recovery_ack(CcState& s, const AckSample& a, RecoveryStyle style);

// Decide how to answer a loss signal; enter_recovery then applies it once the
// algorithm has set ssthresh (unless the answer was kRetransmitOnly).
LossReaction classify_loss(const CcState& s, const CongestionEvent& e, RecoveryStyle style);
void enter_recovery(CcState& s, const CongestionEvent& e);  // cwnd = ssthresh + 3*SMSS

// ECN: at most one reduction per window of data, none during loss recovery.
bool ecn_may_reduce(const CcState& s);
void mark_cwr(CcState& s, const CongestionEvent& e);

// RTO: a repeat timeout (no progress since the last) keeps ssthresh.
bool timeout_holds_ssthresh(const CcState& s);
// cwnd = loss window (1 SMSS); ssthresh = new_ssthresh unless held; recover = snd_nxt - 1.
void timeout(CcState& s, const TimeoutEvent& e, uint32_t new_ssthresh);

// RFC 5681's answers, shared by Reno, NewReno and DCTCP (RFC 8257 sec 3.5:
// loss as conventional TCP): ssthresh = FlightSize / 2, then fast recovery
// (returns whether to fast-retransmit) or the loss window.
bool halve_on_loss(CcState& s, const CongestionEvent& e, RecoveryStyle style);
void halve_on_timeout(CcState& s, const TimeoutEvent& e);

}  // namespace vsw::congestion::core
