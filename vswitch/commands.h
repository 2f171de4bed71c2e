// The control command table: one row per command, shared by the Unix-socket
// control server (vswitchctl) and DPDK telemetry.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vsw {

class Switch;

struct Command {
  const char* name;
  const char* usage;
  const char* help;
  bool live_safe;       // may run while PMDs forward traffic (all of ours do)
  bool telemetry;       // also exported as /vswitch/<name> telemetry command
  std::function<nlohmann::json(Switch&, const nlohmann::json& args)> run;
};

const std::vector<Command>& commands();

// args: {"argv": [positional...], "key": "value", ...}.
// Returns {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
nlohmann::json run_command(Switch& sw, const std::string& name, const nlohmann::json& args);

}  // namespace vsw
