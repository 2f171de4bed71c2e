// Connection keys (symmetry, direction, VLAN, families), segment building and
// sequence-number wraparound.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <set>

#include "cc/flow_key.h"
#include "cc/pkt_meta.h"
#include "cc/tcp_seq.h"
#include "tests/unit/flow/pkt_builder.h"

using namespace vsw;
using vsw::test::seg;
using vsw::test::TcpSpec;

namespace {
TcpSpec spec(const char* a, uint16_t pa, const char* b, uint16_t pb) {
  TcpSpec t;
  t.src = {a, pa};
  t.dst = {b, pb};
  return t;
}
}  // namespace

TEST(FlowKey, SymmetricIPv4) {
  TcpSegment f = seg(spec("10.0.0.1", 40000, "10.0.0.2", 80));
  TcpSegment r = seg(spec("10.0.0.2", 80, "10.0.0.1", 40000));
  EXPECT_TRUE(f.key == r.key);
  EXPECT_EQ(f.hash, r.hash);
  EXPECT_NE(f.dir, r.dir);
  EXPECT_EQ(f.dir, 0);  // 10.0.0.1 is the lower endpoint
  EXPECT_EQ(f.key.family, 4);
  EXPECT_EQ(f.key.port[0], 40000);
  EXPECT_EQ(f.key.port[1], 80);
  for (int i = 4; i < 16; ++i) EXPECT_EQ(f.key.addr[0][i], 0);
}

TEST(FlowKey, SymmetricIPv6AndSameAddress) {
  TcpSegment f = seg(spec("fd00::2", 5000, "fd00::1", 443));
  TcpSegment r = seg(spec("fd00::1", 443, "fd00::2", 5000));
  EXPECT_TRUE(f.key == r.key);
  EXPECT_EQ(f.hash, r.hash);
  EXPECT_EQ(f.dir, 1);
  EXPECT_EQ(r.dir, 0);
  EXPECT_EQ(f.key.family, 6);
  // Same host on both ends: the port decides the order.
  TcpSegment a = seg(spec("10.1.1.1", 9000, "10.1.1.1", 22));
  TcpSegment b = seg(spec("10.1.1.1", 22, "10.1.1.1", 9000));
  EXPECT_TRUE(a.key == b.key);
  EXPECT_EQ(a.dir, 1);
  EXPECT_EQ(b.dir, 0);
}

TEST(FlowKey, DistinctTuplesAndVlans) {
  TcpSegment base = seg(spec("10.0.0.1", 40000, "10.0.0.2", 80));
  TcpSpec v = spec("10.0.0.1", 40000, "10.0.0.2", 80);
  v.vlan = 100;
  TcpSegment tagged = seg(v);
  EXPECT_FALSE(base.key == tagged.key);
  EXPECT_EQ(tagged.key.vlan, 100);
  EXPECT_FALSE(base.key == seg(spec("10.0.0.1", 40001, "10.0.0.2", 80)).key);
  EXPECT_FALSE(base.key == seg(spec("10.0.0.3", 40000, "10.0.0.2", 80)).key);
  // Swapping only the ports is a different connection.
  EXPECT_FALSE(base.key == seg(spec("10.0.0.1", 80, "10.0.0.2", 40000)).key);
  // An IPv4 address never equals an IPv6 one with the same leading bytes.
  EXPECT_FALSE(seg(spec("10.0.0.1", 1, "10.0.0.2", 2)).key == seg(spec("a00:1::", 1, "a00:2::", 2)).key);
}

TEST(FlowKey, HashSpreads) {
  // Low bits must vary across consecutive ports (the table indexes with them).
  std::set<uint32_t> low;
  for (uint16_t p = 0; p < 256; ++p) low.insert(seg(spec("10.0.0.1", 1000 + p, "10.0.0.2", 80)).hash & 0xff);
  EXPECT_GT(low.size(), 140u);
}

TEST(FlowKey, FromMetaRejectsNonTcpAndFragments) {
  auto f = vsw::test::build_frame(spec("10.0.0.1", 1, "10.0.0.2", 2));
  net::Parsed p = net::parse_frame(f.data(), uint32_t(f.size()), uint32_t(f.size()));
  PktMeta m{};
  m.l3_off = p.l3_off;
  m.l4_off = p.l4_off;
  m.l4_len = p.l4_len;
  m.flags = p.flags;
  m.payload_len = p.payload_len;
  FlowKey k;
  uint8_t dir;
  EXPECT_TRUE(flow_key_from_meta(f.data(), m, k, dir));
  TcpSegment s;
  EXPECT_TRUE(tcp_segment_from_meta(f.data(), uint32_t(f.size()), m, 0, s));
  EXPECT_FALSE(tcp_segment_from_meta(f.data(), uint32_t(m.l4_off + 10), m, 0, s));  // header not contiguous
  PktMeta bad = m;
  bad.flags |= net::kFlagFragment;
  EXPECT_FALSE(flow_key_from_meta(f.data(), bad, k, dir));
  bad = m;
  bad.flags |= net::kFlagMalformed;
  EXPECT_FALSE(flow_key_from_meta(f.data(), bad, k, dir));
  bad = m;
  bad.flags = net::kFlagIPv4;
  EXPECT_FALSE(flow_key_from_meta(f.data(), bad, k, dir));
}

TEST(TcpSegment, FieldsAndGso) {
  TcpSpec t = spec("10.0.0.1", 40000, "10.0.0.2", 80);
  t.flags = net::tcpflag::kAck | net::tcpflag::kPsh;
  t.seq = 0xfffffff0u;
  t.ack = 77;
  t.window = 512;
  t.payload = 3000;
  t.opts = {1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6};
  TcpSegment s = seg(t, 1448);
  EXPECT_EQ(s.seq, 0xfffffff0u);
  EXPECT_EQ(s.ack, 77u);
  EXPECT_EQ(s.window, 512);
  EXPECT_EQ(s.payload_len, 3000u);
  EXPECT_EQ(s.seg_size, 1448);
  EXPECT_EQ(s.seq_len(), 3000u);
  EXPECT_TRUE(s.opts.has(net::kOptTs));
  EXPECT_EQ(s.opts.ts_val, 5u);
  EXPECT_EQ(seg(t).seg_size, 3000);
}

TEST(Seq, Wraparound) {
  using net::Seq;
  Seq a(0xfffffff0u), b(0x10u);
  EXPECT_TRUE(a < b);
  EXPECT_TRUE(b > a);
  EXPECT_EQ(b - a, 0x20);
  EXPECT_EQ(a - b, -0x20);
  EXPECT_TRUE((a + 0x20u) == b);
  EXPECT_TRUE(Seq::max(a, b) == b);
  EXPECT_TRUE(Seq::in_range(Seq(0xffffffffu), a, b));
  EXPECT_TRUE(Seq::in_range(Seq(0u), a, b));
  EXPECT_FALSE(Seq::in_range(b, a, b));
  EXPECT_TRUE(Seq(0x7fffffffu) > Seq(0u));
  EXPECT_TRUE(Seq(0x80000001u) < Seq(0u));  // more than half the space ahead reads as behind
}

// flow_key_build computes the hash from registers on the way: it must be the
// hash of the key it stored, for both families, tagged or not.
TEST(FlowKey, BuiltHashIsHashOfStoredKey) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    char a[40], b[40];
    const bool v6 = i & 1;
    if (v6) {
      std::snprintf(a, sizeof(a), "fd00::%x", unsigned(rng() & 0xffff));
      std::snprintf(b, sizeof(b), "fd00::%x", unsigned(rng() & 0xffff));
    } else {
      std::snprintf(a, sizeof(a), "10.%u.%u.%u", unsigned(rng() & 255), unsigned(rng() & 255), unsigned(rng() & 255));
      std::snprintf(b, sizeof(b), "10.%u.%u.%u", unsigned(rng() & 255), unsigned(rng() & 255), unsigned(rng() & 255));
    }
    TcpSpec t = spec(a, uint16_t(rng()), b, uint16_t(rng()));
    if (i % 3 == 0) t.vlan = uint16_t(1 + rng() % 4094);
    const TcpSegment s = seg(t);
    EXPECT_EQ(s.hash, flow_key_hash(s.key)) << a << " " << b;
    EXPECT_EQ(s.key.family, v6 ? 6 : 4);
    EXPECT_EQ(s.key.proto, net::kProtoTcp);
    EXPECT_EQ(s.key.vlan, t.vlan & 0xfff);
  }
}
