#include "bench/testbed/ecn.h"

#include <rte_byteorder.h>

#include <cstring>

namespace tb {
namespace {

constexpr uint16_t kEthIpv4 = 0x0800, kEthIpv6 = 0x86DD, kVlan = 0x8100, kQinQ = 0x88A8;

// Offset of the L3 header and its ethertype, or 0 if not IPv4/IPv6 or too short.
uint32_t l3_offset(const rte_mbuf* m, uint16_t* type) {
  const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  uint32_t off = 12;
  for (int tags = 0; tags <= 2; ++tags) {
    if (len < off + 2) return 0;
    const uint16_t t = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
    if (t == kVlan || t == kQinQ) {
      off += 4;
      continue;
    }
    const uint32_t need = t == kEthIpv4 ? 20 : t == kEthIpv6 ? 40 : 0;
    if (need == 0 || len < off + 2 + need) return 0;
    *type = t;
    return off + 2;
  }
  return 0;
}

Ecn from_bits(unsigned b) { return b == 0 ? Ecn::kNotEct : b == 3 ? Ecn::kCe : Ecn::kEct; }

}  // namespace

uint16_t csum_update16(uint16_t csum, uint16_t old_w, uint16_t new_w) {
  uint32_t s = static_cast<uint16_t>(~csum) + static_cast<uint32_t>(static_cast<uint16_t>(~old_w)) + new_w;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

Ecn ecn_of(const rte_mbuf* m) {
  uint16_t type = 0;
  const uint32_t off = l3_offset(m, &type);
  if (off == 0) return Ecn::kNotIp;
  const auto* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, off);
  if (type == kEthIpv4) return (ip[0] >> 4) == 4 ? from_bits(ip[1] & 3) : Ecn::kNotIp;
  return (ip[0] >> 4) == 6 ? from_bits((ip[1] >> 4) & 3) : Ecn::kNotIp;
}

Ecn mark_ce(rte_mbuf* m) {
  uint16_t type = 0;
  const uint32_t off = l3_offset(m, &type);
  if (off == 0) return Ecn::kNotIp;
  auto* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, off);
  if (type == kEthIpv4) {
    if ((ip[0] >> 4) != 4) return Ecn::kNotIp;
    const Ecn before = from_bits(ip[1] & 3);
    if (before != Ecn::kEct) return before;
    uint16_t old_w, new_w, csum;
    std::memcpy(&old_w, ip, 2);  // version/IHL + TOS: the word holding the ECN bits
    ip[1] |= 3;
    std::memcpy(&new_w, ip, 2);
    std::memcpy(&csum, ip + 10, 2);
    csum = csum_update16(csum, old_w, new_w);
    std::memcpy(ip + 10, &csum, 2);
    return before;
  }
  if ((ip[0] >> 4) != 6) return Ecn::kNotIp;
  const Ecn before = from_bits((ip[1] >> 4) & 3);
  if (before == Ecn::kEct) ip[1] |= 0x30;  // traffic class bits 0-1 sit in byte 1, bits 4-5
  return before;
}

}  // namespace tb
