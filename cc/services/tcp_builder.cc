#include "cc/services/tcp_builder.h"

#include <cstring>

#include "cc/checksum.h"
#include "cc/parse.h"

namespace vsw::services {

using net::be16;

namespace {

constexpr unsigned kTsOptLen = 12;          // NOP NOP TS(10)
constexpr uint32_t kMaxIpLength = 0xffff;   // IPv4 total length / IPv6 payload length
constexpr uint16_t kIpv4DontFragment = 0x4000;

inline void put32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}

// SACK blocks that fit in 40 option bytes beside the timestamps.
inline unsigned sack_fit(const TcpFields& f) {
  if (!f.sack) return 0;
  return std::min<unsigned>(f.n_sack, f.has_ts ? 3u : net::tcpopt::kMaxSackBlocks);
}

// Both options are multiples of 4 bytes: no padding.
inline unsigned options_len(const TcpFields& f, unsigned n_sack) {
  return (f.has_ts ? kTsOptLen : 0u) + (n_sack ? 4u + 8u * n_sack : 0u);
}

inline void write_options(uint8_t* p, const TcpFields& f, unsigned n_sack) {
  using namespace net::tcpopt;
  if (f.has_ts) {
    p[0] = kNop, p[1] = kNop, p[2] = kTs, p[3] = kLenTs;
    put32(p + 4, f.ts_val);
    put32(p + 8, f.ts_ecr);
    p += kTsOptLen;
  }
  if (!n_sack) return;
  p[0] = kNop, p[1] = kNop, p[2] = kSack, p[3] = static_cast<uint8_t>(2 + 8 * n_sack);
  p += 4;
  for (unsigned i = 0; i < n_sack; ++i, p += 8) {
    put32(p, f.sack[i].left);
    put32(p + 4, f.sack[i].right);
  }
}

// Seq, ack, data offset, flags, window and options; ports, checksum and
// urgent pointer come from the template (checksum zero).
inline void write_tcp(uint8_t* l4, const TcpFields& f, unsigned n_sack, uint16_t tcp_hl) {
  auto* th = reinterpret_cast<net::TcpHdr*>(l4);
  th->seq.set(f.seq.raw());
  th->ack.set(f.ack.raw());
  th->off_res = static_cast<uint8_t>((tcp_hl / 4) << 4);
  th->flags = f.flags;
  th->window.set(f.window.raw);
  write_options(l4 + sizeof(net::TcpHdr), f, n_sack);
}

// IP length field (and, for IPv4, the header checksum from the template's sum).
inline void write_ip_len(uint8_t* l3, bool v4, uint32_t ip_sum, uint32_t l4_bytes) {
  if (v4) {
    auto* ih = reinterpret_cast<net::Ipv4Hdr*>(l3);
    ih->total_len = be16::from(static_cast<uint16_t>(sizeof(net::Ipv4Hdr) + l4_bytes));
    ih->csum = static_cast<uint16_t>(~net::csum_fold(ip_sum + ih->total_len.raw));
  } else {
    reinterpret_cast<net::Ipv6Hdr*>(l3)->payload_len = be16::from(static_cast<uint16_t>(l4_bytes));
  }
}

// One's-complement sum of n bytes, folded to 16 bits: the same value as
// csum_fold(csum_partial(p, n)), eight bytes a step (32-bit halves into a
// 64-bit accumulator cannot overflow below 2^32 steps; 2^16 = 1 mod 0xffff).
inline uint16_t sum_bytes(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s += (w & 0xffffffffu) + (w >> 32);
  }
  if (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    s += w;
    p += 4, n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    s += w;
    p += 2, n -= 2;
  }
  if (n) s += *p;  // the last odd byte is the first byte of a zero-padded word (little endian)
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  return net::csum_fold(static_cast<uint32_t>(s));
}

// Folded one's-complement sum of bytes [off, off + len) of a chain. A segment
// that starts at an odd byte of the range has its sum byte-swapped (RFC 1071
// 2(B)). Not rte_raw_cksum_mbuf: DPDK 22.11 truncates the unfolded sum of such
// a segment to 16 bits before the swap, which loses carries.
inline uint32_t payload_sum(const rte_mbuf* m, uint32_t off, uint32_t len) {
  uint32_t sum = 0, done = 0;
  for (const rte_mbuf* s = m; s && done < len; s = s->next) {
    if (off >= s->data_len) {
      off -= s->data_len;
      continue;
    }
    const uint32_t n = std::min<uint32_t>(s->data_len - off, len - done);
    uint16_t part = sum_bytes(rte_pktmbuf_mtod_offset(s, const uint8_t*, off), n);
    if (done & 1) part = net::bswap(part);
    sum += part;
    done += n;
    off = 0;
  }
  return net::csum_fold(sum);
}

uint16_t write_l2(uint8_t* p, const TcpFlowAddrs& a) {
  auto* eh = reinterpret_cast<net::EtherHdr*>(p);
  eh->dst = a.dst.mac;
  eh->src = a.src.mac;
  const uint16_t l3_type = a.family == 4 ? net::kEtherIPv4 : net::kEtherIPv6;
  if (!a.tagged) {
    eh->type = be16::from(l3_type);
    return sizeof(net::EtherHdr);
  }
  eh->type = be16::from(net::kEtherVlan);
  auto* vh = reinterpret_cast<net::VlanHdr*>(p + sizeof(net::EtherHdr));
  vh->tci = be16::from(a.vlan_tci);
  vh->type = be16::from(l3_type);
  return sizeof(net::EtherHdr) + sizeof(net::VlanHdr);
}

uint16_t write_l3(uint8_t* p, const TcpFlowAddrs& a) {
  if (a.family == 4) {
    auto* ih = reinterpret_cast<net::Ipv4Hdr*>(p);
    ih->ver_ihl = 0x45;
    ih->frag_off = be16::from(kIpv4DontFragment);
    ih->ttl = a.ttl;
    ih->proto = net::kProtoTcp;
    std::memcpy(&ih->src, a.src.ip.data(), 4);
    std::memcpy(&ih->dst, a.dst.ip.data(), 4);
    return sizeof(net::Ipv4Hdr);
  }
  auto* ih = reinterpret_cast<net::Ipv6Hdr*>(p);
  ih->vtc_flow = net::be32::from(6u << 28);
  ih->next_hdr = net::kProtoTcp;
  ih->hop_limit = a.ttl;
  ih->src = a.src.ip;
  ih->dst = a.dst.ip;
  return sizeof(net::Ipv6Hdr);
}

}  // namespace

TcpEndpoint TcpEndpoint::v4(net::Mac mac, uint32_t ip_host_order, uint16_t port) {
  TcpEndpoint e;
  e.mac = mac;
  const uint32_t be = __builtin_bswap32(ip_host_order);
  std::memcpy(e.ip.data(), &be, 4);
  e.port = port;
  return e;
}

bool TcpTemplate::init(const TcpFlowAddrs& a) {
  *this = TcpTemplate{};
  if (a.family != 4 && a.family != 6) return false;
  l2_len_ = static_cast<uint8_t>(write_l2(base_, a));
  uint8_t* l3 = base_ + l2_len_;
  l3_len_ = static_cast<uint8_t>(write_l3(l3, a));
  auto* th = reinterpret_cast<net::TcpHdr*>(l3 + l3_len_);
  th->sport = be16::from(a.src.port);
  th->dport = be16::from(a.dst.port);
  base_len_ = static_cast<uint8_t>(l2_len_ + l3_len_ + sizeof(net::TcpHdr));
  const size_t alen = a.family == 4 ? 4 : 16;
  ip_sum_ = a.family == 4 ? net::csum_partial(l3, sizeof(net::Ipv4Hdr)) : 0;
  pseudo_sum_ = net::csum_partial(a.src.ip.data(), alen, net::csum_partial(a.dst.ip.data(), alen));
  pseudo_sum_ += be16::from(net::kProtoTcp).raw;
  meta_.in_port = a.in_port;
  if (!fill_meta()) {
    *this = TcpTemplate{};
    return false;
  }
  return true;
}

// Runs the project's parser over a header-only packet of this template, so
// that built packets carry what parse_mbuf would give them (flow hash too).
bool TcpTemplate::fill_meta() {
  uint8_t f[sizeof(base_)];
  std::memcpy(f, base_, sizeof(f));
  const uint16_t l4 = static_cast<uint16_t>(l2_len_ + l3_len_);
  write_ip_len(f + l2_len_, is_v4(), ip_sum_, sizeof(net::TcpHdr));
  reinterpret_cast<net::TcpHdr*>(f + l4)->off_res = 5 << 4;
  const net::Parsed p = net::parse_frame(f, base_len_, base_len_);
  if (!p.is_tcp() || p.malformed() || p.l4_off != l4) return false;
  meta_.vlan = (p.flags & net::kFlagVlan) ? static_cast<uint16_t>(p.vlan_tci & 0xfff) : 0;
  meta_.flags = p.flags;
  meta_.l3_off = p.l3_off;
  meta_.l4_off = p.l4_off;
  meta_.err = static_cast<uint8_t>(p.err);
  meta_.flow_hash = flow_hash_symmetric(f, p);
  return true;
}

Built TcpBuilder::fail(BuildStatus s) {
  switch (s) {
    case BuildStatus::kNoMbuf: ++stats_.no_mbuf; break;
    case BuildStatus::kNoRoom: ++stats_.no_room; break;
    case BuildStatus::kBadRequest: ++stats_.bad_request; break;
    case BuildStatus::kOk: break;
  }
  return Built{nullptr, s};
}

// Allocates the head mbuf and writes every header of a packet that will carry
// payload_len bytes (appended by the caller). Null, with st set, on failure.
rte_mbuf* TcpBuilder::start(const TcpTemplate& t, const TcpFields& f, uint32_t payload_len, uint16_t& tcp_hl,
                            BuildStatus& st) {
  const unsigned n_sack = sack_fit(f);
  tcp_hl = static_cast<uint16_t>(sizeof(net::TcpHdr) + options_len(f, n_sack));
  const uint32_t ip_len = (t.is_v4() ? t.l3_len_ : 0u) + tcp_hl + payload_len;
  if (!t.valid() || payload_len > kMaxIpLength || ip_len > kMaxIpLength) {
    st = BuildStatus::kBadRequest;
    return nullptr;
  }
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) {
    st = BuildStatus::kNoMbuf;
    return nullptr;
  }
  const uint16_t hdr = static_cast<uint16_t>(t.base_len_ - sizeof(net::TcpHdr) + tcp_hl);
  if (rte_pktmbuf_tailroom(m) < std::max<size_t>(sizeof(t.base_), hdr)) {
    rte_pktmbuf_free(m);
    st = BuildStatus::kNoRoom;
    return nullptr;
  }
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, hdr));  // room checked above
  std::memcpy(p, t.base_, sizeof(t.base_));  // fixed size: a few vector moves; bytes past hdr are overwritten or unused
  write_tcp(p + t.l2_len_ + t.l3_len_, f, n_sack, tcp_hl);
  write_ip_len(p + t.l2_len_, t.is_v4(), t.ip_sum_, tcp_hl + payload_len);
  if (n_sack < f.n_sack) ++stats_.sack_clipped;
  st = BuildStatus::kOk;
  return m;
}

// TCP checksum (complete, or the pseudo-header sum for the device), mbuf
// offload lengths and PktMeta. Headers and payload are in place.
void TcpBuilder::finish(rte_mbuf* m, const TcpTemplate& t, uint16_t tcp_hl, uint32_t payload_len) {
  const uint16_t l4_off = static_cast<uint16_t>(t.l2_len_ + t.l3_len_);
  auto* th = rte_pktmbuf_mtod_offset(m, net::TcpHdr*, l4_off);
  const uint32_t pseudo = t.pseudo_sum_ + be16::from(static_cast<uint16_t>(tcp_hl + payload_len)).raw;
  if (csum_ == CsumMode::kOffload) {
    th->csum = net::csum_fold(pseudo);
    m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | (t.is_v4() ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6);
  } else {
    const uint32_t sum = net::csum_fold(pseudo) + sum_bytes(reinterpret_cast<const uint8_t*>(th), tcp_hl) +
                         payload_sum(m, l4_off + tcp_hl, payload_len);
    th->csum = static_cast<uint16_t>(~net::csum_fold(sum));
  }
  m->l2_len = t.l2_len_;
  m->l3_len = t.l3_len_;
  m->l4_len = tcp_hl;
  PktMeta& pm = meta(m);
  pm = t.meta_;
  pm.l4_len = static_cast<uint8_t>(tcp_hl);
  pm.payload_len = payload_len;
}

Built TcpBuilder::header_only(const TcpTemplate& t, const TcpFields& f, uint64_t& counter) {
  uint16_t tcp_hl = 0;
  BuildStatus st = BuildStatus::kOk;
  rte_mbuf* m = start(t, f, 0, tcp_hl, st);
  if (!m) return fail(st);
  finish(m, t, tcp_hl, 0);
  ++counter;
  return Built{m, BuildStatus::kOk};
}

Built TcpBuilder::retransmit(const TcpTemplate& t, const TcpFields& f, const HeldPayload& h, PayloadMode mode) {
  if (!h.m || h.off > rte_pktmbuf_pkt_len(h.m) || h.len > rte_pktmbuf_pkt_len(h.m) - h.off)
    return fail(BuildStatus::kBadRequest);
  uint16_t tcp_hl = 0;
  BuildStatus st = BuildStatus::kOk;
  rte_mbuf* m = start(t, f, h.len, tcp_hl, st);
  if (!m) return fail(st);
  st = attach_payload(m, h, mode);
  if (st != BuildStatus::kOk) {
    rte_pktmbuf_free(m);  // also releases what clone_range attached
    return fail(st);
  }
  finish(m, t, tcp_hl, h.len);
  ++stats_.retransmits;
  return Built{m, BuildStatus::kOk};
}

BuildStatus TcpBuilder::attach_payload(rte_mbuf* m, const HeldPayload& h, PayloadMode mode) {
  if (h.len == 0) return BuildStatus::kOk;
  if (mode == PayloadMode::kClone) return clone_range(m, h);
  if (h.len <= rte_pktmbuf_tailroom(m)) {
    auto* dst = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(h.len)));
    const void* src = rte_pktmbuf_read(h.m, h.off, h.len, dst);  // copies into dst if h.m is chained there
    if (src != dst) std::memcpy(dst, src, h.len);
    return BuildStatus::kOk;
  }
  rte_mbuf* c = rte_pktmbuf_copy(h.m, pool_, h.off, h.len);
  if (!c) return BuildStatus::kNoMbuf;
  if (rte_pktmbuf_chain(m, c) != 0) {
    rte_pktmbuf_free(c);
    return BuildStatus::kNoRoom;
  }
  return BuildStatus::kOk;
}

// Chains to m one indirect mbuf per held segment that covers
// [h.off, h.off + h.len), each attached to (one reference on) that segment's data.
BuildStatus TcpBuilder::clone_range(rte_mbuf* m, const HeldPayload& h) {
  rte_mbuf* tail = rte_pktmbuf_lastseg(m);
  uint32_t off = h.off, left = h.len;
  for (rte_mbuf* s = h.m; s && left; s = s->next) {
    if (off >= s->data_len) {
      off -= s->data_len;
      continue;
    }
    if (m->nb_segs == RTE_MBUF_MAX_NB_SEGS) return BuildStatus::kNoRoom;
    rte_mbuf* mi = rte_pktmbuf_alloc(pool_);
    if (!mi) return BuildStatus::kNoMbuf;
    const uint32_t n = std::min<uint32_t>(s->data_len - off, left);
    rte_pktmbuf_attach(mi, s);
    mi->data_off = static_cast<uint16_t>(mi->data_off + off);
    mi->data_len = static_cast<uint16_t>(n);
    mi->pkt_len = n;
    tail->next = mi;
    tail = mi;
    ++m->nb_segs;
    m->pkt_len += n;
    off = 0;
    left -= n;
  }
  return left ? BuildStatus::kBadRequest : BuildStatus::kOk;
}

}  // namespace vsw::services
