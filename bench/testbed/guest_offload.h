// vmsim, switch -> guest direction: what a virtio-net guest driver does with
// offload metadata before the packet reaches its stack. Used only when vmsim
// negotiates the guest offloads (--guest-offloads, like QEMU's default
// virtio-net: GUEST_CSUM, GUEST_TSO4/6). The tap expects complete packets,
// so partial checksums are completed and TSO/LRO packets segmented here.
#pragma once
#include <rte_gso.h>
#include <rte_mbuf.h>

#include <cstdint>

namespace tb {

struct OffloadCounters {
  uint64_t csum_completed = 0;
  uint64_t segmented = 0;     // input packets split by software GSO
  uint64_t segments = 0;      // segments produced
  uint64_t drop_bad = 0;      // metadata that does not match the headers
  uint64_t drop_nogso = 0;    // GSO kind we cannot segment (TCP/IPv6 in DPDK 22.11) or no mbufs
};

class GuestOffload {
 public:
  // direct: pool for segment headers; indirect: pool of data-less mbufs.
  GuestOffload(rte_mempool* direct, rte_mempool* indirect);
  // Owns m. Writes up to max_out complete packets to out, returns the count.
  unsigned complete(rte_mbuf* m, rte_mbuf** out, unsigned max_out);
  const OffloadCounters& counters() const { return c_; }

 private:
  rte_gso_ctx ctx_{};
  OffloadCounters c_;
};

}  // namespace tb
