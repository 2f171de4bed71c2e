// Per-PMD TCP connection table: the base every TCP stage builds on.
//
// Single writer, no locks: the flow-owner handoff guarantees both directions
// of a connection reach the PMD that owns this table, and only that thread
// calls any method (the control plane asks the owner for a copy-out).
//
// Layout
//  - conns_: capacity hot entries of 128 bytes (TcpConn): line 1 the compact
//    key (all of an IPv4 key), times, state and the per-connection counters;
//    line 2 both directions' state. A packet of an IPv4 connection touches
//    its index bucket and these two lines, nothing else. IPv6 addresses live
//    in keys6_ (parallel, 40 bytes per slot, mapped lazily: only IPv6 slots
//    ever touch it), aging-list links in links_ (8 bytes per slot, touched by
//    list operations only). Stages keep their own per-connection state in
//    further parallel arrays of capacity() slots and reset it on kEvCreated
//    (or in a remove hook).
//  - index: 2^k buckets of 8 (32-bit hash, slot) pairs, one cache line each,
//    a key in one of two buckets; twice as many pairs as connections, so a
//    full table still leaves buckets half empty and inserts rarely fail.
//  - aging: embryonic entries in an LRU list (evicted first, own timeout);
//    everything else in a lazy timer wheel: a packet only refreshes
//    last_seen, and tick() re-files an entry whose deadline moved.
//
// Time is the caller's millisecond clock (uint32, may wrap); call tick() at
// least every few hundred ms for timely aging.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cc/tcp_segment.h"
#include "flowtable/tcp_flow_state.h"

namespace vsw {

struct TcpFlowConfig {
  uint32_t capacity = 1u << 20;
  uint32_t embryonic_max = 0;  // budget for embryonic entries; 0 = capacity / 4
  uint32_t idle_timeout_ms = 300'000;
  uint32_t embryonic_timeout_ms = 30'000;
  uint32_t fin_timeout_ms = 60'000;  // one FIN seen
  uint32_t linger_ms = 2'000;        // both FINs or RST seen
  uint32_t wheel_tick_ms = 32;       // timer-wheel resolution
  bool create_midstream = true;      // track connections already open when first seen
  bool prefault = true;              // touch all memory at construction, not on the data path
};

struct TcpFlowStats {
  uint64_t created = 0;
  uint64_t created_midstream = 0;
  uint64_t created_synack = 0;  // SYN missed, created on the SYN-ACK
  uint64_t refused_full = 0;    // no room: connection not tracked
  uint64_t untracked = 0;       // RST/FIN (or non-SYN with mid-stream off) for unknown connection
  uint64_t rst_ignored = 0;
  uint64_t index_moves = 0;     // cuckoo moves in the index (both buckets of a new key were full)
  uint64_t removed[static_cast<size_t>(RemoveReason::kCount)] = {};
};

enum class TopBy : uint8_t { kBytes, kPackets, kAge };

class TcpFlowTable {
 public:
  static constexpr uint32_t kNoSlot = ~0u;
  static constexpr unsigned kBulk = 64;  // lookups are pipelined in chunks of this many
  static constexpr size_t kHotBytesPerConn = sizeof(TcpConn);  // counters included
  static constexpr size_t kLinkBytesPerConn = 8;               // aging-list links

  explicit TcpFlowTable(const TcpFlowConfig& cfg = {});
  ~TcpFlowTable();
  TcpFlowTable(const TcpFlowTable&) = delete;
  TcpFlowTable& operator=(const TcpFlowTable&) = delete;

  // ---- data path ----
  // Prefetches the first index bucket of a key's hash. Call it as soon as the
  // hash is known, while the batch's segments are still being built: the
  // bucket then arrives while the rest of the batch is parsed instead of
  // being one more DRAM round trip in lookup_bulk.
  void prefetch(uint32_t hash) const { __builtin_prefetch(&buckets_[hash & mask_]); }
  uint32_t lookup(const FlowKey& k, uint32_t hash) const;
  // Bucket prefetch for all, then entry prefetch for all (a key with no
  // match in its first bucket: its second bucket, then that candidate's
  // entry), then compare.
  void lookup_bulk(const FlowKey* keys, const uint32_t* hashes, unsigned n, uint32_t* slots) const;
  void lookup_bulk(const TcpSegment* segs, unsigned n, uint32_t* slots) const;

  // Finds or creates the connection of s and updates its state. slot_hint:
  // this segment's result from lookup_bulk (validated: an earlier packet of
  // the batch may have evicted that entry).
  TrackResult track(const TcpSegment& s, uint32_t now_ms, uint32_t slot_hint = kNoSlot);
  // lookup_bulk + track for a whole batch (any n).
  void track_bulk(const TcpSegment* segs, unsigned n, uint32_t now_ms, TrackResult* out);

  TcpConn& conn(uint32_t slot) { return conns_[slot]; }
  const TcpConn& conn(uint32_t slot) const { return conns_[slot]; }
  const TcpConnStats& conn_stats(uint32_t slot) const { return conns_[slot].stats; }
  // The full key of a live slot (TcpConn::key holds only IPv4 addresses).
  FlowKey key(uint32_t slot) const;
  // Does (slot, gen) still name a live connection? For references kept across batches.
  bool alive(uint32_t slot, uint32_t gen) const {
    return slot < cap_ && conns_[slot].state != TcpState::kFree && conns_[slot].gen == gen;
  }

  // ---- aging and removal ----
  // Expires due entries; visits at most budget entries (the rest waits for
  // the next call). Returns the number removed.
  unsigned tick(uint32_t now_ms, unsigned budget = 4096);
  bool remove(uint32_t slot, RemoveReason why);
  unsigned flush();

  // Called (owning thread) just before a slot is freed, e.g. so a stage can
  // release mbufs it buffers for that connection. At most kMaxHooks. A hook
  // must not call back into the table (no remove/track from inside a hook).
  using RemoveHook = void (*)(void* ctx, uint32_t slot, const TcpConn& c, RemoveReason why);
  static constexpr unsigned kMaxHooks = 4;
  bool add_remove_hook(RemoveHook fn, void* ctx);

  // Stages' per-slot arrays (parallel to the table, element size `stride`)
  // that lookup_bulk prefetches for writing together with the entry it
  // found: `lines` cache lines from byte `offset` of the element. The state
  // then arrives while the table works through the rest of the batch instead
  // of when the stage runs. At most kMaxCompanions; the array must live as
  // long as the table or be removed with remove_companion.
  static constexpr unsigned kMaxCompanions = 4;
  bool add_companion(const void* base, uint32_t stride, uint32_t offset, uint8_t lines);
  void remove_companion(const void* base);

  // ---- control plane (call on the owning thread; copies out) ----
  // Live connections from slot `start` on, at most max of them; *next is
  // where to continue (kNoSlot when done). Lets a large dump be spread over
  // several PMD iterations.
  size_t snapshot(uint32_t now_ms, uint32_t start, size_t max, std::vector<TcpConnView>& out,
                  uint32_t* next) const;
  // One pass over all slots (O(capacity)): the n largest by `by`, largest first.
  std::vector<TcpConnView> top_n(uint32_t now_ms, size_t n, TopBy by) const;

  const TcpFlowStats& stats() const { return stats_; }
  uint32_t size() const { return live_; }
  uint32_t embryonic() const { return embryonic_; }
  uint32_t capacity() const { return cap_; }
  const TcpFlowConfig& config() const { return cfg_; }
  size_t memory_bytes() const;
  double bytes_per_conn() const { return double(memory_bytes()) / cap_; }

 private:
  struct alignas(64) Bucket {
    uint32_t sig[8];    // full 32-bit hash
    uint32_t slot1[8];  // slot + 1; 0 = empty (zeroed memory is an empty index)
  };
  static_assert(sizeof(Bucket) == 64);
  struct Link {
    uint32_t prev, next;
  };
  static_assert(sizeof(Link) == kLinkBytesPerConn);
  static constexpr uint32_t kWheelSlots = 1024;

  uint32_t b1(uint32_t h) const { return h & mask_; }
  uint32_t b2(uint32_t h) const;
  uint32_t find(const FlowKey& k, uint32_t h) const;
  // Does slot hold key k (w0, w1: conn_key_words(k))?
  bool key_eq(uint32_t slot, const FlowKey& k, uint64_t w0, uint64_t w1) const {
    uint64_t e[2];
    std::memcpy(e, &conns_[slot].key, sizeof(e));
    return e[0] == w0 && e[1] == w1 && (conns_[slot].key.family == 4 || keys6_[slot] == k);
  }
  bool key_eq(uint32_t slot, const FlowKey& k) const {
    uint64_t w0, w1;
    conn_key_words(k, w0, w1);
    return key_eq(slot, k, w0, w1);
  }
  void set_key(uint32_t slot, const FlowKey& k);
  // Validate false: slots are the candidates (the first signature match in
  // the first bucket, else in the second), unchecked (for track_bulk:
  // track_one compares the key anyway and searches on a miss).
  template <bool Validate, typename Get>
  void lookup_bulk_impl(unsigned n, Get get, uint32_t* slots) const;
  // lookup_bulk's prefetches without its key comparison: the candidate per
  // segment (kNoSlot if none), which track_one validates.
  void candidates(const TcpSegment* segs, unsigned n, uint32_t* slots) const;
  // Prefetches (for writing) a slot's entry and its companions' lines.
  void prefetch_slot(uint32_t slot) const;
  int free_way(uint32_t b) const;
  uint32_t alloc(const FlowKey& k, uint32_t h);
  bool evict_embryonic_in(uint32_t b);
  bool make_room(uint32_t b);
  bool evict_oldest_embryonic();
  void index_erase(uint32_t slot, uint32_t h);

  // The table's clock (never runs backwards); inline, it runs once per batch.
  uint64_t clock(uint32_t now_ms) {
    if (!started_) {
      started_ = true;
      now32_ = now_ms;
      now64_ = now_ms;
      cursor_ = now64_ / cfg_.wheel_tick_ms;
    } else if (static_cast<int32_t>(now_ms - now32_) > 0) {
      now64_ += now_ms - now32_;
      now32_ = now_ms;
    }
    return now64_;
  }
  TrackResult track_one(const TcpSegment& s, uint32_t slot_hint);  // track() after the clock
  uint32_t timeout_of(TcpState s) const;
  void set_state(uint32_t slot, TcpState s, TrackResult& r);
  void update(uint32_t slot, const TcpSegment& s, TrackResult& r);
  void on_syn(TcpConn& c, const TcpSegment& s);
  bool rst_acceptable(const TcpConn& c, const TcpSegment& s) const;

  // Intrusive lists over slots; indices >= cap_ are list heads.
  uint32_t& next_of(uint32_t i) { return i < cap_ ? links_[i].next : heads_[i - cap_].next; }
  uint32_t& prev_of(uint32_t i) { return i < cap_ ? links_[i].prev : heads_[i - cap_].prev; }
  void list_push_back(uint32_t head, uint32_t i);
  void list_unlink(uint32_t i);
  uint32_t embryonic_head() const { return cap_; }
  uint32_t wheel_head(uint64_t t) const { return cap_ + 1 + static_cast<uint32_t>(t & (kWheelSlots - 1)); }
  void wheel_place(uint32_t slot);

  TcpFlowConfig cfg_;
  uint32_t cap_;
  uint32_t emb_max_;
  uint32_t mask_;
  uint32_t n_buckets_;
  TcpConn* conns_ = nullptr;
  Link* links_ = nullptr;     // aging-list links per slot (free slots: next = free list)
  FlowKey* keys6_ = nullptr;  // IPv6 slots' full keys (lazily mapped)
  Bucket* buckets_ = nullptr;
  std::vector<Link> heads_;  // [0] embryonic LRU, [1 + w] wheel slot w
  uint32_t live_ = 0, embryonic_ = 0;
  uint32_t bump_ = 0;               // slots below have been used at least once
  uint32_t free_head_ = kNoSlot;    // freed slots, linked through links_[].next
  bool started_ = false;
  uint32_t now32_ = 0;
  uint64_t now64_ = 0;              // ms, never wraps
  uint64_t cursor_ = 0;             // next wheel tick to process
  struct Hook {
    RemoveHook fn;
    void* ctx;
  };
  Hook hooks_[kMaxHooks] = {};
  unsigned n_hooks_ = 0;
  struct Companion {
    const char* base;
    uint32_t stride, offset;
    uint8_t lines;
  };
  Companion comp_[kMaxCompanions] = {};
  unsigned n_comp_ = 0;
  TcpFlowStats stats_;
};

}  // namespace vsw
