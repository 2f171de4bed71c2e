// Monitor stage inference on crafted packet sequences.
//
// Inference tests drive mon_packet() directly: frames from the common
// FrameBuilder, parsed like the PMD does, tracked by a real TcpFlowTable, with
// an explicit microsecond clock. The last tests run the stage inside the real
// switch (in-memory ports, PMD thread) and read it back through tcp-flows /
// tcp-flow and the export file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>

#include "cc/parse.h"
#include "cc/stages/monitor_stage.h"
#include "flowtable/tcp_flow_table.h"
#include "tests/common/eal_env.h"
#include "tests/common/mem_port.h"
#include "tests/common/pkt_builder.h"
#include "vswitch/commands.h"
#include "vswitch/switch.h"

using namespace vsw;
using namespace vsw::mon;
using namespace vsw::test;
namespace tf = vsw::net::tcpflag;

namespace {

constexpr uint32_t kC = 0x0a000001, kS = 0x0a000002;  // client, server
constexpr uint16_t kCp = 40000, kSp = 5201;
constexpr uint16_t kPortC = 0, kPortS = 1;  // switch ports the client / server sit behind
constexpr uint32_t kMss = 1000;

struct FakeEnv {
  std::map<uint16_t, uint8_t> roles;
  bool off = false;
  uint32_t seen = 0;  // the PMD's last look at its rx rings (0: now, no stall of the switch)
  uint8_t role(uint16_t port) { return roles.count(port) ? roles[port] : uint8_t(kRoleUplink); }
  bool guest_off(uint16_t) { return off; }
  uint32_t seen_us(uint32_t now) const { return seen ? seen : now; }
  std::vector<std::pair<uint32_t, uint32_t>> stalls;  // the PMD's stalls between its step and the send
  uint32_t stall_end(uint32_t t) const {
    for (const auto& [from, to] : stalls)
      if (int32_t(t - from) >= 0 && int32_t(to - t) > 0) return to;
    return t;
  }
};

std::vector<uint8_t> ts_opt(uint32_t val, uint32_t ecr);
// Timestamps, with the MSS option first on a SYN.
std::vector<uint8_t> syn_ts(uint32_t val, uint32_t ecr, bool mss = false) {
  std::vector<uint8_t> v;
  if (mss) v = {2, 4, uint8_t(kMss >> 8), uint8_t(kMss & 0xff)};
  const auto t = ts_opt(val, ecr);
  v.insert(v.end(), t.begin(), t.end());
  return v;
}
std::vector<uint8_t> ts_opt(uint32_t val, uint32_t ecr) {
  return {1, 1, 8, 10, uint8_t(val >> 24), uint8_t(val >> 16), uint8_t(val >> 8), uint8_t(val),
          uint8_t(ecr >> 24), uint8_t(ecr >> 16), uint8_t(ecr >> 8), uint8_t(ecr)};
}

class Mon : public ::testing::Test {
 protected:
  Mon() : table_(cfg()), hot_(table_.capacity()), cold_(table_.capacity()) {}
  static TcpFlowConfig cfg() {
    TcpFlowConfig c;
    c.capacity = 64;
    c.prefault = false;
    return c;
  }
  // One packet from the client (c2s) or the server; returns the inference output.
  // n full segments from the client, 10 us apart, from seq on; returns the next seq.
  uint32_t send_segments(uint32_t seq, int n) {
    for (int k = 0; k < n; ++k) {
      now_ += 10;
      pkt(true, tf::kAck, seq, 5001, kMss);
      seq += kMss;
    }
    return seq;
  }
  MonOut pkt(bool c2s, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t payload = 0, uint16_t win = 65535,
             std::vector<uint8_t> opts = {}) {
    TcpSpec t;
    t.src_ip = c2s ? kC : kS;
    t.dst_ip = c2s ? kS : kC;
    t.sport = c2s ? kCp : kSp;
    t.dport = c2s ? kSp : kCp;
    t.seq = seq;
    t.ack = ack;
    t.flags = flags;
    t.window = win;
    t.payload = payload;
    t.options = std::move(opts);
    const auto f = FrameBuilder(mac(2), mac(1)).tcp4(t);
    const net::Parsed pr = net::parse_frame(f.data(), uint32_t(f.size()), uint32_t(f.size()));
    TcpSegment s;
    EXPECT_TRUE(tcp_segment_build(f.data(), uint32_t(f.size()), pr.l3_off, pr.l4_off, pr.l4_len, pr.flags, 0,
                                  pr.payload_len, 0, s));
    last_ = table_.track(s, now_ / 1000);
    EXPECT_TRUE(last_.tracked());
    return mon_packet(hot_[last_.slot], cold_[last_.slot], s, last_, table_.conn(last_.slot), now_,
                      c2s ? kPortC : kPortS, env_, p_);
  }
  // A guest client's SYN (TSval 7000) and the SYN-ACK 1 ms later; now 0.1 ms after it.
  void guest_syn_synack() {
    pkt(true, tf::kSyn, 1000, 0, 0, 65535, syn_ts(7000, 0, true));
    now_ += 1000;
    pkt(false, tf::kSyn | tf::kAck, 5000, 1001, 0, 65535, syn_ts(90000, 7000, true));
    now_ += 100;
  }
  void guest_receiver_rounds(uint32_t slow);
  void data_round(uint32_t& seq, uint32_t answer_us);
  // Three-way handshake with MSS kMss (client ISN 1000, server ISN 5000), 100 us per leg.
  void handshake(std::vector<uint8_t> extra = {}) {
    std::vector<uint8_t> o = {2, 4, uint8_t(kMss >> 8), uint8_t(kMss & 0xff)};
    o.insert(o.end(), extra.begin(), extra.end());
    pkt(true, tf::kSyn, 1000, 0, 0, 65535, o);
    now_ += 100;
    pkt(false, tf::kSyn | tf::kAck, 5000, 1001, 0, 65535, o);
    now_ += 100;
    pkt(true, tf::kAck, 1001, 5001);
  }
  // Client -> server data direction: endpoint index of the client in the key.
  uint8_t cdir() const { return table_.conn(last_.slot).key.port[0] == kCp ? 0 : 1; }
  const MonDir& cd() { return hot_[last_.slot].d[cdir()]; }
  const MonDirCold& cc() { return cold_[last_.slot].d[cdir()]; }
  const MonSide& server_side() { return cold_[last_.slot].side[cdir() ^ 1]; }
  const MonSide& client_side() { return cold_[last_.slot].side[cdir()]; }
  uint32_t lim_us(uint8_t l) {
    uint64_t t = mon_lim_total_us(cold_[last_.slot].w[cdir()], cold_[last_.slot].d[cdir()], l);
    if (cd().lim == l) t += now_ - cd().lim_since;
    return uint32_t(t);
  }

  TcpFlowTable table_;
  std::vector<MonConn> hot_;
  std::vector<MonCold> cold_;
  FakeEnv env_;
  MonParams p_;
  uint32_t now_ = 1'000'000;
  TrackResult last_{};
};

TEST_F(Mon, HandshakeGivesBothSideRtts) {
  handshake();
  EXPECT_EQ(server_side().n, 1u);  // SYN -> SYN-ACK
  EXPECT_EQ(server_side().srtt, 100u);
  EXPECT_EQ(client_side().n, 1u);  // SYN-ACK -> ACK
  EXPECT_EQ(client_side().srtt, 100u);
  EXPECT_EQ(cd().phase, kSlowStart);
  EXPECT_FALSE(cold_[last_.slot].midstream);
}

TEST_F(Mon, KarnSamplesDataToAck) {
  handshake();
  now_ += 1000;
  pkt(true, tf::kAck, 1001, 5001, kMss);  // timed
  now_ += 50;
  pkt(true, tf::kAck, 2001, 5001, kMss);  // not timed: one sample in flight
  now_ += 400;
  const MonOut o = pkt(false, tf::kAck, 5001, 2001);  // acks the timed one, 450 us later
  EXPECT_TRUE(o.rtt_sample);
  EXPECT_EQ(server_side().n, 2u);
  EXPECT_EQ(server_side().max, 450u);
  // RFC 6298 smoothing from the handshake sample (100): 100 + (450 - 100) / 8.
  EXPECT_NEAR(server_side().srtt, 100 - 100 / 8 + 450 / 8, 1);
  EXPECT_EQ(cd().flags & dflag::kLastAck, dflag::kLastAck);
}

TEST_F(Mon, KarnDiscardsRetransmittedTimedSegment) {
  handshake();
  now_ += 1000;
  pkt(true, tf::kAck, 1001, 5001, kMss);  // timed
  now_ += 300'000;
  const MonOut r = pkt(true, tf::kAck, 1001, 5001, kMss);  // retransmitted: ambiguous
  EXPECT_TRUE(r.karn_skip);
  EXPECT_TRUE(r.retrans);
  now_ += 200;
  const MonOut a = pkt(false, tf::kAck, 5001, 2001);
  EXPECT_FALSE(a.rtt_sample);  // no sample from the ambiguous ACK
  EXPECT_EQ(server_side().n, 1u);
  // The next new segment is timed again.
  now_ += 10;
  pkt(true, tf::kAck, 2001, 5001, kMss);
  now_ += 300;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 3001).rtt_sample);
  EXPECT_EQ(server_side().max, 300u);
  EXPECT_EQ(cc().karn_skipped, 1u);
}

TEST_F(Mon, RetransmissionVersusSpurious) {
  handshake();
  for (uint32_t i = 0; i < 4; ++i) {
    now_ += 10;
    pkt(true, tf::kAck, 1001 + i * kMss, 5001, kMss);
  }
  now_ += 500;
  pkt(false, tf::kAck, 5001, 1001 + 2 * kMss);  // first two acked at the switch
  now_ += 20;
  // Segment 3 again: its ACK has not passed -> a retransmission.
  MonOut o = pkt(true, tf::kAck, 1001 + 2 * kMss, 5001, kMss);
  EXPECT_TRUE(o.retrans);
  EXPECT_FALSE(o.spurious);
  // Segment 1 again: its ACK already went toward the sender -> spurious (pseudo-congestion).
  o = pkt(true, tf::kAck, 1001, 5001, kMss);
  EXPECT_TRUE(o.retrans);
  EXPECT_TRUE(o.spurious);
  EXPECT_EQ(cc().retrans, 2u);
  EXPECT_EQ(cc().spurious, 1u);
}

TEST_F(Mon, TsoRetransmissionCountsSegments) {
  handshake();
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, 3 * kMss);  // one 3-segment super-packet
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, 3 * kMss);  // resent whole
  EXPECT_EQ(cc().retrans, 3u);
}

// The last segment of a transfer carries data and the FIN; resent, it is one
// segment (as Linux counts it), although its sequence length exceeds its
// payload by the FIN's unit (seen in monitor_validation: monitor 17, Linux 16).
TEST_F(Mon, DataFinRetransmissionIsOneSegment) {
  handshake();
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, kMss);
  now_ += 10;
  pkt(true, tf::kAck | tf::kFin, 1001 + kMss, 5001, 264);
  now_ += 300'000;
  const MonOut o = pkt(true, tf::kAck | tf::kFin, 1001 + kMss, 5001, 264);  // tail loss probe
  EXPECT_TRUE(o.retrans);
  now_ += 300'000;
  pkt(true, tf::kAck | tf::kFin, 1001 + kMss + 264, 5001, 0);  // a bare FIN resent: one segment too
  EXPECT_EQ(cc().retrans, 2u);
}

TEST_F(Mon, DupAcksOpenFastRetransmitRecovery) {
  handshake();
  for (uint32_t i = 0; i < 6; ++i) {
    now_ += 10;
    pkt(true, tf::kAck, 1001 + i * kMss, 5001, kMss);
  }
  now_ += 300;
  pkt(false, tf::kAck, 5001, 1001 + kMss);  // segment 2 lost downstream
  for (int k = 0; k < 3; ++k) {
    now_ += 10;
    const MonOut o = pkt(false, tf::kAck, 5001, 1001 + kMss);
    EXPECT_TRUE(o.dupack);
    EXPECT_EQ(bool(o.fast_retx), k == 2);
  }
  EXPECT_EQ(cd().phase, kRecovery);
  now_ += 50;
  const MonOut r = pkt(true, tf::kAck, 1001 + kMss, 5001, kMss);
  EXPECT_TRUE(r.retrans);
  EXPECT_FALSE(r.fast_retx);  // same episode
  EXPECT_FALSE(r.timeout);
  now_ += 300;
  pkt(false, tf::kAck, 5001, 1001 + 6 * kMss);  // recovery point reached
  EXPECT_EQ(cd().phase, kCongAvoid);
  EXPECT_EQ(cc().fast_retx, 1u);
  EXPECT_EQ(cc().dupacks, 3u);
  EXPECT_EQ(cc().retrans, 1u);
  EXPECT_EQ(cc().timeouts, 0u);
}

TEST_F(Mon, SackStyleRetransmitAfterOneDupAck) {
  handshake();
  for (uint32_t i = 0; i < 4; ++i) {
    now_ += 10;
    pkt(true, tf::kAck, 1001 + i * kMss, 5001, kMss);
  }
  now_ += 300;
  pkt(false, tf::kAck, 5001, 1001);
  now_ += 10;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001).dupack);
  now_ += 30;
  const MonOut r = pkt(true, tf::kAck, 1001, 5001, kMss);
  EXPECT_TRUE(r.fast_retx);
  EXPECT_EQ(cd().phase, kRecovery);
}

TEST_F(Mon, SilenceThenHeadRetransmissionIsATimeout) {
  p_.rto_min_ms = 50;
  handshake();
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, kMss);
  now_ += 10;
  pkt(true, tf::kAck, 2001, 5001, kMss);
  now_ += 60'000;  // > 0.9 x 50 ms, no ACK, no dupack
  MonOut o = pkt(true, tf::kAck, 1001, 5001, kMss);
  EXPECT_TRUE(o.timeout);
  EXPECT_EQ(cd().phase, kLoss);
  // Backed-off second RTO: another timeout.
  now_ += 120'000;
  o = pkt(true, tf::kAck, 1001, 5001, kMss);
  EXPECT_TRUE(o.timeout);
  EXPECT_EQ(cc().timeouts, 2u);
  // A quick retransmission without silence is not a timeout.
  now_ += 100;
  pkt(false, tf::kAck, 5001, 2001);
  now_ += 10;
  o = pkt(true, tf::kAck, 2001, 5001, kMss);
  EXPECT_FALSE(o.timeout);
  now_ += 100;
  pkt(false, tf::kAck, 5001, 3001);  // past the recovery point: slow start again
  EXPECT_EQ(cd().phase, kSlowStart);
}

TEST_F(Mon, TailProbeIsNotATimeout) {
  p_.rto_min_ms = 200;
  handshake();
  for (uint32_t i = 0; i < 3; ++i) {
    now_ += 10;
    pkt(true, tf::kAck, 1001 + i * kMss, 5001, kMss);
  }
  now_ += 20'000;  // a tail-loss probe fires long before the RTO
  const MonOut o = pkt(true, tf::kAck, 1001 + 2 * kMss, 5001, kMss);
  EXPECT_TRUE(o.retrans);
  EXPECT_FALSE(o.timeout);
  EXPECT_FALSE(o.fast_retx);
}

TEST_F(Mon, HoleFillIsNotARetransmission) {
  handshake();
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, kMss);
  now_ += 10;
  EXPECT_TRUE(pkt(true, tf::kAck, 1001 + 2 * kMss, 5001, kMss).gap);  // segment 2 lost before the switch
  now_ += 10;
  const MonOut f = pkt(true, tf::kAck, 1001 + kMss, 5001, kMss);
  EXPECT_TRUE(f.hole_fill);
  EXPECT_FALSE(f.retrans);
  EXPECT_EQ(cc().retrans, 0u);
  EXPECT_EQ(cc().fills, 1u);
}

TEST_F(Mon, TimestampEchoTimesTheSenderSide) {
  handshake(ts_opt(1, 0));
  // Backlogged sender, 4 segments in flight: each ACK (new server TSval) is
  // answered by a new segment echoing it 20 us later.
  uint32_t seq = 1001, una = 1001, tsv = 10;
  for (int i = 0; i < 4; ++i, seq += kMss) pkt(true, tf::kAck, seq, 5001, kMss, 65535, ts_opt(100, tsv));
  for (int i = 0; i < 100; ++i) {
    now_ += 300;
    una += kMss;
    ++tsv;
    pkt(false, tf::kAck, 5001, una, 0, 65535, ts_opt(tsv, 100 + i));
    now_ += 20;
    pkt(true, tf::kAck, seq, 5001, kMss, 65535, ts_opt(101 + i, tsv));
    seq += kMss;
  }
  EXPECT_GT(client_side().n, 20u);  // one per group of kTsGroup echoes
  EXPECT_NEAR(client_side().srtt, 20, 10);  // ACK -> answer: 20 us (from 100 in the handshake)
  EXPECT_EQ(client_side().min, 20u);
}

TEST_F(Mon, LimitedByReceiverWindow) {
  handshake();
  const uint16_t win = 4 * kMss;  // receiver keeps a 4-segment window
  uint32_t una = 1001, nxt = 1001;
  for (int rtt = 0; rtt < 50; ++rtt) {
    while (nxt - una < win) {
      now_ += 5;
      pkt(true, tf::kAck, nxt, 5001, kMss);
      nxt += kMss;
    }
    now_ += 1000;  // window full: waits for the receiver
    una += 2 * kMss;
    pkt(false, tf::kAck, 5001, una, 0, win);
  }
  while (nxt - una < win) {
    now_ += 5;
    pkt(true, tf::kAck, nxt, 5001, kMss);
    nxt += kMss;
  }
  EXPECT_EQ(cd().lim, kLimRwnd);
  EXPECT_GT(lim_us(kLimRwnd), 3 * (lim_us(kLimNetwork) + lim_us(kLimSender)));
}

TEST_F(Mon, SeveralTimedSegmentsPerRtt) {
  handshake();
  // Bursts of 24 segments pass at once; the bottleneck spaces them 100 us,
  // the receiver ACKs every second one: ACK k comes 1000 + 200 k us later.
  uint32_t nxt = 1001;
  int samples = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 24; ++i, nxt += kMss) pkt(true, tf::kAck, nxt, 5001, kMss);
    const uint32_t t0 = now_;
    samples = 0;
    for (int k = 1; k <= 12; ++k) {
      now_ = t0 + 1000 + 200 * k;
      samples += pkt(false, tf::kAck, 5001, nxt - 24 * kMss + 2 * k * kMss).rtt_sample;
    }
  }
  // Once the window is known, one timed segment per sixth of it: six
  // samples per RTT, not one (a quarter: four), and the later ones carry
  // the queueing of the burst like the sender's own per-ACK samples.
  EXPECT_EQ(samples, 6);
  EXPECT_EQ(server_side().max, 3200u);  // the burst's last timed segment: the 11th ACK covers it
  EXPECT_GT(server_side().srtt, 1800u);  // from 100 (handshake) toward the 2200 mean
}

TEST_F(Mon, KarnDropsOnlyTheTimedSegmentsTheRetransmissionResends) {
  handshake();
  uint32_t nxt = 1001;
  for (int i = 0; i < 8; ++i, nxt += kMss) pkt(true, tf::kAck, nxt, 5001, kMss);
  // Timed: segments 1-6 and 8 (the first window is not known yet: a sixth of
  // the flight so far, at least a segment, apart).
  now_ += 500;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001 + kMss).rtt_sample);  // segment 1
  now_ += 10;
  const MonOut r = pkt(true, tf::kAck, 1001 + 2 * kMss, 5001, kMss);  // segment 3 resent
  EXPECT_TRUE(r.karn_skip);
  // Segment 2's timing is still valid, segment 3's is not.
  now_ += 100;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001 + 2 * kMss).rtt_sample);
  now_ += 100;
  // Segment 4 stays timed (a SACK for it would be a sample), but the
  // cumulative ACK also acknowledges the resent segment 3: no sample.
  EXPECT_FALSE(pkt(false, tf::kAck, 5001, 1001 + 8 * kMss).rtt_sample);
  EXPECT_EQ(server_side().n, 3u);  // handshake + 2
  EXPECT_EQ(cc().karn_skipped, 2u);  // segment 3 when resent, segment 4 at that ACK
}

// A sender that is not paced, window-limited, whose answer to each ACK takes
// 300 us (its side of the path): Linux stays rwnd-limited until it has
// processed the ACK, so the answer time is receiver-window time too.
TEST_F(Mon, ReceiverWindowIncludesTheSendersReactionToTheAck) {
  handshake(ts_opt(1, 0));
  const uint32_t emss = kMss - 12;  // timestamps on: segments carry kMss - 12
  const uint16_t win = uint16_t(6 * emss);
  uint32_t una = 1001, nxt = 1001;
  for (int i = 0; i < 6; ++i, nxt += emss) pkt(true, tf::kAck, nxt, 5001, emss, 65535, ts_opt(10, 1));
  for (int r = 0; r < 200; ++r) {
    now_ += 700;  // window full
    una += 2 * emss;
    pkt(false, tf::kAck, 5001, una, 0, win, ts_opt(2, 10));
    now_ += 300;  // the sender reacts
    for (int i = 0; i < 2; ++i, nxt += emss) pkt(true, tf::kAck, nxt, 5001, emss, 65535, ts_opt(10, 2));
  }
  EXPECT_EQ(cd().lim, kLimRwnd);
  EXPECT_GT(lim_us(kLimRwnd), 20 * (lim_us(kLimNetwork) + lim_us(kLimSender)));
}

// A paced sender (bbr): after the segment that fills the window it waits for
// its pacing slot, which Linux counts as busy, not receive-window time.
TEST_F(Mon, PacedSenderWaitsItsPacingSlotBeforeWindowTime) {
  handshake();
  const uint16_t win = uint16_t(6 * kMss);
  uint32_t una = 1001, nxt = 1001;
  for (int i = 0; i < 6; ++i, nxt += kMss) {
    now_ += 200;
    pkt(true, tf::kAck, nxt, 5001, kMss);
  }
  for (int r = 0; r < 200; ++r) {
    now_ += 600;  // 200 us pacing hold, then 400 us window-limited
    una += 2 * kMss;
    pkt(false, tf::kAck, 5001, una, 0, win);
    for (int i = 0; i < 2; ++i, nxt += kMss) {
      now_ += i ? 200 : 20;  // first at once (its slot has passed), second one slot later
      pkt(true, tf::kAck, nxt, 5001, kMss);
    }
  }
  EXPECT_NEAR(cd().pace4 * 4, 200, 20);
  // Per cycle of 820 us: 200 paced + 200 hold = 400 network, 420 receiver window.
  const double rw = lim_us(kLimRwnd), net = lim_us(kLimNetwork);
  EXPECT_NEAR(rw / (rw + net), 420.0 / 820.0, 0.05);
}

TEST_F(Mon, LimitedBySenderApplication) {
  handshake();
  uint32_t seq = 1001;
  for (int i = 0; i < 50; ++i) {  // one segment every 5 ms, acked after 300 us: mostly idle
    now_ += 5000;
    pkt(true, tf::kAck, seq, 5001, kMss);
    seq += kMss;
    now_ += 300;
    pkt(false, tf::kAck, 5001, seq);
  }
  EXPECT_GT(lim_us(kLimSender), 5 * (lim_us(kLimNetwork) + lim_us(kLimRwnd)));
}

// iperf3 -b 5M -l 8K: an 8 KB write every 13 ms, sent as 6 segments back to
// back, in flight for an RTT of 6 ms (about half the time). The burst's
// back-to-back segments are no ACK clocking: sender-limited throughout.
TEST_F(Mon, LimitedBySenderBurstyApplication) {
  handshake();
  uint32_t seq = 1001;
  for (int i = 0; i < 40; ++i) {
    now_ += 7000;
    for (int k = 0; k < 6; ++k) {
      now_ += 5;
      pkt(true, tf::kAck, seq, 5001, kMss);
      seq += kMss;
    }
    now_ += 3000;
    pkt(false, tf::kAck, 5001, seq - 2 * kMss);
    now_ += 3000;
    pkt(false, tf::kAck, 5001, seq);
  }
  EXPECT_LT(cd().clocked, 128);
  EXPECT_GT(lim_us(kLimSender), 5 * (lim_us(kLimNetwork) + lim_us(kLimRwnd)));
}

TEST_F(Mon, LimitedByNetworkWhenBacklogged) {
  handshake();
  uint32_t una = 1001, nxt = 1001;
  uint32_t cwnd = 10;
  for (int rtt = 0; rtt < 40; ++rtt) {
    // ACK clock: each ACK of 2 segments releases 2 (+1 per RTT) segments within 20 us.
    while (nxt - una < cwnd * kMss) {
      now_ += 10;
      pkt(true, tf::kAck, nxt, 5001, kMss);
      nxt += kMss;
    }
    for (uint32_t k = 0; k < cwnd / 2; ++k) {
      now_ += 100;
      una += 2 * kMss;
      pkt(false, tf::kAck, 5001, una);
      while (nxt - una < cwnd * kMss) {
        now_ += 10;
        pkt(true, tf::kAck, nxt, 5001, kMss);
        nxt += kMss;
      }
    }
    ++cwnd;
  }
  EXPECT_EQ(cd().lim, kLimNetwork);
  EXPECT_GT(lim_us(kLimNetwork), 5 * (lim_us(kLimSender) + lim_us(kLimRwnd)));
  EXPECT_GE(std::max(cd().fl_max, cd().fl_prev), 40 * kMss);  // cwnd lower bound follows the window
  EXPECT_EQ(cd().phase, kCongAvoid);  // linear growth after slow start
}

// 30 rounds toward a guest receiver: 4 segments, then its ACK for them
// after 100 us, every fourth round after `slow` us instead.
void Mon::guest_receiver_rounds(uint32_t slow) {
  env_.roles[kPortS] = kRoleGuest;
  handshake();
  uint32_t seq = 1001;
  for (int i = 0; i < 30; ++i) data_round(seq, (i % 4 == 3) ? slow : 100);
}

// 4 segments from seq on, 10 us apart, and the receiver's ACK for them
// answer_us after the last.
void Mon::data_round(uint32_t& seq, uint32_t answer_us) {
  for (int k = 0; k < 4; ++k) {
    now_ += 10;
    pkt(true, tf::kAck, seq, 5001, kMss);
    seq += kMss;
  }
  now_ += answer_us;
  pkt(false, tf::kAck, 5001, seq);
}

TEST_F(Mon, LimitedByGuestScheduling) {
  guest_receiver_rounds(30'000);  // ACKs wait for the guest to be scheduled
  EXPECT_GT(lim_us(kLimGuest), lim_us(kLimNetwork) + lim_us(kLimSender) + lim_us(kLimRwnd));
  const MonSide& g = server_side();
  EXPECT_GE(g.max - g.min, 29'000u);  // the guest's side RTT exceeded its minimum by the off period
  EXPECT_EQ(cold_[last_.slot].role[cdir() ^ 1], kRoleGuest);
  EXPECT_TRUE(cd().flags & dflag::kRcvGuest);
  // Averaged over time, not samples: the guest waited 30 ms of every ~30.4,
  // three prompt answers of every four samples do not make it small (a 1/8
  // EWMA over samples settles near 9 ms here).
  EXPECT_GE(mon_gex_avg(g), 20'000u);
}

// The same exchange across the wrap of the microsecond clock (2^32): the
// covered time and the idle rule compare times modulo 2^32.
TEST_F(Mon, GuestDelayAcrossTheClockWrap) {
  now_ = 0xffffffffu - 49'997;  // the rounds cross 2^32 in their first off period (never at 0)
  guest_receiver_rounds(30'000);
  const MonSide& g = server_side();
  EXPECT_GE(g.max - g.min, 29'000u);
  EXPECT_GE(mon_gex_avg(g), 27'000u);  // ~29.5 ms, as from any other start
  EXPECT_LE(mon_gex_avg(g), 31'000u);
}

// The EWMA's weight: the cubic below 16 ms of covered time, expm1 above.
TEST(MonGexWeight, CubicMatchesExpm1) {
  for (uint32_t l : {1u, 16u, 100u, 255u, 256u, 257u, 1000u, 4096u, 65535u}) {
    const double x = double(l << kGexTickShift) / double(kGexTauUs);
    EXPECT_NEAR(mon_gex_weight(l), -std::expm1(-x), 2e-6) << l;
  }
  EXPECT_LT(mon_gex_weight(255), mon_gex_weight(256));  // increasing across the switch
}

// Idle time (nothing outstanding) is not waiting: a running guest's bulk
// transfer (~0.3 s of prompt answers), a second of silence, then one
// delayed ACK (40 ms). The sample after the idle second weighs its own
// 40 ms, not the second: the average stays ~8 ms (weighing the second
// would make it ~39 ms).
TEST_F(Mon, GuestDelayIgnoresIdleTime) {
  env_.roles[kPortS] = kRoleGuest;
  handshake();
  uint32_t seq = 1001;
  for (int i = 0; i < 2000; ++i) data_round(seq, 100);
  const MonSide& g = server_side();
  EXPECT_LE(mon_gex_avg(g), 100u);
  now_ += 1'000'000;
  data_round(seq, 40'000);
  EXPECT_GE(g.max - g.min, 39'000u);
  EXPECT_GE(mon_gex_avg(g), 4'000u);
  EXPECT_LE(mon_gex_avg(g), 12'000u);
}

// The guest's first sample (its SYN-ACK, 30 ms late: it was not running)
// sets the side's minimum, so its excess reads 0 until a prompt answer
// lowers the minimum; then it is a 30 ms wait after all. ~30 ms of prompt
// answers follow: the average is ~15 ms (without the correction: ~0).
TEST_F(Mon, GuestDelayOfSamplesBeforeTheMinimumFell) {
  env_.roles[kPortS] = kRoleGuest;
  std::vector<uint8_t> o = {2, 4, uint8_t(kMss >> 8), uint8_t(kMss & 0xff)};
  pkt(true, tf::kSyn, 1000, 0, 0, 65535, o);
  now_ += 30'000;
  pkt(false, tf::kSyn | tf::kAck, 5000, 1001, 0, 65535, o);
  now_ += 100;
  pkt(true, tf::kAck, 1001, 5001);
  uint32_t seq = 1001;
  for (int i = 0; i < 200; ++i) data_round(seq, 100);
  const MonSide& g = server_side();
  EXPECT_LE(g.min, 200u);
  EXPECT_GE(g.max - g.min, 29'000u);
  EXPECT_GE(mon_gex_avg(g), 10'000u);
  EXPECT_LE(mon_gex_avg(g), 20'000u);
}

// The share of the RTT: a guest side's wait over its minimum + wait and
// the other sides' smoothed RTTs.
TEST(MonGuestShare, WaitOverTheRttItBelongsTo) {
  MonSide side[2] = {};
  side[0].min = 50;
  side[0].srtt = 900;
  side[0].gex_acc = 20'000;
  side[0].gex_l = 0xffff;  // weight 1
  side[1].min = 800;
  side[1].srtt = 1000;
  const uint8_t guest_uplink[2] = {kRoleGuest, kRoleUplink};
  MonGuestShare gs = mon_guest_share(side, guest_uplink);
  EXPECT_EQ(gs.delay_us, 20'000u);
  EXPECT_NEAR(gs.share, 20'000.0 / (50 + 20'000 + 1000), 1e-6);
  const uint8_t hosts[2] = {kRoleHost, kRoleUplink};
  gs = mon_guest_share(side, hosts);
  EXPECT_EQ(gs.delay_us, 0u);
  EXPECT_EQ(gs.share, 0.0);
  // Two guests: both waits, over both minimums + waits (not their srtt).
  side[1].gex_acc = 5'000;
  side[1].gex_l = 0xffff;
  const uint8_t guests[2] = {kRoleGuest, kRoleGuest};
  gs = mon_guest_share(side, guests);
  EXPECT_EQ(gs.delay_us, 25'000u);
  EXPECT_NEAR(gs.share, 25'000.0 / (50 + 20'000 + 800 + 5'000), 1e-6);
  // Young: the average is the EWMA over the weight gathered so far.
  side[0].gex_l = uint16_t(kGexTauUs >> kGexTickShift);  // one time constant: weight 1 - 1/e
  EXPECT_NEAR(double(mon_gex_avg(side[0])), 20'000.0 / (1.0 - std::exp(-1.0)), 2.0);
}

// Validated on the vmsim test bed (docs/monitor.md, guest scheduling): a
// descheduled guest receiver's silence starts at its last ACK, although its
// sender keeps sending (window, tail probe) for a while after that; a guest
// that answers the sender's latest packet promptly (a retransmission after an
// RTO for data its full ring dropped) was running.
TEST_F(Mon, GuestReceiverSilenceCountsFromItsLastAck) {
  env_.roles[kPortS] = kRoleGuest;
  handshake();
  uint32_t seq = 1001;
  auto send = [&](int n) { seq = send_segments(seq, n); };
  send(4);
  now_ += 100;
  pkt(false, tf::kAck, 5001, seq);  // the guest's last ACK before it is descheduled
  const uint32_t g0 = lim_us(kLimGuest);
  send(4);                          // the sender fills its window ...
  now_ += 8'000;
  send(1);                          // ... and probes the tail 8 ms later
  now_ += 22'000;
  pkt(false, tf::kAck, 5001, seq);  // the guest runs again 30 ms after its last ACK
  const uint32_t g = lim_us(kLimGuest) - g0;
  EXPECT_GE(g, 30'000u);
  EXPECT_LE(g, 30'200u);

  // RTO: nothing from the guest for 200 ms, but it answers the retransmission at once.
  send(2);
  const uint32_t g1 = lim_us(kLimGuest);
  now_ += 200'000;
  pkt(true, tf::kAck, seq - kMss, 5001, kMss);
  now_ += 100;
  pkt(false, tf::kAck, 5001, seq);
  EXPECT_EQ(lim_us(kLimGuest), g1);
}

// A descheduled guest SENDER: the data it sent before going off keeps the
// ACKs coming (the flight drains: network, then nothing outstanding) while it
// answers none of them. Its silence is guest time from the first ACK it left
// unanswered, also the part the draining ACKs had closed into other states.
TEST_F(Mon, GuestSenderSilenceCountsFromItsFirstUnansweredAck) {
  env_.roles[kPortC] = kRoleGuest;  // the client (sender) is a guest
  handshake();
  uint32_t seq = 1001, acked = 1001;
  auto round = [&](int n) {  // n segments, then the ACKs for them, promptly answered
    for (int k = 0; k < n; ++k) {
      now_ += 10;
      pkt(true, tf::kAck, seq, 5001, kMss);
      seq += kMss;
    }
  };
  for (int i = 0; i < 20; ++i) {  // a backlogged sender: each ACK answered within 20 us
    round(2);
    now_ += 300;
    acked += 2 * kMss;
    pkt(false, tf::kAck, 5001, acked);
  }
  round(8);  // the last burst before the guest is descheduled
  const uint32_t g0 = lim_us(kLimGuest), n0 = lim_us(kLimNetwork), s0 = lim_us(kLimSender);
  const uint32_t t_first = now_ + 300;
  for (int k = 0; k < 5; ++k) {  // ACKs drain the flight over 8 ms: nobody answers them
    now_ += k == 0 ? 300 : 2'000;
    acked += (k < 4 ? 2 : 1) * kMss;
    pkt(false, tf::kAck, 5001, std::min(acked, seq));
  }
  EXPECT_EQ(cd().lim, kLimSender);  // nothing outstanding
  now_ += 30'000;
  const uint32_t t_end = now_;
  EXPECT_TRUE(pkt(true, tf::kAck, seq, 5001, kMss).guest_delay);  // the guest runs again
  seq += kMss;
  const uint32_t g = lim_us(kLimGuest) - g0;
  EXPECT_NEAR(double(g), double(t_end - t_first), 16.0);
  // Only the wait for the first ACK (300 us) went to other states.
  EXPECT_NEAR(double(lim_us(kLimNetwork) + lim_us(kLimSender)), double(n0 + s0 + 300), 16.0);

  // A running guest that answers its ACKs promptly gets no guest time.
  const uint32_t g1 = lim_us(kLimGuest);
  for (int i = 0; i < 20; ++i) {
    round(2);
    now_ += 300;
    acked = seq;
    pkt(false, tf::kAck, 5001, acked);
  }
  EXPECT_EQ(lim_us(kLimGuest), g1);
}

// The switch's own stall (its PMD thread descheduled by the host) is not the
// guest's: packets that waited in the switch's rx ring were handled late, but
// the guest's silence is measured only up to the PMD's last look at its rings
// (Env::seen_us, PmdContext::rx_seen_tsc). Found under host load: an
// unconsolidated guest read 40-64 % guest time in bulk rx, about the union of
// its own and the PMD's runqueue waits >= 2 ms (docs/monitor.md).
TEST_F(Mon, SwitchStallIsNotGuestTime) {
  env_.roles[kPortS] = kRoleGuest;  // receiver: a guest
  handshake();
  uint32_t seq = 1001;
  auto send = [&](int n) { seq = send_segments(seq, n); };
  send(4);
  now_ += 100;
  pkt(false, tf::kAck, 5001, seq);
  send(4);  // owed by the guest when the PMD stops
  const uint32_t g0 = lim_us(kLimGuest);
  env_.seen = now_ + 50;  // the PMD's last look
  now_ += 30'000;         // ... it runs again 30 ms later: the guest's ACK was in its ring
  EXPECT_FALSE(pkt(false, tf::kAck, 5001, seq).guest_delay);
  env_.seen = 0;
  EXPECT_EQ(lim_us(kLimGuest), g0);

  // The guest silent for 20 ms, then the PMD away for 10 ms: 20 ms are the guest's.
  send(4);
  const uint32_t t_last = now_;
  now_ += 20'000;
  env_.seen = now_;
  now_ += 10'000;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, seq).guest_delay);
  env_.seen = 0;
  const uint32_t g = lim_us(kLimGuest) - g0;
  EXPECT_GE(g, 20'000u);
  EXPECT_LE(g, 20'000u + (t_last - (now_ - 30'000)) + 200);  // from its last ACK (4 segments before)
}

// The PMD is descheduled right after the monitor's step, before the data
// reaches the guest's ring: the guest's silence starts when the data reached
// it, at the stall's end.
TEST_F(Mon, SwitchStallBeforeTheSendIsNotGuestTime) {
  env_.roles[kPortS] = kRoleGuest;  // receiver: a guest
  handshake();
  uint32_t seq = 1001;
  seq = send_segments(seq, 4);
  now_ += 100;
  pkt(false, tf::kAck, 5001, seq);
  const uint32_t g0 = lim_us(kLimGuest);
  now_ += 10;
  pkt(true, tf::kAck, seq, 5001, kMss);  // stamped here, sent 25 ms later
  seq += kMss;
  env_.stalls = {{now_ - 5, now_ + 25'000}};
  now_ += 25'400;  // the guest answers 0.4 ms after the data reached it
  pkt(false, tf::kAck, 5001, seq);
  EXPECT_EQ(lim_us(kLimGuest), g0);

  // Stalled 10 ms before the send, then the guest silent for 20 ms: 20 ms are the guest's.
  now_ += 10;
  pkt(true, tf::kAck, seq, 5001, kMss);
  seq += kMss;
  env_.stalls.push_back({now_ - 5, now_ + 10'000});
  now_ += 30'000;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, seq).guest_delay);
  const uint32_t g = lim_us(kLimGuest) - g0;
  EXPECT_GE(g, 19'900u);
  EXPECT_LE(g, 20'000u);
  env_.stalls.clear();
}

// A guest sender: the PMD stalls with the guest's data and the uplink's ACKs
// in its rings; handled 30 ms late (the ACKs first), that is not guest time,
// also not what those late ACKs closed into other states.
TEST_F(Mon, SwitchStallIsNotGuestSenderTime) {
  env_.roles[kPortC] = kRoleGuest;
  handshake();
  uint32_t seq = 1001, acked = 1001;
  for (int i = 0; i < 20; ++i) {  // a backlogged guest sender, ACKs answered promptly
    for (int k = 0; k < 2; ++k) {
      now_ += 10;
      pkt(true, tf::kAck, seq, 5001, kMss);
      seq += kMss;
    }
    now_ += 300;
    acked += 2 * kMss;
    pkt(false, tf::kAck, 5001, acked);
  }
  const uint32_t g0 = lim_us(kLimGuest);
  env_.seen = now_ + 20;  // the PMD's last look
  now_ += 30'000;
  acked = seq;
  pkt(false, tf::kAck, 5001, acked);  // the uplink's ACK, then the guest's data
  now_ += 5;
  EXPECT_FALSE(pkt(true, tf::kAck, seq, 5001, kMss).guest_delay);
  seq += kMss;
  env_.seen = 0;
  EXPECT_EQ(lim_us(kLimGuest), g0);
}

// A guest client's SYN-ACK waits in its ring for the guest's next slot: the
// ACK and data that answer it come 30 ms later. That wait is guest time, and
// the handshake sample that contains it does not raise the guest's threshold.
TEST_F(Mon, GuestSenderHandshakeWaitIsGuestTime) {
  env_.roles[kPortC] = kRoleGuest;
  std::vector<uint8_t> o = {2, 4, uint8_t(kMss >> 8), uint8_t(kMss & 0xff)};
  pkt(true, tf::kSyn, 1000, 0, 0, 65535, o);
  now_ += 100;
  pkt(false, tf::kSyn | tf::kAck, 5000, 1001, 0, 65535, o);
  const uint32_t t_synack = now_;
  now_ += 30'000;
  EXPECT_TRUE(pkt(true, tf::kAck, 1001, 5001).guest_delay);
  EXPECT_NEAR(double(lim_us(kLimGuest)), double(now_ - t_synack), 2.0);
  now_ += 10;
  EXPECT_FALSE(pkt(true, tf::kAck, 1001, 5001, kMss).guest_delay);  // data right behind it
  now_ += 300;
  pkt(false, tf::kAck, 5001, 2001);
  now_ += 3'000;  // a later 3 ms pause: below the stall (2 ms) plus the guest's minimum (capped at 2 ms)
  EXPECT_FALSE(pkt(true, tf::kAck, 2001, 5001, kMss).guest_delay);
  now_ += 300;
  pkt(false, tf::kAck, 5001, 3001);
  now_ += 5'000;
  EXPECT_TRUE(pkt(true, tf::kAck, 3001, 5001, kMss).guest_delay);
}

// A guest client's SYN that waited 30 ms before it reached the switch (the
// guest was off when it connected): its answer to the SYN-ACK, sent at once,
// is 31 TSval ticks ahead of the SYN for 1.1 ms of switch time.
TEST_F(Mon, GuestInitiatorSynHoldFromTimestamps) {
  env_.roles[kPortC] = kRoleGuest;
  guest_syn_synack();
  EXPECT_TRUE(pkt(true, tf::kAck, 1001, 5001, 0, 65535, syn_ts(7031, 90000, false)).guest_delay);
  EXPECT_NEAR(double(lim_us(kLimGuest)), 31'000.0 - 1'100 - 1'000, 2.0);
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, kMss, 65535, syn_ts(7031, 90000, false));  // same tick: nothing more
  EXPECT_NEAR(double(lim_us(kLimGuest)), 31'000.0 - 1'100 - 1'000, 2.0);
  now_ += 1000;
  pkt(false, tf::kAck, 5001, 2001, 0, 65535, syn_ts(90001, 7031, false));  // its data acknowledged: tracking ends
  now_ += 30'000;
  pkt(true, tf::kAck, 2001, 5001, kMss, 65535, syn_ts(7100, 90001, false));
  // The 30 ms it left the ACK unanswered count (a sender's silence), its TSval no more.
  EXPECT_NEAR(double(lim_us(kLimGuest)), 31'000.0 - 1'100 - 1'000 + 30'000, 2.0);
}

TEST_F(Mon, GuestInitiatorPromptSynNoHold) {
  env_.roles[kPortC] = kRoleGuest;
  guest_syn_synack();
  EXPECT_FALSE(pkt(true, tf::kAck, 1001, 5001, 0, 65535, syn_ts(7002, 90000, false)).guest_delay);  // 2 ticks in 1.1 ms
  EXPECT_EQ(lim_us(kLimGuest), 0u);
}

// After its FIN a guest sender has nothing more to send: the wait for it to
// acknowledge the peer's FIN is not guest-limited sending.
TEST_F(Mon, GuestSenderAfterItsFinIsNotGuestLimited) {
  env_.roles[kPortC] = kRoleGuest;
  handshake();
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, kMss);
  now_ += 10;
  pkt(true, tf::kAck | tf::kFin, 2001, 5001);
  now_ += 300;
  pkt(false, tf::kAck | tf::kFin, 5001, 2002);  // acknowledges data and FIN, closes too
  const uint32_t g0 = lim_us(kLimGuest);
  now_ += 40'000;
  pkt(true, tf::kAck, 2002, 5002);  // its last ACK after an off period
  EXPECT_EQ(lim_us(kLimGuest), g0);  // (the peer's direction may count it: its FIN waited for the guest)
}

// Loss recovery: the cumulative ACK is stuck below a lost segment, but the
// SACK blocks report timed segments behind it as received (Linux's
// sack_rtt_us): they give samples before the retransmission discards them.
TEST_F(Mon, SackedTimedSegmentGivesSample) {
  handshake();
  uint32_t seq = 1001;
  for (int k = 0; k < 8; ++k) {  // 8 segments, 20 us apart: the first is timed, others queued
    now_ += 20;
    pkt(true, tf::kAck, seq, 5001, kMss);
    seq += kMss;
  }
  const uint32_t n0 = server_side().n;
  now_ += 3'000;
  // The first segment was lost: a dupACK whose SACK block covers segments 2-8.
  auto sack = [](uint32_t l, uint32_t r) {
    return std::vector<uint8_t>{1, 1, 5, 10, uint8_t(l >> 24), uint8_t(l >> 16), uint8_t(l >> 8), uint8_t(l),
                                uint8_t(r >> 24), uint8_t(r >> 16), uint8_t(r >> 8), uint8_t(r)};
  };
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001, 0, 65535, sack(2001, seq)).rtt_sample);
  EXPECT_EQ(server_side().n, n0 + 1);
  EXPECT_GE(server_side().max, 2'900u);
  EXPECT_LE(server_side().max, 3'200u);
  // The same block again (next dupACK) gives nothing new for what it already sampled.
  const uint32_t n1 = server_side().n;
  now_ += 20;
  pkt(false, tf::kAck, 5001, 1001, 0, 65535, sack(2001, seq));
  EXPECT_EQ(server_side().n, n1);  // every timed segment the block covered is done
}

// A retransmission makes only the timed segments it resends ambiguous: those
// behind it give samples when the SACK blocks report them, during the
// recovery (Linux's srtt follows the queue there through its SACK samples; a
// monitor that dropped them read short transfers' RTT low in recovery). The
// cumulative ACK that ends the recovery acknowledges the resent segment: no
// sample; the next new data is timed again.
TEST_F(Mon, TimedSegmentsBehindARetransmissionGiveSackSamples) {
  handshake();
  const uint32_t seq = send_segments(1001, 8);  // timed: 1-6 and 8 (the window is not known yet)
  auto sack = [](uint32_t l, uint32_t r) {
    return std::vector<uint8_t>{1, 1, 5, 10, uint8_t(l >> 24), uint8_t(l >> 16), uint8_t(l >> 8), uint8_t(l),
                                uint8_t(r >> 24), uint8_t(r >> 16), uint8_t(r >> 8), uint8_t(r)};
  };
  now_ += 500;  // segment 1 lost: the receiver reports segment 2
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001, 0, 65535, sack(2001, 3001)).rtt_sample);
  const uint32_t n0 = server_side().n;
  now_ += 10;
  const MonOut r = pkt(true, tf::kAck, 1001, 5001, kMss);  // segment 1 resent early (RACK)
  EXPECT_TRUE(r.retrans);
  EXPECT_TRUE(r.karn_skip);  // segment 1 was timed
  now_ += 1'000;  // segments 3 and 4 arrive late (a queue built up): their SACKs are samples
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001, 0, 65535, sack(2001, 4001)).rtt_sample);
  EXPECT_EQ(server_side().n, n0 + 1);
  EXPECT_EQ(server_side().max, 1'560u);  // segment 3 passed at +30, its SACK at +1590
  now_ += 10;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 1001, 0, 65535, sack(2001, 5001)).rtt_sample);
  EXPECT_EQ(server_side().n, n0 + 2);
  now_ += 300;  // the resent segment 1 arrives: the cumulative ACK covers it, no sample
  const MonOut a = pkt(false, tf::kAck, 5001, seq);
  EXPECT_FALSE(a.rtt_sample);
  EXPECT_TRUE(a.karn_skip);  // segments 5-8 were timed too: discarded
  EXPECT_EQ(server_side().n, n0 + 2);
  now_ += 10;  // new data: timed, and its ACK is a sample again
  pkt(true, tf::kAck, seq, 5001, kMss);
  now_ += 400;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, seq + kMss).rtt_sample);
  EXPECT_EQ(server_side().n, n0 + 3);
  EXPECT_EQ(cc().karn_skipped, 2u);
}

// The ACK that ends a repair acknowledges retransmitted data: no Karn
// sample, but it echoes the retransmission's TSval (the receiver takes
// TS.Recent from a segment that fills a hole), so its RTT is known (Linux
// takes it too: tcp_rtt_tsopt_us). An echo of anything else gives nothing.
TEST_F(Mon, RepairEndingAckEchoingTheRetransmissionIsASample) {
  handshake(ts_opt(1, 0));
  const uint32_t emss = kMss - 12;
  uint32_t seq = 1001;
  for (int k = 0; k < 4; ++k, seq += emss) {
    now_ += 10;
    pkt(true, tf::kAck, seq, 5001, emss, 65535, ts_opt(100, 1));
  }
  now_ += 500;
  for (int k = 0; k < 3; ++k) pkt(false, tf::kAck, 5001, 1001, 0, 65535, ts_opt(2, 100));  // dupACKs
  const uint32_t n0 = server_side().n;
  now_ += 10;
  EXPECT_TRUE(pkt(true, tf::kAck, 1001, 5001, emss, 65535, ts_opt(105, 2)).retrans);
  now_ += 700;
  const MonOut a = pkt(false, tf::kAck, 5001, seq, 0, 65535, ts_opt(3, 105));
  EXPECT_TRUE(a.rtt_sample);
  EXPECT_EQ(server_side().n, n0 + 1);
  EXPECT_EQ(server_side().max, 700u);
  // Again, but the ACK echoes the original's TSval (it acknowledges what came before the resend).
  for (int k = 0; k < 2; ++k, seq += emss) {
    now_ += 10;
    pkt(true, tf::kAck, seq, 5001, emss, 65535, ts_opt(110, 3));
  }
  now_ += 10;
  pkt(true, tf::kAck, seq - 2 * emss, 5001, emss, 65535, ts_opt(111, 3));  // resent
  now_ += 300;
  EXPECT_FALSE(pkt(false, tf::kAck, 5001, seq, 0, 65535, ts_opt(4, 110)).rtt_sample);
  EXPECT_EQ(server_side().n, n0 + 1);
}

// An ACK that gives a cumulative sample and carries SACK blocks also
// consumes the timed segments the blocks cover: the next dupACK repeating
// the block gives no (late) sample of them.
TEST_F(Mon, SackBlocksOnACumulativeSampleConsumeTheirTimedSegments) {
  handshake();
  send_segments(1001, 4);  // all four timed; segment 2 is lost
  auto sack = [](uint32_t l, uint32_t r) {
    return std::vector<uint8_t>{1, 1, 5, 10, uint8_t(l >> 24), uint8_t(l >> 16), uint8_t(l >> 8), uint8_t(l),
                                uint8_t(r >> 24), uint8_t(r >> 16), uint8_t(r >> 8), uint8_t(r)};
  };
  now_ += 500;
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 2001, 0, 65535, sack(3001, 4001)).rtt_sample);  // segment 1
  const uint32_t n0 = server_side().n;
  now_ += 300;
  EXPECT_FALSE(pkt(false, tf::kAck, 5001, 2001, 0, 65535, sack(3001, 4001)).rtt_sample);
  EXPECT_EQ(server_side().n, n0);
  now_ += 10;  // segment 4 arrives: newly reported, a sample
  EXPECT_TRUE(pkt(false, tf::kAck, 5001, 2001, 0, 65535, sack(3001, 5001)).rtt_sample);
  EXPECT_NEAR(server_side().max, 500u + 300u + 10u, kRqTimeUnit);  // from segment 4's pass to this ACK
}

// A resend in the same TSval tick as the original: the receiver's echo
// cannot tell which one its ACK answers. A timestamp sample shorter than the
// side's minimum (here: the ACK was the original's, 50 us after the resend)
// is dropped.
TEST_F(Mon, TimestampSampleShorterThanTheMinimumIsDropped) {
  handshake(ts_opt(1, 0));  // side minimum 100 us (the handshake)
  const uint32_t emss = kMss - 12;
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, emss, 65535, ts_opt(100, 1));
  now_ += 300;
  EXPECT_TRUE(pkt(true, tf::kAck, 1001, 5001, emss, 65535, ts_opt(100, 1)).retrans);  // same tick
  now_ += 50;
  const uint32_t n0 = server_side().n;
  EXPECT_FALSE(pkt(false, tf::kAck, 5001, 1001 + emss, 0, 65535, ts_opt(2, 100)).rtt_sample);
  EXPECT_EQ(server_side().n, n0);
}

TEST_F(Mon, GuestProbeRequestedForDataTowardAGuest) {
  env_.roles[kPortS] = kRoleGuest;
  handshake();
  now_ += 10;
  EXPECT_TRUE(pkt(true, tf::kAck, 1001, 5001, kMss).probe_guest);
}

TEST_F(Mon, MidStreamStart) {
  // First packet is data of an established connection (no handshake seen).
  now_ += 10;
  MonOut o = pkt(true, tf::kAck, 777'000, 9'000, kMss);
  EXPECT_TRUE(cold_[last_.slot].midstream);
  EXPECT_EQ(cd().phase, kPhaseUnknown);
  now_ += 10;
  pkt(true, tf::kAck, 778'000, 9'000, kMss);
  now_ += 400;
  o = pkt(false, tf::kAck, 9'000, 778'000);  // acks the first: timed at the switch
  EXPECT_TRUE(o.rtt_sample);
  EXPECT_EQ(server_side().srtt, 410u);
  now_ += 10;
  o = pkt(true, tf::kAck, 777'000, 9'000, kMss);  // resent after its ACK passed
  EXPECT_TRUE(o.retrans);
  EXPECT_TRUE(o.spurious);
  // The second segment (timed too) was not resent: its ACK is a sample, as
  // for Linux (the resent range lies below it, acknowledged already).
  now_ += 10;
  o = pkt(false, tf::kAck, 9'000, 779'000);
  EXPECT_TRUE(o.rtt_sample);
  EXPECT_NEAR(server_side().max, 420u, kRqTimeUnit);  // a queued time is stored in 4 us units
  now_ += 10;
  pkt(true, tf::kAck, 779'000, 9'000, kMss);  // new data: timed again
  now_ += 250;
  EXPECT_TRUE(pkt(false, tf::kAck, 9'000, 780'000).rtt_sample);
  EXPECT_EQ(server_side().min, 250u);
  EXPECT_EQ(cc().retrans, 1u);
}

TEST_F(Mon, CreatedSlotResetsState) {
  handshake();
  now_ += 10;
  pkt(true, tf::kAck, 1001, 5001, kMss);
  pkt(true, tf::kAck, 1001, 5001, kMss);
  EXPECT_EQ(cc().retrans, 1u);
  pkt(true, tf::kRst | tf::kAck, 2001, 5001);
  table_.remove(last_.slot, RemoveReason::kFlushed);
  handshake();
  EXPECT_EQ(cc().retrans, 0u);
}

// ---- the stage inside the switch ----

SwitchConfig mon_config(const std::string& export_path) {
  SwitchConfig c;
  c.pmd_lcores = {1};
  c.mbufs = 8192;
  c.dp.idle_sleep_max_us = 50;
  c.dp.flows.capacity = 1024;
  c.dp.flows.linger_ms = 20;
  c.stage_order = {"monitor"};
  c.stages_enabled = {"monitor"};
  c.stage_config["monitor"] = {{"export_path", export_path}, {"uplink_ports", {"up"}}};
  return c;
}

class MonSwitch : public ::testing::Test {
 protected:
  void TearDown() override {
    if (sw_) sw_->shutdown();
  }
  MemPort* add(const std::string& name) {
    auto p = std::make_unique<MemPort>(name, sw_->datapath().pool);
    MemPort* raw = p.get();
    PortSpec s;
    s.name = name;
    s.type = "mem";
    sw_->add_port_object(std::move(p), s);
    return raw;
  }
  std::unique_ptr<Switch> sw_;
};

TEST_F(MonSwitch, TcpFlowsCommandsAndExport) {
  const std::string path = "/tmp/vsw_monitor_test_" + std::to_string(getpid()) + ".jsonl";
  std::remove(path.c_str());
  sw_ = std::make_unique<Switch>(mon_config(path));
  std::string err;
  ASSERT_TRUE(sw_->start(err)) << err;
  MemPort* host = add("host");
  MemPort* up = add("up");
  FrameBuilder h2u(mac(2), mac(1)), u2h(mac(1), mac(2));
  auto spec = [](bool c2s, uint8_t fl, uint32_t seq, uint32_t ack, uint32_t len) {
    TcpSpec t;
    t.src_ip = c2s ? kC : kS;
    t.dst_ip = c2s ? kS : kC;
    t.sport = c2s ? kCp : kSp;
    t.dport = c2s ? kSp : kCp;
    t.flags = fl;
    t.seq = seq;
    t.ack = ack;
    t.payload = len;
    return t;
  };
  host->inject(h2u.tcp4(spec(true, tf::kSyn, 1000, 0, 0)));
  ASSERT_TRUE(wait_for([&] { return up->tx_count() == 1; }));
  up->inject(u2h.tcp4(spec(false, tf::kSyn | tf::kAck, 5000, 1001, 0)));
  ASSERT_TRUE(wait_for([&] { return host->tx_count() == 1; }));
  host->inject(h2u.tcp4(spec(true, tf::kAck, 1001, 5001, 0)));
  host->inject(h2u.tcp4(spec(true, tf::kAck, 1001, 5001, 500)));
  host->inject(h2u.tcp4(spec(true, tf::kAck, 1501, 5001, 500)));
  ASSERT_TRUE(wait_for([&] { return up->tx_count() == 4; }));
  up->inject(u2h.tcp4(spec(false, tf::kAck, 5001, 2001, 0)));
  ASSERT_TRUE(wait_for([&] { return host->tx_count() == 2; }));  // the ACK went by first
  host->inject(h2u.tcp4(spec(true, tf::kAck, 1001, 5001, 500)));  // spurious: already acked
  ASSERT_TRUE(wait_for([&] { return up->tx_count() == 5; }));

  const auto mono_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
  };
  const uint64_t asked = mono_ns();
  nlohmann::json r = run_command(*sw_, "tcp-flows", {{"argv", nlohmann::json::array()}, {"sort", "bytes"}});
  const uint64_t answered = mono_ns();
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  const auto& res = r["result"];
  ASSERT_EQ(res["flows"].size(), 1u) << res.dump(2);
  const auto& f = res["flows"][0];
  // The copy is stamped with the host's monotonic clock, within the request.
  EXPECT_GE(f["copied_mono_ns"].get<uint64_t>(), asked);
  EXPECT_LE(f["copied_mono_ns"].get<uint64_t>(), answered);
  EXPECT_EQ(f["bytes"].get<uint64_t>(), 1500u);
  const auto& d = f["dirs"][0];
  EXPECT_EQ(d["src"], "10.0.0.1:40000");
  EXPECT_EQ(d["retrans"].get<int>(), 1);
  EXPECT_EQ(d["spurious_retrans"].get<int>(), 1);
  EXPECT_EQ(f["endpoints"].size(), 2u);
  bool saw_uplink = false;
  for (const auto& e : f["endpoints"]) saw_uplink |= e["role"] == "uplink" && e["switch_port"] == "up";
  EXPECT_TRUE(saw_uplink);
  // Filters.
  EXPECT_EQ(run_command(*sw_, "tcp-flows", {{"addr", "10.0.0.9"}})["result"]["flows"].size(), 0u);
  EXPECT_EQ(run_command(*sw_, "tcp-flows", {{"port", "up"}, {"sort", "rtt"}})["result"]["flows"].size(), 1u);
  EXPECT_FALSE(run_command(*sw_, "tcp-flows", {{"sort", "nonsense"}})["ok"].get<bool>());
  // Telemetry page and the detail view.
  auto pg = run_command(*sw_, "tcp-flows", {{"argv", {"0"}}})["result"];
  EXPECT_EQ(pg["pages"].get<int>(), 1);
  ASSERT_EQ(pg["flows"].size(), 1u);
  const std::string id = f["id"].get<std::string>();
  auto one = run_command(*sw_, "tcp-flow", {{"argv", {id}}});
  ASSERT_TRUE(one["ok"].get<bool>()) << one.dump();
  EXPECT_EQ(one["result"]["sides"].size(), 2u);
  EXPECT_FALSE(run_command(*sw_, "tcp-flow", {{"argv", {"0:999"}}})["ok"].get<bool>());
  // Stage counters.
  nlohmann::json st;
  for (const auto& s : sw_->stage_list())
    if (s["name"] == "monitor") st = s["counters"];
  EXPECT_EQ(st["spurious_retrans"].get<int>(), 1);
  EXPECT_GE(st["rtt_samples"].get<int>(), 2);

  // RST: the connection lingers 20 ms, is removed, and its record is exported.
  host->inject(h2u.tcp4(spec(true, tf::kRst | tf::kAck, 2001, 5001, 0)));
  ASSERT_TRUE(wait_for(
      [&] {
        std::ifstream in(path);
        std::string line;
        return static_cast<bool>(std::getline(in, line));
      },
      std::chrono::milliseconds(3000)));
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const auto rec = nlohmann::json::parse(line);
  EXPECT_EQ(rec["closed_reason"], "reset");
  EXPECT_EQ(rec["bytes"].get<uint64_t>(), 1500u);
  EXPECT_EQ(rec["dirs"][0]["spurious_retrans"].get<int>() + rec["dirs"][1]["spurious_retrans"].get<int>(), 1);
  std::remove(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new EalEnv);
  return RUN_ALL_TESTS();
}

// The packed queue of timed segments: ends and times come back within their
// units (never late: an ACK at the boundary before a segment does not take
// its sample), an entry removed in the middle keeps the later ones in place.
TEST(MonQueue, PackedEntriesKeepEndsAndTimes) {
  MonDir d{};
  MonDirWarm w{};
  d.una = 1'000'000;
  const uint32_t mss = 1448;
  uint32_t end = d.una + 1'443, t = 1'000'003;  // ends and times off the units on purpose
  ASSERT_TRUE(mon_rtt_start(d, w, end, mss, t, mss));
  std::vector<MonTimed> sent{{end, t}};
  for (uint32_t k = 0; k < kRttQueue + 2; ++k) {
    end += mss;
    t += 37;
    d.nxt = end;
    d.una = end - mss;  // spacing: one segment (a sixth of a one-segment flight)
    mon_rtt_start(d, w, end, mss, t, mss);
    sent.push_back({end, t});
  }
  ASSERT_EQ(w.rq_n, kRttQueue);  // full: the last two were not queued
  MonTimed e{d.rtt_end, d.rtt_t};
  for (uint32_t i = 0; i < w.rq_n; ++i) {
    e = mon_rq_next(w, i, e);
    EXPECT_LE(e.end, sent[i + 1].end);
    EXPECT_GT(e.end + 0, sent[i + 1].end - kRqEndUnit);
    EXPECT_LE(e.t, sent[i + 1].t);
    EXPECT_GT(e.t, sent[i + 1].t - kRqTimeUnit);
  }
  // An ACK of everything up to segment 3's start pops the head and entries 0-1 only.
  mon_rtt_pop(d, w, sent[3].end - mss);
  EXPECT_EQ(w.rq_n, kRttQueue - 3);
  EXPECT_GT(d.rtt_end, sent[3].end - kRqEndUnit);
  EXPECT_LE(d.rtt_end, sent[3].end);
  // Remove entry 1 (segment 5): entry 2 (segment 6) stays where it was.
  mon_rq_erase(w, 1);
  MonTimed h{d.rtt_end, d.rtt_t};
  const MonTimed e0 = mon_rq_next(w, 0, h), e1 = mon_rq_next(w, 1, e0);
  EXPECT_LE(e0.end, sent[4].end);
  EXPECT_GT(e0.end, sent[4].end - kRqEndUnit);
  EXPECT_LE(e1.end, sent[6].end);
  EXPECT_GT(e1.end, sent[6].end - 2 * kRqEndUnit);
  EXPECT_GE(int32_t(sent[6].t - e1.t), 0);
  EXPECT_LT(int32_t(sent[6].t - e1.t), int32_t(2 * kRqTimeUnit));
}

// Limit-state time: microseconds in the warm line, carried into the cold line
// past 2^31 us, and taken back exactly.
TEST(MonQueue, LimitTotalsCarryAndBorrow) {
  MonDirWarm w{};
  MonDirCold dc{};
  uint64_t total = 0;
  for (int k = 0; k < 5; ++k) {
    mon_add_lim(w, dc, kLimNetwork, 1'000'000'007u);
    total += 1'000'000'007u;
  }
  EXPECT_EQ(mon_lim_total_us(w, dc, kLimNetwork), total);
  EXPECT_GT(dc.lim_carry[kLimNetwork], 0u);
  EXPECT_LT(w.lim_us[kLimNetwork], kLimCarryUs);
  const uint32_t take = w.lim_us[kLimNetwork] + 2'500;  // more than the warm part holds
  mon_sub_lim(w, dc, kLimNetwork, take);
  EXPECT_EQ(mon_lim_total_us(w, dc, kLimNetwork), total - take);
  MonDirWarm w2{};
  MonDirCold dc2{};
  mon_add_lim(w2, dc2, kLimSender, 700);
  mon_sub_lim(w2, dc2, kLimSender, 900);  // never below zero
  EXPECT_EQ(mon_lim_total_us(w2, dc2, kLimSender), 0u);
}

// Across the 2^32 sequence wrap, in a flight of 12 MB (spacing capped so the
// 16-bit deltas still hold), with segments too short for the end unit left
// out, an entry whose removal cannot be merged stays dead, and popping skips
// it.
TEST(MonQueue, WrapLargeFlightShortSegmentsAndDeadEntries) {
  MonDir d{};
  MonDirWarm w{};
  const uint32_t mss = 1448;
  d.una = 0xffffffffu - 1'000'000;  // the queue crosses 2^32
  uint32_t end = d.una + mss, t = 5'000;
  ASSERT_TRUE(mon_rtt_start(d, w, end, mss, t, mss));
  d.fl_prev = 12'000'000;  // spacing a sixth of it (2 MB), capped at kRqMaxSpace
  std::vector<MonTimed> q;
  for (int k = 0; k < 20'000 && w.rq_n < kRttQueue; ++k) {
    end += mss;
    t += 10;
    d.nxt = end;
    if (!mon_rtt_start(d, w, end, mss, t, mss) && w.rq_n > q.size()) q.push_back({end, t});
  }
  ASSERT_EQ(w.rq_n, kRttQueue);  // the 12 MB flight still queues
  MonTimed e{d.rtt_end, d.rtt_t};
  for (uint32_t i = 0; i < w.rq_n; ++i) {
    e = mon_rq_next(w, i, e);
    EXPECT_LT(q[i].end - e.end, kRqEndUnit) << i;
  }
  EXPECT_TRUE(net::Seq(e.end) > net::Seq(0xffffffffu)) << "last entry past the wrap";
  // Entries are ~kRqMaxSpace apart: removing entry 1 merges its deltas into
  // the next one, once more fits (three entries' deltas in one), the third
  // would not: entry 1 (at entry 3's place) stays, dead.
  const uint8_t n = w.rq_n;
  for (int k = 1; k <= 2; ++k) {
    mon_rq_erase(w, 1);
    EXPECT_EQ(w.rq_n, n - k);
  }
  mon_rq_erase(w, 1);
  EXPECT_EQ(w.rq_n, n - 2);
  EXPECT_EQ(w.rq_dead, 1u << 1);
  // The entry after the dead one (was 4) is where it was.
  const MonTimed h{d.rtt_end, d.rtt_t};
  const MonTimed e0 = mon_rq_next(w, 0, h), e1 = mon_rq_next(w, 1, e0), e2 = mon_rq_next(w, 2, e1);
  EXPECT_LT(q[4].end - e2.end, kRqEndUnit);
  // An ACK below the dead entry's end (at entry 0's) pops past the dead
  // entry to the next live one: a dead entry never becomes the head.
  mon_rtt_pop(d, w, e0.end);
  EXPECT_EQ(d.rtt_end, e2.end);
  EXPECT_EQ(w.rq_dead, 0u);
  EXPECT_EQ(w.rq_n, n - 5);
  // A segment shorter than the end unit is not queued.
  MonDir d2{};
  MonDirWarm w2{};
  ASSERT_TRUE(mon_rtt_start(d2, w2, 1000, 536, 1, 536));
  d2.una = 1000;
  d2.nxt = 1600;  // spacing: one segment (536)
  EXPECT_FALSE(mon_rtt_start(d2, w2, 1000 + 600, 10, 2, 536));
  EXPECT_EQ(w2.rq_n, 0u);
  mon_rtt_start(d2, w2, 1000 + 600, 16, 3, 536);  // the same end, 16 bytes long: queued
  EXPECT_EQ(w2.rq_n, 1u);
}
