// ECN codepoint access for wiresim's AQM: IPv4 TOS / IPv6 traffic class
// behind Ethernet with up to two VLAN tags. Lengths are checked before any
// read; the IPv4 header checksum is updated incrementally (RFC 1624).
#pragma once
#include <rte_mbuf.h>

namespace tb {

enum class Ecn { kNotIp, kNotEct, kEct, kCe };

// Reads the packet's ECN codepoint (kNotIp for anything else or truncated).
Ecn ecn_of(const rte_mbuf* m);

// Sets CE on an ECT packet; returns the codepoint it had before. Does
// nothing to Not-ECT, CE or non-IP packets.
Ecn mark_ce(rte_mbuf* m);

// RFC 1624 eqn. 3: the checksum after one 16-bit word changed from old_w
// to new_w. Words and checksum as stored in the packet (byte order does not
// matter for one's complement sums as long as all three agree).
uint16_t csum_update16(uint16_t csum, uint16_t old_w, uint16_t new_w);

}  // namespace tb
