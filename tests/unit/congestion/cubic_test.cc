// CUBIC (RFC 9438): the window function against the RFC formula, beta on loss
// and ECE, fast convergence, the Reno-friendly region, timeouts. MSS 1000;
// windows inside the formulas are in segments (W = 70 means cwnd 70000 bytes).
#include <gtest/gtest.h>

#include <cmath>

#include "cc/congestion/cubic.h"
#include "tests/unit/congestion/trace.h"

using namespace vsw::congestion;
using vsw::congestion::test::config;
using vsw::congestion::test::kMss;
using vsw::congestion::test::Trace;

namespace {
// A flow that lost at cwnd = 100 segments with 100 segments in flight and has
// just left recovery: W_max = 100, ssthresh = cwnd = 70000, no epoch yet.
Trace after_first_loss(bool fast_convergence = true) {
  CcConfig c = config(100000);
  c.cubic_fast_convergence = fast_convergence;
  Trace t(kCubicOps, c);
  t.send(100000);
  EXPECT_TRUE(t.three_dup_acks());
  t.send(70000);           // sent during recovery, still out after the full ACK
  t.ack(100000);           // full ACK
  return t;
}
}  // namespace

TEST(Cubic, ConstantsFromTheRfc) {
  EXPECT_DOUBLE_EQ(kCubicC, 0.4);
  EXPECT_DOUBLE_EQ(kCubicBeta, 0.7);
  EXPECT_NEAR(kCubicAlpha, 0.529411765, 1e-9);  // 3 * 0.3 / 1.7
}

TEST(Cubic, KAndWindowFunctionMatchEquations1And2) {
  // K = cbrt((W_max - cwnd_epoch) / C) = cbrt((100 - 70) / 0.4) = cbrt(75) = 4.21716 s
  const double k = cubic_k(100, 70);
  EXPECT_NEAR(k, 4.217163, 1e-6);
  EXPECT_NEAR(cubic_k(10, 7), 1.957434, 1e-6);  // cbrt(3 / 0.4) = cbrt(7.5)
  EXPECT_EQ(cubic_k(70, 80), 0.0);               // epoch above W_max: K = 0
  // W(t) = 0.4 (t - K)^3 + 100
  EXPECT_NEAR(cubic_window(0, k, 100), 70.0, 1e-9);       // starts at cwnd_epoch
  EXPECT_NEAR(cubic_window(1, k, 100), 86.680764, 1e-6);  // 0.4 * (-3.21716)^3 + 100 = 100 - 13.31924
  EXPECT_NEAR(cubic_window(2, k, 100), 95.640336, 1e-6);  // 0.4 * (-2.21716)^3 + 100 = 100 - 4.35966
  EXPECT_NEAR(cubic_window(k, k, 100), 100.0, 1e-9);      // plateau at W_max
  EXPECT_NEAR(cubic_window(6, k, 100), 102.266703, 1e-6);  // 0.4 * 1.78284^3 + 100: convex, probing
}

TEST(Cubic, LossUsesBetaPointSeven) {
  CcConfig c = config(100000);
  Trace t(kCubicOps, c);
  t.send(100000);
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_EQ(t.cc.ssthresh(), 70000u);  // flight_size 100000 * 0.7
  EXPECT_EQ(t.cc.cwnd(), 73000u);      // NewReno recovery: ssthresh + 3 * SMSS
  EXPECT_DOUBLE_EQ(cubic_state(t.cc).w_max, 100.0);       // cwnd before the cut
  EXPECT_DOUBLE_EQ(cubic_state(t.cc).cwnd_prior, 100.0);
  t.send(70000);
  EXPECT_EQ(t.ack(100000), AckOutcome::kRecoveryExit);
  EXPECT_EQ(t.cc.cwnd(), 70000u);  // min(ssthresh 70000, FlightSize 70000 + 1000)
}

TEST(Cubic, CongestionAvoidanceFollowsWCubicOfTPlusRtt) {
  Trace t = after_first_loss();
  t.srtt_us = 100'000;  // RTT 0.1 s
  const uint64_t epoch = t.now_us;
  t.ack(kMss);
  // Epoch starts: cwnd_epoch = 70, K = 4.21716, W_est = 70.
  EXPECT_NEAR(cubic_state(t.cc).k_s, 4.217163, 1e-6);
  // First ACK: W_est = 70 + 0.52941 * 1 / 70 = 70.007563 > W_cubic(0) = 70, so the
  // Reno-friendly rule sets cwnd = W_est = 70.007563 segments.
  EXPECT_EQ(t.cc.cwnd(), 70007u);

  t.now_us = epoch + 2'000'000;  // t = 2 s
  t.ack(kMss);
  // W_est = 70.007563 + 0.52941 / 70.007563 = 70.015125 < W_cubic(2) = 95.64: cubic region.
  // target = W_cubic(2.1) = 0.4 * (2.1 - 4.21716)^3 + 100 = 96.204027 (inside [cwnd, 1.5 cwnd]);
  // cwnd += (96.204027 - 70.007563) / 70.007563 * 1 segment = 0.374195 -> 70.381758 segments.
  EXPECT_EQ(t.cc.cwnd(), 70381u);

  t.now_us = epoch + 20'000'000;  // t = 20 s, far in the convex region
  t.ack(kMss);
  // W_cubic(20.1) = 1702.7 > 1.5 * cwnd = 105.57, so target = 1.5 cwnd and the
  // increase is 0.5 segment per segment acked: 70.381758 + 0.5 = 70.881758.
  EXPECT_EQ(t.cc.cwnd(), 70881u);
}

TEST(Cubic, RenoFriendlyRegionRulesAtSmallWindowAndShortRtt) {
  // W_max = 10 segments, RTT 1 ms: K = cbrt(7.5) = 1.957 s, so W_cubic stays near
  // 7 for the first tens of ms (W_cubic(0.021) = 7.03). Reno would add alpha = 0.529
  // segment per RTT until W_est reaches cwnd_prior = 10, then 1 segment per RTT.
  Trace t(kCubicOps, config(10000));
  t.srtt_us = 1000;
  t.send(10000);
  EXPECT_TRUE(t.three_dup_acks());
  t.send(7000);
  t.ack(10000);
  ASSERT_EQ(t.cc.cwnd(), 7000u);  // ssthresh = 10000 * 0.7
  auto round = [&] {              // one RTT: ACK each whole segment of cwnd
    t.send_to_cwnd();
    t.ack_segments(static_cast<int>(t.cc.cwnd() / kMss));
    t.now_us += 1000;
  };
  for (int i = 0; i < 6; ++i) round();
  // By hand: 7 + 6 * 0.529 = 10.18 segments at most (each round acks floor(cwnd) of
  // cwnd segments, a little less). Pure CUBIC would be at W_cubic(0.007) = 7.03.
  EXPECT_GE(t.cc.cwnd(), 9500u);
  EXPECT_LE(t.cc.cwnd(), 10180u);
  for (int i = 0; i < 4; ++i) round();  // W_est has passed cwnd_prior = 10: alpha = 1
  const uint32_t before = t.cc.cwnd();
  for (int i = 0; i < 10; ++i) round();
  // Reno's 1 segment per RTT (floor(cwnd) / cwnd of it per round): 900..1000 bytes per RTT.
  const uint32_t per_rtt = (t.cc.cwnd() - before) / 10;
  EXPECT_GE(per_rtt, 900u);
  EXPECT_LE(per_rtt, 1000u);
}

TEST(Cubic, FastConvergenceLowersWMax) {
  // Second loss right after the first, at cwnd = 70 < W_max = 100.
  Trace t = after_first_loss(true);
  ASSERT_EQ(t.cc.cwnd(), 70000u);
  t.snd_nxt = t.snd_una + 70000;  // flight 70000
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_NEAR(cubic_state(t.cc).w_max, 59.5, 1e-9);  // 70 * (1 + 0.7) / 2
  EXPECT_EQ(t.cc.ssthresh(), 49000u);                // 70000 * 0.7
  t.send(49000);
  t.ack(70000);  // full ACK: cwnd = ssthresh = 49000
  t.ack(kMss);   // epoch: K = cbrt((59.5 - 49) / 0.4) = cbrt(26.25) = 2.97196 s
  EXPECT_NEAR(cubic_state(t.cc).k_s, 2.971961, 1e-6);

  Trace u = after_first_loss(false);
  u.snd_nxt = u.snd_una + 70000;
  EXPECT_TRUE(u.three_dup_acks());
  EXPECT_DOUBLE_EQ(cubic_state(u.cc).w_max, 70.0);  // without fast convergence: cwnd
  u.send(49000);
  u.ack(70000);
  u.ack(kMss);  // K = cbrt((70 - 49) / 0.4) = cbrt(52.5) = 3.74444 s
  EXPECT_NEAR(cubic_state(u.cc).k_s, 3.744436, 1e-6);
}

TEST(Cubic, EcnEchoCutsByBetaWithOneSegmentFloor) {
  Trace t(kCubicOps, config(100000));
  t.send(100000);
  EXPECT_TRUE(t.ecn());
  EXPECT_EQ(t.cc.ssthresh(), 70000u);  // 100000 * 0.7
  EXPECT_EQ(t.cc.cwnd(), 70000u);      // no recovery inflation on ECE
  EXPECT_FALSE(t.cc.in_recovery());

  Trace s(kCubicOps, config(2000));
  s.send(1000);
  EXPECT_TRUE(s.ecn());
  EXPECT_EQ(s.cc.cwnd(), 1000u);      // max(1000 * 0.7, 1 MSS): ECE may go down to 1 MSS
  EXPECT_EQ(s.cc.ssthresh(), 2000u);  // ssthresh at least 2 MSS
}

TEST(Cubic, TimeoutRestartsWithKZeroAndWMaxAtEpoch) {
  Trace t = after_first_loss();  // W_max = 100, cwnd 70000, flight 70000
  t.timeout();
  EXPECT_EQ(t.cc.ssthresh(), 49000u);  // flight 70000 * 0.7
  EXPECT_EQ(t.cc.cwnd(), 1000u);       // Reno's loss window
  while (t.cc.in_slow_start()) {
    t.send_to_cwnd();
    t.ack(kMss);
  }
  ASSERT_EQ(t.cc.cwnd(), 49000u);  // slow start stops at ssthresh
  const uint64_t epoch = t.now_us;
  t.ack(kMss);
  // Sec 4.8: first CA stage after an RTO: K = 0 and W_max = cwnd_epoch = 49, not the
  // old W_max of 100 (which would give K = cbrt(51 / 0.4) = 5.03 s).
  EXPECT_EQ(cubic_state(t.cc).k_s, 0.0);
  EXPECT_DOUBLE_EQ(cubic_state(t.cc).w_max, 49.0);
  t.now_us = epoch + 1'000'000;
  t.srtt_us = 0;
  const double before = t.cc.cwnd() / 1000.0;
  t.ack(kMss);
  // W_cubic(1) = 0.4 * 1^3 + 49 = 49.4 (W_est is ~49.02, lower): cwnd += (49.4 - w) / w.
  EXPECT_NEAR(t.cc.cwnd() / 1000.0, before + (49.4 - before) / before, 0.001);
}
