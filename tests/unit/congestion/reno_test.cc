// Reno (RFC 5681, RFC 3465 byte counting) and NewReno (RFC 6582) driven
// through scripted traces. MSS 1000 everywhere; expected windows are worked
// out by hand in the comment beside each check.
#include <gtest/gtest.h>

#include "cc/congestion/reno.h"
#include "tests/unit/congestion/trace.h"

using namespace vsw::congestion;
using vsw::congestion::test::config;
using vsw::congestion::test::kMss;
using vsw::congestion::test::Trace;

TEST(Reno, InitialWindowFollowsRfc6928) {
  CcConfig c = config();
  CcState s;
  s.init(kRenoOps, c);
  EXPECT_EQ(s.cwnd(), 10000u);  // min(10*1000, max(2*1000, 14600)) = 10000
  EXPECT_EQ(s.ssthresh(), kInfiniteSsthresh);
  c.mss = 1460;
  s.init(kRenoOps, c);
  EXPECT_EQ(s.cwnd(), 14600u);  // min(14600, max(2920, 14600)) = 14600
  c.mss = 9000;
  s.init(kRenoOps, c);
  EXPECT_EQ(s.cwnd(), 18000u);  // min(90000, max(18000, 14600)) = 18000: jumbo MSS is capped
  c.initial_window = 4000;
  s.init(kRenoOps, c);
  EXPECT_EQ(s.cwnd(), 4000u);  // explicit IW wins
}

TEST(Reno, SlowStartDoublesPerRtt) {
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // IW 10000 + 10 ACKs * min(1000, 2*1000) = 20000
  t.send_to_cwnd();
  t.ack_segments(20);
  EXPECT_EQ(t.cc.cwnd(), 40000u);  // 20000 + 20 * 1000: doubled again in the second RTT
}

TEST(Reno, SlowStartByteCountingLimitL) {
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack(5000);  // a stretch ACK covering 5 segments
  EXPECT_EQ(t.cc.cwnd(), 12000u);  // RFC 3465 L = 2*SMSS: 10000 + min(5000, 2000)

  CcConfig c = config();
  c.abc_limit_segments = 1;  // RFC 5681 sec 3.1: cwnd += min(N, SMSS)
  Trace u(kRenoOps, c);
  u.send_to_cwnd();
  u.ack(5000);
  EXPECT_EQ(u.cc.cwnd(), 11000u);  // 10000 + min(5000, 1000)
}

TEST(Reno, SlowStartStopsAtSsthresh) {
  Trace t(kRenoOps, config(10000, 15000));
  t.send(20000);
  t.ack(2000);
  t.ack(2000);
  EXPECT_EQ(t.cc.cwnd(), 14000u);  // 10000 + 2000 + 2000
  t.ack(2000);
  EXPECT_EQ(t.cc.cwnd(), 15000u);  // min(14000 + 2000, ssthresh 15000)
  EXPECT_FALSE(t.cc.in_slow_start());
}

TEST(Reno, CongestionAvoidanceOneMssPerRtt) {
  Trace t(kRenoOps, config(10000, 20000));
  t.send(100000);
  t.ack_segments(10);
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // slow start 10000 -> 20000 = ssthresh
  t.ack_segments(19);
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // CA byte counter 19000 < cwnd 20000: no increase yet
  t.ack_segments(1);
  EXPECT_EQ(t.cc.cwnd(), 21000u);  // counter reaches 20000 = cwnd: +1 SMSS, counter 0
  t.ack_segments(21);
  EXPECT_EQ(t.cc.cwnd(), 22000u);  // one more window (21 * 1000 = 21000 = cwnd): +1 SMSS
}

TEST(Reno, FastRetransmitAndRecovery) {
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);  // cwnd 20000
  t.send_to_cwnd();    // flight 20000
  t.dup_ack();
  t.dup_ack();
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // two dup ACKs change nothing
  t.dup_ack();
  EXPECT_TRUE(t.loss());  // third dup ACK: fast retransmit
  EXPECT_TRUE(t.cc.in_recovery());
  EXPECT_EQ(t.cc.ssthresh(), 10000u);  // max(FlightSize 20000 / 2, 2 * 1000) = 10000
  EXPECT_EQ(t.cc.cwnd(), 13000u);      // ssthresh + 3 * SMSS
  EXPECT_FALSE(t.loss());              // already recovering: no second reduction
  t.dup_ack();
  t.dup_ack();
  EXPECT_EQ(t.cc.cwnd(), 15000u);  // +1 SMSS per further dup ACK (inflation)
  EXPECT_EQ(t.ack(1000), AckOutcome::kRecoveryExit);
  EXPECT_FALSE(t.cc.in_recovery());
  EXPECT_EQ(t.cc.cwnd(), 10000u);  // RFC 5681 step 6: deflate to ssthresh at the first new ACK
  t.ack_segments(10);
  EXPECT_EQ(t.cc.cwnd(), 11000u);  // congestion avoidance: 10000 bytes acked = cwnd -> +1 SMSS
}

TEST(Reno, SsthreshFloorIsTwoSegments) {
  Trace t(kRenoOps, config());
  t.send(3000);
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_EQ(t.cc.ssthresh(), 2000u);  // max(3000 / 2, 2 * 1000) = 2000
  EXPECT_EQ(t.cc.cwnd(), 5000u);      // 2000 + 3 * 1000
}

TEST(Reno, RtoSetsLossWindowAndSlowStartsWithOneSmssLimit) {
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);  // cwnd 20000
  t.send_to_cwnd();    // flight 20000
  t.timeout();
  EXPECT_EQ(t.cc.ssthresh(), 10000u);  // max(20000 / 2, 2000)
  EXPECT_EQ(t.cc.cwnd(), 1000u);       // loss window LW = 1 SMSS
  t.ack(3000);
  EXPECT_EQ(t.cc.cwnd(), 2000u);  // RFC 3465 sec 2.3: L = 1 SMSS after an RTO: 1000 + min(3000, 1000)
}

TEST(Reno, RepeatedRtoHoldsSsthresh) {
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);
  t.send_to_cwnd();  // flight 20000
  t.timeout();
  EXPECT_EQ(t.cc.ssthresh(), 10000u);
  // The retransmission times out too; a sender that counts lost segments out
  // of FlightSize would now report 1000. RFC 5681 sec 3.1: ssthresh held.
  t.timeout_with_flight(1000);
  EXPECT_EQ(t.cc.ssthresh(), 10000u);  // not max(1000 / 2, 2000) = 2000
  EXPECT_EQ(t.cc.cwnd(), 1000u);
  t.ack(1000);  // progress ends the hold
  t.timeout_with_flight(6000);
  EXPECT_EQ(t.cc.ssthresh(), 3000u);  // max(6000 / 2, 2000)
}

TEST(Reno, EcnEchoHalvesOncePerWindowWithoutGrowth) {
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);  // cwnd 20000
  t.send_to_cwnd();    // snd_nxt = snd_una + 20000
  const uint32_t window_end = t.snd_nxt;
  t.ack(1000, /*ece=*/true);
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // RFC 3168 6.1.2: an ECE ACK does not grow cwnd (else 21000)
  EXPECT_TRUE(t.ecn());
  EXPECT_EQ(t.cc.ssthresh(), 9500u);  // max(FlightSize 19000 / 2, 2000)
  EXPECT_EQ(t.cc.cwnd(), 9500u);      // no fast-recovery inflation for ECN
  EXPECT_FALSE(t.cc.in_recovery());
  t.ack(1000, true);
  EXPECT_FALSE(t.ecn());  // same window: ignored
  EXPECT_EQ(t.cc.cwnd(), 9500u);
  t.ack(window_end - t.snd_una);  // everything sent before the cut is now acked
  t.send(10000);
  t.ack(1000, true);
  EXPECT_TRUE(t.ecn());  // a new window may be cut again
  EXPECT_EQ(t.cc.ssthresh(), 4500u);  // flight 9000 / 2
}

TEST(NewReno, PartialAckKeepsRecoveryFullAckExitsAtSsthresh) {
  Trace t(kNewRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);  // cwnd 20000
  t.send_to_cwnd();    // flight 20000; recover will be the last byte sent
  const uint32_t recover_end = t.snd_nxt;
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_EQ(t.cc.ssthresh(), 10000u);  // max(20000 / 2, 2000)
  EXPECT_EQ(t.cc.cwnd(), 13000u);      // 10000 + 3 * 1000
  t.dup_ack();
  t.dup_ack();
  EXPECT_EQ(t.cc.cwnd(), 15000u);  // +1000 per further dup ACK
  EXPECT_EQ(t.ack(3000), AckOutcome::kPartialAck);
  EXPECT_TRUE(t.cc.in_recovery());
  EXPECT_EQ(t.cc.cwnd(), 13000u);  // RFC 6582 step 5: 15000 - 3000 acked + 1000 (acked >= 1 SMSS)
  EXPECT_EQ(t.ack(500), AckOutcome::kPartialAck);
  EXPECT_EQ(t.cc.cwnd(), 12500u);  // 13000 - 500, nothing added back (< 1 SMSS acked)
  t.dup_ack();
  EXPECT_EQ(t.cc.cwnd(), 13500u);
  t.send(25000);  // new data sent during recovery stays outstanding after the full ACK
  EXPECT_EQ(t.ack(recover_end - t.snd_una), AckOutcome::kRecoveryExit);
  EXPECT_FALSE(t.cc.in_recovery());
  // Step 4 option (1): min(ssthresh 10000, max(FlightSize 25000, 1000) + 1000) = 10000
  EXPECT_EQ(t.cc.cwnd(), 10000u);
}

TEST(NewReno, FullAckWithLittleInFlightAvoidsBurst) {
  Trace t(kNewRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);
  t.send_to_cwnd();  // flight 20000
  const uint32_t recover_end = t.snd_nxt;
  EXPECT_TRUE(t.three_dup_acks());
  t.send(3000);
  EXPECT_EQ(t.ack(recover_end - t.snd_una), AckOutcome::kRecoveryExit);
  EXPECT_EQ(t.cc.cwnd(), 4000u);  // min(10000, max(FlightSize 3000, 1000) + 1000) = 4000
}

TEST(NewReno, RenoExitsAtFirstPartialAck) {
  // The same trace as above under Reno: the partial ACK ends recovery.
  Trace t(kRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);
  t.send_to_cwnd();
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_EQ(t.ack(3000), AckOutcome::kRecoveryExit);
  EXPECT_EQ(t.cc.cwnd(), 10000u);  // ssthresh
}

TEST(NewReno, NoFastRetransmitForDupAcksFromBeforeAnRto) {
  Trace t(kNewRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);
  t.send_to_cwnd();  // flight 20000
  t.timeout();       // recover = last byte sent
  EXPECT_EQ(t.cc.cwnd(), 1000u);
  // Dup ACKs at snd_una do not cover more than recover (RFC 6582 sec 3.2 step 2).
  EXPECT_FALSE(t.three_dup_acks());
  EXPECT_FALSE(t.cc.in_recovery());
  EXPECT_EQ(t.cc.cwnd(), 1000u);
  EXPECT_EQ(t.cc.ssthresh(), 10000u);  // not reset
  // Reno has no recover point and would halve again.
  Trace r(kRenoOps, config());
  r.send_to_cwnd();
  r.ack_segments(10);
  r.send_to_cwnd();
  r.timeout();
  EXPECT_TRUE(r.three_dup_acks());
  EXPECT_EQ(r.cc.ssthresh(), 10000u);  // max(20000/2, 2000): fresh cut from the same flight
  // NewReno again: once everything up to recover is acked, a new loss counts.
  t.ack(t.flight());
  t.send(5000);
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_EQ(t.cc.ssthresh(), 2500u);  // max(5000 / 2, 2000)
}

TEST(NewReno, LossInWindowAlreadyCutForEcnRetransmitsWithoutSecondCut) {
  Trace t(kNewRenoOps, config());
  t.send_to_cwnd();
  t.ack_segments(10);
  t.send_to_cwnd();  // flight 20000
  t.ack(1000, true);
  EXPECT_TRUE(t.ecn());
  EXPECT_EQ(t.cc.ssthresh(), 9500u);  // 19000 / 2
  EXPECT_TRUE(t.three_dup_acks());    // retransmit ...
  EXPECT_EQ(t.cc.ssthresh(), 9500u);  // ... but RFC 3168 6.1.2: no second cut in the window
  EXPECT_EQ(t.cc.cwnd(), 12500u);     // 9500 + 3 * 1000
}
