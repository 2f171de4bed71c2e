#include "cc/congestion/reno.h"

#include "cc/congestion/window_core.h"

namespace vsw::congestion {

namespace {
using core::RecoveryStyle;

void reno_init(CcState& s, const CcConfig& cfg) { core::init(s, cfg); }

template <RecoveryStyle kStyle>
AckOutcome reno_on_ack(CcState& s, const AckSample& a) {
  core::note_ack(s, a);
  if (s.in_recovery()) return core::recovery_ack(s, a, kStyle);
  if (!core::may_grow(s, a)) return AckOutcome::kNone;
  if (!core::slow_start(s, a.bytes_acked)) core::reno_avoidance(s, a.bytes_acked);
  return AckOutcome::kNone;
}

template <RecoveryStyle kStyle>
bool reno_on_congestion(CcState& s, const CongestionEvent& e) {
  if (e.kind == CongestionKind::kEcnEcho) {
    // RFC 3168 sec 6.1.2: the same reduction as for a loss, without retransmitting.
    if (!core::ecn_may_reduce(s)) return false;
    s.ssthresh_bytes = core::half_flight(s, e.flight_bytes);
    s.cwnd_bytes = s.ssthresh_bytes;
    core::mark_cwr(s, e);
    return true;
  }
  return core::halve_on_loss(s, e, kStyle);
}

}  // namespace

const CcOps kRenoOps = {"reno", reno_init, reno_on_ack<RecoveryStyle::kReno>,
                        reno_on_congestion<RecoveryStyle::kReno>, core::halve_on_timeout};
const CcOps kNewRenoOps = {"newreno", reno_init, reno_on_ack<RecoveryStyle::kNewReno>,
                           reno_on_congestion<RecoveryStyle::kNewReno>, core::halve_on_timeout};

}  // namespace vsw::congestion
