// Model-based simulation of the snoop stage (used by the gtest model test and
// the fuzz target). The real SnoopStage runs on real mbufs, with the PMD's
// flow tracking and transmit-notification contract reproduced here:
//   sender (port 0, "wire") --data--> stage --> guest ring (port 1, takes a prefix)
//   guest  (port 1)         --ACKs--> stage --> sender
// A reference model tracks which bytes really entered the guest ring and what
// the guest itself allowed, and checks every packet the sender receives:
//   S1 every acknowledged byte was enqueued into the guest ring (inside the
//      window the guest had advertised) or acknowledged by the guest itself;
//   S2 the ACK numbers the sender sees never go backwards;
//   S3 no right edge (ack + window << wscale) beyond the guest's own;
//   S4 TSval toward the sender never goes backwards (PAWS); checksums valid.
#pragma once
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cc/pkt_meta.h"
#include "cc/stages/snoop_stage.h"
#include "cc/tcp_options.h"
#include "cc/tcp_segment.h"
#include "cc/tcp_seq.h"
#include "flowtable/tcp_flow_table.h"
#include "pmd/pmd.h"
#include "tests/common/pkt_builder.h"

namespace vsw::test {

// The one connection every snoop test and benchmark drives: a sender
// (10.0.0.1:40000) behind the network port, a guest (10.0.0.2:5001).
inline TcpSpec snoop_sender_spec() {
  TcpSpec t;
  t.src_ip = 0x0a000001;
  t.dst_ip = 0x0a000002;
  t.sport = 40000;
  t.dport = 5001;
  return t;
}
inline TcpSpec snoop_guest_spec() {  // the same connection, the other way
  TcpSpec t = snoop_sender_spec();
  std::swap(t.src_ip, t.dst_ip);
  std::swap(t.sport, t.dport);
  return t;
}
// NOP, NOP, timestamps option (TSval v, TSecr e).
inline std::vector<uint8_t> ts_option(uint32_t v, uint32_t e) {
  return {1, 1, 8, 10, uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v),
          uint8_t(e >> 24), uint8_t(e >> 16), uint8_t(e >> 8), uint8_t(e)};
}

// A port the simulation drives by hand (kind selectable: vhost-user for the guest).
class SimPort final : public Port {
 public:
  SimPort(std::string n, Kind k) : Port(std::move(n), k) {}
  bool start(unsigned) override { return true; }
  void stop() override {}
  uint16_t n_rxq() const override { return 1; }
  uint16_t rx_burst(uint16_t, rte_mbuf**, uint16_t) override { return 0; }
  uint16_t tx_burst(unsigned, rte_mbuf** p, uint16_t n) override {
    rte_pktmbuf_free_bulk(p, n);
    return n;
  }
  uint64_t tx_offloads() const override { return 0; }
  bool link_up() const override { return up; }
  int rx_ring_free(uint16_t) const override { return ring_free; }
  nlohmann::json describe() const override { return {}; }
  bool up = true;
  int ring_free = -1;
};

class SimCtx final : public PmdContext {
 public:
  SimCtx(Datapath& dp, const TcpFlowConfig& fc) : PmdContext(dp, 0) { flows_ = std::make_unique<TcpFlowTable>(fc); }
  void emit(rte_mbuf* m, uint16_t port) override { out.emplace_back(m, port); }
  void advance(uint32_t ms) {
    now_ms_ += ms;
    now_tsc_ += ms * 1000000ull;
  }
  std::vector<std::pair<rte_mbuf*, uint16_t>> out;
};

// What the PMD does with a burst: frames arriving on in_port become a batch
// (copied into mbufs of `pool`), their TCP segments are tracked in the
// context's flow table, the stage processes it; what it dropped is freed,
// the rest returned in order (they go out of the other port).
inline std::vector<rte_mbuf*> stage_burst(const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port,
                                          rte_mempool* pool, SimCtx& ctx, SnoopStage& stage) {
  Batch b;
  BatchFlows f;
  for (const auto& fr : frames) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) throw std::runtime_error("mbuf");
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(fr.size())), fr.data(), fr.size());
    parse_mbuf(m, in_port);
    b.push(m);
  }
  for (uint16_t i = 0; i < b.n; ++i) {
    b.flow_idx[i] = -1;
    rte_mbuf* m = b.pkts[i];
    if (tcp_segment_from_meta(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), meta(m), 0,
                              f.seg[f.n]))
      b.flow_idx[i] = static_cast<int8_t>(f.n++);
  }
  ctx.flows()->track_bulk(f.seg, f.n, ctx.now_ms(), f.res);
  b.flows = &f;
  b.table = ctx.flows();
  stage.process(b, ctx);
  std::vector<rte_mbuf*> pass;
  for (uint16_t i = 0; i < b.n; ++i) {
    if (b.next[i] == Next::kDrop) rte_pktmbuf_free(b.pkts[i]);
    else pass.push_back(b.pkts[i]);
  }
  return pass;
}

// The switch around the stage: two ports (wire = the sender's side, vm =
// the guest's) on a datapath with a small flow table, and the stage itself
// with the given configuration. The simulations derive from it.
struct SimRig {
  static constexpr uint16_t kWire = 0, kVm = 1;
  SimRig(rte_mempool* mp, Port::Kind wire_kind, Port::Kind vm_kind, const nlohmann::json& cfg)
      : dp_(FdbConfig{}), wire_("wire", wire_kind), vm_("vm", vm_kind) {
    dp_.pool = mp;
    wire_.set_id(kWire);
    vm_.set_id(kVm);
    dp_.ports[kWire].store(&wire_);
    dp_.ports[kVm].store(&vm_);
    TcpFlowConfig fc;
    fc.capacity = 64;
    fc.prefault = false;
    ctx_ = std::make_unique<SimCtx>(dp_, fc);
    stage_ = std::make_unique<SnoopStage>(snoop::config_from_json(cfg), self_);
  }
  Datapath dp_;
  SimPort wire_, vm_;
  std::unique_ptr<SimCtx> ctx_;
  uint8_t self_ = static_cast<uint8_t>(stage_index("snoop") + 1);
  std::unique_ptr<SnoopStage> stage_;
};

struct WirePkt {  // a TCP packet as the sender (or guest) receives it
  uint32_t seq = 0, ack = 0, len = 0;
  uint16_t win = 0;
  uint8_t flags = 0;
  net::TcpOptions opts;
  bool csum_ok = false;
};

inline WirePkt parse_wire(const std::vector<uint8_t>& f) {
  WirePkt w;
  size_t l3 = 14;
  if (f[12] == 0x81 && f[13] == 0) l3 = 18;
  const unsigned ihl = (f[l3] & 0xf) * 4u;
  const unsigned tot = (f[l3 + 2] << 8) | f[l3 + 3];
  const auto* th = reinterpret_cast<const net::TcpHdr*>(f.data() + l3 + ihl);
  w.seq = th->seq.get();
  w.ack = th->ack.get();
  w.win = th->window.get();
  w.flags = th->flags;
  w.len = tot - ihl - th->hdr_len();
  net::parse_tcp_options(th, f.size() - l3 - ihl, w.opts);
  w.csum_ok = FrameBuilder::checksums_ok(f);
  return w;
}

inline std::vector<uint8_t> mbuf_bytes(rte_mbuf* m) {
  std::vector<uint8_t> b(rte_pktmbuf_pkt_len(m));
  const void* d = rte_pktmbuf_read(m, 0, b.size(), b.data());
  if (d != b.data()) std::memcpy(b.data(), d, b.size());
  return b;
}

struct SimOptions {
  bool ts = true, sack = true, midstream = false, vhost_kind = true;
  // The sender's port is a snooped vhost-user port too (VM to VM, or a bed's
  // vhost uplink): the stage first takes the sender for the guest (its SYN
  // comes first) and must swap the roles when the data flows.
  bool wire_snooped = false;
  uint8_t guest_ws = 7;
  uint32_t mss = 1000;
  uint32_t isn_s = 1, isn_g = 5000;
  uint32_t buf_bytes = 64 * 1024;
  uint32_t guest_rbuf = 48 * 1024;
};

// One connection through the stage with a model sender and guest.
class SnoopSim : private SimRig {
 public:
  using SimRig::kVm;
  using SimRig::kWire;

  SnoopSim(rte_mempool* mp, const SimOptions& o, uint64_t seed)
      : SimRig(mp, o.wire_snooped ? Port::Kind::kVhostUser : Port::Kind::kEthdev,
               o.vhost_kind ? Port::Kind::kVhostUser : Port::Kind::kEthdev, stage_config(o)),
        o_(o), rng_(seed) {
    g_.ws = o.guest_ws;
    g_.rbuf = o.guest_rbuf;
    s_.una = s_.nxt = o.isn_s + 1;
    g_.rcv_nxt = o.isn_s + 1;
    g_.snd_nxt = o.isn_g + 1;
    g_.right = g_.rcv_nxt;
    model_right_ = g_.rcv_nxt;
    enq_prefix_ = o.isn_s + 1;
    ring_cap_ = 64;
  }
  ~SnoopSim() {
    for (auto* m : ring_) rte_pktmbuf_free(m);
  }

  // ---------------- the harness ----------------
  std::string fail;  // first violated property
  uint64_t packets_to_sender = 0, early_acks_seen = 0, data_enqueued = 0, ring_refused = 0;

  SnoopStage& stage() { return *stage_; }
  SimPort& vm_port() { return vm_; }
  SimCtx& ctx() { return *ctx_; }

  // Runs the stage over one batch of frames arriving on in_port, forwards the
  // survivors, delivers the guest burst with a prefix limit, then the emitted packets.
  void deliver(const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port) {
    // The PMD's bursts hold at most kBurst packets.
    for (size_t off = 0; off < frames.size(); off += kBurst) {
      const size_t n = std::min<size_t>(kBurst, frames.size() - off);
      deliver_burst(std::vector<std::vector<uint8_t>>(frames.begin() + long(off), frames.begin() + long(off + n)), in_port);
    }
  }
  void deliver_burst(const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port) {
    if (frames.empty()) return;
    std::vector<rte_mbuf*> pass = stage_burst(frames, in_port, dp_.pool, *ctx_, *stage_);
    if (in_port == kVm) {
      for (rte_mbuf* m : pass) to_sender(m);
    } else if (!pass.empty()) {
      burst_to_vm(pass);
    }
    auto out = std::move(ctx_->out);
    ctx_->out.clear();
    for (auto [m, port] : out) {
      if (port != kWire) check(false, "early ACK toward the guest port");
      to_sender(m, true);
    }
  }

  // ---------------- sender model ----------------
  struct Sender {
    uint32_t una, nxt, right = 0;
    bool right_known = false;
    uint32_t ts = 100;
    uint32_t max_ack = 0, max_tsval = 0;
    bool any_ack = false, any_ts = false;
    bool fin_sent = false;
    uint32_t fin_seq = 0;
    uint32_t ts_recent = 0;
  } s_;
  uint32_t total_ = 200000;  // bytes to send

  std::vector<uint8_t> data_frame(uint32_t seq, uint32_t len, bool fin = false, uint8_t extra_flags = 0) {
    TcpSpec t = snoop_sender_spec();
    t.seq = seq;
    t.ack = g_.snd_nxt;
    t.flags = static_cast<uint8_t>(net::tcpflag::kAck | net::tcpflag::kPsh | (fin ? net::tcpflag::kFin : 0) |
                                   extra_flags);
    t.payload = len;
    t.window = 4000;
    if (o_.ts) t.options = ts_option(s_.ts++, s_.ts_recent);
    return FrameBuilder(mac(2), mac(1)).tcp4(t);
  }
  uint32_t sent_end() const { return o_.isn_s + 1 + total_; }
  uint32_t window_room() const {
    if (!s_.right_known) return 0;
    const int32_t r = net::Seq(s_.right) - net::Seq(s_.nxt);
    return r > 0 ? uint32_t(r) : 0;
  }
  // Sends up to n new segments in order (within the window), as one batch.
  void send_new(unsigned n, bool lose_some = false, bool reorder = false, bool dup = false) {
    std::vector<std::vector<uint8_t>> fr;
    for (unsigned k = 0; k < n; ++k) {
      uint32_t room = window_room();
      const int32_t left_s = net::Seq(sent_end()) - net::Seq(s_.nxt);
      const uint32_t left = left_s > 0 ? uint32_t(left_s) : 0;
      if (s_.fin_sent) break;
      if (left == 0) {
        if (rng_() % 4 == 0) {
          s_.fin_sent = true;
          s_.fin_seq = s_.nxt;
          s_.nxt += 1;
          fr.push_back(data_frame(s_.fin_seq, 0, true));
        }
        break;
      }
      uint32_t len = std::min({o_.mss, left, room});
      if (len == 0) {
        if (rng_() % 8 == 0) fr.push_back(data_frame(s_.nxt, 1));  // zero-window probe: beyond the window
        break;
      }
      const bool fin = len == left && rng_() % 3 == 0;
      auto f = data_frame(s_.nxt, len, fin);
      if (fin) {
        s_.fin_sent = true;
        s_.fin_seq = s_.nxt + len;
      }
      s_.nxt += len + (fin ? 1 : 0);
      if (lose_some && rng_() % 3 == 0) continue;  // lost before the switch
      fr.push_back(f);
      if (dup && rng_() % 3 == 0) fr.push_back(f);
    }
    if (reorder && fr.size() >= 2) std::swap(fr[0], fr[1 + rng_() % (fr.size() - 1)]);
    deliver(fr, kWire);
  }
  // Retransmits from una (timeout / fast retransmit).
  void retransmit(unsigned n) {
    std::vector<std::vector<uint8_t>> fr;
    uint32_t seq = s_.una;
    for (unsigned k = 0; k < n && net::Seq(seq) < net::Seq(s_.nxt); ++k) {
      uint32_t end = std::min<uint32_t>(o_.mss, uint32_t(net::Seq(s_.nxt) - net::Seq(seq)));
      const bool fin = s_.fin_sent && seq + end == s_.fin_seq + 1;
      const uint32_t len = fin ? end - 1 : end;
      fr.push_back(data_frame(seq, len, fin));
      seq += end;
    }
    deliver(fr, kWire);
  }

  // ---------------- guest model ----------------
  struct Guest {
    uint32_t rcv_nxt, snd_nxt;
    uint8_t ws;
    uint32_t rbuf, queued = 0;  // socket buffer size, bytes not yet read by the app
    uint32_t right = 0;         // highest right edge advertised
    std::map<uint32_t, uint32_t> ooo;  // start offset -> end (sequence numbers)
    uint32_t ts = 1000000;
    uint32_t ts_recent = 0;
    bool fin_rcvd = false;
    bool app_reads = true;
  } g_;
  std::deque<rte_mbuf*> ring_;
  unsigned ring_cap_;

  uint32_t guest_window() const { return g_.rbuf > g_.queued ? g_.rbuf - g_.queued : 0; }
  void announce() {  // right edge never shrinks
    const uint32_t w = (guest_window() >> g_.ws) << g_.ws;
    const uint32_t r = g_.rcv_nxt + w;
    if (net::Seq(r) > net::Seq(g_.right)) g_.right = r;
    if (net::Seq(g_.right) > net::Seq(model_right_)) model_right_ = g_.right;
  }
  uint16_t guest_raw_window() const {
    const int32_t w = net::Seq(g_.right) - net::Seq(g_.rcv_nxt);
    return static_cast<uint16_t>(std::min<uint32_t>(uint32_t(std::max(0, w)) >> g_.ws, 0xffff));
  }
  std::vector<uint8_t> guest_ack(uint32_t payload = 0, bool fin = false) {
    announce();
    TcpSpec t = snoop_guest_spec();
    t.seq = g_.snd_nxt;
    t.ack = g_.rcv_nxt;
    t.flags = static_cast<uint8_t>(net::tcpflag::kAck | (fin ? net::tcpflag::kFin : 0) | (payload ? net::tcpflag::kPsh : 0));
    t.window = guest_raw_window();
    t.payload = payload;
    g_.snd_nxt += payload + (fin ? 1 : 0);
    std::vector<uint8_t> opts;
    if (o_.ts) opts = ts_option(g_.ts++, g_.ts_recent);
    if (o_.sack && !g_.ooo.empty()) {
      std::vector<uint8_t> s = {1, 1, 5, 0};
      unsigned nb = 0;
      for (auto it = g_.ooo.rbegin(); it != g_.ooo.rend() && nb < 3; ++it, ++nb) push_block(s, it->first, it->second);
      s[3] = static_cast<uint8_t>(2 + 8 * nb);
      opts.insert(opts.end(), s.begin(), s.end());
    }
    t.options = opts;
    return FrameBuilder(mac(1), mac(2)).tcp4(t);
  }
  // The guest runs: processes up to `max` ring packets, acks (each or once).
  void guest_run(unsigned max, bool ack_each, bool send_data = false) {
    std::vector<std::vector<uint8_t>> acks;
    unsigned k = 0;
    while (!ring_.empty() && k++ < max) {
      rte_mbuf* m = ring_.front();
      ring_.pop_front();
      WirePkt w = parse_wire(mbuf_bytes(m));
      rte_pktmbuf_free(m);
      guest_receive(w);
      if (ack_each) acks.push_back(guest_ack());
    }
    if (g_.app_reads) g_.queued = 0;
    if (!ack_each || acks.empty() || send_data) acks.push_back(guest_ack(send_data ? 100 + rng_() % 900 : 0));
    ctx_->advance(1);
    deliver(acks, kVm);
  }
  void guest_receive(const WirePkt& w) {
    if (w.opts.has(net::kOptTs) && net::Seq(w.seq) <= net::Seq(g_.rcv_nxt)) g_.ts_recent = w.opts.ts_val;
    uint32_t s = w.seq, e = w.seq + w.len;
    // The model accepts only bytes below its advertised right edge.
    if (net::Seq(e) > net::Seq(g_.right)) e = g_.right;
    if (net::Seq(s) < net::Seq(e)) {
      if (net::Seq(s) <= net::Seq(g_.rcv_nxt)) {
        if (net::Seq(e) > net::Seq(g_.rcv_nxt)) {
          g_.queued += uint32_t(net::Seq(e) - net::Seq(g_.rcv_nxt));
          g_.rcv_nxt = e;
        }
      } else {
        auto& cur = g_.ooo[s];
        if (net::Seq(e) > net::Seq(cur) || cur == 0) cur = e;
      }
      // Merge out-of-order data that became contiguous.
      for (auto it = g_.ooo.begin(); it != g_.ooo.end();) {
        if (net::Seq(it->first) <= net::Seq(g_.rcv_nxt)) {
          if (net::Seq(it->second) > net::Seq(g_.rcv_nxt)) {
            g_.queued += uint32_t(net::Seq(it->second) - net::Seq(g_.rcv_nxt));
            g_.rcv_nxt = it->second;
          }
          it = g_.ooo.erase(it);
          it = g_.ooo.begin();
        } else {
          ++it;
        }
      }
    }
    if ((w.flags & net::tcpflag::kFin) && w.seq + w.len == g_.rcv_nxt && !g_.fin_rcvd) {
      g_.fin_rcvd = true;
      g_.rcv_nxt += 1;
    }
  }

  // ---------------- handshake ----------------
  void handshake() {
    std::vector<uint8_t> o;
    if (!o_.midstream) {
      TcpSpec syn = snoop_sender_spec();
      syn.seq = o_.isn_s;
      syn.flags = net::tcpflag::kSyn;
      syn.options = syn_opts(7);
      deliver({FrameBuilder(mac(2), mac(1)).tcp4(syn)}, kWire);
      clear_ring();  // the guest consumes the SYN
    }
    // SYN-ACK (or, mid-stream, a plain ACK from the guest first).
    announce();
    TcpSpec sa = snoop_guest_spec();
    sa.seq = o_.midstream ? g_.snd_nxt : o_.isn_g;
    sa.ack = g_.rcv_nxt;
    sa.flags = static_cast<uint8_t>(net::tcpflag::kAck | (o_.midstream ? 0 : net::tcpflag::kSyn));
    const uint32_t w = net::Seq(g_.right) - net::Seq(g_.rcv_nxt);
    sa.window = static_cast<uint16_t>(o_.midstream ? std::min<uint32_t>(w >> g_.ws, 0xffff) : std::min<uint32_t>(w, 0xffff));
    if (!o_.midstream) {
      sa.options = syn_opts(g_.ws);
      g_.right = g_.rcv_nxt + sa.window;  // the SYN-ACK window is unscaled
      model_right_ = g_.right;
    } else if (o_.ts) {
      sa.options = ts_option(g_.ts++, 0);
    }
    deliver({FrameBuilder(mac(1), mac(2)).tcp4(sa)}, kVm);
    if (!o_.midstream) {
      TcpSpec a = snoop_sender_spec();
      a.seq = s_.nxt;
      a.ack = g_.snd_nxt;
      a.flags = net::tcpflag::kAck;
      if (o_.ts) a.options = ts_option(s_.ts++, s_.ts_recent);
      deliver({FrameBuilder(mac(2), mac(1)).tcp4(a)}, kWire);
      clear_ring();
    }
  }

  // ---------------- one randomized case ----------------
  void random_steps(unsigned steps) {
    for (unsigned st = 0; st < steps && fail.empty(); ++st) {
      const unsigned r = rng_() % 100;
      if (r < 30) send_new(1 + rng_() % 8);
      else if (r < 36) send_new(2 + rng_() % 6, true);
      else if (r < 42) send_new(2 + rng_() % 6, false, true);
      else if (r < 46) send_new(2 + rng_() % 4, false, false, true);
      else if (r < 52) retransmit(1 + rng_() % 3);
      else if (r < 72) guest_run(1 + rng_() % 40, rng_() % 2, rng_() % 5 == 0);
      else if (r < 78) ring_cap_ = rng_() % 4 == 0 ? 0 : 1 + rng_() % 48;  // ring full / small
      else if (r < 82) g_.app_reads = rng_() % 3 != 0;                     // window closes
      else if (r < 84) burst_limit_ = rng_() % 3 == 0 ? 1 + rng_() % 4 : 0xffff;
      else if (r < 86) {
        vm_.up = rng_() % 4 != 0;  // guest goes away / comes back
      } else if (r < 88) {
        stage_->set_port(*ctx_, "vm", rng_() % 3 != 0, 0);
      } else if (r < 90) {
        // a second guest ACK with the same number (dup) or an old one (reordered in the guest)
        deliver({guest_ack()}, kVm);
      } else {
        ctx_->advance(1 + rng_() % 20);
        if (rng_() % 2) retransmit(1);
      }
    }
  }
  // Runs to completion: everything sent, delivered and acknowledged by the guest.
  bool drain(unsigned max_steps) {
    vm_.up = true;
    ring_cap_ = 256;
    burst_limit_ = 0xffff;
    g_.app_reads = true;
    stage_->set_port(*ctx_, "vm", true, 0);
    for (unsigned st = 0; st < max_steps && fail.empty(); ++st) {
      if (g_.fin_rcvd && net::Seq(s_.una) == net::Seq(s_.fin_seq + 1)) return true;
      send_new(8);
      guest_run(256, rng_() % 2);
      if (st % 4 == 3) retransmit(4);
      ctx_->advance(5);
    }
    return g_.fin_rcvd && net::Seq(s_.una) == net::Seq(s_.fin_seq + 1);
  }
  void set_total(uint32_t t) { total_ = t; }
  std::string state() const {
    std::ostringstream os;
    os << "sender una " << s_.una << " nxt " << s_.nxt << " right " << s_.right << " fin " << s_.fin_sent << "@"
       << s_.fin_seq << " end " << sent_end() << " | guest rcv_nxt " << g_.rcv_nxt << " right " << g_.right
       << " queued " << g_.queued << " rbuf " << g_.rbuf << " ws " << int(g_.ws) << " fin " << g_.fin_rcvd
       << " ooo " << g_.ooo.size() << " ring " << ring_.size() << "/" << ring_cap_;
    for (uint32_t sl = 0; sl < 64; ++sl)
      if (auto* c = stage_->conn(sl); c && c->gen1)
        os << " | snoop mode " << snoop::mode_name(c->mode) << " enq " << c->enq << " hi " << c->hi << " ack_sent "
           << c->ack_sent << " g_ack " << c->g_ack << " g_right " << c->g_right << " ws " << int(c->ws);
    return os.str();
  }
  void clear_ring() {
    for (auto* m : ring_) rte_pktmbuf_free(m);
    ring_.clear();
  }

 private:
  void check(bool ok, const std::string& what) {
    if (!ok && fail.empty()) fail = what;
  }
  void burst_to_vm(std::vector<rte_mbuf*>& pk) {
    const unsigned free_slots = ring_.size() < ring_cap_ ? ring_cap_ - unsigned(ring_.size()) : 0;
    const unsigned take = std::min<unsigned>({unsigned(pk.size()), free_slots, burst_limit_, vm_.up ? 9999u : 0u});
    for (unsigned k = 0; k < pk.size(); ++k) {
      rte_mbuf* m = pk[k];
      const PktMeta& pm = meta(m);
      const bool sent = k < take;
      if (sent) note_enqueued(m);
      else ++ring_refused;
      if (pm.notify_stage == self_) {
        const uint32_t ck[2] = {pm.cookie[0], pm.cookie[1]};
        stage_->on_tx(*ctx_, kVm, ck, rte_pktmbuf_pkt_len(m), sent);
      }
      if (sent) ring_.push_back(m);
      else rte_pktmbuf_free(m);
    }
    vm_.ring_free = int(ring_cap_ > ring_.size() ? ring_cap_ - ring_.size() : 0);
    Batch none;  // the PMD's end-of-notifications call
    stage_->process(none, *ctx_);
  }
  bool trace_ = std::getenv("SNOOP_SIM_TRACE") != nullptr;
  void note_enqueued(rte_mbuf* m) {
    WirePkt w = parse_wire(mbuf_bytes(m));
    if (trace_) fprintf(stderr, "enq seq %u len %u flags %x guest_right %u prefix %u\n", w.seq, w.len, w.flags, g_.right, enq_prefix_);
    if (w.flags & net::tcpflag::kSyn) return;
    ++data_enqueued;
    // Bytes the guest will accept: below its right edge as of now (it never shrinks).
    uint32_t e = w.seq + w.len;
    if (net::Seq(e) > net::Seq(g_.right)) e = g_.right;
    if (net::Seq(w.seq) < net::Seq(e)) add_range(w.seq, e);
  }
  void add_range(uint32_t s, uint32_t e) {
    auto& cur = enq_[s];
    if (cur == 0 || net::Seq(e) > net::Seq(cur)) cur = e;
    merge();
  }
  // Bytes the guest itself accepted count as delivered too.
  void merge() {
    if (net::Seq(g_.rcv_nxt) > net::Seq(enq_prefix_)) enq_prefix_ = g_.rcv_nxt;
    for (auto it = enq_.begin(); it != enq_.end();) {
      if (net::Seq(it->first) <= net::Seq(enq_prefix_)) {
        if (net::Seq(it->second) > net::Seq(enq_prefix_)) enq_prefix_ = it->second;
        enq_.erase(it);
        it = enq_.begin();
      } else {
        ++it;
      }
    }
  }
  void to_sender(rte_mbuf* m, bool early = false) {
    const auto bytes = mbuf_bytes(m);
    rte_pktmbuf_free(m);
    WirePkt w = parse_wire(bytes);
    if (trace_) fprintf(stderr, "%s ack %u win %u flags %x len %u prefix %u rcv_nxt %u || %s\n", early ? "EARLY" : "guest", w.ack, w.win, w.flags, w.len, enq_prefix_, g_.rcv_nxt, state().c_str());
    ++packets_to_sender;
    if (early) ++early_acks_seen;
    check(w.csum_ok, "bad checksum toward the sender");
    if (w.opts.has(net::kOptTs)) {
      check(!s_.any_ts || net::Seq(w.opts.ts_val) >= net::Seq(s_.max_tsval), "TSval went backwards (PAWS)");
      if (!s_.any_ts || net::Seq(w.opts.ts_val) > net::Seq(s_.max_tsval)) s_.max_tsval = w.opts.ts_val;
      s_.any_ts = true;
      s_.ts_recent = w.opts.ts_val;
    } else if (o_.ts && early) {
      check(false, "early ACK without timestamps on a timestamp connection");
    }
    if (!(w.flags & net::tcpflag::kAck) || (w.flags & net::tcpflag::kSyn)) return;
    // S1: acknowledged bytes are in the ring or acked by the guest itself.
    merge();
    uint32_t allowed = enq_prefix_;
    if (net::Seq(g_.rcv_nxt) > net::Seq(allowed)) allowed = g_.rcv_nxt;
    {
      std::ostringstream os;
      os << "acked byte not enqueued: ack " << w.ack << " allowed " << allowed << (early ? " (early)" : " (guest)");
      check(net::Seq(w.ack) <= net::Seq(allowed), os.str());
    }
    // S2: monotonic.
    if (s_.any_ack) {
      std::ostringstream os;
      os << "ACK went backwards: " << w.ack << " after " << s_.max_ack;
      check(net::Seq(w.ack) >= net::Seq(s_.max_ack), os.str());
    }
    // S3: right edge within the guest's.
    const uint32_t right = w.ack + (uint32_t(w.win) << g_.ws);
    {
      std::ostringstream os;
      os << "window beyond the guest's: right " << right << " guest " << model_right_ << " ack " << w.ack;
      check(net::Seq(right) <= net::Seq(model_right_), os.str());
    }
    if (!s_.any_ack || net::Seq(w.ack) > net::Seq(s_.max_ack)) s_.max_ack = w.ack;
    s_.any_ack = true;
    if (net::Seq(w.ack) > net::Seq(s_.una)) s_.una = w.ack;
    if (net::Seq(s_.una) > net::Seq(s_.nxt)) s_.nxt = s_.una;
    if (!s_.right_known || net::Seq(right) > net::Seq(s_.right)) s_.right = right;
    s_.right_known = true;
  }
  std::vector<uint8_t> syn_opts(uint8_t ws) const {
    std::vector<uint8_t> o = {2, 4, uint8_t(o_.mss >> 8), uint8_t(o_.mss), 1, 3, 3, ws};
    if (o_.sack) o.insert(o.end(), {1, 1, 4, 2});
    if (o_.ts) {
      auto t = ts_option(1, 0);
      o.insert(o.end(), t.begin(), t.end());
    }
    return o;
  }
  static void push_block(std::vector<uint8_t>& s, uint32_t l, uint32_t r) {
    for (uint32_t v : {l, r})
      for (int sh = 24; sh >= 0; sh -= 8) s.push_back(uint8_t(v >> sh));
  }

  static nlohmann::json stage_config(const SimOptions& o) {
    nlohmann::json cfg = {{"buf_bytes", o.buf_bytes}, {"desc_bytes", 1000}};
    if (!o.wire_snooped) cfg["disabled_ports"] = {"wire"};
    return cfg;
  }

  SimOptions o_;
  std::mt19937_64 rng_;
  std::map<uint32_t, uint32_t> enq_;
  uint32_t enq_prefix_ = 0;
  uint32_t model_right_ = 0;
  unsigned burst_limit_ = 0xffff;
};

}  // namespace vsw::test
