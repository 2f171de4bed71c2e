// Quiescent-state based reclamation for control-plane updates of data-path
// structures (poll lists, port table, FDB slots, vhost devices).
//
// Each PMD thread bumps its counter to odd when it starts an iteration and to
// even when it ends one (and stays even while it sleeps). synchronize() waits
// until every registered thread has been seen even or has moved on, so no
// thread still holds a pointer read before the call.
#pragma once
#include <atomic>
#include <cstdint>

namespace vsw {

class Rcu {
 public:
  static constexpr unsigned kMaxThreads = 64;
  // Returns a slot for the calling data-path thread.
  unsigned register_thread();
  void unregister_thread(unsigned slot);
  void enter(unsigned slot) { ctr_[slot].v.fetch_add(1, std::memory_order_acq_rel); }
  void leave(unsigned slot) { ctr_[slot].v.store(ctr_[slot].v.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  // Blocks the caller (control thread) until a grace period has passed.
  void synchronize() const;

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
    std::atomic<bool> used{false};
  };
  Slot ctr_[kMaxThreads];
};

Rcu& rcu();

}  // namespace vsw
