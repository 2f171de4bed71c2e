#include "vswitch/switch.h"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <stdexcept>

#include "cc/pkt_meta.h"
#include "pmd/rcu.h"
#include "vhost/vhost_port.h"
#include "vswitch/log.h"
#include "vswitch/port_ethdev.h"

namespace vsw {

Switch::Switch(SwitchConfig cfg) : cfg_(std::move(cfg)) { owned_.resize(kMaxPorts); specs_.resize(kMaxPorts); }

Switch::~Switch() { shutdown(); }

uint32_t Switch::now_s() const { return static_cast<uint32_t>(rte_rdtsc() / rte_get_tsc_hz()); }

bool Switch::start(std::string& err) {
  std::lock_guard lk(mu_);
  if (!parse_rxq_assign_mode(cfg_.rxq_assign, assign_mode_)) {
    err = "pmd.rxq_assign must be roundrobin or cycles";
    return false;
  }
  dp_ = std::make_unique<Datapath>(cfg_.fdb);
  dp_->cfg = cfg_.dp;
  // Room for TSO-sized chains: 2 KB data rooms chained by the vhost library.
  static std::atomic<unsigned> instance{0};
  const unsigned inst = instance.fetch_add(1);
  dp_->pool = pkt_pool_create(fmt::format("vsw_mbufs{}", inst).c_str(), cfg_.mbufs, 256, RTE_MBUF_DEFAULT_BUF_SIZE,
                              SOCKET_ID_ANY);
  dp_->indirect_pool =
      pkt_pool_create(fmt::format("vsw_indirect{}", inst).c_str(), cfg_.mbufs / 4, 256, 0, SOCKET_ID_ANY);
  if (!dp_->pool || !dp_->indirect_pool) {
    err = std::string("mbuf pool: ") + rte_strerror(rte_errno);
    return false;
  }
  const auto& reg = stage_registry();
  std::vector<nlohmann::json> stage_cfgs(reg.size(), nlohmann::json::object());
  for (const auto& name : cfg_.stage_order) {
    int si = stage_index(name);
    dp_->stage_order.push_back(si);
    stage_cfgs[static_cast<size_t>(si)] = cfg_.stage_config[name];
  }
  for (const auto& name : cfg_.stages_enabled) dp_->stage_on[static_cast<size_t>(stage_index(name))].store(true);

  const unsigned n = static_cast<unsigned>(cfg_.pmd_lcores.size());
  for (unsigned i = 0; i < n; ++i) {
    unsigned lc = cfg_.pmd_lcores[i];
    if (!rte_lcore_is_enabled(lc) || lc == rte_get_main_lcore()) {
      err = "pmd lcore " + std::to_string(lc) + " is not an enabled worker lcore";
      return false;
    }
    dp_->pmds.push_back(std::make_unique<Pmd>(*dp_, i, lc));
  }
  for (auto& p : dp_->pmds)
    if (!p->init(stage_cfgs, n)) {
      err = "pmd init failed";
      return false;
    }
  update_handoff_locked();
  for (auto& p : dp_->pmds)
    if (!p->launch()) {
      err = "cannot launch pmd on lcore " + std::to_string(p->lcore());
      return false;
    }
  started_ = true;
  mu_.unlock();
  try {
    for (const auto& spec : cfg_.ports) add_port(spec);
  } catch (const std::exception& e) {
    mu_.lock();
    err = e.what();
    return false;
  }
  mu_.lock();
  return true;
}

void Switch::shutdown() {
  std::lock_guard lk(mu_);
  if (!started_) return;
  started_ = false;
  for (auto& p : dp_->pmds) p->join();
  for (uint16_t id = 0; id < kMaxPorts; ++id) {
    if (!owned_[id]) continue;
    dp_->ports[id].store(nullptr);
    owned_[id]->stop();
    owned_[id].reset();
  }
  dp_->pmds.clear();
  rte_mempool_free(dp_->pool);
  rte_mempool_free(dp_->indirect_pool);
  log()->info("switch stopped");
}

Port* Switch::find_port(const std::string& name, uint16_t* id) const {
  for (uint16_t i = 0; i < kMaxPorts; ++i)
    if (owned_[i] && owned_[i]->name() == name) {
      if (id) *id = i;
      return owned_[i].get();
    }
  return nullptr;
}

nlohmann::json Switch::add_port(const PortSpec& spec) {
  std::unique_ptr<Port> p;
  if (spec.type == "vhost-user")
    p = std::make_unique<VhostPort>(spec.name, VhostPortConfig{spec.path, spec.client, spec.queues, spec.disable_features},
                                    dp_->pool);
  else
    p = std::make_unique<EthdevPort>(spec.name, EthdevPortConfig{spec.devargs, spec.queues, spec.rxd, spec.txd}, dp_->pool);
  return add_port_object(std::move(p), spec);
}

nlohmann::json Switch::add_port_object(std::unique_ptr<Port> p, const PortSpec& spec) {
  std::lock_guard lk(mu_);
  if (find_port(spec.name)) throw std::runtime_error("port '" + spec.name + "' exists");
  uint16_t id = kNoPort;
  for (uint16_t i = 0; i < kMaxPorts; ++i)
    if (!owned_[i]) {
      id = i;
      break;
    }
  if (id == kNoPort) throw std::runtime_error("too many ports");
  p->set_id(id);
  p->vlan = spec.vlan;
  if (!p->start(static_cast<unsigned>(dp_->pmds.size()))) {
    std::string e = p->error();
    p->stop();
    throw std::runtime_error("port '" + spec.name + "': " + e);
  }
  owned_[id] = std::move(p);
  specs_[id] = spec;
  dp_->ports[id].store(owned_[id].get(), std::memory_order_release);
  reassign_rxqs_locked();
  log()->info("added port {} (id {})", spec.name, id);
  return {{"port", spec.name}, {"id", id}};
}

void Switch::del_port(const std::string& name) {
  std::lock_guard lk(mu_);
  uint16_t id;
  Port* p = find_port(name, &id);
  if (!p) throw std::runtime_error("no port '" + name + "'");
  // 1. no PMD polls it, no new lookups find it; 2. grace period; 3. free.
  dp_->ports[id].store(nullptr, std::memory_order_release);
  reassign_rxqs_locked();  // includes a grace period
  dp_->fdb.flush_port(id);
  rcu().synchronize();
  dp_->fdb.reclaim();
  owned_[id]->stop();
  owned_[id].reset();
  specs_[id] = PortSpec{};
  log()->info("deleted port {} (id {})", name, id);
}

void Switch::reassign_rxqs_locked() {
  std::vector<RxqLoad> loads;
  for (uint16_t id = 0; id < kMaxPorts; ++id) {
    Port* p = dp_->ports[id].load();
    if (!p) continue;
    for (uint16_t q = 0; q < p->n_rxq(); ++q) {
      RxqLoad l;
      l.rxq = {id, q};
      l.cycles = p->rxq_stats(q).cycles.get();
      if (q < specs_[id].rxq_pmd.size()) l.pinned_pmd = specs_[id].rxq_pmd[q];
      loads.push_back(l);
    }
  }
  auto lists = assign_rxqs(loads, static_cast<unsigned>(dp_->pmds.size()), assign_mode_);
  for (size_t i = 0; i < dp_->pmds.size(); ++i) {
    auto pl = std::make_unique<PollList>();
    pl->rxqs = lists[i];
    dp_->pmds[i]->set_poll_list(std::move(pl));  // waits a grace period
  }
}

void Switch::update_handoff_locked() {
  bool tcp_on = false;
  const auto& reg = stage_registry();
  for (int si : dp_->stage_order)
    if (reg[static_cast<size_t>(si)].tcp && dp_->stage_on[static_cast<size_t>(si)].load()) tcp_on = true;
  dp_->handoff_on.store(tcp_on && dp_->pmds.size() > 1);
}

nlohmann::json Switch::show() const {
  std::lock_guard lk(mu_);
  nlohmann::json ports = nlohmann::json::array();
  for (uint16_t id = 0; id < kMaxPorts; ++id) {
    if (!owned_[id]) continue;
    nlohmann::json j = owned_[id]->describe();
    j["name"] = owned_[id]->name();
    j["id"] = id;
    j["config"] = port_spec_to_json(specs_[id]);
    ports.push_back(j);
  }
  nlohmann::json pmds = nlohmann::json::array();
  for (const auto& p : dp_->pmds) pmds.push_back({{"pmd", p->index()}, {"lcore", p->lcore()}});
  return {{"ports", ports},
          {"pmds", pmds},
          {"fdb", {{"entries", dp_->fdb.size()}, {"max_entries", dp_->fdb.config().max_entries},
                   {"aging_s", dp_->fdb.config().aging_s}}},
          {"mbufs", {{"in_use", rte_mempool_in_use_count(dp_->pool)}, {"total", dp_->pool->size},
                     {"indirect_in_use", rte_mempool_in_use_count(dp_->indirect_pool)}}},
          {"rxq_assign", rxq_assign_mode_name(assign_mode_)},
          {"idle_sleep_max_us", dp_->cfg.idle_sleep_max_us},
          {"flow_handoff", dp_->handoff_on.load()}};
}

nlohmann::json Switch::port_stats(const std::string& name) const {
  std::lock_guard lk(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (uint16_t id = 0; id < kMaxPorts; ++id) {
    if (!owned_[id] || (!name.empty() && owned_[id]->name() != name)) continue;
    nlohmann::json j = owned_[id]->stats_json();
    j["name"] = owned_[id]->name();
    j["id"] = id;
    j["link_up"] = owned_[id]->link_up();
    out.push_back(j);
  }
  if (!name.empty() && out.empty()) throw std::runtime_error("no port '" + name + "'");
  return out;
}

nlohmann::json Switch::port_clear_stats(const std::string& name) {
  (void)name;
  throw std::runtime_error("port counters are cumulative; compare two port-stats readings");
}

nlohmann::json Switch::fdb_show() const {
  std::lock_guard lk(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : dp_->fdb.dump(now_s())) {
    char mac[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_addr a;
    std::memcpy(a.addr_bytes, e.mac, 6);
    rte_ether_format_addr(mac, sizeof(mac), &a);
    const Port* p = e.port < kMaxPorts ? owned_[e.port].get() : nullptr;
    out.push_back({{"mac", mac}, {"vlan", e.vlan}, {"port", p ? p->name() : "?"}, {"port_id", e.port}, {"age_s", e.age_s}});
  }
  return out;
}

nlohmann::json Switch::fdb_flush(const std::string& port) {
  std::lock_guard lk(mu_);
  unsigned n;
  if (port.empty()) {
    n = dp_->fdb.flush_all();
  } else {
    uint16_t id;
    if (!find_port(port, &id)) throw std::runtime_error("no port '" + port + "'");
    n = dp_->fdb.flush_port(id);
  }
  rcu().synchronize();
  dp_->fdb.reclaim();
  return {{"flushed", n}};
}

void Switch::set_fdb_aging(uint32_t s) {
  std::lock_guard lk(mu_);
  dp_->fdb.set_aging(s);
}

void Switch::housekeeping() {
  std::lock_guard lk(mu_);
  if (!started_) return;
  if (dp_->fdb.age(now_s()) > 0) {
    rcu().synchronize();
    dp_->fdb.reclaim();
  }
}

nlohmann::json Switch::pmd_stats_show() const {
  std::lock_guard lk(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : dp_->pmds) out.push_back(p->stats_json());
  return out;
}

void Switch::pmd_stats_clear() {
  std::lock_guard lk(mu_);
  for (auto& p : dp_->pmds) p->clear_stats();
}

nlohmann::json Switch::pmd_rxq_show() const {
  std::lock_guard lk(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : dp_->pmds) {
    uint64_t total = p->stats().busy_cycles.get() + p->stats().idle_cycles.get();
    nlohmann::json rxqs = nlohmann::json::array();
    for (const RxqRef& r : p->poll_list().rxqs) {
      const Port* port = owned_[r.port].get();
      if (!port) continue;
      const RxqStats& rs = port->rxq_stats(r.queue);
      bool enabled = port->kind() != Port::Kind::kVhostUser ||
                     static_cast<const VhostPort*>(port)->link_up();
      rxqs.push_back({{"port", port->name()},
                      {"queue", r.queue},
                      {"enabled", enabled},
                      {"packets", rs.packets.get()},
                      {"cycles", rs.cycles.get()},
                      {"usage_pct", total ? 100.0 * double(rs.cycles.get()) / double(total) : 0.0}});
    }
    out.push_back({{"pmd", p->index()}, {"lcore", p->lcore()}, {"rxqs", rxqs}});
  }
  return out;
}

nlohmann::json Switch::pmd_rxq_rebalance(const std::string& mode) {
  std::lock_guard lk(mu_);
  if (!mode.empty() && !parse_rxq_assign_mode(mode, assign_mode_))
    throw std::runtime_error("mode must be roundrobin or cycles");
  reassign_rxqs_locked();
  return {{"rxq_assign", rxq_assign_mode_name(assign_mode_)}};
}

nlohmann::json Switch::stage_list() const {
  std::lock_guard lk(mu_);
  const auto& reg = stage_registry();
  nlohmann::json out = nlohmann::json::array();
  for (int si : dp_->stage_order) {
    const StageDesc& d = reg[static_cast<size_t>(si)];
    nlohmann::json counters = nlohmann::json::object();
    nlohmann::json details = nlohmann::json::array();
    for (size_t c = 0; c < d.counters.size(); ++c) {
      uint64_t sum = 0;
      for (const auto& p : dp_->pmds)
        if (const Stage* s = p->stage(static_cast<size_t>(si))) sum += s->counter(c);
      counters[d.counters[c]] = sum;
    }
    for (const auto& p : dp_->pmds)
      if (const Stage* s = p->stage(static_cast<size_t>(si))) details.push_back(s->details());
    out.push_back({{"name", d.name},
                   {"enabled", dp_->stage_on[static_cast<size_t>(si)].load()},
                   {"help", d.help},
                   {"next_steps", d.next_steps},
                   {"tcp", d.tcp},
                   {"counters", counters},
                   {"per_pmd", details}});
  }
  return out;
}

void Switch::stage_enable(const std::string& name, bool on) {
  std::lock_guard lk(mu_);
  int si = stage_index(name);
  bool in_pipeline = false;
  for (int s : dp_->stage_order) in_pipeline |= s == si;
  if (si < 0 || !in_pipeline) throw std::runtime_error("stage '" + name + "' is not in the pipeline (stages.order)");
  // Turn the handoff on before a TCP stage sees packets, off after it stops.
  if (on) {
    dp_->stage_on[static_cast<size_t>(si)].store(true);
    update_handoff_locked();
  } else {
    dp_->stage_on[static_cast<size_t>(si)].store(false);
    rcu().synchronize();
    update_handoff_locked();
  }
}

}  // namespace vsw
