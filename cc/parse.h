// Packet parsing: one pass over L2/L3/L4 headers with every length checked
// before it is read. Works on a contiguous header region so it can be tested
// without DPDK; pkt_meta.h applies it to an mbuf.
#pragma once
#include <cstdint>
#include <string_view>

namespace vsw::net {

enum PktFlag : uint16_t {
  kFlagIPv4 = 1u << 0,
  kFlagIPv6 = 1u << 1,
  kFlagTcp = 1u << 2,
  kFlagUdp = 1u << 3,
  kFlagVlan = 1u << 4,      // frame carried an 802.1Q tag
  kFlagFragment = 1u << 5,  // IP fragment: no L4 header parsed
  kFlagMalformed = 1u << 6,
};

// Why a frame was judged malformed. Names double as counter names.
enum class ParseError : uint8_t {
  kNone = 0,
  kRunt,           // shorter than an Ethernet header
  kBadEthertype,   // 1501..1535: neither a length nor a type
  kVlanTruncated,
  kIpv4Truncated,  // fewer bytes than the IPv4 header
  kIpv4BadVersion,
  kIpv4BadIhl,
  kIpv4BadTotalLen,
  kIpv6Truncated,
  kIpv6BadPayloadLen,
  kIpv6BadExtHdr,
  kTcpTruncated,
  kTcpBadDataOffset,
  kUdpTruncated,
  kUdpBadLen,
  kHeadersNotContiguous,  // headers span mbuf segments
  kCount
};
std::string_view parse_error_name(ParseError e);

struct Parsed {
  uint16_t flags = 0;
  uint16_t vlan_tci = 0;  // host order, valid if kFlagVlan
  uint16_t l3_off = 0;    // 0 = no L3 parsed
  uint16_t l4_off = 0;    // 0 = no L4 parsed
  uint8_t l4_len = 0;     // TCP header length incl. options / 8 for UDP
  uint8_t l4_proto = 0;
  ParseError err = ParseError::kNone;
  uint32_t l3_len = 0;       // IP header (plus IPv6 extension headers)
  uint32_t ip_total = 0;     // bytes from l3_off to end of IP payload, per the IP header
  uint32_t payload_len = 0;  // L4 payload bytes per the IP header (TSO-sized when offloaded)
  bool malformed() const { return flags & kFlagMalformed; }
  bool is_tcp() const { return flags & kFlagTcp; }
};

// data: first contig_len bytes of a frame of pkt_len bytes (contig_len <= pkt_len).
Parsed parse_frame(const uint8_t* data, uint32_t contig_len, uint32_t pkt_len);
// Ethernet and VLAN only (what L2 switching needs); l3_off stays 0.
Parsed parse_frame_l2(const uint8_t* data, uint32_t contig_len, uint32_t pkt_len);

}  // namespace vsw::net
