// One TCP packet reduced to what the flow engine and the TCP stages need:
// its connection key and direction, the header fields in host order and the
// parsed options. Built once per packet for the whole batch (design.md
// convention 6), then handed to TcpFlowTable::track_bulk.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cc/flow_key.h"
#include "cc/net_headers.h"
#include "cc/tcp_options.h"

namespace vsw {

struct TcpSegment {
  FlowKey key;
  uint32_t hash;         // flow_key_hash(key)
  uint32_t seq;
  uint32_t ack;
  uint32_t payload_len;  // TSO-sized for offloaded super-segments
  uint16_t window;       // raw header value (unscaled)
  uint16_t seg_size;     // on-the-wire segment size: gso size for TSO, else payload (capped)
  uint8_t flags;         // net::tcpflag
  uint8_t dir;           // 0: sent by key endpoint 0
  uint16_t pad = 0;
  net::TcpOptions opts;

  bool syn() const { return flags & net::tcpflag::kSyn; }
  bool fin() const { return flags & net::tcpflag::kFin; }
  bool rst() const { return flags & net::tcpflag::kRst; }
  bool has_ack() const { return flags & net::tcpflag::kAck; }
  // Sequence space consumed: payload plus one each for SYN and FIN.
  uint32_t seq_len() const { return payload_len + (syn() ? 1u : 0u) + (fin() ? 1u : 0u); }
};

// frame: the contiguous header bytes of the packet (contig_len of them).
// l3_off/l4_off/l4_len/pkt_flags/vlan/payload_len come from parse_frame over
// the same frame. gso_size: the mbuf's tso_segsz when the packet is a TSO
// super-segment, else 0. Returns false if the packet is not usable TCP.
inline bool tcp_segment_build(const uint8_t* frame, uint32_t contig_len, uint16_t l3_off, uint16_t l4_off,
                              uint8_t l4_len, uint16_t pkt_flags, uint16_t vlan, uint32_t payload_len,
                              uint16_t gso_size, TcpSegment& s) {
  if (!(pkt_flags & net::kFlagTcp)) return false;
  if (l4_len < sizeof(net::TcpHdr) || uint32_t(l4_off) + l4_len > contig_len) return false;
  if (!flow_key_build(frame, l3_off, l4_off, pkt_flags, vlan, s.key, s.dir, &s.hash)) return false;
  const auto* th = reinterpret_cast<const net::TcpHdr*>(frame + l4_off);
  s.seq = th->seq.get();
  s.ack = th->ack.get();
  s.payload_len = payload_len;
  s.window = th->window.get();
  s.flags = th->flags;
  s.seg_size = gso_size ? gso_size : static_cast<uint16_t>(std::min<uint32_t>(payload_len, 0xffff));
  // l4_len (not the guest-controlled data offset) bounds the option area.
  net::parse_tcp_options_fast(frame + l4_off + sizeof(net::TcpHdr), l4_len - sizeof(net::TcpHdr), s.opts);
  return true;
}

// Same, from anything shaped like PktMeta.
template <typename Meta>
inline bool tcp_segment_from_meta(const uint8_t* frame, uint32_t contig_len, const Meta& m, uint16_t gso_size,
                                  TcpSegment& s) {
  return tcp_segment_build(frame, contig_len, m.l3_off, m.l4_off, m.l4_len, m.flags, m.vlan, m.payload_len,
                           gso_size, s);
}

}  // namespace vsw
