#include "tests/unit/flow/pkt_builder.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace vsw::test {

using namespace net;

bool parse_ip(const std::string& s, uint8_t out[16], bool& v6) {
  std::memset(out, 0, 16);
  v6 = s.find(':') != std::string::npos;
  return inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), out) == 1;
}

namespace {

uint32_t pseudo_sum(const uint8_t* l3, bool v6, uint32_t l4_len) {
  uint32_t sum = 0;
  if (v6) {
    sum = csum_partial(l3 + 8, 32, sum);
    const uint32_t be_len = htonl(l4_len);
    sum = csum_partial(&be_len, 4, sum);
    const uint8_t nh[4] = {0, 0, 0, kProtoTcp};
    sum = csum_partial(nh, 4, sum);
  } else {
    sum = csum_partial(l3 + 12, 8, sum);
    const uint8_t pr[2] = {0, kProtoTcp};
    sum = csum_partial(pr, 2, sum);
    const uint16_t be_len = htons(static_cast<uint16_t>(l4_len));
    sum = csum_partial(&be_len, 2, sum);
  }
  return sum;
}

}  // namespace

std::vector<uint8_t> build_frame(const TcpSpec& t) {
  uint8_t sa[16], da[16];
  bool v6a, v6b;
  if (!parse_ip(t.src.ip, sa, v6a) || !parse_ip(t.dst.ip, da, v6b) || v6a != v6b)
    throw std::invalid_argument("bad address");
  const bool v6 = v6a;
  std::vector<uint8_t> opts = t.opts;
  while (opts.size() % 4) opts.push_back(0);
  const uint32_t l2 = sizeof(EtherHdr) + (t.vlan ? sizeof(VlanHdr) : 0);
  const uint32_t l3 = v6 ? sizeof(Ipv6Hdr) : sizeof(Ipv4Hdr);
  const uint32_t l4 = sizeof(TcpHdr) + static_cast<uint32_t>(opts.size());
  std::vector<uint8_t> f(l2 + l3 + l4 + t.payload, 0);
  auto* eh = reinterpret_cast<EtherHdr*>(f.data());
  eh->dst.b = {2, 0, 0, 0, 0, 2};
  eh->src.b = {2, 0, 0, 0, 0, 1};
  const uint16_t et = v6 ? kEtherIPv6 : kEtherIPv4;
  if (t.vlan) {
    eh->type.set(kEtherVlan);
    auto* vh = reinterpret_cast<VlanHdr*>(f.data() + sizeof(EtherHdr));
    vh->tci.set(t.vlan);
    vh->type.set(et);
  } else {
    eh->type.set(et);
  }
  uint8_t* ip = f.data() + l2;
  if (v6) {
    auto* h = reinterpret_cast<Ipv6Hdr*>(ip);
    h->vtc_flow.set(6u << 28);
    h->payload_len.set(static_cast<uint16_t>(l4 + t.payload));
    h->next_hdr = kProtoTcp;
    h->hop_limit = 64;
    std::memcpy(h->src.data(), sa, 16);
    std::memcpy(h->dst.data(), da, 16);
  } else {
    auto* h = reinterpret_cast<Ipv4Hdr*>(ip);
    h->ver_ihl = 0x45;
    h->total_len.set(static_cast<uint16_t>(l3 + l4 + t.payload));
    h->ttl = 64;
    h->proto = kProtoTcp;
    std::memcpy(&h->src, sa, 4);
    std::memcpy(&h->dst, da, 4);
    h->csum = static_cast<uint16_t>(~csum_fold(csum_partial(h, sizeof(*h))));
  }
  auto* th = reinterpret_cast<TcpHdr*>(ip + l3);
  th->sport.set(t.src.port);
  th->dport.set(t.dst.port);
  th->seq.set(t.seq);
  th->ack.set(t.ack);
  th->off_res = static_cast<uint8_t>((l4 / 4) << 4);
  th->flags = t.flags;
  th->window.set(t.window);
  if (!opts.empty()) std::memcpy(ip + l3 + sizeof(TcpHdr), opts.data(), opts.size());
  for (uint32_t i = 0; i < t.payload; ++i) ip[l3 + l4 + i] = static_cast<uint8_t>(i * 7 + 1);
  uint32_t sum = pseudo_sum(ip, v6, l4 + t.payload);
  sum = csum_partial(th, l4 + t.payload, sum);
  th->csum = static_cast<uint16_t>(~csum_fold(sum));
  return f;
}

bool tcp_csum_ok(const std::vector<uint8_t>& f) {
  Parsed p = parse_frame(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
  if (!p.is_tcp()) return false;
  const uint32_t l4_total = p.l4_len + p.payload_len;
  uint32_t sum = pseudo_sum(f.data() + p.l3_off, p.flags & kFlagIPv6, l4_total);
  sum = csum_partial(f.data() + p.l4_off, l4_total, sum);
  return csum_fold(sum) == 0xffff;
}

bool segment_of(const std::vector<uint8_t>& f, TcpSegment& s, uint16_t gso_size) {
  Parsed p = parse_frame(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
  if (p.malformed()) return false;
  const uint16_t vlan = (p.flags & kFlagVlan) ? (p.vlan_tci & 0xfff) : 0;
  return tcp_segment_build(f.data(), static_cast<uint32_t>(f.size()), p.l3_off, p.l4_off, p.l4_len, p.flags,
                           vlan, p.payload_len, gso_size, s);
}

TcpSegment seg(const TcpSpec& t, uint16_t gso_size) {
  TcpSegment s{};
  if (!segment_of(build_frame(t), s, gso_size)) throw std::runtime_error("not a TCP segment");
  return s;
}

}  // namespace vsw::test
