// TcpBuilder: every built packet is parsed back by the project's parser
// (cc/parse.h, cc/tcp_options.h, parse_mbuf) and checked field by field;
// checksums are recomputed from scratch with the reference in svc_test_util.h.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cc/parse.h"
#include "cc/pkt_meta.h"
#include "cc/services/tcp_builder.h"
#include "cc/tcp_options.h"
#include "tests/common/pkt_builder.h"
#include "tests/unit/services/svc_test_util.h"

using namespace vsw;
using namespace vsw::services;
using namespace vsw::test;

namespace {

net::Mac mac_of(uint8_t last) { return net::Mac{{0x02, 0, 0, 0, 0x10, last}}; }

TcpFlowAddrs addrs(uint8_t family = 4, bool tagged = false, uint16_t tci = 0) {
  TcpFlowAddrs a;
  a.src = TcpEndpoint::v4(mac_of(1), 0x0a000001, 5001);
  a.dst = TcpEndpoint::v4(mac_of(2), 0xc0a80102, 40000);
  if (family == 6) {
    a.src.ip = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    a.dst.ip = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 2};
  }
  a.family = family;
  a.tagged = tagged;
  a.vlan_tci = tci;
  a.ttl = 61;
  return a;
}

struct Expect {
  const TcpFlowAddrs& a;
  const TcpFields& f;
  unsigned n_sack;               // SACK blocks expected on the wire
  std::vector<uint8_t> payload;  // expected payload bytes
  bool offload = false;
};

void check_l2(const std::vector<uint8_t>& fr, const net::Parsed& p, const TcpFlowAddrs& a) {
  EXPECT_EQ(0, std::memcmp(fr.data(), a.dst.mac.b.data(), 6));
  EXPECT_EQ(0, std::memcmp(fr.data() + 6, a.src.mac.b.data(), 6));
  ASSERT_EQ(bool(p.flags & net::kFlagVlan), a.tagged);
  if (a.tagged) {
    EXPECT_EQ(p.vlan_tci, a.vlan_tci);
  }
  EXPECT_EQ(p.l3_off, a.tagged ? 18 : 14);
}

void check_l3(const std::vector<uint8_t>& fr, const net::Parsed& p, const TcpFlowAddrs& a) {
  const uint8_t* ip = fr.data() + p.l3_off;
  if (a.family == 4) {
    ASSERT_TRUE(p.flags & net::kFlagIPv4);
    EXPECT_EQ(ip[0], 0x45);
    EXPECT_EQ(rd16(ip + 2), fr.size() - p.l3_off);  // total length: nothing after the packet
    EXPECT_EQ(rd16(ip + 6), 0x4000);                // DF, not a fragment
    EXPECT_EQ(ip[8], a.ttl);
    EXPECT_EQ(ip[9], net::kProtoTcp);
    EXPECT_EQ(0, std::memcmp(ip + 12, a.src.ip.data(), 4));
    EXPECT_EQ(0, std::memcmp(ip + 16, a.dst.ip.data(), 4));
  } else {
    ASSERT_TRUE(p.flags & net::kFlagIPv6);
    EXPECT_EQ(ip[0] >> 4, 6);
    EXPECT_EQ(rd16(ip + 4), fr.size() - p.l3_off - 40);
    EXPECT_EQ(ip[6], net::kProtoTcp);
    EXPECT_EQ(ip[7], a.ttl);
    EXPECT_EQ(0, std::memcmp(ip + 8, a.src.ip.data(), 16));
    EXPECT_EQ(0, std::memcmp(ip + 24, a.dst.ip.data(), 16));
  }
}

void check_options(const net::TcpHdr* th, const Expect& e) {
  net::TcpOptions o;
  net::parse_tcp_options(th, th->hdr_len(), o);
  EXPECT_FALSE(o.malformed());
  EXPECT_FALSE(o.has(net::kOptUnknown | net::kOptDuplicate | net::kOptAfterEol));
  ASSERT_EQ(o.has(net::kOptTs), e.f.has_ts);
  if (e.f.has_ts) {
    EXPECT_EQ(o.ts_val, e.f.ts_val);
    EXPECT_EQ(o.ts_ecr, e.f.ts_ecr);
  }
  ASSERT_EQ(o.has(net::kOptSack), e.n_sack > 0);
  ASSERT_EQ(o.n_sack, e.n_sack);
  for (unsigned i = 0; i < e.n_sack; ++i) {
    EXPECT_EQ(o.sack[i].left, e.f.sack[i].left);
    EXPECT_EQ(o.sack[i].right, e.f.sack[i].right);
  }
  const unsigned opt = (e.f.has_ts ? 12 : 0) + (e.n_sack ? 4 + 8 * e.n_sack : 0);
  EXPECT_EQ(th->hdr_len(), 20 + opt);
}

void check_tcp(const std::vector<uint8_t>& fr, const net::Parsed& p, const Expect& e) {
  const auto* th = reinterpret_cast<const net::TcpHdr*>(fr.data() + p.l4_off);
  EXPECT_EQ(th->sport.get(), e.a.src.port);
  EXPECT_EQ(th->dport.get(), e.a.dst.port);
  EXPECT_EQ(th->seq.get(), e.f.seq.raw());
  EXPECT_EQ(th->ack.get(), e.f.ack.raw());
  EXPECT_EQ(th->flags, e.f.flags);
  EXPECT_EQ(th->window.get(), e.f.window.raw);
  EXPECT_EQ(th->urg.get(), 0);
  EXPECT_EQ(th->off_res & 0x0f, 0);
  check_options(th, e);
  ASSERT_EQ(p.payload_len, e.payload.size());
  EXPECT_TRUE(std::equal(e.payload.begin(), e.payload.end(), fr.begin() + p.l4_off + p.l4_len));
}

void check_csums(const std::vector<uint8_t>& fr, const net::Parsed& p, const Expect& e, const rte_mbuf* m) {
  const uint8_t* ip = fr.data() + p.l3_off;
  const uint8_t* th = fr.data() + p.l4_off;
  const bool v4 = e.a.family == 4;
  if (v4) {
    EXPECT_EQ(rd16(ip + 10), ref_ipv4_csum(ip));
  }
  const uint32_t tcp_len = static_cast<uint32_t>(fr.size() - p.l4_off);
  if (e.offload) {
    EXPECT_EQ(rd16(th + 16), ref_fold(ref_pseudo(ip, v4, tcp_len)));
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_TCP_CKSUM);
    EXPECT_TRUE(m->ol_flags & (v4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6));
  } else {
    EXPECT_EQ(rd16(th + 16), ref_tcp_csum(ip, v4, th, tcp_len));
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, 0u);
  }
}

// PktMeta and mbuf lengths as built, against what parse_mbuf gives the same packet.
void check_meta(rte_mbuf* m, const TcpFlowAddrs& a) {
  const PktMeta built = meta(m);
  const uint64_t l2 = m->l2_len, l3 = m->l3_len, l4 = m->l4_len;
  parse_mbuf(m, a.in_port);
  const PktMeta& want = meta(m);
  EXPECT_EQ(built.in_port, want.in_port);
  EXPECT_EQ(built.vlan, want.vlan);
  EXPECT_EQ(built.vlan, a.tagged ? (a.vlan_tci & 0xfff) : 0);
  EXPECT_EQ(built.flags, want.flags);
  EXPECT_EQ(built.l3_off, want.l3_off);
  EXPECT_EQ(built.l4_off, want.l4_off);
  EXPECT_EQ(built.l4_len, want.l4_len);
  EXPECT_EQ(built.err, want.err);
  EXPECT_EQ(built.payload_len, want.payload_len);
  EXPECT_EQ(built.flow_hash, want.flow_hash);
  EXPECT_NE(built.flow_hash, 0u);
  EXPECT_EQ(built.notify_stage, 0);
  EXPECT_EQ(l2, m->l2_len);
  EXPECT_EQ(l3, m->l3_len);
  EXPECT_EQ(l4, m->l4_len);
}

// Parses m back with the project's parser and checks every field.
void check_built(rte_mbuf* m, const Expect& e) {
  ASSERT_NE(m, nullptr);
  const std::vector<uint8_t> fr = linear(m);
  const net::Parsed p = net::parse_frame(fr.data(), rte_pktmbuf_data_len(m), static_cast<uint32_t>(fr.size()));
  ASSERT_FALSE(p.malformed()) << net::parse_error_name(p.err);
  ASSERT_TRUE(p.is_tcp());
  check_l2(fr, p, e.a);
  check_l3(fr, p, e.a);
  check_tcp(fr, p, e);
  check_csums(fr, p, e, m);
  check_meta(m, e.a);
}

TcpFields ack_fields(uint32_t seq, uint32_t ack, uint16_t raw_win) {
  TcpFields f;
  f.seq = net::Seq(seq);
  f.ack = net::Seq(ack);
  f.window = TcpWindow::from_raw(raw_win);
  return f;
}

// A held packet (as the segment buffer keeps one) with payload_len random
// bytes, split into segments of the given sizes; its payload range.
struct Held {
  rte_mbuf* m = nullptr;
  std::vector<uint8_t> payload;
  HeldPayload range() const {
    const PktMeta& pm = meta(m);
    return HeldPayload{m, uint32_t(pm.l4_off + pm.l4_len), pm.payload_len};
  }
};

Held make_held(uint32_t payload_len, std::vector<uint32_t> segs, std::mt19937& rng) {
  TcpSpec s;
  s.payload = payload_len;
  std::vector<uint8_t> fr = FrameBuilder(mac(2), mac(1)).tcp4(s);
  Held h;
  for (size_t i = fr.size() - payload_len; i < fr.size(); ++i) fr[i] = static_cast<uint8_t>(rng());
  h.payload.assign(fr.end() - payload_len, fr.end());
  h.m = mbuf_from(fr, std::move(segs));
  return h;
}

unsigned seg_refcnt_sum(const rte_mbuf* m) {
  unsigned s = 0;
  for (; m; m = m->next) s += rte_mbuf_refcnt_read(m);
  return s;
}

TEST(TcpBuilder, PureAckIpv4Untagged) {
  const TcpFlowAddrs a = addrs();
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  EXPECT_EQ(t.base_len(), 54);
  TcpBuilder b(svc_pool());
  const TcpFields f = ack_fields(0xfffffff0u, 123456789u, 5000);
  Built r = b.ack(t, f);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.status, BuildStatus::kOk);
  EXPECT_EQ(rte_pktmbuf_pkt_len(r.m), 54u);
  EXPECT_EQ(r.m->nb_segs, 1);
  check_built(r.m, Expect{a, f, 0, {}});
  EXPECT_EQ(b.stats().acks, 1u);
  rte_pktmbuf_free(r.m);
}

TEST(TcpBuilder, AckWithTimestampsAndVlan) {
  const TcpFlowAddrs a = addrs(4, true, 0x6064);  // PCP 3, VID 100
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  EXPECT_EQ(t.meta().vlan, 100);
  TcpBuilder b(svc_pool());
  TcpFields f = ack_fields(1, 2, 65535);
  f.has_ts = true;
  f.ts_val = 0xdeadbeef;
  f.ts_ecr = 7;
  Built r = b.ack(t, f);
  check_built(r.m, Expect{a, f, 0, {}});
  EXPECT_EQ(rte_pktmbuf_pkt_len(r.m), 18u + 20 + 32);
  rte_pktmbuf_free(r.m);
}

TEST(TcpBuilder, ReversedTemplateIsTheOtherDirection) {
  const TcpFlowAddrs a = addrs(4, true, 33);
  const TcpFlowAddrs r = a.reversed();
  TcpTemplate t, u;
  ASSERT_TRUE(t.init(a));
  ASSERT_TRUE(u.init(r));
  TcpBuilder b(svc_pool());
  Built x = b.ack(t, ack_fields(1, 2, 3)), y = b.ack(u, ack_fields(2, 1, 3));
  check_built(y.m, Expect{r, ack_fields(2, 1, 3), 0, {}});
  EXPECT_EQ(r.src.port, a.dst.port);
  EXPECT_EQ(r.dst.mac, a.src.mac);
  EXPECT_EQ(meta(x.m).flow_hash, meta(y.m).flow_hash);  // symmetric: both go to the same PMD
  rte_pktmbuf_free(x.m);
  rte_pktmbuf_free(y.m);
}

TEST(TcpBuilder, WindowFromBytesRoundsDown) {
  EXPECT_EQ(TcpWindow::from_bytes(100000, 7).raw, 781);  // 781 * 128 = 99968 <= 100000
  EXPECT_EQ(TcpWindow::from_bytes(127, 7).raw, 0);
  EXPECT_EQ(TcpWindow::from_bytes(128, 7).raw, 1);
  EXPECT_EQ(TcpWindow::from_bytes(1u << 30, 0).raw, 0xffff);
  EXPECT_EQ(TcpWindow::from_bytes(1u << 24, 20).raw, (1u << 24) >> 14);  // shift clamped to 14
  std::mt19937 rng(1);
  for (int i = 0; i < 10000; ++i) {
    const uint32_t bytes = rng() >> (rng() % 32);
    const uint8_t shift = static_cast<uint8_t>(rng() % 15);
    const uint32_t adv = uint32_t(TcpWindow::from_bytes(bytes, shift).raw) << shift;
    ASSERT_LE(adv, bytes);
    if ((bytes >> shift) <= 0xffff) {
      ASSERT_LT(bytes - adv, 1u << shift);
    }
  }
  // Built with a scale: the field the peer scales never exceeds the byte window.
  const TcpFlowAddrs a = addrs();
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  TcpBuilder b(svc_pool());
  TcpFields f = ack_fields(10, 20, 0);
  f.window = TcpWindow::from_bytes(100000, 7);
  Built r = b.window_update(t, f);
  check_built(r.m, Expect{a, f, 0, {}});
  const uint32_t field = rd16(rte_pktmbuf_mtod_offset(r.m, uint8_t*, meta(r.m).l4_off + 14));
  EXPECT_EQ(field, 781u);
  EXPECT_LE(field << 7, 100000u);
  EXPECT_EQ(b.stats().window_updates, 1u);
  rte_pktmbuf_free(r.m);
}

TEST(TcpBuilder, DupAckWithSackBlocks) {
  const TcpFlowAddrs a = addrs();
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  TcpBuilder b(svc_pool());
  const net::SackBlock blocks[4] = {{5000, 6000}, {7000, 9000}, {0xfffff000u, 0x10u}, {100, 200}};
  for (unsigned n = 1; n <= 4; ++n) {
    for (bool ts : {false, true}) {
      TcpFields f = ack_fields(1, 4000, 1000);
      f.sack = blocks;
      f.n_sack = static_cast<uint8_t>(n);
      f.has_ts = ts;
      f.ts_val = n;
      f.ts_ecr = 99;
      const unsigned want = ts ? std::min(n, 3u) : n;  // 12 + 4 + 8 * 4 > 40
      Built r = b.dup_ack(t, f);
      SCOPED_TRACE("n_sack " + std::to_string(n) + " ts " + std::to_string(ts));
      check_built(r.m, Expect{a, f, want, {}});
      rte_pktmbuf_free(r.m);
    }
  }
  EXPECT_EQ(b.stats().dup_acks, 8u);
  EXPECT_EQ(b.stats().sack_clipped, 1u);
}

TEST(TcpBuilder, Ipv6AckAndVlan) {
  for (bool tagged : {false, true}) {
    const TcpFlowAddrs a = addrs(6, tagged, 4094);
    TcpTemplate t;
    ASSERT_TRUE(t.init(a));
    TcpBuilder b(svc_pool());
    TcpFields f = ack_fields(77, 88, 512);
    f.has_ts = true;
    f.ts_val = 3;
    f.ts_ecr = 4;
    Built r = b.ack(t, f);
    check_built(r.m, Expect{a, f, 0, {}});
    rte_pktmbuf_free(r.m);
  }
}

TEST(TcpBuilder, RetransmitCopyIntoHeaderMbuf) {
  std::mt19937 rng(2);
  Held h = make_held(1000, {}, rng);
  const TcpFlowAddrs a = addrs();
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  TcpBuilder b(svc_pool());
  TcpFields f = ack_fields(0x80000000u, 5, 300);
  f.flags = net::tcpflag::kAck | net::tcpflag::kPsh;
  Built r = b.retransmit(t, f, h.range(), PayloadMode::kCopy);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.m->nb_segs, 1);
  EXPECT_EQ(rte_mbuf_refcnt_read(h.m), 1);
  check_built(r.m, Expect{a, f, 0, h.payload});
  EXPECT_EQ(b.stats().retransmits, 1u);
  rte_pktmbuf_free(r.m);
  rte_pktmbuf_free(h.m);
}

TEST(TcpBuilder, RetransmitCopyOfChainedHeldSegment) {
  std::mt19937 rng(3);
  Held h = make_held(5001, {54 + 301, 1499, 7, 1999}, rng);  // odd segment boundaries
  ASSERT_EQ(h.m->nb_segs, 5);
  const TcpFlowAddrs a = addrs(4, true, 7);
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  TcpBuilder b(svc_pool());
  Built r = b.retransmit(t, ack_fields(9, 10, 11), h.range(), PayloadMode::kCopy);
  ASSERT_TRUE(r);
  EXPECT_GT(r.m->nb_segs, 1);  // did not fit beside the headers: copied chain
  check_built(r.m, Expect{a, ack_fields(9, 10, 11), 0, h.payload});
  EXPECT_EQ(seg_refcnt_sum(h.m), 5u);
  rte_pktmbuf_free(r.m);
  rte_pktmbuf_free(h.m);
}

TEST(TcpBuilder, RetransmitCloneSharesHeldData) {
  std::mt19937 rng(4);
  Held h = make_held(3000, {54 + 1001, 999, 1}, rng);
  ASSERT_EQ(h.m->nb_segs, 4);
  const TcpFlowAddrs a = addrs();
  TcpTemplate t;
  ASSERT_TRUE(t.init(a));
  TcpBuilder b(svc_pool());
  // Part of the payload: from the middle of segment 0 to the middle of segment 3.
  HeldPayload part = h.range();
  part.off += 500;
  part.len -= 500;
  const std::vector<uint8_t> want(h.payload.begin() + 500, h.payload.end());
  Built r = b.retransmit(t, ack_fields(1, 2, 3), part, PayloadMode::kClone);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.m->nb_segs, 1 + 4);
  EXPECT_EQ(seg_refcnt_sum(h.m), 4u + 4u);  // one reference per held segment used
  check_built(r.m, Expect{a, ack_fields(1, 2, 3), 0, want});
  rte_pktmbuf_free(r.m);
  EXPECT_EQ(seg_refcnt_sum(h.m), 4u);
  // The held bytes were never written.
  EXPECT_EQ(linear(h.m).size(), 54u + 3000);
  const std::vector<uint8_t> held = linear(h.m);
  EXPECT_TRUE(std::equal(h.payload.begin(), h.payload.end(), held.begin() + 54));
  rte_pktmbuf_free(h.m);
}

TEST(TcpBuilder, RetransmitBadRangeIsRefused) {
  std::mt19937 rng(5);
  Held h = make_held(100, {}, rng);
  TcpTemplate t;
  ASSERT_TRUE(t.init(addrs()));
  TcpBuilder b(svc_pool());
  const unsigned before = rte_mempool_avail_count(svc_pool());
  HeldPayload bad = h.range();
  bad.len += 1;
  EXPECT_EQ(b.retransmit(t, ack_fields(1, 2, 3), bad, PayloadMode::kCopy).status, BuildStatus::kBadRequest);
  bad = h.range();
  bad.off = UINT32_MAX;
  EXPECT_EQ(b.retransmit(t, ack_fields(1, 2, 3), bad, PayloadMode::kClone).status, BuildStatus::kBadRequest);
  EXPECT_EQ(b.retransmit(t, ack_fields(1, 2, 3), HeldPayload{}, PayloadMode::kClone).status, BuildStatus::kBadRequest);
  EXPECT_EQ(b.stats().bad_request, 3u);
  EXPECT_EQ(b.stats().retransmits, 0u);
  EXPECT_EQ(rte_mempool_avail_count(svc_pool()), before);
  rte_pktmbuf_free(h.m);
}

TEST(TcpBuilder, IpPacketOver64KIsRefused) {
  // 54 bytes of headers and 65500 of payload held in 1700-byte segments.
  std::vector<uint8_t> bytes(54 + 65500);
  std::mt19937 rng(6);
  for (auto& c : bytes) c = static_cast<uint8_t>(rng());
  rte_mbuf* held = mbuf_from(bytes, std::vector<uint32_t>(40, 1700));
  ASSERT_NE(held, nullptr);
  TcpTemplate t;
  ASSERT_TRUE(t.init(addrs()));
  TcpBuilder b(svc_pool());
  const HeldPayload all{held, 54, 65500};  // IPv4 total length 65540
  EXPECT_EQ(b.retransmit(t, ack_fields(1, 2, 3), all, PayloadMode::kClone).status, BuildStatus::kBadRequest);
  EXPECT_EQ(b.stats().bad_request, 1u);
  const HeldPayload fits{held, 54, 65535 - 40};
  Built r = b.retransmit(t, ack_fields(1, 2, 3), fits, PayloadMode::kClone);
  ASSERT_TRUE(r);
  check_built(r.m, Expect{addrs(), ack_fields(1, 2, 3), 0,
                          std::vector<uint8_t>(bytes.begin() + 54, bytes.begin() + 54 + fits.len)});
  rte_pktmbuf_free(r.m);
  rte_pktmbuf_free(held);
}

TEST(TcpBuilder, InvalidTemplateIsRefused) {
  TcpFlowAddrs a = addrs();
  a.family = 5;
  TcpTemplate t;
  EXPECT_FALSE(t.init(a));
  EXPECT_FALSE(t.valid());
  TcpBuilder b(svc_pool());
  EXPECT_EQ(b.ack(t, ack_fields(1, 2, 3)).status, BuildStatus::kBadRequest);
  EXPECT_EQ(b.stats().bad_request, 1u);
  EXPECT_EQ(b.stats().acks, 0u);
}

TEST(TcpBuilder, ExhaustedPoolReturnsErrorAndCounts) {
  rte_mempool* tiny = pkt_pool_create("svc_tiny", 8, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(tiny, nullptr);
  std::vector<rte_mbuf*> taken;
  while (rte_mbuf* m = rte_pktmbuf_alloc(tiny)) taken.push_back(m);
  TcpTemplate t;
  ASSERT_TRUE(t.init(addrs()));
  TcpBuilder b(tiny);
  Built r = b.ack(t, ack_fields(1, 2, 3));
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status, BuildStatus::kNoMbuf);
  EXPECT_EQ(b.dup_ack(t, ack_fields(1, 2, 3)).status, BuildStatus::kNoMbuf);
  EXPECT_EQ(b.stats().no_mbuf, 2u);
  EXPECT_EQ(b.stats().acks + b.stats().dup_acks, 0u);
  // One mbuf free: the header fits, the payload's second mbuf does not. Nothing leaks.
  rte_pktmbuf_free(taken.back());
  taken.pop_back();
  std::mt19937 rng(7);
  Held h = make_held(3000, {54 + 1000}, rng);
  for (PayloadMode mode : {PayloadMode::kClone, PayloadMode::kCopy}) {
    EXPECT_EQ(b.retransmit(t, ack_fields(1, 2, 3), h.range(), mode).status, BuildStatus::kNoMbuf);
    EXPECT_EQ(rte_mempool_avail_count(tiny), 1u);
    EXPECT_EQ(seg_refcnt_sum(h.m), 2u);
  }
  EXPECT_EQ(b.stats().no_mbuf, 4u);
  Built ok = b.ack(t, ack_fields(1, 2, 3));  // and the builder still works
  EXPECT_TRUE(ok);
  rte_pktmbuf_free(ok.m);
  rte_pktmbuf_free(h.m);
  for (rte_mbuf* m : taken) rte_pktmbuf_free(m);
  rte_mempool_free(tiny);
}

TEST(TcpBuilder, DataRoomTooSmallIsNoRoom) {
  rte_mempool* small = pkt_pool_create("svc_small", 15, 0, 64, SOCKET_ID_ANY);
  ASSERT_NE(small, nullptr);
  TcpTemplate t;
  ASSERT_TRUE(t.init(addrs()));
  TcpBuilder b(small);
  EXPECT_EQ(b.ack(t, ack_fields(1, 2, 3)).status, BuildStatus::kNoRoom);
  EXPECT_EQ(b.stats().no_room, 1u);
  EXPECT_EQ(rte_mempool_avail_count(small), 15u);
  rte_mempool_free(small);
}

TEST(TcpBuilder, OffloadLeavesPseudoHeaderSum) {
  std::mt19937 rng(8);
  Held h = make_held(777, {}, rng);
  for (uint8_t family : {4, 6}) {
    const TcpFlowAddrs a = addrs(family, true, 12);
    TcpTemplate t;
    ASSERT_TRUE(t.init(a));
    TcpBuilder off(svc_pool(), CsumMode::kOffload), sw(svc_pool());
    TcpFields f = ack_fields(5, 6, 7);
    f.has_ts = true;
    Built r = off.retransmit(t, f, h.range(), PayloadMode::kCopy);
    check_built(r.m, Expect{a, f, 0, h.payload, true});
    // Completed, it is the software packet, byte for byte.
    Built s = sw.retransmit(t, f, h.range(), PayloadMode::kCopy);
    std::vector<uint8_t> x = linear(r.m), y = linear(s.m);
    const size_t csum_at = meta(r.m).l4_off + 16;
    ASSERT_EQ(x.size(), y.size());
    x[csum_at] = y[csum_at] = x[csum_at + 1] = y[csum_at + 1] = 0;
    EXPECT_EQ(x, y);
    rte_pktmbuf_free(r.m);
    rte_pktmbuf_free(s.m);
  }
  rte_pktmbuf_free(h.m);
}

// Random flows, fields, options, payloads and held segmentations.
TEST(TcpBuilder, RandomizedRoundTrip) {
  std::mt19937 rng(9);
  TcpBuilder b(svc_pool());
  for (int i = 0; i < 600; ++i) {
    const TcpFlowAddrs a = addrs(rng() % 2 ? 4 : 6, rng() % 2, static_cast<uint16_t>(rng()));
    TcpTemplate t;
    ASSERT_TRUE(t.init(a));
    net::SackBlock blocks[4];
    for (auto& s : blocks) s = {static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng())};
    TcpFields f = ack_fields(rng(), rng(), static_cast<uint16_t>(rng()));
    f.flags = static_cast<uint8_t>(rng());
    f.has_ts = rng() % 2;
    f.ts_val = rng();
    f.ts_ecr = rng();
    f.n_sack = static_cast<uint8_t>(rng() % 5);
    f.sack = f.n_sack ? blocks : nullptr;
    const unsigned want_sack = std::min<unsigned>(f.n_sack, f.has_ts ? 3 : 4);
    const uint32_t plen = rng() % 3 ? rng() % 4000 : 0;
    SCOPED_TRACE("case " + std::to_string(i) + " payload " + std::to_string(plen));
    if (plen == 0) {
      Built r = b.ack(t, f);
      check_built(r.m, Expect{a, f, want_sack, {}});
      rte_pktmbuf_free(r.m);
      continue;
    }
    std::vector<uint32_t> segs = {static_cast<uint32_t>(54 + rng() % 200)};
    while (rng() % 3) segs.push_back(1 + rng() % 1500);
    Held h = make_held(plen, segs, rng);
    Built r = b.retransmit(t, f, h.range(), rng() % 2 ? PayloadMode::kClone : PayloadMode::kCopy);
    check_built(r.m, Expect{a, f, want_sack, h.payload});
    rte_pktmbuf_free(r.m);
    rte_pktmbuf_free(h.m);
  }
  EXPECT_EQ(b.stats().no_mbuf + b.stats().no_room + b.stats().bad_request, 0u);
}

}  // namespace
