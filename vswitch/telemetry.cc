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

void add_dict_value(rte_tel_data* d, const std::string& key, const nlohmann::json& v, bool nested) {
  const std::string k = clip(key);
  if (v.is_number_unsigned()) {
    rte_tel_data_add_dict_u64(d, k.c_str(), v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    rte_tel_data_add_dict_int(d, k.c_str(), static_cast<int>(v.get<int64_t>()));
  } else if (v.is_boolean()) {
    rte_tel_data_add_dict_u64(d, k.c_str(), v.get<bool>() ? 1 : 0);
  } else if ((v.is_object() || v.is_array()) && !nested) {
    rte_tel_data* c = rte_tel_data_alloc();
    if (!c) return;
    json_to_tel(v, c);
    if (rte_tel_data_add_dict_container(d, k.c_str(), c, 0) != 0) rte_tel_data_free(c);
  } else {
    rte_tel_data_add_dict_string(d, k.c_str(), scalar_string(v).c_str());
  }
}

void fill(const nlohmann::json& j, rte_tel_data* d, bool nested) {
  if (j.is_object()) {
    rte_tel_data_start_dict(d);
    for (auto it = j.begin(); it != j.end(); ++it) add_dict_value(d, it.key(), it.value(), nested);
    return;
  }
  if (j.is_array()) {
    bool all_u64 = true, all_scalar = true;
    for (const auto& v : j) {
      all_u64 &= v.is_number_unsigned();
      all_scalar &= !(v.is_object() || v.is_array());
    }
    if (all_u64) {
      rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
      for (const auto& v : j) rte_tel_data_add_array_u64(d, v.get<uint64_t>());
    } else if (all_scalar || nested) {
      rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
      for (const auto& v : j) rte_tel_data_add_array_string(d, scalar_string(v).c_str());
    } else {
      rte_tel_data_start_array(d, RTE_TEL_CONTAINER);
      for (const auto& v : j) {
        rte_tel_data* c = rte_tel_data_alloc();
        if (!c) return;
        fill(v, c, true);
        if (rte_tel_data_add_array_container(d, c, 0) != 0) rte_tel_data_free(c);
      }
    }
    return;
  }
  rte_tel_data_string(d, scalar_string(j).c_str());
}

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

void json_to_tel(const nlohmann::json& j, rte_tel_data* d) { fill(j, d, false); }

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
