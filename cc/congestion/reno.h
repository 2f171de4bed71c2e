// Reno (RFC 5681) and NewReno (RFC 6582). They differ only in when fast
// recovery ends: Reno at the first ACK of new data, NewReno at the ACK that
// covers everything sent before the loss.
#pragma once
#include "cc/congestion/cc_ops.h"

namespace vsw::congestion {

extern const CcOps kRenoOps;     // "reno"
extern const CcOps kNewRenoOps;  // "newreno"

}  // namespace vsw::congestion
