// The monitor stage, data path: run mon_packet() (monitor_state.h) on each
// tracked packet of the batch; the flow table's bulk lookup has prefetched
// their state (add_companion). Nothing here allocates or blocks after the
// first batch (which maps the state array lazily: untouched slots cost no
// resident memory).
#include "cc/stages/monitor_stage.h"

#include <rte_cycles.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <new>
#include <stdexcept>

#include "cc/pkt_meta.h"
#include "flowtable/tcp_flow_table.h"
#include "pmd/pmd.h"

namespace vsw {

using namespace mon;

const std::vector<const char*>& mon::monitor_counter_names() {
  static const std::vector<const char*> n = {MONITOR_COUNTERS(VSW_COUNTER_NAME)};
  return n;
}

namespace {

template <typename T>
T* map_array(size_t n) {
  void* p = mmap(nullptr, sizeof(T) * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // A hint (THP "madvise" mode): at 1M connections the state is ~450 MB and
  // every packet goes to a random slot; with 4 KB pages each access is also a
  // TLB miss (a nested page walk in a VM). The table allocates slots from the
  // bottom up, so huge pages cost little more than the slots in use.
  madvise(p, sizeof(T) * n, MADV_HUGEPAGE);
  return static_cast<T*>(p);  // zero pages: every slot starts as "never initialised"
}
template <typename T>
void unmap_array(T* p, size_t n) {
  if (p) munmap(p, sizeof(T) * n);
}

std::vector<std::string> str_list(const nlohmann::json& c, const char* k) {
  std::vector<std::string> v;
  if (!c.contains(k)) return v;
  if (c[k].is_string()) v.push_back(c[k].get<std::string>());
  else
    for (const auto& e : c[k]) v.push_back(e.get<std::string>());
  return v;
}

bool listed(const std::vector<std::string>& l, const std::string& n) { return std::find(l.begin(), l.end(), n) != l.end(); }

}  // namespace

// Port roles and guest ring probes over the live port table.
struct MonitorStage::Env {
  MonitorStage& st;
  Datapath& dp;
  uint64_t now_tsc;
  uint32_t seen;  // the PMD's last look at its rx rings (PmdContext::rx_seen_tsc), us
  const PmdContext& ctx;
  uint32_t seen_us(uint32_t) const { return seen; }
  // The end of the PMD's stall around t (PmdContext::tx_stalls), else t.
  // Converted here, on demand: the inference asks only for a long silence.
  uint32_t stall_end(uint32_t t) const {
    for (const PmdContext::Stall& x : ctx.tx_stalls()) {
      // Only recent stalls: the 32-bit us clock wraps every 71 minutes.
      if (!x.to || now_tsc - x.to > st.tsc_per_us_ * 60'000'000) continue;
      const uint32_t from = st.us_of(x.from), to = st.us_of(x.to);
      if (int32_t(t - from) >= 0 && int32_t(to - t) > 0) return to;
    }
    return t;
  }
  uint8_t role(uint16_t port) const {
    const Port* p = dp.port(port);
    if (!p) return kRoleUnknown;
    const Roles& r = st.roles_;
    if (listed(r.uplink, p->name())) return kRoleUplink;
    if (listed(r.guest, p->name())) return kRoleGuest;
    if (listed(r.host, p->name())) return kRoleHost;
    if (!r.uplink.empty()) return p->kind() == Port::Kind::kVhostUser ? kRoleGuest : kRoleHost;
    return p->kind() == Port::Kind::kVhostUser ? kRoleGuest : kRoleUplink;
  }
  // Is the guest behind port descheduled right now: no ring progress for a
  // while, or no free receive descriptor?
  bool guest_off(uint16_t port) const {
    const Port* p = dp.port(port);
    if (!p || p->kind() != Port::Kind::kVhostUser) return false;
    const uint64_t prog = p->guest_progress_tsc(0);
    return p->rx_ring_free(0) == 0 || (prog && now_tsc > prog && now_tsc - prog > st.stall_tsc_);
  }
};

MonitorStage::MonitorStage(const StageInit& init) : Stage(kCtrCount), pmd_(init.pmd_index) {
  const nlohmann::json& c = init.config;
  params_.guest_stall_us = c.value("guest_stall_us", params_.guest_stall_us);
  params_.rto_min_ms = c.value("rto_min_ms", params_.rto_min_ms);
  params_.dupthresh = c.value("dupthresh", params_.dupthresh);
  params_.ts_receiver_samples = c.value("ts_receiver_samples", params_.ts_receiver_samples);
  roles_.uplink = str_list(c, "uplink_ports");
  roles_.guest = str_list(c, "guest_ports");
  roles_.host = str_list(c, "host_ports");
  tsc_per_us_ = std::max<uint64_t>(1, rte_get_tsc_hz() / 1000000);
  us_mult_ = tsc_per_us_ > 1 ? static_cast<uint64_t>((static_cast<unsigned __int128>(1) << 64) / tsc_per_us_)
                             : ~uint64_t(0);
  stall_tsc_ = tsc_per_us_ * params_.guest_stall_us;
  export_path_ = c.value("export_path", std::string());
  if (!export_path_.empty()) {
    // One file for all PMDs: each appends whole lines with O_APPEND.
    exporter_ = std::make_unique<Exporter>(export_path_, c.value("export_queue", 4096u));
  }
}

MonitorStage::~MonitorStage() {
  exporter_.reset();  // drains what is queued
  if (table_) table_->remove_companion(st_);
  unmap_array(st_, cap_);
}

uint32_t MonitorStage::us_of(uint64_t tsc) const {
  return mon_time_nz(static_cast<uint32_t>((static_cast<unsigned __int128>(tsc) * us_mult_) >> 64));
}

uint32_t MonitorStage::now_us() const { return us_of(rte_rdtsc()); }

void MonitorStage::init(PmdContext& ctx) {
  table_ = ctx.flows();
  ctx_ = &ctx;
  cap_ = table_->capacity();
  st_ = map_array<MonState>(cap_);
  table_->add_remove_hook(&MonitorStage::on_remove, this);
  // The table's bulk lookup prefetches our state with its entry (the hot and
  // warm lines a packet touches outside loss events), so it arrives while the
  // table works through the rest of the batch: prefetched after track_bulk,
  // just before use, most of it would still be on its way (bench_monitor,
  // BM_Variants).
  table_->add_companion(st_, sizeof(MonState), 0, kMonWarmLines);
}

void MonitorStage::snap(const TcpFlowTable& t, uint32_t slot, uint32_t now_ms, FlowSnap& f) const {
  const TcpConn& c = t.conn(slot);
  f.pmd = pmd_;
  f.slot = slot;
  f.age_ms = now_ms - c.created;
  f.idle_ms = now_ms - c.last_seen;
  f.now_us = now_us();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  f.mono_ns = uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
  f.key = t.key(slot);
  f.conn = c;
  f.h = st_[slot].h;
  f.c = st_[slot].c;
  f.reason = 0;
  f.wall_ms = 0;
}

// Flow-table remove hook (PMD thread): queue the final record.
void MonitorStage::on_remove(void* self, uint32_t slot, const TcpConn& c, RemoveReason why) {
  auto* s = static_cast<MonitorStage*>(self);
  if (!s->exporter_ || c.state == TcpState::kFree) return;
  FlowSnap f;
  s->snap(*s->table_, slot, s->ctx_->now_ms(), f);
  f.reason = static_cast<uint8_t>(static_cast<uint8_t>(why) + 1);
  f.wall_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  s->ctr(s->exporter_->push(f) ? kCtrExported : kCtrExportDropped).add();
}

void MonitorStage::process(Batch& b, PmdContext& ctx) {
  if (!b.flows || !b.table) return;
  if (__builtin_expect(!st_, 0)) init(ctx);
  const uint64_t tsc = rte_rdtsc();
  const uint32_t now = us_of(tsc);
  // Our state was prefetched by the table's lookup (add_companion in init);
  // the first batch after init and newly created entries miss once.
  Env env{*this, ctx.dp(), tsc, ctx.rx_seen_tsc() ? us_of(ctx.rx_seen_tsc()) : now, ctx};
  uint32_t n[kCtrCount] = {};
  for (uint16_t i = 0; i < b.n; ++i) {
    const TcpSegment* s = b.seg(i);
    if (!s) continue;
    ++n[kCtrPackets];
    const TrackResult& tr = *b.track(i);
    if (!tr.tracked()) {
      ++n[kCtrUntracked];
      continue;
    }
    const uint32_t slot = tr.slot;
    MonState& ms = st_[slot];
    const MonOut o = mon_packet(ms.h, ms.c, *s, tr, b.table->conn(slot), now, meta(b.pkts[i]).in_port,
                                env, params_);
    if (tr.events & kEvCreated) {
      ++n[kCtrConnections];
      n[kCtrMidstream] += (tr.events & kEvMidstream) ? 1 : 0;
    }
    n[kCtrRttSamples] += o.rtt_sample;
    n[kCtrTsSamples] += o.ts_sample;
    n[kCtrKarnSkipped] += o.karn_skip;
    n[kCtrRetrans] += o.retrans;
    n[kCtrSpurious] += o.spurious;
    n[kCtrDupacks] += o.dupack;
    n[kCtrFastRetx] += o.fast_retx;
    n[kCtrTimeouts] += o.timeout;
    n[kCtrGaps] += o.gap;
    n[kCtrHoleFills] += o.hole_fill;
    n[kCtrGuestDelay] += o.guest_delay;
    n[kCtrPhaseChanges] += o.phase_change;
    if (__builtin_expect(o.probe_guest, 0)) {
      // Data timed toward a guest: is the guest running right now?
      const uint8_t R = (tr.dir & 1) ^ 1;
      if (env.guest_off(ms.c.port[R])) {
        ms.h.d[tr.dir & 1].flags |= dflag::kRttGuestOff;
        ++ms.c.d[tr.dir & 1].guest_off;
        ++n[kCtrGuestOff];
      }
    }
  }
  for (size_t k = 0; k < kCtrCount; ++k)
    if (n[k]) ctr(k).add(n[k]);
}

nlohmann::json MonitorStage::details() const {
  nlohmann::json j = {{"pmd", pmd_},
                      {"state_bytes_per_conn", sizeof(MonState)},
                      {"guest_stall_us", params_.guest_stall_us},
                      {"rto_min_ms", params_.rto_min_ms}};
  if (exporter_) {
    j["export_path"] = exporter_->path();
    j["export_written"] = exporter_->written();
    j["export_write_errors"] = exporter_->write_errors();
  }
  return j;
}

std::unique_ptr<Stage> make_monitor_stage(const StageInit& init) {
  const int si = stage_index("monitor");
  if (si < 0 || stage_registry()[static_cast<size_t>(si)].counters.size() != kCtrCount)
    throw std::logic_error("monitor: registry counters do not match mon::Ctr");
  return std::make_unique<MonitorStage>(init);
}

}  // namespace vsw
