// L2 forwarding database: (MAC, VLAN) -> port, with learning from many PMD
// threads, lock-free lookups, aging and a hard size limit.
//
// Layout: 2^k buckets of 8 entries (128 bytes); a key lives in one of two
// buckets chosen by two hashes. Lookups take no lock: an entry's key word is
// published last (release) and read first (acquire). Writers (learning PMDs,
// the aging control thread) take a per-bucket spinlock. A removed entry is
// first marked dead and only reused after the caller's grace period
// (reclaim()), so a reader never pairs a key with another key's port.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

namespace vsw {

inline constexpr uint16_t kFdbNoPort = 0xffff;

struct FdbConfig {
  uint32_t max_entries = 8192;
  uint32_t aging_s = 300;
};

struct FdbEntryView {
  uint8_t mac[6];
  uint16_t vlan;
  uint16_t port;
  uint32_t age_s;
};

enum class LearnResult : uint8_t { kUnchanged, kRefreshed, kLearned, kMoved, kFull };

class Fdb {
 public:
  explicit Fdb(FdbConfig cfg);
  ~Fdb();
  Fdb(const Fdb&) = delete;
  Fdb& operator=(const Fdb&) = delete;

  // Key of a (MAC bytes, VLAN) pair; never 0 (empty) or ~0 (dead).
  static uint64_t make_key(const uint8_t mac[6], uint16_t vlan) {
    uint64_t k = 0;
    std::memcpy(&k, mac, 6);
    return k | (uint64_t((vlan & 0xfff) | 0x1000) << 48);
  }

  // Data path, any thread.
  uint16_t lookup(uint64_t key) const;
  void lookup_bulk(const uint64_t* keys, unsigned n, uint16_t* ports) const;
  LearnResult learn(uint64_t key, uint16_t port, uint32_t now_s);

  // Control thread. Entries are marked dead; call reclaim() after a grace
  // period to make their slots reusable.
  unsigned age(uint32_t now_s);
  unsigned flush_port(uint16_t port);
  unsigned flush_all();
  void reclaim();
  std::vector<FdbEntryView> dump(uint32_t now_s) const;

  uint32_t size() const { return count_.load(std::memory_order_relaxed); }
  const FdbConfig& config() const { return cfg_; }
  void set_aging(uint32_t s) { cfg_.aging_s = s; }
  uint64_t full_drops() const { return full_.load(std::memory_order_relaxed); }
  size_t memory_bytes() const;

 private:
  struct Entry {
    std::atomic<uint64_t> key;
    std::atomic<uint32_t> seen;
    std::atomic<uint16_t> port;
    uint16_t pad;
  };
  static_assert(sizeof(Entry) == 16);
  static constexpr unsigned kWays = 8;
  struct alignas(64) Bucket {
    Entry e[kWays];
  };
  static constexpr uint64_t kEmpty = 0, kDead = ~0ULL;

  uint32_t h1(uint64_t key) const;
  uint32_t h2(uint64_t key) const;
  const Entry* find(uint64_t key) const;
  unsigned remove_if(const std::function<bool(const Entry&)>& pred);
  void lock(uint32_t b) const;
  void unlock(uint32_t b) const;

  FdbConfig cfg_;
  uint32_t mask_;
  std::unique_ptr<Bucket[]> buckets_;
  std::unique_ptr<std::atomic<uint8_t>[]> locks_;
  std::atomic<uint32_t> count_{0};
  std::atomic<uint32_t> dead_{0};
  std::atomic<uint64_t> full_{0};
};

}  // namespace vsw
