#include "cc/congestion/cubic.h"

#include <algorithm>
#include <cmath>

#include "cc/congestion/window_core.h"

namespace vsw::congestion {

double cubic_k(double w_max, double cwnd_epoch) {
  return w_max > cwnd_epoch ? std::cbrt((w_max - cwnd_epoch) / kCubicC) : 0.0;
}

double cubic_window(double t_s, double k_s, double w_max) {
  const double d = t_s - k_s;
  return kCubicC * d * d * d + w_max;
}

namespace {
using core::RecoveryStyle;

// flight_size * beta_cubic in integer arithmetic (0.7 = 7/10): exact, no
// 69999.99 -> 69999 truncation.
uint32_t times_beta(uint32_t bytes) { return static_cast<uint32_t>(uint64_t{bytes} * 7 / 10); }

CubicState& cubic(CcState& s) { return s.priv<CubicState>(); }

double cwnd_segments(CcState& s) {
  return (s.cwnd_bytes + cubic(s).cwnd_frac) / s.mss_bytes;
}

// cwnd keeps whole bytes; the fraction is carried so per-ACK increments of a
// few bytes are not lost to rounding.
void set_cwnd_segments(CcState& s, double w) {
  const double bytes = std::clamp(w * s.mss_bytes, static_cast<double>(s.mss_bytes), static_cast<double>(kMaxCwnd));
  const double whole = std::floor(bytes);
  s.cwnd_bytes = static_cast<uint32_t>(whole);
  cubic(s).cwnd_frac = bytes - whole;
}

void cubic_init(CcState& s, const CcConfig& cfg) {
  core::init(s, cfg);
  CubicState* c = new (s.priv_bytes) CubicState{};
  c->fast_convergence = cfg.cubic_fast_convergence;
}

// Sec 4.2 / 4.3: t_epoch, K and W_est are set when a congestion avoidance
// stage begins. After an RTO, or when slow start ends without a loss, K = 0
// and W_max = cwnd_epoch (sec 4.8, 4.10).
void start_epoch(CcState& s, uint64_t now_us) {
  CubicState& c = cubic(s);
  const double cwnd_epoch = cwnd_segments(s);
  c.epoch_us = now_us;
  c.epoch_valid = true;
  if (c.w_max_from_epoch || c.w_max <= cwnd_epoch) {
    c.w_max = cwnd_epoch;
    c.k_s = 0;
    c.w_max_from_epoch = false;
  } else {
    c.k_s = cubic_k(c.w_max, cwnd_epoch);
  }
  if (c.cwnd_prior == 0) c.cwnd_prior = cwnd_epoch;  // first slow start ended without loss
  c.w_est = cwnd_epoch;
}

void cubic_avoidance(CcState& s, const AckSample& a) {
  CubicState& c = cubic(s);
  if (!c.epoch_valid) start_epoch(s, a.now_us);
  const double cwnd = cwnd_segments(s);
  const double acked = static_cast<double>(a.bytes_acked) / s.mss_bytes;
  const double t = a.now_us > c.epoch_us ? (a.now_us - c.epoch_us) * 1e-6 : 0.0;
  const double rtt = a.srtt_us * 1e-6;

  // Sec 4.3 eq. 4; alpha becomes 1 once W_est reaches cwnd_prior.
  const double alpha = c.w_est >= c.cwnd_prior ? 1.0 : kCubicAlpha;
  c.w_est += alpha * acked / cwnd;

  double next;
  if (cubic_window(t, c.k_s, c.w_max) < c.w_est) {
    next = std::max(cwnd, c.w_est);  // Reno-friendly region; never shrink in CA
  } else {
    // Sec 4.2: target = W_cubic(t + RTT) bounded to [cwnd, 1.5 cwnd];
    // sec 4.4 / 4.5: cwnd += (target - cwnd) / cwnd per segment acked.
    const double target = std::clamp(cubic_window(t + rtt, c.k_s, c.w_max), cwnd, 1.5 * cwnd);
    next = cwnd + (target - cwnd) / cwnd * acked;
  }
  set_cwnd_segments(s, next);
}

// Sec 4.6 and 4.7. Returns flight_size * beta in bytes (before the 2-SMSS floor).
uint32_t cubic_reduce(CcState& s, uint32_t flight_bytes) {
  CubicState& c = cubic(s);
  const double cwnd = cwnd_segments(s);
  c.w_max = (c.fast_convergence && cwnd < c.w_max) ? cwnd * (1 + kCubicBeta) / 2 : cwnd;
  c.w_max_from_epoch = false;
  c.cwnd_prior = cwnd;
  c.epoch_valid = false;
  const uint32_t reduced = times_beta(flight_bytes);
  s.ssthresh_bytes = std::max(reduced, 2 * s.mss_bytes);
  return reduced;
}

AckOutcome cubic_on_ack(CcState& s, const AckSample& a) {
  core::note_ack(s, a);
  if (s.in_recovery()) return core::recovery_ack(s, a, RecoveryStyle::kNewReno);
  if (!core::may_grow(s, a)) return AckOutcome::kNone;
  if (!core::slow_start(s, a.bytes_acked)) cubic_avoidance(s, a);
  return AckOutcome::kNone;
}

bool cubic_on_congestion(CcState& s, const CongestionEvent& e) {
  if (e.kind == CongestionKind::kEcnEcho) {
    if (!core::ecn_may_reduce(s)) return false;
    const uint32_t reduced = cubic_reduce(s, e.flight_bytes);
    s.cwnd_bytes = std::max(reduced, s.mss_bytes);  // sec 4.6: on ECE cwnd may go down to 1 MSS
    cubic(s).cwnd_frac = 0;
    core::mark_cwr(s, e);
    return true;
  }
  // Fast retransmit / recovery are unchanged by CUBIC (sec 4.2): NewReno's.
  const core::LossReaction r = core::classify_loss(s, e, RecoveryStyle::kNewReno);
  if (r == core::LossReaction::kIgnore) return false;
  if (r == core::LossReaction::kReduce) cubic_reduce(s, e.flight_bytes);
  cubic(s).cwnd_frac = 0;
  core::enter_recovery(s, e);
  return true;
}

// Sec 4.8: Reno's loss window, ssthresh from beta_cubic; the next congestion
// avoidance stage starts with K = 0 and W_max = cwnd_epoch.
void cubic_on_timeout(CcState& s, const TimeoutEvent& e) {
  CubicState& c = cubic(s);
  uint32_t ssthresh = s.ssthresh_bytes;
  if (!core::timeout_holds_ssthresh(s)) {
    c.cwnd_prior = cwnd_segments(s);
    ssthresh = std::max(times_beta(e.flight_bytes), 2 * s.mss_bytes);
  }
  c.w_max_from_epoch = true;
  c.epoch_valid = false;
  c.cwnd_frac = 0;
  core::timeout(s, e, ssthresh);
}
}  // namespace

const CcOps kCubicOps = {"cubic", cubic_init, cubic_on_ack, cubic_on_congestion, cubic_on_timeout};

}  // namespace vsw::congestion
