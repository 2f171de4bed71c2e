// Parser: every header length is checked before it is read.
#include <gtest/gtest.h>

#include <random>

#include "cc/checksum.h"
#include "cc/parse.h"
#include "tests/common/pkt_builder.h"

using namespace vsw;
using namespace vsw::net;
using test::FrameBuilder;

namespace {

Parsed parse(const std::vector<uint8_t>& f) {
  return parse_frame(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
}

FrameBuilder fb() { return FrameBuilder(test::mac(2), test::mac(1)); }

TEST(Parse, Tcp4WithOptions) {
  test::TcpSpec t;
  t.options = {2, 4, 0x05, 0xb4, 1, 3, 3, 7};  // MSS 1460, NOP, WS 7
  t.payload = 100;
  Parsed p = parse(fb().tcp4(t));
  EXPECT_FALSE(p.malformed());
  EXPECT_TRUE(p.flags & kFlagIPv4);
  EXPECT_TRUE(p.is_tcp());
  EXPECT_EQ(p.l3_off, 14);
  EXPECT_EQ(p.l4_off, 34);
  EXPECT_EQ(p.l4_len, 28);
  EXPECT_EQ(p.payload_len, 100u);
}

TEST(Parse, VlanTagged) {
  Parsed p = parse(fb().vlan(42).tcp4({}));
  EXPECT_FALSE(p.malformed());
  EXPECT_TRUE(p.flags & kFlagVlan);
  EXPECT_EQ(p.vlan_tci & 0xfff, 42);
  EXPECT_EQ(p.l3_off, 18);
  EXPECT_TRUE(p.is_tcp());
}

TEST(Parse, Udp4AndTcp6) {
  Parsed u = parse(fb().udp4(1, 2, 53, 53, 10));
  EXPECT_TRUE(u.flags & kFlagUdp);
  EXPECT_EQ(u.payload_len, 10u);
  Parsed t = parse(fb().tcp6(1, 2, 3, 50));
  EXPECT_TRUE(t.flags & kFlagIPv6);
  EXPECT_TRUE(t.is_tcp());
  EXPECT_EQ(t.l4_off, 54);
  EXPECT_EQ(t.payload_len, 50u);
}

TEST(Parse, Runt) {
  std::vector<uint8_t> f(10, 0);
  EXPECT_EQ(parse(f).err, ParseError::kRunt);
}

TEST(Parse, BadEthertype) {
  auto f = fb().raw(0x0600 - 50, std::vector<uint8_t>(50, 0));  // 1486: a length, fine
  EXPECT_FALSE(parse(f).malformed());
  f = fb().raw(1510, std::vector<uint8_t>(50, 0));
  EXPECT_EQ(parse(f).err, ParseError::kBadEthertype);
}

TEST(Parse, Ipv4BadIhlAndTotalLen) {
  auto f = fb().tcp4({});
  f[14] = 0x44;  // IHL 4 words < 20 bytes
  EXPECT_EQ(parse(f).err, ParseError::kIpv4BadIhl);
  f = fb().tcp4({});
  f[14] = 0x4f;  // IHL 60 bytes: beyond the IP total length
  EXPECT_TRUE(parse(f).malformed());
  f = fb().tcp4({});
  f[16] = 0xff;  // total length beyond the frame
  EXPECT_EQ(parse(f).err, ParseError::kIpv4BadTotalLen);
  f = fb().tcp4({});
  f[14] = 0x65;  // version 6 in an IPv4 ethertype
  EXPECT_EQ(parse(f).err, ParseError::kIpv4BadVersion);
}

TEST(Parse, TruncatedTcp) {
  auto f = fb().tcp4({});
  f.resize(14 + 20 + 10);
  f[17] = 30;  // IP total length 30: only 10 bytes of TCP
  EXPECT_EQ(parse(f).err, ParseError::kTcpTruncated);
  f = fb().tcp4({});
  f[14 + 20 + 12] = 0x20;  // data offset 8 bytes
  EXPECT_EQ(parse(f).err, ParseError::kTcpBadDataOffset);
  f = fb().tcp4({});
  f[14 + 20 + 12] = 0xf0;  // data offset 60 bytes > segment
  EXPECT_EQ(parse(f).err, ParseError::kTcpBadDataOffset);
}

TEST(Parse, HeadersSplitAcrossSegments) {
  auto f = fb().tcp4({});
  Parsed p = parse_frame(f.data(), 30, static_cast<uint32_t>(f.size()));
  EXPECT_EQ(p.err, ParseError::kHeadersNotContiguous);
}

TEST(Parse, Fragment) {
  test::TcpSpec t;
  t.payload = 8;
  auto f = fb().tcp4(t);
  f[14 + 6] = 0x00;
  f[14 + 7] = 0x10;  // fragment offset 16*8
  Parsed p = parse(f);
  EXPECT_TRUE(p.flags & kFlagFragment);
  EXPECT_FALSE(p.is_tcp());
  EXPECT_FALSE(p.malformed());
}

TEST(Parse, Ipv6ExtensionHeaders) {
  auto f = fb().tcp6(1, 2, 3, 0);
  // Insert an 8-byte hop-by-hop header before TCP.
  std::vector<uint8_t> g(f.begin(), f.begin() + 54);
  g[14 + 6] = 0;  // next header: hop-by-hop
  std::vector<uint8_t> hbh = {6, 0, 1, 4, 0, 0, 0, 0};
  g.insert(g.end(), hbh.begin(), hbh.end());
  g.insert(g.end(), f.begin() + 54, f.end());
  g[14 + 5] = static_cast<uint8_t>(g[14 + 5] + 8);  // payload length
  Parsed p = parse(g);
  EXPECT_FALSE(p.malformed());
  EXPECT_TRUE(p.is_tcp());
  EXPECT_EQ(p.l4_off, 14 + 40 + 8);
  g[14 + 40 + 1] = 200;  // ext header length past the packet
  EXPECT_EQ(parse(g).err, ParseError::kIpv6BadExtHdr);
}

// Random mutations of valid frames: the parser must never claim offsets
// outside the frame (ASan builds also catch out-of-bounds reads).
TEST(Parse, RandomMutationsStayInBounds) {
  std::mt19937 rng(7);
  test::TcpSpec t;
  t.options = {2, 4, 5, 0xb4};
  t.payload = 30;
  const std::vector<std::vector<uint8_t>> seeds = {fb().tcp4(t), fb().vlan(3).tcp4(t), fb().tcp6(1, 2, 3, 20),
                                                   fb().udp4(1, 2, 3, 4, 12)};
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> f = seeds[static_cast<size_t>(iter) % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    f.resize(rng() % (f.size() + 1));
    // Exact-size heap copy so ASan sees any overread.
    std::unique_ptr<uint8_t[]> buf(new uint8_t[f.size() + 1]);
    std::memcpy(buf.get(), f.data(), f.size());
    Parsed p = parse_frame(buf.get(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
    if (p.l4_off) ASSERT_LE(p.l4_off + p.l4_len, f.size());
    if (p.l3_off) ASSERT_LE(p.l3_off + 20u, f.size() + (p.flags & kFlagIPv6 ? 0 : 0));
  }
}

TEST(Checksum, IncrementalMatchesFull) {
  std::mt19937 rng(3);
  for (int i = 0; i < 1000; ++i) {
    std::vector<uint16_t> words(20);
    for (auto& w : words) w = static_cast<uint16_t>(rng());
    uint16_t c = static_cast<uint16_t>(~csum_fold(csum_partial(words.data(), 40)));
    size_t k = rng() % words.size();
    uint16_t nw = static_cast<uint16_t>(rng());
    uint16_t inc = csum_replace16(c, words[k], nw);
    words[k] = nw;
    uint16_t full = static_cast<uint16_t>(~csum_fold(csum_partial(words.data(), 40)));
    // 0x0000 and 0xffff are the same value in one's complement.
    EXPECT_TRUE(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
  }
}

}  // namespace
