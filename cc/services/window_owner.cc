#include "cc/services/window_owner.h"

#include "cc/checksum.h"
#include "cc/pkt_meta.h"
#include "cc/tcp_seq.h"

namespace vsw::services {

using net::Seq;
namespace tf = net::tcpflag;

namespace {

// The raw window that puts the right edge back where it already was,
// rounded up (rounding down would lose the last partial unit of the scale),
// and never above the packet's own window (an endpoint may shrink its own).
inline uint32_t edge_floor(const WindowSide& s, uint32_t ack, uint16_t raw, uint8_t shift) {
  if (!s.edge_known()) return 0;
  const int32_t room = Seq(s.right_edge) - Seq(ack);
  if (room <= 0) return 0;
  const uint32_t up = (static_cast<uint32_t>(room) + (1u << shift) - 1) >> shift;
  return std::min<uint32_t>(up, raw);
}

inline void record_edge(WindowSide& s, uint32_t ack, uint16_t raw, uint8_t shift) {
  const Seq edge = Seq(ack) + (static_cast<uint32_t>(raw) << shift);
  if (!s.edge_known() || edge > Seq(s.right_edge)) {
    s.right_edge = edge.raw();
    s.flags |= WindowSide::kEdgeKnown;
  }
}

// RFC 7323 2.2: the window of a SYN or SYN-ACK is never scaled.
inline uint8_t field_shift(const WindowSide& s, uint8_t flags) { return (flags & tf::kSyn) ? 0 : s.shift; }

inline net::L4Csum csum_mode(const rte_mbuf* m) {
  const uint64_t f = m->ol_flags;
  return ((f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM || (f & RTE_MBUF_F_TX_TCP_SEG))
             ? net::L4Csum::kOffloaded
             : net::L4Csum::kComplete;
}

// The header bytes belong to this mbuf alone (a held copy shares them).
inline bool writable(const rte_mbuf* m) {
  if (rte_mbuf_refcnt_read(m) != 1 || RTE_MBUF_CLONED(m)) return false;
  return !RTE_MBUF_HAS_EXTBUF(m) || rte_mbuf_ext_refcnt_read(m->shinfo) == 1;
}

}  // namespace

WindowDecision decide_window(const WindowSide& side, uint32_t ack, uint16_t raw, uint8_t flags, uint32_t bound) {
  if (bound == kNoWindowBound || (flags & tf::kRst)) return {raw, WindowRule::kUntouched};
  const uint8_t shift = field_shift(side, flags);
  const uint32_t want = bound >> shift;  // rounded down: never more than the bound
  if (want >= raw) return {raw, WindowRule::kNotBinding};
  const uint32_t floor = (flags & tf::kAck) ? edge_floor(side, ack, raw, shift) : 0;
  if (floor > want) return {static_cast<uint16_t>(floor), WindowRule::kKeptRightEdge};
  return {static_cast<uint16_t>(want), WindowRule::kBounded};
}

void WindowOwner::count(WindowRule r) {
  switch (r) {
    case WindowRule::kUntouched: ++stats_.untouched; break;
    case WindowRule::kNotBinding: ++stats_.not_binding; break;
    case WindowRule::kBounded: ++stats_.bounded; break;
    case WindowRule::kKeptRightEdge: ++stats_.kept_right_edge; break;
    case WindowRule::kNotWritable: ++stats_.not_writable; break;
  }
}

WindowRule WindowOwner::apply(WindowSide& side, net::TcpHdr* th, const WindowProposal& p, net::L4Csum mode) {
  const uint8_t flags = th->flags;
  const uint16_t raw = th->window.get();
  const uint32_t ack = th->ack.get();
  const WindowDecision d = decide_window(side, ack, raw, flags, p.bound());
  if (d.raw != raw) {
    const uint16_t old_word = th->window.raw;
    th->window.set(d.raw);
    if (mode == net::L4Csum::kComplete) th->csum = net::csum_replace16(th->csum, old_word, th->window.raw);
  }
  if ((flags & tf::kAck) && !(flags & tf::kRst)) record_edge(side, ack, d.raw, field_shift(side, flags));
  count(d.rule);
  return d.rule;
}

WindowRule WindowOwner::apply(WindowSide& side, rte_mbuf* m, const WindowProposal& p) {
  const PktMeta& pm = meta(m);
  if (!(pm.flags & net::kFlagTcp) || (pm.flags & net::kFlagMalformed)) {
    count(WindowRule::kNotWritable);
    return WindowRule::kNotWritable;
  }
  auto* th = pkt_at<net::TcpHdr>(m, pm.l4_off);
  if (p.any() && !writable(m)) {
    // Goes out as it is: the peer learns this packet's own edge.
    if ((th->flags & tf::kAck) && !(th->flags & tf::kRst))
      record_edge(side, th->ack.get(), th->window.get(), field_shift(side, th->flags));
    count(WindowRule::kNotWritable);
    return WindowRule::kNotWritable;
  }
  return apply(side, th, p, csum_mode(m));
}

}  // namespace vsw::services
