// Copy-on-write and copies for mbufs the segment buffer may share with the
// pipeline. A held segment (refcnt+1) and the packet that continues down the
// pipeline are the same bytes: a stage that rewrites headers of a shared mbuf
// would change the held copy too. These helpers give the rewriter its own
// header bytes. Ownership: cc/services/README.md ("Segment buffer").
#pragma once
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>

namespace vsw::services {

// True if another holder could see a write to the first hdr_len bytes of m:
// an mbuf holding some of them is indirect / external, or has refcnt > 1.
bool segment_headers_shared(const rte_mbuf* m, uint32_t hdr_len);

enum class CowResult : uint8_t {
  kPrivate,     // not shared: m returned as is
  kHeaderCopy,  // new direct mbuf with the headers, chained to indirect references to the rest
  kFullCopy,    // headers not within m's first mbuf: the whole packet copied
  kFailed,      // mp empty, its data room < hdr_len, or its private area smaller than m's
};

// Gives the caller an mbuf whose first hdr_len bytes (clamped to the packet)
// it may rewrite without anyone else seeing it.
// - kPrivate: returns m.
// - kHeaderCopy / kFullCopy: returns a new mbuf from mp (mbuf fields,
//   dynfields and private area copied: PktMeta follows); the caller's
//   reference to m is released (rte_pktmbuf_free(m): the other holders keep
//   theirs, and the original bytes never change).
// - kFailed: returns null; m untouched and still the caller's.
// The payload is not copied in kHeaderCopy: it is referenced through
// rte_pktmbuf_clone mbufs from mp, so payload bytes stay shared (read-only).
rte_mbuf* segment_cow_headers(rte_mbuf* m, uint32_t hdr_len, rte_mempool* mp, CowResult* how = nullptr);

// A deep copy of m from mp: data, mbuf fields, dynfields and private area.
// Null if mp is empty or its private area is smaller than m's. m is untouched.
rte_mbuf* segment_copy(const rte_mbuf* m, rte_mempool* mp);

}  // namespace vsw::services
