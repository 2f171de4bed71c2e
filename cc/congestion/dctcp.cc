#include "cc/congestion/dctcp.h"

#include <algorithm>

#include "cc/congestion/window_core.h"

namespace vsw::congestion {

namespace {
using core::RecoveryStyle;

DctcpState& dctcp(CcState& s) { return s.priv<DctcpState>(); }

void dctcp_init(CcState& s, const CcConfig& cfg) {
  core::init(s, cfg);
  DctcpState* d = new (s.priv_bytes) DctcpState{};
  d->alpha = std::clamp(cfg.dctcp_initial_alpha, 0.0, 1.0);
  d->window_end = cfg.snd_una;  // sec 3.3: WindowEnd starts at SND.UNA
}

// Sec 3.3 steps 1-8: count acked and marked bytes; when the ACK passes
// WindowEnd, fold the window's marked fraction into alpha.
void update_alpha(CcState& s, const AckSample& a) {
  DctcpState& d = dctcp(s);
  d.bytes_acked += a.bytes_acked;
  d.bytes_marked += std::min(a.bytes_marked, a.bytes_acked);
  if (!seq_after(a.ack_seq, d.window_end)) return;
  if (d.bytes_acked > 0) {
    const double marked_fraction = static_cast<double>(d.bytes_marked) / d.bytes_acked;
    d.alpha = d.alpha * (1 - kDctcpGain) + kDctcpGain * marked_fraction;
  }
  d.window_end = a.snd_nxt;
  d.bytes_acked = 0;
  d.bytes_marked = 0;
}

AckOutcome dctcp_on_ack(CcState& s, const AckSample& a) {
  core::note_ack(s, a);
  update_alpha(s, a);
  if (s.in_recovery()) return core::recovery_ack(s, a, RecoveryStyle::kNewReno);
  if (!core::may_grow(s, a)) return AckOutcome::kNone;
  // Sec 3.4: growth as conventional TCP (RFC 5681).
  if (!core::slow_start(s, a.bytes_acked)) core::reno_avoidance(s, a.bytes_acked);
  return AckOutcome::kNone;
}

bool dctcp_on_congestion(CcState& s, const CongestionEvent& e) {
  if (e.kind == CongestionKind::kEcnEcho) {
    // Sec 3.3: cwnd = cwnd * (1 - alpha/2), once per window (as RFC 3168).
    // Floor 2 SMSS as Linux; ssthresh follows so growth resumes in CA.
    if (!core::ecn_may_reduce(s)) return false;
    const double cut = s.cwnd_bytes * (1 - dctcp(s).alpha / 2);
    s.cwnd_bytes = std::max(static_cast<uint32_t>(cut), 2 * s.mss_bytes);
    s.ssthresh_bytes = s.cwnd_bytes;
    core::mark_cwr(s, e);
    return true;
  }
  // Sec 3.5: loss is handled as by conventional TCP.
  return core::halve_on_loss(s, e, RecoveryStyle::kNewReno);
}

}  // namespace

const CcOps kDctcpOps = {"dctcp", dctcp_init, dctcp_on_ack, dctcp_on_congestion, core::halve_on_timeout};

}  // namespace vsw::congestion
