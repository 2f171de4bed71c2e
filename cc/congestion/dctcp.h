// DCTCP (RFC 8257): Reno growth and loss response; on ECN-Echo, cwnd shrinks
// by alpha/2, alpha being the EWMA of the marked fraction per window of data.
#pragma once
#include "cc/congestion/cc_ops.h"

namespace vsw::congestion {

extern const CcOps kDctcpOps;  // "dctcp"

inline constexpr double kDctcpGain = 1.0 / 16;  // estimation gain g (sec 3.3; 1/16 as recommended)

// Lives in CcState's private area; exposed read-only for tests and telemetry.
struct DctcpState {
  double alpha = 1.0;
  uint32_t window_end = 0;  // sec 3.3 DCTCP.WindowEnd
  uint32_t bytes_acked = 0;
  uint32_t bytes_marked = 0;
};

inline const DctcpState& dctcp_state(const CcState& s) { return s.priv<DctcpState>(); }

}  // namespace vsw::congestion
