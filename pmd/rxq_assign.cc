#include "pmd/rxq_assign.h"

#include <algorithm>

namespace vsw {

bool parse_rxq_assign_mode(const std::string& s, RxqAssignMode& out) {
  if (s == "roundrobin") out = RxqAssignMode::kRoundRobin;
  else if (s == "cycles") out = RxqAssignMode::kCycles;
  else return false;
  return true;
}

const char* rxq_assign_mode_name(RxqAssignMode m) {
  return m == RxqAssignMode::kRoundRobin ? "roundrobin" : "cycles";
}

std::vector<std::vector<RxqRef>> assign_rxqs(const std::vector<RxqLoad>& rxqs, unsigned n_pmds, RxqAssignMode mode) {
  std::vector<std::vector<RxqRef>> out(std::max(1u, n_pmds));
  std::vector<uint64_t> load(out.size(), 0);
  std::vector<const RxqLoad*> order;
  for (const auto& r : rxqs) {
    if (r.pinned_pmd >= 0 && static_cast<unsigned>(r.pinned_pmd) < out.size()) {
      out[static_cast<size_t>(r.pinned_pmd)].push_back(r.rxq);
      load[static_cast<size_t>(r.pinned_pmd)] += r.cycles;
    } else {
      order.push_back(&r);
    }
  }
  if (mode == RxqAssignMode::kRoundRobin) {
    size_t next = 0;
    for (const RxqLoad* r : order) out[next++ % out.size()].push_back(r->rxq);
    return out;
  }
  std::stable_sort(order.begin(), order.end(), [](const RxqLoad* a, const RxqLoad* b) { return a->cycles > b->cycles; });
  for (const RxqLoad* r : order) {
    size_t best = 0;
    for (size_t i = 1; i < out.size(); ++i)
      if (load[i] < load[best] || (load[i] == load[best] && out[i].size() < out[best].size())) best = i;
    out[best].push_back(r->rxq);
    load[best] += r->cycles;
  }
  return out;
}

}  // namespace vsw
