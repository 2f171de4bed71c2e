// snoop control path (see snoop_ctl.h). Data path: snoop_stage.cc.
#include "cc/stages/snoop_ctl.h"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

#include "cc/stages/snoop_stage.h"
#include "flowtable/tcp_flow_table.h"
#include "pmd/pmd.h"
#include "vswitch/switch.h"

namespace vsw {

using namespace snoop;

namespace {

std::string argv_at(const nlohmann::json& a, size_t i, const char* what) {
  if (a.contains("argv") && a["argv"].size() > i) return a["argv"][i].get<std::string>();
  throw std::runtime_error(std::string("missing argument: ") + what);
}

bool on_off(const std::string& v) {
  if (v == "on" || v == "true" || v == "1") return true;
  if (v == "off" || v == "false" || v == "0") return false;
  throw std::runtime_error("expected on|off, got '" + v + "'");
}

// Runs fn on every PMD that has the snoop stage; throws if snoop is not in the pipeline.
template <typename F>
void for_each_stage(Switch& s, F fn) {
  const int si = stage_index("snoop");
  bool any = false;
  for (auto& p : s.datapath().pmds) {
    bool ok = p->call([&](Pmd& pmd) {
      if (auto* st = static_cast<SnoopStage*>(pmd.stage_mut(static_cast<size_t>(si)))) {
        any = true;
        fn(pmd, *st);
      }
    });
    if (!ok) throw std::runtime_error("pmd " + std::to_string(p->index()) + " did not answer");
  }
  if (!any) throw std::runtime_error("stage 'snoop' is not in the pipeline (stages.order)");
}

std::string addr_str(const FlowKey& k, unsigned e) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(k.is_v4() ? AF_INET : AF_INET6, k.addr[e], buf, sizeof(buf));
  return std::string(buf) + ":" + std::to_string(k.port[e]);
}

// The canonical key (flow_key.h ordering) of a connection given as two endpoints.
FlowKey key_from(const std::string& a1, uint16_t p1, const std::string& a2, uint16_t p2, uint16_t vlan) {
  FlowKey k{};
  uint8_t b1[16] = {}, b2[16] = {};
  if (inet_pton(AF_INET, a1.c_str(), b1) == 1 && inet_pton(AF_INET, a2.c_str(), b2) == 1) {
    uint32_t x, y;
    std::memcpy(&x, b1, 4);
    std::memcpy(&y, b2, 4);
    const uint64_t e1 = (uint64_t(ntohl(x)) << 16) | p1, e2 = (uint64_t(ntohl(y)) << 16) | p2;
    const unsigned d = e1 > e2 ? 1 : 0;
    std::memcpy(k.addr[d], b1, 4);
    std::memcpy(k.addr[d ^ 1], b2, 4);
    k.port[d] = p1;
    k.port[d ^ 1] = p2;
    k.family = 4;
  } else if (inet_pton(AF_INET6, a1.c_str(), b1) == 1 && inet_pton(AF_INET6, a2.c_str(), b2) == 1) {
    const int c = std::memcmp(b1, b2, 16);
    const unsigned d = (c > 0 || (c == 0 && p1 > p2)) ? 1 : 0;
    std::memcpy(k.addr[d], b1, 16);
    std::memcpy(k.addr[d ^ 1], b2, 16);
    k.port[d] = p1;
    k.port[d ^ 1] = p2;
    k.family = 6;
  } else {
    throw std::runtime_error("bad address pair " + a1 + " " + a2);
  }
  k.vlan = vlan & 0xfff;
  k.proto = net::kProtoTcp;
  return k;
}

}  // namespace

nlohmann::json SnoopStage::dump(PmdContext& ctx, size_t max) const {
  nlohmann::json conns = nlohmann::json::array();
  if (!table_ || !conns_) return conns;
  std::vector<TcpConnView> views;
  uint32_t next = 0;
  table_->snapshot(ctx.now_ms(), 0, max, views, &next);
  for (const auto& v : views) {
    const Conn& c = conns_[v.slot];
    if (c.gen1 != v.conn.gen + 1 || c.mode == Mode::kNone) continue;
    conns.push_back({{"guest", addr_str(v.key, c.gdir)},
                     {"peer", addr_str(v.key, c.gdir ^ 1u)},
                     {"mode", mode_name(c.mode)},
                     {"guest_port", c.gport},
                     {"next_seq", c.enq},
                     {"vm_seq", c.g_ack},
                     {"ack_sent", c.ack_sent},
                     {"in_flight_to_guest", uint32_t(net::Seq(c.enq) - net::Seq(c.g_ack))},
                     {"rcv_win", c.rcv_win},
                     {"adv_window", uint32_t(net::Seq(c.right_sent) - net::Seq(c.ack_sent))},
                     {"wscale", c.ws},
                     {"wscale_exact", bool(c.flags & cflag::kWsExact)},
                     {"timestamps", bool(c.flags & cflag::kTs)},
                     {"early_acks", c.n_early},
                     {"guest_acks_dropped", c.n_dropped},
                     {"offline_events", c.n_offline},
                     {"resumes", c.n_resume},
                     {"disabled", bool(c.flags & cflag::kConnOff)}});
  }
  return conns;
}

void SnoopStage::set_port(PmdContext& ctx, const std::string& name, bool on, uint32_t buf_bytes) {
  PortCfg& pc = cfg_.ports[name];
  pc.enabled = on;
  if (buf_bytes) pc.buf_bytes = buf_bytes;
  // Re-resolve that port now: a new epoch stops early ACKs for all its
  // connections at once (they drain guest ACKs, then re-initialise mid-stream).
  for (uint16_t id = 0; id < kMaxPorts; ++id) {
    const Port* p = ctx.dp().port(id);
    if (p && p->name() == name) ports_[id].resolved = false;
  }
}

void SnoopStage::set_default_on(bool on) {
  cfg_.default_on = on;
  for (auto& ps : ports_) ps.resolved = false;
}

bool SnoopStage::set_conn(const FlowKey& k, bool on, PmdContext&) {
  std::vector<uint8_t> kb(reinterpret_cast<const uint8_t*>(&k), reinterpret_cast<const uint8_t*>(&k) + sizeof(k));
  if (on) off_keys_.erase(kb);
  else off_keys_.insert(kb);
  if (!table_ || !conns_) return false;
  const uint32_t slot = table_->lookup(k, flow_key_hash(k));
  if (slot == TcpFlowTable::kNoSlot || slot >= cap_) return false;
  Conn& c = conns_[slot];
  if (c.gen1 != table_->conn(slot).gen + 1) return false;
  if (on) {
    c.flags &= static_cast<uint8_t>(~cflag::kConnOff);
  } else {
    c.flags |= cflag::kConnOff;
    if (c.mode != Mode::kNone && c.mode != Mode::kClosed) c.mode = Mode::kOff;
  }
  account(c);
  return true;
}

nlohmann::json snoop_ctl_show(Switch& s, const nlohmann::json& a) {
  const size_t max = a.contains("max") ? std::stoul(a["max"].get<std::string>()) : 100;
  nlohmann::json out = nlohmann::json::array();
  for_each_stage(s, [&](Pmd& pmd, SnoopStage& st) {
    nlohmann::json d = st.details();
    d["pmd"] = pmd.index();
    d["connections"] = st.dump(pmd, max);
    out.push_back(d);
  });
  return out;
}

nlohmann::json snoop_ctl_port(Switch& s, const nlohmann::json& a) {
  const std::string name = argv_at(a, 0, "NAME");
  const bool on = on_off(argv_at(a, 1, "on|off"));
  const uint32_t buf = a.contains("buf_bytes") ? static_cast<uint32_t>(std::stoul(a["buf_bytes"].get<std::string>())) : 0;
  for_each_stage(s, [&](Pmd& pmd, SnoopStage& st) { st.set_port(pmd, name, on, buf); });
  return {{"port", name}, {"snoop", on}};
}

nlohmann::json snoop_ctl_conn(Switch& s, const nlohmann::json& a) {
  const FlowKey k = key_from(argv_at(a, 0, "ADDR"), static_cast<uint16_t>(std::stoul(argv_at(a, 1, "PORT"))),
                             argv_at(a, 2, "ADDR"), static_cast<uint16_t>(std::stoul(argv_at(a, 3, "PORT"))),
                             a.contains("vlan") ? static_cast<uint16_t>(std::stoul(a["vlan"].get<std::string>())) : 0);
  const bool on = on_off(argv_at(a, 4, "on|off"));
  bool found = false;
  for_each_stage(s, [&](Pmd& pmd, SnoopStage& st) { found |= st.set_conn(k, on, pmd); });
  return {{"snoop", on}, {"live_connection", found}};
}

}  // namespace vsw
