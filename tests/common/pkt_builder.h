// Test helper: builds Ethernet/VLAN/IPv4/IPv6/TCP/UDP frames as bytes with
// correct checksums, and turns them into mbufs.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cc/checksum.h"
#include "cc/net_headers.h"

namespace vsw::test {

struct Mac6 {
  uint8_t b[6];
};
inline Mac6 mac(uint8_t last, uint8_t first = 0x02) { return Mac6{{first, 0, 0, 0, 0, last}}; }
inline const Mac6 kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

struct TcpSpec {
  uint32_t src_ip = 0x0a000001, dst_ip = 0x0a000002;
  uint16_t sport = 1000, dport = 80;
  uint32_t seq = 1, ack = 0;
  uint8_t flags = net::tcpflag::kAck;
  uint16_t window = 65535;
  std::vector<uint8_t> options;  // raw option bytes, padded to 4 by the builder
  uint32_t payload = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
};

class FrameBuilder {
 public:
  FrameBuilder(Mac6 dst, Mac6 src) : dst_(dst), src_(src) {}
  FrameBuilder& vlan(uint16_t vid) {
    vlan_ = vid;
    return *this;
  }

  std::vector<uint8_t> raw(uint16_t ethertype, const std::vector<uint8_t>& l3) const {
    std::vector<uint8_t> f(dst_.b, dst_.b + 6);
    f.insert(f.end(), src_.b, src_.b + 6);
    if (vlan_) {
      push16(f, net::kEtherVlan);
      push16(f, vlan_);
    }
    push16(f, ethertype);
    f.insert(f.end(), l3.begin(), l3.end());
    return f;
  }

  std::vector<uint8_t> tcp4(const TcpSpec& t) const {
    std::vector<uint8_t> opts = t.options;
    while (opts.size() % 4) opts.push_back(1);  // NOP padding
    const uint32_t thl = 20 + static_cast<uint32_t>(opts.size());
    const uint32_t tot = 20 + thl + t.payload;
    std::vector<uint8_t> ip(tot, 0);
    auto* ih = reinterpret_cast<net::Ipv4Hdr*>(ip.data());
    ih->ver_ihl = 0x45;
    ih->tos = t.tos;
    ih->total_len.set(static_cast<uint16_t>(tot));
    ih->ttl = t.ttl;
    ih->proto = net::kProtoTcp;
    ih->src.set(t.src_ip);
    ih->dst.set(t.dst_ip);
    ih->csum = static_cast<uint16_t>(~net::csum_fold(net::csum_partial(ih, 20)));
    auto* th = reinterpret_cast<net::TcpHdr*>(ip.data() + 20);
    th->sport.set(t.sport);
    th->dport.set(t.dport);
    th->seq.set(t.seq);
    th->ack.set(t.ack);
    th->off_res = static_cast<uint8_t>((thl / 4) << 4);
    th->flags = t.flags;
    th->window.set(t.window);
    std::memcpy(ip.data() + 40, opts.data(), opts.size());
    for (uint32_t i = 0; i < t.payload; ++i) ip[20 + thl + i] = static_cast<uint8_t>(i * 7 + 3);
    th->csum = l4_csum4(ip.data(), thl + t.payload);
    return raw(net::kEtherIPv4, ip);
  }

  std::vector<uint8_t> udp4(uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport, uint32_t payload) const {
    const uint32_t tot = 28 + payload;
    std::vector<uint8_t> ip(tot, 0);
    auto* ih = reinterpret_cast<net::Ipv4Hdr*>(ip.data());
    ih->ver_ihl = 0x45;
    ih->total_len.set(static_cast<uint16_t>(tot));
    ih->ttl = 64;
    ih->proto = net::kProtoUdp;
    ih->src.set(src_ip);
    ih->dst.set(dst_ip);
    ih->csum = static_cast<uint16_t>(~net::csum_fold(net::csum_partial(ih, 20)));
    auto* uh = reinterpret_cast<net::UdpHdr*>(ip.data() + 20);
    uh->sport.set(sport);
    uh->dport.set(dport);
    uh->len.set(static_cast<uint16_t>(8 + payload));
    uh->csum = l4_csum4(ip.data(), 8 + payload);
    return raw(net::kEtherIPv4, ip);
  }

  std::vector<uint8_t> tcp6(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t payload) const {
    std::vector<uint8_t> ip(40 + 20 + payload, 0);
    auto* ih = reinterpret_cast<net::Ipv6Hdr*>(ip.data());
    ih->vtc_flow.set(6u << 28);
    ih->payload_len.set(static_cast<uint16_t>(20 + payload));
    ih->next_hdr = net::kProtoTcp;
    ih->hop_limit = 64;
    ih->src[15] = 1;
    ih->dst[15] = 2;
    ih->src[0] = ih->dst[0] = 0xfd;
    auto* th = reinterpret_cast<net::TcpHdr*>(ip.data() + 40);
    th->sport.set(sport);
    th->dport.set(dport);
    th->seq.set(seq);
    th->off_res = 5 << 4;
    th->flags = net::tcpflag::kAck;
    th->window.set(1000);
    uint32_t sum = net::csum_partial(ih->src.data(), 32);
    sum += htons16(static_cast<uint16_t>(20 + payload));
    sum += htons16(net::kProtoTcp);
    sum = net::csum_partial(ip.data() + 40, 20 + payload, sum);
    th->csum = static_cast<uint16_t>(~net::csum_fold(sum));
    return raw(net::kEtherIPv6, ip);
  }

  // Verifies the IPv4 header and TCP/UDP checksums of a frame (untagged or tagged).
  static bool checksums_ok(const std::vector<uint8_t>& f) {
    size_t l3 = 14;
    if (f.size() >= 18 && f[12] == 0x81 && f[13] == 0x00) l3 = 18;
    if (f.size() < l3 + 20) return false;
    const uint8_t* ip = f.data() + l3;
    const unsigned ihl = (ip[0] & 0xf) * 4u;
    if (net::csum_fold(net::csum_partial(ip, ihl)) != 0xffff) return false;
    const unsigned tot = (ip[2] << 8) | ip[3];
    uint32_t sum = net::csum_partial(ip + 12, 8);
    sum += htons16(static_cast<uint16_t>(tot - ihl));
    sum += htons16(ip[9]);
    sum = net::csum_partial(ip + ihl, tot - ihl, sum);
    return net::csum_fold(sum) == 0xffff;
  }

 private:
  static uint16_t htons16(uint16_t v) { return net::bswap(v); }
  static void push16(std::vector<uint8_t>& f, uint16_t v) {
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v));
  }
  static uint16_t l4_csum4(const uint8_t* ip, uint32_t l4len) {
    uint32_t sum = net::csum_partial(ip + 12, 8);
    sum += htons16(static_cast<uint16_t>(l4len));
    sum += htons16(ip[9]);
    sum = net::csum_partial(ip + 20, l4len, sum);
    uint16_t c = static_cast<uint16_t>(~net::csum_fold(sum));
    return c;
  }
  Mac6 dst_, src_;
  uint16_t vlan_ = 0;
};

}  // namespace vsw::test
