// Test helper: initializes DPDK once per test binary without hugepages
// (--no-huge, no PCI), with one worker lcore for a PMD thread.
#pragma once
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cc/pkt_meta.h"

namespace vsw::test {

class EalEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string prefix = "--file-prefix=vswut" + std::to_string(getpid());
    std::vector<std::string> a = {"unit", "--no-huge", "-m", "256", "--no-pci", "-l", "0,1", prefix,
                                  "--log-level=lib.eal:error", "--no-telemetry"};
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0);
  }
  void TearDown() override { rte_eal_cleanup(); }
};

}  // namespace vsw::test
