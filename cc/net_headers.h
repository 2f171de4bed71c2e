// Typed wire formats: packed header structs, big-endian wrapper types.
// Every struct has a static_assert on its size; fields in network order are
// wrapped so host code cannot forget a byte swap.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>

namespace vsw::net {

template <typename T>
constexpr T bswap(T v) {
  if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(v));
  else if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(v));
  else return static_cast<T>(__builtin_bswap64(v));
}

// A value stored big-endian in a packet.
template <typename T>
struct __attribute__((packed)) Be {
  T raw;
  constexpr T get() const { return bswap(raw); }
  constexpr void set(T v) { raw = bswap(v); }
  static constexpr Be from(T v) { Be b{}; b.set(v); return b; }
  friend constexpr bool operator==(Be a, Be b) { return a.raw == b.raw; }
};
using be16 = Be<uint16_t>;
using be32 = Be<uint32_t>;
static_assert(sizeof(be16) == 2 && sizeof(be32) == 4);

struct Mac {
  std::array<uint8_t, 6> b;
  bool is_multicast() const { return b[0] & 1; }
  bool is_broadcast() const { return (b[0] & b[1] & b[2] & b[3] & b[4] & b[5]) == 0xff; }
  uint64_t as_u64() const {
    uint64_t v = 0;
    std::memcpy(&v, b.data(), 6);
    return v;
  }
  friend bool operator==(const Mac&, const Mac&) = default;
};
static_assert(sizeof(Mac) == 6);

inline constexpr uint16_t kEtherIPv4 = 0x0800;
inline constexpr uint16_t kEtherIPv6 = 0x86dd;
inline constexpr uint16_t kEtherVlan = 0x8100;
inline constexpr uint16_t kEtherQinQ = 0x88a8;
inline constexpr uint16_t kEtherArp = 0x0806;

struct __attribute__((packed)) EtherHdr {
  Mac dst;
  Mac src;
  be16 type;
};
static_assert(sizeof(EtherHdr) == 14);

struct __attribute__((packed)) VlanHdr {
  be16 tci;
  be16 type;
};
static_assert(sizeof(VlanHdr) == 4);

inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

struct __attribute__((packed)) Ipv4Hdr {
  uint8_t ver_ihl;
  uint8_t tos;
  be16 total_len;
  be16 id;
  be16 frag_off;
  uint8_t ttl;
  uint8_t proto;
  uint16_t csum;  // kept raw: checksum math works on network-order words
  be32 src;
  be32 dst;
  unsigned version() const { return ver_ihl >> 4; }
  unsigned hdr_len() const { return (ver_ihl & 0xf) * 4u; }
  bool is_fragment() const { return (frag_off.get() & 0x3fff) != 0; }
  unsigned ecn() const { return tos & 3u; }
};
static_assert(sizeof(Ipv4Hdr) == 20);

struct __attribute__((packed)) Ipv6Hdr {
  be32 vtc_flow;
  be16 payload_len;
  uint8_t next_hdr;
  uint8_t hop_limit;
  std::array<uint8_t, 16> src;
  std::array<uint8_t, 16> dst;
  unsigned ecn() const { return (vtc_flow.get() >> 20) & 3u; }
};
static_assert(sizeof(Ipv6Hdr) == 40);

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10,
                         kUrg = 0x20, kEce = 0x40, kCwr = 0x80;
}

struct __attribute__((packed)) TcpHdr {
  be16 sport;
  be16 dport;
  be32 seq;
  be32 ack;
  uint8_t off_res;  // data offset in the high nibble
  uint8_t flags;
  be16 window;
  uint16_t csum;  // raw, see Ipv4Hdr::csum
  be16 urg;
  unsigned hdr_len() const { return (off_res >> 4) * 4u; }
};
static_assert(sizeof(TcpHdr) == 20);

struct __attribute__((packed)) UdpHdr {
  be16 sport;
  be16 dport;
  be16 len;
  uint16_t csum;
};
static_assert(sizeof(UdpHdr) == 8);

}  // namespace vsw::net
