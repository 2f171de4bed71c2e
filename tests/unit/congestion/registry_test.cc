// The registry, the state slot size, properties every algorithm shares, and
// no heap allocation on the per-ACK path.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <set>
#include <string>

#include "cc/congestion/cc_registry.h"
#include "cc/congestion/rtt_estimator.h"
#include "tests/unit/congestion/trace.h"

// Counts every heap allocation in this test binary.
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace vsw::congestion;
using vsw::congestion::test::config;
using vsw::congestion::test::kMss;
using vsw::congestion::test::Trace;

TEST(Registry, LooksUpEveryAlgorithmByName) {
  std::set<std::string> names;
  for (const CcOps* ops : cc_algorithms()) names.insert(ops->name);
  EXPECT_EQ(names, (std::set<std::string>{"reno", "newreno", "cubic", "dctcp"}));
  for (const char* name : {"reno", "newreno", "cubic", "dctcp"}) {
    const CcOps* ops = cc_lookup(name);
    ASSERT_NE(ops, nullptr) << name;
    EXPECT_STREQ(ops->name, name);
    CcState s;
    s.init(*ops, config());
    EXPECT_STREQ(s.name(), name);
  }
  EXPECT_EQ(cc_lookup("bbr"), nullptr);
  EXPECT_EQ(cc_lookup("CUBIC"), nullptr);  // names are exact
  EXPECT_EQ(cc_lookup(""), nullptr);
}

TEST(Registry, StateFitsTheFlowSlot) {
  EXPECT_LE(sizeof(CcState), 128u);
  EXPECT_TRUE(std::is_trivially_copyable_v<CcState>);
}

class EveryAlgorithm : public ::testing::TestWithParam<const char*> {
 protected:
  const CcOps& ops() { return *cc_lookup(GetParam()); }
};

TEST_P(EveryAlgorithm, StartsAtInitialWindowAndSlowStarts) {
  Trace t(ops(), config());
  EXPECT_EQ(t.cc.cwnd(), 10000u);
  EXPECT_TRUE(t.cc.in_slow_start());
  t.send_to_cwnd();
  t.ack_segments(10);
  EXPECT_EQ(t.cc.cwnd(), 20000u);  // all four use RFC 5681 slow start (no HyStart)
}

TEST_P(EveryAlgorithm, TimeoutGivesLossWindowAndSsthreshAtLeastTwoSegments) {
  Trace t(ops(), config());
  t.send(1000);
  t.timeout();
  EXPECT_EQ(t.cc.cwnd(), kMss);
  EXPECT_EQ(t.cc.ssthresh(), 2 * kMss);  // flight 1000: every formula hits the 2 SMSS floor
  EXPECT_FALSE(t.cc.in_recovery());
}

TEST_P(EveryAlgorithm, DupAcksAloneNeverGrowTheWindow) {
  Trace t(ops(), config());
  t.send_to_cwnd();
  for (int i = 0; i < 10; ++i) t.dup_ack();
  EXPECT_EQ(t.cc.cwnd(), 10000u);
}

TEST_P(EveryAlgorithm, NoHeapAllocationPerAck) {
  Trace t(ops(), config());
  RttEstimator rtt;
  const long before = g_allocations.load();
  for (int i = 0; i < 20000; ++i) {
    t.now_us += 50;
    t.send_to_cwnd();
    rtt.on_sample(100 + i % 7);
    t.srtt_us = rtt.srtt_us();
    t.ack(kMss, i % 50 == 0);
    if (i % 50 == 0) t.ecn();
    if (i % 997 == 0) t.three_dup_acks();
    if (i % 4001 == 0) {
      t.timeout();
      rtt.on_timeout();
    }
  }
  EXPECT_EQ(g_allocations.load(), before);
}

INSTANTIATE_TEST_SUITE_P(Congestion, EveryAlgorithm, ::testing::Values("reno", "newreno", "cubic", "dctcp"));
