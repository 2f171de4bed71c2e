// CUBIC (RFC 9438). Windows inside the formulas are in segments and times in
// seconds, as in the RFC; the flow's cwnd stays in bytes.
#pragma once
#include "cc/congestion/cc_ops.h"

namespace vsw::congestion {

extern const CcOps kCubicOps;  // "cubic"

inline constexpr double kCubicC = 0.4;     // segments / s^3 (sec 4.1)
inline constexpr double kCubicBeta = 0.7;  // multiplicative decrease (sec 4.6)
// Reno-friendly additive increase, 3(1 - beta)/(1 + beta) (sec 4.3).
inline constexpr double kCubicAlpha = 3 * (1 - kCubicBeta) / (1 + kCubicBeta);

// K = cbrt((W_max - cwnd_epoch) / C), 0 when cwnd_epoch >= W_max (eq. 2).
double cubic_k(double w_max, double cwnd_epoch);
// W_cubic(t) = C (t - K)^3 + W_max (eq. 1).
double cubic_window(double t_s, double k_s, double w_max);

// Lives in CcState's private area; exposed read-only for tests and telemetry.
struct CubicState {
  double w_max = 0;       // segments
  double k_s = 0;         // seconds
  double w_est = 0;       // Reno-friendly estimate, segments
  double cwnd_prior = 0;  // cwnd when ssthresh was last set, segments
  double cwnd_frac = 0;   // fraction of a byte not yet in cwnd_bytes
  uint64_t epoch_us = 0;  // t_epoch: start of the current congestion avoidance stage
  bool epoch_valid = false;
  bool w_max_from_epoch = true;  // no loss yet / after RTO: K = 0, W_max = cwnd_epoch (sec 4.8)
  bool fast_convergence = true;
};

inline const CubicState& cubic_state(const CcState& s) { return s.priv<CubicState>(); }

}  // namespace vsw::congestion
