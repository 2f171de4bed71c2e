#include "pmd/pmd.h"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_launch.h>
#include <rte_prefetch.h>
#include <rte_lcore.h>
#include <sys/prctl.h>
#include <time.h>

#include "cc/pkt_meta.h"
#include "pmd/offload.h"
#include "pmd/rcu.h"
#include "vswitch/log.h"

namespace vsw {

namespace {
constexpr uint64_t kOffloadRequestMask = RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM;
}  // namespace

Datapath::Datapath(const FdbConfig& fc) : fdb(fc) {
  for (auto& p : ports) p.store(nullptr);
  for (auto& s : stage_on) s.store(false);
}
Datapath::~Datapath() = default;

Pmd::Pmd(Datapath& dp, unsigned index, unsigned lcore)
    : PmdContext(dp, index), lcore_(lcore), poll_(new PollList), txbufs_(new TxBuf[kMaxPorts]) {}

Pmd::~Pmd() {
  delete poll_.load();
  for (rte_ring* r : in_rings_) {
    if (!r) continue;
    rte_mbuf* m;
    while (rte_ring_sc_dequeue(r, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
    rte_ring_free(r);
  }
}

bool Pmd::init(const std::vector<nlohmann::json>& stage_configs, unsigned n_pmds) {
  n_pmds_ = n_pmds;
  const auto& reg = stage_registry();
  stages_.resize(reg.size());
  for (int si : dp_.stage_order) {
    const nlohmann::json& c = stage_configs.at(static_cast<size_t>(si));
    stages_[static_cast<size_t>(si)] = reg[static_cast<size_t>(si)].make(StageInit{index_, c});
  }
  bool tcp = false;
  for (int si : dp_.stage_order) tcp |= reg[static_cast<size_t>(si)].tcp;
  if (tcp) {
    flows_ = std::make_unique<TcpFlowTable>(dp_.cfg.flows);
    batch_flows_ = std::make_unique<BatchFlows>();
  }
  in_rings_.assign(n_pmds, nullptr);
  for (unsigned src = 0; src < n_pmds; ++src) {
    if (src == index_) continue;
    char name[RTE_RING_NAMESIZE];
    static std::atomic<unsigned> seq{0};
    snprintf(name, sizeof(name), "vsw_ho%u_%u_%u", seq.fetch_add(1), src, index_);
    in_rings_[src] = rte_ring_create(name, dp_.cfg.handoff_ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!in_rings_[src]) {
      log()->error("pmd {}: cannot create handoff ring {}", index_, name);
      return false;
    }
  }
  gso_.direct_pool = dp_.pool;
  gso_.indirect_pool = dp_.indirect_pool;
  gso_.flag = 0;
  tick_cycles_ = rte_get_tsc_hz() / 1000000 * dp_.cfg.tick_us;
  emitted_.reserve(kBatchMax);
  return true;
}

static int pmd_trampoline(void* arg) { return static_cast<Pmd*>(arg)->run(); }

bool Pmd::launch() {
  stop_.store(false);
  running_.store(true);  // from now on call() waits for the loop instead of running inline
  if (rte_eal_remote_launch(pmd_trampoline, this, lcore_) == 0) return true;
  running_.store(false);
  return false;
}

void Pmd::join() {
  request_stop();
  rte_eal_wait_lcore(lcore_);
}

bool Pmd::call(const std::function<void(Pmd&)>& fn, std::chrono::milliseconds timeout) {
  std::lock_guard serial(call_serial_);
  if (!running_.load()) {
    fn(*this);
    return true;
  }
  std::unique_lock lk(call_.mu);
  call_.fn = &fn;
  call_.done = false;
  call_pending_.store(true, std::memory_order_release);
  if (call_.cv.wait_for(lk, timeout, [&] { return call_.done; })) return true;
  // Withdraw the request; the PMD checks fn under the same mutex.
  call_.fn = nullptr;
  call_pending_.store(false);
  return false;
}

void Pmd::serve_call() {
  std::lock_guard lk(call_.mu);
  call_pending_.store(false, std::memory_order_relaxed);
  if (!call_.fn) return;
  (*call_.fn)(*this);
  call_.fn = nullptr;
  call_.done = true;
  call_.cv.notify_all();
}

void Pmd::set_poll_list(std::unique_ptr<PollList> pl) {
  const PollList* old = poll_.exchange(pl.release(), std::memory_order_acq_rel);
  rcu().synchronize();
  delete old;
}

void Pmd::clear_stats() {
  // Only counters that are pure sums; readers tolerate a torn reset.
  for (Counter* c : {&stats_.iterations, &stats_.busy_cycles, &stats_.idle_cycles, &stats_.rx_packets,
                     &stats_.tx_packets, &stats_.sleeps, &stats_.sleep_ns, &stats_.tx_stalls})
    c->reset();
}

void Pmd::emit(rte_mbuf* m, uint16_t out_port) {
  stats_.stage_emitted.add();
  if (out_port == kNoPort) emitted_.push_back(m);
  else emitted_direct_.emplace_back(m, out_port);
}

bool Pmd::ingress_vlan(Port& p, rte_mbuf* m) {
  PktMeta& pm = meta(m);
  const bool tagged = pm.flags & net::kFlagVlan;
  switch (p.vlan.mode) {
    case VlanMode::kNone:
      return true;  // pm.vlan already holds the frame's tag (0 if untagged)
    case VlanMode::kAccess:
      if (tagged) return false;
      pm.vlan = p.vlan.tag;
      return true;
    case VlanMode::kTrunk:
      if (!tagged) {
        if (p.vlan.tag == 0) return false;  // no native VLAN
        pm.vlan = p.vlan.tag;
        return true;
      }
      return p.vlan.allows(pm.vlan);
  }
  return false;
}

void Pmd::process_rx(Port* p, rte_mbuf** pkts, uint16_t n) {
  // p was loaded once this iteration: the table slot may be cleared meanwhile,
  // but the object lives until our grace period ends.
  const uint16_t port_id = p->id();
  PortCounters& pc = p->counters(index_);
  Batch b;
  uint64_t bytes = 0;
  const bool handoff = dp_.handoff_on.load(std::memory_order_relaxed);
  for (uint16_t i = 0; i < n && i < 4; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (i + 4 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 4], void*));
    bytes += rte_pktmbuf_pkt_len(m);
    if (__builtin_expect(rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN, 0)) {
      // Not even two MACs to switch on: always dropped, whatever the policy.
      stats_.parse_err[static_cast<size_t>(net::ParseError::kRunt)].add();
      stats_.drop_malformed.add();
      pc.rx_malformed.add();
      rte_pktmbuf_free(m);
      continue;
    }
    // Pure L2 switching reads no further than the VLAN tag; guest offload
    // requests and enabled stages need the L3/L4 headers validated.
    const bool l2_only = !parse_full_ && !(m->ol_flags & kOffloadRequestMask);
    net::Parsed pr = parse_mbuf(m, port_id, handoff, l2_only);
    if (__builtin_expect(pr.malformed(), 0)) {
      stats_.parse_err[static_cast<size_t>(pr.err)].add();
      pc.rx_malformed.add();
      if (dp_.cfg.drop_malformed) {
        stats_.drop_malformed.add();
        rte_pktmbuf_free(m);
        continue;
      }
    }
    if (__builtin_expect(!sanitize_rx_offload(m), 0)) {
      pc.rx_bad_offload.add();
      rte_pktmbuf_free(m);
      continue;
    }
    if (__builtin_expect(!ingress_vlan(*p, m), 0)) {
      pc.rx_vlan_drop.add();
      rte_pktmbuf_free(m);
      continue;
    }
    b.push(m);
  }
  pc.rx_packets.add(n);
  pc.rx_bytes.add(bytes);
  stats_.rx_packets.add(n);
  if (handoff) b.n = static_cast<uint16_t>(handoff_filter(b.pkts, b.n));
  run_pipeline(b);
}

unsigned Pmd::handoff_filter(rte_mbuf** pkts, unsigned n) {
  rte_mbuf* out[kMaxPmds][kBatchMax];
  unsigned cnt[kMaxPmds] = {};
  unsigned keep = 0;
  for (unsigned i = 0; i < n; ++i) {
    const PktMeta& pm = meta(pkts[i]);
    unsigned owner = (pm.flags & net::kFlagTcp) && pm.flow_hash ? pm.flow_hash % n_pmds_ : index_;
    if (owner == index_) pkts[keep++] = pkts[i];
    else out[owner][cnt[owner]++] = pkts[i];
  }
  for (unsigned o = 0; o < n_pmds_; ++o) {
    if (!cnt[o]) continue;
    rte_ring* r = dp_.pmds[o]->handoff_ring_from(index_);
    unsigned sent = rte_ring_sp_enqueue_burst(r, reinterpret_cast<void**>(out[o]), cnt[o], nullptr);
    stats_.handoff_out.add(sent);
    if (sent < cnt[o]) {
      stats_.handoff_full.add(cnt[o] - sent);
      rte_pktmbuf_free_bulk(out[o] + sent, cnt[o] - sent);
    }
  }
  return keep;
}

void Pmd::drain_handoff() {
  for (rte_ring* r : in_rings_) {
    if (!r) continue;
    Batch b;
    b.n = static_cast<uint16_t>(rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(b.pkts), kBurst, nullptr));
    if (!b.n) continue;
    for (uint16_t i = 0; i < b.n; ++i) b.next[i] = Next::kForward;
    stats_.handoff_in.add(b.n);
    run_pipeline(b);
  }
}

bool Pmd::any_stage_on() const {
  for (int si : dp_.stage_order)
    if (dp_.stage_on[static_cast<size_t>(si)].load(std::memory_order_relaxed)) return true;
  return false;
}

bool Pmd::tcp_stage_on() const {
  if (!flows_) return false;
  const auto& reg = stage_registry();
  for (int si : dp_.stage_order)
    if (reg[static_cast<size_t>(si)].tcp && dp_.stage_on[static_cast<size_t>(si)].load(std::memory_order_relaxed))
      return true;
  return false;
}

// One bulk lookup/update of the flow table for the batch's TCP packets; the
// TCP stages then read b.seg(i) / b.track(i).
void Pmd::track_flows(Batch& b) {
  BatchFlows& f = *batch_flows_;
  f.n = 0;
  for (uint16_t i = 0; i < b.n; ++i) {
    b.flow_idx[i] = -1;
    rte_mbuf* m = b.pkts[i];
    const PktMeta& pm = meta(m);
    if (!(pm.flags & net::kFlagTcp) || (pm.flags & net::kFlagMalformed)) continue;
    const uint16_t gso = (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG) ? m->tso_segsz : 0;
    if (tcp_segment_from_meta(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), pm, gso, f.seg[f.n])) {
      flows_->prefetch(f.seg[f.n].hash);  // the bucket arrives while the rest of the batch is built
      b.flow_idx[i] = static_cast<int8_t>(f.n++);
    }
  }
  flows_->track_bulk(f.seg, f.n, now_ms_, f.res);
  b.flows = &f;
  b.table = flows_.get();
}

void Pmd::run_pipeline(Batch& b) {
  if (b.n && tcp_stage_on()) track_flows(b);
  for (int si : dp_.stage_order)
    if (dp_.stage_on[static_cast<size_t>(si)].load(std::memory_order_relaxed))
      stages_[static_cast<size_t>(si)]->process(b, *this);
  unsigned nf = 0;
  for (uint16_t i = 0; i < b.n; ++i) {
    switch (b.next[i]) {
      case Next::kForward: b.pkts[nf++] = b.pkts[i]; break;
      case Next::kDrop:
        stats_.drop_stage.add();
        rte_pktmbuf_free(b.pkts[i]);
        break;
      case Next::kConsumed: break;
    }
  }
  l2_forward(b.pkts, static_cast<uint16_t>(nf));
  if (!emitted_.empty()) {
    // Stage-built packets skip learning: they impersonate an endpoint.
    std::vector<rte_mbuf*> em;
    em.swap(emitted_);
    for (size_t off = 0; off < em.size(); off += kBatchMax)
      l2_forward(em.data() + off, static_cast<uint16_t>(std::min<size_t>(kBatchMax, em.size() - off)));
  }
  if (!emitted_direct_.empty()) {
    // Swap first: a transmit notification raised inside to_port may emit more.
    std::vector<std::pair<rte_mbuf*, uint16_t>> ed;
    ed.swap(emitted_direct_);
    for (auto [m, port] : ed) to_port(port, m);
  }
}

void Pmd::l2_forward(rte_mbuf** pkts, uint16_t n) {
  if (!n) return;
  uint64_t keys[kBatchMax];
  uint16_t dst[kBatchMax];
  for (uint16_t i = 0; i < n; ++i) {
    const auto* eh = rte_pktmbuf_mtod(pkts[i], const rte_ether_hdr*);
    keys[i] = Fdb::make_key(eh->dst_addr.addr_bytes, meta(pkts[i]).vlan);
  }
  dp_.fdb.lookup_bulk(keys, n, dst);
  uint64_t last_src_key = 0;
  uint16_t last_src_port = kNoPort;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    const PktMeta& pm = meta(m);
    const auto* eh = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const uint64_t src_key = Fdb::make_key(eh->src_addr.addr_bytes, pm.vlan);
    // Bursts mostly come from one sender: learn each (source, port) once per batch.
    if (!(eh->src_addr.addr_bytes[0] & 1) && pm.in_port != kNoPort &&
        (src_key != last_src_key || pm.in_port != last_src_port)) {
      last_src_key = src_key;
      last_src_port = pm.in_port;
      switch (dp_.fdb.learn(src_key, pm.in_port, now_s_)) {
        case LearnResult::kLearned: stats_.fdb_learned.add(); break;
        case LearnResult::kMoved: stats_.fdb_moved.add(); break;
        case LearnResult::kFull: stats_.fdb_full.add(); break;
        default: break;
      }
    }
    const uint16_t out = (eh->dst_addr.addr_bytes[0] & 1) ? kFdbNoPort : dst[i];
    if (out != kFdbNoPort) {
      if (out == pm.in_port) {
        stats_.drop_same_port.add();
        rte_pktmbuf_free(m);
      } else {
        to_port(out, m);
      }
      continue;
    }
    // Flood: broadcast, multicast, unknown unicast, within the VLAN.
    uint16_t targets[kMaxPorts];
    unsigned nt = 0;
    for (uint16_t pid = 0; pid < kMaxPorts; ++pid) {
      Port* p = dp_.port(pid);
      if (!p || pid == pm.in_port) continue;
      const VlanConfig& v = p->vlan;
      bool member = v.mode == VlanMode::kNone ? true
                    : v.mode == VlanMode::kAccess ? v.tag == pm.vlan
                                                  : (pm.vlan == v.tag || v.allows(pm.vlan));
      if (member) targets[nt++] = pid;
    }
    if (nt == 0) {
      rte_pktmbuf_free(m);
      continue;
    }
    stats_.flood_packets.add();
    // Offload requests are completed in place per egress: give each egress its own copy then.
    const bool private_copy = m->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM);
    if (!private_copy) rte_mbuf_refcnt_update(m, static_cast<int16_t>(nt - 1));
    for (unsigned t = 0; t < nt; ++t) {
      rte_mbuf* c = m;
      if (private_copy && t + 1 < nt) {
        c = pkt_copy(m, dp_.pool);
        if (!c) {
          stats_.drop_no_mbuf.add();
          continue;
        }
      }
      to_port(targets[t], c);
    }
  }
}

void Pmd::to_port(uint16_t port_id, rte_mbuf* m) {
  Port* p = dp_.port(port_id);
  if (!p) {
    stats_.drop_no_port.add();
    rte_pktmbuf_free(m);
    return;
  }
  // Egress VLAN: access ports and a trunk's native VLAN are untagged.
  const auto* eh = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  const bool tagged = eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
  const uint16_t vlan = meta(m).vlan;
  bool want_tag = tagged;
  if (p->vlan.mode == VlanMode::kAccess) want_tag = false;
  else if (p->vlan.mode == VlanMode::kTrunk) want_tag = vlan != p->vlan.tag && vlan != 0;
  if (want_tag != tagged) {
    if (rte_mbuf_refcnt_read(m) > 1 || RTE_MBUF_CLONED(m)) {
      rte_mbuf* c = pkt_copy(m, dp_.pool);
      rte_pktmbuf_free(m);
      if (!c) {
        stats_.drop_no_mbuf.add();
        return;
      }
      m = c;
    }
    if (want_tag) {
      m->vlan_tci = vlan;
      if (rte_vlan_insert(&m) != 0) {
        stats_.drop_vlan.add();
        rte_pktmbuf_free(m);
        return;
      }
      m->l2_len += sizeof(rte_vlan_hdr);
    } else {
      rte_vlan_strip(m);
      m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
      m->l2_len -= sizeof(rte_vlan_hdr);
    }
  }
  TxBuf& tb = txbufs_[port_id];
  rte_mbuf* segs[kBatchMax];
  unsigned ns;
  if (__builtin_expect(!(m->ol_flags & kOffloadRequestMask), 1)) {
    segs[0] = m;  // nothing to complete: the common case skips the fix-up call
    ns = 1;
  } else {
    ns = fixup_for_egress(m, p->tx_offloads(), gso_, segs, kBatchMax, p->counters(index_));
  }
  for (unsigned s = 0; s < ns; ++s) {
    if (!tb.dirty) {
      tb.dirty = true;
      tb.port = p;  // flushes use this pointer even if the table slot is cleared meanwhile
      dirty_[n_dirty_++] = port_id;
    }
    tb.pkts[tb.n++] = segs[s];
    if (tb.n == 2 * kBurst) send_txbuf(*p, tb);
  }
}

void Pmd::send_txbuf(Port& p, TxBuf& tb) {
  struct Note {
    uint8_t stage;
    uint32_t len;
    uint32_t cookie[2];
  };
  Note notes[2 * kBurst];
  bool notify = false;
  uint64_t bytes = 0;
  for (uint16_t k = 0; k < tb.n; ++k) {
    const uint32_t len = rte_pktmbuf_pkt_len(tb.pkts[k]);
    bytes += len;
    const PktMeta& pm = meta(tb.pkts[k]);
    notes[k].stage = pm.notify_stage;
    if (pm.notify_stage) {
      notify = true;
      notes[k].len = len;
      notes[k].cookie[0] = pm.cookie[0];
      notes[k].cookie[1] = pm.cookie[1];
    }
  }
  const uint16_t cnt = tb.n;
  tb.n = 0;
  uint16_t sent = p.tx_burst(index_, tb.pkts, cnt);  // takes ownership of all cnt mbufs
  if (notify) {
    notified_ = true;
    // Devices take a prefix of the burst: packets [0, sent) went out.
    for (uint16_t k = 0; k < cnt; ++k)
      if (notes[k].stage && notes[k].stage <= stages_.size())
        if (Stage* s = stages_[notes[k].stage - 1u].get()) s->on_tx(*this, p.id(), notes[k].cookie, notes[k].len, k < sent);
  }
  auto& pc = p.counters(index_);
  pc.tx_packets.add(sent);
  pc.tx_bytes.add(sent == cnt ? bytes : bytes * sent / cnt);
  stats_.tx_packets.add(sent);
}

void Pmd::flush_tx() {
  for (uint16_t i = 0; i < n_dirty_; ++i) {
    TxBuf& tb = txbufs_[dirty_[i]];
    tb.dirty = false;
    if (!tb.n) continue;
    // Ports are freed only after a grace period, and buffers are flushed
    // before each iteration ends, so tb.port is still alive.
    send_txbuf(*tb.port, tb);
  }
  n_dirty_ = 0;
  // After transmit notifications, stages get an empty process() call (the end
  // of the notifications: e.g. snoop sends one coalesced early ACK per
  // connection), and what stages emitted (sent only once the guest ring took
  // the data) leaves now rather than at the next batch.
  if (notified_ || !emitted_.empty() || !emitted_direct_.empty()) {
    notified_ = false;
    Batch none;
    run_pipeline(none);
    for (uint16_t i = 0; i < n_dirty_; ++i) {
      TxBuf& tb = txbufs_[dirty_[i]];
      tb.dirty = false;
      if (tb.n) send_txbuf(*tb.port, tb);
    }
    n_dirty_ = 0;
  }
}

int Pmd::run() {
  rcu_slot_ = rcu().register_thread();
  prctl(PR_SET_TIMERSLACK, 1000UL);  // 1 us: idle sleeps stay short
  running_.store(true);
  const uint64_t hz = rte_get_tsc_hz();
  // ms = tsc * ms_mult / 2^64
  const uint64_t ms_mult = static_cast<uint64_t>((static_cast<unsigned __int128>(1000) << 64) / hz);
  const uint64_t max_sleep_ns = uint64_t(dp_.cfg.idle_sleep_max_us) * 1000;
  uint64_t sleep_ns = 0;
  unsigned empty_iters = 0;
  rte_mbuf* pkts[kBurst];
  // rx_seen_tsc_: the previous iteration's start unless that iteration was
  // still working off a backlog (a full burst); then the older value holds,
  // for at most 50 ms (a PMD that never drains is not stalled but saturated).
  uint64_t prev_t0 = 0;
  bool prev_full = false;
  const uint64_t seen_hold_max = hz / 20;
  const uint64_t stall_min = hz / 1'000'000 * kStallMinUs;
  auto note_stall = [&](uint64_t from, uint64_t to) {
    if (to - from < stall_min) return;
    tx_stalls_[tx_stall_next_] = {from, to};
    stats_.tx_stalls.add();
    tx_stall_next_ = (tx_stall_next_ + 1) % kStalls;
  };
  log()->info("pmd {} running on lcore {} (idle sleep max {} us)", index_, lcore_, dp_.cfg.idle_sleep_max_us);
  while (!stop_.load(std::memory_order_relaxed)) {
    rcu().enter(rcu_slot_);
    const uint64_t t0 = rte_rdtsc();
    now_tsc_ = t0;
    if (!prev_full || !rx_seen_tsc_ || t0 - rx_seen_tsc_ > seen_hold_max) rx_seen_tsc_ = prev_t0 ? prev_t0 : t0;
    prev_t0 = t0;
    prev_full = false;
    // Clocks by multiplication (a 64-bit division per iteration is measurable).
    now_ms_ = static_cast<uint32_t>((static_cast<unsigned __int128>(t0) * ms_mult) >> 64);
    now_s_ = now_ms_ / 1000;
    parse_full_ = dp_.cfg.parse_full || dp_.cfg.drop_malformed || any_stage_on();
    const PollList* pl = poll_.load(std::memory_order_acquire);
    uint32_t got = 0;
    uint64_t t_prev = t0;  // rx queue cycles: from the end of the previous busy queue
    for (const RxqRef& r : pl->rxqs) {
      Port* p = dp_.port(r.port);
      if (!p) continue;
      uint16_t n = p->rx_burst(r.queue, pkts, kBurst);
      if (!n) continue;
      got += n;
      prev_full |= n == kBurst;
      process_rx(p, pkts, n);
      flush_tx();
      const uint64_t t_now = rte_rdtsc();
      note_stall(t_prev, t_now);
      RxqStats& rs = p->rxq_stats(r.queue);
      rs.packets.add(n);
      rs.cycles.add(t_now - t_prev);
      t_prev = t_now;
    }
    if (n_pmds_ > 1) {
      const uint64_t t_h = rte_rdtsc();
      drain_handoff();
      flush_tx();
      note_stall(t_h, rte_rdtsc());
    }
    if (t0 - last_tick_ >= tick_cycles_) {
      last_tick_ = t0;
      if (flows_) flows_->tick(now_ms_);
      for (int si : dp_.stage_order)
        if (dp_.stage_on[static_cast<size_t>(si)].load(std::memory_order_relaxed))
          stages_[static_cast<size_t>(si)]->tick(*this, t0);
      if (!emitted_.empty() || !emitted_direct_.empty()) {
        Batch none;
        run_pipeline(none);
      }
      flush_tx();
    }
    if (__builtin_expect(call_pending_.load(std::memory_order_acquire), 0)) serve_call();
    const uint64_t t1 = rte_rdtsc();
    stats_.iterations.add();
    (got ? stats_.busy_cycles : stats_.idle_cycles).add(t1 - t0);
    rcu().leave(rcu_slot_);
    if (got || !max_sleep_ns) {
      empty_iters = 0;
      sleep_ns = 0;
      continue;
    }
    if (++empty_iters < 32) continue;
    sleep_ns = std::min(max_sleep_ns, sleep_ns ? sleep_ns * 2 : 1000);
    timespec ts{0, static_cast<long>(sleep_ns)};
    nanosleep(&ts, nullptr);
    stats_.sleeps.add();
    stats_.sleep_ns.add(sleep_ns);
  }
  running_.store(false);
  rcu().unregister_thread(rcu_slot_);
  return 0;
}

nlohmann::json Pmd::stats_json() const {
  const PmdStats& s = stats_;
  const uint64_t busy = s.busy_cycles.get(), idle = s.idle_cycles.get(), rx = s.rx_packets.get();
  nlohmann::json perr = nlohmann::json::object();
  for (size_t i = 1; i < static_cast<size_t>(net::ParseError::kCount); ++i)
    if (uint64_t v = s.parse_err[i].get()) perr[std::string(net::parse_error_name(static_cast<net::ParseError>(i)))] = v;
  return {{"pmd", index_},
          {"lcore", lcore_},
          {"iterations", s.iterations.get()},
          {"busy_cycles", busy},
          {"idle_cycles", idle},
          {"busy_pct", busy + idle ? 100.0 * double(busy) / double(busy + idle) : 0.0},
          {"rx_packets", rx},
          {"tx_packets", s.tx_packets.get()},
          {"cycles_per_packet", rx ? double(busy) / double(rx) : 0.0},
          {"flood_packets", s.flood_packets.get()},
          {"drop_same_port", s.drop_same_port.get()},
          {"drop_no_port", s.drop_no_port.get()},
          {"drop_malformed", s.drop_malformed.get()},
          {"drop_stage", s.drop_stage.get()},
          {"drop_vlan", s.drop_vlan.get()},
          {"drop_no_mbuf", s.drop_no_mbuf.get()},
          {"handoff_out", s.handoff_out.get()},
          {"handoff_in", s.handoff_in.get()},
          {"handoff_full", s.handoff_full.get()},
          {"stage_emitted", s.stage_emitted.get()},
          {"fdb_learned", s.fdb_learned.get()},
          {"fdb_moved", s.fdb_moved.get()},
          {"fdb_full", s.fdb_full.get()},
          {"sleeps", s.sleeps.get()},
          {"sleep_us", s.sleep_ns.get() / 1000},
          {"tx_stalls", s.tx_stalls.get()},
          {"parse_errors", perr}};
}

}  // namespace vsw
