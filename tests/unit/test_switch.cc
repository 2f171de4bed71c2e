// Packet-level tests: crafted frames through the real PMD thread, stage
// pipeline, L2 decision and egress fix-ups, using in-memory ports.
#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cc/net_headers.h"
#include "tests/common/eal_env.h"
#include "tests/common/mem_port.h"
#include "vhost/vhost_port.h"
#include "tests/common/pkt_builder.h"
#include "vswitch/commands.h"
#include "vswitch/control.h"
#include "vswitch/ctl_client.h"
#include "vswitch/switch.h"

using namespace vsw;
using namespace vsw::test;

namespace {

SwitchConfig base_config() {
  SwitchConfig c;
  c.pmd_lcores = {1};
  c.mbufs = 8192;
  c.dp.idle_sleep_max_us = 50;
  c.stage_order = {"noop"};
  c.stages_enabled = {"noop"};
  c.stage_config["noop"] = nlohmann::json::object();
  return c;
}

class SwitchTest : public ::testing::Test {
 protected:
  void start(SwitchConfig c = base_config()) {
    sw_ = std::make_unique<Switch>(c);
    std::string err;
    ASSERT_TRUE(sw_->start(err)) << err;
  }
  MemPort* add(const std::string& name, uint64_t caps = 0, VlanConfig v = {}) {
    auto p = std::make_unique<MemPort>(name, sw_->datapath().pool, caps);
    MemPort* raw = p.get();
    PortSpec s;
    s.name = name;
    s.type = "mem";
    s.vlan = v;
    sw_->add_port_object(std::move(p), s);
    return raw;
  }
  uint64_t stat(const std::string& port, const char* key) { return sw_->port_stats(port)[0][key].get<uint64_t>(); }
  uint64_t pmd_stat(const char* key) { return sw_->pmd_stats_show()[0][key].get<uint64_t>(); }
  void TearDown() override {
    if (sw_) sw_->shutdown();
  }
  std::unique_ptr<Switch> sw_;
};

TEST_F(SwitchTest, FloodsUnknownThenForwardsLearned) {
  start();
  MemPort* a = add("a");
  MemPort* b = add("b");
  MemPort* c = add("c");
  FrameBuilder ab(mac(2), mac(1)), ba(mac(1), mac(2));
  a->inject(ab.tcp4({}));  // dst unknown: flooded to b and c
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1 && c->tx_count() == 1; }));
  b->inject(ba.tcp4({}));  // dst learned from the first frame: only to a
  ASSERT_TRUE(wait_for([&] { return a->tx_count() == 1; }));
  a->inject(ab.tcp4({}));  // now both learned
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(c->tx_count(), 1u);
  EXPECT_EQ(pmd_stat("fdb_learned"), 2u);
  auto fdb = sw_->fdb_show();
  EXPECT_EQ(fdb.size(), 2u);
  EXPECT_EQ(stat("a", "rx_packets"), 2u);
  EXPECT_EQ(stat("b", "tx_packets"), 2u);
}

TEST_F(SwitchTest, BroadcastAndSamePortDrop) {
  start();
  MemPort* a = add("a");
  MemPort* b = add("b");
  FrameBuilder bc(kBroadcast, mac(1));
  a->inject(bc.raw(net::kEtherArp, std::vector<uint8_t>(28, 0)));
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1; }));
  EXPECT_EQ(a->tx_count(), 0u);  // never back out of the ingress port
  // A frame to a MAC learned on its own ingress port is dropped and counted.
  FrameBuilder self(mac(1), mac(3));
  a->inject(self.tcp4({}));
  ASSERT_TRUE(wait_for([&] { return pmd_stat("drop_same_port") == 1; }));
}

TEST_F(SwitchTest, VlanAccessAndTrunk) {
  start();
  VlanConfig acc10{VlanMode::kAccess, 10, {}}, acc20{VlanMode::kAccess, 20, {}}, trunk{VlanMode::kTrunk, 0, {}};
  trunk.trunks.set(10);
  MemPort* a10 = add("a10", 0, acc10);
  MemPort* b10 = add("b10", 0, acc10);
  MemPort* c20 = add("c20", 0, acc20);
  MemPort* t = add("trunk", 0, trunk);
  FrameBuilder bc(kBroadcast, mac(1));
  a10->inject(bc.udp4(1, 2, 3, 4, 10));
  ASSERT_TRUE(wait_for([&] { return b10->tx_count() == 1 && t->tx_count() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(c20->tx_count(), 0u);  // other VLAN isolated
  auto tf = t->take();
  ASSERT_EQ(tf.size(), 1u);
  ASSERT_GE(tf[0].bytes.size(), 18u);
  EXPECT_EQ(tf[0].bytes[12], 0x81);  // tagged on the trunk
  EXPECT_EQ(tf[0].bytes[15], 10);
  auto bf = b10->take();
  EXPECT_EQ(bf[0].bytes[12], 0x08);  // untagged on the access port
  // Tagged frame from the trunk for VLAN 10 reaches the access port untagged.
  FrameBuilder tagged(kBroadcast, mac(9));
  t->inject(tagged.vlan(10).udp4(1, 2, 3, 4, 10));
  ASSERT_TRUE(wait_for([&] { return b10->tx_count() == 1 && a10->tx_count() == 1; }));
  EXPECT_EQ(b10->take()[0].bytes[12], 0x08);
  // Not-allowed VLAN on the trunk, and a tagged frame on an access port: dropped, counted.
  FrameBuilder t30(kBroadcast, mac(9));
  t->inject(t30.vlan(30).udp4(1, 2, 3, 4, 10));
  a10->inject(FrameBuilder(kBroadcast, mac(1)).vlan(10).udp4(1, 2, 3, 4, 10));
  ASSERT_TRUE(wait_for([&] { return stat("trunk", "rx_vlan_drop") == 1 && stat("a10", "rx_vlan_drop") == 1; }));
  EXPECT_EQ(c20->tx_count(), 0u);
}

TEST_F(SwitchTest, MalformedIsCountedAndForwardedByDefault) {
  SwitchConfig c = base_config();
  c.dp.parse_full = true;  // validate L3/L4 even with no stage enabled
  start(c);
  MemPort* a = add("a");
  MemPort* b = add("b");
  auto f = FrameBuilder(mac(2), mac(1)).tcp4({});
  f[14] = 0x43;  // IHL 3
  a->inject(f);
  a->inject(std::vector<uint8_t>(8, 0xaa));  // runt
  ASSERT_TRUE(wait_for([&] { return stat("a", "rx_malformed") == 2; }));
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1; }));  // the bad-IHL frame is still switched
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(b->tx_count(), 1u);                          // the runt is not: no MACs to switch on
  EXPECT_EQ(pmd_stat("drop_malformed"), 1u);
  auto perr = sw_->pmd_stats_show()[0]["parse_errors"];
  EXPECT_EQ(perr["ipv4_bad_ihl"].get<int>(), 1);
  EXPECT_EQ(perr["runt"].get<int>(), 1);
}

TEST_F(SwitchTest, MalformedDroppedByPolicy) {
  SwitchConfig c = base_config();
  c.dp.drop_malformed = true;
  start(c);
  MemPort* a = add("a");
  MemPort* b = add("b");
  auto f = FrameBuilder(mac(2), mac(1)).tcp4({});
  f[14 + 20 + 12] = 0x10;  // TCP data offset 4 bytes
  a->inject(f);
  a->inject(FrameBuilder(mac(2), mac(1)).tcp4({}));
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1; }));
  EXPECT_EQ(pmd_stat("drop_malformed"), 1u);
}

TEST_F(SwitchTest, GuestOffloadMetadataIsValidated) {
  start();
  MemPort* a = add("a");
  MemPort* b = add("b");
  // TSO requested on a UDP packet: inconsistent, dropped and counted.
  a->inject(FrameBuilder(mac(2), mac(1)).udp4(1, 2, 3, 4, 2000), RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 1000);
  // TSO with segment size 0.
  test::TcpSpec t;
  t.payload = 3000;
  a->inject(FrameBuilder(mac(2), mac(1)).tcp4(t), RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 0);
  ASSERT_TRUE(wait_for([&] { return stat("a", "rx_bad_offload") == 2; }));
  EXPECT_EQ(b->tx_count(), 0u);
}

// A guest's partial checksum (pseudo-header only) must be completed in
// software for an egress without checksum offload.
TEST_F(SwitchTest, SoftwareChecksumForEgressWithoutOffload) {
  start();
  MemPort* a = add("a");
  MemPort* b = add("b", 0);
  test::TcpSpec t;
  t.payload = 500;
  auto f = FrameBuilder(mac(2), mac(1)).tcp4(t);
  f[14 + 20 + 16] = 0x12;  // corrupt the TCP checksum: the switch recomputes it
  a->inject(f, RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4);
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1; }));
  auto out = b->take();
  EXPECT_TRUE(FrameBuilder::checksums_ok(out[0].bytes));
  EXPECT_EQ(stat("b", "tx_sw_csum"), 1u);
  // An egress with the offload gets the request passed through untouched.
  MemPort* c = add("c", RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
  a->inject(FrameBuilder(mac(3), mac(1)).tcp4(t), RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4);
  ASSERT_TRUE(wait_for([&] { return c->tx_count() == 1; }));
  EXPECT_TRUE(c->take()[0].ol_flags & RTE_MBUF_F_TX_TCP_CKSUM);
}

TEST_F(SwitchTest, SoftwareSegmentationForEgressWithoutTso) {
  start();
  MemPort* a = add("a");
  MemPort* b = add("b", 0);
  MemPort* c = add("c", RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
  test::TcpSpec t;
  t.payload = 10000;
  t.seq = 0xfffff000;  // segments wrap the sequence space
  // Teach the switch where b and c live.
  b->inject(FrameBuilder(mac(1), mac(2)).udp4(1, 2, 3, 4, 1));
  c->inject(FrameBuilder(mac(1), mac(3)).udp4(1, 2, 3, 4, 1));
  ASSERT_TRUE(wait_for([&] { return a->tx_count() >= 2 && b->tx_count() == 1 && c->tx_count() == 1; }));
  b->take();  // the learning frames flooded to each other
  c->take();
  a->inject(FrameBuilder(mac(2), mac(1)).tcp4(t), RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4,
            1448);
  a->inject(FrameBuilder(mac(3), mac(1)).tcp4(t), RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4,
            1448);
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 7 && c->tx_count() == 1; }))
      << "b=" << b->tx_count() << " c=" << c->tx_count() << " " << sw_->port_stats("").dump();
  auto segs = b->take();
  uint32_t total = 0, expect_seq = t.seq;
  for (const auto& s : segs) {
    EXPECT_TRUE(FrameBuilder::checksums_ok(s.bytes));
    EXPECT_LE(s.bytes.size(), 14u + 40 + 1448);
    const auto* th = reinterpret_cast<const net::TcpHdr*>(s.bytes.data() + 34);
    EXPECT_EQ(th->seq.get(), expect_seq);
    uint32_t pl = static_cast<uint32_t>(s.bytes.size()) - 54;
    expect_seq += pl;
    total += pl;
  }
  EXPECT_EQ(total, 10000u);
  EXPECT_EQ(stat("b", "tx_sw_gso"), 1u);
  auto big = c->take();
  EXPECT_TRUE(big[0].ol_flags & RTE_MBUF_F_TX_TCP_SEG);  // TSO-capable egress: passed whole
  EXPECT_EQ(big[0].tso_segsz, 1448);
}

TEST_F(SwitchTest, StageDropsAreCountedAndStagesToggle) {
  SwitchConfig c = base_config();
  c.stage_config["noop"] = {{"drop_ttl1", true}};
  start(c);
  MemPort* a = add("a");
  MemPort* b = add("b");
  test::TcpSpec t;
  t.ttl = 1;
  a->inject(FrameBuilder(mac(2), mac(1)).tcp4(t));
  a->inject(FrameBuilder(mac(2), mac(1)).tcp4({}));
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1; }));
  auto st = sw_->stage_list()[0];
  EXPECT_EQ(st["counters"]["dropped_ttl1"].get<int>(), 1);
  EXPECT_EQ(st["counters"]["seen"].get<int>(), 2);
  EXPECT_EQ(pmd_stat("drop_stage"), 1u);
  sw_->stage_enable("noop", false);
  a->inject(FrameBuilder(mac(2), mac(1)).tcp4(t));
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 2; }));  // disabled: TTL 1 passes
  EXPECT_THROW(sw_->stage_enable("nosuch", true), std::runtime_error);
}

// A stage learns exactly which of its packets the egress took: the device
// takes a prefix of each burst, the rest is reported as not sent.
TEST_F(SwitchTest, TransmitNotificationReportsAcceptedPrefix) {
  SwitchConfig c = base_config();
  c.stage_config["noop"] = {{"notify_tx", true}};
  start(c);
  MemPort* a = add("a");
  MemPort* b = add("b");
  b->inject(FrameBuilder(mac(1), mac(2)).udp4(1, 2, 3, 4, 1));
  ASSERT_TRUE(wait_for([&] { return a->tx_count() == 1; }));
  b->set_accept_limit(3);
  // Ten frames in one rx burst reach b in one tx burst: 3 taken, 7 refused.
  a->inject_burst(std::vector<std::vector<uint8_t>>(10, FrameBuilder(mac(2), mac(1)).udp4(1, 2, 3, 4, 10)));
  ASSERT_TRUE(wait_for([&] { return sw_->stage_list()[0]["counters"]["tx_failed"].get<int>() == 7; }));
  auto ctr = sw_->stage_list()[0]["counters"];
  EXPECT_EQ(ctr["tx_confirmed"].get<int>(), 1 + 3);  // the learning frame to a, plus 3
  EXPECT_EQ(b->tx_count(), 3u);
}

// The control thread can run code on the PMD between iterations.
TEST_F(SwitchTest, CallRunsOnThePmdThread) {
  start();
  add("a");
  std::thread::id pmd_tid;
  ASSERT_TRUE(sw_->datapath().pmds[0]->call([&](Pmd&) { pmd_tid = std::this_thread::get_id(); }));
  EXPECT_NE(pmd_tid, std::this_thread::get_id());
  EXPECT_NE(pmd_tid, std::thread::id());
}

TEST_F(SwitchTest, AddAndRemovePortsUnderTraffic) {
  start();
  MemPort* a = add("a");
  MemPort* b = add("b");
  b->inject(FrameBuilder(mac(1), mac(2)).udp4(1, 2, 3, 4, 1));
  ASSERT_TRUE(wait_for([&] { return a->tx_count() == 1; }));
  // Both MACs learned before the temporary ports appear, so nothing is flooded to b.
  a->inject(FrameBuilder(mac(2), mac(1)).udp4(1, 2, 3, 4, 1));
  ASSERT_TRUE(wait_for([&] { return b->tx_count() == 1; }));
  b->take();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread traffic([&] {
    auto f = FrameBuilder(mac(2), mac(1)).udp4(1, 2, 3, 4, 64);
    while (!stop.load()) {
      a->inject(f);
      sent.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  for (int i = 0; i < 20; ++i) {
    std::string n = "tmp" + std::to_string(i);
    MemPort* t = add(n);
    t->inject(FrameBuilder(mac(1), mac(static_cast<uint8_t>(50 + i))).udp4(1, 2, 3, 4, 1));
    ASSERT_TRUE(wait_for([&] { return a->tx_count() >= 1; }));
    sw_->del_port(n);
  }
  stop.store(true);
  traffic.join();
  ASSERT_TRUE(wait_for([&] { return b->tx_count() >= sent.load(); }));
  EXPECT_EQ(b->tx_count(), sent.load());  // not one packet of the a->b flow lost
  EXPECT_EQ(sw_->show()["ports"].size(), 2u);
}

TEST_F(SwitchTest, ControlCommands) {
  start();
  add("a");
  auto r = run_command(*sw_, "port-stats", {{"argv", {"a"}}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["result"][0]["name"], "a");
  r = run_command(*sw_, "port-stats", {{"argv", {"nosuch"}}});
  EXPECT_FALSE(r["ok"].get<bool>());
  r = run_command(*sw_, "bogus", nlohmann::json::object());
  EXPECT_FALSE(r["ok"].get<bool>());
  r = run_command(*sw_, "add-port", {{"argv", {"x"}}, {"type", "dpdk"}, {"devargs", "net_null_vswut0"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  r = run_command(*sw_, "pmd-rxq-show", nlohmann::json::object());
  ASSERT_TRUE(r["ok"].get<bool>());
  EXPECT_EQ(r["result"][0]["rxqs"].size(), 2u);
  r = run_command(*sw_, "pmd-rxq-rebalance", {{"argv", {"roundrobin"}}});
  EXPECT_TRUE(r["ok"].get<bool>());
  r = run_command(*sw_, "del-port", {{"argv", {"x"}}});
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  r = run_command(*sw_, "add-port", {{"argv", {"y"}}, {"type", "dpdk"}});
  EXPECT_FALSE(r["ok"].get<bool>());  // no devargs
  for (const char* cmd : {"show", "fdb-show", "pmd-stats-show", "stage-list", "help"})
    EXPECT_TRUE(run_command(*sw_, cmd, nlohmann::json::object())["ok"].get<bool>()) << cmd;
}

// net_tap arms its queue fds with F_SETSIG: every packet a tap port receives
// may signal any thread of the daemon. Control requests must survive a
// storm of such process-directed signals (a handler without SA_RESTART, as
// DPDK's), on the server and on the client side.
TEST_F(SwitchTest, ControlSocketSurvivesSignalStorm) {
  start();
  add("a");
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
  const int sig = SIGRTMIN + 5;
  struct sigaction old {};
  ASSERT_EQ(sigaction(sig, &sa, &old), 0);
  const std::string path = "/tmp/vsw-unit-ctl-" + std::to_string(getpid()) + ".sock";
  ControlServer srv(*sw_, path);
  std::string err;
  ASSERT_TRUE(srv.start(err)) << err;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread storm([&] {
    while (!stop.load()) {
      kill(getpid(), sig);
      sent.fetch_add(1);
      usleep(20);
    }
  });
  int ok = 0, failed = 0, n = 0;
  std::string last_error;
  for (int i = 0; (i < 300 || sent.load() < 2000) && i < 100000; ++i, ++n) {
    try {
      auto r = ctl_request(path, i % 2 ? "show" : "port-stats", nlohmann::json::object(), 5000);
      r.value("ok", false) ? ++ok : ++failed;
    } catch (const std::exception& e) {
      ++failed;
      last_error = e.what();
    }
  }
  stop.store(true);
  storm.join();
  srv.stop();
  sigaction(sig, &old, nullptr);
  EXPECT_GE(sent.load(), 2000u);
  EXPECT_EQ(failed, 0) << last_error;
  EXPECT_EQ(ok, n);
}

// The guest ring a PMD fills, and how many PMDs fill it: the snoop stage
// divides a shared ring's free descriptors by that count, tx_burst locks when > 1.
TEST(VhostQueueMap, EveryPmdCountsTheWritersOfItsQueue) {
  for (unsigned n_pmds = 1; n_pmds <= 6; ++n_pmds)
    for (uint16_t nq = 1; nq <= 4; ++nq)
      for (unsigned pmd = 0; pmd < n_pmds; ++pmd) {
        const uint16_t q = vhost_txq_of(pmd, nq);
        ASSERT_LT(q, nq);
        unsigned writers = 0;
        for (unsigned p = 0; p < n_pmds; ++p) writers += vhost_txq_of(p, nq) == q;
        EXPECT_EQ(vhost_txq_writers(q, nq, n_pmds), writers) << n_pmds << " PMDs, " << nq << " queues, PMD " << pmd;
      }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new EalEnv);
  return RUN_ALL_TESTS();
}
