#include "pmd/stage.h"

namespace vsw {

std::unique_ptr<Stage> make_noop_stage(const StageInit&);

const std::vector<StageDesc>& stage_registry() {
  static const std::vector<StageDesc> reg = {
      {"noop", "forwards everything; counts packets (optionally drops IPv4 TTL 1)",
       {"forward", "drop"}, {"seen", "tcp", "dropped_ttl1", "tx_confirmed", "tx_failed"}, false, make_noop_stage},
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
