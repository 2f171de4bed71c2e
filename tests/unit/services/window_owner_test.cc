// WindowOwner: min of the proposed bounds, scale rounding, the right edge
// never moving left, checksums equal to a from-scratch computation
// (svc_test_util.h reference), and an unbounded packet left untouched.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cc/pkt_meta.h"
#include "cc/services/window_owner.h"
#include "cc/tcp_seq.h"
#include "tests/common/pkt_builder.h"
#include "tests/unit/services/svc_test_util.h"

using namespace vsw;
using namespace vsw::services;
using namespace vsw::test;
namespace tf = vsw::net::tcpflag;

namespace {

constexpr size_t kL3 = 14, kL4 = 14 + 20;

struct Frame {
  std::vector<uint8_t> b;
  net::TcpHdr* th() { return reinterpret_cast<net::TcpHdr*>(b.data() + kL4); }
  uint16_t window() const { return rd16(b.data() + kL4 + 14); }
  uint16_t csum() const { return rd16(b.data() + kL4 + 16); }
  bool csum_ok() const {
    return csum() == ref_tcp_csum(b.data() + kL3, true, b.data() + kL4, static_cast<uint32_t>(b.size() - kL4));
  }
};

Frame frame(uint32_t ack, uint16_t window, uint8_t flags = tf::kAck, uint32_t payload = 0,
            std::vector<uint8_t> opts = {}) {
  TcpSpec s;
  s.seq = 1000;
  s.ack = ack;
  s.window = window;
  s.flags = flags;
  s.payload = payload;
  s.options = std::move(opts);
  return Frame{FrameBuilder(mac(2), mac(1)).tcp4(s)};
}

WindowProposal bound(uint32_t bytes) {
  WindowProposal p;
  p.propose(bytes);
  return p;
}

TEST(WindowOwner, StateFitsAFlowSlot) {
  static_assert(sizeof(WindowSide) == 8);
  WindowSide s;
  s.set_shift(20);
  EXPECT_EQ(s.shift, 14);  // RFC 7323 2.3
  EXPECT_FALSE(s.edge_known());
}

TEST(WindowOwner, NoBoundLeavesPacketUntouched) {
  WindowOwner o;
  WindowSide side;
  side.set_shift(3);
  Frame f = frame(5000, 1000, tf::kAck, 33);
  const std::vector<uint8_t> before = f.b;
  EXPECT_EQ(o.apply(side, f.th(), WindowProposal{}, net::L4Csum::kComplete), WindowRule::kUntouched);
  EXPECT_EQ(f.b, before);
  EXPECT_EQ(o.stats().untouched, 1u);
  // What the peer was told is still recorded.
  ASSERT_TRUE(side.edge_known());
  EXPECT_EQ(side.right_edge, 5000u + (1000u << 3));
}

TEST(WindowOwner, WritesMinOfBounds) {
  WindowOwner o;
  WindowSide side;
  Frame f = frame(1, 60000);
  WindowProposal p;
  p.propose(50000);
  p.propose(20000);
  p.propose(30000);
  EXPECT_EQ(p.bound(), 20000u);
  EXPECT_EQ(o.apply(side, f.th(), p, net::L4Csum::kComplete), WindowRule::kBounded);
  EXPECT_EQ(f.window(), 20000);
  EXPECT_TRUE(f.csum_ok());
  EXPECT_EQ(o.stats().bounded, 1u);
}

TEST(WindowOwner, BoundAboveWindowIsNotBinding) {
  WindowOwner o;
  WindowSide side;
  side.set_shift(2);
  Frame f = frame(1, 1000);
  const std::vector<uint8_t> before = f.b;
  EXPECT_EQ(o.apply(side, f.th(), bound(4000), net::L4Csum::kComplete), WindowRule::kNotBinding);  // 4000 >> 2 == 1000
  EXPECT_EQ(f.b, before);
  EXPECT_EQ(o.stats().not_binding, 1u);
}

TEST(WindowOwner, ScaleRoundsDownNeverAboveBound) {
  WindowOwner o;
  {
    WindowSide side;
    side.set_shift(7);
    Frame f = frame(1, 65535);
    EXPECT_EQ(o.apply(side, f.th(), bound(1000), net::L4Csum::kComplete), WindowRule::kBounded);
    EXPECT_EQ(f.window(), 7);  // 896 bytes <= 1000 (8 would be 1024)
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    WindowSide side;  // fresh: no right edge to keep
    side.set_shift(static_cast<uint8_t>(rng() % 15));
    const uint16_t raw = static_cast<uint16_t>(rng());
    const uint32_t b = rng() >> (rng() % 32);
    if (b == kNoWindowBound) continue;
    const WindowDecision d = decide_window(side, rng(), raw, tf::kAck, b);
    ASSERT_LE(d.raw, raw);
    ASSERT_LE(uint64_t(d.raw) << side.shift, b) << "shift " << int(side.shift) << " bound " << b;
    if (d.rule == WindowRule::kBounded) {
      ASSERT_LT(b - (uint64_t(d.raw) << side.shift), 1u << side.shift);
    }
  }
}

TEST(WindowOwner, SynWindowIsNotScaled) {
  WindowOwner o;
  WindowSide side;
  side.set_shift(7);
  Frame f = frame(1, 30000, tf::kSyn | tf::kAck);
  EXPECT_EQ(o.apply(side, f.th(), bound(1000), net::L4Csum::kComplete), WindowRule::kBounded);
  EXPECT_EQ(f.window(), 1000);  // bytes, not 1000 >> 7
  EXPECT_TRUE(f.csum_ok());
  EXPECT_EQ(side.right_edge, 1u + 1000u);
}

TEST(WindowOwner, RstIsUntouched) {
  WindowOwner o;
  WindowSide side;
  Frame f = frame(1, 30000, tf::kRst | tf::kAck);
  const std::vector<uint8_t> before = f.b;
  EXPECT_EQ(o.apply(side, f.th(), bound(10), net::L4Csum::kComplete), WindowRule::kUntouched);
  EXPECT_EQ(f.b, before);
  EXPECT_FALSE(side.edge_known());
}

// ACK 1000 with 10000 bytes (edge 11000); then ack 5000 with a bound of 2000:
// the edge stays at 11000 (6000 bytes), not 7000.
TEST(WindowOwner, AckAdvancingWithSmallerBoundKeepsRightEdge) {
  WindowOwner o;
  WindowSide side;
  Frame a = frame(1000, 10000);
  EXPECT_EQ(o.apply(side, a.th(), bound(10000), net::L4Csum::kComplete), WindowRule::kNotBinding);
  EXPECT_EQ(side.right_edge, 11000u);
  Frame b = frame(5000, 8000);
  EXPECT_EQ(o.apply(side, b.th(), bound(2000), net::L4Csum::kComplete), WindowRule::kKeptRightEdge);
  EXPECT_EQ(b.window(), 6000);
  EXPECT_TRUE(b.csum_ok());
  // The bound applies again once the ack passes the old edge's reach.
  Frame c = frame(11000, 8000);
  EXPECT_EQ(o.apply(side, c.th(), bound(2000), net::L4Csum::kComplete), WindowRule::kBounded);
  EXPECT_EQ(c.window(), 2000);
  EXPECT_EQ(side.right_edge, 13000u);
  // The endpoint's own smaller window is never raised to the edge.
  Frame d = frame(11500, 100);
  EXPECT_EQ(o.apply(side, d.th(), bound(50), net::L4Csum::kComplete), WindowRule::kKeptRightEdge);
  EXPECT_EQ(d.window(), 100);
  EXPECT_EQ(o.stats().kept_right_edge, 2u);
  EXPECT_EQ(o.stats().bounded, 1u);
  EXPECT_EQ(o.stats().not_binding, 1u);
}

TEST(WindowOwner, ScaledEdgeRoundsUp) {
  WindowOwner o;
  WindowSide side;
  side.set_shift(7);
  Frame a = frame(0, 100);  // edge 12800
  o.apply(side, a.th(), WindowProposal{}, net::L4Csum::kComplete);
  Frame b = frame(1000, 100);  // 11800 bytes to the edge: 92.19 units -> 93
  EXPECT_EQ(o.apply(side, b.th(), bound(0), net::L4Csum::kComplete), WindowRule::kKeptRightEdge);
  EXPECT_EQ(b.window(), 93);
  EXPECT_GE(1000u + (93u << 7), 12800u);
}

// Random ACK sequences (advancing, repeated, a few reordered), endpoint
// windows and bounds: the advertised edge never falls below the furthest one
// advertised before, unless the endpoint's own window is lower still.
TEST(WindowOwner, RightEdgeNeverMovesLeft) {
  std::mt19937 rng(12);
  for (int run = 0; run < 50; ++run) {
    WindowOwner o;
    WindowSide side;
    side.set_shift(static_cast<uint8_t>(rng() % 15));
    const uint8_t sh = side.shift;
    net::Seq ack(rng()), max_edge;
    bool known = false;
    for (int i = 0; i < 400; ++i) {
      const uint32_t step = rng() % 4 == 0 ? 0 : rng() % (20000u << std::min<int>(sh, 6));
      ack = rng() % 20 == 0 ? ack - step / 4 : ack + step;
      const uint16_t raw = static_cast<uint16_t>(rng() % 8 == 0 ? rng() % 64 : 0x8000 + rng() % 0x8000);
      const bool bounded = rng() % 5 != 0;
      const uint32_t b = rng() % (uint32_t(raw) << sh | 1);
      Frame f = frame(ack.raw(), raw, tf::kAck, rng() % 3);
      const WindowRule r = o.apply(side, f.th(), bounded ? bound(b) : WindowProposal{}, net::L4Csum::kComplete);
      const net::Seq edge = ack + (uint32_t(f.window()) << sh), own = ack + (uint32_t(raw) << sh);
      SCOPED_TRACE("run " + std::to_string(run) + " step " + std::to_string(i));
      if (known) {
        ASSERT_GE(edge, net::Seq::min(max_edge, own));
      }
      ASSERT_LE(f.window(), raw);
      ASSERT_TRUE(f.csum_ok());
      if (r == WindowRule::kBounded) {
        ASSERT_LE(uint64_t(f.window()) << sh, b);
      }
      if (r == WindowRule::kKeptRightEdge && f.window() < raw) {  // the least that keeps the edge
        ASSERT_LT(ack + (uint32_t(f.window() - 1) << sh), max_edge);
      }
      if (!known || edge > max_edge) max_edge = edge;
      known = true;
      ASSERT_EQ(side.right_edge, max_edge.raw());
    }
  }
}

TEST(WindowOwner, ChecksumAfterRewriteEqualsFromScratch) {
  std::mt19937 rng(13);
  WindowOwner o;
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> opts;
    if (rng() % 2) opts = {1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8};
    for (unsigned k = rng() % 6; k; --k) opts.push_back(1);
    Frame f = frame(rng(), static_cast<uint16_t>(rng()), tf::kAck | (rng() % 2 ? tf::kPsh : 0), rng() % 1501, opts);
    WindowSide side;
    side.set_shift(static_cast<uint8_t>(rng() % 15));
    if (rng() % 2) {
      side.right_edge = f.th()->ack.get() + rng() % 100000;
      side.flags = WindowSide::kEdgeKnown;
    }
    std::vector<uint8_t> before = f.b;
    o.apply(side, f.th(), bound(rng() >> (rng() % 32)), net::L4Csum::kComplete);
    ASSERT_TRUE(f.csum_ok()) << "case " << i;
    // Only the window and checksum words may change.
    for (size_t k : {kL4 + 14, kL4 + 15, kL4 + 16, kL4 + 17}) before[k] = f.b[k];
    ASSERT_EQ(f.b, before);
  }
  EXPECT_GT(o.stats().bounded, 1000u);
}

TEST(WindowOwner, OffloadedChecksumIsNotTouched) {
  WindowOwner o;
  WindowSide side;
  Frame f = frame(1, 60000);
  const uint16_t csum = f.csum();
  EXPECT_EQ(o.apply(side, f.th(), bound(100), net::L4Csum::kOffloaded), WindowRule::kBounded);
  EXPECT_EQ(f.window(), 100);
  EXPECT_EQ(f.csum(), csum);
}

TEST(WindowOwner, MbufSharedIsNotWritten) {
  WindowOwner o;
  WindowSide side;
  Frame f = frame(1, 60000);
  rte_mbuf* m = mbuf_from(f.b);
  ASSERT_NE(m, nullptr);
  rte_mbuf_refcnt_update(m, 1);  // a held copy shares it
  EXPECT_EQ(o.apply(side, m, bound(100)), WindowRule::kNotWritable);
  EXPECT_EQ(linear(m), f.b);
  EXPECT_EQ(side.right_edge, 60001u);  // its own edge went out
  EXPECT_EQ(o.stats().not_writable, 1u);
  rte_mbuf_refcnt_update(m, -1);
  EXPECT_EQ(o.apply(side, m, bound(100)), WindowRule::kKeptRightEdge);
  Frame out{linear(m)};
  EXPECT_EQ(out.window(), 60000);
  // No bound: a shared mbuf is fine (nothing is written).
  rte_mbuf_refcnt_update(m, 1);
  EXPECT_EQ(o.apply(side, m, WindowProposal{}), WindowRule::kUntouched);
  rte_mbuf_refcnt_update(m, -1);
  rte_pktmbuf_free(m);
}

TEST(WindowOwner, MbufChecksumModeFromOffloadFlags) {
  WindowOwner o;
  for (bool offloaded : {false, true}) {
    WindowSide side;
    Frame f = frame(1, 60000);
    rte_mbuf* m = mbuf_from(f.b);
    if (offloaded) m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
    EXPECT_EQ(o.apply(side, m, bound(1234)), WindowRule::kBounded);
    Frame out{linear(m)};
    EXPECT_EQ(out.window(), 1234);
    if (offloaded) {
      EXPECT_EQ(out.csum(), f.csum());
    }
    else EXPECT_TRUE(out.csum_ok());
    rte_pktmbuf_free(m);
  }
  // Not TCP: nothing to own.
  rte_mbuf* u = mbuf_from(FrameBuilder(mac(2), mac(1)).udp4(1, 2, 3, 4, 10));
  WindowSide side;
  EXPECT_EQ(o.apply(side, u, bound(1)), WindowRule::kNotWritable);
  rte_pktmbuf_free(u);
}

}  // namespace
