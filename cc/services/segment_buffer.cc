#include "cc/services/segment_buffer.h"

#include <rte_errno.h>
#include <rte_malloc.h>

#include <algorithm>

#include "cc/services/segment_cow.h"

namespace vsw::services {

namespace {

constexpr unsigned kFreeBatch = 32;  // mbufs handed to rte_pktmbuf_free_bulk at once
constexpr uint64_t kHeldUsMask = (uint64_t(1) << 48) - 1;

unsigned idx(Verdict v) { return static_cast<unsigned>(v); }

// α·free with α stored ×16.
uint64_t threshold(uint8_t alpha16, uint64_t free) { return (uint64_t(alpha16) * free) >> 4; }

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kOk: return "ok";
    case Verdict::kVmBytes: return "vm_bytes";
    case Verdict::kVmMbufs: return "vm_mbufs";
    case Verdict::kThreshold: return "threshold";
    case Verdict::kNoDescriptor: return "no_descriptor";
    case Verdict::kOrder: return "order";
    case Verdict::kBadSegment: return "bad_segment";
    case Verdict::kNoVm: return "no_vm";
    case Verdict::kCopyFailed: return "copy_failed";
  }
  return "?";
}

std::unique_ptr<SegmentBuffer> SegmentBuffer::create(const SegmentBufferConfig& cfg) {
  if (cfg.descriptors == 0 || cfg.descriptors >= kSegNil || cfg.max_vms == 0 || cfg.max_vms == kNoVm) {
    rte_errno = EINVAL;
    return nullptr;
  }
  std::unique_ptr<SegmentBuffer> b(new SegmentBuffer());
  b->desc_ = static_cast<HeldSegment*>(rte_zmalloc_socket("segbuf_desc", sizeof(HeldSegment) * cfg.descriptors,
                                                          RTE_CACHE_LINE_SIZE, cfg.socket));
  if (!b->desc_) {
    rte_errno = ENOMEM;
    return nullptr;
  }
  b->ndesc_ = cfg.descriptors;
  for (uint32_t i = 0; i < cfg.descriptors; ++i) b->desc_[i].next = i + 1 < cfg.descriptors ? i + 1 : kSegNil;
  b->free_head_ = 0;
  b->max_vms_ = cfg.max_vms;
  b->vms_ = std::make_unique<VmPool[]>(cfg.max_vms);
  b->pool_ = rte_pktmbuf_pool_create(cfg.name.c_str(), cfg.pool_mbufs, cfg.pool_cache, cfg.priv_size, cfg.data_room,
                                     cfg.socket);
  if (!b->pool_) return nullptr;  // rte_errno set by DPDK
  return b;
}

SegmentBuffer::~SegmentBuffer() {
  if (desc_) {
    for (uint32_t i = 0; i < ndesc_; ++i)
      if (desc_[i].m) rte_pktmbuf_free(desc_[i].m);
    rte_free(desc_);
  }
  if (pool_ && rte_mempool_in_use_count(pool_) == 0) rte_mempool_free(pool_);
}

bool SegmentBuffer::set_vm_limits(uint16_t vm, const VmLimits& l) {
  if (vm >= max_vms_) return false;
  vms_[vm].limits = l;
  return true;
}

// Admission of what a hold or a grant adds beyond the flow's grant, one unit
// at a time (a unit that adds nothing is not checked): the VM budget first
// (held + granted + this <= B), then the Choudhury–Hahne threshold (the
// flow's held + granted + this <= α·free, free measured before this).
// bytes_granted: a hold whose bytes the grant covers entirely; its extra
// mbufs (the grant's mbuf count was an estimate) meet the budget only, so a
// promise is broken only when the pool physically lacks mbufs.
Verdict SegmentBuffer::admit(const SegFlow& f, const VmPool& p, uint64_t bytes, uint64_t mbufs,
                             bool bytes_granted) const {
  if (bytes && p.held_bytes + p.granted_bytes + bytes > p.limits.bytes) return Verdict::kVmBytes;
  if (mbufs && p.held_mbufs + p.granted_mbufs + mbufs > p.limits.mbufs) return Verdict::kVmMbufs;
  if (bytes_granted) return Verdict::kOk;
  const uint8_t a = alpha_of(f, p);
  if (bytes && uint64_t(f.bytes) + f.granted_bytes + bytes > threshold(a, p.free_bytes())) return Verdict::kThreshold;
  if (mbufs && uint64_t(f.mbufs) + f.granted_mbufs + mbufs > threshold(a, p.free_mbufs())) return Verdict::kThreshold;
  return Verdict::kOk;
}

Verdict SegmentBuffer::hold(SegFlow& f, rte_mbuf* m, net::Seq seq, uint32_t len, uint32_t payload_off,
                            uint64_t now_us, HoldMode mode) {
  if (f.vm >= max_vms_) {
    ++stats_.invalid_vm;
    return Verdict::kNoVm;
  }
  VmPool& p = vms_[f.vm];
  auto refuse = [&p](Verdict v) {
    ++p.c.refused[idx(v)];
    return v;
  };
  if (p.limits.bytes == 0 || p.limits.mbufs == 0) return refuse(Verdict::kNoVm);
  if (len == 0 || uint64_t(payload_off) + len > rte_pktmbuf_pkt_len(m)) return refuse(Verdict::kBadSegment);
  if (f.tail != kSegNil && seq < desc_[f.tail].end()) return refuse(Verdict::kOrder);
  if (free_head_ == kSegNil) return refuse(Verdict::kNoDescriptor);

  rte_mbuf* held = m;
  if (mode == HoldMode::kCopy) {
    held = segment_copy(m, pool_);  // before admission: the copy's mbuf count is what is charged
    if (!held) return refuse(Verdict::kCopyFailed);
  }
  const uint32_t nb = held->nb_segs;
  const uint32_t from_grant_b = std::min(len, f.granted_bytes);
  const uint32_t from_grant_m = std::min(nb, f.granted_mbufs);
  const Verdict v = admit(f, p, len - from_grant_b, nb - from_grant_m, from_grant_b == len);
  if (v != Verdict::kOk) {
    if (held != m) rte_pktmbuf_free(held);
    return refuse(v);
  }
  if (mode == HoldMode::kRef) rte_pktmbuf_refcnt_update(m, 1);

  const uint32_t i = free_head_;
  HeldSegment& s = desc_[i];
  free_head_ = s.next;
  ++in_use_;
  s.m = held;
  s.held_us = now_us & kHeldUsMask;
  s.nb_mbufs = nb;
  s.seq = seq.raw();
  s.len = len;
  s.off = payload_off;
  s.next = kSegNil;
  if (f.tail == kSegNil) f.head = i;
  else desc_[f.tail].next = i;
  f.tail = i;

  f.granted_bytes -= from_grant_b;
  f.granted_mbufs -= from_grant_m;
  p.granted_bytes -= from_grant_b;
  p.granted_mbufs -= from_grant_m;
  f.bytes += len;
  f.mbufs += nb;
  ++f.segs;
  p.held_bytes += len;
  p.held_mbufs += nb;
  ++p.c.held;
  p.c.held_bytes += len;
  p.c.committed_bytes += from_grant_b;
  p.c.copies += mode == HoldMode::kCopy;
  return Verdict::kOk;
}

void SegmentBuffer::free_desc(uint32_t i) {
  desc_[i].m = nullptr;
  desc_[i].next = free_head_;
  free_head_ = i;
  --in_use_;
}

Released SegmentBuffer::release(SegFlow& f, net::Seq ack) {
  Released r;
  if (f.head == kSegNil) return r;
  VmPool& p = vms_[f.vm];
  rte_mbuf* batch[kFreeBatch];
  unsigned nb = 0;
  uint32_t i = f.head;
  while (i != kSegNil) {
    HeldSegment& s = desc_[i];
    if (s.end() <= ack) {
      const uint32_t nx = s.next;
      if (nx != kSegNil) rte_prefetch0(&desc_[nx]);
      ++r.segs;
      r.bytes += s.len;
      r.mbufs += s.nb_mbufs;
      batch[nb++] = s.m;
      if (nb == kFreeBatch) {
        rte_pktmbuf_free_bulk(batch, nb);
        nb = 0;
      }
      free_desc(i);
      i = nx;
      continue;
    }
    if (s.begin() < ack) {  // ack splits s: move the view past the acknowledged bytes
      const uint32_t d = static_cast<uint32_t>(ack - s.begin());
      s.seq += d;
      s.off += d;
      s.len -= d;
      r.bytes += d;
      ++p.c.trims;
    }
    break;
  }
  if (nb) rte_pktmbuf_free_bulk(batch, nb);
  f.head = i;
  if (i == kSegNil) f.tail = kSegNil;
  f.bytes -= r.bytes;
  f.mbufs -= r.mbufs;
  f.segs -= r.segs;
  p.held_bytes -= r.bytes;
  p.held_mbufs -= r.mbufs;
  p.c.released += r.segs;
  p.c.released_bytes += r.bytes;
  return r;
}

Released SegmentBuffer::drop_flow(SegFlow& f) {
  Released r;
  if (f.vm >= max_vms_) return r;
  VmPool& p = vms_[f.vm];
  for (uint32_t i = f.head; i != kSegNil;) {
    const uint32_t nx = desc_[i].next;
    ++r.segs;
    r.bytes += desc_[i].len;
    r.mbufs += desc_[i].nb_mbufs;
    rte_pktmbuf_free(desc_[i].m);
    free_desc(i);
    i = nx;
  }
  p.held_bytes -= r.bytes;
  p.held_mbufs -= r.mbufs;
  p.c.dropped += r.segs;
  p.c.dropped_bytes += r.bytes;
  cancel(f, f.granted_bytes, f.granted_mbufs);
  f.head = f.tail = kSegNil;
  f.bytes = f.mbufs = f.segs = 0;
  return r;
}

const HeldSegment* SegmentBuffer::find(const SegFlow& f, net::Seq s) const {
  if (f.head == kSegNil || s >= desc_[f.tail].end()) return nullptr;
  for (uint32_t i = f.head; i != kSegNil; i = desc_[i].next) {
    const HeldSegment& d = desc_[i];
    if (s < d.begin()) return nullptr;  // before the head, or in a gap
    if (s < d.end()) return &d;
  }
  return nullptr;
}

Verdict SegmentBuffer::reserve(SegFlow& f, uint32_t bytes, uint32_t mbufs) {
  if (f.vm >= max_vms_) {
    ++stats_.invalid_vm;
    return Verdict::kNoVm;
  }
  VmPool& p = vms_[f.vm];
  Verdict v = (p.limits.bytes == 0 || p.limits.mbufs == 0) ? Verdict::kNoVm : admit(f, p, bytes, mbufs, false);
  if (v != Verdict::kOk) {
    ++p.c.grant_refused[idx(v)];
    return v;
  }
  f.granted_bytes += bytes;
  f.granted_mbufs += mbufs;
  p.granted_bytes += bytes;
  p.granted_mbufs += mbufs;
  ++p.c.grants;
  p.c.granted_bytes += bytes;
  return Verdict::kOk;
}

void SegmentBuffer::cancel(SegFlow& f, uint32_t bytes, uint32_t mbufs) {
  if (f.vm >= max_vms_) return;
  VmPool& p = vms_[f.vm];
  bytes = std::min(bytes, f.granted_bytes);
  mbufs = std::min(mbufs, f.granted_mbufs);
  f.granted_bytes -= bytes;
  f.granted_mbufs -= mbufs;
  p.granted_bytes -= bytes;
  p.granted_mbufs -= mbufs;
  p.c.cancelled_bytes += bytes;
}

Room SegmentBuffer::room(const SegFlow& f) const {
  if (f.vm >= max_vms_) return {};
  const VmPool& p = vms_[f.vm];
  const uint8_t a = alpha_of(f, p);
  const uint64_t fb = p.free_bytes(), fm = p.free_mbufs();
  return Room{std::min(fb, VmPool::sat_sub(threshold(a, fb), uint64_t(f.bytes) + f.granted_bytes)),
              std::min(fm, VmPool::sat_sub(threshold(a, fm), uint64_t(f.mbufs) + f.granted_mbufs))};
}

rte_mbuf* SegmentBuffer::cow_headers(rte_mbuf* m, uint32_t hdr_len) {
  CowResult how;
  rte_mbuf* out = segment_cow_headers(m, hdr_len, pool_, &how);
  switch (how) {
    case CowResult::kPrivate: ++stats_.cow_private; break;
    case CowResult::kHeaderCopy: ++stats_.cow_copies; break;
    case CowResult::kFullCopy: ++stats_.cow_full_copies; break;
    case CowResult::kFailed: ++stats_.cow_failed; break;
  }
  return out;
}

}  // namespace vsw::services
