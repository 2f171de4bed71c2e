// Test main of the stage-service tests: DPDK EAL once per binary with
// --no-huge (tests/common/eal_env.h), then every test linked in.
#include <gtest/gtest.h>

#include "tests/common/eal_env.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vsw::test::EalEnv);
  return RUN_ALL_TESTS();
}
