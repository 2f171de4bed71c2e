// RFC 6298 estimator: first and later samples, G, min/max clamps, backoff.
#include <gtest/gtest.h>

#include "cc/congestion/rtt_estimator.h"

using vsw::congestion::RttConfig;
using vsw::congestion::RttEstimator;

namespace {
// Small RTOmin (as vCC wants) so the formula itself is visible.
RttConfig small_min(uint32_t granularity_us = 100) {
  RttConfig c;
  c.clock_granularity_us = granularity_us;
  c.rto_min_us = 1000;
  c.rto_max_us = 60'000'000;
  return c;
}
}  // namespace

TEST(RttEstimator, InitialRtoIsOneSecond) {
  RttEstimator e;
  EXPECT_FALSE(e.has_sample());
  EXPECT_EQ(e.rto_us(), 1'000'000u);  // sec 2.1
}

TEST(RttEstimator, FirstSample) {
  RttEstimator e(small_min());
  e.on_sample(100'000);
  EXPECT_TRUE(e.has_sample());
  EXPECT_EQ(e.srtt_us(), 100'000u);   // SRTT = R
  EXPECT_EQ(e.rttvar_us(), 50'000u);  // RTTVAR = R / 2
  EXPECT_EQ(e.rto_us(), 300'000u);    // SRTT + max(G = 100, 4 * 50000) = 100000 + 200000
}

TEST(RttEstimator, LaterSamples) {
  RttEstimator e(small_min());
  e.on_sample(100'000);
  e.on_sample(120'000);
  // RTTVAR = 3/4 * 50000 + 1/4 * |100000 - 120000| = 37500 + 5000 = 42500 (old SRTT)
  // SRTT = 7/8 * 100000 + 1/8 * 120000 = 87500 + 15000 = 102500
  EXPECT_EQ(e.rttvar_us(), 42'500u);
  EXPECT_EQ(e.srtt_us(), 102'500u);
  EXPECT_EQ(e.rto_us(), 272'500u);  // 102500 + 4 * 42500
  e.on_sample(80'000);
  // RTTVAR = 3/4 * 42500 + 1/4 * |102500 - 80000| = 31875 + 5625 = 37500
  // SRTT = 7/8 * 102500 + 1/8 * 80000 = 89687.5 + 10000 = 99687.5
  EXPECT_EQ(e.rttvar_us(), 37'500u);
  EXPECT_EQ(e.srtt_us(), 99'688u);  // 99687.5 rounded
  EXPECT_EQ(e.rto_us(), 249'688u);  // 99687.5 + 150000 = 249687.5, rounded up
}

TEST(RttEstimator, ClockGranularityBoundsTheVarianceTerm) {
  RttEstimator e(small_min(10'000));
  e.on_sample(1000);
  EXPECT_EQ(e.rto_us(), 11'000u);  // 1000 + max(G = 10000, 4 * 500 = 2000)
}

TEST(RttEstimator, RtoMinClamp) {
  RttEstimator standard;  // RTOmin 1 s (sec 2.4)
  standard.on_sample(100'000);
  EXPECT_EQ(standard.rto_us(), 1'000'000u);  // 300000 rounded up to 1 s

  RttConfig vcc = small_min();
  vcc.rto_min_us = 5000;  // a data-center RTOmin of 5 ms
  RttEstimator e(vcc);
  e.on_sample(200);
  EXPECT_EQ(e.rto_us(), 5000u);  // 200 + max(100, 400) = 600 -> 5000
}

TEST(RttEstimator, RtoMaxClamp) {
  RttEstimator e(small_min());
  e.on_sample(50'000'000);  // 50 s
  EXPECT_EQ(e.rto_us(), 60'000'000u);  // 50 s + 100 s -> 60 s
}

TEST(RttEstimator, BackoffDoublesUpToMaxAndNewSampleResets) {
  RttConfig c = small_min();
  c.rto_max_us = 2'000'000;
  RttEstimator e(c);
  e.on_sample(100'000);
  ASSERT_EQ(e.rto_us(), 300'000u);
  e.on_timeout();
  EXPECT_EQ(e.rto_us(), 600'000u);  // sec 5.5: RTO = RTO * 2
  e.on_timeout();
  EXPECT_EQ(e.rto_us(), 1'200'000u);
  e.on_timeout();
  EXPECT_EQ(e.rto_us(), 2'000'000u);  // 2.4 s capped at the 2 s maximum
  e.on_timeout();
  EXPECT_EQ(e.rto_us(), 2'000'000u);
  EXPECT_EQ(e.backoffs(), 4u);
  // Karn: the backed-off RTO stays until a valid sample, which recomputes it.
  e.on_sample(100'000);
  // RTTVAR = 3/4 * 50000 + 1/4 * 0 = 37500, SRTT = 100000
  EXPECT_EQ(e.rto_us(), 250'000u);  // 100000 + 4 * 37500
  EXPECT_EQ(e.backoffs(), 0u);
}

TEST(RttEstimator, BackoffBeforeAnySample) {
  RttEstimator e;
  e.on_timeout();
  EXPECT_EQ(e.rto_us(), 2'000'000u);  // initial 1 s doubled
  EXPECT_FALSE(e.has_sample());
}
