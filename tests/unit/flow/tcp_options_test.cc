// TCP option parsing (valid, malformed, truncated) and checksum-preserving rewrites.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>

#include "cc/tcp_options.h"
#include "tests/unit/flow/pkt_builder.h"

using namespace vsw;
using namespace vsw::net;
using vsw::test::TcpSpec;

namespace {

// Parses from a heap buffer of exactly len bytes so ASan flags any overread.
TcpOptions parse(std::vector<uint8_t> bytes) {
  auto buf = std::make_unique<uint8_t[]>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), buf.get());
  TcpOptions o;
  parse_tcp_options(buf.get(), bytes.size(), o);
  return o;
}

const std::vector<uint8_t> kLinuxSyn = {2, 4, 0x05, 0xb4,  // MSS 1460
                                        4, 2,              // SACK-permitted
                                        8, 10, 0, 0, 0, 100, 0, 0, 0, 0,  // TS 100/0
                                        1, 3, 3, 7};       // NOP, WS 7

TcpHdr* tcp_of(std::vector<uint8_t>& f) {
  Parsed p = parse_frame(f.data(), uint32_t(f.size()), uint32_t(f.size()));
  return reinterpret_cast<TcpHdr*>(f.data() + p.l4_off);
}

TcpSpec syn_spec(std::vector<uint8_t> opts) {
  TcpSpec t;
  t.src = {"10.0.0.1", 40000};
  t.dst = {"10.0.0.2", 80};
  t.flags = tcpflag::kSyn;
  t.seq = 1000;
  t.opts = std::move(opts);
  return t;
}

}  // namespace

TEST(TcpOptions, LinuxSyn) {
  TcpOptions o = parse(kLinuxSyn);
  EXPECT_EQ(o.present, kOptMss | kOptSackPerm | kOptTs | kOptWscale);
  EXPECT_EQ(o.mss, 1460);
  EXPECT_EQ(o.wscale, 7);
  EXPECT_EQ(o.ts_val, 100u);
  EXPECT_EQ(o.ts_ecr, 0u);
  EXPECT_EQ(o.off_mss, 20);
  EXPECT_EQ(o.off_ts, 26);
  EXPECT_EQ(o.off_wscale, 37);
  EXPECT_FALSE(o.malformed());
}

TEST(TcpOptions, EmptyAndPadding) {
  EXPECT_EQ(parse({}).present, 0);
  EXPECT_EQ(parse({1, 1, 1, 1}).present, 0);
  EXPECT_EQ(parse({0, 0, 0, 0}).present, 0);
  EXPECT_EQ(parse({0, 2, 4, 5}).present, kOptAfterEol);  // stops at EOL; junk noted, not parsed
}

TEST(TcpOptions, SackBlocks) {
  std::vector<uint8_t> b = {1, 1, 5, 34};
  for (uint32_t i = 0; i < 8; ++i) {
    const uint32_t v = 0xfffffff0u + i * 0x10;  // crosses the wrap
    b.insert(b.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
  }
  TcpOptions o = parse(b);
  ASSERT_TRUE(o.has(kOptSack));
  ASSERT_EQ(o.n_sack, 4);
  EXPECT_EQ(o.sack[0].left, 0xfffffff0u);
  EXPECT_EQ(o.sack[0].right, 0x00000000u);
  EXPECT_EQ(o.sack[3].right, 0x00000060u);
  EXPECT_EQ(o.off_sack, 22);
  EXPECT_EQ(parse({5, 10, 0, 0, 0, 1, 0, 0, 0, 2}).n_sack, 1);
}

TEST(TcpOptions, Malformed) {
  // Length byte missing at the end of the area.
  EXPECT_TRUE(parse({1, 1, 1, 2}).has(kOptTruncated));
  // Length < 2 would loop forever or step backwards.
  EXPECT_TRUE(parse({2, 0, 5, 0xb4}).has(kOptTruncated));
  EXPECT_TRUE(parse({2, 1, 5, 0xb4}).has(kOptTruncated));
  // Length runs past the area: the option's value is never read.
  TcpOptions o = parse({8, 10, 0, 0, 0, 1});
  EXPECT_TRUE(o.has(kOptTruncated));
  EXPECT_FALSE(o.has(kOptTs));
  // Known kinds with wrong lengths are skipped, later options still parsed.
  o = parse({2, 3, 5, 3, 3, 7, 0, 0});
  EXPECT_TRUE(o.has(kOptBadLen));
  EXPECT_FALSE(o.has(kOptMss));
  EXPECT_TRUE(o.has(kOptWscale));
  EXPECT_TRUE(parse({5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}).has(kOptBadLen));  // SACK body not 8n
  EXPECT_TRUE(parse({5, 2, 1, 1}).has(kOptBadLen));                          // SACK with no block
  EXPECT_TRUE(parse({4, 3, 0, 1}).has(kOptBadLen));
  EXPECT_TRUE(parse({8, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}).has(kOptBadLen));
  // Unknown kinds are skipped by their length.
  o = parse({30, 4, 0, 0, 2, 4, 1, 0});
  EXPECT_TRUE(o.has(kOptUnknown));
  EXPECT_EQ(o.mss, 256);
  EXPECT_FALSE(o.malformed());
}

TEST(TcpOptions, WscaleClampAndDuplicates) {
  TcpOptions o = parse({3, 3, 15, 1});
  EXPECT_EQ(o.wscale, 14);
  EXPECT_TRUE(o.has(kOptWscaleClamped));
  o = parse({2, 4, 1, 0, 2, 4, 2, 0});
  EXPECT_EQ(o.mss, 256);  // first copy kept
  EXPECT_TRUE(o.has(kOptDuplicate));
}

TEST(TcpOptions, LengthClampedTo40) {
  std::vector<uint8_t> b(60, 1);  // bytes beyond 40 are not options
  b[40] = 2;
  b[41] = 4;
  EXPECT_EQ(parse(b).present, 0);
}

// Every option area of up to 40 random bytes: parsing must stay in bounds
// (run under ASan) and the offsets must point at what they describe.
TEST(TcpOptions, RandomBytesStayInBounds) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    const size_t len = rng() % 41;
    std::vector<uint8_t> b(len);
    for (auto& x : b) x = static_cast<uint8_t>(rng() % 4 == 0 ? rng() % 9 : rng());
    TcpOptions o = parse(b);
    if (o.has(kOptMss)) {
      EXPECT_EQ(b.at(o.off_mss - 20), 2);
    }
    if (o.has(kOptTs)) {
      EXPECT_LE(o.off_ts - 20u + 10u, len);
    }
    if (o.has(kOptSack)) {
      EXPECT_LE(o.off_sack - 20u + 2u + 8u * o.n_sack, len);
    }
    EXPECT_LE(o.n_sack, 4);
  }
}

TEST(TcpOptions, HeaderOverloadHonoursAvail) {
  auto f = vsw::test::build_frame(syn_spec(kLinuxSyn));
  TcpHdr* th = tcp_of(f);
  TcpOptions o;
  parse_tcp_options(th, 24, o);  // only the MSS option is readable
  EXPECT_EQ(o.present, kOptMss);
  parse_tcp_options(th, 1000, o);
  EXPECT_TRUE(o.has(kOptWscale));
}

TEST(TcpRewrite, MssClampAlignedAndOdd) {
  for (std::vector<uint8_t> opts : {std::vector<uint8_t>{2, 4, 0x23, 0x28, 1, 1, 1, 0},  // aligned
                                    std::vector<uint8_t>{1, 2, 4, 0x23, 0x28, 1, 1, 0}}) {  // odd offset
    auto f = vsw::test::build_frame(syn_spec(opts));
    ASSERT_TRUE(vsw::test::tcp_csum_ok(f));
    TcpHdr* th = tcp_of(f);
    TcpOptions o;
    parse_tcp_options(th, 40, o);
    ASSERT_EQ(o.mss, 9000);
    EXPECT_FALSE(tcp_clamp_mss(th, o, 9000, L4Csum::kComplete));
    EXPECT_TRUE(tcp_clamp_mss(th, o, 1400, L4Csum::kComplete));
    parse_tcp_options(th, 40, o);
    EXPECT_EQ(o.mss, 1400);
    EXPECT_TRUE(vsw::test::tcp_csum_ok(f));
  }
}

TEST(TcpRewrite, TimestampsWindowFlags) {
  auto f = vsw::test::build_frame(syn_spec({1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0}));  // TS at odd offset
  TcpHdr* th = tcp_of(f);
  TcpOptions o;
  parse_tcp_options(th, 40, o);
  ASSERT_TRUE(o.has(kOptTs));
  EXPECT_TRUE(tcp_set_timestamps(th, o, 0xdeadbeef, 0x01020304, L4Csum::kComplete));
  tcp_set_window(th, 1234, L4Csum::kComplete);
  tcp_set_flags(th, tcpflag::kSyn | tcpflag::kEce | tcpflag::kCwr, L4Csum::kComplete);
  EXPECT_TRUE(vsw::test::tcp_csum_ok(f));
  parse_tcp_options(th, 40, o);
  EXPECT_EQ(o.ts_val, 0xdeadbeefu);
  EXPECT_EQ(o.ts_ecr, 0x01020304u);
  EXPECT_EQ(th->window.get(), 1234);
  // Offloaded checksum: the field is left for the device.
  const uint16_t before = th->csum;
  tcp_set_window(th, 99, L4Csum::kOffloaded);
  EXPECT_EQ(th->csum, before);
  EXPECT_EQ(th->window.get(), 99);
}

TEST(TcpRewrite, RejectsOutOfRange) {
  auto f = vsw::test::build_frame(syn_spec({2, 4, 5, 0xb4}));  // 24-byte header
  TcpHdr* th = tcp_of(f);
  const uint8_t x[4] = {1, 2, 3, 4};
  EXPECT_FALSE(tcp_rewrite(th, 22, x, 4, L4Csum::kComplete));  // past hdr_len
  EXPECT_FALSE(tcp_rewrite(th, 15, x, 2, L4Csum::kComplete));  // overlaps checksum
  EXPECT_FALSE(tcp_rewrite(th, 17, x, 1, L4Csum::kComplete));
  EXPECT_TRUE(tcp_rewrite(th, 22, x, 2, L4Csum::kComplete));
  EXPECT_TRUE(vsw::test::tcp_csum_ok(f));
  TcpOptions none;
  EXPECT_FALSE(tcp_set_timestamps(th, none, 1, 2, L4Csum::kComplete));
  EXPECT_FALSE(tcp_clamp_mss(th, none, 100, L4Csum::kComplete));
}

TEST(OptionWriter, RoundTrip) {
  SackBlock blocks[2] = {{100, 200}, {0xfffffff0u, 5}};
  OptionWriter w;
  w.mss(1460).sack_perm().timestamps(7, 8).wscale(9);
  size_t n = w.finish();
  ASSERT_EQ(n, 24u);
  TcpOptions o = parse({w.data(), w.data() + n});
  EXPECT_EQ(o.present, kOptMss | kOptSackPerm | kOptTs | kOptWscale);
  EXPECT_EQ(o.mss, 1460);
  EXPECT_EQ(o.wscale, 9);
  EXPECT_EQ(o.ts_val, 7u);
  EXPECT_EQ((o.off_ts + 2) % 4, 0);  // values 32-bit aligned, as Linux lays them out

  OptionWriter a;
  n = a.timestamps(1, 2).sack(blocks, 2).finish();
  ASSERT_EQ(n, 32u);
  o = parse({a.data(), a.data() + n});
  ASSERT_EQ(o.n_sack, 2);
  EXPECT_EQ(o.sack[1].left, 0xfffffff0u);
  EXPECT_EQ(o.sack[1].right, 5u);
}

TEST(OptionWriter, Overflow) {
  SackBlock b[4] = {};
  OptionWriter w;
  w.timestamps(1, 2).sack(b, 4);  // 12 + 36 > 40
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.finish(), 0u);
  OptionWriter z;
  z.sack(b, 0);
  EXPECT_FALSE(z.ok());
  OptionWriter c;
  EXPECT_EQ(c.mss(536).finish(), 4u);
  EXPECT_EQ(c.wscale(20).finish(), 8u);
  EXPECT_EQ(c.data()[7], 14);  // shift clamped
}

// The inline fast path gives exactly the full parser's result: on the layout
// it takes (NOP NOP TS), on none, and on anything else of 12 bytes.
TEST(TcpOptions, FastPathMatchesFullParser) {
  auto same = [](const uint8_t* p, size_t len) {
    TcpOptions a, b;
    std::memset(&a, 0xa5, sizeof(a));
    std::memset(&b, 0x5a, sizeof(b));
    parse_tcp_options(p, len, a);
    parse_tcp_options_fast(p, len, b);
    bool eq = a.present == b.present && a.mss == b.mss && a.wscale == b.wscale && a.n_sack == b.n_sack &&
              a.off_mss == b.off_mss && a.off_wscale == b.off_wscale && a.off_ts == b.off_ts &&
              a.off_sack == b.off_sack && a.ts_val == b.ts_val && a.ts_ecr == b.ts_ecr;
    for (unsigned k = 0; k < tcpopt::kMaxSackBlocks; ++k)
      eq = eq && a.sack[k].left == b.sack[k].left && a.sack[k].right == b.sack[k].right;
    return eq;
  };
  const uint8_t ts[12] = {1, 1, 8, 10, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
  EXPECT_TRUE(same(ts, 12));
  TcpOptions o;
  parse_tcp_options_fast(ts, 12, o);
  EXPECT_EQ(o.present, kOptTs);
  EXPECT_EQ(o.ts_val, 0x12345678u);
  EXPECT_EQ(o.ts_ecr, 0x9abcdef0u);
  EXPECT_EQ(o.off_ts, 22);
  EXPECT_TRUE(same(ts, 0));
  std::mt19937 rng(11);
  uint8_t buf[40];
  for (int i = 0; i < 20000; ++i) {
    for (auto& x : buf) x = uint8_t(rng());
    if (i & 1) std::memcpy(buf, ts, 4);  // the fast path's prefix, random rest
    if (i % 4 == 3) buf[2] = 5;          // same NOPs, another kind
    const size_t len = (i % 5 == 0) ? rng() % 41 : 12;
    EXPECT_TRUE(same(buf, len)) << i;
  }
}
