// Segment buffer: the TCP segments a stage holds (flood's FIFO, translate's
// copies for RTOmin). Per-flow FIFOs in sequence order over one per-PMD pool
// of descriptors, per-VM budgets in bytes and mbufs with Choudhury–Hahne
// dynamic thresholds, a grant aggregate (room promised in advance), and its
// own mempool for the copies it makes. Single writer: one PMD owns an
// instance and every SegFlow it serves; nothing here is atomic.
// Ownership rules and design: cc/services/README.md ("Segment buffer").
#pragma once
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cc/tcp_seq.h"

namespace vsw::services {

inline constexpr uint32_t kSegNil = UINT32_MAX;
inline constexpr uint16_t kNoVm = UINT16_MAX;
inline constexpr uint8_t kAlphaOne = 16;  // α is stored ×16: 16 = 1, 32 = 2, 8 = 1/2

// Per-flow state, kept in the stage's flow slot (32 bytes). Indices into the
// buffer's descriptor pool, never pointers: a slot may be moved (a table
// resize); the moved copy is the flow from then on, the old one is dead.
struct SegFlow {
  uint32_t head = kSegNil, tail = kSegNil;      // oldest / newest held segment
  uint32_t bytes = 0;                           // held payload bytes (Q_i)
  uint32_t mbufs = 0;                           // mbufs pinned by held segments
  uint32_t granted_bytes = 0, granted_mbufs = 0;  // outstanding grant of this flow
  uint32_t segs = 0;                            // held segments
  uint16_t vm = kNoVm;                          // VM pool charged
  uint8_t alpha16 = 0;                          // this flow's α ×16; 0: the VM's default
  uint8_t pad_ = 0;
  bool empty() const { return head == kSegNil; }
};
static_assert(sizeof(SegFlow) == 32, "fits a flow slot");

// One held segment: a view (seq, len, payload offset) over an mbuf the buffer
// holds one reference to. Trimming moves the view; the mbuf is never written.
struct HeldSegment {
  rte_mbuf* m;                 // the held reference (null: descriptor free)
  uint64_t held_us : 48;       // caller's clock (µs) at hold(), modulo 2^48
  uint64_t nb_mbufs : 16;      // mbufs charged to the VM (m's nb_segs at hold)
  uint32_t seq;                // first held payload byte
  uint32_t len;                // held payload bytes (> 0)
  uint32_t off;                // offset of byte `seq` from the packet start (rte_pktmbuf_read(m, off, ...))
  uint32_t next;               // next segment of the flow, or kSegNil
  net::Seq begin() const { return net::Seq(seq); }
  net::Seq end() const { return net::Seq(seq) + len; }
};
static_assert(sizeof(HeldSegment) == 32, "two descriptors per cache line");

// How hold() takes its reference.
enum class HoldMode : uint8_t {
  kRef,   // refcnt+1 on every mbuf of the chain; the caller keeps its reference (default)
  kTake,  // the caller's reference becomes the held one (a stage that consumes the packet)
  kCopy,  // a deep copy into the buffer's own mempool; the caller keeps m, the ingress pool is not pinned
};

// Outcome of hold() and reserve(). Anything but kOk changed nothing: the
// caller still owns m and forwards it (or gives no grant). Counted per VM.
enum class Verdict : uint8_t {
  kOk,
  kVmBytes,      // the VM's byte budget (held + granted + this) would be exceeded
  kVmMbufs,      // the VM's mbuf budget would be exceeded
  kThreshold,    // Choudhury–Hahne: the flow would hold more than α × (free pool)
  kNoDescriptor, // the per-PMD descriptor pool is exhausted (size it >= sum of VM mbuf budgets)
  kOrder,        // seq before the end of the flow's newest segment (overlap, old data)
  kBadSegment,   // len 0, or payload_off + len beyond the packet
  kNoVm,         // the flow's VM has no budget configured
  kCopyFailed,   // kCopy: own mempool empty, or its private area smaller than m's
};
inline constexpr unsigned kVerdictCount = 9;
const char* verdict_name(Verdict v);

struct VmLimits {
  uint64_t bytes = 0;             // B in bytes (0: nothing admitted)
  uint32_t mbufs = 0;             // B in mbufs
  uint8_t alpha16 = kAlphaOne;    // default α ×16 of the VM's flows
};

struct VmCounters {
  uint64_t held = 0, held_bytes = 0;      // segments / bytes admitted
  uint64_t committed_bytes = 0;           // of held_bytes: covered by a grant
  uint64_t released = 0, released_bytes = 0;  // freed or trimmed by ACKs
  uint64_t trims = 0;                     // partially acknowledged head segments
  uint64_t dropped = 0, dropped_bytes = 0;    // freed unacknowledged by drop_flow()
  uint64_t grants = 0, granted_bytes = 0, cancelled_bytes = 0;
  uint64_t copies = 0;                    // kCopy holds
  uint64_t refused[kVerdictCount] = {};   // hold() refusals by Verdict
  uint64_t grant_refused[kVerdictCount] = {};  // reserve() refusals by Verdict
};

// A VM's budget on this PMD. held + granted <= limits (in both units) holds
// after every call unless set_vm_limits() lowered a limit: then nothing new
// is admitted or granted until it holds again; nothing admitted is dropped.
struct VmPool {
  VmLimits limits;
  uint64_t held_bytes = 0, granted_bytes = 0;
  uint64_t held_mbufs = 0, granted_mbufs = 0;
  VmCounters c;
  uint64_t free_bytes() const { return sat_sub(limits.bytes, held_bytes + granted_bytes); }
  uint64_t free_mbufs() const { return sat_sub(limits.mbufs, held_mbufs + granted_mbufs); }
  static uint64_t sat_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
};

struct Released {
  uint32_t segs = 0;   // descriptors freed (whole segments)
  uint32_t bytes = 0;  // payload bytes no longer held (whole + trimmed)
  uint32_t mbufs = 0;  // mbufs no longer charged
};

// What a flow may still add (held + granted) now, in both units: the smaller
// of the VM's free budget and the flow's threshold α·free minus its own
// held + granted.
struct Room {
  uint64_t bytes = 0, mbufs = 0;
};

struct SegmentBufferConfig {
  std::string name = "segbuf";   // own mempool name, unique in the process (< RTE_MEMPOOL_NAMESIZE)
  uint32_t descriptors = 65536;  // segments held at once on this PMD, all VMs
  uint32_t pool_mbufs = 4095;    // own mempool: kCopy holds and copy-on-write headers
  uint32_t pool_cache = 64;
  uint16_t data_room = RTE_MBUF_DEFAULT_BUF_SIZE;
  uint16_t priv_size = 0;        // must be >= the pipeline's (kPktMetaPrivSize) for copies to carry PktMeta
  uint16_t max_vms = 64;         // VM ids 0 .. max_vms-1
  int socket = SOCKET_ID_ANY;
};

struct SegmentBufferStats {
  uint64_t cow_copies = 0;       // cow_headers(): header copy + chained payload references
  uint64_t cow_full_copies = 0;  // cow_headers(): whole-packet copy (headers not in the first mbuf)
  uint64_t cow_private = 0;      // cow_headers(): m was not shared, returned as is
  uint64_t cow_failed = 0;       // cow_headers(): no mbuf / private area too small; m untouched
  uint64_t invalid_vm = 0;       // hold()/reserve() of a flow whose vm >= max_vms (kNoVm, no VM to count it)
};

class SegmentBuffer {
 public:
  // Null (rte_errno set) if the mempool or the descriptor array cannot be allocated.
  static std::unique_ptr<SegmentBuffer> create(const SegmentBufferConfig& cfg);
  // Destroying frees every held reference. Destroy only after the PMD stopped
  // and its tx queues drained; if mbufs of the own pool are still out (copies
  // handed to the pipeline), the pool is left allocated rather than freed under them.
  ~SegmentBuffer();
  SegmentBuffer(const SegmentBuffer&) = delete;
  SegmentBuffer& operator=(const SegmentBuffer&) = delete;

  // ---- VM budgets (control path; between PMD iterations only) ----
  bool set_vm_limits(uint16_t vm, const VmLimits& l);  // false: vm >= max_vms
  const VmPool& vm(uint16_t vm) const { return vms_[vm]; }
  uint16_t max_vms() const { return max_vms_; }

  // ---- flows ----
  // A fresh flow charged to `vm`. Never call on a flow that still holds
  // segments or grants: drop_flow() it first (slot remove hook).
  static void init_flow(SegFlow& f, uint16_t vm, uint8_t alpha16 = 0) {
    f = SegFlow{};
    f.vm = vm;
    f.alpha16 = alpha16;
  }

  // Holds bytes [seq, seq+len) of m, whose payload byte `seq` is at packet
  // offset payload_off, at the flow's tail. Segments go in sequence order
  // (seq >= the newest segment's end; gaps allowed). The flow's outstanding
  // grant covers it first (commit: no threshold check for that part); the
  // rest must pass the VM budget and the flow's threshold. O(1).
  // On kOk the buffer owns one reference to m (or to its copy) until the
  // segment is released; on refusal nothing changed (the caller forwards m).
  Verdict hold(SegFlow& f, rte_mbuf* m, net::Seq seq, uint32_t len, uint32_t payload_off, uint64_t now_us,
               HoldMode mode = HoldMode::kRef);

  // Cumulative ACK: frees every segment ending at or before ack and trims a
  // segment that ack splits (its view moves; the mbuf is untouched, still
  // charged until the whole segment goes). Old ACKs release nothing.
  // Amortized O(1) per segment freed.
  Released release(SegFlow& f, net::Seq ack);
  // Frees everything the flow holds and cancels its grant (RST, close, slot removal).
  Released drop_flow(SegFlow& f);

  // ---- lookup (retransmission) ----
  const HeldSegment* front(const SegFlow& f) const { return f.head == kSegNil ? nullptr : &desc_[f.head]; }
  const HeldSegment* next(const HeldSegment& s) const { return s.next == kSegNil ? nullptr : &desc_[s.next]; }
  // The segment whose view covers s, or null. Walks from the head: O(1) for
  // snd_una (the usual retransmission), O(segments before s) otherwise.
  const HeldSegment* find(const SegFlow& f, net::Seq s) const;
  // One more reference to the held mbuf (refcnt+1 on its chain), for a
  // caller that transmits the held packet as is (the first send of a kTake
  // segment): the transmit path owns and frees it; the held reference stays.
  // Retransmit through the packet builder (HeldPayload{s.m, s.off, s.len}):
  // egress fix-ups may have changed a sent mbuf's ol_flags (rte_gso clears
  // TSO), and a trimmed view no longer starts at the packet's payload.
  static rte_mbuf* share(const HeldSegment& s) {
    rte_pktmbuf_refcnt_update(s.m, 1);
    return s.m;
  }
  // Batches (the data or ACKs of up to 32 flows): prefetch() every flow's
  // descriptors (hold links at the tail, release starts at the head), then
  // prefetch_mbuf() (release frees the head's mbuf: both its cache lines),
  // then the operations. The flow slots themselves are the caller's to prefetch.
  void prefetch(const SegFlow& f) const {
    if (f.head != kSegNil) {
      rte_prefetch0(&desc_[f.head]);
      rte_prefetch0(&desc_[f.tail]);
    }
  }
  void prefetch_mbuf(const SegFlow& f) const {
    if (f.head != kSegNil) {
      const rte_mbuf* m = desc_[f.head].m;
      rte_prefetch0(m);
      rte_prefetch0(reinterpret_cast<const char*>(m) + RTE_CACHE_LINE_MIN_SIZE);
    }
  }

  // ---- grants: room promised in advance (e.g. a window toward the guest) ----
  // All or nothing: reserves bytes and mbufs for the flow if the VM budget
  // (held + granted + this) and the flow's threshold allow it. A later hold()
  // of the flow consumes the grant first (commit).
  Verdict reserve(SegFlow& f, uint32_t bytes, uint32_t mbufs);
  // Returns up to that much of the flow's grant (promise withdrawn, or
  // fulfilled by data the caller forwarded instead of holding). Clamped.
  void cancel(SegFlow& f, uint32_t bytes, uint32_t mbufs);
  Room room(const SegFlow& f) const;

  // ---- copy-on-write (see segment_cow.h) ----
  // Before rewriting the first hdr_len bytes of m: m itself if no mbuf
  // holding those bytes is shared, else a private copy of the headers from
  // the own pool chained to references to the payload, and the caller's
  // reference to m is released. Null on failure: m untouched, still the caller's.
  rte_mbuf* cow_headers(rte_mbuf* m, uint32_t hdr_len);

  rte_mempool* pool() const { return pool_; }
  uint32_t descriptors() const { return ndesc_; }
  uint32_t descriptors_in_use() const { return in_use_; }
  const SegmentBufferStats& stats() const { return stats_; }

 private:
  SegmentBuffer() = default;
  uint8_t alpha_of(const SegFlow& f, const VmPool& p) const { return f.alpha16 ? f.alpha16 : p.limits.alpha16; }
  Verdict admit(const SegFlow& f, const VmPool& p, uint64_t bytes, uint64_t mbufs, bool granted_bytes) const;
  void free_desc(uint32_t i);

  HeldSegment* desc_ = nullptr;
  uint32_t ndesc_ = 0, free_head_ = kSegNil, in_use_ = 0;
  std::unique_ptr<VmPool[]> vms_;
  uint16_t max_vms_ = 0;
  rte_mempool* pool_ = nullptr;
  SegmentBufferStats stats_;
};

}  // namespace vsw::services
