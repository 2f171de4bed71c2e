// vCPU consolidation model for vmsim (no DPDK here: unit-testable and usable
// by `vmsim --schedule-only`). See README.md "vmsim model".
//
// One core is shared by the guest and N-1 other VMs, served round robin as
// Xen's credit scheduler does among VMs of equal priority. The guest is
// always runnable (it runs its own load besides networking, like the
// non-idle receivers in the vSnoop experiments), so it uses its whole slice.
// After the guest's slice each other VM, at its turn, is busy with
// probability `load` (drawn per turn) and then runs a full slice; an idle VM
// is blocked and takes no time. If no other VM is busy the core stays with
// the guest: on periods merge and off periods are 0 or k*slice, k=1..N-1.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace tb {

struct Interval {
  bool on;
  uint64_t start_us, end_us;  // [start, end) from the schedule's origin
};

class ConsolidationModel {
 public:
  ConsolidationModel(unsigned vms_per_core, double slice_ms, double load, uint64_t seed);
  // The next interval; on and off strictly alternate, starting with on at 0.
  Interval next();

  // Long-run share of time the guest runs: 1 / (1 + (N-1) * load).
  double expected_on_fraction() const;

 private:
  bool draw(double p);
  unsigned n_;
  uint64_t slice_us_;
  double load_;
  std::mt19937_64 rng_;
  uint64_t t_ = 0;
  bool have_off_ = false;
  Interval off_{};
};

struct ScheduleStats {
  double total_ms = 0, on_ms = 0, on_fraction = 0;
  unsigned off_count = 0;
  double off_median_ms = 0, off_mean_ms = 0, off_max_ms = 0;
};
// Clips the intervals to [0, horizon_us) and summarises them.
ScheduleStats summarize(const std::vector<Interval>& iv, uint64_t horizon_us);

}  // namespace tb
