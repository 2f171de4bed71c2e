// TcpFlowTable: creation (handshake, SYN-ACK first, mid-stream), per-direction
// state, removal (FIN, RST, aging), capacity and SYN-flood behaviour, bulk API.
#include <gtest/gtest.h>

#include <random>

#include "flowtable/tcp_flow_table.h"
#include "tests/unit/flow/pkt_builder.h"

using namespace vsw;
using namespace vsw::dirflag;
using namespace vsw::net::tcpflag;
using vsw::test::TcpSpec;

namespace {

constexpr uint32_t T0 = 1'000'000;  // ms

// A client/server pair; the client has the higher address so it is key
// endpoint 1 (the initiator flag must not just follow endpoint 0).
struct Pair {
  std::string cip = "10.0.0.2", sip = "10.0.0.1";
  uint16_t cport = 40000, sport = 80;

  TcpSegment c2s(uint8_t fl, uint32_t seq, uint32_t ack, uint32_t len = 0, std::vector<uint8_t> opts = {},
                 uint16_t win = 65535, uint16_t gso = 0) const {
    return make(cip, cport, sip, sport, fl, seq, ack, len, std::move(opts), win, gso);
  }
  TcpSegment s2c(uint8_t fl, uint32_t seq, uint32_t ack, uint32_t len = 0, std::vector<uint8_t> opts = {},
                 uint16_t win = 65535, uint16_t gso = 0) const {
    return make(sip, sport, cip, cport, fl, seq, ack, len, std::move(opts), win, gso);
  }
  static TcpSegment make(const std::string& a, uint16_t pa, const std::string& b, uint16_t pb, uint8_t fl,
                         uint32_t seq, uint32_t ack, uint32_t len, std::vector<uint8_t> opts, uint16_t win,
                         uint16_t gso) {
    TcpSpec t;
    t.src = {a, pa};
    t.dst = {b, pb};
    t.flags = fl;
    t.seq = seq;
    t.ack = ack;
    t.payload = len;
    t.opts = std::move(opts);
    t.window = win;
    return vsw::test::seg(t, gso);
  }
};

std::vector<uint8_t> syn_opts(uint16_t mss, int ws, bool sack, bool ts) {
  std::vector<uint8_t> o = {2, 4, uint8_t(mss >> 8), uint8_t(mss)};
  if (sack) o.insert(o.end(), {1, 1, 4, 2});
  if (ts) o.insert(o.end(), {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0});
  if (ws >= 0) o.insert(o.end(), {1, 3, 3, uint8_t(ws)});
  return o;
}

TcpFlowConfig small_cfg(uint32_t cap = 1024) {
  TcpFlowConfig c;
  c.capacity = cap;
  c.idle_timeout_ms = 10'000;
  c.embryonic_timeout_ms = 3'000;
  c.fin_timeout_ms = 5'000;
  c.linger_ms = 1'000;
  c.wheel_tick_ms = 10;
  c.prefault = false;
  return c;
}

// Runs the full handshake; returns the slot.
uint32_t handshake(TcpFlowTable& t, const Pair& p, uint32_t now, uint32_t ciss = 1000, uint32_t siss = 5000) {
  TrackResult r = t.track(p.c2s(kSyn, ciss, 0, 0, syn_opts(1460, 7, true, true)), now);
  t.track(p.s2c(kSyn | kAck, siss, ciss + 1, 0, syn_opts(1400, 9, true, true)), now);
  t.track(p.c2s(kAck, ciss + 1, siss + 1), now);
  return r.slot;
}

Pair nth_pair(uint32_t i) {
  Pair p;
  p.cip = "10.1." + std::to_string((i >> 8) & 0xff) + "." + std::to_string(i & 0xff);
  p.cport = static_cast<uint16_t>(1024 + (i >> 16));
  return p;
}

}  // namespace

TEST(TcpFlowTable, HandshakeNegotiatesOptions) {
  TcpFlowTable t(small_cfg());
  Pair p;
  TrackResult r = t.track(p.c2s(kSyn, 1000, 0, 0, syn_opts(1460, 7, true, true)), T0);
  ASSERT_TRUE(r.tracked());
  EXPECT_TRUE(r.events & kEvCreated);
  EXPECT_FALSE(r.events & kEvMidstream);
  EXPECT_EQ(t.conn(r.slot).state, TcpState::kSynSent);
  EXPECT_EQ(t.embryonic(), 1u);
  EXPECT_EQ(r.dir, 1);
  EXPECT_EQ(t.conn(r.slot).initiator(), 1);

  TrackResult r2 = t.track(p.s2c(kSyn | kAck, 5000, 1001, 0, syn_opts(1400, 9, true, true), 28960), T0 + 1);
  EXPECT_EQ(r2.slot, r.slot);
  EXPECT_EQ(r2.dir, 0);
  EXPECT_EQ(t.conn(r.slot).state, TcpState::kSynRecv);
  TrackResult r3 = t.track(p.c2s(kAck, 1001, 5001, 0, {}, 502), T0 + 2);
  EXPECT_TRUE(r3.events & kEvStateChange);
  const TcpConn& c = t.conn(r.slot);
  EXPECT_EQ(c.state, TcpState::kEstablished);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_EQ(t.size(), 1u);

  const TcpDirState& cl = c.d[1];
  const TcpDirState& sv = c.d[0];
  EXPECT_EQ(cl.isn, 1000u);
  EXPECT_EQ(cl.next_seq, 1001u);
  EXPECT_EQ(cl.mss, 1460);
  EXPECT_EQ(cl.wscale, 7);
  EXPECT_EQ(cl.win, 502u << 7);
  EXPECT_EQ(cl.ack, 5001u);
  EXPECT_TRUE(cl.has(kWsKnown) && cl.has(kSackOk) && cl.has(kTsOk) && cl.has(kMssKnown) && cl.has(kIsnKnown));
  EXPECT_EQ(sv.isn, 5000u);
  EXPECT_EQ(sv.mss, 1400);
  EXPECT_EQ(sv.wscale, 9);
  EXPECT_EQ(sv.win, 28960u);  // SYN-ACK window is not scaled
  EXPECT_TRUE(sv.has(kWsKnown) && sv.has(kSackOk) && sv.has(kTsOk));
  EXPECT_EQ(t.stats().created, 1u);

  // Data and ACKs move next_seq / ack; timestamps are recorded.
  t.track(p.c2s(kAck | kPsh, 1001, 5001, 1000, {1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3}), T0 + 3);
  EXPECT_EQ(c.d[1].next_seq, 2001u);
  EXPECT_EQ(c.d[1].ts_val, 9u);
  EXPECT_EQ(c.d[1].ts_ecr, 3u);
  t.track(p.s2c(kAck, 5001, 2001, 0, {}, 100), T0 + 4);
  EXPECT_EQ(c.d[0].ack, 2001u);
  EXPECT_EQ(c.d[0].win, 100u << 9);
  EXPECT_EQ(t.conn_stats(r.slot).bytes[1], 1000u);
  EXPECT_EQ(t.conn_stats(r.slot).pkts[1], 3u);
}

TEST(TcpFlowTable, ScalingNeedsBothSides) {
  TcpFlowTable t(small_cfg());
  Pair p;
  TrackResult r = t.track(p.c2s(kSyn, 1, 0, 0, syn_opts(1460, 7, true, false)), T0);
  t.track(p.s2c(kSyn | kAck, 9, 2, 0, syn_opts(1460, -1, false, false)), T0);
  const TcpConn& c = t.conn(r.slot);
  EXPECT_EQ(c.d[1].wscale, 0);
  EXPECT_EQ(c.d[0].wscale, 0);
  EXPECT_TRUE(c.d[1].has(kWsKnown) && c.d[0].has(kWsKnown));
  EXPECT_FALSE(c.d[1].has(kSackOk));
  EXPECT_FALSE(c.d[1].has(kTsOk));
  // No MSS option: the RFC default.
  Pair q;
  q.cport = 1;
  TrackResult r2 = t.track(q.c2s(kSyn, 1, 0), T0);
  EXPECT_EQ(t.conn(r2.slot).d[1].mss, 536);
}

TEST(TcpFlowTable, CreatedOnSynAck) {
  TcpFlowTable t(small_cfg());
  Pair p;
  TrackResult r = t.track(p.s2c(kSyn | kAck, 5000, 1001, 0, syn_opts(1400, 9, true, true)), T0);
  ASSERT_TRUE(r.events & kEvCreated);
  const TcpConn& c = t.conn(r.slot);
  EXPECT_EQ(c.state, TcpState::kSynRecv);
  EXPECT_TRUE(c.flags & connflag::kSynAckFirst);
  EXPECT_EQ(c.initiator(), 1);  // the receiver of the SYN-ACK opened it
  EXPECT_TRUE(c.d[0].has(kWsKnown));
  EXPECT_FALSE(c.d[1].has(kWsKnown));  // the client's shift was in the SYN we missed
  EXPECT_TRUE(c.d[1].has(kSackOk));
  t.track(p.c2s(kAck, 1001, 5001), T0 + 1);
  EXPECT_EQ(c.state, TcpState::kEstablished);
  EXPECT_EQ(t.stats().created_synack, 1u);
}

TEST(TcpFlowTable, MidstreamInference) {
  TcpFlowTable t(small_cfg());
  Pair p;
  const uint32_t s0 = 700000;
  // The client is already sending: a TSO super-segment of 64000 bytes in 1448-byte segments.
  TrackResult r = t.track(p.c2s(kAck | kPsh, s0, 9000, 64000, {1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 4}, 300, 1448), T0);
  ASSERT_TRUE(r.events & kEvCreated);
  EXPECT_TRUE(r.events & kEvMidstream);
  const TcpConn& c = t.conn(r.slot);
  EXPECT_EQ(c.state, TcpState::kMidOneWay);
  EXPECT_TRUE(c.flags & connflag::kMidstream);
  EXPECT_TRUE(c.flags & connflag::kInitiatorGuessed);
  EXPECT_EQ(c.initiator(), 1);  // guessed: the higher (ephemeral) port
  EXPECT_EQ(t.embryonic(), 1u);
  const TcpDirState& cl = c.d[1];
  EXPECT_EQ(cl.mss, 1448);
  EXPECT_FALSE(cl.has(kMssKnown));
  EXPECT_FALSE(cl.has(kIsnKnown));
  EXPECT_FALSE(cl.has(kWsKnown));
  EXPECT_TRUE(cl.has(kTsOk));
  EXPECT_EQ(cl.next_seq, s0 + 64000);

  // The server ACKs the start only, with a raw window of 1000: 64000 bytes in
  // flight prove its shift is at least 6 (1000 << 6 = 64000).
  TrackResult r2 = t.track(p.s2c(kAck, 9000, s0, 0, {}, 1000), T0 + 1);
  EXPECT_EQ(c.state, TcpState::kEstablished);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_TRUE(r2.events & kEvWsInferred);
  EXPECT_EQ(c.d[0].wscale, 6);
  EXPECT_FALSE(c.d[0].has(kWsKnown));
  EXPECT_EQ(c.d[0].win, 64000u);
  // Larger segments raise the inferred MSS; SACK blocks prove SACK.
  t.track(p.c2s(kAck, s0 + 64000, 9000, 1460), T0 + 2);
  EXPECT_EQ(cl.mss, 1460);
  t.track(p.s2c(kAck, 9000, s0, 0, {1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 1000), T0 + 3);
  EXPECT_TRUE(c.d[0].has(kSackOk));
  EXPECT_EQ(t.stats().created_midstream, 1u);
}

TEST(TcpFlowTable, MidstreamDisabled) {
  TcpFlowConfig cfg = small_cfg();
  cfg.create_midstream = false;
  TcpFlowTable t(cfg);
  Pair p;
  TrackResult r = t.track(p.c2s(kAck, 1, 1, 100), T0);
  EXPECT_FALSE(r.tracked());
  EXPECT_TRUE(r.events & kEvUntracked);
  EXPECT_EQ(t.size(), 0u);
}

TEST(TcpFlowTable, SequenceWraparound) {
  TcpFlowTable t(small_cfg());
  Pair p;
  const uint32_t isn = 0xffffff00u;
  uint32_t slot = handshake(t, p, T0, isn, 42);
  const TcpConn& c = t.conn(slot);
  TrackResult r = t.track(p.c2s(kAck, isn + 1, 43, 1000), T0 + 1);  // crosses 2^32
  EXPECT_EQ(c.d[1].next_seq, isn + 1 + 1000);
  EXPECT_LT(c.d[1].next_seq, 1000u);
  EXPECT_FALSE(r.events & (kEvSeqOld | kEvSeqGap));
  r = t.track(p.c2s(kAck, isn + 1, 43, 1000), T0 + 2);  // retransmission
  EXPECT_TRUE(r.events & kEvSeqOld);
  EXPECT_EQ(c.d[1].next_seq, isn + 1 + 1000);
  r = t.track(p.c2s(kAck, isn + 1 + 3000, 43, 500), T0 + 3);  // a hole
  EXPECT_TRUE(r.events & kEvSeqGap);
  EXPECT_EQ(c.d[1].next_seq, isn + 1 + 3500);
  // ACKs across the wrap: the highest one wins.
  t.track(p.s2c(kAck, 43, isn + 1 + 1000), T0 + 4);
  t.track(p.s2c(kAck, 43, isn + 1 + 200), T0 + 5);
  EXPECT_EQ(c.d[0].ack, isn + 1 + 1000);
  r = t.track(p.s2c(kAck, 43, isn + 1 + 1000), T0 + 6);
  EXPECT_TRUE(r.events & kEvDupAck);
  r = t.track(p.s2c(kAck, 43, isn + 1 + 9000), T0 + 7);
  EXPECT_TRUE(r.events & kEvAckUnseen);
}

TEST(TcpFlowTable, FinBothSidesThenLinger) {
  TcpFlowTable t(small_cfg());
  Pair p;
  uint32_t slot = handshake(t, p, T0);
  const uint32_t gen = t.conn(slot).gen;
  t.track(p.c2s(kFin | kAck, 1001, 5001), T0 + 10);
  EXPECT_EQ(t.conn(slot).state, TcpState::kFinWait);
  t.track(p.s2c(kFin | kAck, 5001, 1002), T0 + 20);
  EXPECT_EQ(t.conn(slot).state, TcpState::kClosed);
  t.track(p.c2s(kAck, 1002, 5002), T0 + 30);
  EXPECT_EQ(t.tick(T0 + 30 + 900), 0u);
  EXPECT_TRUE(t.alive(slot, gen));
  EXPECT_EQ(t.tick(T0 + 30 + 1000 + 20), 1u);
  EXPECT_FALSE(t.alive(slot, gen));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().removed[size_t(RemoveReason::kClosed)], 1u);
}

TEST(TcpFlowTable, HalfClosedTimesOut) {
  TcpFlowTable t(small_cfg());
  Pair p;
  handshake(t, p, T0);
  t.track(p.c2s(kFin | kAck, 1001, 5001), T0);
  EXPECT_EQ(t.tick(T0 + 4000), 0u);
  EXPECT_EQ(t.tick(T0 + 5000 + 20), 1u);
  EXPECT_EQ(t.stats().removed[size_t(RemoveReason::kIdle)], 1u);
}

TEST(TcpFlowTable, ResetAndBlindReset) {
  TcpFlowTable t(small_cfg());
  Pair p;
  uint32_t slot = handshake(t, p, T0);
  // Far outside the window: ignored.
  TrackResult r = t.track(p.s2c(kRst, 5001 + 0x40000000u, 0), T0 + 1);
  EXPECT_TRUE(r.events & kEvRstIgnored);
  EXPECT_EQ(t.conn(slot).state, TcpState::kEstablished);
  EXPECT_EQ(t.stats().rst_ignored, 1u);
  r = t.track(p.s2c(kRst, 5001, 0), T0 + 2);
  EXPECT_EQ(t.conn(slot).state, TcpState::kReset);
  t.track(p.c2s(kFin | kAck, 1001, 5001), T0 + 3);  // a late FIN does not revive it
  EXPECT_EQ(t.conn(slot).state, TcpState::kReset);
  t.tick(T0 + 500);
  EXPECT_EQ(t.size(), 1u);
  t.tick(T0 + 1100);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().removed[size_t(RemoveReason::kReset)], 1u);
  // RST/FIN for unknown connections create nothing.
  EXPECT_TRUE(t.track(p.s2c(kRst, 1, 0), T0 + 2000).events & kEvUntracked);
  EXPECT_TRUE(t.track(p.s2c(kFin | kAck, 1, 1), T0 + 2000).events & kEvUntracked);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().untracked, 2u);
}

TEST(TcpFlowTable, RecycleOnNewSyn) {
  TcpFlowTable t(small_cfg());
  Pair p;
  uint32_t slot = handshake(t, p, T0);
  t.track(p.c2s(kFin | kAck, 1001, 5001), T0);
  t.track(p.s2c(kFin | kAck, 5001, 1002), T0);
  // A retransmitted SYN of the old connection would not recycle; a new ISN does.
  TrackResult r = t.track(p.c2s(kSyn, 90000, 0), T0 + 5);
  EXPECT_TRUE(r.events & kEvRecycled);
  EXPECT_TRUE(r.events & kEvCreated);
  EXPECT_EQ(t.conn(r.slot).state, TcpState::kSynSent);
  EXPECT_EQ(t.conn(r.slot).d[1].isn, 90000u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.stats().removed[size_t(RemoveReason::kRecycled)], 1u);
  (void)slot;
}

TEST(TcpFlowTable, IdleAgingAndRefresh) {
  TcpFlowTable t(small_cfg());
  Pair a, b;
  b.cport = 40001;
  handshake(t, a, T0);
  handshake(t, b, T0);
  for (uint32_t now = T0; now <= T0 + 9000; now += 100) t.tick(now);
  EXPECT_EQ(t.size(), 2u);
  t.track(a.c2s(kAck, 1001, 5001, 10), T0 + 9000);  // keeps a alive
  for (uint32_t now = T0 + 9000; now <= T0 + 10100; now += 100) t.tick(now);
  EXPECT_EQ(t.size(), 1u);
  for (uint32_t now = T0 + 10100; now <= T0 + 19100; now += 100) t.tick(now);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().removed[size_t(RemoveReason::kIdle)], 2u);
  // A long pause between ticks (longer than the wheel span) still expires entries.
  handshake(t, a, T0 + 20000);
  EXPECT_EQ(t.tick(T0 + 20000 + 600000), 1u);
}

TEST(TcpFlowTable, EmbryonicTimeoutAndTickBudget) {
  TcpFlowTable t(small_cfg());
  for (uint32_t i = 0; i < 200; ++i) t.track(nth_pair(i).c2s(kSyn, i, 0), T0);
  EXPECT_EQ(t.embryonic(), 200u);
  EXPECT_EQ(t.tick(T0 + 2000), 0u);
  EXPECT_EQ(t.tick(T0 + 3000, 50), 50u);  // bounded work per call
  EXPECT_EQ(t.tick(T0 + 3000, 1000), 150u);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_EQ(t.stats().removed[size_t(RemoveReason::kEmbryonicTimeout)], 200u);
}

TEST(TcpFlowTable, CapacityLimitRefuses) {
  TcpFlowTable t(small_cfg(64));
  for (uint32_t i = 0; i < 64; ++i) handshake(t, nth_pair(i), T0);
  EXPECT_EQ(t.size(), 64u);
  EXPECT_EQ(t.embryonic(), 0u);
  TrackResult r = t.track(nth_pair(64).c2s(kSyn, 1, 0), T0);
  EXPECT_FALSE(r.tracked());
  EXPECT_TRUE(r.events & kEvRefused);
  r = t.track(nth_pair(65).c2s(kAck, 1, 1, 100), T0);  // mid-stream too
  EXPECT_TRUE(r.events & kEvRefused);
  EXPECT_EQ(t.stats().refused_full, 2u);
  EXPECT_EQ(t.size(), 64u);
  // Existing connections are still tracked.
  EXPECT_TRUE(t.track(nth_pair(3).c2s(kAck, 1001, 5001, 5), T0).tracked());
  // Space comes back after aging.
  t.tick(T0 + 20000);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.track(nth_pair(64).c2s(kSyn, 1, 0), T0 + 20000).tracked());
}

TEST(TcpFlowTable, SynFloodEvictsEmbryonicFirst) {
  TcpFlowConfig cfg = small_cfg(100);
  cfg.embryonic_max = 25;
  TcpFlowTable t(cfg);
  std::vector<uint32_t> slots, gens;
  for (uint32_t i = 0; i < 70; ++i) {
    slots.push_back(handshake(t, nth_pair(i), T0));
    gens.push_back(t.conn(slots.back()).gen);
  }
  // Spoofed SYNs and one-way ACKs from random tuples.
  std::mt19937 rng(1);
  for (uint32_t i = 0; i < 5000; ++i) {
    Pair f = nth_pair(1000 + (rng() % 60000));
    f.cport = static_cast<uint16_t>(rng());
    t.track(i % 3 ? f.c2s(kSyn, rng(), 0) : f.c2s(kAck, rng(), rng(), 10), T0 + i / 10);
    ASSERT_LE(t.embryonic(), 25u);
  }
  for (uint32_t i = 0; i < 70; ++i) EXPECT_TRUE(t.alive(slots[i], gens[i])) << i;
  EXPECT_GT(t.stats().removed[size_t(RemoveReason::kEvicted)], 4900u);
  EXPECT_EQ(t.stats().refused_full, 0u);
  // A legitimate handshake still gets through during the flood.
  uint32_t s = handshake(t, nth_pair(500), T0 + 600);
  EXPECT_EQ(t.conn(s).state, TcpState::kEstablished);

  // Full table (75 established + 25 embryonic): new SYNs push out embryonic
  // entries, never established ones.
  for (uint32_t i = 0; i < 4; ++i) handshake(t, nth_pair(600 + i), T0 + 600);
  EXPECT_EQ(t.size() - t.embryonic(), 75u);
  for (uint32_t i = 0; i < 100; ++i) t.track(nth_pair(2000 + i).c2s(kSyn, i, 0), T0 + 700);
  EXPECT_EQ(t.size(), 100u);
  EXPECT_EQ(t.size() - t.embryonic(), 75u);
  for (uint32_t i = 0; i < 70; ++i) EXPECT_TRUE(t.alive(slots[i], gens[i]));
  // Once everything is established, new connections are refused instead.
  for (uint32_t i = 0; i < 25; ++i) handshake(t, nth_pair(700 + i), T0 + 800);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_EQ(t.size(), 100u);
  EXPECT_TRUE(t.track(nth_pair(900).c2s(kSyn, 1, 0), T0 + 800).events & kEvRefused);
}

TEST(TcpFlowTable, BulkLookupMatchesSingle) {
  TcpFlowTable t(small_cfg(4096));
  for (uint32_t i = 0; i < 3000; ++i) handshake(t, nth_pair(i), T0);
  std::vector<TcpSegment> segs;
  for (uint32_t i = 0; i < 200; ++i) {
    const Pair p = nth_pair(i * 17 % 3500);  // some are unknown
    segs.push_back(i % 2 ? p.c2s(kAck, 1, 1) : p.s2c(kAck, 1, 1));
  }
  std::vector<uint32_t> bulk(segs.size());
  t.lookup_bulk(segs.data(), unsigned(segs.size()), bulk.data());
  std::vector<FlowKey> keys;
  std::vector<uint32_t> hashes, bulk2(segs.size());
  for (auto& s : segs) {
    keys.push_back(s.key);
    hashes.push_back(s.hash);
  }
  t.lookup_bulk(keys.data(), hashes.data(), unsigned(keys.size()), bulk2.data());
  unsigned hits = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(bulk[i], t.lookup(segs[i].key, segs[i].hash));
    EXPECT_EQ(bulk2[i], bulk[i]);
    hits += bulk[i] != TcpFlowTable::kNoSlot;
  }
  EXPECT_GT(hits, 100u);
  EXPECT_LT(hits, 200u);
}

// A full table (the index half full) keeps a share of its keys in their
// second bucket; the bulk paths find those (track_bulk: no new entry, the
// same slot as lookup) like the ones in their first.
TEST(TcpFlowTable, BulkPathsFindKeysInSecondBucket) {
  constexpr uint32_t kN = 2048;
  TcpFlowTable t(small_cfg(kN));
  std::vector<uint32_t> slot(kN);
  for (uint32_t i = 0; i < kN; ++i) slot[i] = handshake(t, nth_pair(i), T0);
  ASSERT_EQ(t.size(), kN);
  std::vector<TcpSegment> segs;
  for (uint32_t i = 0; i < kN; ++i) segs.push_back(i % 2 ? nth_pair(i).c2s(kAck, 1001, 5001) : nth_pair(i).s2c(kAck, 5001, 1001));
  std::vector<uint32_t> bulk(kN);
  t.lookup_bulk(segs.data(), kN, bulk.data());
  for (uint32_t i = 0; i < kN; ++i) EXPECT_EQ(bulk[i], slot[i]);
  std::vector<TrackResult> out(kN);
  for (uint32_t base = 0; base < kN; base += 32) t.track_bulk(segs.data() + base, 32, T0 + 1, out.data() + base);
  EXPECT_EQ(t.size(), kN);
  EXPECT_EQ(t.stats().created, kN);
  for (uint32_t i = 0; i < kN; ++i) {
    EXPECT_EQ(out[i].slot, slot[i]);
    EXPECT_FALSE(out[i].events & kEvCreated);
  }
}

TEST(TcpFlowTable, TrackBulkCreatesOncePerBatch) {
  TcpFlowTable t(small_cfg());
  Pair p;
  std::vector<TcpSegment> b = {p.c2s(kSyn, 1000, 0, 0, syn_opts(1460, 7, true, true)),
                               p.s2c(kSyn | kAck, 5000, 1001, 0, syn_opts(1460, 7, true, true)),
                               p.c2s(kAck, 1001, 5001), p.c2s(kAck, 1001, 5001, 100)};
  TrackResult out[4];
  t.track_bulk(b.data(), 4, T0, out);
  EXPECT_EQ(t.size(), 1u);
  for (auto& r : out) EXPECT_EQ(r.slot, out[0].slot);
  EXPECT_EQ(t.conn(out[0].slot).state, TcpState::kEstablished);
  EXPECT_EQ(t.conn_stats(out[0].slot).pkts[1], 3u);
}

TEST(TcpFlowTable, TrackBulkSurvivesEvictionWithinBatch) {
  TcpFlowConfig cfg = small_cfg(8);
  cfg.embryonic_max = 2;
  TcpFlowTable t(cfg);
  std::vector<TcpSegment> b;
  // Three one-way entries; in the next batch a hint to the first goes stale
  // when two new SYNs evict it before its own packet is processed.
  for (uint32_t i = 0; i < 2; ++i) t.track(nth_pair(i).c2s(kSyn, 1, 0), T0);
  b = {nth_pair(2).c2s(kSyn, 1, 0), nth_pair(3).c2s(kSyn, 1, 0), nth_pair(0).c2s(kSyn, 1, 0)};
  TrackResult out[3];
  t.track_bulk(b.data(), 3, T0 + 1, out);
  EXPECT_LE(t.embryonic(), 2u);
  // pair 0's looked-up slot was recycled for pair 2 before its packet ran: the
  // stale hint must not be used; pair 0 gets a fresh entry of its own.
  ASSERT_TRUE(out[2].tracked());
  EXPECT_TRUE(out[2].events & kEvCreated);
  EXPECT_TRUE(t.key(out[2].slot) == b[2].key);
  EXPECT_EQ(t.lookup(b[2].key, b[2].hash), out[2].slot);
  EXPECT_EQ(t.lookup(b[0].key, b[0].hash), TcpFlowTable::kNoSlot);  // evicted in turn
}

TEST(TcpFlowTable, Ipv6Connection) {
  TcpFlowTable t(small_cfg());
  Pair p;
  p.cip = "fd00::20";
  p.sip = "fd00::10";
  uint32_t slot = handshake(t, p, T0);
  EXPECT_EQ(t.conn(slot).state, TcpState::kEstablished);
  EXPECT_EQ(t.conn(slot).key.family, 6);
  EXPECT_EQ(t.lookup(p.s2c(kAck, 1, 1).key, p.s2c(kAck, 1, 1).hash), slot);
  EXPECT_TRUE(t.key(slot) == p.s2c(kAck, 1, 1).key);  // full key from the IPv6 key array
  // Same ports, VLAN and family (the entry's compact part), another address: not found.
  Pair q = p;
  q.cip = "fd00::21";
  EXPECT_EQ(t.lookup(q.s2c(kAck, 1, 1).key, q.s2c(kAck, 1, 1).hash), TcpFlowTable::kNoSlot);
}

TEST(TcpFlowTable, Ipv4KeyRoundTrip) {
  TcpFlowTable t(small_cfg());
  Pair p;
  uint32_t slot = handshake(t, p, T0);
  EXPECT_EQ(t.conn(slot).key.family, 4);
  EXPECT_TRUE(t.key(slot) == p.s2c(kAck, 1, 1).key);
}

TEST(TcpFlowTable, RemoveHookGenerationAndFlush) {
  TcpFlowTable t(small_cfg());
  std::vector<std::pair<uint32_t, RemoveReason>> seen;
  auto hook = [](void* ctx, uint32_t slot, const TcpConn& c, RemoveReason why) {
    EXPECT_NE(c.state, TcpState::kFree);
    static_cast<decltype(seen)*>(ctx)->push_back({slot, why});
  };
  ASSERT_TRUE(t.add_remove_hook(hook, &seen));
  uint32_t s1 = handshake(t, nth_pair(1), T0);
  uint32_t g1 = t.conn(s1).gen;
  EXPECT_TRUE(t.remove(s1, RemoveReason::kFlushed));
  EXPECT_FALSE(t.remove(s1, RemoveReason::kFlushed));
  EXPECT_FALSE(t.alive(s1, g1));
  uint32_t s2 = handshake(t, nth_pair(2), T0);
  EXPECT_EQ(s2, s1);  // slot reused, generation differs
  EXPECT_TRUE(t.alive(s2, t.conn(s2).gen));
  EXPECT_NE(t.conn(s2).gen, g1);
  handshake(t, nth_pair(3), T0);
  EXPECT_EQ(t.flush(), 2u);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].first, s1);
  EXPECT_EQ(seen[0].second, RemoveReason::kFlushed);
}

TEST(TcpFlowTable, SnapshotAndTopN) {
  TcpFlowTable t(small_cfg());
  std::vector<uint32_t> slots;
  for (uint32_t i = 0; i < 50; ++i) slots.push_back(handshake(t, nth_pair(i), T0));
  for (uint32_t i = 0; i < 50; ++i) t.track(nth_pair(i).c2s(kAck, 1001, 5001, 10 * i), T0 + 100);
  std::vector<TcpConnView> all;
  uint32_t next = 0;
  unsigned rounds = 0;
  while (next != TcpFlowTable::kNoSlot) {
    t.snapshot(T0 + 200, next, 16, all, &next);
    ++rounds;
  }
  EXPECT_EQ(all.size(), 50u);
  EXPECT_GE(rounds, 4u);
  EXPECT_EQ(all[0].idle_ms, 100u);
  EXPECT_EQ(all[0].age_ms, 200u);
  auto top = t.top_n(T0 + 200, 5, TopBy::kBytes);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0].slot, slots[49]);
  EXPECT_EQ(top[0].conn.stats.bytes[1], 490u);
  EXPECT_EQ(top[4].slot, slots[45]);
  EXPECT_EQ(t.top_n(T0, 500, TopBy::kPackets).size(), 50u);
}

TEST(TcpFlowTable, MemoryPerConnection) {
  EXPECT_EQ(TcpFlowTable::kHotBytesPerConn, 128u);  // counters included
  EXPECT_EQ(TcpFlowTable::kLinkBytesPerConn, 8u);
  TcpFlowConfig cfg;  // default: 1M connections, memory mapped lazily here
  cfg.prefault = false;
  TcpFlowTable t(cfg);
  EXPECT_EQ(t.capacity(), 1u << 20);
  EXPECT_EQ(t.config().embryonic_max, 1u << 18);
  const double per = t.bytes_per_conn();
  RecordProperty("bytes_per_conn", std::to_string(per));
  std::printf("bytes per connection at 1M: %.1f (entry %zu, links %zu, index %.1f)\n", per,
              TcpFlowTable::kHotBytesPerConn, TcpFlowTable::kLinkBytesPerConn,
              per - TcpFlowTable::kHotBytesPerConn - TcpFlowTable::kLinkBytesPerConn);
  EXPECT_LE(per, 155.0);
}
