// TcpFlowTable: memory, index, allocation and eviction, aging, control-plane
// copies. The per-packet state machine is in tcp_flow_track.cc.
#include "flowtable/tcp_flow_table.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <queue>

namespace vsw {

namespace {

constexpr size_t kMapAlign = 2u << 20;  // lets THP back the arrays with 2 MB pages

size_t map_size(size_t bytes) { return (bytes + kMapAlign - 1) & ~(kMapAlign - 1); }

// Anonymous mappings come zeroed: a zero TcpConn is kFree and a zero bucket is
// empty, so nothing needs initialising; prefault only decides whether the
// page faults happen now or on the data path.
void* map_zeroed(size_t bytes, bool prefault) {
  const size_t len = map_size(bytes);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  madvise(p, len, MADV_HUGEPAGE);  // a hint; fine if THP is off
  if (prefault) std::memset(p, 0, len);
  return p;
}

void unmap(void* p, size_t bytes) {
  if (p) munmap(p, map_size(bytes));
}

uint32_t pow2_at_least(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return static_cast<uint32_t>(p);
}

inline unsigned match_mask(const uint32_t* sig, uint32_t h) {
#ifdef __AVX2__
  const __m256i s = _mm256_load_si256(reinterpret_cast<const __m256i*>(sig));
  const __m256i eq = _mm256_cmpeq_epi32(s, _mm256_set1_epi32(static_cast<int>(h)));
  return static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(eq)));
#else
  unsigned m = 0;
  for (unsigned i = 0; i < 8; ++i) m |= unsigned(sig[i] == h) << i;
  return m;
#endif
}

RemoveReason expiry_reason(TcpState s) {
  switch (s) {
    case TcpState::kClosed: return RemoveReason::kClosed;
    case TcpState::kReset: return RemoveReason::kReset;
    default: return tcp_state_embryonic(s) ? RemoveReason::kEmbryonicTimeout : RemoveReason::kIdle;
  }
}

}  // namespace

const char* tcp_state_name(TcpState s) {
  switch (s) {
    case TcpState::kFree: return "free";
    case TcpState::kSynSent: return "syn_sent";
    case TcpState::kSynRecv: return "syn_recv";
    case TcpState::kMidOneWay: return "midstream_one_way";
    case TcpState::kEstablished: return "established";
    case TcpState::kFinWait: return "fin_wait";
    case TcpState::kClosed: return "closed";
    case TcpState::kReset: return "reset";
  }
  return "unknown";
}

const char* remove_reason_name(RemoveReason r) {
  switch (r) {
    case RemoveReason::kIdle: return "idle";
    case RemoveReason::kEmbryonicTimeout: return "embryonic_timeout";
    case RemoveReason::kEvicted: return "evicted";
    case RemoveReason::kClosed: return "closed";
    case RemoveReason::kReset: return "reset";
    case RemoveReason::kRecycled: return "recycled";
    case RemoveReason::kFlushed: return "flushed";
    case RemoveReason::kCount: break;
  }
  return "unknown";
}

TcpFlowTable::TcpFlowTable(const TcpFlowConfig& cfg) : cfg_(cfg) {
  cap_ = std::clamp<uint32_t>(cfg_.capacity, 1, 1u << 30);
  cfg_.capacity = cap_;
  emb_max_ = cfg_.embryonic_max ? std::min(cfg_.embryonic_max, cap_) : std::max<uint32_t>(1, cap_ / 4);
  cfg_.embryonic_max = emb_max_;
  if (cfg_.wheel_tick_ms == 0) cfg_.wheel_tick_ms = 1;
  n_buckets_ = pow2_at_least(std::max<uint64_t>(2, (uint64_t(cap_) * 2 + 7) / 8));
  mask_ = n_buckets_ - 1;
  conns_ = static_cast<TcpConn*>(map_zeroed(sizeof(TcpConn) * size_t(cap_), cfg_.prefault));
  links_ = static_cast<Link*>(map_zeroed(sizeof(Link) * size_t(cap_), cfg_.prefault));
  keys6_ = static_cast<FlowKey*>(map_zeroed(sizeof(FlowKey) * size_t(cap_), false));  // IPv6 slots only
  buckets_ = static_cast<Bucket*>(map_zeroed(sizeof(Bucket) * size_t(n_buckets_), cfg_.prefault));
  heads_.resize(1 + kWheelSlots);
  for (uint32_t i = 0; i < heads_.size(); ++i) heads_[i] = {cap_ + i, cap_ + i};
}

TcpFlowTable::~TcpFlowTable() {
  unmap(conns_, sizeof(TcpConn) * size_t(cap_));
  unmap(links_, sizeof(Link) * size_t(cap_));
  unmap(keys6_, sizeof(FlowKey) * size_t(cap_));
  unmap(buckets_, sizeof(Bucket) * size_t(n_buckets_));
}

// What the table keeps resident (prefaulted): entries, links, index. The
// IPv6 key array (40 bytes per slot) is mapped lazily and only IPv6 slots
// touch it: not counted.
size_t TcpFlowTable::memory_bytes() const {
  return map_size(sizeof(TcpConn) * size_t(cap_)) + map_size(sizeof(Link) * size_t(cap_)) +
         map_size(sizeof(Bucket) * size_t(n_buckets_)) + heads_.size() * sizeof(Link) + sizeof(*this);
}

FlowKey TcpFlowTable::key(uint32_t slot) const {
  const ConnKey& c = conns_[slot].key;
  if (!c.is_v4()) return keys6_[slot];
  FlowKey k;
  std::memset(&k, 0, sizeof(k));
  std::memcpy(k.addr[0], &c.a4[0], 4);
  std::memcpy(k.addr[1], &c.a4[1], 4);
  k.port[0] = c.port[0];
  k.port[1] = c.port[1];
  k.vlan = c.vlan;
  k.family = c.family;
  k.proto = c.proto;
  return k;
}

void TcpFlowTable::set_key(uint32_t slot, const FlowKey& k) {
  uint64_t w[2];
  conn_key_words(k, w[0], w[1]);
  std::memcpy(&conns_[slot].key, w, sizeof(w));
  if (!k.is_v4()) keys6_[slot] = k;
}

// ---- index ----

uint32_t TcpFlowTable::b2(uint32_t h) const {
  uint32_t b = static_cast<uint32_t>(_mm_crc32_u32(0x5bd1e995u, h)) & mask_;
  return b == b1(h) ? (b ^ 1) & mask_ : b;
}

uint32_t TcpFlowTable::find(const FlowKey& k, uint32_t h) const {
  uint64_t w0, w1;
  conn_key_words(k, w0, w1);
  for (uint32_t b : {b1(h), b2(h)}) {
    const Bucket& bk = buckets_[b];
    for (unsigned m = match_mask(bk.sig, h); m; m &= m - 1) {
      const uint32_t s1 = bk.slot1[__builtin_ctz(m)];
      if (s1 && key_eq(s1 - 1, k, w0, w1)) return s1 - 1;
    }
  }
  return kNoSlot;
}

uint32_t TcpFlowTable::lookup(const FlowKey& k, uint32_t hash) const { return find(k, hash); }

// Inlined into the bulk lookup's loops: as a call it cost parse + lookup
// ~40 cycles per packet in cache (bench_monitor BM_Cost/1: 91 against 48).
[[gnu::always_inline]] inline void TcpFlowTable::prefetch_slot(uint32_t slot) const {
  const char* e = reinterpret_cast<const char*>(&conns_[slot]);
  __builtin_prefetch(e, 1);
  __builtin_prefetch(e + 64, 1);
  for (unsigned c = 0; c < n_comp_; ++c) {
    const char* p = comp_[c].base + size_t(slot) * comp_[c].stride + comp_[c].offset;
    for (unsigned l = 0; l < comp_[c].lines; ++l) __builtin_prefetch(p + 64 * l, 1);
  }
}

template <bool Validate, typename Get>
void TcpFlowTable::lookup_bulk_impl(unsigned n, Get get, uint32_t* slots) const {
  const Bucket* bk[kBulk];
  uint32_t cand[kBulk];
  for (unsigned base = 0; base < n; base += kBulk) {
    const unsigned m = std::min(kBulk, n - base);
    for (unsigned i = 0; i < m; ++i) {
      bk[i] = &buckets_[b1(get(base + i).second)];
      __builtin_prefetch(bk[i]);
    }
    // Most hits sit in the first bucket with a unique signature: fetch that
    // entry's both lines now (key and counters, d[] for the update). No
    // match there: the key is in its second bucket or new; fetch that bucket.
    unsigned second = 0;
    // The first way of bucket b whose signature is h: its slot + 1 (0: none).
    const auto first_match = [](const Bucket* b, uint32_t h) -> uint32_t {
      const unsigned mm = match_mask(b->sig, h);
      return mm ? b->slot1[__builtin_ctz(mm)] : 0;
    };
    for (unsigned i = 0; i < m; ++i) {
      const uint32_t h = get(base + i).second;
      const uint32_t s1 = first_match(bk[i], h);
      cand[i] = s1 ? s1 - 1 : kNoSlot;
      if (s1) {
        prefetch_slot(s1 - 1);
      } else {
        bk[i] = &buckets_[b2(h)];
        __builtin_prefetch(bk[i]);
        ++second;
      }
    }
    // Keys in their second bucket (0.7 % of bench_monitor's packets at 1M
    // connections, the index half full): their entries join the batch's
    // prefetches here, instead of find() taking the bucket, the entry and
    // the companions' lines as dependent DRAM misses in track_one and the
    // stages (~1000+ cycles each such packet). The buckets were requested
    // while the pass above went on.
    for (unsigned i = 0; second && i < m; ++i) {
      if (cand[i] != kNoSlot) continue;
      --second;
      const uint32_t s1 = first_match(bk[i], get(base + i).second);
      if (s1) {
        cand[i] = s1 - 1;
        prefetch_slot(s1 - 1);
      }
    }
    for (unsigned i = 0; i < m; ++i) {
      if constexpr (Validate) {
        const auto [k, h] = get(base + i);
        slots[base + i] = (cand[i] != kNoSlot && key_eq(cand[i], *k)) ? cand[i] : find(*k, h);
      } else {
        slots[base + i] = cand[i];
      }
    }
  }
}

void TcpFlowTable::lookup_bulk(const FlowKey* keys, const uint32_t* hashes, unsigned n, uint32_t* slots) const {
  lookup_bulk_impl<true>(n, [&](unsigned i) { return std::pair{&keys[i], hashes[i]}; }, slots);
}

void TcpFlowTable::lookup_bulk(const TcpSegment* segs, unsigned n, uint32_t* slots) const {
  lookup_bulk_impl<true>(n, [&](unsigned i) { return std::pair{&segs[i].key, segs[i].hash}; }, slots);
}

void TcpFlowTable::candidates(const TcpSegment* segs, unsigned n, uint32_t* slots) const {
  lookup_bulk_impl<false>(n, [&](unsigned i) { return std::pair{&segs[i].key, segs[i].hash}; }, slots);
}

int TcpFlowTable::free_way(uint32_t b) const {
  for (unsigned w = 0; w < 8; ++w)
    if (buckets_[b].slot1[w] == 0) return static_cast<int>(w);
  return -1;
}

void TcpFlowTable::index_erase(uint32_t slot, uint32_t h) {
  for (uint32_t b : {b1(h), b2(h)})
    for (auto& s1 : buckets_[b].slot1)
      if (s1 == slot + 1) {
        s1 = 0;
        return;
      }
}

// ---- allocation and eviction ----

bool TcpFlowTable::evict_oldest_embryonic() {
  const uint32_t i = next_of(embryonic_head());
  if (i == embryonic_head()) return false;
  return remove(i, RemoveReason::kEvicted);
}

// The bucket is full of established connections plus perhaps some embryonic
// ones: sacrifice the least recently seen embryonic entry, never an established one.
bool TcpFlowTable::evict_embryonic_in(uint32_t b) {
  uint32_t victim = kNoSlot, oldest_idle = 0;
  for (uint32_t s1 : buckets_[b].slot1) {
    if (!s1) continue;
    const TcpConn& c = conns_[s1 - 1];
    const uint32_t idle = now32_ - c.last_seen;
    if (tcp_state_embryonic(c.state) && (victim == kNoSlot || idle >= oldest_idle)) {
      victim = s1 - 1;
      oldest_idle = idle;
    }
  }
  return victim != kNoSlot && remove(victim, RemoveReason::kEvicted);
}

// Both buckets of a new key are full: move one resident to its other bucket
// if that has a free way (one cuckoo step; the stored hash gives the other
// bucket without touching the entry). Without this, about one key in 5000
// would be refused at 1M connections even though the index is half empty.
bool TcpFlowTable::make_room(uint32_t b) {
  Bucket& bk = buckets_[b];
  for (unsigned w = 0; w < 8; ++w) {
    const uint32_t h = bk.sig[w];
    const uint32_t alt = b1(h) == b ? b2(h) : b1(h);
    const int aw = free_way(alt);
    if (aw < 0) continue;
    buckets_[alt].sig[aw] = h;
    buckets_[alt].slot1[aw] = bk.slot1[w];
    bk.slot1[w] = 0;
    ++stats_.index_moves;
    return true;
  }
  return false;
}

uint32_t TcpFlowTable::alloc(const FlowKey& k, uint32_t h) {
  (void)k;
  if (embryonic_ >= emb_max_) evict_oldest_embryonic();
  if (live_ >= cap_ && !evict_oldest_embryonic()) return kNoSlot;
  uint32_t b = b1(h);
  int way = free_way(b);
  if (way < 0) {
    b = b2(h);
    way = free_way(b);
  }
  if (way < 0) {
    if (make_room(b1(h))) b = b1(h);
    else if (make_room(b2(h))) b = b2(h);
    else if (evict_embryonic_in(b1(h))) b = b1(h);
    else if (evict_embryonic_in(b2(h))) b = b2(h);
    else return kNoSlot;
    way = free_way(b);
  }
  uint32_t slot;
  if (free_head_ != kNoSlot) {
    slot = free_head_;
    free_head_ = links_[slot].next;
  } else {
    slot = bump_++;
  }
  buckets_[b].sig[way] = h;
  buckets_[b].slot1[way] = slot + 1;
  return slot;
}

bool TcpFlowTable::remove(uint32_t slot, RemoveReason why) {
  if (slot >= cap_) return false;
  TcpConn& c = conns_[slot];
  if (c.state == TcpState::kFree) return false;
  for (unsigned i = 0; i < n_hooks_; ++i) hooks_[i].fn(hooks_[i].ctx, slot, c, why);
  index_erase(slot, flow_key_hash(key(slot)));
  list_unlink(slot);
  if (tcp_state_embryonic(c.state)) --embryonic_;
  --live_;
  ++stats_.removed[static_cast<size_t>(why)];
  c.state = TcpState::kFree;
  ++c.gen;
  links_[slot].next = free_head_;
  free_head_ = slot;
  return true;
}

unsigned TcpFlowTable::flush() {
  unsigned n = 0;
  for (uint32_t i = 0; i < bump_; ++i) n += remove(i, RemoveReason::kFlushed);
  return n;
}

bool TcpFlowTable::add_remove_hook(RemoveHook fn, void* ctx) {
  if (!fn || n_hooks_ == kMaxHooks) return false;
  hooks_[n_hooks_++] = {fn, ctx};
  return true;
}

bool TcpFlowTable::add_companion(const void* base, uint32_t stride, uint32_t offset, uint8_t lines) {
  if (!base || n_comp_ == kMaxCompanions) return false;
  comp_[n_comp_++] = {static_cast<const char*>(base), stride, offset, lines};
  return true;
}

void TcpFlowTable::remove_companion(const void* base) {
  for (unsigned i = 0; i < n_comp_; ++i)
    if (comp_[i].base == base) {
      comp_[i] = comp_[--n_comp_];
      return;
    }
}

// ---- lists and aging ----

void TcpFlowTable::list_push_back(uint32_t head, uint32_t i) {
  const uint32_t tail = prev_of(head);
  next_of(tail) = i;
  prev_of(i) = tail;
  next_of(i) = head;
  prev_of(head) = i;
}

void TcpFlowTable::list_unlink(uint32_t i) {
  const uint32_t p = prev_of(i), n = next_of(i);
  next_of(p) = n;
  prev_of(n) = p;
  prev_of(i) = next_of(i) = i;
}

uint32_t TcpFlowTable::timeout_of(TcpState s) const {
  switch (s) {
    case TcpState::kEstablished: return cfg_.idle_timeout_ms;
    case TcpState::kFinWait: return cfg_.fin_timeout_ms;
    case TcpState::kClosed:
    case TcpState::kReset: return cfg_.linger_ms;
    default: return cfg_.embryonic_timeout_ms;
  }
}

// Files the entry under the wheel tick of its deadline. Always strictly after
// the tick being processed, so tick() never meets an entry twice in one visit.
void TcpFlowTable::wheel_place(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  const uint32_t idle = now32_ - c.last_seen;
  const uint64_t deadline = now64_ - std::min<uint64_t>(idle, now64_) + timeout_of(c.state);
  const uint64_t g = cfg_.wheel_tick_ms;
  uint64_t t = (deadline + g - 1) / g;
  t = std::clamp<uint64_t>(t, cursor_ + 1, cursor_ + kWheelSlots - 1);
  list_push_back(wheel_head(t), slot);
}

unsigned TcpFlowTable::tick(uint32_t now_ms, unsigned budget) {
  clock(now_ms);
  unsigned removed = 0, visited = 0;
  for (;;) {  // embryonic LRU: oldest first, stop at the first one still fresh
    const uint32_t i = next_of(embryonic_head());
    if (i == embryonic_head() || visited >= budget) break;
    if (now32_ - conns_[i].last_seen < cfg_.embryonic_timeout_ms) break;
    ++visited;
    removed += remove(i, RemoveReason::kEmbryonicTimeout);
  }
  const uint64_t target = now64_ / cfg_.wheel_tick_ms;
  if (target >= cursor_ + kWheelSlots) cursor_ = target - kWheelSlots + 1;
  while (cursor_ <= target) {
    const uint32_t h = wheel_head(cursor_);
    for (uint32_t i = next_of(h); i != h; i = next_of(h)) {
      if (visited >= budget) return removed;
      ++visited;
      const TcpConn& c = conns_[i];
      if (now32_ - c.last_seen >= timeout_of(c.state)) {
        removed += remove(i, expiry_reason(c.state));
      } else {
        list_unlink(i);
        wheel_place(i);
      }
    }
    ++cursor_;
  }
  return removed;
}

// ---- control plane ----

namespace {
TcpConnView make_view(uint32_t slot, const TcpConn& c, const FlowKey& k, uint32_t now) {
  TcpConnView v;
  v.slot = slot;
  v.gen = c.gen;
  v.age_ms = now - c.created;
  v.idle_ms = now - c.last_seen;
  v.key = k;
  v.conn = c;
  return v;
}
}  // namespace

size_t TcpFlowTable::snapshot(uint32_t now_ms, uint32_t start, size_t max, std::vector<TcpConnView>& out,
                              uint32_t* next) const {
  size_t n = 0;
  uint32_t i = start;
  for (; i < bump_ && n < max; ++i) {
    if (conns_[i].state == TcpState::kFree) continue;
    out.push_back(make_view(i, conns_[i], key(i), now_ms));
    ++n;
  }
  if (next) *next = i < bump_ ? i : kNoSlot;
  return n;
}

std::vector<TcpConnView> TcpFlowTable::top_n(uint32_t now_ms, size_t n, TopBy by) const {
  using Item = std::pair<uint64_t, uint32_t>;  // (metric, slot)
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;  // min-heap of the best n
  if (n == 0) return {};
  for (uint32_t i = 0; i < bump_; ++i) {
    const TcpConn& c = conns_[i];
    if (c.state == TcpState::kFree) continue;
    uint64_t m = 0;
    switch (by) {
      case TopBy::kBytes: m = c.stats.bytes[0] + c.stats.bytes[1]; break;
      case TopBy::kPackets: m = c.stats.pkts[0] + c.stats.pkts[1]; break;
      case TopBy::kAge: m = now_ms - c.created; break;
    }
    if (heap.size() < n) heap.push({m, i});
    else if (m > heap.top().first) {
      heap.pop();
      heap.push({m, i});
    }
  }
  std::vector<TcpConnView> out(heap.size());
  for (size_t k = heap.size(); k-- > 0; heap.pop()) {
    const uint32_t i = heap.top().second;
    out[k] = make_view(i, conns_[i], key(i), now_ms);
  }
  return out;
}

}  // namespace vsw
