// Per-packet metadata kept in an mbuf dynamic field: written once by the
// parser at ingress, read by every stage and by the L2 decision.
#pragma once
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <cstdint>

#include "cc/parse.h"

namespace vsw {

struct PktMeta {
  uint16_t in_port;   // switch port number the packet arrived on
  uint16_t vlan;      // effective VLAN id (0 = untagged / no VLAN)
  uint16_t flags;     // net::PktFlag
  uint16_t l3_off;
  uint16_t l4_off;
  uint8_t l4_len;
  uint8_t err;        // net::ParseError
  uint32_t payload_len;
  uint32_t flow_hash; // symmetric over the two directions; 0 if not TCP/UDP
  // Transmit notification: a stage that must know whether this packet really
  // left through its egress (e.g. snoop: entered the guest ring) sets
  // notify_stage = registry index + 1 and its own cookies; the PMD calls that
  // stage's on_tx() after the burst. Cleared by the parser at ingress.
  uint8_t notify_stage;
  uint8_t pad_[3];
  uint32_t cookie[2];
};
static_assert(sizeof(PktMeta) == 32);

// Registers the dynfield; call once after rte_eal_init. Returns false on failure.
bool pkt_meta_register();
extern int g_pkt_meta_offset;

inline PktMeta& meta(rte_mbuf* m) { return *RTE_MBUF_DYNFIELD(m, g_pkt_meta_offset, PktMeta*); }
inline const PktMeta& meta(const rte_mbuf* m) {
  return *RTE_MBUF_DYNFIELD(m, g_pkt_meta_offset, const PktMeta*);
}

// Parses m and fills its PktMeta (in_port set by the caller) and the mbuf
// l2/l3/l4 lengths used by tx offloads. Guest-supplied lengths are replaced.
// The symmetric flow hash is computed only if with_hash (the flow-owner
// handoff needs it); otherwise flow_hash is 0.
// l2_only: Ethernet/VLAN only (pure L2 switching needs no more).
net::Parsed parse_mbuf(rte_mbuf* m, uint16_t in_port, bool with_hash = true, bool l2_only = false);

// Symmetric hash of the IP 5-tuple: both directions of a connection get the same value.
uint32_t flow_hash_symmetric(const uint8_t* frame, const net::Parsed& p);

template <typename T>
inline T* pkt_at(rte_mbuf* m, uint32_t off) {
  return rte_pktmbuf_mtod_offset(m, T*, off);
}

}  // namespace vsw
