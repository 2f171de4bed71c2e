#include "vswitch/config.h"

#include <stdexcept>
#include <toml++/toml.h>

#include "pmd/stage.h"

namespace vsw {

namespace {

// toml++ node -> JSON, so port specs and stage settings share one reader.
nlohmann::json to_json(const toml::node& n) {
  if (auto t = n.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (auto&& [k, v] : *t) j[std::string(k.str())] = to_json(v);
    return j;
  }
  if (auto a = n.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (auto&& v : *a) j.push_back(to_json(v));
    return j;
  }
  if (auto v = n.as_string()) return v->get();
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  return nullptr;
}

template <typename T>
T get_or(const nlohmann::json& j, const char* key, T def) {
  if (!j.contains(key)) return def;
  try {
    return j.at(key).get<T>();
  } catch (const std::exception&) {
    throw std::runtime_error(std::string("config key '") + key + "' has the wrong type");
  }
}

uint64_t u64_of(const nlohmann::json& v) {
  if (v.is_string()) return parse_u64(v.get<std::string>());
  return v.get<uint64_t>();
}

bool bool_of(const nlohmann::json& v) {
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s == "true" || s == "1" || s == "yes") return true;
    if (s == "false" || s == "0" || s == "no") return false;
    throw std::runtime_error("not a boolean: " + s);
  }
  return v.get<bool>();
}

const nlohmann::json& section(const nlohmann::json& root, const char* name) {
  static const nlohmann::json empty = nlohmann::json::object();
  return root.contains(name) ? root.at(name) : empty;
}

SwitchConfig from_json(const nlohmann::json& root) {
  SwitchConfig c;
  const auto& d = section(root, "dpdk");
  c.eal_args = get_or(d, "eal_args", c.eal_args);
  c.file_prefix = get_or(d, "file_prefix", c.file_prefix);
  c.socket_mem_mb = get_or(d, "memory_mb", c.socket_mem_mb);
  c.no_huge = get_or(d, "no_huge", c.no_huge);
  c.mbufs = get_or(d, "mbufs", c.mbufs);

  const auto& p = section(root, "pmd");
  c.main_lcore = get_or(p, "main_lcore", c.main_lcore);
  c.pmd_lcores = get_or(p, "lcores", c.pmd_lcores);
  c.lcore_map = get_or(p, "lcore_map", c.lcore_map);
  c.rxq_assign = get_or(p, "rxq_assign", c.rxq_assign);
  c.dp.idle_sleep_max_us = get_or(p, "idle_sleep_max_us", c.dp.idle_sleep_max_us);
  c.dp.drop_malformed = get_or(p, "drop_malformed", c.dp.drop_malformed);
  const std::string parse = get_or<std::string>(p, "parse", "auto");
  if (parse != "auto" && parse != "full") throw std::runtime_error("pmd.parse must be auto or full");
  c.dp.parse_full = parse == "full";
  c.dp.tick_us = get_or(p, "tick_us", c.dp.tick_us);
  if (c.pmd_lcores.empty() || c.pmd_lcores.size() > kMaxPmds)
    throw std::runtime_error("pmd.lcores must list 1.." + std::to_string(kMaxPmds) + " lcores");

  const auto& fl = section(root, "flows");
  c.dp.flows.capacity = get_or(fl, "capacity", c.dp.flows.capacity);
  c.dp.flows.embryonic_max = get_or(fl, "embryonic_max", c.dp.flows.embryonic_max);
  c.dp.flows.idle_timeout_ms = get_or(fl, "idle_timeout_s", c.dp.flows.idle_timeout_ms / 1000) * 1000;
  c.dp.flows.embryonic_timeout_ms = get_or(fl, "embryonic_timeout_s", c.dp.flows.embryonic_timeout_ms / 1000) * 1000;
  c.dp.flows.create_midstream = get_or(fl, "create_midstream", c.dp.flows.create_midstream);
  if (c.dp.flows.capacity < 16) throw std::runtime_error("flows.capacity must be at least 16");

  const auto& f = section(root, "fdb");
  c.fdb.max_entries = get_or(f, "max_entries", c.fdb.max_entries);
  c.fdb.aging_s = get_or(f, "aging_s", c.fdb.aging_s);

  const auto& s = section(root, "stages");
  c.stage_order = get_or(s, "order", c.stage_order);
  // Stages in the pipeline start disabled unless listed in `enabled`.
  c.stages_enabled = get_or(s, "enabled", std::vector<std::string>{});
  for (const auto& name : c.stage_order) {
    if (stage_index(name) < 0) throw std::runtime_error("unknown stage '" + name + "' in stages.order");
    c.stage_config[name] = s.contains(name) ? s.at(name) : nlohmann::json::object();
  }
  for (const auto& name : c.stages_enabled)
    if (stage_index(name) < 0) throw std::runtime_error("unknown stage '" + name + "' in stages.enabled");

  const auto& ctl = section(root, "control");
  c.control_socket = get_or(ctl, "socket", c.control_socket);
  c.telemetry = get_or(ctl, "telemetry", c.telemetry);

  const auto& l = section(root, "log");
  c.log_level = get_or(l, "level", c.log_level);
  c.log_file = get_or(l, "file", c.log_file);

  if (root.contains("port")) {
    for (const auto& pj : root.at("port")) c.ports.push_back(port_spec_from_json(pj));
  }
  return c;
}

}  // namespace

uint64_t parse_u64(const std::string& s) {
  size_t pos = 0;
  uint64_t v = std::stoull(s, &pos, 0);
  if (pos != s.size()) throw std::runtime_error("not a number: " + s);
  return v;
}

PortSpec port_spec_from_json(const nlohmann::json& j) {
  PortSpec s;
  static const char* known[] = {"name", "type", "path", "client", "disable_features", "devargs", "rxd", "txd",
                                "queues", "vlan_mode", "tag", "trunks", "rxq_pmd"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok |= it.key() == k;
    if (!ok) throw std::runtime_error("unknown port setting '" + it.key() + "'");
  }
  s.name = get_or<std::string>(j, "name", "");
  s.type = get_or<std::string>(j, "type", "");
  if (s.name.empty()) throw std::runtime_error("port needs a name");
  if (s.type == "vhost-user" || s.type == "vhostuser") {
    s.type = "vhost-user";
    s.path = get_or<std::string>(j, "path", "");
    if (s.path.empty()) throw std::runtime_error("vhost-user port '" + s.name + "' needs a path");
    if (j.contains("client")) s.client = bool_of(j.at("client"));
    if (j.contains("disable_features")) s.disable_features = u64_of(j.at("disable_features"));
  } else if (s.type == "dpdk") {
    s.devargs = get_or<std::string>(j, "devargs", "");
    if (s.devargs.empty()) throw std::runtime_error("dpdk port '" + s.name + "' needs devargs");
  } else {
    throw std::runtime_error("port '" + s.name + "': type must be vhost-user or dpdk");
  }
  if (j.contains("queues")) s.queues = static_cast<uint16_t>(u64_of(j.at("queues")));
  if (j.contains("rxd")) s.rxd = static_cast<uint16_t>(u64_of(j.at("rxd")));
  if (j.contains("txd")) s.txd = static_cast<uint16_t>(u64_of(j.at("txd")));
  if (s.queues == 0 || s.queues > kMaxRxqPerPort) throw std::runtime_error("port '" + s.name + "': queues out of range");
  const std::string vm = get_or<std::string>(j, "vlan_mode", "none");
  if (vm == "access") s.vlan.mode = VlanMode::kAccess;
  else if (vm == "trunk") s.vlan.mode = VlanMode::kTrunk;
  else if (vm != "none") throw std::runtime_error("port '" + s.name + "': vlan_mode must be none, access or trunk");
  if (j.contains("tag")) s.vlan.tag = static_cast<uint16_t>(u64_of(j.at("tag")) & 0xfff);
  if (s.vlan.mode == VlanMode::kAccess && s.vlan.tag == 0)
    throw std::runtime_error("port '" + s.name + "': access port needs tag 1..4095");
  if (j.contains("trunks")) {
    const auto& t = j.at("trunks");
    if (t.is_array()) {
      for (const auto& v : t) s.vlan.trunks.set(u64_of(v) & 0xfff);
    } else {  // "10,20,30"
      std::string str = t.get<std::string>();
      size_t pos = 0;
      while (pos < str.size()) {
        size_t e = str.find(',', pos);
        s.vlan.trunks.set(parse_u64(str.substr(pos, e - pos)) & 0xfff);
        pos = e == std::string::npos ? str.size() : e + 1;
      }
    }
  }
  if (j.contains("rxq_pmd")) s.rxq_pmd = j.at("rxq_pmd").get<std::vector<int>>();
  return s;
}

nlohmann::json port_spec_to_json(const PortSpec& s) {
  nlohmann::json j = {{"name", s.name}, {"type", s.type}, {"queues", s.queues}};
  if (s.type == "vhost-user") {
    j["path"] = s.path;
    j["client"] = s.client;
    j["disable_features"] = s.disable_features;
  } else {
    j["devargs"] = s.devargs;
  }
  const char* modes[] = {"none", "access", "trunk"};
  j["vlan_mode"] = modes[static_cast<int>(s.vlan.mode)];
  if (s.vlan.mode != VlanMode::kNone) j["tag"] = s.vlan.tag;
  if (s.vlan.trunks.any()) {
    nlohmann::json t = nlohmann::json::array();
    for (size_t v = 0; v < 4096; ++v)
      if (s.vlan.trunks.test(v)) t.push_back(v);
    j["trunks"] = t;
  }
  return j;
}

SwitchConfig load_config_string(const std::string& text) {
  try {
    toml::table t = toml::parse(text);
    return from_json(to_json(t));
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(std::string("config parse error: ") + std::string(e.description()));
  }
}

SwitchConfig load_config_file(const std::string& path) {
  try {
    toml::table t = toml::parse_file(path);
    return from_json(to_json(t));
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(path + ": " + std::string(e.description()));
  }
}

}  // namespace vsw
