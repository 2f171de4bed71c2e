#include "pmd/offload.h"

#include <rte_ethdev.h>
#include <rte_ip.h>

#include "cc/pkt_meta.h"

namespace vsw {

namespace {

constexpr uint64_t kL4Flags = RTE_MBUF_F_TX_L4_MASK;

// The L4 checksum field of a TCP or UDP header, or null if none is requested.
uint16_t* l4_csum_field(rte_mbuf* m, uint64_t f) {
  const uint32_t l4 = m->l2_len + m->l3_len;
  if ((f & kL4Flags) == RTE_MBUF_F_TX_TCP_CKSUM || (f & RTE_MBUF_F_TX_TCP_SEG)) {
    if (l4 + sizeof(rte_tcp_hdr) > rte_pktmbuf_data_len(m)) return nullptr;
    return &rte_pktmbuf_mtod_offset(m, rte_tcp_hdr*, l4)->cksum;
  }
  if ((f & kL4Flags) == RTE_MBUF_F_TX_UDP_CKSUM) {
    if (l4 + sizeof(rte_udp_hdr) > rte_pktmbuf_data_len(m)) return nullptr;
    return &rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, l4)->dgram_cksum;
  }
  return nullptr;
}

// Completes IP and L4 checksums of a (possibly chained) packet in software.
bool sw_checksum(rte_mbuf* m) {
  const uint64_t f = m->ol_flags;
  if (m->l2_len + m->l3_len > rte_pktmbuf_data_len(m)) return false;
  const bool wants_l4 = (f & kL4Flags) || (f & RTE_MBUF_F_TX_TCP_SEG);
  uint16_t* l4 = l4_csum_field(m, f);
  if (wants_l4 && !l4) return false;
  const uint32_t l4_off = m->l2_len + m->l3_len;
  if (f & RTE_MBUF_F_TX_IPV4) {
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, m->l2_len);
    if (f & RTE_MBUF_F_TX_IP_CKSUM) {
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    if (l4) {
      *l4 = 0;
      *l4 = rte_ipv4_udptcp_cksum_mbuf(m, ip, l4_off);
    }
  } else if ((f & RTE_MBUF_F_TX_IPV6) && l4) {
    *l4 = 0;
    *l4 = rte_ipv6_udptcp_cksum_mbuf(m, rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, m->l2_len), l4_off);
  }
  m->ol_flags &= ~(kL4Flags | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_SEG);
  return true;
}

}  // namespace

bool sanitize_rx_offload(rte_mbuf* m) {
  const uint64_t f = m->ol_flags;
  if (!(f & (kL4Flags | RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IP_CKSUM))) return true;
  const PktMeta& pm = meta(m);
  // Offsets come from our parser (pkt_meta.cc overwrote l2/l3/l4_len), not from the guest.
  const bool tcp = pm.flags & net::kFlagTcp, udp = pm.flags & net::kFlagUdp;
  if (pm.flags & net::kFlagMalformed) return false;
  if ((f & RTE_MBUF_F_TX_TCP_SEG) && (!tcp || m->tso_segsz < 8 || pm.payload_len == 0)) return false;
  if ((f & kL4Flags) == RTE_MBUF_F_TX_TCP_CKSUM && !tcp) return false;
  if ((f & kL4Flags) == RTE_MBUF_F_TX_UDP_CKSUM && !udp) return false;
  if ((f & kL4Flags) == RTE_MBUF_F_TX_SCTP_CKSUM) return false;
  // Mark the L3 type the way tx offloads and rte_gso expect it.
  m->ol_flags &= ~(RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6);
  m->ol_flags |= (pm.flags & net::kFlagIPv4) ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6;
  return true;
}

unsigned fixup_for_egress(rte_mbuf* m, uint64_t caps, rte_gso_ctx& gso, rte_mbuf** out, unsigned max_out,
                          PortCounters& c) {
  auto drop = [&](rte_mbuf* x) {
    rte_pktmbuf_free(x);
    c.tx_drop_other.add();
    return 0u;
  };
  if ((m->ol_flags & RTE_MBUF_F_TX_TCP_SEG) && !(caps & RTE_ETH_TX_OFFLOAD_TCP_TSO)) {
    gso.gso_size = static_cast<uint16_t>(m->l2_len + m->l3_len + m->l4_len + m->tso_segsz);
    gso.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
    int n = rte_gso_segment(m, &gso, out, static_cast<uint16_t>(max_out));
    if (n < 0) return drop(m);
    if (n > 0) {
      // Segments hold references to m's data; ours is released. rte_gso fixed
      // lengths, ids and sequence numbers but no checksum: complete them all.
      // Segments are new mbufs: give them the packet's metadata, but no
      // transmit notification (a stage marked the whole packet, not a part).
      for (int i = 0; i < n; ++i) {
        meta(out[i]) = meta(m);
        meta(out[i]).notify_stage = 0;
      }
      rte_pktmbuf_free(m);
      c.tx_sw_gso.add();
      for (int i = 0; i < n; ++i) {
        out[i]->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | ((out[i]->ol_flags & RTE_MBUF_F_TX_IPV4) ? RTE_MBUF_F_TX_IP_CKSUM : 0);
        sw_checksum(out[i]);
      }
      c.tx_sw_csum.add(static_cast<uint64_t>(n));
      return static_cast<unsigned>(n);
    }
    m->ol_flags &= ~RTE_MBUF_F_TX_TCP_SEG;  // already small enough
    m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
  }
  const uint64_t f = m->ol_flags;
  const uint64_t l4 = f & kL4Flags;
  const bool l4_ok = l4 == 0 || (f & RTE_MBUF_F_TX_TCP_SEG) ||
                     (caps & (l4 == RTE_MBUF_F_TX_UDP_CKSUM ? RTE_ETH_TX_OFFLOAD_UDP_CKSUM : RTE_ETH_TX_OFFLOAD_TCP_CKSUM));
  const bool ip_ok = !(f & RTE_MBUF_F_TX_IP_CKSUM) || (caps & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
  if (!l4_ok || !ip_ok) {
    if (!sw_checksum(m)) return drop(m);
    c.tx_sw_csum.add();
  }
  out[0] = m;
  return 1;
}

}  // namespace vsw
