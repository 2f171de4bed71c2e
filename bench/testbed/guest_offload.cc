// rte_ipv{4,6}_udptcp_cksum_mbuf are still experimental in 22.11.
#define ALLOW_EXPERIMENTAL_API 1
#include "bench/testbed/guest_offload.h"

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_net.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <cstddef>
#include <cstring>

namespace tb {

GuestOffload::GuestOffload(rte_mempool* direct, rte_mempool* indirect) {
  ctx_.direct_pool = direct;
  ctx_.indirect_pool = indirect;
  ctx_.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
  ctx_.flag = 0;
}

namespace {

// Writes the full L4 checksum of an IPv4/IPv6 TCP or UDP packet whose header
// lengths are in m->l2_len/l3_len. The field is zeroed first: a partial
// checksum (pseudo-header sum) left by the sender must not be summed again.
bool fix_l4_and_ip(rte_mbuf* m, uint32_t ptype) {
  const uint32_t l4 = ptype & RTE_PTYPE_L4_MASK;
  const uint32_t l4_off = m->l2_len + m->l3_len;
  const uint32_t need = l4_off + (l4 == RTE_PTYPE_L4_TCP ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr));
  if (rte_pktmbuf_data_len(m) < need) return false;  // headers must be in the first segment
  // The header structs are packed: go through a byte pointer, not a member address.
  char* field = rte_pktmbuf_mtod_offset(m, char*, l4_off) +
                (l4 == RTE_PTYPE_L4_TCP ? offsetof(rte_tcp_hdr, cksum) : offsetof(rte_udp_hdr, dgram_cksum));
  uint16_t sum = 0;
  std::memcpy(field, &sum, 2);
  if (RTE_ETH_IS_IPV4_HDR(ptype)) {
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, m->l2_len);
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    sum = rte_ipv4_udptcp_cksum_mbuf(m, ip, static_cast<uint16_t>(l4_off));
  } else {
    auto* ip6 = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, m->l2_len);
    sum = rte_ipv6_udptcp_cksum_mbuf(m, ip6, static_cast<uint16_t>(l4_off));
  }
  std::memcpy(field, &sum, 2);
  m->ol_flags &= ~(RTE_MBUF_F_RX_L4_CKSUM_MASK | RTE_MBUF_F_RX_LRO);
  return true;
}

}  // namespace

unsigned GuestOffload::complete(rte_mbuf* m, rte_mbuf** out, unsigned max_out) {
  const bool lro = (m->ol_flags & RTE_MBUF_F_RX_LRO) != 0;
  const bool partial = (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_NONE;
  if (!lro && !partial) {
    out[0] = m;
    return 1;
  }
  rte_net_hdr_lens hl{};
  const uint32_t ptype = rte_net_get_ptype(m, &hl, RTE_PTYPE_ALL_MASK);
  const uint32_t l4 = ptype & RTE_PTYPE_L4_MASK;
  const bool ip = RTE_ETH_IS_IPV4_HDR(ptype) || RTE_ETH_IS_IPV6_HDR(ptype);
  if (!ip || (l4 != RTE_PTYPE_L4_TCP && l4 != RTE_PTYPE_L4_UDP) || (ptype & RTE_PTYPE_TUNNEL_MASK)) {
    ++c_.drop_bad;  // virtio's rx path already handled the other kinds in software
    rte_pktmbuf_free(m);
    return 0;
  }
  m->l2_len = hl.l2_len;
  m->l3_len = hl.l3_len;
  m->l4_len = hl.l4_len;
  if (!lro) {
    if (!fix_l4_and_ip(m, ptype)) {
      ++c_.drop_bad;
      rte_pktmbuf_free(m);
      return 0;
    }
    ++c_.csum_completed;
    out[0] = m;
    return 1;
  }
  // LRO/TSO: never trust the sender's gso size beyond "non-zero and fits".
  if (l4 != RTE_PTYPE_L4_TCP || !RTE_ETH_IS_IPV4_HDR(ptype) || m->tso_segsz == 0) {
    ++(m->tso_segsz == 0 ? c_.drop_bad : c_.drop_nogso);
    rte_pktmbuf_free(m);
    return 0;
  }
  const uint32_t hdr = hl.l2_len + hl.l3_len + hl.l4_len;
  if (hdr + m->tso_segsz >= rte_pktmbuf_pkt_len(m)) {  // fits in one segment: just checksum it
    if (!fix_l4_and_ip(m, ptype)) {
      ++c_.drop_bad;
      rte_pktmbuf_free(m);
      return 0;
    }
    out[0] = m;
    return 1;
  }
  m->ol_flags = RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4;
  ctx_.gso_size = static_cast<uint16_t>(hdr + m->tso_segsz);
  const int n = rte_gso_segment(m, &ctx_, out, static_cast<uint16_t>(max_out));
  if (n == 0) {  // not segmented after all: deliver it whole
    m->ol_flags = 0;
    if (fix_l4_and_ip(m, ptype)) {
      out[0] = m;
      return 1;
    }
    ++c_.drop_bad;
    rte_pktmbuf_free(m);
    return 0;
  }
  rte_pktmbuf_free(m);  // segments hold their own references to the payload
  if (n < 0) {
    ++c_.drop_nogso;
    return 0;
  }
  unsigned kept = 0;
  for (int i = 0; i < n; ++i) {
    rte_mbuf* s = out[i];
    s->ol_flags = 0;
    if (fix_l4_and_ip(s, ptype)) {
      out[kept++] = s;
    } else {
      ++c_.drop_bad;
      rte_pktmbuf_free(s);
    }
  }
  ++c_.segmented;
  c_.segments += kept;
  return kept;
}

}  // namespace tb
