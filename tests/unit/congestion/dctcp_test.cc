// DCTCP (RFC 8257): alpha as the EWMA (g = 1/16) of the marked fraction per
// observation window, the alpha/2 cut once per window on ECE, Reno on loss.
// RFC 8257 sec 3.3: DCTCP.Alpha is initialised to 1 and WindowEnd to SND.UNA,
// so the first ACK closes the first observation window. MSS 1000.
#include <gtest/gtest.h>

#include <cmath>

#include "cc/congestion/dctcp.h"
#include "cc/congestion/reno.h"
#include "tests/unit/congestion/trace.h"

using namespace vsw::congestion;
using vsw::congestion::test::config;
using vsw::congestion::test::kMss;
using vsw::congestion::test::Trace;

namespace {
double alpha(const Trace& t) { return dctcp_state(t.cc).alpha; }

// One observation window per ACK: send a window, ACK all of it with the given
// marked bytes. The ACK passes WindowEnd (the previous snd_nxt) and closes it.
void window(Trace& t, uint32_t marked) {
  t.send(10000);
  t.ack_marked(10000, marked > 0, marked);
}
}  // namespace

TEST(Dctcp, AlphaStartsAtOnePerRfc) {
  CcState s;
  s.init(kDctcpOps, config());
  EXPECT_EQ(dctcp_state(s).alpha, 1.0);
}

TEST(Dctcp, AlphaConvergesToOneUnderFullMarking) {
  CcConfig c = config();
  c.dctcp_initial_alpha = 0;  // start from 0 to see 1 - (15/16)^n
  Trace t(kDctcpOps, c);
  window(t, 10000);
  EXPECT_DOUBLE_EQ(alpha(t), 0.0625);  // 0 * 15/16 + 1/16 * 1 = 1 - (15/16)^1
  window(t, 10000);
  EXPECT_DOUBLE_EQ(alpha(t), 0.12109375);  // 0.0625 * 15/16 + 1/16 = 1 - (15/16)^2
  window(t, 10000);
  EXPECT_DOUBLE_EQ(alpha(t), 0.176025390625);  // 1 - (15/16)^3
  for (int n = 4; n <= 50; ++n) window(t, 10000);
  EXPECT_NEAR(alpha(t), 0.960321, 1e-6);  // 1 - (15/16)^50 = 1 - 0.039679
}

TEST(Dctcp, AlphaDecaysWithoutMarks) {
  Trace t(kDctcpOps, config());  // alpha0 = 1
  window(t, 0);
  EXPECT_DOUBLE_EQ(alpha(t), 0.9375);  // 1 * 15/16 + 0
  window(t, 0);
  EXPECT_DOUBLE_EQ(alpha(t), 0.87890625);  // (15/16)^2
}

TEST(Dctcp, AlphaTracksAPartialMarkedFraction) {
  Trace t(kDctcpOps, config());  // alpha0 = 1
  window(t, 5000);               // F = 5000 / 10000 = 0.5 (AccECN-style byte count)
  EXPECT_DOUBLE_EQ(alpha(t), 0.96875);  // 0.5 + 0.5 * (15/16)^1
  window(t, 5000);
  EXPECT_DOUBLE_EQ(alpha(t), 0.939453125);  // 0.5 + 0.5 * (15/16)^2
  for (int n = 3; n <= 200; ++n) window(t, 5000);
  EXPECT_NEAR(alpha(t), 0.5, 1e-5);  // 0.5 + 0.5 * (15/16)^200 = 0.5 + 1.2e-6
}

TEST(Dctcp, WindowClosesOnlyWhenAckPassesWindowEnd) {
  Trace t(kDctcpOps, config());
  t.send(20000);
  t.ack(10000);  // first ACK closes the first window (F = 0): alpha = 0.9375, WindowEnd = 20000
  ASSERT_DOUBLE_EQ(alpha(t), 0.9375);
  t.ack_marked(5000, true, 5000);  // ack 15000 <= WindowEnd: accumulate only
  EXPECT_DOUBLE_EQ(alpha(t), 0.9375);
  t.ack(5000);  // ack 20000 <= WindowEnd: still accumulating
  EXPECT_DOUBLE_EQ(alpha(t), 0.9375);
  t.send(1000);
  t.ack(1000);  // ack 21000 > 20000: F = 5000 / 11000
  EXPECT_DOUBLE_EQ(alpha(t), 0.9375 * 15 / 16 + (5000.0 / 11000) / 16);  // 0.878906 + 0.028409
}

TEST(Dctcp, CutsByHalfAlphaOncePerWindow) {
  Trace t(kDctcpOps, config(20000));
  t.send(20000);  // snd_nxt 20000
  t.ack(1000, /*ece=*/true);
  // Window 1 closes at this ACK: F = 1, alpha = 1 * 15/16 + 1/16 = 1; WindowEnd = 20000.
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // an ECE ACK does not grow cwnd
  EXPECT_TRUE(t.ecn());
  EXPECT_EQ(t.cc.cwnd(), 10000u);  // 20000 * (1 - 1/2)
  EXPECT_EQ(t.cc.ssthresh(), 10000u);
  t.ack(1000, true);  // ack 2000: same window (cut covers data up to 19999)
  EXPECT_FALSE(t.ecn());
  EXPECT_EQ(t.cc.cwnd(), 10000u);
  t.ack_segments(18);  // to ack 20000: CA, 18000 bytes: +1000 after 10000 -> cwnd 11000
  EXPECT_EQ(t.cc.cwnd(), 11000u);
  t.send(11000);  // snd_nxt 31000
  t.ack(1000, true);
  // ack 21000 > WindowEnd 20000 closes window 2: acked 19000 + 1000, marked 1000 + 1000:
  // F = 2000 / 20000 = 0.1, alpha = 1 * 15/16 + 0.1 / 16 = 0.94375.
  EXPECT_DOUBLE_EQ(alpha(t), 0.94375);
  EXPECT_TRUE(t.ecn());
  EXPECT_EQ(t.cc.cwnd(), 5809u);  // 11000 * (1 - 0.94375 / 2) = 5809.375
}

TEST(Dctcp, NoMarksNoCutGrowsLikeReno) {
  Trace d(kDctcpOps, config());
  Trace r(kRenoOps, config());
  for (int i = 0; i < 60; ++i) {
    d.send_to_cwnd();
    r.send_to_cwnd();
    d.ack(kMss);
    r.ack(kMss);
    EXPECT_EQ(d.cc.cwnd(), r.cc.cwnd());
  }
  EXPECT_EQ(d.cc.cwnd(), 70000u);  // slow start: 10000 + 60 * 1000
  EXPECT_LT(alpha(d), 1.0);        // unmarked windows pulled alpha down
}

TEST(Dctcp, LossIsHandledAsReno) {
  CcConfig c = config();
  c.dctcp_initial_alpha = 0.2;  // a DCTCP-style cut would keep 90 %
  Trace t(kDctcpOps, c);
  t.send_to_cwnd();
  t.ack_segments(10);  // cwnd 20000
  t.send_to_cwnd();    // flight 20000
  EXPECT_TRUE(t.three_dup_acks());
  EXPECT_EQ(t.cc.ssthresh(), 10000u);  // max(20000 / 2, 2000), not 20000 * 0.9
  EXPECT_EQ(t.cc.cwnd(), 13000u);
  t.timeout();
  EXPECT_EQ(t.cc.cwnd(), 1000u);
}

TEST(Dctcp, CutNeverBelowTwoSegments) {
  Trace t(kDctcpOps, config(3000));
  t.send(3000);
  t.ack(1000, true);  // alpha stays 1
  EXPECT_TRUE(t.ecn());
  EXPECT_EQ(t.cc.cwnd(), 2000u);  // 3000 * 0.5 = 1500, floored at 2 * SMSS
}
