// The monitor stage, control path: consistent copies of connection state
// (taken on each PMD with Pmd::call, in chunks so a PMD never pauses for
// long), sorting/filtering, JSON for vswitchctl / telemetry / export, and the
// closed-connection export writer. Safe while PMDs forward traffic.
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <cstring>

#include "cc/stages/monitor_stage.h"
#include "pmd/pmd.h"

namespace vsw::mon {

const char* phase_name(uint8_t p) {
  static const char* n[] = {"unknown", "slow_start", "congestion_avoidance", "recovery", "loss"};
  return p < kPhaseCount ? n[p] : "?";
}
const char* limit_name(uint8_t l) {
  static const char* n[] = {"sender", "receiver_window", "network", "guest_scheduling"};
  return l < kLimCount ? n[l] : "?";
}
const char* role_name(uint8_t r) {
  static const char* n[] = {"unknown", "host", "guest", "uplink"};
  return r <= kRoleUplink ? n[r] : "?";
}

std::string addr_str(const FlowKey& k, uint8_t ep) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(k.is_v4() ? AF_INET : AF_INET6, k.addr[ep & 1], buf, sizeof(buf));
  return buf;
}

bool parse_addr(const std::string& s, uint8_t& family, uint8_t addr[16]) {
  std::memset(addr, 0, 16);
  if (inet_pton(AF_INET, s.c_str(), addr) == 1) {
    family = 4;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), addr) == 1) {
    family = 6;
    return true;
  }
  return false;
}

uint8_t main_dir(const FlowSnap& f) { return f.conn.stats.bytes[1] > f.conn.stats.bytes[0] ? 1 : 0; }

uint32_t e2e_rtt_us(const FlowSnap& f, uint8_t dir) { return f.c.side[dir & 1].srtt + f.c.side[(dir & 1) ^ 1].srtt; }

namespace {

// The same metric, read in place (no copy) while scanning on the PMD.
uint64_t metric_at(const TcpFlowTable& t, const MonitorStage& m, uint32_t s, uint32_t now_ms, SortBy by) {
  const TcpConnStats& st = t.conn_stats(s);
  const MonCold& c = m.cold(s);
  switch (by) {
    case SortBy::kBytes: return st.bytes[0] + st.bytes[1];
    case SortBy::kRtt: return uint64_t(c.side[0].srtt) + c.side[1].srtt;
    case SortBy::kRetrans: return uint64_t(c.d[0].retrans) + c.d[1].retrans;
    case SortBy::kAge: return now_ms - t.conn(s).created;
  }
  return 0;
}

bool matches(const FlowQuery& q, const TcpFlowTable& t, uint32_t slot, const MonCold& mc) {
  const TcpConn& c = t.conn(slot);
  if (q.port >= 0 && mc.port[0] != q.port && mc.port[1] != q.port) return false;
  if (q.family) {
    if (c.key.family != q.family) return false;
    const size_t n = q.family == 4 ? 4 : 16;
    const FlowKey k = t.key(slot);
    if (std::memcmp(k.addr[0], q.addr, n) != 0 && std::memcmp(k.addr[1], q.addr, n) != 0) return false;
  }
  return true;
}

MonitorStage* monitor_of(Pmd& p) {
  const int si = stage_index("monitor");
  return si < 0 ? nullptr : static_cast<MonitorStage*>(p.stage_mut(static_cast<size_t>(si)));
}

// Limit-state totals in us, with the open interval closed at the copy time,
// or, once both FINs or an RST were seen, at the connection's last packet
// (the linger before removal is no state of the transfer).
std::array<uint64_t, kLimCount> lim_totals(const FlowSnap& f, uint8_t dir) {
  std::array<uint64_t, kLimCount> t{};
  for (uint8_t k = 0; k < kLimCount; ++k) t[k] = mon_lim_total_us(f.c.w[dir], f.c.d[dir], k);
  const MonDir& d = f.h.d[dir];
  uint32_t until = f.now_us;
  if (f.conn.state == TcpState::kClosed || f.conn.state == TcpState::kReset) {
    uint32_t last = 0;
    for (const MonDir& x : f.h.d)
      if (x.last_evt && (!last || int32_t(x.last_evt - last) > 0)) last = x.last_evt;
    if (last && int32_t(until - last) > 0) until = last;
  }
  if ((d.flags & dflag::kSeq) && d.lim < kLimCount && d.lim_since && int32_t(until - d.lim_since) > 0)
    mon_lim_split(d, until, t.data());
  return t;
}

nlohmann::json side_json(const MonSide& s, uint8_t role) {
  nlohmann::json j = {{"srtt_us", s.srtt}, {"rttvar_us", s.var}, {"min_us", s.min}, {"max_us", s.max},
                      {"samples", s.n}};
  if (role == kRoleGuest) {
    j["guest_delay_avg_us"] = mon_gex_avg(s);
    j["guest_delay_max_us"] = s.max - s.min;
  }
  return j;
}

}  // namespace

nlohmann::json flow_json(const FlowSnap& f, bool detail, const std::function<std::string(uint16_t)>& port_name) {
  const TcpConn& c = f.conn;
  nlohmann::json eps = nlohmann::json::array();
  for (uint8_t e = 0; e < 2; ++e) {
    nlohmann::json ep = {{"addr", addr_str(f.key, e)},
                         {"port", c.key.port[e]},
                         {"role", role_name(f.c.role[e])},
                         {"initiator", c.initiator() == e}};
    if (f.c.port[e] != 0xffff) {
      ep["switch_port_id"] = f.c.port[e];
      if (port_name) ep["switch_port"] = port_name(f.c.port[e]);
    }
    eps.push_back(ep);
  }
  nlohmann::json dirs = nlohmann::json::array();
  for (uint8_t s = 0; s < 2; ++s) {
    const MonDir& d = f.h.d[s];
    const MonDirCold& dc = f.c.d[s];
    const MonDirWarm& dw = f.c.w[s];
    if (!detail && f.conn.stats.bytes[s] == 0 && s != main_dir(f)) continue;
    const uint8_t r = s ^ 1;
    const uint32_t flight = (d.flags & dflag::kSeq) && (d.flags & dflag::kAck) && net::Seq(d.nxt) > net::Seq(d.una)
                                ? d.nxt - d.una
                                : 0;
    const auto lt = lim_totals(f, s);
    uint8_t verdict = kLimSender;
    for (uint8_t k = 0; k < kLimCount; ++k)
      if (lt[k] > lt[verdict]) verdict = k;
    const uint32_t e2e = e2e_rtt_us(f, s);
    const MonGuestShare gs = mon_guest_share(f.c.side, f.c.role);
    const uint64_t total_lim = lt[0] + lt[1] + lt[2] + lt[3];
    nlohmann::json j = {
        {"from", s},
        {"src", addr_str(f.key, s) + ":" + std::to_string(c.key.port[s])},
        {"dst", addr_str(f.key, r) + ":" + std::to_string(c.key.port[r])},
        {"bytes", f.conn.stats.bytes[s]},
        {"segs", f.conn.stats.pkts[s]},
        {"rtt_us", e2e},
        {"rttvar_us", f.c.side[s].var + f.c.side[r].var},
        {"rtt_receiver_side_us", f.c.side[r].srtt},
        {"rtt_sender_side_us", f.c.side[s].srtt},
        {"flight", flight},
        // What the sender itself has outstanding: also the data on its way to
        // the switch and the ACKs on their way back (delivery rate x sender side RTT).
        {"flight_sender_est", flight ? flight + uint64_t(dw.rate_kbps) * f.c.side[s].srtt / 8000 : 0},
        {"cwnd_lb", std::max(d.fl_max, d.fl_prev)},
        {"max_flight", std::max(dw.max_flight, std::max(d.fl_max, d.fl_prev))},
        {"rwnd", c.d[r].win},
        {"mss", c.d[s].mss},
        {"delivery_kbps", dw.rate_kbps},
        {"retrans", dc.retrans},
        {"spurious_retrans", dc.spurious},
        {"fast_retx", dc.fast_retx},
        {"timeouts", dc.timeouts},
        {"dupacks", dc.dupacks},
        {"ece", dc.ece},
        {"phase", phase_name(d.phase)},
        {"limited_by", limit_name(verdict)},
        {"limited_now", limit_name(d.lim)},
        {"limited_ms",
         {{"sender", lt[kLimSender] / 1000},
          {"receiver_window", lt[kLimRwnd] / 1000},
          {"network", lt[kLimNetwork] / 1000},
          {"guest_scheduling", lt[kLimGuest] / 1000}}},
        {"guest_delay_us", gs.delay_us},
        {"guest_share", gs.share},
        {"guest_time_share", total_lim ? double(lt[kLimGuest]) / double(total_lim) : 0.0},
    };
    if (detail) {
      j["ssthresh_est"] = dc.ssthresh;
      j["gaps"] = dc.gaps;
      j["hole_fills"] = dc.fills;
      j["karn_skipped"] = dc.karn_skipped;
      j["guest_off_at_send"] = dc.guest_off;
      j["clocked"] = double(d.clocked) / 255.0;
      j["una"] = d.una;
      j["nxt"] = d.nxt;
      j["wscale"] = c.d[r].wscale;
    }
    dirs.push_back(std::move(j));
  }
  const uint8_t md = main_dir(f);
  nlohmann::json out = {{"id", std::to_string(f.pmd) + ":" + std::to_string(f.slot)},
                        {"gen", c.gen},
                        {"state", tcp_state_name(c.state)},
                        {"midstream", f.c.midstream != 0},
                        {"age_ms", f.age_ms},
                        {"idle_ms", f.idle_ms},
                        {"copied_mono_ns", f.mono_ns},
                        {"bytes", f.conn.stats.bytes[0] + f.conn.stats.bytes[1]},
                        {"rtt_us", e2e_rtt_us(f, md)},
                        {"retrans", f.c.d[0].retrans + f.c.d[1].retrans},
                        {"endpoints", eps},
                        {"dirs", dirs}};
  if (detail) {
    out["sides"] = nlohmann::json::array({side_json(f.c.side[0], f.c.role[0]), side_json(f.c.side[1], f.c.role[1])});
    out["vlan"] = c.key.vlan;
    out["sack"] = (c.d[0].flags & dirflag::kSackOk) != 0;
    out["timestamps"] = (c.d[0].flags & dirflag::kTsOk) != 0;
  }
  if (f.reason) {
    out["closed_reason"] = remove_reason_name(static_cast<RemoveReason>(f.reason - 1));
    out["closed_at_ms"] = f.wall_ms;
  }
  return out;
}

nlohmann::json flow_row_compact(const FlowSnap& f) {
  const uint8_t s = main_dir(f), r = s ^ 1;
  const auto lt = lim_totals(f, s);
  uint8_t verdict = kLimSender;
  for (uint8_t k = 0; k < kLimCount; ++k)
    if (lt[k] > lt[verdict]) verdict = k;
  const MonDir& d = f.h.d[s];
  return {{"id", std::to_string(f.pmd) + ":" + std::to_string(f.slot)},
          {"src", addr_str(f.key, s) + ":" + std::to_string(f.conn.key.port[s])},
          {"dst", addr_str(f.key, r) + ":" + std::to_string(f.conn.key.port[r])},
          {"state", tcp_state_name(f.conn.state)},
          {"bytes", f.conn.stats.bytes[s]},
          {"rtt_us", e2e_rtt_us(f, s)},
          {"cwnd_lb", std::max(d.fl_max, d.fl_prev)},
          {"retrans", f.c.d[s].retrans},
          {"spurious", f.c.d[s].spurious},
          {"timeouts", f.c.d[s].timeouts},
          {"phase", phase_name(d.phase)},
          {"limited_by", limit_name(verdict)}};
}

FlowQueryResult query_flows(Datapath& dp, const FlowQuery& q) {
  constexpr uint32_t kChunk = 65536;
  const size_t keep = q.offset + q.top;
  FlowQueryResult res;
  std::vector<std::pair<uint64_t, FlowSnap>> best;  // merged, trimmed to `keep`
  auto trim = [&] {
    auto cmp = [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : (a.second.pmd != b.second.pmd ? a.second.pmd < b.second.pmd : a.second.slot < b.second.slot);
    };
    std::sort(best.begin(), best.end(), cmp);
    if (best.size() > keep) best.resize(keep);
  };
  for (auto& pp : dp.pmds) {
    Pmd& pmd = *pp;
    uint32_t start = 0;
    bool done = false;
    size_t live_seen = 0;
    while (!done) {
      const bool ok = pmd.call([&](Pmd& p) {
        MonitorStage* m = monitor_of(p);
        const TcpFlowTable* t = p.flows();
        if (!m || !t || !m->ready()) {
          done = true;
          return;
        }
        const uint32_t end = std::min<uint64_t>(uint64_t(start) + kChunk, m->capacity());
        std::vector<std::pair<uint64_t, uint32_t>> cand;
        for (uint32_t s = start; s < end && live_seen < t->size(); ++s) {
          const TcpConn& c = t->conn(s);
          if (c.state == TcpState::kFree) continue;
          ++live_seen;
          ++res.scanned;
          if (!matches(q, *t, s, m->cold(s))) continue;
          ++res.matched;
          cand.emplace_back(metric_at(*t, *m, s, p.now_ms(), q.sort), s);
        }
        if (cand.size() > keep) {
          std::nth_element(cand.begin(), cand.begin() + static_cast<long>(keep), cand.end(),
                           [](const auto& a, const auto& b) { return a.first > b.first; });
          cand.resize(keep);
        }
        for (const auto& [mv, s] : cand) {
          best.emplace_back(mv, FlowSnap{});
          m->snap(*t, s, p.now_ms(), best.back().second);
        }
        start = end;
        done = end >= m->capacity() || live_seen >= t->size();
      });
      if (!ok) {
        res.incomplete = true;
        break;
      }
      trim();
    }
  }
  trim();
  for (size_t i = q.offset; i < best.size(); ++i) res.flows.push_back(best[i].second);
  return res;
}

std::optional<FlowSnap> get_flow(Datapath& dp, unsigned pmd, uint32_t slot, int64_t gen) {
  if (pmd >= dp.pmds.size()) return std::nullopt;
  std::optional<FlowSnap> out;
  dp.pmds[pmd]->call([&](Pmd& p) {
    MonitorStage* m = monitor_of(p);
    const TcpFlowTable* t = p.flows();
    if (!m || !t || !m->ready() || slot >= m->capacity()) return;
    const TcpConn& c = t->conn(slot);
    if (c.state == TcpState::kFree || (gen >= 0 && c.gen != uint32_t(gen))) return;
    out.emplace();
    m->snap(*t, slot, p.now_ms(), *out);
  });
  return out;
}

// ---- closed-connection export ----

Exporter::Exporter(std::string path, size_t capacity) : path_(std::move(path)), q_(std::max<size_t>(capacity, 16)) {
  thr_ = std::thread([this] { run(); });
}

Exporter::~Exporter() {
  {
    std::lock_guard lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (thr_.joinable()) thr_.join();
}

void Exporter::run() {
  int fd = -1;
  FlowSnap f;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(100), [&] { return stop_.load(); });
    }
    const bool stopping = stop_.load();
    while (q_.pop(f)) {
      if (fd < 0) fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        errors_.fetch_add(1);
        continue;
      }
      const std::string line = flow_json(f, true, nullptr).dump() + "\n";
      if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) errors_.fetch_add(1);
      else written_.fetch_add(1);
    }
    if (stopping) break;
  }
  if (fd >= 0) close(fd);
}

}  // namespace vsw::mon
