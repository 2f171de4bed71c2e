// snoop safety, model-based: thousands of randomized cases (in-order,
// reordered, duplicated, lost, window 0, ring full, partial bursts, guest ACKs
// and data, FIN, guest gone, port disabled, sequence wrap, mid-stream start)
// through the real SnoopStage against the reference model in snoop_sim.h.
// SNOOP_MODEL_CASES overrides the number of cases (default 3000).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <sstream>

#include "tests/common/eal_env.h"
#include "tests/unit/snoop/snoop_sim.h"

using namespace vsw;
using namespace vsw::test;

namespace {

rte_mempool* pool() {
  static rte_mempool* mp = pkt_pool_create("snoop_sim", 16383, 256, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return mp;
}

SimOptions options_for(uint64_t seed) {
  std::mt19937_64 r(seed * 7919 + 1);
  SimOptions o;
  o.ts = r() % 4 != 0;
  o.sack = r() % 3 != 0;
  o.midstream = r() % 5 == 0;
  o.guest_ws = static_cast<uint8_t>(r() % 10);
  o.mss = 200 + r() % 1300;
  // A quarter of the cases start right below 2^32: the transfer wraps.
  o.isn_s = r() % 4 == 0 ? uint32_t(0) - 1 - uint32_t(r() % 20000) : uint32_t(r());
  o.isn_g = uint32_t(r());
  o.buf_bytes = 4096 + r() % 200000;
  o.guest_rbuf = 2000 + r() % 120000;
  o.wire_snooped = r() % 4 == 0;
  return o;
}

}  // namespace

TEST(SnoopModel, RandomizedSafety) {
  const char* env = std::getenv("SNOOP_MODEL_CASES");
  const unsigned cases = env ? unsigned(std::atoi(env)) : 3000;
  uint64_t early = 0, to_sender = 0, refused = 0, completed = 0, swaps = 0;
  for (unsigned c = 0; c < cases; ++c) {
    SnoopSim sim(pool(), options_for(c), c);
    sim.set_total(20000 + uint32_t(c * 7919 % 150000));
    sim.handshake();
    sim.random_steps(150);
    const bool done = sim.drain(3000);
    ASSERT_TRUE(sim.fail.empty()) << "case " << c << ": " << sim.fail;
    EXPECT_TRUE(done) << "case " << c << " did not complete (stuck): " << sim.state();
    early += sim.early_acks_seen;
    to_sender += sim.packets_to_sender;
    refused += sim.ring_refused;
    completed += done;
    swaps += sim.stage().counter(snoop::kRoleSwap);
  }
  // The property checks are only meaningful if the stage really acked early.
  EXPECT_GT(early, cases * 2ull);
  if (cases >= 100) EXPECT_GT(swaps, 0u);  // the role swap was exercised
  RecordProperty("cases", int(cases));
  printf("snoop model: %u cases, %llu completed, %llu early ACKs, %llu packets to the sender, %llu ring refusals, "
         "%llu role swaps\n",
         cases, (unsigned long long)completed, (unsigned long long)early, (unsigned long long)to_sender,
         (unsigned long long)refused, (unsigned long long)swaps);
}

// Directed: a burst the ring takes only partly is acknowledged only up to what went in.
TEST(SnoopModel, PartialBurstAcksPrefixOnly) {
  SimOptions o;
  o.ts = true;
  o.guest_ws = 2;
  SnoopSim sim(pool(), o, 1);
  sim.handshake();
  sim.guest_run(0, false);  // the guest announces its window
  auto& st = sim.stage();
  const uint64_t acks0 = st.counter(snoop::kEarlyAck);
  sim.send_new(1);
  ASSERT_EQ(st.counter(snoop::kEarlyAck), acks0 + 1);
  // Ring room for 2 of the next 5 segments.
  sim.ring_cap_ = unsigned(sim.ring_.size()) + 2;
  sim.send_new(5);
  EXPECT_TRUE(sim.fail.empty()) << sim.fail;
  EXPECT_EQ(st.counter(snoop::kEarlyAck), acks0 + 2);  // one coalesced ACK for the burst
  EXPECT_EQ(st.counter(snoop::kTxRefused), 3u);
  // The last early ACK ends exactly where the last segment the ring took ends.
  ASSERT_FALSE(sim.ring_.empty());
  WirePkt last = parse_wire(mbuf_bytes(sim.ring_.back()));
  EXPECT_EQ(sim.s_.max_ack, last.seq + last.len);
  EXPECT_EQ(sim.ring_.size(), 3u);
}

TEST(SnoopModel, WrapAndMidstream) {
  for (int mid = 0; mid < 2; ++mid) {
    SimOptions o;
    o.midstream = mid;
    o.isn_s = 0xffffff00u;
    SnoopSim sim(pool(), o, 2);
    sim.set_total(100000);
    sim.handshake();
    sim.guest_run(0, false);
    sim.random_steps(100);
    EXPECT_TRUE(sim.drain(3000));
    EXPECT_TRUE(sim.fail.empty()) << sim.fail;
    EXPECT_GT(sim.early_acks_seen, 0u);
  }
}

// Directed: mid-stream re-initialisation (port disabled and enabled again,
// as around a migration) under a sender that never pauses. The guest always
// has a backlog in its ring, so its ACK never reaches the highest byte seen;
// the connection must still leave sync once the guest acknowledges the sync
// point, also after a ring refusal during sync moved that point up.
TEST(SnoopModel, MidstreamSyncCompletesUnderAContinuousSender) {
  SimOptions o;
  o.ts = true;
  o.guest_rbuf = 400000;
  o.buf_bytes = 400000;
  SnoopSim sim(pool(), o, 9);
  sim.set_total(3000000);
  sim.handshake();
  sim.guest_run(0, false);
  auto& st = sim.stage();
  for (int k = 0; k < 10; ++k) {
    sim.send_new(8);
    sim.guest_run(256, false);
  }
  ASSERT_GT(st.counter(snoop::kEarlyAck), 0u);
  st.set_port(sim.ctx(), "vm", false, 0);
  for (int k = 0; k < 6; ++k) {  // the guest falls behind: a standing backlog
    sim.send_new(8);
    sim.guest_run(4, false);
  }
  st.set_port(sim.ctx(), "vm", true, 0);
  const uint64_t early0 = st.counter(snoop::kEarlyAck);
  bool refused = false;
  for (int k = 0; k < 120 && sim.fail.empty(); ++k) {
    if (k == 3) {  // one burst the ring refuses, while in sync
      sim.ring_cap_ = unsigned(sim.ring_.size());
      sim.send_new(4);
      sim.ring_cap_ = 64;
      refused = true;
      sim.retransmit(4);
    }
    if (k % 8 == 7) sim.retransmit(1);  // the sender repairs holes (fast retransmit / RTO)
    sim.send_new(4);
    sim.guest_run(4, false);
    sim.ctx().advance(1);
  }
  ASSERT_TRUE(sim.fail.empty()) << sim.fail;
  EXPECT_TRUE(refused);
  EXPECT_GE(st.counter(snoop::kInitMidstream), 1u);
  EXPECT_GE(st.counter(snoop::kSyncRestart), 1u);
  EXPECT_GE(st.counter(snoop::kSyncDone), 1u) << sim.state();
  EXPECT_GT(st.counter(snoop::kEarlyAck), early0 + 10) << sim.state();
  EXPECT_TRUE(sim.drain(3000)) << sim.state();
  EXPECT_TRUE(sim.fail.empty()) << sim.fail;
}

// ---------------------------------------------------------------------------
// Several connections toward one guest port share its ring. The guest is
// descheduled for long stretches and announces windows far larger than the
// ring; senders send everything their (early-)acknowledged right edge allows.
// Checked after every packet exchange:
//   P1 sum over the connections of ⌈(right edge the sender knows - bytes in the
//      ring or acknowledged by the guest) / desc_bytes⌉ <= free descriptors
//      (MSS = desc_bytes; a short segment, window-limited or the tail, still
//      takes a whole descriptor);
//   P2 the stage's incremental per-port aggregate equals that sum recomputed
//      from its per-connection state (connections without a packet for
//      64-128 ms drop out of it; here they are the ones whose window is below
//      one segment, which a Nagle sender does not use);
//   P3 the ring never refuses a segment (senders that respect their windows
//      cannot together overrun it), and every transfer completes.
namespace {

class MultiSim : private SimRig {
 public:
  static constexpr uint32_t kDesc = 1000;  // desc_bytes and MSS

  struct Flow {
    uint16_t sport;
    uint32_t s_una, s_nxt, s_right = 0, s_end;  // sender
    uint32_t g_rcv, g_snd, g_right;             // guest
    uint32_t enq_end;                            // highest contiguous byte the ring took
  };

  MultiSim(rte_mempool* mp, unsigned nflows, unsigned ring_cap, uint32_t bytes, uint64_t seed)
      : SimRig(mp, Port::Kind::kEthdev, Port::Kind::kVhostUser,
               {{"buf_bytes", 1 << 20}, {"disabled_ports", {"wire"}}, {"desc_bytes", kDesc}}),
        rng_(seed), cap_(ring_cap) {
    vm_.ring_free = int(cap_);
    for (unsigned k = 0; k < nflows; ++k) {
      Flow f{};
      f.sport = static_cast<uint16_t>(40000 + k);
      const uint32_t isn = uint32_t(rng_());
      f.s_una = f.s_nxt = f.g_rcv = f.enq_end = isn + 1;
      f.s_end = isn + 1 + bytes;
      f.g_snd = uint32_t(rng_()) + 1;
      f.g_right = f.g_rcv + 3000;  // SYN-ACK window (unscaled): small, the guest's own promise
      flows_.push_back(f);
      deliver({frame(f, true, net::tcpflag::kSyn, isn, 0, 0, {2, 4, kDesc >> 8, kDesc & 0xff, 1, 3, 3, 7})}, kWire);
      ring_.clear();
      vm_.ring_free = int(cap_);
      deliver({frame(f, false, net::tcpflag::kSyn | net::tcpflag::kAck, f.g_snd - 1, f.g_rcv, 3000,
                     {2, 4, kDesc >> 8, kDesc & 0xff, 1, 3, 3, 7})},
              kVm);
      deliver({frame(f, true, net::tcpflag::kAck, f.s_nxt, f.g_snd, 4000, {})}, kWire);
      ring_.clear();
      vm_.ring_free = int(cap_);
    }
  }
  ~MultiSim() = default;

  std::string fail;
  uint64_t refused = 0, early = 0, max_promise = 0;

  SnoopStage& stage() { return *stage_; }

  // Every sender sends what its window allows (up to `burst` segments), in one batch.
  void senders(unsigned burst) {
    std::vector<std::vector<std::vector<uint8_t>>> per(flows_.size());
    for (auto& f : flows_) {
      auto& fr = per[size_t(&f - flows_.data())];
      for (unsigned n = 0; n < burst; ++n) {
        if (!have_right_[&f - flows_.data()]) break;
        const int32_t room = net::Seq(f.s_right) - net::Seq(f.s_nxt);
        const int32_t left = net::Seq(f.s_end) - net::Seq(f.s_nxt);
        // Full-sized segments only, the transfer's tail excepted (Linux under
        // Nagle: a window-limited sender waits rather than send a short segment).
        const uint32_t len = uint32_t(std::min<int32_t>(int32_t(kDesc), left));
        if (left <= 0 || room < int32_t(len)) break;
        fr.push_back(frame(f, true, net::tcpflag::kAck | net::tcpflag::kPsh, f.s_nxt, f.g_snd, 4000, {}, len));
        f.s_nxt += len;
      }
    }
    // Interleave the flows' segments as a switch would see them (each flow in order).
    std::vector<std::vector<uint8_t>> fr;
    std::vector<size_t> pos(per.size(), 0);
    for (;;) {
      std::vector<size_t> live;
      for (size_t k = 0; k < per.size(); ++k)
        if (pos[k] < per[k].size()) live.push_back(k);
      if (live.empty()) break;
      const size_t k = live[rng_() % live.size()];
      fr.push_back(std::move(per[k][pos[k]++]));
    }
    deliver(fr, kWire);
  }
  // The guest runs: drains the ring, reads everything, acknowledges each flow
  // with a window of `win` bytes (far beyond the ring).
  void guest_runs(uint32_t win) {
    for (auto& e : ring_) {
      Flow& f = flows_[e.flow];
      if (net::Seq(e.seq) <= net::Seq(f.g_rcv) && net::Seq(e.seq + e.len) > net::Seq(f.g_rcv)) f.g_rcv = e.seq + e.len;
    }
    ring_.clear();
    vm_.ring_free = int(cap_);
    std::vector<std::vector<uint8_t>> acks;
    for (auto& f : flows_) {
      const uint32_t r = f.g_rcv + win;
      if (net::Seq(r) > net::Seq(f.g_right)) f.g_right = r;
      acks.push_back(frame(f, false, net::tcpflag::kAck, f.g_snd, f.g_rcv,
                           uint16_t(std::min<uint32_t>(uint32_t(net::Seq(f.g_right) - net::Seq(f.g_rcv)) >> 7, 0xffff)), {}));
    }
    ctx_->advance(1);
    deliver(acks, kVm);
  }
  bool done() const {
    for (const auto& f : flows_)
      if (net::Seq(f.g_rcv) != net::Seq(f.s_end)) return false;
    return true;
  }
  void tick(uint32_t ms) { ctx_->advance(ms); }
  std::string state() const {
    std::ostringstream os;
    for (size_t k = 0; k < flows_.size(); ++k) {
      const Flow& f = flows_[k];
      os << " | flow " << k << " left " << int32_t(net::Seq(f.s_end) - net::Seq(f.s_nxt)) << " room "
         << int32_t(net::Seq(f.s_right) - net::Seq(f.s_nxt)) << " unacked-by-guest "
         << int32_t(net::Seq(f.s_nxt) - net::Seq(f.g_rcv));
    }
    return os.str();
  }

 private:
  struct InRing {
    unsigned flow;
    uint32_t seq, len;
  };
  std::vector<uint8_t> frame(const Flow& f, bool from_sender, uint8_t flags, uint32_t seq, uint32_t ack,
                             uint16_t win, std::vector<uint8_t> opts, uint32_t payload = 0) {
    TcpSpec t = from_sender ? snoop_sender_spec() : snoop_guest_spec();
    if (from_sender) t.sport = f.sport;
    else t.dport = f.sport;
    t.seq = seq;
    t.ack = ack;
    t.flags = flags;
    t.window = win;
    t.options = std::move(opts);
    t.payload = payload;
    return from_sender ? FrameBuilder(mac(2), mac(1)).tcp4(t) : FrameBuilder(mac(1), mac(2)).tcp4(t);
  }
  Flow* by_port(uint16_t p) {
    for (auto& f : flows_)
      if (f.sport == p) return &f;
    return nullptr;
  }
  void deliver(const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port) {
    for (size_t off = 0; off < frames.size(); off += kBurst) {
      const size_t n = std::min<size_t>(kBurst, frames.size() - off);
      burst(std::vector<std::vector<uint8_t>>(frames.begin() + long(off), frames.begin() + long(off + n)), in_port);
      check();
    }
  }
  void burst(const std::vector<std::vector<uint8_t>>& frames, uint16_t in_port) {
    std::vector<rte_mbuf*> to_vm = stage_burst(frames, in_port, dp_.pool, *ctx_, *stage_);
    if (in_port == kVm) {
      for (rte_mbuf* m : to_vm) to_sender(m);
      to_vm.clear();
    }
    for (rte_mbuf* m : to_vm) {  // the ring takes a prefix: what fits
      const bool sent = ring_.size() < cap_;
      const WirePkt w = parse_wire(mbuf_bytes(m));
      if (sent) {
        const unsigned k = unsigned(by_port(sport_of(m)) - flows_.data());
        if (!(w.flags & net::tcpflag::kSyn)) {
          ring_.push_back({k, w.seq, w.len});
          Flow& f = flows_[k];
          if (net::Seq(w.seq) <= net::Seq(f.enq_end) && net::Seq(w.seq + w.len) > net::Seq(f.enq_end))
            f.enq_end = w.seq + w.len;
        }
      } else {
        ++refused;
      }
      const PktMeta& pm = meta(m);
      if (pm.notify_stage == self_) {
        const uint32_t ck[2] = {pm.cookie[0], pm.cookie[1]};
        vm_.ring_free = int(cap_ - ring_.size());
        stage_->on_tx(*ctx_, kVm, ck, rte_pktmbuf_pkt_len(m), sent);
      }
      rte_pktmbuf_free(m);
    }
    vm_.ring_free = int(cap_ - ring_.size());
    Batch none;
    stage_->process(none, *ctx_);
    auto out = std::move(ctx_->out);
    ctx_->out.clear();
    for (auto [m, port] : out) {
      if (port != kWire && fail.empty()) fail = "early ACK toward the guest port";
      ++early;
      to_sender(m);
    }
  }
  static uint16_t sport_of(rte_mbuf* m) {
    const auto b = mbuf_bytes(m);
    return static_cast<uint16_t>((b[34] << 8) | b[35]);  // untagged IPv4, 20-byte header
  }
  void to_sender(rte_mbuf* m) {
    const auto bytes = mbuf_bytes(m);
    rte_pktmbuf_free(m);
    const WirePkt w = parse_wire(bytes);
    if (!(w.flags & net::tcpflag::kAck) || (w.flags & net::tcpflag::kSyn)) return;
    Flow* f = by_port(static_cast<uint16_t>((bytes[36] << 8) | bytes[37]));
    if (!f) return;
    const size_t k = size_t(f - flows_.data());
    const uint32_t right = w.ack + (uint32_t(w.win) << 7);
    if (std::getenv("MULTI_TRACE"))
      fprintf(stderr, "flow %zu ack +%d right +%d free %d agg %llu ring %zu\n", k,
              int32_t(net::Seq(w.ack) - net::Seq(f->enq_end)), int32_t(net::Seq(right) - net::Seq(f->enq_end)),
              vm_.ring_free, (unsigned long long)stage_->port_promised(kVm, ctx_->now_ms()), ring_.size());
    if (!have_right_[k] || net::Seq(right) > net::Seq(f->s_right)) f->s_right = right;
    have_right_[k] = true;
    if (net::Seq(w.ack) > net::Seq(f->s_una)) f->s_una = w.ack;
  }
  void check() {
    // P1: what the senders may still send fits into what the ring can still take.
    uint64_t promise = 0;
    for (size_t k = 0; k < flows_.size(); ++k) {
      const Flow& f = flows_[k];
      if (!have_right_[k]) continue;
      uint32_t base = f.enq_end;
      if (net::Seq(f.g_rcv) > net::Seq(base)) base = f.g_rcv;
      // What the sender may still send: up to its right edge, no more than it
      // has, in full-sized segments (the tail excepted: one descriptor).
      const int32_t room = net::Seq(f.s_right) - net::Seq(base);
      const int32_t rest = net::Seq(f.s_end) - net::Seq(base);
      if (room <= 0 || rest <= 0) continue;
      promise += rest <= room ? (uint32_t(rest) + kDesc - 1) / kDesc : uint32_t(room) / kDesc;
    }
    max_promise = std::max(max_promise, promise);
    const uint64_t room = uint64_t(cap_ - ring_.size());
    if (promise > room && fail.empty()) {
      std::ostringstream os;
      os << "P1: promised " << promise << " descriptors > free " << room << " (ring " << ring_.size() << "/" << cap_
         << "); stage aggregate " << stage_->port_promised(kVm, ctx_->now_ms());
      for (size_t k = 0; k < flows_.size(); ++k) {
        const Flow& f = flows_[k];
        os << " | flow " << k << " right+" << int32_t(net::Seq(f.s_right) - net::Seq(f.enq_end)) << " g_rcv-enq "
           << int32_t(net::Seq(f.g_rcv) - net::Seq(f.enq_end));
      }
      for (uint32_t sl = 0; sl < 64; ++sl)
        if (const snoop::Conn* c = stage_->conn(sl); c && c->gen1)
          os << " | conn " << sl << " " << snoop::mode_name(c->mode) << " right_sent-enq "
             << int32_t(net::Seq(c->right_sent) - net::Seq(c->enq)) << " promised " << c->promised;
      fail = os.str();
    }
    // P2: the stage's incremental aggregate equals the sum of its connections' promises.
    uint64_t sum = 0;
    const uint16_t now_slot = static_cast<uint16_t>(ctx_->now_ms() >> 6);
    for (uint32_t sl = 0; sl < 64; ++sl) {
      const snoop::Conn* c = stage_->conn(sl);
      if (!c || !c->gen1 || c->gport != kVm || !c->acct_epoch) continue;
      if (c->acct_slot != now_slot && uint16_t(c->acct_slot + 1) != now_slot) continue;  // idle: dropped out
      const bool live = c->mode == snoop::Mode::kActive || c->mode == snoop::Mode::kOfflineOoo ||
                        c->mode == snoop::Mode::kOfflineNoBuf || c->mode == snoop::Mode::kSync;
      const int32_t d = net::Seq(c->right_sent) - net::Seq(c->enq);
      if (live && d > 0) sum += (uint32_t(d) + kDesc - 1) / kDesc;
    }
    if (sum != stage_->port_promised(kVm, ctx_->now_ms()) && fail.empty()) {
      std::ostringstream os;
      os << "P2: aggregate " << stage_->port_promised(kVm, ctx_->now_ms()) << " != recomputed " << sum;
      fail = os.str();
    }
  }

  std::mt19937_64 rng_;
  unsigned cap_;
  std::vector<Flow> flows_;
  std::deque<InRing> ring_;
  std::map<size_t, bool> have_right_;
};

}  // namespace

TEST(SnoopModel, ConcurrentFlowsNeverOverpromiseTheRing) {
  uint64_t early = 0, maxp = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 r(seed);
    const unsigned nflows = 2 + unsigned(r() % 11);  // 2..12 connections
    const unsigned cap = 32 + unsigned(r() % 225);   // 32..256 descriptors
    MultiSim sim(pool(), nflows, cap, 30000 + uint32_t(r() % 200000), seed);
    unsigned steps = 0;
    sim.guest_runs(400000);  // the guest's first window update: 400 KB per connection
    while (!sim.done() && steps++ < 4000 && sim.fail.empty()) {
      const unsigned x = unsigned(r() % 10);
      if (x < 6) sim.senders(1 + unsigned(r() % 16));  // the guest is descheduled: only the switch answers
      else if (x < 8) sim.guest_runs(200000 + uint32_t(r() % 400000));
      else sim.tick(1 + unsigned(r() % 30));
    }
    ASSERT_TRUE(sim.fail.empty()) << "seed " << seed << " (" << nflows << " flows, ring " << cap << "): " << sim.fail;
    EXPECT_TRUE(sim.done()) << "seed " << seed << ": transfers did not complete: " << sim.state();
    EXPECT_EQ(sim.refused, 0u) << "seed " << seed << ": the ring refused segments";
    early += sim.stage().counter(snoop::kEarlyAck);
    maxp = std::max(maxp, sim.max_promise);
  }
  EXPECT_GT(early, 1000u);  // the stage did act: many early ACKs while the guest was away
  printf("snoop multi-connection: %llu early ACKs, largest aggregate promise %llu descriptors\n",
         (unsigned long long)early, (unsigned long long)maxp);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new EalEnv);
  return RUN_ALL_TESTS();
}
