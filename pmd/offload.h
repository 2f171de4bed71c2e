// Egress offload fix-ups: complete in software what the packet asks for
// (TSO, L4/IP checksum) and the egress port cannot do itself.
#pragma once
#include <rte_gso.h>
#include <rte_mbuf.h>

#include "vswitch/port.h"

namespace vsw {

// Validates guest-supplied offload metadata on ingress against the parsed
// headers (never trust csum_start / gso size). Returns false if the packet
// must be dropped (counted by the caller as rx_bad_offload).
bool sanitize_rx_offload(rte_mbuf* m);

// Fixes m up for an egress with capabilities `caps`. May replace m by
// several segments (software GSO): writes up to max_out mbufs to out and
// returns their count; 0 means m could not be fixed and was freed
// (counted in c.tx_drop_other). Ownership of m passes to this function.
unsigned fixup_for_egress(rte_mbuf* m, uint64_t caps, rte_gso_ctx& gso, rte_mbuf** out, unsigned max_out,
                          PortCounters& c);

}  // namespace vsw
