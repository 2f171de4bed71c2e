#include "cc/services/segment_cow.h"

#include <rte_errno.h>

#include <algorithm>
#include <cstring>

namespace vsw::services {

namespace {

bool mbuf_shared(const rte_mbuf* s) { return !RTE_MBUF_DIRECT(s) || rte_mbuf_refcnt_read(s) > 1; }

// The private area (PktMeta in the pipeline) travels with the packet; a pool
// whose area is smaller would cut it, so copies from it are refused.
bool priv_fits(const rte_mbuf* m, const rte_mempool* mp) {
  return rte_pktmbuf_priv_size(const_cast<rte_mempool*>(mp)) >= rte_pktmbuf_priv_size(m->pool);
}

void copy_priv(rte_mbuf* dst, const rte_mbuf* src) {
  const uint16_t n = rte_pktmbuf_priv_size(src->pool);
  if (n) std::memcpy(rte_mbuf_to_priv(dst), rte_mbuf_to_priv(const_cast<rte_mbuf*>(src)), n);
}

// Packet-level fields of a new head mbuf: what offloads, the L2 decision and
// the stages read. The new head is direct whatever src was.
void copy_packet_fields(rte_mbuf* dst, const rte_mbuf* src) {
  dst->port = src->port;
  dst->ol_flags = src->ol_flags & ~(RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL);
  dst->packet_type = src->packet_type;
  dst->tx_offload = src->tx_offload;
  dst->vlan_tci = src->vlan_tci;
  dst->vlan_tci_outer = src->vlan_tci_outer;
  dst->hash = src->hash;
  rte_mbuf_dynfield_copy(dst, src);
  copy_priv(dst, src);
}

// References to bytes [skip, pkt_len) of m as indirect mbufs from mp (skip
// lies within m's first mbuf). Null if mp runs out.
rte_mbuf* reference_tail(rte_mbuf* m, uint32_t skip, rte_mempool* mp) {
  rte_mbuf* r = rte_pktmbuf_clone(m, mp);
  if (!r) return nullptr;
  if (skip < r->data_len) {
    rte_pktmbuf_adj(r, static_cast<uint16_t>(skip));  // moves the clone's view only
    return r;
  }
  // The first mbuf held nothing but headers: unlink its reference.
  rte_mbuf* rest = r->next;
  rest->nb_segs = static_cast<uint16_t>(r->nb_segs - 1);
  rest->pkt_len = r->pkt_len - r->data_len;
  r->next = nullptr;
  r->nb_segs = 1;
  r->pkt_len = r->data_len;
  rte_pktmbuf_free(r);
  return rest;
}

}  // namespace

bool segment_headers_shared(const rte_mbuf* m, uint32_t hdr_len) {
  uint32_t seen = 0;
  for (const rte_mbuf* s = m; s; s = s->next) {
    if (mbuf_shared(s)) return true;
    seen += s->data_len;
    if (seen >= hdr_len) break;
  }
  return false;
}

rte_mbuf* segment_copy(const rte_mbuf* m, rte_mempool* mp) {
  if (!priv_fits(m, mp)) {
    rte_errno = EINVAL;
    return nullptr;
  }
  rte_mbuf* c = rte_pktmbuf_copy(m, mp, 0, UINT32_MAX);
  if (!c) return nullptr;
  copy_packet_fields(c, m);
  return c;
}

rte_mbuf* segment_cow_headers(rte_mbuf* m, uint32_t hdr_len, rte_mempool* mp, CowResult* how) {
  auto result = [how](CowResult r, rte_mbuf* out) {
    if (how) *how = r;
    return out;
  };
  hdr_len = std::min(hdr_len, rte_pktmbuf_pkt_len(m));
  if (!segment_headers_shared(m, hdr_len)) return result(CowResult::kPrivate, m);
  if (!priv_fits(m, mp)) return result(CowResult::kFailed, nullptr);
  if (hdr_len > rte_pktmbuf_data_len(m)) {
    rte_mbuf* c = segment_copy(m, mp);
    if (!c) return result(CowResult::kFailed, nullptr);
    rte_pktmbuf_free(m);
    return result(CowResult::kFullCopy, c);
  }
  rte_mbuf* h = rte_pktmbuf_alloc(mp);
  if (!h) return result(CowResult::kFailed, nullptr);
  if (rte_pktmbuf_tailroom(h) < hdr_len) {
    rte_pktmbuf_free(h);
    return result(CowResult::kFailed, nullptr);
  }
  std::memcpy(rte_pktmbuf_append(h, static_cast<uint16_t>(hdr_len)), rte_pktmbuf_mtod(m, const void*), hdr_len);
  copy_packet_fields(h, m);
  if (rte_pktmbuf_pkt_len(m) > hdr_len) {
    rte_mbuf* tail = reference_tail(m, hdr_len, mp);
    if (!tail || rte_pktmbuf_chain(h, tail) != 0) {
      rte_pktmbuf_free(h);
      if (tail) rte_pktmbuf_free(tail);
      return result(CowResult::kFailed, nullptr);
    }
  }
  rte_pktmbuf_free(m);  // the caller's reference; the tail's references keep the bytes
  return result(CowResult::kHeaderCopy, h);
}

}  // namespace vsw::services
