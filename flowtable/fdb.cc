#include "flowtable/fdb.h"

#include <nmmintrin.h>

#include <cstring>

namespace vsw {

namespace {
uint32_t pow2_at_least(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

Fdb::Fdb(FdbConfig cfg) : cfg_(cfg) {
  if (cfg_.max_entries == 0) cfg_.max_entries = 1;
  // Twice the capacity in slots keeps two-choice placement from filling buckets early.
  uint32_t nb = pow2_at_least(std::max<uint32_t>(2, (cfg_.max_entries * 2 + kWays - 1) / kWays));
  mask_ = nb - 1;
  buckets_.reset(new Bucket[nb]);
  locks_.reset(new std::atomic<uint8_t>[nb]);
  for (uint32_t i = 0; i < nb; ++i) {
    locks_[i].store(0);
    for (auto& e : buckets_[i].e) {
      e.key.store(kEmpty, std::memory_order_relaxed);
      e.seen.store(0, std::memory_order_relaxed);
      e.port.store(kFdbNoPort, std::memory_order_relaxed);
    }
  }
}

Fdb::~Fdb() = default;

size_t Fdb::memory_bytes() const { return (size_t(mask_) + 1) * (sizeof(Bucket) + 1); }

uint32_t Fdb::h1(uint64_t key) const { return static_cast<uint32_t>(_mm_crc32_u64(0x9e3779b9, key)) & mask_; }
uint32_t Fdb::h2(uint64_t key) const {
  uint32_t h = static_cast<uint32_t>(_mm_crc32_u64(0x85ebca6b, key)) & mask_;
  return h == h1(key) ? (h ^ 1) & mask_ : h;
}

void Fdb::lock(uint32_t b) const {
  while (locks_[b].exchange(1, std::memory_order_acquire))
    while (locks_[b].load(std::memory_order_relaxed)) __builtin_ia32_pause();
}
void Fdb::unlock(uint32_t b) const { locks_[b].store(0, std::memory_order_release); }

const Fdb::Entry* Fdb::find(uint64_t key) const {
  for (uint32_t b : {h1(key), h2(key)}) {
    const Bucket& bk = buckets_[b];
    for (const auto& e : bk.e)
      if (e.key.load(std::memory_order_acquire) == key) return &e;
  }
  return nullptr;
}

uint16_t Fdb::lookup(uint64_t key) const {
  const Entry* e = find(key);
  return e ? e->port.load(std::memory_order_relaxed) : kFdbNoPort;
}

void Fdb::lookup_bulk(const uint64_t* keys, unsigned n, uint16_t* ports) const {
  uint32_t b1[64];
  n = std::min(n, 64u);
  for (unsigned i = 0; i < n; ++i) {
    b1[i] = h1(keys[i]);
    __builtin_prefetch(&buckets_[b1[i]]);
  }
  for (unsigned i = 0; i < n; ++i) {
    const Bucket& bk = buckets_[b1[i]];
    uint16_t port = kFdbNoPort;
    bool hit = false;
    for (const auto& e : bk.e)
      if (e.key.load(std::memory_order_acquire) == keys[i]) {
        port = e.port.load(std::memory_order_relaxed);
        hit = true;
        break;
      }
    ports[i] = hit ? port : lookup(keys[i]);
  }
}

LearnResult Fdb::learn(uint64_t key, uint16_t port, uint32_t now_s) {
  if (const Entry* ce = find(key)) {
    auto* e = const_cast<Entry*>(ce);
    if (e->port.load(std::memory_order_relaxed) != port) {
      e->port.store(port, std::memory_order_relaxed);
      e->seen.store(now_s, std::memory_order_relaxed);
      return LearnResult::kMoved;
    }
    if (e->seen.load(std::memory_order_relaxed) != now_s) {
      e->seen.store(now_s, std::memory_order_relaxed);
      return LearnResult::kRefreshed;
    }
    return LearnResult::kUnchanged;
  }
  if (count_.load(std::memory_order_relaxed) >= cfg_.max_entries) {
    full_.fetch_add(1, std::memory_order_relaxed);
    return LearnResult::kFull;
  }
  for (uint32_t b : {h1(key), h2(key)}) {
    lock(b);
    Bucket& bk = buckets_[b];
    for (auto& e : bk.e)  // another PMD may have inserted it meanwhile
      if (e.key.load(std::memory_order_relaxed) == key) {
        e.port.store(port, std::memory_order_relaxed);
        unlock(b);
        return LearnResult::kLearned;
      }
    for (auto& e : bk.e)
      if (e.key.load(std::memory_order_relaxed) == kEmpty) {
        e.port.store(port, std::memory_order_relaxed);
        e.seen.store(now_s, std::memory_order_relaxed);
        e.key.store(key, std::memory_order_release);
        count_.fetch_add(1, std::memory_order_relaxed);
        unlock(b);
        return LearnResult::kLearned;
      }
    unlock(b);
  }
  full_.fetch_add(1, std::memory_order_relaxed);
  return LearnResult::kFull;
}

unsigned Fdb::remove_if(const std::function<bool(const Entry&)>& pred) {
  unsigned n = 0;
  for (uint32_t b = 0; b <= mask_; ++b) {
    lock(b);
    for (auto& e : buckets_[b].e) {
      uint64_t k = e.key.load(std::memory_order_relaxed);
      if (k == kEmpty || k == kDead || !pred(e)) continue;
      e.key.store(kDead, std::memory_order_release);
      ++n;
    }
    unlock(b);
  }
  count_.fetch_sub(n, std::memory_order_relaxed);
  dead_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

unsigned Fdb::age(uint32_t now_s) {
  const uint32_t limit = cfg_.aging_s;
  return remove_if([&](const Entry& e) { return now_s - e.seen.load(std::memory_order_relaxed) >= limit; });
}

unsigned Fdb::flush_port(uint16_t port) {
  return remove_if([&](const Entry& e) { return e.port.load(std::memory_order_relaxed) == port; });
}

unsigned Fdb::flush_all() {
  return remove_if([](const Entry&) { return true; });
}

void Fdb::reclaim() {
  if (dead_.load() == 0) return;
  for (uint32_t b = 0; b <= mask_; ++b) {
    lock(b);
    for (auto& e : buckets_[b].e)
      if (e.key.load(std::memory_order_relaxed) == kDead) e.key.store(kEmpty, std::memory_order_relaxed);
    unlock(b);
  }
  dead_.store(0);
}

std::vector<FdbEntryView> Fdb::dump(uint32_t now_s) const {
  std::vector<FdbEntryView> out;
  for (uint32_t b = 0; b <= mask_; ++b)
    for (const auto& e : buckets_[b].e) {
      uint64_t k = e.key.load(std::memory_order_acquire);
      if (k == kEmpty || k == kDead) continue;
      FdbEntryView v{};
      std::memcpy(v.mac, &k, 6);
      v.vlan = static_cast<uint16_t>((k >> 48) & 0xfff);
      v.port = e.port.load(std::memory_order_relaxed);
      v.age_s = now_s - e.seen.load(std::memory_order_relaxed);
      out.push_back(v);
    }
  return out;
}

}  // namespace vsw
