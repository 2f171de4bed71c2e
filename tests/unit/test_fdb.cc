// FDB: learning, moves, aging, size limit, flushing, concurrent learners.
#include <gtest/gtest.h>

#include <thread>

#include "flowtable/fdb.h"

using namespace vsw;

namespace {

uint64_t key(uint32_t i, uint16_t vlan = 0) {
  uint8_t m[6] = {0x02, 0, static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                  static_cast<uint8_t>(i)};
  return Fdb::make_key(m, vlan);
}

TEST(Fdb, LearnLookupMove) {
  Fdb f({100, 300});
  EXPECT_EQ(f.lookup(key(1)), kFdbNoPort);
  EXPECT_EQ(f.learn(key(1), 3, 10), LearnResult::kLearned);
  EXPECT_EQ(f.lookup(key(1)), 3);
  EXPECT_EQ(f.learn(key(1), 3, 10), LearnResult::kUnchanged);
  EXPECT_EQ(f.learn(key(1), 3, 11), LearnResult::kRefreshed);
  EXPECT_EQ(f.learn(key(1), 4, 11), LearnResult::kMoved);
  EXPECT_EQ(f.lookup(key(1)), 4);
  EXPECT_EQ(f.size(), 1u);
}

TEST(Fdb, VlanIsPartOfKey) {
  Fdb f({100, 300});
  f.learn(key(1, 10), 1, 0);
  f.learn(key(1, 20), 2, 0);
  EXPECT_EQ(f.lookup(key(1, 10)), 1);
  EXPECT_EQ(f.lookup(key(1, 20)), 2);
  EXPECT_EQ(f.lookup(key(1, 0)), kFdbNoPort);
}

TEST(Fdb, AgingRemovesOldEntriesOnly) {
  Fdb f({100, 5});
  f.learn(key(1), 1, 100);
  f.learn(key(2), 1, 103);
  EXPECT_EQ(f.age(104), 0u);
  EXPECT_EQ(f.age(105), 1u);
  EXPECT_EQ(f.lookup(key(1)), kFdbNoPort);
  EXPECT_EQ(f.lookup(key(2)), 1);
  f.reclaim();
  EXPECT_EQ(f.size(), 1u);
}

TEST(Fdb, SizeLimitIsHard) {
  Fdb f({64, 300});
  unsigned learned = 0, full = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    auto r = f.learn(key(i), 1, 0);
    learned += r == LearnResult::kLearned;
    full += r == LearnResult::kFull;
  }
  EXPECT_EQ(learned, 64u);
  EXPECT_EQ(full, 1000u - 64u);
  EXPECT_EQ(f.size(), 64u);
  EXPECT_EQ(f.full_drops(), 1000u - 64u);
}

TEST(Fdb, FlushPortAndReuse) {
  Fdb f({8, 300});
  for (uint32_t i = 0; i < 8; ++i) f.learn(key(i), static_cast<uint16_t>(i % 2), 0);
  EXPECT_EQ(f.flush_port(1), 4u);
  EXPECT_EQ(f.learn(key(100), 1, 0), LearnResult::kLearned);  // count freed at once
  f.reclaim();
  for (uint32_t i = 200; i < 203; ++i) EXPECT_EQ(f.learn(key(i), 1, 0), LearnResult::kLearned);
  EXPECT_EQ(f.size(), 8u);
  EXPECT_EQ(f.flush_all(), 8u);
  EXPECT_EQ(f.dump(0).size(), 0u);
}

TEST(Fdb, BulkLookupMatchesSingle) {
  Fdb f({4096, 300});
  std::vector<uint64_t> keys;
  for (uint32_t i = 0; i < 64; ++i) {
    keys.push_back(key(i * 7919));
    if (i % 3) f.learn(keys.back(), static_cast<uint16_t>(i), 0);
  }
  uint16_t ports[64];
  f.lookup_bulk(keys.data(), 64, ports);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(ports[i], f.lookup(keys[i]));
}

TEST(Fdb, ConcurrentLearnersAndReaders) {
  Fdb f({20000, 300});
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      for (uint32_t i = 0; i < 1000; ++i) {
        uint16_t p = f.lookup(key(i));
        ASSERT_TRUE(p == kFdbNoPort || p == 1 || p == 2);
      }
    }
  });
  std::thread a([&] {
    for (uint32_t i = 0; i < 10000; ++i) f.learn(key(i), 1, 0);
  });
  std::thread b([&] {
    for (uint32_t i = 0; i < 10000; ++i) f.learn(key(i), 2, 0);
  });
  a.join();
  b.join();
  stop.store(true);
  reader.join();
  EXPECT_EQ(f.size(), 10000u);  // no key inserted twice
  for (uint32_t i = 0; i < 10000; ++i) ASSERT_NE(f.lookup(key(i)), kFdbNoPort);
}

}  // namespace
