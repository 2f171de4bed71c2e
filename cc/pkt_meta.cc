#include "cc/pkt_meta.h"

#include <rte_hash_crc.h>

#include <cstring>

#include "cc/net_headers.h"

namespace vsw {

rte_mempool* pkt_pool_create(const char* name, unsigned n, unsigned cache, uint16_t data_room, int socket) {
  return rte_pktmbuf_pool_create(name, n, cache, kPktMetaPrivSize, data_room, socket);
}

rte_mbuf* pkt_copy(const rte_mbuf* m, rte_mempool* mp) {
  rte_mbuf* c = rte_pktmbuf_copy(m, mp, 0, UINT32_MAX);
  if (c) meta(c) = meta(m);
  return c;
}

uint32_t flow_hash_symmetric(const uint8_t* d, const net::Parsed& p) {
  if (!(p.flags & (net::kFlagTcp | net::kFlagUdp))) return 0;
  uint16_t ports[2];
  std::memcpy(ports, d + p.l4_off, 4);
  uint32_t h = p.l4_proto;
  if (p.flags & net::kFlagIPv4) {
    uint32_t a, b;
    std::memcpy(&a, d + p.l3_off + 12, 4);
    std::memcpy(&b, d + p.l3_off + 16, 4);
    uint64_t ea = (uint64_t(a) << 16) | ports[0], eb = (uint64_t(b) << 16) | ports[1];
    if (ea > eb) std::swap(ea, eb);
    h = rte_hash_crc_8byte(ea, h);
    h = rte_hash_crc_8byte(eb, h);
  } else {
    uint8_t ea[18], eb[18];
    std::memcpy(ea, d + p.l3_off + 8, 16);
    std::memcpy(ea + 16, &ports[0], 2);
    std::memcpy(eb, d + p.l3_off + 24, 16);
    std::memcpy(eb + 16, &ports[1], 2);
    if (std::memcmp(ea, eb, 18) > 0) std::swap(ea, eb);
    h = rte_hash_crc(ea, 18, h);
    h = rte_hash_crc(eb, 18, h);
  }
  return h ? h : 1;
}

net::Parsed parse_mbuf(rte_mbuf* m, uint16_t in_port, bool with_hash, bool l2_only) {
  const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
  net::Parsed p = l2_only ? net::parse_frame_l2(d, rte_pktmbuf_data_len(m), rte_pktmbuf_pkt_len(m))
                          : net::parse_frame(d, rte_pktmbuf_data_len(m), rte_pktmbuf_pkt_len(m));
  PktMeta& pm = meta(m);
  pm.in_port = in_port;
  pm.vlan = (p.flags & net::kFlagVlan) ? (p.vlan_tci & 0xfff) : 0;
  pm.flags = p.flags;
  pm.l3_off = p.l3_off;
  pm.l4_off = p.l4_off;
  pm.l4_len = p.l4_len;
  pm.err = static_cast<uint8_t>(p.err);
  pm.payload_len = p.payload_len;
  pm.flow_hash = (with_hash && !p.malformed()) ? flow_hash_symmetric(d, p) : 0;
  pm.notify_stage = 0;
  if (p.l3_off) {
    m->l2_len = p.l3_off;
    m->l3_len = p.l3_len;
    m->l4_len = p.l4_len;
  }
  return p;
}

}  // namespace vsw
