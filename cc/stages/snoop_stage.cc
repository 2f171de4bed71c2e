// snoop data path (see snoop_stage.h and docs/snoop.md).
//
// process(): sender data segments toward a guest are marked for the transmit
// notification (nothing is decided yet); guest packets update VM_SEQ and the
// guest window, and covered pure ACKs are dropped, the rest rewritten so the
// sender never sees the acknowledgement go backwards or a window the guest did
// not give. on_tx(): the PMD reports which marked segments the guest ring took;
// only there, and only for in-order bytes inside the guest's window, does the
// stage build an early ACK.
#include "cc/stages/snoop_stage.h"

#include <rte_ip.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "cc/checksum.h"
#include "cc/net_headers.h"
#include "cc/pkt_meta.h"
#include "cc/tcp_options.h"
#include "cc/tcp_seq.h"
#include "flowtable/tcp_flow_table.h"
#include "pmd/pmd.h"

namespace vsw {

using net::Seq;
using namespace snoop;

namespace snoop {

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kNone: return "none";
    case Mode::kActive: return "active";
    case Mode::kOfflineOoo: return "offline_out_of_order";
    case Mode::kOfflineNoBuf: return "offline_no_buffer";
    case Mode::kSync: return "sync";
    case Mode::kClosed: return "closed";
    case Mode::kOff: return "off";
  }
  return "?";
}

const std::vector<const char*>& snoop_counter_names() {
  static const std::vector<const char*> n = {SNOOP_COUNTERS(VSW_COUNTER_NAME)};
  return n;
}

Config config_from_json(const nlohmann::json& j) {
  Config c;
  if (!j.is_object()) return c;
  c.vhost_only = j.value("vhost_only", c.vhost_only);
  c.buf_bytes = j.value("buf_bytes", c.buf_bytes);
  c.desc_bytes = j.value("desc_bytes", c.desc_bytes);
  c.growth_mss = j.value("growth_mss", c.growth_mss);
  c.default_on = j.value("all_ports", c.default_on);
  if (j.contains("ports")) {
    const auto& p = j.at("ports");
    if (p.is_array()) {  // ports = ["vm1", "vm2"]: only these
      c.default_on = false;
      for (const auto& n : p) c.ports[n.get<std::string>()] = PortCfg{true, 0};
    } else if (p.is_object()) {  // ports = {vm1 = true, vm2 = {buf_bytes = 131072}}
      for (auto it = p.begin(); it != p.end(); ++it) {
        PortCfg pc;
        if (it->is_boolean()) pc.enabled = it->get<bool>();
        else if (it->is_object()) {
          pc.enabled = it->value("enabled", true);
          pc.buf_bytes = it->value("buf_bytes", 0u);
        }
        c.ports[it.key()] = pc;
      }
    }
  }
  if (j.contains("disabled_ports"))
    for (const auto& n : j.at("disabled_ports")) c.ports[n.get<std::string>()] = PortCfg{false, 0};
  if (c.buf_bytes < 2 * 1460) c.buf_bytes = 2 * 1460;
  return c;
}

}  // namespace snoop

SnoopStage::SnoopStage(const Config& cfg, uint8_t self, unsigned pmd)
    : Stage(kNCtr), cfg_(cfg), self_(self), pmd_(pmd), notes_(new Note[kNotes]) {
  std::memset(static_cast<void*>(notes_.get()), 0, sizeof(Note) * kNotes);
  pending_.reserve(256);
  if (cfg_.desc_bytes) desc_recip_ = ((uint64_t(1) << 32) + cfg_.desc_bytes - 1) / cfg_.desc_bytes;
}

SnoopStage::~SnoopStage() {
  if (conns_) munmap(conns_, size_t(cap_) * sizeof(Conn));
}

bool SnoopStage::ensure_table(PmdContext& ctx) {
  if (conns_) return true;
  table_ = ctx.flows();
  if (!table_) return false;
  cap_ = table_->capacity();
  // Zero pages on demand: memory grows with the slots the table really uses.
  void* p = mmap(nullptr, size_t(cap_) * sizeof(Conn), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    cap_ = 0;
    return false;
  }
  conns_ = static_cast<Conn*>(p);
  table_->add_remove_hook(&SnoopStage::on_remove, this);
  return true;
}

namespace {
// Modes in which the connection's sender is told windows by this stage.
inline bool snooped(Mode m) {
  return m == Mode::kActive || m == Mode::kOfflineOoo || m == Mode::kOfflineNoBuf || m == Mode::kSync;
}
}  // namespace

void SnoopStage::roll(PortState& ps, uint16_t slot) {
  if (ps.slot == slot) return;
  const bool next = uint16_t(ps.slot + 1) == slot;
  ps.prom_prev = next ? ps.prom_cur : 0;
  ps.n_prev = next ? ps.n_cur : 0;
  ps.prom_cur = 0;
  ps.n_cur = 0;
  ps.slot = slot;
}

void SnoopStage::unaccount(Conn& c) {
  if (c.acct_epoch && c.gport < kMaxPorts) {
    PortState& ps = ports_[c.gport];
    if (c.acct_epoch == ps.epoch) {
      if (c.acct_slot == ps.slot) {
        ps.prom_cur -= std::min<uint64_t>(ps.prom_cur, c.promised);
        if (ps.n_cur) --ps.n_cur;
      } else if (uint16_t(c.acct_slot + 1) == ps.slot) {
        ps.prom_prev -= std::min<uint64_t>(ps.prom_prev, c.promised);
        if (ps.n_prev) --ps.n_prev;
      }
    }
  }
  c.promised = 0;
  c.acct_epoch = 0;
}

void SnoopStage::account(Conn& c) {
  if (c.mode == Mode::kNone || c.gport >= kMaxPorts) return;
  PortState& ps = ports_[c.gport];
  const uint16_t slot = static_cast<uint16_t>(now_ms_ >> 6);
  if (__builtin_expect(ps.slot != slot, 0)) roll(ps, slot);
  uint32_t p = 0;  // descriptors: each segment takes one, however short
  const bool live = snooped(c.mode) && c.epoch == ps.epoch;
  if (live && (c.flags & cflag::kHaveAck) && cfg_.desc_bytes) {
    const int32_t d = Seq(c.right_sent) - Seq(c.enq);
    if (d > 0) p = descs(uint32_t(d));
  }
  if (__builtin_expect(live && c.acct_epoch == ps.epoch && c.acct_slot == slot, 1)) {
    ps.prom_cur += int64_t(p) - int64_t(c.promised);  // already counted in this period
    c.promised = p;
    return;
  }
  unaccount(c);
  if (!p && !snooped(c.mode)) return;  // not counted at all
  ps.prom_cur += p;
  ++ps.n_cur;
  c.promised = p;
  c.acct_epoch = ps.epoch;
  c.acct_slot = ps.slot;
}

void SnoopStage::on_remove(void* self, uint32_t slot, const TcpConn& tc, RemoveReason) {
  auto* st = static_cast<SnoopStage*>(self);
  if (slot >= st->cap_) return;
  Conn& c = st->conns_[slot];
  if (c.gen1 == tc.gen + 1 && c.mode != Mode::kNone) st->unaccount(c);
}

SnoopStage::PortState& SnoopStage::port_state(PmdContext& ctx, uint16_t id) {
  PortState& ps = ports_[id];
  const Port* p = ctx.dp().port(id);
  const bool up = p && p->link_up();
  if (__builtin_expect(ps.resolved && p == ps.ptr && up == ps.up, 1)) return ps;
  // First sight, port replaced, or link change: every connection of this port
  // re-initialises (a new epoch) before it gets early ACKs again.
  ps.ptr = p;
  ps.up = up;
  ps.resolved = true;
  ps.epoch = ++epoch_seq_;
  ps.prom_cur = ps.prom_prev = 0;  // connections counted under the old epoch are no longer snooped here
  ps.n_cur = ps.n_prev = 0;
  ps.enabled = false;
  ps.buf = cfg_.buf_bytes;
  if (p && (!cfg_.vhost_only || p->kind() == Port::Kind::kVhostUser)) {
    auto it = cfg_.ports.find(p->name());
    ps.enabled = it == cfg_.ports.end() ? cfg_.default_on : it->second.enabled;
    if (it != cfg_.ports.end() && it->second.buf_bytes) ps.buf = std::max<uint32_t>(it->second.buf_bytes, 2 * 1460);
  }
  return ps;
}

// Sync mode starts at the highest byte seen: NEXT_SEQ tracking restarts
// there (what the ring confirms from now on, contiguously); the bytes below
// are the guest's to acknowledge before anything is acknowledged early.
void SnoopStage::begin_sync(Conn& c) {
  c.mode = Mode::kSync;
  c.sync_at = c.hi;
  c.sync_pending = 1;
  if (Seq(c.hi) > Seq(c.enq)) c.enq = c.hi;
}

// A hole, a refusal or data beyond the guest's window while in sync: the
// bytes up to `end` may now be missing from the ring, so NEXT_SEQ cannot run
// on from the old sync point. Move the sync point above them (the guest has
// to acknowledge them itself) instead of waiting for the guest to catch up
// with everything seen, which a sender that never pauses never allows.
void SnoopStage::restart_sync(Conn& c, uint32_t end) {
  if (Seq(end) > Seq(c.hi)) c.hi = end;
  begin_sync(c);
  ctr(kSyncRestart).add();
}

void SnoopStage::init_conn(Conn& c, const TcpConn& tc, const TcpSegment& s, rte_mbuf* m, uint16_t in_port,
                           uint32_t epoch) {
  const uint32_t gen1 = c.gen1;
  std::memset(static_cast<void*>(&c), 0, sizeof(c));
  c.gen1 = gen1;
  c.epoch = epoch;
  c.gdir = s.dir;
  c.gport = in_port;
  c.sport = kNoPort;
  const TcpDirState& G = tc.d[s.dir];
  const TcpDirState& S = tc.d[s.dir ^ 1];
  c.ws = G.wscale;
  if (G.has(dirflag::kWsKnown)) c.flags |= cflag::kWsExact;
  if (G.has(dirflag::kTsOk)) c.flags |= cflag::kTs;
  c.mss = G.has(dirflag::kMssKnown) && G.mss >= 64 ? G.mss : 1448;
  const auto* eh = rte_pktmbuf_mtod(m, const net::EtherHdr*);
  std::memcpy(c.mac_g, eh->src.b.data(), 6);
  std::memcpy(c.mac_s, eh->dst.b.data(), 6);
  c.g_snd_nxt = s.seq + s.seq_len();
  if (s.opts.has(net::kOptTs)) {
    c.g_tsval = s.opts.ts_val;
    c.flags |= cflag::kGuestTs;
  }
  c.mode = Mode::kSync;
  if (s.has_ack()) {
    const uint32_t win = s.syn() ? s.window : uint32_t(s.window) << c.ws;
    c.g_ack = c.enq = c.hi = c.ack_sent = s.ack;
    c.g_right = c.right_sent = s.ack + win;
    c.g_raw = s.window;
    c.rcv_win = win;
    c.flags |= cflag::kHaveAck;
    if (S.has(dirflag::kSeqValid) && Seq(S.next_seq) > Seq(c.hi)) c.hi = S.next_seq;
    if (Seq(c.hi) <= Seq(c.g_ack)) c.mode = Mode::kActive;
    else begin_sync(c);
  }
}

bool SnoopStage::can_ack(PmdContext& ctx, Conn& c) {
  PortState& ps = port_state(ctx, c.gport);
  const bool live = ps.enabled && ps.up && ps.epoch == c.epoch && !(c.flags & cflag::kConnOff);
  if (!live && c.mode != Mode::kOff && c.mode != Mode::kClosed && c.mode != Mode::kNone) {
    c.mode = Mode::kOff;
    ctr(kPortDisabled).add();
  }
  return live;
}

void SnoopStage::go_offline(Conn& c, Mode m, size_t counter) {
  if (c.mode != Mode::kActive) return;  // counters count transitions
  ctr(counter).add();
  c.mode = m;
  ++c.n_offline;
}

uint16_t SnoopStage::window_for(Conn& c, uint32_t ack, bool ring_bound, bool commit) {
  PortState& ps = ports_[c.gport];
  roll(ps, static_cast<uint16_t>(now_ms_ >> 6));
  uint32_t bound = std::min(c.rcv_win, ps.buf);
  if (ring_bound && cfg_.desc_bytes && ps.ptr) {
    // Ring bound: what the ring can still take (free descriptors x desc_bytes)
    // minus what is already promised to the port's other connections. This
    // connection's own promise after this ACK is (right - enq); the bytes
    // between ack and enq are already in the ring.
    const int f = ring_free(ps);
    if (f >= 0) {
      const bool counted = c.acct_epoch == ps.epoch && (c.acct_slot == ps.slot || uint16_t(c.acct_slot + 1) == ps.slot);
      const uint64_t mine = counted ? c.promised : 0;
      const uint64_t all = ps.promised();
      const uint64_t others = all > mine ? all - mine : 0;
      uint64_t room = uint64_t(f) > others ? uint64_t(f) - others : 0;  // descriptors left for c
      // ... and at most its share of the free ring among the port's active connections.
      const uint64_t n = std::max<uint64_t>(1, ps.n_cur + ps.n_prev + (counted ? 0 : 1));
      room = std::min<uint64_t>(room, std::max<uint64_t>(1, uint64_t(f) / n));
      const int32_t in_ring = Seq(c.enq) - Seq(ack);
      const uint64_t left = room * cfg_.desc_bytes + uint32_t(std::max<int32_t>(0, in_ring));
      if (left < bound) {
        bound = static_cast<uint32_t>(left);
        if (commit) {
          ctr(kWinRingBound).add();
          // Less than a segment of room left and the guest would give more:
          // a window update follows when the ring has room again.
          if (!c.starved && left < uint64_t(cfg_.desc_bytes) + uint32_t(std::max<int32_t>(0, in_ring)) &&
              Seq(c.g_right) - Seq(c.enq) >= int32_t(cfg_.desc_bytes)) {
            c.starved = 1;
            if (ps.starved.empty()) starved_ports_.push_back(c.gport);
            ps.starved.push_back(uint32_t(&c - conns_));
            any_starved_ = true;
          }
        }
      }
    }
  }
  uint32_t raw;
  if (c.flags & cflag::kWsExact) {
    Seq right = Seq(ack) + bound;
    if (right > Seq(c.g_right)) right = Seq(c.g_right);
    const Seq floor = Seq::min(Seq(c.right_sent), Seq(c.g_right));  // do not shrink unless the guest did
    if (right < floor) right = floor;
    if (right < Seq(ack)) right = Seq(ack);
    raw = std::min<uint32_t>(uint32_t(right - Seq(ack)) >> c.ws, 0xffff);
  } else {
    // Shift only known as a lower bound: subtract what we acknowledge beyond
    // the guest's ACK from its own raw window, rounding up. Whatever the true
    // shift, the right edge then stays at or below the guest's.
    const int32_t delta = std::max<int32_t>(0, Seq(ack) - Seq(c.g_ack));
    const uint32_t sub = (uint32_t(delta) + (1u << c.ws) - 1) >> c.ws;
    raw = c.g_raw > sub ? c.g_raw - sub : 0;
    raw = std::min(raw, bound >> c.ws);
  }
  if (commit) {
    const Seq adv = Seq(ack) + (raw << c.ws);
    if (adv > Seq(c.right_sent)) c.right_sent = adv.raw();
  }
  return static_cast<uint16_t>(raw);
}

void SnoopStage::send_ack(PmdContext& ctx, const Conn& c, uint32_t slot, uint32_t ack, uint16_t raw_win,
                          uint32_t tsecr, bool has_tsecr) {
  rte_mbuf* m = rte_pktmbuf_alloc(ctx.dp().pool);
  if (!m) {
    ctr(kAckAllocFail).add();
    return;
  }
  const FlowKey k = table_->key(slot);  // full key (the entry keeps only IPv4 addresses)
  const bool v4 = k.is_v4();
  const bool tagged = c.flags & cflag::kTagged;
  const bool ts = (c.flags & cflag::kTs) && has_tsecr;
  const uint16_t l2 = tagged ? 18 : 14, l3 = v4 ? 20 : 40, l4 = static_cast<uint16_t>(20 + (ts ? 12 : 0));
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(l2 + l3 + l4)));
  if (!p) {
    rte_pktmbuf_free(m);
    ctr(kAckAllocFail).add();
    return;
  }
  const uint8_t g = c.gdir, s = g ^ 1;
  auto* eh = reinterpret_cast<net::EtherHdr*>(p);
  std::memcpy(eh->dst.b.data(), c.mac_s, 6);
  std::memcpy(eh->src.b.data(), c.mac_g, 6);
  if (tagged) {
    eh->type = net::be16::from(net::kEtherVlan);
    auto* vh = reinterpret_cast<net::VlanHdr*>(p + 14);
    vh->tci = net::be16::from(k.vlan);
    vh->type = net::be16::from(v4 ? net::kEtherIPv4 : net::kEtherIPv6);
  } else {
    eh->type = net::be16::from(v4 ? net::kEtherIPv4 : net::kEtherIPv6);
  }
  auto* th = reinterpret_cast<net::TcpHdr*>(p + l2 + l3);
  th->sport = net::be16::from(k.port[g]);
  th->dport = net::be16::from(k.port[s]);
  th->seq = net::be32::from(c.g_snd_nxt);
  th->ack = net::be32::from(ack);
  th->off_res = static_cast<uint8_t>((l4 / 4) << 4);
  th->flags = net::tcpflag::kAck;
  th->window = net::be16::from(raw_win);
  th->csum = 0;
  th->urg = net::be16::from(0);
  if (ts) {
    uint8_t* o = reinterpret_cast<uint8_t*>(th) + 20;
    o[0] = net::tcpopt::kNop;
    o[1] = net::tcpopt::kNop;
    o[2] = net::tcpopt::kTs;
    o[3] = net::tcpopt::kLenTs;
    const uint32_t v[2] = {net::bswap(c.g_tsval), net::bswap(tsecr)};
    std::memcpy(o + 4, v, 8);
  }
  if (v4) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + l2);
    std::memset(ip, 0, sizeof(*ip));
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(l3 + l4));
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = net::kProtoTcp;
    std::memcpy(&ip->src_addr, k.addr[g], 4);
    std::memcpy(&ip->dst_addr, k.addr[s], 4);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    th->csum = rte_ipv4_udptcp_cksum(ip, th);
  } else {
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + l2);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(l4);
    ip->proto = net::kProtoTcp;
    ip->hop_limits = 64;
    std::memcpy(ip->src_addr, k.addr[g], 16);
    std::memcpy(ip->dst_addr, k.addr[s], 16);
    th->csum = rte_ipv6_udptcp_cksum(ip, th);
  }
  PktMeta& pm = meta(m);
  std::memset(&pm, 0, sizeof(pm));
  pm.in_port = kNoPort;
  pm.vlan = k.vlan;
  pm.flags = static_cast<uint16_t>(net::kFlagTcp | (v4 ? net::kFlagIPv4 : net::kFlagIPv6) | (tagged ? net::kFlagVlan : 0));
  pm.l3_off = l2;
  pm.l4_off = static_cast<uint16_t>(l2 + l3);
  pm.l4_len = static_cast<uint8_t>(l4);
  m->l2_len = l2;
  m->l3_len = l3;
  m->l4_len = l4;
  ctx.emit(m, c.sport);
}

void SnoopStage::on_sender(PmdContext&, Batch& b, uint16_t i, Conn& c, uint32_t slot, const TcpConn& tc,
                           const TcpSegment& s) {
  rte_mbuf* m = b.pkts[i];
  PktMeta& pm = meta(m);
  c.sport = pm.in_port;
  c.flags = static_cast<uint8_t>((c.flags & ~cflag::kTagged) | ((pm.flags & net::kFlagVlan) ? cflag::kTagged : 0) |
                                 cflag::kSenderSeen);
  const auto* eh = rte_pktmbuf_mtod(m, const net::EtherHdr*);
  std::memcpy(c.mac_s, eh->src.b.data(), 6);
  if (s.rst()) {
    if (c.mode != Mode::kClosed) ctr(kClosed).add();
    c.mode = Mode::kClosed;
    return;
  }
  if (s.payload_len == 0 && !s.fin()) return;
  if (pm.notify_stage && pm.notify_stage != self_) return;  // another stage owns the notification
  const uint32_t id = next_note_++;
  if (next_note_ == 0) next_note_ = 1;
  Note& n = notes_[id & (kNotes - 1)];
  n.id = id;
  n.slot = slot;
  n.gen = tc.gen;
  n.start = s.seq;
  n.end = s.seq + s.payload_len;
  n.has_ts = s.opts.has(net::kOptTs);
  n.tsval = s.opts.ts_val;
  n.flags = s.flags;
  uint8_t ecn = 0;
  if (pm.flags & net::kFlagIPv4) ecn = static_cast<uint8_t>(pkt_at<net::Ipv4Hdr>(m, pm.l3_off)->ecn());
  else if (pm.flags & net::kFlagIPv6) ecn = static_cast<uint8_t>(pkt_at<net::Ipv6Hdr>(m, pm.l3_off)->ecn());
  n.ce = ecn == 3;
  pm.notify_stage = self_;
  pm.cookie[0] = id;
  pm.cookie[1] = slot;
  ctr(kDataMarked).add();
}

namespace {

inline net::L4Csum csum_mode(const rte_mbuf* m) {
  const uint64_t f = m->ol_flags;
  return ((f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM || (f & RTE_MBUF_F_TX_TCP_SEG))
             ? net::L4Csum::kOffloaded
             : net::L4Csum::kComplete;
}

// Removes SACK information at or below `ack` (after the ACK number was raised
// to it): blocks below go, a block straddling it is clipped; freed bytes become NOPs.
bool trim_sack(net::TcpHdr* th, const net::TcpOptions& o, uint32_t ack, net::L4Csum mode) {
  if (!o.has(net::kOptSack) || !o.off_sack) return false;
  const size_t len = 2 + 8u * o.n_sack;
  uint8_t buf[2 + 8 * net::tcpopt::kMaxSackBlocks];
  std::memset(buf, net::tcpopt::kNop, sizeof(buf));
  unsigned k = 0;
  for (unsigned b = 0; b < o.n_sack; ++b) {
    net::SackBlock blk = o.sack[b];
    if (Seq(blk.right) <= Seq(ack)) continue;
    if (Seq(blk.left) < Seq(ack)) blk.left = ack;
    const uint32_t v[2] = {net::bswap(blk.left), net::bswap(blk.right)};
    std::memcpy(buf + 2 + 8 * k, v, 8);
    ++k;
  }
  if (k == o.n_sack) {
    bool same = true;
    for (unsigned b = 0; b < k; ++b) same &= Seq(o.sack[b].left) >= Seq(ack);
    if (same) return false;
  }
  if (k) {
    buf[0] = net::tcpopt::kSack;
    buf[1] = static_cast<uint8_t>(2 + 8 * k);
  } else {
    // No block left: the whole option becomes NOPs.
    buf[0] = buf[1] = net::tcpopt::kNop;
    std::memset(buf, net::tcpopt::kNop, len);
  }
  if (k) std::memset(buf + 2 + 8 * k, net::tcpopt::kNop, len - (2 + 8 * k));
  return net::tcp_rewrite(th, o.off_sack, buf, len, mode);
}

}  // namespace

// The guest's SYN-ACK window is a promise too (the sender may fill it at once
// once early ACKs grow its cwnd): lower it to the port's unpromised ring room,
// never below 4 segments (a handshake must not stall on a full ring).
void SnoopStage::cap_synack(Batch& b, uint16_t i, Conn& c, const TcpSegment& s) {
  if (!cfg_.desc_bytes || !s.has_ack()) return;
  PortState& ps = ports_[c.gport];
  if (!ps.ptr) return;
  const int f = ring_free(ps);
  if (f < 0) return;
  roll(ps, static_cast<uint16_t>(now_ms_ >> 6));
  const uint64_t others = ps.promised();  // c is not counted yet
  uint64_t room = uint64_t(f) > others ? uint64_t(f) - others : 0;
  room = std::min<uint64_t>(room, std::max<uint64_t>(1, uint64_t(f) / (ps.n_cur + ps.n_prev + 1)));
  const uint64_t bytes = std::max<uint64_t>(room * cfg_.desc_bytes, 4ull * cfg_.desc_bytes);
  if (bytes >= s.window) return;
  rte_mbuf* m = b.pkts[i];
  auto* th = pkt_at<net::TcpHdr>(m, meta(m).l4_off);
  net::tcp_set_window(th, static_cast<uint16_t>(bytes), csum_mode(m));
  c.right_sent = s.ack + uint32_t(bytes);
  ctr(kWinRingBound).add();
}

void SnoopStage::on_guest(PmdContext& ctx, Batch& b, uint16_t i, Conn& c, const TcpConn& tc, const TcpSegment& s) {
  const TcpDirState& G = tc.d[c.gdir];
  if (!(c.flags & cflag::kWsExact) && G.has(dirflag::kWsKnown)) {
    c.ws = G.wscale;
    c.flags |= cflag::kWsExact;
  }
  // An inferred shift is not raised later: the table infers it from flight
  // beyond the guest's window, which our own early ACKs create.
  if (G.has(dirflag::kTsOk)) c.flags |= cflag::kTs;
  if (s.rst()) {
    if (c.mode != Mode::kClosed) ctr(kClosed).add();
    c.mode = Mode::kClosed;
    return;
  }
  const Seq end = Seq(s.seq) + s.seq_len();
  if (end > Seq(c.g_snd_nxt)) c.g_snd_nxt = end.raw();
  if (s.opts.has(net::kOptTs) && (!(c.flags & cflag::kGuestTs) || Seq(s.opts.ts_val) > Seq(c.g_tsval))) {
    c.g_tsval = s.opts.ts_val;
    c.flags |= cflag::kGuestTs;
  }
  if (!s.has_ack()) return;
  ctr(kGuestAck).add();
  const uint32_t A = s.ack;
  const uint32_t win = s.syn() ? s.window : uint32_t(s.window) << c.ws;
  if (!(c.flags & cflag::kHaveAck)) {
    c.g_ack = c.enq = c.hi = c.ack_sent = A;
    c.right_sent = A + win;
    c.flags |= cflag::kHaveAck;
    const TcpDirState& S = tc.d[c.gdir ^ 1];
    if (S.has(dirflag::kSeqValid) && Seq(S.next_seq) > Seq(c.hi)) c.hi = S.next_seq;
  }
  if (Seq(A) >= Seq(c.g_ack)) {
    c.g_ack = A;
    c.g_right = A + win;
    c.g_raw = s.window;
    c.rcv_win = win;  // RCV_WIN follows the guest's own announcement
  }
  if (Seq(c.g_ack) > Seq(c.enq)) c.enq = c.g_ack;
  if (Seq(c.g_ack) > Seq(c.hi)) c.hi = c.g_ack;

  PortState& ps = port_state(ctx, c.gport);
  const bool live = ps.enabled && ps.up && ps.epoch == c.epoch && !(c.flags & cflag::kConnOff);
  if (!live && c.mode != Mode::kOff && c.mode != Mode::kClosed) {
    c.mode = Mode::kOff;
    ctr(kPortDisabled).add();
  }
  if (c.mode == Mode::kOff && ps.enabled && ps.up && !(c.flags & cflag::kConnOff) &&
      Seq(c.g_ack) >= Seq(c.ack_sent)) {
    // Back after a disable / reconnect: mid-stream initialisation.
    c.epoch = ps.epoch;
    c.mode = Mode::kSync;
    const TcpDirState& S = tc.d[c.gdir ^ 1];
    if (S.has(dirflag::kSeqValid) && Seq(S.next_seq) > Seq(c.hi)) c.hi = S.next_seq;
    begin_sync(c);
    ctr(kInitMidstream).add();
  }
  // Back online when the guest has everything enqueued (paper III-B), or, in
  // sync, once it acknowledged the sync point: below it the guest has all,
  // above it the ring confirmed every byte up to enq, with no hole (a hole, a
  // refusal or data beyond the window would have moved the sync point above it).
  if (c.sync_pending && Seq(c.g_ack) >= Seq(c.sync_at)) c.sync_pending = 0;
  if (((c.mode == Mode::kOfflineOoo || c.mode == Mode::kOfflineNoBuf || c.mode == Mode::kSync) &&
       Seq(c.g_ack) >= Seq(c.hi)) ||
      (c.mode == Mode::kSync && !c.sync_pending && Seq(c.enq) >= Seq(c.hi))) {
    ctr(c.mode == Mode::kSync ? kSyncDone : kResumeGuestAck).add();
    if (c.mode != Mode::kSync) ++c.n_resume;
    c.mode = Mode::kActive;
  }
  if (s.syn()) {  // a SYN-ACK seen here passes (the one the connection is learned from is capped: cap_synack)
    if (Seq(A) > Seq(c.ack_sent)) c.ack_sent = A;
    if (Seq(c.g_right) > Seq(c.right_sent)) c.right_sent = c.g_right;
    return;
  }

  const bool pure = s.payload_len == 0 && !s.fin();
  const bool ece = s.flags & net::tcpflag::kEce;
  // Windows the guest opens are subject to the port's ring bound too while
  // the stage speaks for the connection: otherwise a guest window update would
  // promise the sender more than the ring can take beside the other senders.
  const bool rb = snooped(c.mode);
  const bool sack = s.opts.has(net::kOptSack);
  uint32_t new_ack = A;
  if (Seq(A) < Seq(c.ack_sent)) {
    // Covered. It still goes out (as a window update at our ACK point) if
    // the guest opened its window beyond what the sender was told (III-C).
    const bool news = Seq(c.ack_sent) + (uint32_t(window_for(c, c.ack_sent, rb, false)) << c.ws) >
                      Seq(c.right_sent);
    if (pure && !ece && !news) {
      ctr(kGuestAckDropCovered).add();
      ++c.n_dropped;
      b.next[i] = Next::kDrop;
      return;
    }
    new_ack = c.ack_sent;
  } else if (A == c.ack_sent && pure && !ece && !sack && c.mode == Mode::kActive) {
    // Paper III-C: the guest ACK matching our last early ACK passes only if
    // it tells the sender something new (the guest's latest window).
    const uint16_t raw = window_for(c, A, rb, false);
    if (Seq(A) + (uint32_t(raw) << c.ws) == Seq(c.right_sent)) {
      ctr(kGuestAckDropDup).add();
      ++c.n_dropped;
      b.next[i] = Next::kDrop;
      return;
    }
  }
  rte_mbuf* m = b.pkts[i];
  const PktMeta& pm = meta(m);
  auto* th = pkt_at<net::TcpHdr>(m, pm.l4_off);
  const net::L4Csum mode = csum_mode(m);
  if (new_ack != A) {
    const net::be32 v = net::be32::from(new_ack);
    net::tcp_rewrite(th, 8, &v, 4, mode);
    ctr(kGuestAckRaised).add();
    if (sack && trim_sack(th, s.opts, new_ack, mode)) ctr(kGuestSackTrimmed).add();
  }
  const uint16_t raw = window_for(c, new_ack, rb, true);
  if (raw != s.window) {
    net::tcp_set_window(th, raw, mode);
    ctr(kGuestWinCapped).add();
  }
  if (Seq(new_ack) > Seq(c.ack_sent)) c.ack_sent = new_ack;
  ctr(kGuestAckPass).add();
}

void SnoopStage::flush_acks(PmdContext& ctx) {
  for (uint32_t slot : pending_) {
    Conn& c = conns_[slot];
    if (!(c.flags & cflag::kAckPending)) continue;
    c.flags &= static_cast<uint8_t>(~cflag::kAckPending);
    if (!table_->alive(slot, c.gen1 - 1)) continue;
    if (c.sport == kNoPort || !can_ack(ctx, c)) {
      ctr(kNoAckOff).add();
      account(c);
      continue;
    }
    if (Seq(c.enq) <= Seq(c.ack_sent)) continue;
    const uint16_t raw = window_for(c, c.enq, true, true);
    send_ack(ctx, c, slot, c.enq, raw, c.pend_tsecr, c.pend_ts);
    ctr(kEarlyAck).add();
    ctr(kEarlyAckBytes).add(uint32_t(Seq(c.enq) - Seq(c.ack_sent)));
    c.ack_sent = c.enq;
    ++c.n_early;
    account(c);
  }
  pending_.clear();
}

void SnoopStage::feed_starved(PmdContext& ctx) {
  for (size_t pi = 0; pi < starved_ports_.size();) {
    const uint16_t id = starved_ports_[pi];
    PortState& ps = ports_[id];
    ps.f_stamp = 0;  // a fresh read
    const int f = ps.ptr && ps.resolved ? ring_free(ps) : 0;
    roll(ps, static_cast<uint16_t>(now_ms_ >> 6));
    size_t k = 0;
    // Only when the ring has unpromised room for a segment (O(1) per call otherwise).
    while (k < ps.starved.size() && f > 0 && uint64_t(f) > ps.promised()) {
      const uint32_t slot = ps.starved[k];
      Conn& c = conns_[slot];
      bool done = true;
      if (c.starved && table_->alive(slot, c.gen1 - 1) && c.gport == id && snooped(c.mode) && c.sport != kNoPort &&
          can_ack(ctx, c)) {
        const uint32_t before = c.right_sent;
        const uint16_t raw = window_for(c, c.ack_sent, true, true);
        if (Seq(c.right_sent) > Seq(before)) {
          const TcpDirState& S = table_->conn(slot).d[c.gdir ^ 1];
          send_ack(ctx, c, slot, c.ack_sent, raw, S.ts_val, S.has(dirflag::kTsOk));
          ctr(kWinUpdate).add();
          account(c);
        } else if (c.starved) {
          done = false;  // window_for may have re-listed it; keep the entry
        }
      }
      if (done) {
        c.starved = 0;
        ps.starved[k] = ps.starved.back();
        ps.starved.pop_back();
      } else {
        ++k;
        break;
      }
    }
    if (ps.starved.empty()) {
      starved_ports_[pi] = starved_ports_.back();
      starved_ports_.pop_back();
    } else {
      ++pi;
    }
  }
  any_starved_ = !starved_ports_.empty();
}

void SnoopStage::tick(PmdContext& ctx, uint64_t) {
  now_ms_ = ctx.now_ms();
  if (any_starved_ && conns_) feed_starved(ctx);
}

void SnoopStage::process(Batch& b, PmdContext& ctx) {
  now_ms_ = ctx.now_ms();
  if (++call_seq_ == 0) call_seq_ = 1;
  if (!pending_.empty()) flush_acks(ctx);
  if (any_starved_ && conns_) feed_starved(ctx);
  if (!b.flows || !ensure_table(ctx)) return;
  for (uint16_t i = 0; i < b.n; ++i) {
    if (b.next[i] != Next::kForward) continue;
    const TcpSegment* s = b.seg(i);
    const TrackResult* tr = b.track(i);
    if (!s || !tr->tracked() || tr->slot >= cap_) continue;
    ctr(kSeen).add();
    const uint32_t slot = tr->slot;
    const TcpConn& tc = table_->conn(slot);
    Conn& c = conns_[slot];
    if (__builtin_expect(c.gen1 != tc.gen + 1, 0)) {
      if (c.gen1 && c.mode != Mode::kNone) unaccount(c);
      std::memset(static_cast<void*>(&c), 0, sizeof(c));
      c.gen1 = tc.gen + 1;
    }
    rte_mbuf* m = b.pkts[i];
    if (c.mode == Mode::kNone) {
      // The guest side is the endpoint behind a snooped port; learn it from the
      // guest's own packets (its SYN / SYN-ACK, or any packet mid-stream).
      const uint16_t in = meta(m).in_port;
      if (in == kNoPort) continue;
      PortState& ps = port_state(ctx, in);
      if (!ps.enabled || !ps.up) continue;
      init_conn(c, tc, *s, m, in, ps.epoch);
      if (!off_keys_.empty()) {
        std::vector<uint8_t> kb(reinterpret_cast<const uint8_t*>(&s->key),  // the connection's key
                                reinterpret_cast<const uint8_t*>(&s->key) + sizeof(FlowKey));
        if (off_keys_.count(kb)) {
          c.flags |= cflag::kConnOff;
          c.mode = Mode::kOff;
        }
      }
      ctr(s->syn() ? kInitHandshake : kInitMidstream).add();
      if (s->syn()) {
        if (Seq(c.g_right) > Seq(c.right_sent)) c.right_sent = c.g_right;
        if (c.mode != Mode::kOff) cap_synack(b, i, c, *s);
        account(c);
        continue;
      }
    }
    // (Only with the other endpoint's window scale known from the handshake: a
    // shift the table inferred mid-stream may be too large by now.)
    if (s->dir == c.gdir && s->payload_len && tc.d[s->dir ^ 1].has(dirflag::kWsKnown) && may_swap(ctx, c))
      swap_roles(ctx, c, tc, *s, m);
    if (s->dir == c.gdir) {
      on_guest(ctx, b, i, c, tc, *s);
      account(c);
    } else {
      // A sender segment changes the promise only by closing (RST); its data
      // is accounted at its transmit notification.
      const Mode before = c.mode;
      on_sender(ctx, b, i, c, slot, tc, *s);
      if (c.mode != before) account(c);
    }
  }
}

bool SnoopStage::may_swap(PmdContext& ctx, const Conn& c) {
  // Only before the stage has acknowledged anything on the guest's behalf:
  // then the endpoint taken for the guest has seen only its peer's own ACKs
  // and windows, and the swap changes nothing either side has been told.
  if (c.n_early || (c.flags & (cflag::kAckPending | cflag::kConnOff)) || !snooped(c.mode)) return false;
  if (c.sport == kNoPort || c.sport == c.gport || Seq(c.ack_sent) != Seq(c.g_ack)) return false;
  const PortState& ps = port_state(ctx, c.sport);
  return ps.enabled && ps.up;
}

void SnoopStage::swap_roles(PmdContext& ctx, Conn& c, const TcpConn& tc, const TcpSegment& s, rte_mbuf* m) {
  unaccount(c);
  uint8_t mg[6], ms[6];
  std::memcpy(mg, c.mac_s, 6);
  std::memcpy(ms, c.mac_g, 6);
  const uint16_t gport = c.sport, sport = meta(m).in_port;
  const uint32_t gen1 = c.gen1;
  std::memset(static_cast<void*>(&c), 0, sizeof(c));
  c.gen1 = gen1;
  c.epoch = port_state(ctx, gport).epoch;
  c.gdir = static_cast<uint8_t>(s.dir ^ 1);
  c.gport = gport;
  c.sport = sport;
  std::memcpy(c.mac_g, mg, 6);
  std::memcpy(c.mac_s, ms, 6);
  const TcpDirState& G = tc.d[c.gdir];
  const TcpDirState& S = tc.d[s.dir];
  c.ws = G.wscale;
  if (G.has(dirflag::kWsKnown)) c.flags |= cflag::kWsExact;
  if (G.has(dirflag::kTsOk)) {
    c.flags |= cflag::kTs;
    c.g_tsval = G.ts_val;
    c.flags |= cflag::kGuestTs;
  }
  c.mss = G.has(dirflag::kMssKnown) && G.mss >= 64 ? G.mss : 1448;
  c.g_snd_nxt = G.next_seq;
  c.mode = Mode::kSync;
  if (G.has(dirflag::kAckValid) && G.has(dirflag::kWinValid)) {
    c.g_ack = c.enq = c.hi = c.ack_sent = G.ack;
    c.g_right = c.right_sent = G.ack + G.win;
    c.g_raw = G.win_raw;
    c.rcv_win = G.win;
    c.flags |= cflag::kHaveAck;
    // The new sender's first data byte: nothing of it can be in the guest's
    // ring yet. Otherwise wait (sync) until the guest acknowledged all it sent.
    const bool first = S.has(dirflag::kIsnKnown) && s.seq == S.isn + 1;
    if (!first && S.has(dirflag::kSeqValid) && Seq(S.next_seq) > Seq(c.hi)) c.hi = S.next_seq;
    if (Seq(c.hi) <= Seq(c.g_ack)) c.mode = Mode::kActive;
    else begin_sync(c);
  }
  ctr(kRoleSwap).add();
}

void SnoopStage::on_tx(PmdContext& ctx, uint16_t port, const uint32_t cookie[2], uint32_t, bool sent) {
  const Note& n = notes_[cookie[0] & (kNotes - 1)];
  if (n.id != cookie[0] || n.slot != cookie[1] || !table_ || !table_->alive(n.slot, n.gen) || n.slot >= cap_ ||
      conns_[n.slot].gen1 != n.gen + 1) {
    ctr(kStaleNote).add();
    return;
  }
  Conn& c = conns_[n.slot];
  if (port != c.gport) return;  // a flooded copy toward another port
  now_ms_ = ctx.now_ms();
  tx_note(ctx, c, n, sent);
  account(c);
}

void SnoopStage::tx_note(PmdContext& ctx, Conn& c, const Note& n, bool sent) {
  if (!sent) {
    ctr(kTxRefused).add();
    if (c.mode == Mode::kSync && Seq(n.end) > Seq(c.enq)) restart_sync(c, n.end);
    go_offline(c, Mode::kOfflineNoBuf, kOfflineNoBuf);
    return;
  }
  ctr(kTxConfirmed).add();
  const Seq st(n.start), en(n.end);
  const bool fin = n.flags & net::tcpflag::kFin;
  if (st > Seq(c.enq)) {  // a hole before it: out-of-order data now sits in the guest
    if (c.mode == Mode::kSync) restart_sync(c, n.end);
    if (en > Seq(c.hi)) c.hi = n.end;
    go_offline(c, Mode::kOfflineOoo, kOfflineOoo);
    return;
  }
  if (en <= Seq(c.enq)) {
    if (fin && n.start == n.end) {
      if (c.mode != Mode::kClosed) ctr(kClosed).add();
      c.mode = Mode::kClosed;
      return;
    }
    // Data the guest already has: the sender missed an ACK. Answer as a receiver would.
    if (c.mode == Mode::kActive && c.sport != kNoPort && (c.flags & cflag::kHaveAck) && can_ack(ctx, c) &&
        (!(c.flags & cflag::kTs) || (n.has_ts && (c.flags & cflag::kGuestTs)))) {
      send_ack(ctx, c, n.slot, c.ack_sent, window_for(c, c.ack_sent, true, true), n.tsval, n.has_ts);
      ctr(kReack).add();
    }
    return;
  }
  // In order and new. Bytes beyond the guest's own right edge may be dropped
  // by the guest: they neither count as delivered nor get acknowledged.
  if (!(c.flags & cflag::kHaveAck) || en > Seq(c.g_right)) {
    if (c.mode == Mode::kSync) restart_sync(c, n.end);
    if (en > Seq(c.hi)) c.hi = n.end;
    go_offline(c, Mode::kOfflineOoo, kOfflineWindow);
    return;
  }
  const uint32_t prev = c.ack_sent;
  c.enq = n.end;
  if (en > Seq(c.hi)) c.hi = n.end;
  if (c.mode != Mode::kActive) {
    // Offline: a retransmission from NEXT_SEQ that leaves nothing out of order
    // in the guest brings the connection back (paper III-B, second way).
    // Not while a sync point is pending: the bytes below it may be missing.
    if ((c.mode == Mode::kOfflineOoo || c.mode == Mode::kOfflineNoBuf) && !c.sync_pending && Seq(c.hi) <= en) {
      c.mode = Mode::kActive;
      ++c.n_resume;
      ctr(kResumeRetrans).add();
    } else {
      return;
    }
  }
  if (n.ce) {
    go_offline(c, Mode::kOfflineOoo, kOfflineCe);
    return;
  }
  if (n.flags & (net::tcpflag::kSyn | net::tcpflag::kRst | net::tcpflag::kUrg)) {
    ctr(kNoAckFlags).add();
    return;
  }
  if ((c.flags & cflag::kTs) && (!n.has_ts || !(c.flags & cflag::kGuestTs))) {
    ctr(kNoAckTs).add();
    return;
  }
  if (c.sport == kNoPort || !can_ack(ctx, c)) {
    ctr(kNoAckOff).add();
    return;
  }
  (void)prev;
  const PortState& ps = ports_[c.gport];
  c.rcv_win = std::min<uint64_t>(uint64_t(c.rcv_win) + uint64_t(cfg_.growth_mss) * c.mss, ps.buf);
  // One early ACK per connection and flush (the PMD calls process() with an
  // empty batch after the notifications): what a receiver's ACK per GRO batch does.
  if (!(c.flags & cflag::kAckPending)) {
    c.flags |= cflag::kAckPending;
    c.pend_tsecr = n.tsval;  // RFC 7323 4.3: the first segment after the last ACK
    c.pend_ts = n.has_ts;
    pending_.push_back(n.slot);
  }
  if (fin) {
    // FIN: its payload is acknowledged early, the FIN itself by the guest.
    ctr(kClosed).add();
    c.mode = Mode::kClosed;
  }
}

nlohmann::json SnoopStage::details() const {
  nlohmann::json ports = nlohmann::json::array();
  for (uint16_t id = 0; id < kMaxPorts; ++id) {
    const PortState& ps = ports_[id];
    if (!ps.resolved || !ps.ptr) continue;
    ports.push_back({{"port", id}, {"enabled", ps.enabled}, {"up", ps.up}, {"epoch", ps.epoch}, {"buf_bytes", ps.buf}});
  }
  return {{"ports", ports},
          {"buf_bytes", cfg_.buf_bytes},
          {"desc_bytes", cfg_.desc_bytes},
          {"vhost_only", cfg_.vhost_only},
          {"all_ports", cfg_.default_on},
          {"conn_disables", off_keys_.size()}};
}

std::unique_ptr<Stage> make_snoop_stage(const StageInit& init) {
  return std::make_unique<SnoopStage>(config_from_json(init.config), static_cast<uint8_t>(stage_index("snoop") + 1),
                                      init.pmd_index);
}

}  // namespace vsw
