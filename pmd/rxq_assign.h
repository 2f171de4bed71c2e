// Assignment of rx queues to PMD threads (like OVS pmd-rxq-assign).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pmd/pmd.h"

namespace vsw {

enum class RxqAssignMode { kRoundRobin, kCycles };
bool parse_rxq_assign_mode(const std::string& s, RxqAssignMode& out);
const char* rxq_assign_mode_name(RxqAssignMode m);

struct RxqLoad {
  RxqRef rxq;
  uint64_t cycles = 0;  // measured processing cycles (history)
  int pinned_pmd = -1;  // >= 0: operator pinned this queue
};

// Returns one rx queue list per PMD. Round-robin deals queues in order;
// cycles sorts by measured load and gives each queue to the least-loaded PMD.
std::vector<std::vector<RxqRef>> assign_rxqs(const std::vector<RxqLoad>& rxqs, unsigned n_pmds, RxqAssignMode mode);

}  // namespace vsw
