// Config parsing and rx queue assignment (pure control-plane logic).
#include <gtest/gtest.h>

#include "pmd/rxq_assign.h"
#include "vswitch/config.h"
#include "vswitch/eal_args.h"

using namespace vsw;

namespace {

TEST(Config, FullExample) {
  auto c = load_config_string(R"(
[dpdk]
file_prefix = "x"
memory_mb = 128
eal_args = ["--no-pci"]
[pmd]
lcores = [1, 2]
idle_sleep_max_us = 250
rxq_assign = "roundrobin"
[fdb]
max_entries = 1000
aging_s = 30
[stages]
order = ["noop"]
enabled = []
[stages.noop]
drop_ttl1 = true
[control]
socket = "/tmp/x.sock"
[[port]]
name = "vm1"
type = "vhost-user"
path = "/tmp/vm1.sock"
client = true
disable_features = "0x400ee7f8b"
queues = 2
vlan_mode = "access"
tag = 10
[[port]]
name = "up"
type = "dpdk"
devargs = "net_tap0,iface=t0"
vlan_mode = "trunk"
trunks = [10, 20]
)");
  EXPECT_EQ(c.file_prefix, "x");
  EXPECT_EQ(c.pmd_lcores.size(), 2u);
  EXPECT_EQ(c.dp.idle_sleep_max_us, 250u);
  EXPECT_EQ(c.fdb.max_entries, 1000u);
  EXPECT_TRUE(c.stages_enabled.empty());
  EXPECT_TRUE(c.stage_config["noop"].value("drop_ttl1", false));
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_TRUE(c.ports[0].client);
  EXPECT_EQ(c.ports[0].disable_features, 0x400ee7f8bULL);
  EXPECT_EQ(c.ports[0].vlan.mode, VlanMode::kAccess);
  EXPECT_EQ(c.ports[0].queues, 2);
  EXPECT_TRUE(c.ports[1].vlan.trunks.test(20));
  EXPECT_FALSE(c.ports[1].vlan.trunks.test(30));
  auto eal = build_eal_args(c, "vswitchd");
  EXPECT_NE(std::find(eal.begin(), eal.end(), "0,1,2"), eal.end());
  EXPECT_NE(std::find(eal.begin(), eal.end(), "--no-pci"), eal.end());
}

TEST(Config, ErrorsNameTheProblem) {
  auto expect_err = [](const char* toml, const char* needle) {
    try {
      load_config_string(toml);
      ADD_FAILURE() << "no error for: " << toml;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_err("[[port]]\nname='a'\ntype='vhost-user'\n", "needs a path");
  expect_err("[[port]]\nname='a'\ntype='bogus'\n", "type must be");
  expect_err("[[port]]\nname='a'\ntype='dpdk'\ndevargs='x'\ncolour='red'\n", "unknown port setting");
  expect_err("[stages]\norder=['nope']\n", "unknown stage");
  expect_err("[[port]]\nname='a'\ntype='dpdk'\ndevargs='x'\nvlan_mode='access'\n", "needs tag");
  expect_err("[pmd]\nlcores=[]\n", "pmd.lcores");
  expect_err("this is = = not toml", "");
}

TEST(Config, PortSpecFromCliWords) {
  nlohmann::json j = {{"name", "p"}, {"type", "vhost-user"}, {"path", "/s"}, {"client", "true"}, {"queues", "4"}};
  PortSpec s = port_spec_from_json(j);
  EXPECT_TRUE(s.client);
  EXPECT_EQ(s.queues, 4);
  PortSpec r = port_spec_from_json(port_spec_to_json(s));
  EXPECT_EQ(r.path, "/s");
  EXPECT_EQ(r.queues, 4);
}

// The shipped example configs stay valid.
TEST(Config, ExamplesParse) {
  for (const char* f : {"two-guests-uplink.toml", "uml-guest.toml"}) {
    SwitchConfig c = load_config_file(std::string(VSW_SOURCE_ROOT "/vswitch/examples/") + f);
    EXPECT_FALSE(c.ports.empty()) << f;
  }
  SwitchConfig c = load_config_file(VSW_SOURCE_ROOT "/vswitch/examples/uml-guest.toml");
  EXPECT_EQ(c.ports[0].disable_features, 0x400ee7f8bULL);
}

TEST(RxqAssign, RoundRobin) {
  std::vector<RxqLoad> l;
  for (uint16_t i = 0; i < 5; ++i) l.push_back({{i, 0}, 0, -1});
  auto a = assign_rxqs(l, 2, RxqAssignMode::kRoundRobin);
  EXPECT_EQ(a[0].size(), 3u);
  EXPECT_EQ(a[1].size(), 2u);
}

TEST(RxqAssign, CyclesBalancesLoad) {
  std::vector<RxqLoad> l = {{{0, 0}, 100, -1}, {{1, 0}, 60, -1}, {{2, 0}, 50, -1}, {{3, 0}, 10, -1}};
  auto a = assign_rxqs(l, 2, RxqAssignMode::kCycles);
  // 100 alone on one PMD (+10), 60+50 on the other.
  uint64_t load[2] = {};
  for (int p = 0; p < 2; ++p)
    for (auto& r : a[static_cast<size_t>(p)]) load[p] += l[r.port].cycles;
  EXPECT_EQ(std::max(load[0], load[1]), 110u);
}

TEST(RxqAssign, PinnedQueuesStay) {
  std::vector<RxqLoad> l = {{{0, 0}, 1000, 1}, {{1, 0}, 10, -1}, {{2, 0}, 10, -1}};
  auto a = assign_rxqs(l, 2, RxqAssignMode::kCycles);
  ASSERT_FALSE(a[1].empty());
  EXPECT_EQ(a[1][0].port, 0);
  EXPECT_EQ(a[0].size(), 2u);  // the others avoid the loaded, pinned PMD
}

}  // namespace
