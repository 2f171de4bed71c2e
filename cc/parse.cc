#include "cc/parse.h"

#include "cc/net_headers.h"

namespace vsw::net {

std::string_view parse_error_name(ParseError e) {
  switch (e) {
    case ParseError::kNone: return "none";
    case ParseError::kRunt: return "runt";
    case ParseError::kBadEthertype: return "bad_ethertype";
    case ParseError::kVlanTruncated: return "vlan_truncated";
    case ParseError::kIpv4Truncated: return "ipv4_truncated";
    case ParseError::kIpv4BadVersion: return "ipv4_bad_version";
    case ParseError::kIpv4BadIhl: return "ipv4_bad_ihl";
    case ParseError::kIpv4BadTotalLen: return "ipv4_bad_total_len";
    case ParseError::kIpv6Truncated: return "ipv6_truncated";
    case ParseError::kIpv6BadPayloadLen: return "ipv6_bad_payload_len";
    case ParseError::kIpv6BadExtHdr: return "ipv6_bad_ext_hdr";
    case ParseError::kTcpTruncated: return "tcp_truncated";
    case ParseError::kTcpBadDataOffset: return "tcp_bad_data_offset";
    case ParseError::kUdpTruncated: return "udp_truncated";
    case ParseError::kUdpBadLen: return "udp_bad_len";
    case ParseError::kHeadersNotContiguous: return "headers_not_contiguous";
    case ParseError::kCount: break;
  }
  return "unknown";
}

namespace {

// The helpers fill one Parsed in place (by reference, inlined): passing it by
// value between them cost store-to-load forwarding stalls (narrow field
// stores read back as wide copies) that were a quarter of the parse cost.
inline void fail(Parsed& p, ParseError e) {
  p.flags |= kFlagMalformed;
  p.err = e;
}

// Bytes [off, off+need) must lie inside the frame; inside the contiguous
// region too, or the headers are split across segments.
inline ParseError need(uint32_t off, uint32_t n, uint32_t contig, uint32_t pkt, ParseError short_err) {
  if (off + n > pkt) return short_err;
  if (off + n > contig) return ParseError::kHeadersNotContiguous;
  return ParseError::kNone;
}

inline void parse_l4(const uint8_t* d, uint32_t contig, uint32_t pkt, Parsed& p, uint8_t proto, uint32_t l4_off,
                     uint32_t l4_bytes) {
  p.l4_proto = proto;
  if (proto == kProtoTcp) {
    if (l4_bytes < sizeof(TcpHdr)) return fail(p, ParseError::kTcpTruncated);
    if (auto e = need(l4_off, sizeof(TcpHdr), contig, pkt, ParseError::kTcpTruncated); e != ParseError::kNone)
      return fail(p, e);
    const auto* th = reinterpret_cast<const TcpHdr*>(d + l4_off);
    uint32_t hl = th->hdr_len();
    if (hl < sizeof(TcpHdr) || hl > l4_bytes) return fail(p, ParseError::kTcpBadDataOffset);
    if (auto e = need(l4_off, hl, contig, pkt, ParseError::kTcpBadDataOffset); e != ParseError::kNone)
      return fail(p, e);
    p.flags |= kFlagTcp;
    p.l4_off = static_cast<uint16_t>(l4_off);
    p.l4_len = static_cast<uint8_t>(hl);
    p.payload_len = l4_bytes - hl;
  } else if (proto == kProtoUdp) {
    if (l4_bytes < sizeof(UdpHdr)) return fail(p, ParseError::kUdpTruncated);
    if (auto e = need(l4_off, sizeof(UdpHdr), contig, pkt, ParseError::kUdpTruncated); e != ParseError::kNone)
      return fail(p, e);
    const auto* uh = reinterpret_cast<const UdpHdr*>(d + l4_off);
    uint32_t ul = uh->len.get();
    // 0 is legal for UDP over IPv6 jumbograms and for GSO super-packets.
    if (ul != 0 && (ul < sizeof(UdpHdr) || ul > l4_bytes)) return fail(p, ParseError::kUdpBadLen);
    p.flags |= kFlagUdp;
    p.l4_off = static_cast<uint16_t>(l4_off);
    p.l4_len = sizeof(UdpHdr);
    p.payload_len = l4_bytes - sizeof(UdpHdr);
  }
}

inline bool is_ipv6_ext(uint8_t nh) { return nh == 0 || nh == 43 || nh == 60 || nh == 44 || nh == 51; }

// L2 part shared by both parsers: fills p, returns the L3 ethertype and its offset.
inline bool parse_l2(const uint8_t* d, uint32_t& contig, uint32_t pkt, Parsed& p, uint16_t& type, uint32_t& off) {
  if (contig > pkt) contig = pkt;
  if (pkt < sizeof(EtherHdr)) {
    fail(p, ParseError::kRunt);
    return false;
  }
  if (contig < sizeof(EtherHdr)) {
    fail(p, ParseError::kHeadersNotContiguous);
    return false;
  }
  const auto* eh = reinterpret_cast<const EtherHdr*>(d);
  type = eh->type.get();
  off = sizeof(EtherHdr);
  if (type == kEtherVlan || type == kEtherQinQ) {
    if (auto e = need(off, sizeof(VlanHdr), contig, pkt, ParseError::kVlanTruncated); e != ParseError::kNone) {
      fail(p, e);
      return false;
    }
    const auto* vh = reinterpret_cast<const VlanHdr*>(d + off);
    p.flags |= kFlagVlan;
    p.vlan_tci = vh->tci.get();
    type = vh->type.get();
    off += sizeof(VlanHdr);
  }
  if (type > 1500 && type < 1536) {
    fail(p, ParseError::kBadEthertype);
    return false;
  }
  return true;
}

inline void parse_l3(const uint8_t* d, uint32_t contig, uint32_t pkt, Parsed& p, uint16_t type, uint32_t off) {
  if (type == kEtherIPv4) {
    if (auto e = need(off, sizeof(Ipv4Hdr), contig, pkt, ParseError::kIpv4Truncated); e != ParseError::kNone)
      return fail(p, e);
    const auto* ih = reinterpret_cast<const Ipv4Hdr*>(d + off);
    if (ih->version() != 4) return fail(p, ParseError::kIpv4BadVersion);
    uint32_t hl = ih->hdr_len();
    if (hl < sizeof(Ipv4Hdr)) return fail(p, ParseError::kIpv4BadIhl);
    if (auto e = need(off, hl, contig, pkt, ParseError::kIpv4BadIhl); e != ParseError::kNone) return fail(p, e);
    uint32_t tot = ih->total_len.get();
    if (tot < hl || tot > pkt - off) return fail(p, ParseError::kIpv4BadTotalLen);
    p.flags |= kFlagIPv4;
    p.l3_off = static_cast<uint16_t>(off);
    p.l3_len = hl;
    p.ip_total = tot;
    if (ih->is_fragment()) {
      // Only the first fragment carries the L4 header; never read it as if whole.
      p.flags |= kFlagFragment;
      return;
    }
    return parse_l4(d, contig, pkt, p, ih->proto, off + hl, tot - hl);
  }
  if (type == kEtherIPv6) {
    if (auto e = need(off, sizeof(Ipv6Hdr), contig, pkt, ParseError::kIpv6Truncated); e != ParseError::kNone)
      return fail(p, e);
    const auto* ih = reinterpret_cast<const Ipv6Hdr*>(d + off);
    if ((ih->vtc_flow.get() >> 28) != 6) return fail(p, ParseError::kIpv6Truncated);
    uint32_t plen = ih->payload_len.get();
    if (plen + sizeof(Ipv6Hdr) > pkt - off) return fail(p, ParseError::kIpv6BadPayloadLen);
    p.flags |= kFlagIPv6;
    p.l3_off = static_cast<uint16_t>(off);
    p.ip_total = plen + sizeof(Ipv6Hdr);
    uint8_t nh = ih->next_hdr;
    uint32_t hoff = off + sizeof(Ipv6Hdr);
    const uint32_t end = off + p.ip_total;
    for (int i = 0; i < 8 && is_ipv6_ext(nh); ++i) {
      if (nh == 44) {  // fragment header: L4 not parsed
        p.flags |= kFlagFragment;
        p.l3_len = hoff - off;
        return;
      }
      if (auto e = need(hoff, 8, contig, end, ParseError::kIpv6BadExtHdr); e != ParseError::kNone) return fail(p, e);
      uint32_t elen = nh == 51 ? (d[hoff + 1] + 2u) * 4u : (d[hoff + 1] + 1u) * 8u;
      if (hoff + elen > end) return fail(p, ParseError::kIpv6BadExtHdr);
      nh = d[hoff];
      hoff += elen;
    }
    if (is_ipv6_ext(nh)) return fail(p, ParseError::kIpv6BadExtHdr);
    p.l3_len = hoff - off;
    return parse_l4(d, contig, pkt, p, nh, hoff, end - hoff);
  }
  // other L2 payload (ARP, LLDP, 802.3 length frames): switched, not parsed
}

}  // namespace

Parsed parse_frame_l2(const uint8_t* d, uint32_t contig, uint32_t pkt) {
  Parsed p;
  uint16_t type;
  uint32_t off;
  parse_l2(d, contig, pkt, p, type, off);
  return p;
}

Parsed parse_frame(const uint8_t* d, uint32_t contig, uint32_t pkt) {
  Parsed p;
  uint16_t type;
  uint32_t off;
  if (parse_l2(d, contig, pkt, p, type, off)) parse_l3(d, contig, pkt, p, type, off);
  return p;
}

}  // namespace vsw::net
