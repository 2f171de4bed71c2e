// Helpers of the stage-service tests: a test pool, mbufs (single or chained)
// from frame bytes, and an independent reference checksum (RFC 1071, byte by
// byte, big-endian words; nothing shared with cc/checksum.h or DPDK).
#pragma once
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cc/pkt_meta.h"

namespace vsw::test {

// One pool for the whole binary (no per-lcore cache: counts stay exact).
inline rte_mempool* svc_pool() {
  static rte_mempool* p = pkt_pool_create("svc_test", 4095, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return p;
}

// An mbuf holding bytes, split into segments of the given sizes (then as
// full as the data room allows); parse_mbuf fills its PktMeta.
inline rte_mbuf* mbuf_from(const std::vector<uint8_t>& bytes, std::vector<uint32_t> seg_sizes = {},
                           rte_mempool* mp = svc_pool()) {
  rte_mbuf* head = nullptr;
  size_t done = 0;
  for (size_t i = 0; done < bytes.size() || !head; ++i) {
    rte_mbuf* s = rte_pktmbuf_alloc(mp);
    if (!s) return nullptr;
    size_t n = std::min<size_t>(bytes.size() - done, rte_pktmbuf_tailroom(s));
    if (i < seg_sizes.size()) n = std::min<size_t>(n, seg_sizes[i]);
    std::memcpy(rte_pktmbuf_append(s, static_cast<uint16_t>(n)), bytes.data() + done, n);
    done += n;
    if (!head) head = s;
    else if (rte_pktmbuf_chain(head, s) != 0) return nullptr;
  }
  parse_mbuf(head, 0);
  return head;
}

// All bytes of a (possibly chained) packet.
inline std::vector<uint8_t> linear(const rte_mbuf* m) {
  std::vector<uint8_t> v(rte_pktmbuf_pkt_len(m));
  const void* p = rte_pktmbuf_read(m, 0, static_cast<uint32_t>(v.size()), v.data());
  if (p != v.data()) std::memcpy(v.data(), p, v.size());
  return v;
}

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) { return (uint32_t(rd16(p)) << 16) | rd16(p + 2); }

inline uint64_t ref_sum(const uint8_t* p, size_t n, uint64_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += rd16(p + i);
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  return s;
}
inline uint16_t ref_fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// Expected IPv4 header checksum (host order), the field taken as zero.
inline uint16_t ref_ipv4_csum(const uint8_t* ip) {
  const size_t hl = (ip[0] & 0xf) * 4u;
  std::vector<uint8_t> h(ip, ip + hl);
  h[10] = h[11] = 0;
  return static_cast<uint16_t>(~ref_fold(ref_sum(h.data(), hl)));
}

// Pseudo-header sum (not folded) of the TCP segment of tcp_len bytes.
inline uint64_t ref_pseudo(const uint8_t* ip, bool v4, uint32_t tcp_len) {
  if (v4) return ref_sum(ip + 12, 8) + 6 + tcp_len;
  return ref_sum(ip + 8, 32) + 6 + (tcp_len >> 16) + (tcp_len & 0xffff);
}

// Expected TCP checksum (host order) of the segment at th, the field taken as zero.
inline uint16_t ref_tcp_csum(const uint8_t* ip, bool v4, const uint8_t* th, uint32_t tcp_len) {
  std::vector<uint8_t> seg(th, th + tcp_len);
  seg[16] = seg[17] = 0;
  return static_cast<uint16_t>(~ref_fold(ref_pseudo(ip, v4, tcp_len) + ref_sum(seg.data(), tcp_len)));
}

}  // namespace vsw::test
