// TcpFlowTable: the per-packet part. Finds or creates the connection and
// advances the per-direction state every TCP stage relies on.
//
// Mid-stream connections (open before the switch saw them, see the monitor
// poster, section 3) are created from any data/ACK packet and flagged; what
// the handshake would have told us is inferred: the MSS from the largest
// segment seen, the window-scale as a lower bound proven by data in flight
// beyond the unscaled window, SACK/timestamps from their first use.
#include <algorithm>
#include <cstring>

#include "flowtable/tcp_flow_table.h"

namespace vsw {

using net::Seq;
using namespace dirflag;

void TcpFlowTable::set_state(uint32_t slot, TcpState st, TrackResult& r) {
  TcpConn& c = conns_[slot];
  if (c.state == st) return;
  const bool was_emb = tcp_state_embryonic(c.state);
  c.state = st;
  r.events |= kEvStateChange;
  if (tcp_state_embryonic(st)) return;  // embryonic -> embryonic: stays in the LRU
  if (was_emb) --embryonic_;
  // Leaving the LRU, or a shorter timeout (FIN, RST): file under the new deadline.
  list_unlink(slot);
  c.last_seen = now32_;
  wheel_place(slot);
}

// The SYN's options fix what the connection may use; the SYN-ACK settles it,
// since an option may appear there only if the SYN carried it (RFC 7323, 2018).
void TcpFlowTable::on_syn(TcpConn& c, const TcpSegment& s) {
  TcpDirState& S = c.sender(s.dir);
  TcpDirState& R = c.receiver(s.dir);
  const net::TcpOptions& o = s.opts;
  S.flags |= kSynSeen | kIsnKnown | kSeqValid;
  S.isn = s.seq;
  S.next_seq = s.seq + s.seq_len();
  // Without the option the peer must assume the RFC 9293 default.
  S.mss = o.has(net::kOptMss) ? o.mss : (c.key.is_v4() ? 536 : 1220);
  S.flags |= kMssKnown;
  S.flags &= ~(kWsOffered | kSackOffered | kTsOffered);
  if (o.has(net::kOptWscale)) {
    S.flags |= kWsOffered;
    S.wscale = o.wscale;
  }
  if (o.has(net::kOptSackPerm)) S.flags |= kSackOffered;
  if (o.has(net::kOptTs)) S.flags |= kTsOffered;
  if (!s.has_ack()) return;

  const bool peer_syn = R.has(kSynSeen);
  if (S.has(kWsOffered) && (!peer_syn || R.has(kWsOffered))) {
    S.flags |= kWsKnown;
    if (peer_syn) R.flags |= kWsKnown;  // else R's shift stays unknown (lower bound 0)
  } else {
    S.wscale = R.wscale = 0;
    S.flags |= kWsKnown;
    R.flags |= kWsKnown;
  }
  const bool sack = S.has(kSackOffered) && (!peer_syn || R.has(kSackOffered));
  const bool ts = S.has(kTsOffered) && (!peer_syn || R.has(kTsOffered));
  const uint16_t ok = (sack ? kSackOk : 0) | (ts ? kTsOk : 0);
  S.flags = static_cast<uint16_t>((S.flags & ~(kSackOk | kTsOk)) | ok);
  R.flags = static_cast<uint16_t>((R.flags & ~(kSackOk | kTsOk)) | ok);
}

// A RST is acted on in the handshake, or if it lies within the receiver's
// window of the sender's next sequence (a loose RFC 5961 check): a blind RST
// must not be able to wipe the state of a live connection.
bool TcpFlowTable::rst_acceptable(const TcpConn& c, const TcpSegment& s) const {
  if (tcp_state_embryonic(c.state)) return true;
  const TcpDirState& S = c.sender(s.dir);
  const TcpDirState& R = c.receiver(s.dir);
  if (!S.has(kSeqValid) || !R.has(kWinValid)) return true;
  const int64_t d = Seq(s.seq) - S.next();
  const int64_t w = std::max<int64_t>(R.win, 65535);
  return d >= -w && d <= w;
}

namespace {

// Raises R's window-scale lower bound if S has more data in flight than R's
// raw window could allow at the current shift.
bool infer_wscale(const TcpDirState& S, TcpDirState& R) {
  if (R.has(kWsKnown) || R.has(kSynSeen) || !R.has(kWinValid) || !R.has(kAckValid) || !S.has(kSeqValid))
    return false;
  const int32_t flight = S.next() - R.acked();
  if (flight <= 0 || R.win_raw == 0) return false;
  uint8_t ws = R.wscale;
  while (ws < net::tcpopt::kMaxWscale && (uint64_t(R.win_raw) << ws) < uint64_t(flight)) ++ws;
  if (ws == R.wscale) return false;
  R.wscale = ws;
  R.win = uint32_t(R.win_raw) << ws;
  return true;
}

}  // namespace

[[gnu::always_inline]] inline void TcpFlowTable::update(uint32_t slot, const TcpSegment& s, TrackResult& r) {
  TcpConn& c = conns_[slot];
  TcpDirState& S = c.sender(s.dir);
  TcpDirState& R = c.receiver(s.dir);
  TcpConnStats& st = c.stats;
  ++st.pkts[s.dir];
  st.bytes[s.dir] += s.payload_len;
  c.last_seen = now32_;
  if (tcp_state_embryonic(c.state)) {  // LRU: most recently seen at the tail
    list_unlink(slot);
    list_push_back(embryonic_head(), slot);
  }
  const bool first_from_sender = !S.has(kSeen);
  S.flags |= kSeen;

  if (s.rst()) {
    if (!rst_acceptable(c, s)) {
      ++stats_.rst_ignored;
      r.events |= kEvRstIgnored;
      return;
    }
    S.flags |= kRstSent;
    set_state(slot, TcpState::kReset, r);
    return;
  }

  // SYN options only while the handshake is open; a SYN inside an
  // established connection changes nothing.
  const bool handshake_syn = s.syn() && tcp_state_embryonic(c.state);
  if (handshake_syn) on_syn(c, s);

  if (s.has_ack()) {
    if (!S.has(kAckValid)) {
      S.ack = s.ack;
      S.flags |= kAckValid;
    } else if (Seq(s.ack) > S.acked()) {
      S.ack = s.ack;
    } else if (s.ack == S.ack && s.seq_len() == 0 && s.window == S.win_raw && R.has(kSeqValid) &&
               R.next() > Seq(s.ack)) {
      r.events |= kEvDupAck;
    }
    if (R.has(kSeqValid) && Seq(s.ack) > R.next()) r.events |= kEvAckUnseen;
  }

  if (!handshake_syn) {
    const Seq end = Seq(s.seq) + s.seq_len();
    if (!S.has(kSeqValid)) {
      S.next_seq = end.raw();
      S.isn = s.seq;  // not the real ISN (kIsnKnown stays clear)
      S.flags |= kSeqValid;
    } else {
      if (s.seq_len() > 0) {
        if (end <= S.next()) r.events |= kEvSeqOld;
        else if (Seq(s.seq) > S.next()) r.events |= kEvSeqGap;
      }
      if (end > S.next()) S.next_seq = end.raw();
    }
  }

  S.win_raw = s.window;
  S.win = s.syn() ? s.window : uint32_t(s.window) << S.wscale;  // SYN windows are never scaled
  S.flags |= kWinValid;

  const net::TcpOptions& o = s.opts;
  if (o.has(net::kOptTs)) {
    S.ts_val = o.ts_val;
    S.ts_ecr = o.ts_ecr;
    if (!S.has(kTsOk) && !handshake_syn) S.flags |= kTsOk;
  }
  if (o.has(net::kOptSack)) S.flags |= kSackOk;
  if (!S.has(kMssKnown)) S.mss = std::max(S.mss, s.seg_size);

  const bool ws_fwd = infer_wscale(S, R);
  const bool ws_rev = infer_wscale(R, S);
  if (ws_fwd || ws_rev) r.events |= kEvWsInferred;

  TcpState next = c.state;
  switch (c.state) {
    case TcpState::kSynSent:
      if (s.syn() && s.dir != c.initiator()) next = TcpState::kSynRecv;  // SYN-ACK or simultaneous open
      break;
    case TcpState::kSynRecv:
      if (!s.syn() && s.has_ack() && s.dir == c.initiator()) next = TcpState::kEstablished;
      break;
    case TcpState::kMidOneWay:
      if (first_from_sender && c.d[0].has(kSeen) && c.d[1].has(kSeen)) next = TcpState::kEstablished;
      break;
    default:
      break;
  }
  if (s.fin()) {
    S.flags |= kFinSeen;
    next = R.has(kFinSeen) ? TcpState::kClosed : TcpState::kFinWait;
  }
  // Reset is final; a late FIN must not revive it (only a new SYN recycles the tuple).
  if (c.state != TcpState::kReset && next != c.state) set_state(slot, next, r);
}

[[gnu::always_inline]] inline TrackResult TcpFlowTable::track_one(const TcpSegment& s, uint32_t slot) {
  TrackResult r{kNoSlot, s.dir, 0, 0};
  if (slot >= cap_ || conns_[slot].state == TcpState::kFree || !key_eq(slot, s.key))
    slot = find(s.key, s.hash);

  // A fresh SYN on the tuple of a connection that is closing (or was only
  // half seen) starts a new connection: ports get reused quickly.
  if (slot != kNoSlot && s.syn() && !s.has_ack()) {
    const TcpConn& c = conns_[slot];
    const TcpDirState& snd = c.sender(s.dir);
    const bool same_syn = snd.has(kSynSeen) && snd.isn == s.seq;
    if ((tcp_state_closing(c.state) || c.state == TcpState::kMidOneWay) && !same_syn) {
      remove(slot, RemoveReason::kRecycled);
      slot = kNoSlot;
      r.events |= kEvRecycled;
    }
  }

  if (slot == kNoSlot) {
    if (s.rst() || (s.fin() && !s.syn()) || (!s.syn() && !cfg_.create_midstream)) {
      ++stats_.untracked;
      r.events |= kEvUntracked;
      return r;
    }
    slot = alloc(s.key, s.hash);
    if (slot == kNoSlot) {
      ++stats_.refused_full;
      r.events |= kEvRefused;
      return r;
    }
    TcpConn& c = conns_[slot];
    const uint32_t gen = c.gen;
    std::memset(static_cast<void*>(&c), 0, sizeof(c));
    c.gen = gen;
    set_key(slot, s.key);
    c.created = c.last_seen = now32_;
    uint8_t initiator;
    if (s.syn() && !s.has_ack()) {
      c.state = TcpState::kSynSent;
      initiator = s.dir;
    } else if (s.syn()) {
      c.state = TcpState::kSynRecv;
      c.flags |= connflag::kSynAckFirst;
      initiator = s.dir ^ 1;
      ++stats_.created_synack;
    } else {
      // Clients usually sit on the higher (ephemeral) port.
      c.state = TcpState::kMidOneWay;
      c.flags |= connflag::kMidstream | connflag::kInitiatorGuessed;
      initiator = s.key.port[1] > s.key.port[0] ? 1 : 0;
      r.events |= kEvMidstream;
      ++stats_.created_midstream;
    }
    if (initiator) c.flags |= connflag::kInitiator1;
    ++live_;
    ++embryonic_;
    list_push_back(embryonic_head(), slot);
    ++stats_.created;
    r.events |= kEvCreated;
  }
  r.slot = slot;
  update(slot, s, r);
  return r;
}

TrackResult TcpFlowTable::track(const TcpSegment& s, uint32_t now_ms, uint32_t slot) {
  clock(now_ms);
  return track_one(s, slot);
}

// Here, next to track_one and update, so that the per-packet path inlines
// into the batch loop (no calls per packet; the clock advances once per batch).
void TcpFlowTable::track_bulk(const TcpSegment* segs, unsigned n, uint32_t now_ms, TrackResult* out) {
  clock(now_ms);
  uint32_t slots[kBulk];
  for (unsigned base = 0; base < n; base += kBulk) {
    const unsigned m = std::min(kBulk, n - base);
    candidates(segs + base, m, slots);  // prefetched; track_one compares (one pass over the entries, not two)
    for (unsigned i = 0; i < m; ++i) out[base + i] = track_one(segs[base + i], slots[i]);
  }
}

}  // namespace vsw
