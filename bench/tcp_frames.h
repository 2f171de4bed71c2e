// Synthetic TCP/IPv4 frames for the flow-engine and monitor benchmarks:
// one 128-byte frame buffer per packet, rewritten in place per connection.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "cc/net_headers.h"
#include "cc/parse.h"
#include "cc/tcp_segment.h"

namespace vsw::bench {

inline constexpr uint32_t kFrameLen = 14 + 20 + 32;  // Ethernet, IPv4, TCP + NOP NOP TS
inline constexpr uint32_t kPayload = 1448;

struct Tuple {
  uint32_t client, server;  // host order
  uint16_t cport, sport;
};

struct Frame {
  alignas(64) uint8_t b[128];
};

inline void init_frame(Frame& f) {
  std::memset(f.b, 0, sizeof(f.b));
  reinterpret_cast<net::EtherHdr*>(f.b)->type.set(net::kEtherIPv4);
  auto* ih = reinterpret_cast<net::Ipv4Hdr*>(f.b + 14);
  ih->ver_ihl = 0x45;
  ih->ttl = 64;
  ih->proto = net::kProtoTcp;
  auto* th = reinterpret_cast<net::TcpHdr*>(f.b + 34);
  th->off_res = 8 << 4;
  th->window.set(1000);
  const uint8_t ts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
  std::memcpy(f.b + 54, ts, sizeof(ts));
}

// Writes one packet of connection t into f (client -> server when c2s),
// carrying `payload` bytes per the IP header and TSval tsv.
inline void fill(Frame& f, const Tuple& t, bool c2s, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t payload,
                 uint32_t tsv) {
  auto* ih = reinterpret_cast<net::Ipv4Hdr*>(f.b + 14);
  auto* th = reinterpret_cast<net::TcpHdr*>(f.b + 34);
  ih->total_len.set(static_cast<uint16_t>(20 + 32 + payload));
  ih->src.set(c2s ? t.client : t.server);
  ih->dst.set(c2s ? t.server : t.client);
  th->sport.set(c2s ? t.cport : t.sport);
  th->dport.set(c2s ? t.sport : t.cport);
  th->seq.set(seq);
  th->ack.set(ack);
  th->flags = flags;
  const uint32_t v = __builtin_bswap32(tsv);
  std::memcpy(f.b + 58, &v, 4);
}

inline bool to_segment(const Frame& f, uint32_t payload, TcpSegment& s) {
  const net::Parsed p = net::parse_frame(f.b, kFrameLen, kFrameLen + payload);
  return tcp_segment_build(f.b, kFrameLen, p.l3_off, p.l4_off, p.l4_len, p.flags, 0, p.payload_len, 0, s);
}

// n distinct connections: 16 servers, clients spread over addresses and ports.
inline std::vector<Tuple> make_tuples(size_t n) {
  std::vector<Tuple> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = {0x0a800000u + static_cast<uint32_t>(i >> 4), 0x0a000001u + static_cast<uint32_t>(i & 15),
            static_cast<uint16_t>(10000 + (i % 50000)), 443};
  return v;
}

}  // namespace vsw::bench
