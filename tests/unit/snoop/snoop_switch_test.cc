// snoop through the real PMD thread: in-memory ports (tests/common/mem_port.h),
// the real pipeline, transmit notifications and emitted ACKs.
#include <gtest/gtest.h>

#include "cc/stages/snoop_stage.h"
#include "tests/common/eal_env.h"
#include "tests/common/mem_port.h"
#include "tests/common/pkt_builder.h"
#include "tests/unit/snoop/snoop_sim.h"
#include "vswitch/commands.h"
#include "vswitch/switch.h"

using namespace vsw;
using namespace vsw::test;

namespace {

constexpr uint32_t kIsnS = 0xfffffc00u;  // wraps during the test
constexpr uint32_t kIsnG = 777;

class SnoopSwitchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SwitchConfig c;
    c.pmd_lcores = {1};
    c.mbufs = 8192;
    c.dp.idle_sleep_max_us = 50;
    c.dp.flows.capacity = 1024;
    c.dp.flows.prefault = false;
    c.stage_order = {"snoop"};
    c.stages_enabled = {"snoop"};
    // Memory ports are not vhost-user: allow them, snoop toward "g" only.
    c.stage_config["snoop"] = {{"vhost_only", false}, {"ports", {"g"}}, {"buf_bytes", 65536}};
    sw_ = std::make_unique<Switch>(c);
    std::string err;
    ASSERT_TRUE(sw_->start(err)) << err;
    w_ = add("w");
    g_ = add("g");
  }
  void TearDown() override {
    if (sw_) sw_->shutdown();
  }
  MemPort* add(const std::string& name) {
    auto p = std::make_unique<MemPort>(name, sw_->datapath().pool, 0);
    MemPort* raw = p.get();
    PortSpec s;
    s.name = name;
    s.type = "mem";
    sw_->add_port_object(std::move(p), s);
    return raw;
  }
  uint64_t ctr(const char* name) {
    for (const auto& st : sw_->stage_list())
      if (st["name"] == "snoop") return st["counters"][name].get<uint64_t>();
    return 0;
  }
  void handshake() {
    TcpSpec syn = snoop_sender_spec();
    syn.seq = kIsnS;
    syn.flags = net::tcpflag::kSyn;
    syn.options = {2, 4, 0x05, 0xb4, 1, 3, 3, 0};  // MSS 1460, wscale 0
    w_->inject(tx_.tcp4(syn));
    ASSERT_TRUE(wait_for([&] { return g_->tx_count() == 1; }));
    TcpSpec sa = snoop_guest_spec();
    sa.seq = kIsnG;
    sa.ack = kIsnS + 1;
    sa.flags = net::tcpflag::kSyn | net::tcpflag::kAck;
    sa.window = 60000;
    sa.options = {2, 4, 0x05, 0xb4, 1, 3, 3, 0};
    g_->inject(rx_.tcp4(sa));
    ASSERT_TRUE(wait_for([&] { return w_->tx_count() == 1; }));
    TcpSpec a = snoop_sender_spec();
    a.seq = kIsnS + 1;
    a.ack = kIsnG + 1;
    w_->inject(tx_.tcp4(a));
    ASSERT_TRUE(wait_for([&] { return g_->tx_count() == 2; }));
    w_->take();
    g_->take();
  }
  std::vector<uint8_t> data(uint32_t seq, uint32_t len) {
    TcpSpec t = snoop_sender_spec();
    t.seq = seq;
    t.ack = kIsnG + 1;
    t.payload = len;
    t.flags = net::tcpflag::kAck | net::tcpflag::kPsh;
    return tx_.tcp4(t);
  }
  std::unique_ptr<Switch> sw_;
  MemPort *w_ = nullptr, *g_ = nullptr;
  FrameBuilder tx_{mac(2), mac(1)}, rx_{mac(1), mac(2)};
};

}  // namespace

// Five segments offered, the guest ring takes two: exactly two early ACKs,
// up to the end of the second segment, and nothing beyond.
TEST_F(SnoopSwitchTest, EarlyAckOnlyForWhatTheRingTook) {
  handshake();
  g_->set_accept_limit(2);
  std::vector<std::vector<uint8_t>> burst;
  for (int k = 0; k < 5; ++k) burst.push_back(data(kIsnS + 1 + k * 1000, 1000));
  w_->inject_burst(burst);
  ASSERT_TRUE(wait_for([&] { return w_->tx_count() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto acks = w_->take();
  ASSERT_EQ(acks.size(), 1u);  // one early ACK for the burst, up to what went in
  WirePkt a1 = parse_wire(acks[0].bytes);
  EXPECT_TRUE(a1.csum_ok);
  EXPECT_EQ(a1.ack, kIsnS + 1 + 2000);
  EXPECT_EQ(a1.seq, kIsnG + 1);
  EXPECT_EQ(a1.flags, net::tcpflag::kAck);
  EXPECT_LE(a1.ack + a1.win, kIsnS + 1 + 60000);  // never beyond the guest's window
  EXPECT_EQ(ctr("early_ack"), 1u);
  EXPECT_EQ(ctr("early_ack_bytes"), 2000u);
  EXPECT_EQ(ctr("tx_refused"), 3u);
  EXPECT_EQ(g_->take().size(), 2u);
  // The guest acknowledges the first segment only, covered by the early ACK.
  // Its window opens the right edge: it goes out once, as a window update at
  // our ACK point (never backwards); the same ACK again is dropped.
  TcpSpec ga = snoop_guest_spec();
  ga.seq = kIsnG + 1;
  ga.ack = kIsnS + 1 + 1000;
  ga.window = 60000;
  g_->inject(rx_.tcp4(ga));
  ASSERT_TRUE(wait_for([&] { return w_->tx_count() == 1; }));
  WirePkt wu = parse_wire(w_->take()[0].bytes);
  EXPECT_TRUE(wu.csum_ok);
  EXPECT_EQ(wu.ack, kIsnS + 1 + 2000);
  EXPECT_LE(wu.ack + wu.win, kIsnS + 1 + 1000 + 60000);
  g_->inject(rx_.tcp4(ga));
  ASSERT_TRUE(wait_for([&] { return ctr("guest_ack_drop_covered") == 1; }));
  EXPECT_EQ(w_->tx_count(), 0u);
  // Guest data with an old ACK number: passes, ACK raised to the early-ACK point.
  TcpSpec gd = snoop_guest_spec();
  gd.seq = kIsnG + 1;
  gd.ack = kIsnS + 1 + 1000;
  gd.payload = 10;
  gd.window = 60000;
  g_->inject(rx_.tcp4(gd));
  ASSERT_TRUE(wait_for([&] { return w_->tx_count() == 1; }));
  WirePkt p = parse_wire(w_->take()[0].bytes);
  EXPECT_TRUE(p.csum_ok);
  EXPECT_EQ(p.ack, kIsnS + 1 + 2000);
  EXPECT_LE(p.ack + p.win, kIsnS + 1 + 1000 + 60000);
  EXPECT_EQ(ctr("guest_ack_raised"), 2u);
}

// snoop-port off: no more early ACKs; the guest's ACKs still never go backwards.
TEST_F(SnoopSwitchTest, PortDisableStopsEarlyAcks) {
  handshake();
  w_->inject(data(kIsnS + 1, 1000));
  ASSERT_TRUE(wait_for([&] { return ctr("early_ack") == 1; }));
  ASSERT_TRUE(wait_for([&] { return w_->tx_count() == 1; }));
  w_->take();
  nlohmann::json args = {{"argv", {"g", "off"}}};
  auto r = run_command(*sw_, "snoop-port", args);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  w_->inject(data(kIsnS + 1001, 1000));
  ASSERT_TRUE(wait_for([&] { return g_->tx_count() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ctr("early_ack"), 1u);
  EXPECT_EQ(w_->tx_count(), 0u);
  // The guest's ACK for the second segment passes (it is new to the sender).
  TcpSpec ga = snoop_guest_spec();
  ga.seq = kIsnG + 1;
  ga.ack = kIsnS + 2001;
  ga.window = 60000;
  g_->inject(rx_.tcp4(ga));
  ASSERT_TRUE(wait_for([&] { return w_->tx_count() == 1; }));
  EXPECT_EQ(parse_wire(w_->take()[0].bytes).ack, kIsnS + 2001);
  auto show = run_command(*sw_, "snoop-show", {{"argv", nlohmann::json::array()}});
  ASSERT_TRUE(show["ok"].get<bool>());
  EXPECT_EQ(show["result"][0]["connections"].size(), 1u);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new EalEnv);
  return RUN_ALL_TESTS();
}
