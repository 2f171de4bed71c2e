// Per-packet metadata kept in the mbuf private area: written once by the
// parser at ingress, read by every stage and by the L2 decision.
#pragma once
#include <rte_mbuf.h>

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

// PktMeta lives in the mbuf private area, not in a dynfield: 32 bytes would
// exhaust the dynfield space that drivers need (net_pcap's timestamp). Every
// pool whose mbufs reach the pipeline must come from pkt_pool_create().
inline constexpr uint16_t kPktMetaPrivSize = RTE_ALIGN(sizeof(PktMeta), RTE_MBUF_PRIV_ALIGN);
rte_mempool* pkt_pool_create(const char* name, unsigned n, unsigned cache, uint16_t data_room, int socket);

inline PktMeta& meta(rte_mbuf* m) { return *static_cast<PktMeta*>(rte_mbuf_to_priv(m)); }
inline const PktMeta& meta(const rte_mbuf* m) {
  return *static_cast<const PktMeta*>(rte_mbuf_to_priv(const_cast<rte_mbuf*>(m)));
}

// rte_pktmbuf_copy plus the metadata (the private area is not copied by DPDK).
rte_mbuf* pkt_copy(const rte_mbuf* m, rte_mempool* mp);

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
