#include "vswitch/telemetry.h"

#include <rte_telemetry.h>

#include <atomic>
#include <string>

#include "vswitch/commands.h"
#include "vswitch/log.h"

namespace vsw {

namespace {

std::atomic<Switch*> g_switch{nullptr};

std::string clip(std::string s) {
  if (s.size() >= RTE_TEL_MAX_STRING_LEN) s.resize(RTE_TEL_MAX_STRING_LEN - 1);
  return s;
}

std::string scalar_string(const nlohmann::json& v) {
  return clip(v.is_string() ? v.get<std::string>() : v.dump());
}

bool is_scalar(const nlohmann::json& v) { return !v.is_object() && !v.is_array(); }
bool scalar_array(const nlohmann::json& v) {
  if (!v.is_array()) return false;
  for (const auto& e : v)
    if (!is_scalar(e)) return false;
  return true;
}

std::string elem_key(const nlohmann::json& e, size_t i) {
  for (const char* k : {"name", "pmd", "id"})
    if (e.contains(k) && is_scalar(e[k])) return e[k].is_string() ? e[k].get<std::string>() : e[k].dump();
  return std::to_string(i);
}

// Telemetry in DPDK 22.11 allows one level of containers, and a container
// holds scalars only. So the result is flattened: scalar leaves of each
// object become one container named by the object's path ("ports/vm1").
void flatten(const nlohmann::json& j, const std::string& path, nlohmann::json& out) {
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      std::string k = path.empty() ? elem_key(j[i], i) : path + "/" + elem_key(j[i], i);
      if (j[i].is_object()) flatten(j[i], k, out);
      else out[k] = j[i];
    }
    return;
  }
  nlohmann::json leaves = nlohmann::json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = path.empty() ? it.key() : path + "/" + it.key();
    if (is_scalar(it.value()) || scalar_array(it.value())) leaves[it.key()] = it.value();
    else flatten(it.value(), k, out);
  }
  if (path.empty()) {
    for (auto it = leaves.begin(); it != leaves.end(); ++it) out[it.key()] = it.value();
  } else if (!leaves.empty()) {
    out[path] = leaves;
  }
}

void add_scalar(rte_tel_data* d, const std::string& key, const nlohmann::json& v) {
  const std::string k = clip(key);
  if (v.is_number_unsigned()) rte_tel_data_add_dict_u64(d, k.c_str(), v.get<uint64_t>());
  else if (v.is_number_integer()) rte_tel_data_add_dict_int(d, k.c_str(), static_cast<int>(v.get<int64_t>()));
  else if (v.is_boolean()) rte_tel_data_add_dict_u64(d, k.c_str(), v.get<bool>() ? 1 : 0);
  else rte_tel_data_add_dict_string(d, k.c_str(), scalar_string(v).c_str());
}

rte_tel_data* array_container(const nlohmann::json& a) {
  rte_tel_data* c = rte_tel_data_alloc();
  if (!c) return nullptr;
  bool all_u64 = true;
  for (const auto& v : a) all_u64 &= v.is_number_unsigned();
  rte_tel_data_start_array(c, all_u64 ? RTE_TEL_U64_VAL : RTE_TEL_STRING_VAL);
  for (const auto& v : a) {
    if (all_u64) rte_tel_data_add_array_u64(c, v.get<uint64_t>());
    else rte_tel_data_add_array_string(c, scalar_string(v).c_str());
  }
  return c;
}

}  // namespace

void json_to_tel(const nlohmann::json& j, rte_tel_data* d) {
  if (is_scalar(j)) {
    rte_tel_data_string(d, scalar_string(j).c_str());
    return;
  }
  nlohmann::json flat = nlohmann::json::object();
  flatten(j, "", flat);
  rte_tel_data_start_dict(d);
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    const auto& v = it.value();
    if (is_scalar(v)) {
      add_scalar(d, it.key(), v);
      continue;
    }
    // A container: scalar leaves of one object (as a dict), or a scalar array.
    rte_tel_data* c = nullptr;
    if (v.is_array()) {
      c = array_container(v);
    } else if ((c = rte_tel_data_alloc())) {
      rte_tel_data_start_dict(c);
      for (auto f = v.begin(); f != v.end(); ++f) {
        if (is_scalar(f.value())) add_scalar(c, f.key(), f.value());
        else rte_tel_data_add_dict_string(c, clip(f.key()).c_str(), clip(f.value().dump()).c_str());
      }
    }
    if (c && rte_tel_data_add_dict_container(d, clip(it.key()).c_str(), c, 0) != 0) rte_tel_data_free(c);
  }
}

namespace {

int handler(const char* cmd, const char* params, rte_tel_data* d) {
  Switch* sw = g_switch.load();
  if (!sw) return -1;
  std::string name = cmd + std::string("/vswitch/").size();
  for (auto& ch : name)
    if (ch == '_') ch = '-';
  nlohmann::json args = nlohmann::json::object();
  if (params && *params) args["argv"] = nlohmann::json::array({std::string(params)});
  nlohmann::json r = run_command(*sw, name, args);
  if (!r.value("ok", false)) {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "error", clip(r.value("error", "failed")).c_str());
    return 0;
  }
  json_to_tel(r["result"], d);
  return 0;
}

}  // namespace

void telemetry_register(Switch& sw) {
  g_switch.store(&sw);
  for (const auto& c : commands()) {
    if (!c.telemetry) continue;
    std::string path = std::string("/vswitch/") + c.name;
    for (auto& ch : path)
      if (ch == '-') ch = '_';
    if (rte_telemetry_register_cmd(path.c_str(), handler, c.help) != 0)
      log()->warn("telemetry: cannot register {}", path);
  }
}

}  // namespace vsw
