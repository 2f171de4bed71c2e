#include "pmd/rcu.h"

#include <thread>

namespace vsw {

Rcu& rcu() {
  static Rcu r;
  return r;
}

unsigned Rcu::register_thread() {
  for (unsigned i = 0; i < kMaxThreads; ++i) {
    bool f = false;
    if (ctr_[i].used.compare_exchange_strong(f, true)) {
      ctr_[i].v.store(0);
      return i;
    }
  }
  return kMaxThreads - 1;
}

void Rcu::unregister_thread(unsigned slot) {
  ctr_[slot].v.store(0);
  ctr_[slot].used.store(false);
}

void Rcu::synchronize() const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint64_t snap[kMaxThreads];
  for (unsigned i = 0; i < kMaxThreads; ++i) snap[i] = ctr_[i].v.load(std::memory_order_acquire);
  for (unsigned i = 0; i < kMaxThreads; ++i) {
    if (!ctr_[i].used.load() || (snap[i] & 1) == 0) continue;
    while (ctr_[i].used.load() && ctr_[i].v.load(std::memory_order_acquire) == snap[i])
      std::this_thread::yield();
  }
}

}  // namespace vsw
