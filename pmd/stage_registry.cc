#include "pmd/stage.h"

namespace vsw {

std::unique_ptr<Stage> make_noop_stage(const StageInit&);
std::unique_ptr<Stage> make_snoop_stage(const StageInit&);
namespace snoop {
const std::vector<const char*>& snoop_counter_names();
}
std::unique_ptr<Stage> make_monitor_stage(const StageInit&);
namespace mon {
const std::vector<const char*>& monitor_counter_names();
}
const std::vector<const char*>& noop_counter_names();

const std::vector<StageDesc>& stage_registry() {
  static const std::vector<StageDesc> reg = {
      {"noop", "forwards everything; counts packets (optionally drops IPv4 TTL 1)",
       {"forward", "drop"}, noop_counter_names(), false, make_noop_stage},
      {"monitor", "passive TCP diagnosis: RTT halves, guest delay, flight/cwnd bound, retransmissions (spurious), "
                  "loss episodes, phase, limited-by (cc/stages/monitor_*.cc)",
       {"forward"},
       mon::monitor_counter_names(),
       true, make_monitor_stage},
      {"snoop", "vSnoop early ACK toward vhost-user guests, only for bytes the guest ring took (cc/stages/snoop_*.cc)",
       {"forward", "drop", "rewrite", "emit"}, snoop::snoop_counter_names(), true, make_snoop_stage},
  };
  return reg;
}

int stage_index(const std::string& name) {
  const auto& r = stage_registry();
  for (size_t i = 0; i < r.size(); ++i)
    if (name == r[i].name) return static_cast<int>(i);
  return -1;
}

}  // namespace vsw
