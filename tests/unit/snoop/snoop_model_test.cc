// snoop safety, model-based: thousands of randomized cases (in-order,
// reordered, duplicated, lost, window 0, ring full, partial bursts, guest ACKs
// and data, FIN, guest gone, port disabled, sequence wrap, mid-stream start)
// through the real SnoopStage against the reference model in snoop_sim.h.
// SNOOP_MODEL_CASES overrides the number of cases (default 3000).
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/common/eal_env.h"
#include "tests/unit/snoop/snoop_sim.h"

using namespace vsw;
using namespace vsw::test;

namespace {

rte_mempool* pool() {
  static rte_mempool* mp = pkt_pool_create("snoop_sim", 16383, 256, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return mp;
}

SimOptions options_for(uint64_t seed) {
  std::mt19937_64 r(seed * 7919 + 1);
  SimOptions o;
  o.ts = r() % 4 != 0;
  o.sack = r() % 3 != 0;
  o.midstream = r() % 5 == 0;
  o.guest_ws = static_cast<uint8_t>(r() % 10);
  o.mss = 200 + r() % 1300;
  // A quarter of the cases start right below 2^32: the transfer wraps.
  o.isn_s = r() % 4 == 0 ? uint32_t(0) - 1 - uint32_t(r() % 20000) : uint32_t(r());
  o.isn_g = uint32_t(r());
  o.buf_bytes = 4096 + r() % 200000;
  o.guest_rbuf = 2000 + r() % 120000;
  return o;
}

}  // namespace

TEST(SnoopModel, RandomizedSafety) {
  const char* env = std::getenv("SNOOP_MODEL_CASES");
  const unsigned cases = env ? unsigned(std::atoi(env)) : 3000;
  uint64_t early = 0, to_sender = 0, refused = 0, completed = 0;
  for (unsigned c = 0; c < cases; ++c) {
    SnoopSim sim(pool(), options_for(c), c);
    sim.set_total(20000 + uint32_t(c * 7919 % 150000));
    sim.handshake();
    sim.random_steps(150);
    const bool done = sim.drain(3000);
    ASSERT_TRUE(sim.fail.empty()) << "case " << c << ": " << sim.fail;
    EXPECT_TRUE(done) << "case " << c << " did not complete (stuck): " << sim.state();
    early += sim.early_acks_seen;
    to_sender += sim.packets_to_sender;
    refused += sim.ring_refused;
    completed += done;
  }
  // The property checks are only meaningful if the stage really acked early.
  EXPECT_GT(early, cases * 2ull);
  RecordProperty("cases", int(cases));
  printf("snoop model: %u cases, %llu completed, %llu early ACKs, %llu packets to the sender, %llu ring refusals\n",
         cases, (unsigned long long)completed, (unsigned long long)early, (unsigned long long)to_sender,
         (unsigned long long)refused);
}

// Directed: a burst the ring takes only partly is acknowledged only up to what went in.
TEST(SnoopModel, PartialBurstAcksPrefixOnly) {
  SimOptions o;
  o.ts = true;
  o.guest_ws = 2;
  SnoopSim sim(pool(), o, 1);
  sim.handshake();
  sim.guest_run(0, false);  // the guest announces its window
  auto& st = sim.stage();
  const uint64_t acks0 = st.counter(snoop::kEarlyAck);
  sim.send_new(1);
  ASSERT_EQ(st.counter(snoop::kEarlyAck), acks0 + 1);
  // Ring room for 2 of the next 5 segments.
  sim.ring_cap_ = unsigned(sim.ring_.size()) + 2;
  sim.send_new(5);
  EXPECT_TRUE(sim.fail.empty()) << sim.fail;
  EXPECT_EQ(st.counter(snoop::kEarlyAck), acks0 + 2);  // one coalesced ACK for the burst
  EXPECT_EQ(st.counter(snoop::kTxRefused), 3u);
  // The last early ACK ends exactly where the last segment the ring took ends.
  ASSERT_FALSE(sim.ring_.empty());
  WirePkt last = parse_wire(mbuf_bytes(sim.ring_.back()));
  EXPECT_EQ(sim.s_.max_ack, last.seq + last.len);
  EXPECT_EQ(sim.ring_.size(), 3u);
}

TEST(SnoopModel, WrapAndMidstream) {
  for (int mid = 0; mid < 2; ++mid) {
    SimOptions o;
    o.midstream = mid;
    o.isn_s = 0xffffff00u;
    SnoopSim sim(pool(), o, 2);
    sim.set_total(100000);
    sim.handshake();
    sim.guest_run(0, false);
    sim.random_steps(100);
    EXPECT_TRUE(sim.drain(3000));
    EXPECT_TRUE(sim.fail.empty()) << sim.fail;
    EXPECT_GT(sim.early_acks_seen, 0u);
  }
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new EalEnv);
  return RUN_ALL_TESTS();
}
